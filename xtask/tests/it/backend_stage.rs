//! `backend-stage` end to end: the REAL codex CLI (0.169.0, from npm) driven by a scripted
//! model server on 127.0.0.1, on a temp git copy of the example monorepo.
//!
//! Most run with `--skip-commands --live off`: the subject is the agent stage (prompt, codex
//! run, failure handling, cross-checks, fix rounds). The last ones run the whole stage for
//! real — codex, then ESLint, vitest and the live Postgres check — and reach exit 0 only when
//! every box is ticked from evidence.

use crate::agent_support;
use crate::common;

use std::time::Duration;

use agent_support::*;
use common::{git, TempDir};
use serde_json::Value;

/// A bound on every xtask run, far above what a passing run takes.
const LIMIT: Duration = Duration::from_secs(120);

const MIGRATION: &str = "supabase/migrations/20250601000000_invoices.sql";

/// A shell command writing the invoices migration, without RLS (so `rls` can never pass).
fn write_migration_without_rls() -> String {
    format!(
        "mkdir -p supabase/migrations && printf '%s\\n' 'create table public.invoices (' \
         '  id uuid primary key default gen_random_uuid(),' \
         '  tenant_id uuid not null references public.tenants (id) on delete cascade,' \
         '  amount_cents integer not null' ');' > {MIGRATION}"
    )
}

/// The fix: RLS and the four tenant policies appended to the same migration.
fn enable_rls() -> String {
    let t = "public.invoices";
    let cond = "(tenant_id = public.get_current_tenant_id())";
    format!(
        "printf '%s\\n' 'create index invoices_tenant_id_idx on {t} (tenant_id);' \
         'alter table {t} enable row level security;' \
         'create policy invoices_select on {t} for select to authenticated using {cond};' \
         'create policy invoices_insert on {t} for insert to authenticated with check {cond};' \
         'create policy invoices_update on {t} for update to authenticated using {cond} with check {cond};' \
         'create policy invoices_delete on {t} for delete to authenticated using {cond};' >> {MIGRATION}"
    )
}

const FINAL: &str = "Created `supabase/migrations/20250601000000_invoices.sql`.\n\n\
    - Tenant isolation: `tenant_id` NOT NULL | RLS: **pending**\n\
    - Quotes \"double\" and 'single', a $(subshell) and a ``` fence\n\nDone.";

struct Setup {
    codex: std::path::PathBuf,
    repo: TempDir,
    server: ModelServer,
    home: TempDir,
}

fn setup(name: &str, script: Vec<Reply>) -> Option<Setup> {
    let codex = codex()?;
    let repo = example_repo(name)?;
    let server = ModelServer::start(script, Duration::from_secs(180));
    let home = codex_home(server.port);
    Some(Setup {
        codex,
        repo,
        server,
        home,
    })
}

impl Setup {
    fn run(&self, args: &[&str]) -> (std::process::Output, Duration) {
        self.run_stdin(args, None)
    }
    fn run_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> (std::process::Output, Duration) {
        let cmd = backend_stage(&self.codex, self.home.path(), self.repo.path(), args);
        run_with_stdin(cmd, stdin, LIMIT)
    }
    fn assert_nothing_left(&self) {
        // The group is ended before xtask exits; give the kernel a moment to reap.
        std::thread::sleep(Duration::from_millis(200));
        let left = leftovers(self.home.path());
        assert!(left.is_empty(), "processes left behind: {left:#?}");
    }
}

