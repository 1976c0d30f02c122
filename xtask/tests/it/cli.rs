//! The command line and exit statuses of the contract, through the built binary.

use crate::common;

use common::*;

#[test]
fn no_arguments_lists_the_tasks() {
    let t = TempDir::new("cli-noargs");
    let r = run(xtask(t.path(), &[]));
    assert_eq!(r.code, 2);
    for task in [
        "backend-stage",
        "verify",
        "check-migrations",
        "install-hooks",
        "init",
    ] {
        assert!(
            r.stderr.contains(task),
            "{task} missing from:\n{}",
            r.stderr
        );
    }
    let r = run(xtask(t.path(), &["--help"]));
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("Exit status: 0"), "{}", r.stdout);
}

#[test]
fn every_subcommand_explains_its_flags() {
    let t = TempDir::new("cli-help");
    let r = run(xtask(t.path(), &["verify", "--help"]));
    assert_eq!(r.code, 0);
    for flag in [
        "--repo",
        "--base",
        "--all",
        "--live",
        "--database-url",
        "--skip-commands",
        "--format",
        "--report",
    ] {
        assert!(r.stdout.contains(flag), "{flag} missing");
    }
    let r = run(xtask(t.path(), &["backend-stage", "--help"]));
    for flag in [
        "--task",
        "--task-file",
        "--agent",
        "--timeout",
        "--fix-rounds",
        "--print-prompt",
        "--no-verify",
    ] {
        assert!(r.stdout.contains(flag), "{flag} missing");
    }
}

