//! Lint and tests as children: concurrency, timeouts, missing tools.

use crate::common;

use common::*;

/// Each command waits for the other's file: run one after the other, they would both time
/// out; run side by side, both pass. No clock is read.
#[test]
fn lint_and_tests_run_concurrently() {
    let script = |mine: &str, theirs: &str, ok: &str| {
        format!(
            "[\"sh\", \"-c\", \"touch {mine}; i=0; while [ ! -e {theirs} ]; do i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.05; done; printf '{ok}'\"]"
        )
    };
    let config = format!(
        "[commands]\ntimeout_secs = 30\nlint = {}\ntest = {}\n",
        script("lint.started", "tests.started", "ok\\n"),
        script("tests.started", "lint.started", "# tests 1\\n# pass 1\\n")
    );
    let t = git_repo(
        "commands-concurrent",
        &[("xtask.toml", &config), (".gitignore", "*.started\n")],
    );
    let (r, json) = run_json(xtask(
        t.path(),
        &["verify", "--format", "json", "--live", "off"],
    ));
    for id in ["lint", "tests"] {
        let item = item(&json, id);
        assert_eq!(item["status"], "pass", "{id}: {item}\n{}", r.stderr);
    }
}

#[test]
fn a_hung_command_is_killed_at_its_timeout_and_exits_3() {
    let t = git_repo(
        "commands-timeout",
        &[(
            "xtask.toml",
            "[commands]\ntimeout_secs = 1\nlint = [\"sh\", \"-c\", \"sleep 300 & sleep 300\"]\n\
             test = [\"printf\", \"# tests 1\\n# pass 1\\n\"]\n",
        )],
    );
    let start = std::time::Instant::now();
    let r = run(xtask(
        t.path(),
        &["verify", "--format", "json", "--live", "off"],
    ));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(start.elapsed().as_secs() < 30);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let lint = item(&json, "lint");
    assert_eq!(lint["status"], "unknown");
    assert_eq!(lint["evidence"], "did not finish: timed out after 1s");
    assert!(r.stderr.contains("lint: did not finish"), "{}", r.stderr);
}

#[test]
fn a_missing_tool_is_unknown_with_a_hint_and_exits_3() {
    let t = git_repo(
        "commands-missing",
        &[(
            "xtask.toml",
            "[commands]\nlint = \"no-such-linter-xyz .\"\ntest = \"no-such-runner-xyz\"\n",
        )],
    );
    let r = run(xtask(
        t.path(),
        &["verify", "--format", "json", "--live", "off"],
    ));
    assert_eq!(r.code, 3, "{}", r.stderr);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let lint = item(&json, "lint");
    assert_eq!(lint["status"], "unknown");
    assert!(
        lint["evidence"]
            .as_str()
            .unwrap()
            .contains("`no-such-linter-xyz` not found"),
        "{lint}"
    );
}