#[test]
fn the_agent_writes_a_migration_and_the_handover_tells_its_story() {
    let Some(s) = setup(
        "stage-migration",
        vec![
            Reply::Turn(vec![shell("call_1", &write_migration_without_rls())]),
            Reply::Turn(vec![message(FINAL)]),
        ],
    ) else {
        return;
    };
    let (out, _) = s.run(&[
        "--task",
        "Add invoices.",
        "--skip-commands",
        "--live",
        "off",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(1),
        "checks cannot all pass: {stderr}\n{stdout}"
    );

    // The file is really there, written by codex's sandboxed command.
    let sql = std::fs::read_to_string(s.repo.path().join(MIGRATION)).unwrap();
    assert!(sql.starts_with("create table public.invoices ("), "{sql}");

    // Verified from evidence, not the agent's word: the table has no RLS.
    assert!(
        stdout.contains("- [ ] RLS policies active and tested — **failed:** not isolated by tenant: public.invoices"),
        "{stdout}"
    );
    // The finding, under its table.
    let table = stdout
        .split("**Table `public.invoices` — unprotected")
        .nth(1)
        .unwrap_or_else(|| panic!("no group for public.invoices:\n{stdout}"));
    assert!(
        table.contains(&format!("- `{MIGRATION}:1` **error** `rls-not-enabled`: ")),
        "{stdout}"
    );

    // The handover: the final message verbatim, the file as changed, the command with its
    // exit code, the token usage, and the cross-check (written by a command, not reported
    // as a file edit).
    assert!(stdout.contains(FINAL), "final message verbatim:\n{stdout}");
    assert!(
        stdout.contains(&format!("- `{MIGRATION}` (added)")),
        "{stdout}"
    );
    assert!(stdout.contains("— exit 0"), "{stdout}");
    assert!(stdout.contains("mkdir -p supabase/migrations"), "{stdout}");
    assert!(stdout.contains("Tokens (thread total): "), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "**Changed but not reported by the agent** (written by a command, or left out of its account): `{MIGRATION}`"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("#### Round 1 (the task) — exit code 0"),
        "{stdout}"
    );
    assert!(!stdout.contains("#### Round 2"), "no fix round asked for");
    assert!(stdout.contains("no fix round asked for"), "{stdout}");
    // The live view went to stderr as plain lines (not a terminal).
    assert!(stderr.contains("codex: $ "), "{stderr}");
    assert!(stderr.contains("codex:   → exit 0"), "{stderr}");
    assert!(
        stderr.contains(&format!("1 file(s) changed on disk: {MIGRATION}")),
        "{stderr}"
    );
    assert_eq!(s.server.requests().len(), 2);
    s.assert_nothing_left();
}

#[test]
fn the_users_uncommitted_changes_are_told_apart_and_kept() {
    let Some(s) = setup(
        "stage-dirty",
        vec![
            Reply::Turn(vec![shell("call_1", &write_migration_without_rls())]),
            Reply::Turn(vec![message("Done.")]),
        ],
    ) else {
        return;
    };
    let readme = s.repo.path().join("README.md");
    let mut mine = std::fs::read_to_string(&readme).unwrap();
    mine.push_str("\nA line of the user's, not committed.\n");
    std::fs::write(&readme, &mine).unwrap();
    std::fs::write(s.repo.path().join("NOTES.md"), "my notes\n").unwrap();

    let report = s.repo.path().join("../stage-dirty-report.json");
    let report_arg = report.display().to_string();
    let (out, _) = s.run(&[
        "--task",
        "Add invoices.",
        "--skip-commands",
        "--live",
        "off",
        "--format",
        "json",
        "--report",
        &report_arg,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report);
    // With --report the terminal gets the compact view, the agent's rounds included.
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("agent round 1: exit code 0, 1 command(s), 1 file(s) changed: Done."),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  changed but not reported by the agent: {MIGRATION}"
        )),
        "{stdout}"
    );
    let agent = &json["agent"];
    let pre: Vec<&str> = agent["preexisting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(pre, ["NOTES.md", "README.md"]);
    let round = &agent["rounds"][0];
    assert_eq!(
        round["changed_files"],
        serde_json::json!([MIGRATION]),
        "only the agent's file"
    );
    assert_eq!(round["user_files_touched"], serde_json::json!([]));
    // Nothing of the user's is lost: the files are as they were, and a copy was made.
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), mine);
    assert_eq!(
        std::fs::read_to_string(s.repo.path().join("NOTES.md")).unwrap(),
        "my notes\n"
    );
    let backup = std::path::PathBuf::from(agent["preexisting_backup"].as_str().unwrap());
    assert!(std::fs::read_to_string(backup.join("tracked.patch"))
        .unwrap()
        .contains("+A line of the user's, not committed."));
    assert_eq!(
        std::fs::read_to_string(backup.join("untracked/NOTES.md")).unwrap(),
        "my notes\n"
    );
    // verify saw both; the report says which are whose.
    let changed: Vec<&str> = json["changed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"README.md") && changed.contains(&MIGRATION),
        "{changed:?}"
    );
}