#[test]
fn an_unknown_config_key_is_named_and_exits_2() {
    let t = git_repo(
        "cli-badconfig",
        &[(
            "xtask.toml",
            "[tenancy]\ncolumn = \"org_id\"\ntenant_colum = \"x\"\n",
        )],
    );
    let r = run(xtask(t.path(), &["verify", "--skip-commands"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("xtask.toml"), "{}", r.stderr);
    assert!(r.stderr.contains("tenant_colum"), "{}", r.stderr);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
}

#[test]
fn outside_a_git_repository_is_exit_2_with_the_reason() {
    let t = TempDir::outside_git("cli-nogit");
    let r = run(xtask(
        t.path(),
        &["verify", "--repo", ".", "--skip-commands"],
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a git repository"), "{}", r.stderr);
    // With --all nothing needs git.
    let r = run(xtask(
        t.path(),
        &["verify", "--repo", ".", "--all", "--skip-commands"],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
}

#[test]
fn a_base_that_does_not_exist_is_exit_2() {
    let t = git_repo("cli-badbase", &[("README.md", "x\n")]);
    let r = run(xtask(
        t.path(),
        &["verify", "--base", "origin/nope", "--skip-commands"],
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("base `origin/nope` does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_missing_repo_directory_is_exit_2() {
    let t = TempDir::new("cli-norepo");
    let r = run(xtask(t.path(), &["verify", "--repo", "does/not/exist"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("does/not/exist"), "{}", r.stderr);
}

#[test]
fn a_postgres_that_cannot_be_had_is_exit_3_with_live_on_and_unknown_with_auto() {
    let t = git_repo(
        "cli-nopg",
        &[(
            "supabase/migrations/0001.sql",
            "create table public.t (id int primary key);\n",
        )],
    );
    let url = "host=/nonexistent/socket/dir port=5432 user=postgres dbname=postgres";
    let r = run(xtask(
        t.path(),
        &[
            "verify",
            "--all",
            "--live",
            "on",
            "--database-url",
            url,
            "--skip-commands",
        ],
    ));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("--live on: cannot connect to Postgres"),
        "{}",
        r.stderr
    );

    let (r, json) = run_json(xtask(
        t.path(),
        &[
            "verify",
            "--all",
            "--database-url",
            url,
            "--skip-commands",
            "--format",
            "json",
        ],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let migration = item(&json, "migration");
    assert_eq!(migration["status"], "unknown", "{migration:#}");
    assert!(
        migration["evidence"]
            .as_str()
            .unwrap()
            .contains("not applied to a Postgres: cannot connect to Postgres"),
        "{migration:#}"
    );
}

#[test]
fn nothing_proven_is_never_exit_0() {
    // An empty change: no item can pass from evidence while gatherers are missing or skipped.
    let t = git_repo("cli-unknown", &[("README.md", "x\n")]);
    let r = run(xtask(
        t.path(),
        &[
            "verify",
            "--skip-commands",
            "--live",
            "off",
            "--format",
            "json",
        ],
    ));
    assert_ne!(r.code, 0, "{}", r.stdout);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(json["version"], 1);
    let statuses: Vec<&str> = json["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 8);
    assert!(statuses.contains(&"unknown"));
}

#[test]
fn report_file_is_written_whole_and_stdout_gets_the_summary() {
    let t = git_repo("cli-report", &[("README.md", "x\n")]);
    let report = t.path().join("out/report.json");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    std::fs::write(&report, "old").unwrap();
    let r = run(xtask(
        t.path(),
        &[
            "verify",
            "--skip-commands",
            "--format",
            "json",
            "--report",
            report.to_str().unwrap(),
        ],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["checklist"].as_array().unwrap().len(), 8);
    assert!(r.stdout.contains("report written to"), "{}", r.stdout);
    // Nothing but the report is left in its directory (no temp file).
    let names: Vec<_> = std::fs::read_dir(report.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["report.json"]);
}

#[test]
fn task_text_goes_nowhere_near_a_shell() {
    // A configured command with shell syntax in its arguments: printed, not executed.
    let t = git_repo(
        "cli-inert",
        &[(
            "xtask.toml",
            "[commands]\nlint = [\"printf\", \"%s\\n\", \"$(touch pwned)\", \"`touch pwned2`; touch pwned3\"]\n\
             test = [\"printf\", \"# tests 1\\n# pass 1\\n\"]\n",
        )],
    );
    let (r, json) = run_json(xtask(
        t.path(),
        &["verify", "--format", "json", "--live", "off"],
    ));
    let lint = item(&json, "lint");
    assert_eq!(lint["status"], "pass", "{lint}");
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(!t.path().join(f).exists(), "{f} was created: a shell ran");
    }
    assert!(
        r.stderr.contains("$(touch pwned)"),
        "the live view shows the literal text: {}",
        r.stderr
    );
}

#[test]
fn a_default_base_that_cannot_be_found_is_exit_2_not_ready_for_review() {
    // A repository whose only branch is not a default branch (as in a single-branch or
    // detached CI checkout): nothing to compare with.
    let t = git_repo("cli-nodefault", &[("README.md", "x\n")]);
    git(t.path(), &["branch", "-q", "-m", "main", "feature"]);
    write(
        t.path(),
        "supabase/migrations/0001.sql",
        "create table public.t (id int primary key);\n",
    );
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", "work"]);
    let r = run(xtask(
        t.path(),
        &["verify", "--skip-commands", "--live", "off"],
    ));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "no handover: {}", r.stdout);
    for needed in ["--base <ref>", "git fetch origin", "fetch-depth: 0"] {
        assert!(r.stderr.contains(needed), "{needed} missing: {}", r.stderr);
    }
    let r = run(xtask(t.path(), &["check-migrations"]));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    // `--base HEAD` given explicitly: the uncommitted work, as asked.
    let r = run(xtask(
        t.path(),
        &[
            "verify",
            "--base",
            "HEAD",
            "--skip-commands",
            "--live",
            "off",
        ],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    // `--all` needs no base.
    let (r, json) = run_json(xtask(
        t.path(),
        &[
            "verify",
            "--all",
            "--skip-commands",
            "--live",
            "off",
            "--format",
            "json",
        ],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(item(&json, "tenant_id")["status"], "fail");
}

#[test]
fn git_variables_in_the_environment_do_not_redirect_the_repository() {
    let checked = git_repo("cli-gitenv-checked", &[("README.md", "x\n")]);
    write(
        checked.path(),
        "supabase/migrations/0001_checked.sql",
        "create table public.checked (id int primary key);\n",
    );
    let decoy = git_repo("cli-gitenv-decoy", &[("README.md", "x\n")]);
    write(decoy.path(), "decoy.txt", "nothing\n");
    let decoy_git = decoy.path().join(".git");
    let mut cmd = xtask(
        checked.path(),
        &[
            "verify",
            "--repo",
            checked.path().to_str().unwrap(),
            "--skip-commands",
            "--live",
            "off",
            "--format",
            "json",
        ],
    );
    cmd.env("GIT_DIR", &decoy_git)
        .env("GIT_WORK_TREE", decoy.path())
        .env("GIT_INDEX_FILE", decoy_git.join("index"));
    let (r, json) = run_json(cmd);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let changed: Vec<&str> = json["changed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["supabase/migrations/0001_checked.sql"]);
    assert_eq!(item(&json, "tenant_id")["status"], "fail");
}

#[test]
fn git_variables_in_the_environment_do_not_reach_lint_and_tests() {
    // A child that ran git would read the decoy repository instead of the one checked.
    let probe = "[\"sh\", \"-c\", \"env | grep -E '^GIT_(DIR|WORK_TREE)=' && exit 7; exit 0\"]";
    let checked = git_repo(
        "cli-gitenv-children",
        &[(
            "xtask.toml",
            &format!("[commands]\nlint = {probe}\ntest = {probe}\n"),
        )],
    );
    write(checked.path(), "src/x.ts", "export const x = 1;\n");
    let decoy = git_repo("cli-gitenv-children-decoy", &[("README.md", "x\n")]);
    let mut cmd = xtask(
        checked.path(),
        &["verify", "--all", "--live", "off", "--format", "json"],
    );
    cmd.env("GIT_DIR", decoy.path().join(".git"))
        .env("GIT_WORK_TREE", decoy.path());
    let (r, json) = run_json(cmd);
    let commands = json["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 2, "{}", r.stderr);
    for c in commands {
        assert_eq!(c["exit_code"], 0, "{c}\n{}", r.stderr);
    }
}

#[test]
fn a_file_name_that_is_not_utf8_is_named_and_does_not_stop_the_run() {
    use std::os::unix::ffi::OsStrExt;
    let t = git_repo("cli-notutf8", &[("README.md", "x\n")]);
    let name = std::ffi::OsStr::from_bytes(b"secret-\xff.env");
    std::fs::write(t.path().join(name), "API_KEY=sk_live_0123456789abcdef\n").unwrap();
    let (r, json) = run_json(xtask(
        t.path(),
        &[
            "verify",
            "--skip-commands",
            "--live",
            "off",
            "--format",
            "json",
        ],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("secret-\u{FFFD}.env") && r.stderr.contains("not UTF-8"),
        "{}",
        r.stderr
    );
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "secret-\u{FFFD}.env")
        .unwrap_or_else(|| panic!("no finding names the file: {json:#}"));
    assert_eq!(finding["rule"], "secret-scan-skipped", "{finding:#}");
    assert!(
        finding["message"].as_str().unwrap().contains("not UTF-8"),
        "{finding:#}"
    );
}

/// `verify --report PATH` on a repository with one unprotected table (exit 1 when it runs).
fn verify_report(t: &TempDir, report: &std::path::Path) -> Run {
    run(xtask(
        t.path(),
        &[
            "verify",
            "--skip-commands",
            "--live",
            "off",
            "--format",
            "json",
            "--report",
            report.to_str().unwrap(),
        ],
    ))
}

#[test]
fn a_report_path_that_is_not_a_regular_file_is_refused_before_the_run() {
    use std::os::unix::fs::FileTypeExt;
    let t = git_repo("cli-report-kinds", &[("README.md", "x\n")]);
    let out = t.path().join("out");
    std::fs::create_dir_all(&out).unwrap();

    // A FIFO: never replaced by a regular file (nor opened: no hang).
    let fifo = out.join("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // A symbolic link to a file that is not the report.
    let victim = out.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = out.join("link.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    // A socket, and a directory.
    let sock = out.join("sock.json");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let dir = out.join("dir.json");
    std::fs::create_dir(&dir).unwrap();

    for (path, what) in [
        (&fifo, "a FIFO"),
        (&link, "a symbolic link"),
        (&sock, "a socket"),
        (&dir, "a directory"),
    ] {
        let r = verify_report(&t, path);
        assert_eq!(r.code, 2, "{what}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(&format!("--report {}", path.display())) && r.stderr.contains(what),
            "{what}: {}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("reading migrations"),
            "{what}: refused before the run: {}",
            r.stderr
        );
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(&sock)
        .unwrap()
        .file_type()
        .is_socket());
    assert!(dir.is_dir());

    // A directory that does not exist: said before the run, not after it.
    let r = verify_report(&t, &out.join("no/such/dir/report.json"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no/such/dir"), "{}", r.stderr);
    assert!(!r.stderr.contains("reading migrations"), "{}", r.stderr);
}

#[test]
fn the_verdict_is_printed_even_when_the_report_cannot_be_written() {
    // The lint command turns the report's path into a directory while the run goes on.
    let t = git_repo(
        "cli-report-late",
        &[(
            "xtask.toml",
            "[commands]\nlint = [\"mkdir\", \"-p\", \"out/report.json/x\"]\ntest = [\"true\"]\n",
        )],
    );
    let report = t.path().join("out/report.json");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    let r = run(xtask(
        t.path(),
        &[
            "verify",
            "--live",
            "off",
            "--format",
            "json",
            "--report",
            report.to_str().unwrap(),
        ],
    ));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("tenant_id") && r.stdout.contains("not applicable"),
        "the compact verdict: {}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains(&format!("cannot write the report to {}", report.display())),
        "{}",
        r.stderr
    );
    // Nothing left behind beside it.
    let names: Vec<_> = std::fs::read_dir(report.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["report.json"]);
}

#[test]
fn the_temporary_report_file_cannot_be_planted() {
    // The old temporary name was `.NAME.PID.tmp`: anyone able to write in the directory could
    // put a link there and have the report written through it. Plant every name a pid gives.
    let t = TempDir::new("cli-report-tmp");
    let victim = t.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let report = t.path().join("report.json");
    let tmp = t
        .path()
        .join(format!(".report.json.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    xtask::outfile::write_atomic(&report, b"{}\n").unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "{}\n");
    assert!(std::fs::symlink_metadata(&tmp)
        .unwrap()
        .file_type()
        .is_symlink());
    let mut names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!(".report.json.{}.tmp", std::process::id()),
            "report.json".into(),
            "victim.txt".into()
        ]
    );
}

#[test]
fn a_repository_in_a_directory_whose_name_is_not_utf8_is_checked() {
    use std::os::unix::ffi::OsStrExt;
    let t = TempDir::new("cli-notutf8-dir");
    let dir = t.path().join(std::ffi::OsStr::from_bytes(b"work-\xfe"));
    std::fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    write(&dir, "README.md", "x\n");
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "init"]);
    write(
        &dir,
        "supabase/migrations/0001.sql",
        "create table public.t (id int primary key);\n",
    );
    let (r, json) = run_json(xtask(
        &dir,
        &[
            "verify",
            "--skip-commands",
            "--live",
            "off",
            "--format",
            "json",
        ],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(item(&json, "tenant_id")["status"], "fail", "{json:#}");
}