#[test]
fn a_failing_setup_leaves_lint_and_tests_unrun() {
    let t = git_repo(
        "commands-setup",
        &[("xtask.toml", "[commands]\nsetup = [\"sh\", \"-c\", \"echo 'Error: lockfile out of date'; exit 1\"]\nlint = \"true\"\ntest = \"true\"\n")],
    );
    let r = run(xtask(
        t.path(),
        &["verify", "--format", "json", "--live", "off"],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let tests = item(&json, "tests");
    assert_eq!(tests["status"], "unknown");
    assert!(
        tests["evidence"]
            .as_str()
            .unwrap()
            .contains("setup command"),
        "{tests}"
    );
    let setup = json["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "setup")
        .unwrap();
    assert_eq!(setup["exit_code"], 1);
    assert_eq!(setup["summary"], "Error: lockfile out of date");
}

#[test]
fn ctrl_c_ends_the_whole_group_of_a_running_command() {
    let t = git_repo(
        "commands-sigint",
        &[
            (
                "xtask.toml",
                "[commands]\ntimeout_secs = 300\nlint = [\"sh\", \"-c\", \"sleep 300 & echo $! > grandchild.pid; wait\"]\n\
                 test = [\"sleep\", \"300\"]\n",
            ),
            (".gitignore", "grandchild.pid\n"),
        ],
    );
    let child = xtask(t.path(), &["verify", "--format", "json", "--live", "off"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = t.path().join("grandchild.pid");
    let start = std::time::Instant::now();
    while !pid_file.exists()
        || std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .is_empty()
    {
        assert!(
            start.elapsed().as_secs() < 60,
            "the lint command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: plain kill(2) on the xtask child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed().as_secs() < 60);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    // The report is written all the same: the commands cut short are not passes.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lint = json["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "lint")
        .unwrap()
        .clone();
    assert_ne!(lint["status"], "pass", "{lint}");
    assert!(
        lint["evidence"].as_str().unwrap().contains("interrupted"),
        "{lint}"
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    let alive = std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false);
    assert!(!alive, "grandchild {grandchild} survived Ctrl-C");
}

/// Processes whose command line holds `marker`, by pid.
fn with_marker(marker: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        // A zombie has an empty command line: it runs nothing.
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

/// Poll `cond` for up to `secs` seconds.
fn within(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cond()
}

/// Start `verify` on a repository whose lint and tests leave long-lived grandchildren, wait
/// until they run, send `signal` to `verify`, and say which grandchildren are left after a
/// few seconds (killing them, so the test leaves nothing behind).
fn survivors_of(signal: i32, name: &str) -> Vec<i32> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    // A unique duration: `sleep 3000.<n>` is the marker in /proc/*/cmdline.
    let marker = format!("3000.{}{nanos}", std::process::id());
    let sleeper = format!("[\"sh\", \"-c\", \"sleep {marker} & sleep {marker}\"]");
    let config = format!("[commands]\ntimeout_secs = 600\nlint = {sleeper}\ntest = {sleeper}\n");
    let t = git_repo(name, &[("xtask.toml", &config)]);
    let mut child = xtask(t.path(), &["verify", "--format", "json", "--live", "off"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        within(30, || with_marker(&marker).len() >= 2),
        "the commands did not start"
    );
    // SAFETY: kill(2) on the pid of our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let _ = child.wait();
    within(6, || with_marker(&marker).is_empty());
    let left = with_marker(&marker);
    for pid in &left {
        // SAFETY: kill(2) on processes this test started (they carry its marker).
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    left
}

#[test]
fn children_die_with_a_killed_verify() {
    let left = survivors_of(libc::SIGKILL, "commands-sigkill");
    assert!(left.is_empty(), "left running after SIGKILL: {left:?}");
}

#[test]
fn children_die_with_a_hung_up_verify() {
    let left = survivors_of(libc::SIGHUP, "commands-sighup");
    assert!(left.is_empty(), "left running after SIGHUP: {left:?}");
}

#[test]
fn a_secret_in_a_command_output_is_masked_live_and_in_the_report() {
    let key = "sk_live_abcdefghijklmnopqrstuvwx";
    let t = git_repo(
        "commands-secret",
        &[(
            "xtask.toml",
            &format!(
                "[commands]\nlint = [\"sh\", \"-c\", \"echo 'Error: invalid key {key}' >&2; exit 1\"]\n\
                 test = [\"sh\", \"-c\", \"echo 'expected \\\"{key}\\\"'; exit 1\"]\n"
            ),
        )],
    );
    for format in ["json", "markdown", "text"] {
        let r = run(xtask(
            t.path(),
            &["verify", "--format", format, "--live", "off"],
        ));
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(!r.stdout.contains(key), "{format}: {}", r.stdout);
        assert!(!r.stderr.contains(key), "live view: {}", r.stderr);
        assert!(r.stderr.contains("sk_l…"), "live view: {}", r.stderr);
    }
}