#[test]
fn a_model_server_error_is_exit_3_with_the_message() {
    let Some(s) = setup(
        "stage-500",
        vec![Reply::Status(
            500,
            r#"{"error":{"message":"the model fell over","type":"server_error"}}"#.into(),
        )],
    ) else {
        return;
    };
    let (out, took) = s.run(&[
        "--task",
        "Add invoices.",
        "--timeout",
        "60",
        "--skip-commands",
        "--live",
        "off",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(
        stderr.contains("xtask: failed: codex failed (exit code 1): "),
        "{stderr}"
    );
    assert!(
        stderr.contains("500"),
        "the server's status is named: {stderr}"
    );
    assert!(stderr.contains("events: "), "the log is named: {stderr}");
    assert!(
        text(&out.stdout).is_empty(),
        "no handover for a run that failed"
    );
    s.assert_nothing_left();
}

#[test]
fn a_hanging_model_server_is_exit_3_within_the_timeout() {
    let Some(s) = setup("stage-hang", vec![Reply::Hang]) else {
        return;
    };
    let (out, took) = s.run(&[
        "--task",
        "Add invoices.",
        "--timeout",
        "4",
        "--skip-commands",
        "--live",
        "off",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    // 4 s, plus at most the 2 s grace between SIGTERM and SIGKILL, plus start-up.
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(12),
        "took {took:?}"
    );
    assert!(
        stderr.contains("codex did not finish within 4s"),
        "{stderr}"
    );
    assert!(stderr.contains("whole process group was ended"), "{stderr}");
    s.assert_nothing_left();
}

#[test]
fn the_task_reaches_the_model_byte_for_byte() {
    let Some(s) = setup("stage-bytes", vec![Reply::Turn(vec![message("ok")])]) else {
        return;
    };
    // A canary under a HOME of our own: `$(rm -rf ~)` must stay text.
    let home = TempDir::new("stage-bytes-home");
    std::fs::write(home.path().join("canary"), "alive").unwrap();
    let mut task = String::from(
        "Add invoices. It's \"quoted\", `backticked`, $(rm -rf ~) and ${HOME}; echo pwned | sh && \\\n\
         {{task}} {{context}} — ünïcödé ✓\n",
    );
    let mut i = 0;
    while task.len() < 300_000 {
        task.push_str(&format!("line {i}: lorem ipsum 'a' \"b\" `c` $(d) \\e\n"));
        i += 1;
    }
    // The whole prompt is held to the budget (a longer task is cut, with a note): room for
    // this one, so it goes whole.
    let config = s.repo.path().join("xtask.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str("\n[prompt]\nbudget_bytes = 1000000\n");
    std::fs::write(&config, toml).unwrap();
    git(
        s.repo.path(),
        &["commit", "-q", "-am", "a larger prompt budget"],
    );
    let run = |args: &[&str]| {
        let mut cmd = backend_stage(&s.codex, s.home.path(), s.repo.path(), args);
        cmd.env("HOME", home.path());
        run_with_stdin(cmd, Some(task.as_bytes()), LIMIT).0
    };
    let printed = run(&["-", "--print-prompt"]);
    assert_eq!(printed.status.code(), Some(0), "{}", text(&printed.stderr));
    let prompt = text(&printed.stdout);
    assert!(
        prompt.contains(task.trim_end()),
        "the task is in the prompt, whole"
    );

    let out = run(&["-", "--skip-commands", "--live", "off"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let requests = s.server.requests();
    assert_eq!(requests.len(), 1);
    let texts = user_texts(&requests[0]);
    assert!(
        texts.contains(&prompt),
        "no user message equals the prompt byte for byte; user message sizes: {:?}, prompt: {}",
        texts.iter().map(String::len).collect::<Vec<_>>(),
        prompt.len()
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join("canary")).unwrap(),
        "alive"
    );
}

#[test]
fn a_fix_round_resumes_the_thread_with_the_failures() {
    let Some(s) = setup(
        "stage-fix",
        vec![
            Reply::Turn(vec![shell("call_1", &write_migration_without_rls())]),
            Reply::Turn(vec![message("Round one done.")]),
            Reply::Turn(vec![shell("call_2", &enable_rls())]),
            Reply::Turn(vec![message("Round two: fixed what was listed.")]),
        ],
    ) else {
        return;
    };
    let (out, _) = s.run(&[
        "--task",
        "Add invoices.",
        "--fix-rounds",
        "1",
        "--skip-commands",
        "--live",
        "off",
        "--format",
        "json",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let agent = &json["agent"];
    let rounds = agent["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "round 2 ran: {agent:#}");
    assert_eq!(rounds[1]["round"], 2);
    assert_eq!(rounds[0]["verify"]["clear"], false);
    assert_eq!(
        rounds[1]["final_message"],
        "Round two: fixed what was listed."
    );
    // The resumed thread could write in the repository (the sandbox is set on resume too).
    assert_eq!(rounds[1]["changed_files"], serde_json::json!([MIGRATION]));
    let sql = std::fs::read_to_string(s.repo.path().join(MIGRATION)).unwrap();
    assert!(
        sql.lines()
            .any(|l| l == "alter table public.invoices enable row level security;"),
        "{sql}"
    );
    assert!(rounds[1]["argv"]
        .as_array()
        .unwrap()
        .windows(2)
        .any(|w| w[0] == "exec" && w[1] == "resume"));
    assert_eq!(
        agent["stop_reason"],
        "checks did not pass after 1 fix round(s)"
    );

    // The third request is the resume: same thread (the first round's tool output is in its
    // history), and its new user message lists every item that did not pass in round 1
    // (the ones the user skipped aside).
    let requests = s.server.requests();
    assert_eq!(requests.len(), 4);
    let history = requests[2]["input"].to_string();
    assert!(history.contains("function_call_output"), "same thread");
    let resume = user_texts(&requests[2]).pop().unwrap();
    assert!(resume.contains("fix round 1 of 1"), "{resume}");
    let not_passed = rounds[0]["verify"]["not_passed"].as_array().unwrap();
    let checklist = rounds[0]["verify"]["checklist"].as_array().unwrap();
    let mut listed = 0;
    for entry in not_passed {
        let id = entry.as_str().unwrap().split(':').next().unwrap();
        if matches!(id, "lint" | "tests") {
            continue; // --skip-commands: the user's choice, not the agent's to fix
        }
        let item = checklist.iter().find(|i| i["id"] == id).unwrap();
        let line = format!(
            "- `{id}` {} — {}: {}",
            item["label"].as_str().unwrap(),
            if item["status"] == "fail" {
                "failed"
            } else {
                "unknown"
            },
            item["evidence"].as_str().unwrap()
        );
        assert!(resume.contains(&line), "missing {line:?} in:\n{resume}");
        listed += 1;
    }
    assert!(listed > 0, "something was listed: {not_passed:?}");
    for f in rounds[0]["verify"]["findings"].as_array().unwrap() {
        let rule = format!("`{}`", f["rule"].as_str().unwrap());
        assert!(resume.contains(&rule), "finding {f} in:\n{resume}");
        if let (Some(path), Some(line)) = (f["path"].as_str(), f["line"].as_u64()) {
            assert!(
                resume.contains(&format!("{path}:{line}")),
                "finding {f} in:\n{resume}"
            );
        }
    }
    assert!(!resume.contains("`lint`"), "{resume}");
    s.assert_nothing_left();
}

#[test]
fn print_prompt_needs_no_codex_and_names_missing_context() {
    let Some(repo) = example_repo("stage-print") else {
        return;
    };
    std::fs::remove_file(repo.path().join("docs/db/schema.md")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.current_dir(repo.path())
        .args([
            "backend-stage",
            "--task-file",
            "tasks/invoices.md",
            "--print-prompt",
        ])
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    let (out, _) = run_with_stdin(cmd, None, LIMIT);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "xtask: warning: docs/db/schema.md not found (prompt.schema_doc in xtask.toml)"
        ),
        "{stderr}"
    );
    let task = std::fs::read_to_string(repo.path().join("tasks/invoices.md")).unwrap();
    assert!(stdout.contains(task.trim_end()), "the task");
    assert!(stdout.contains("## 8. Data Model"), "agents.md section 8");
    assert!(stdout.contains("CreateProjectInput"), "contracts");
    assert!(
        stdout.contains("20250102000000_projects.sql`: creates public.projects"),
        "migrations"
    );
    assert!(
        stdout.contains("not available: docs/db/schema.md not found"),
        "said in the prompt"
    );
}

#[test]
fn a_missing_codex_is_exit_3_with_how_to_install_it() {
    let Some(repo) = example_repo("stage-nocodex") else {
        return;
    };
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.current_dir(repo.path())
        .args([
            "backend-stage",
            "--task",
            "Add invoices.",
            "--skip-commands",
        ])
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    let (out, _) = run_with_stdin(cmd, None, LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("`codex` not found"), "{stderr}");
    assert!(
        stderr.contains("npm install -g @openai/codex@0.169.0"),
        "{stderr}"
    );
    assert!(
        git(repo.path(), &["status", "--porcelain"]).is_empty(),
        "nothing touched"
    );
}

/// codex turns an `apply_patch` command into a `file_change` event: the agent's own account.
fn apply_patch(call_id: &str, path: &str, lines: &[&str]) -> serde_json::Value {
    let body: String = lines.iter().map(|l| format!("+{l}\n")).collect();
    shell(
        call_id,
        &format!("apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: {path}\n{body}*** End Patch\nEOF\n"),
    )
}

#[test]
fn the_agents_account_of_its_files_is_checked_against_the_disk() {
    const CONTRACT: &str = "packages/contracts/src/invoices.ts";
    let Some(s) = setup(
        "stage-crosscheck",
        vec![
            // Reported and real: a contract file. Reported, then undone by a command: scratch.
            Reply::Turn(vec![apply_patch(
                "call_1",
                CONTRACT,
                &[
                    "import { z } from \"zod\";",
                    "export const InvoiceIdParams = z.object({ id: z.string().uuid() });",
                ],
            )]),
            Reply::Turn(vec![apply_patch("call_2", "scratch.txt", &["temporary"])]),
            // Real but not reported: the migration, written by a shell command.
            Reply::Turn(vec![shell(
                "call_3",
                &format!("rm scratch.txt && {}", write_migration_without_rls()),
            )]),
            Reply::Turn(vec![message("Added the contract and the migration.")]),
        ],
    ) else {
        return;
    };
    let (out, _) = s.run(&[
        "--task",
        "Add invoices.",
        "--skip-commands",
        "--live",
        "off",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let round = &json["agent"]["rounds"][0];
    let claimed: Vec<(&str, &str)> = round["claimed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(claimed, [(CONTRACT, "add"), ("scratch.txt", "add")]);
    assert_eq!(
        round["changed_files"],
        serde_json::json!([CONTRACT, MIGRATION])
    );
    assert_eq!(
        round["claimed_not_changed"],
        serde_json::json!(["scratch.txt"])
    );
    assert_eq!(round["changed_not_claimed"], serde_json::json!([MIGRATION]));
    let commands = round["commands"].as_array().unwrap();
    assert!(
        commands.iter().any(
            |c| c["command"].as_str().unwrap().contains("rm scratch.txt") && c["exit_code"] == 0
        ),
        "{commands:?}"
    );
    assert!(s.repo.path().join(CONTRACT).is_file());
    assert!(!s.repo.path().join("scratch.txt").exists());
}

#[test]
fn no_verify_prints_only_the_agents_part() {
    let Some(s) = setup(
        "stage-noverify",
        vec![Reply::Turn(vec![message("Nothing needed changing.")])],
    ) else {
        return;
    };
    let (out, _) = s.run(&["--task", "Look around.", "--no-verify"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.starts_with("### Agent run"), "{stdout}");
    assert!(stdout.contains("Nothing needed changing."), "{stdout}");
    assert!(
        stdout.contains("Changed on disk during the round: none."),
        "{stdout}"
    );
    assert!(stdout.contains("Not verified (--no-verify)"), "{stdout}");
    assert!(!stdout.contains("Definition of done"), "{stdout}");
}

#[test]
fn a_fix_round_that_fails_to_run_is_exit_3_after_the_report_so_far() {
    let Some(s) = setup(
        "stage-fixfail",
        vec![
            Reply::Turn(vec![shell("call_1", &write_migration_without_rls())]),
            Reply::Turn(vec![message("Round one done.")]),
            Reply::Status(
                500,
                r#"{"error":{"message":"gone","type":"server_error"}}"#.into(),
            ),
        ],
    ) else {
        return;
    };
    let (out, _) = s.run(&[
        "--task",
        "Add invoices.",
        "--fix-rounds",
        "2",
        "--skip-commands",
        "--live",
        "off",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("codex failed (exit code 1)"), "{stderr}");
    // The handover of what round 1 achieved is still printed, with the failed round in it.
    assert!(stdout.contains("### Definition of done"), "{stdout}");
    assert!(stdout.contains("Round one done."), "{stdout}");
    assert!(
        stdout.contains("#### Round 2 (fix round 1) — exit code 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Stopped: round 2 failed to run: codex failed (exit code 1)"),
        "{stdout}"
    );
    assert_eq!(s.server.requests().len(), 3, "no round 3 after a failure");
    s.assert_nothing_left();
}

#[test]
fn ctrl_c_ends_codex_and_everything_it_started() {
    let Some(s) = setup("stage-sigint", vec![Reply::Hang]) else {
        return;
    };
    let mut cmd = backend_stage(
        &s.codex,
        s.home.path(),
        s.repo.path(),
        &[
            "--task",
            "Add invoices.",
            "--timeout",
            "120",
            "--skip-commands",
            "--live",
            "off",
        ],
    );
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Wait until codex is talking to the (hanging) model, then press Ctrl-C.
    let start = std::time::Instant::now();
    while s.server.requests().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "codex never called the model"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!leftovers(s.home.path()).is_empty(), "codex is running");
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let signalled = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "{:?}",
        signalled.elapsed()
    );
    assert!(
        stderr.contains("interrupted: codex and its process group were ended"),
        "{stderr}"
    );
    s.assert_nothing_left();
}

#[test]
fn contradictory_options_stop_before_the_agent_runs() {
    let Some(repo) = example_repo("stage-usage") else {
        return;
    };
    let stage = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.current_dir(repo.path())
            .arg("backend-stage")
            .args(args)
            // No codex on PATH: reaching the agent would be exit 3, not 2.
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env_remove("GITHUB_ACTIONS");
        run_with_stdin(cmd, None, LIMIT).0
    };
    for (args, says) in [
        (
            &["--task", "x", "--no-verify", "--fix-rounds", "1"][..],
            "--fix-rounds needs verification",
        ),
        (
            &["--task", "x", "--timeout", "0"][..],
            "--timeout must be at least 1 second",
        ),
        (&["--task", "   "][..], "the task is empty"),
        (&[][..], "no task: give it with --task TEXT"),
        (
            &["--task-file", "no/such/file.md"][..],
            "--task-file no/such/file.md: cannot read it",
        ),
    ] {
        let out = stage(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // --print-prompt does not care about report options.
    let out = stage(&["--task", "x", "--format", "sarif", "--print-prompt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_fix_round_gives_the_agent_the_real_lint_output_and_lint_then_passes() {
    let Some(codex) = codex() else {
        return;
    };
    let Some((repo, pnpm)) = common::example_with_node_modules("stage-lint") else {
        return;
    };
    const SLOPPY: &str = "apps/api/src/server/sloppy.ts";
    let server = ModelServer::start(
        vec![
            Reply::Turn(vec![shell(
                "call_1",
                &format!(
                    "printf '%s\\n' 'export function sloppy(x: any) {{' '  return x;' '}}' > {SLOPPY}"
                ),
            )]),
            Reply::Turn(vec![message("Added a helper.")]),
            Reply::Turn(vec![shell(
                "call_2",
                &format!(
                    "printf '%s\\n' 'export function sloppy(x: unknown): unknown {{' '  return x;' '}}' > {SLOPPY}"
                ),
            )]),
            Reply::Turn(vec![message("Typed the helper.")]),
        ],
        Duration::from_secs(600),
    );
    let home = codex_home(server.port);
    let mut cmd = backend_stage(
        &codex,
        home.path(),
        repo.path(),
        &[
            "--task",
            "Add a helper.",
            "--fix-rounds",
            "1",
            "--live",
            "off",
            "--format",
            "json",
        ],
    );
    cmd.env("XTASK_PNPM", &pnpm)
        .env(
            "npm_config_store_dir",
            common::workspace().join("target/xtask-cache/pnpm-store"),
        )
        .env("npm_config_manage_package_manager_versions", "false");
    let (out, _) = run_with_stdin(cmd, None, Duration::from_secs(600));
    let stderr = text(&out.stderr);
    // No migration or route changed (their items are not applicable), lint is fixed in
    // round 2 and the tests pass: every item is decided from evidence, so exit 0.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("json report");
    for id in [
        "tenant_id",
        "rls",
        "migration",
        "auth",
        "contracts",
        "rate_limit",
    ] {
        assert_eq!(common::item(&json, id)["status"], "not_applicable", "{id}");
    }
    let rounds = json["agent"]["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{:#}", json["agent"]);
    let lint_after = |round: &Value| {
        round["verify"]["checklist"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "lint")
            .map(|i| i["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(lint_after(&rounds[0]), "fail");
    assert_eq!(
        lint_after(&rounds[1]),
        "pass",
        "the agent's fix made lint pass"
    );
    assert_eq!(common::item(&json, "lint")["status"], "pass");

    // The resume prompt carried the failing lint command and the tail of ESLint's output.
    let requests = server.requests();
    let resume = user_texts(&requests[2]).pop().unwrap();
    assert!(resume.contains("## Failing commands"), "{resume}");
    assert!(resume.contains("--filter api lint` — exit 1"), "{resume}");
    assert!(resume.contains(SLOPPY), "ESLint names the file: {resume}");
    assert!(
        resume.contains("no-explicit-any"),
        "ESLint's rule: {resume}"
    );
    assert!(resume.contains("- `lint` "), "the failing item: {resume}");
}

const CONTRACT: &str = "packages/contracts/src/invoices.ts";
const ROUTE: &str = "apps/api/src/app/api/invoices/route.ts";

const CONTRACT_TS: &str = r#"import { z } from "zod";

import { Pagination, Timestamp, Uuid } from "./common";

/** A row of `public.invoices` as returned by the API. */
export const Invoice = z.object({
  id: Uuid,
  tenant_id: Uuid,
  amount_cents: z.number().int().nonnegative(),
  created_at: Timestamp,
});
export type Invoice = z.infer<typeof Invoice>;

/** Body of `POST /api/invoices`. */
export const CreateInvoiceInput = z
  .object({ amount_cents: z.number().int().nonnegative() })
  .strict();
export type CreateInvoiceInput = z.infer<typeof CreateInvoiceInput>;

/** Query string of `GET /api/invoices`. */
export const ListInvoicesQuery = Pagination;
export type ListInvoicesQuery = z.infer<typeof ListInvoicesQuery>;
"#;

const ROUTE_TS: &str = r#"import { CreateInvoiceInput, ListInvoicesQuery } from "@dashboard/contracts";
import type { NextRequest } from "next/server";

import { badRequest, json, serverError } from "@/server/http";
import { withAuth } from "@/server/middleware/auth";

const INVOICE_COLUMNS = "id, tenant_id, amount_cents, created_at";

/** GET /api/invoices — the tenant's invoices, newest first. */
export async function GET(req: NextRequest) {
  return withAuth(req, async ({ supabase, tenantId }) => {
    const query = ListInvoicesQuery.parse(Object.fromEntries(req.nextUrl.searchParams));
    const { data, error } = await supabase
      .from("invoices")
      .select(INVOICE_COLUMNS)
      .eq("tenant_id", tenantId)
      .order("created_at", { ascending: false })
      .range(query.offset, query.offset + query.limit - 1);
    if (error) {
      return serverError(error);
    }
    return json({ data });
  });
}

/** POST /api/invoices — add an invoice to the caller's tenant. */
export async function POST(req: NextRequest) {
  return withAuth(req, async ({ supabase, tenantId }) => {
    const input = CreateInvoiceInput.safeParse(await req.json().catch(() => null));
    if (!input.success) {
      return badRequest(input.error);
    }
    const { data, error } = await supabase
      .from("invoices")
      .insert({ ...input.data, tenant_id: tenantId })
      .select(INVOICE_COLUMNS)
      .single();
    if (error) {
      return serverError(error);
    }
    return json({ data }, 201);
  });
}
"#;

/// One shell command that writes the contract, exports it, writes the route, and writes the
/// migration — with its RLS and tenant policies when `rls`.
fn write_invoices_feature(rls: bool) -> String {
    let mut cmd = format!(
        "mkdir -p apps/api/src/app/api/invoices && cat > {CONTRACT} <<'XTASK_EOF'\n{CONTRACT_TS}XTASK_EOF\n\
         printf '%s\\n' 'export * from \"./invoices\";' >> packages/contracts/src/index.ts\n\
         cat > {ROUTE} <<'XTASK_EOF'\n{ROUTE_TS}XTASK_EOF\n{}",
        write_migration_without_rls()
    );
    if rls {
        cmd.push_str(" && ");
        cmd.push_str(&enable_rls());
    }
    cmd
}

fn postgres_here() -> bool {
    xtask::gather::live::cluster::find_program("initdb").is_some()
        || common::unavailable::<()>("no Postgres binaries (initdb)").is_some()
}

/// The whole stage for real: codex writes the feature, then lint (ESLint), tests (vitest) and
/// the live Postgres check decide the boxes.
fn full_stage(
    name: &str,
    script: Vec<Reply>,
    args: &[&str],
) -> Option<(std::process::Output, ModelServer)> {
    if !postgres_here() {
        return None;
    }
    let codex = codex()?;
    let (repo, pnpm) = common::example_with_node_modules(name)?;
    let server = ModelServer::start(script, Duration::from_secs(900));
    let home = codex_home(server.port);
    let mut cmd = backend_stage(&codex, home.path(), repo.path(), args);
    cmd.env("XTASK_PNPM", &pnpm)
        .env(
            "npm_config_store_dir",
            common::workspace().join("target/xtask-cache/pnpm-store"),
        )
        .env("npm_config_manage_package_manager_versions", "false");
    let (out, _) = run_with_stdin(cmd, None, Duration::from_secs(900));
    let left = leftovers(home.path());
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    drop(repo);
    Some((out, server))
}

#[test]
fn a_correct_feature_ticks_every_box_from_evidence() {
    const DONE: &str = "Added invoices: migration with RLS and four tenant policies, \
        `CreateInvoiceInput` / `ListInvoicesQuery` in packages/contracts, and `GET`/`POST /api/invoices` behind `withAuth`.";
    let Some((out, server)) = full_stage(
        "stage-correct",
        vec![
            Reply::Turn(vec![shell("call_1", &write_invoices_feature(true))]),
            Reply::Turn(vec![message(DONE)]),
        ],
        &["--task", "Add invoices.", "--live", "on"],
    ) else {
        return;
    };
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    for label in [
        "- [x] pnpm --filter api lint passes (0 errors)",
        "- [x] pnpm test:api passes",
        "- [x] tenant_id present on all new/modified tables",
        "- [x] RLS policies active and tested",
        "- [x] Zod schemas defined in packages/contracts/",
        "- [x] Auth middleware applied to all endpoints",
        "- [x] Migration file created and tested",
    ] {
        assert!(stdout.contains(label), "{label} in:\n{stdout}");
    }
    assert!(
        stdout.contains("proved live (throwaway Postgres"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| `public.invoices` | protected | yes (yes) | yes | 4 (4) | yes | live |"),
        "{stdout}"
    );
    assert!(
        stdout.contains(DONE),
        "the final message verbatim:\n{stdout}"
    );
    assert!(stdout.contains(&format!("`{ROUTE}`")), "{stdout}");
    assert!(
        stdout.contains("packages/contracts/src/invoices.ts: CreateInvoiceInput"),
        "new schemas listed:\n{stdout}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_fix_round_turns_a_failing_migration_into_a_clean_pass() {
    let Some((out, server)) = full_stage(
        "stage-fix-live",
        vec![
            Reply::Turn(vec![shell("call_1", &write_invoices_feature(false))]),
            Reply::Turn(vec![message("Round one done.")]),
            Reply::Turn(vec![shell("call_2", &enable_rls())]),
            Reply::Turn(vec![message(
                "Round two: RLS and the tenant policies added.",
            )]),
        ],
        &[
            "--task",
            "Add invoices.",
            "--fix-rounds",
            "2",
            "--live",
            "on",
            "--format",
            "json",
        ],
    ) else {
        return;
    };
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "exit 0 after round 2: {stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let rounds = json["agent"]["rounds"].as_array().unwrap();
    assert_eq!(
        rounds.len(),
        2,
        "no third round once clean: {:#}",
        json["agent"]
    );
    assert_eq!(rounds[0]["verify"]["clear"], false);
    assert!(
        rounds[0]["verify"]["not_passed"]
            .as_array()
            .unwrap()
            .contains(&Value::from("rls: fail")),
        "{:#}",
        rounds[0]["verify"]
    );
    assert_eq!(
        rounds[1]["verify"]["clear"], true,
        "{:#}",
        rounds[1]["verify"]
    );
    for id in [
        "lint",
        "tests",
        "tenant_id",
        "rls",
        "contracts",
        "auth",
        "migration",
    ] {
        assert_eq!(common::item(&json, id)["status"], "pass", "{id}: {json:#}");
    }
    assert_eq!(
        common::item(&json, "rate_limit")["status"],
        "not_applicable"
    );

    // The resume request carried the finding, with its file and line.
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let resume = user_texts(&requests[2]).pop().unwrap();
    assert!(resume.contains("rls-not-enabled"), "{resume}");
    assert!(resume.contains(&format!("{MIGRATION}:1")), "{resume}");
}
