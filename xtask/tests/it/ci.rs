//! The CI integration: the GitHub Actions log guard on a real run, the workflow and hook
//! manager files (YAML, actionlint), `install-hooks` in temporary repositories, and the
//! installed pre-push hook stopping a real `git push`.

use crate::common;

use std::{path::Path, process::Command};

use common::*;

/// What the runner acts on and what it leaves inert; every block's token must be unguessable.
fn runner_view(log: &str) -> (Vec<String>, Vec<String>) {
    let v = common::runner_view(log);
    for token in &v.tokens {
        assert!(token.len() >= 16, "a guessable token: {token}");
    }
    (v.commands, v.inert)
}

const EVIL_LINT: &str = r#"[commands]
lint = ["sh", "-c", "echo '::error::pwned'; echo '::add-mask::x'; echo 'lint ok'"]
test = ["sh", "-c", "echo '  ::warning file=a::pwned-too' >&2; echo ' Tests  1 passed (1)'"]
"#;

#[test]
fn child_output_cannot_issue_workflow_commands() {
    let t = git_repo("ci-inject", &[("xtask.toml", EVIL_LINT)]);
    let summary = t.path().join("summary.md");
    let mut cmd = xtask(t.path(), &["verify", "--all", "--live", "off"]);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env_remove("XTASK_GITHUB");
    let r = run(cmd);
    assert!(matches!(r.code, 0 | 1), "{}", r.stderr);

    let (commands, inert) = runner_view(&r.stderr);
    assert!(
        inert.iter().any(|l| l.contains("::error::pwned")),
        "the child ran and its line is in the log, inside the block:\n{}",
        r.stderr
    );
    assert!(
        inert.iter().any(|l| l.contains("pwned-too")),
        "{}",
        r.stderr
    );
    for l in r
        .stderr
        .lines()
        .filter(|l| l.contains("pwned") || l.contains("add-mask"))
    {
        assert!(
            inert.iter().any(|i| i == l),
            "outside a stop-commands block: {l}\n{}",
            r.stderr
        );
    }
    assert!(
        commands
            .iter()
            .all(|c| c.starts_with("::group::") || c == "::endgroup::"),
        "only our groups on stderr: {commands:?}"
    );
    assert!(commands
        .iter()
        .any(|c| c == "::group::running lint and tests"));

    // GITHUB_ACTIONS picks the github format: annotations on stdout, none of them the child's.
    let (commands, _) = runner_view(&r.stdout);
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("::group::Backend handover")),
        "{}",
        r.stdout
    );
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("::warning file=supabase/migrations,")),
        "the finding is annotated: {}",
        r.stdout
    );
    assert!(
        !commands.iter().any(|c| c.contains("pwned")),
        "{commands:?}"
    );
    // The whole handover went to the step summary.
    let md = std::fs::read_to_string(&summary).expect("a step summary");
    assert!(md.contains("lint"), "{md}");
    assert!(md.len() > 500, "{md}");

    // XTASK_GITHUB=0: the markdown handover instead of annotations, but in Actions the log
    // stays guarded: the handover quotes the lint output, and that is inert too.
    let mut cmd = xtask(t.path(), &["verify", "--all", "--live", "off"]);
    cmd.env("GITHUB_ACTIONS", "true").env("XTASK_GITHUB", "0");
    let r = run(cmd);
    let (commands, inert) = runner_view(&r.stdout);
    assert!(commands.is_empty(), "{commands:?}");
    assert!(
        inert
            .iter()
            .any(|l| l.contains("## 6. Backend → Code Review")),
        "{}",
        r.stdout
    );
    let (_, inert) = runner_view(&r.stderr);
    assert!(
        inert.iter().any(|l| l.contains("::error::pwned")),
        "{}",
        r.stderr
    );

    // Into a file (`> handover.md`), the markdown stays plain: the file is not the log.
    let file = t.path().join("handover.md");
    let mut cmd = xtask(t.path(), &["verify", "--all", "--live", "off"]);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("XTASK_GITHUB", "0")
        .stdout(std::fs::File::create(&file).unwrap());
    run(cmd);
    let md = std::fs::read_to_string(&file).unwrap();
    assert!(md.starts_with("## 6. Backend → Code Review"), "{md}");
    assert!(!md.contains("::stop-commands::"), "{md}");
}

#[test]
fn asked_for_outside_actions_the_format_is_github_too() {
    let t = git_repo("ci-asked", &[("xtask.toml", EVIL_LINT)]);
    let r = run(xtask(
        t.path(),
        &["verify", "--all", "--live", "off", "--format", "github"],
    ));
    let (_, inert) = runner_view(&r.stderr);
    assert!(
        inert.iter().any(|l| l.contains("::error::pwned")),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.starts_with("::group::Backend handover"),
        "{}",
        r.stdout
    );
}

// ---- the CI files ----

fn python_yaml(pythonpath: &Path, script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .current_dir(workspace())
        .env("PYTHONPATH", pythonpath)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ci_files_parse_as_yaml_and_say_what_they_promise() {
    let Some((pythonpath, _)) = ci_tools() else {
        return;
    };
    let out = python_yaml(
        &pythonpath,
        r#"
import yaml
wf = yaml.safe_load(open("ci/github/backend-verify.yml"))
on = wf.get("on", wf.get(True))
paths = on["pull_request"]["paths"]
for p in ("supabase/migrations/**", "apps/api/**", "packages/contracts/**"):
    assert p in paths, p
job = wf["jobs"]["verify"]
assert "postgres" in job["services"], job
steps = job["steps"]
checkout = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")][0]
assert checkout["with"]["fetch-depth"] == 0
assert any(s.get("uses", "").startswith("actions/cache@") for s in steps)
assert any(s.get("uses", "").startswith("pnpm/action-setup@") for s in steps)
assert any("pnpm install --frozen-lockfile" in s.get("run", "") for s in steps)
run = [s for s in steps if "cargo xtask verify" in s.get("run", "")][0]
assert "--format github" in run["run"] and '--base "origin/$BASE_REF"' in run["run"], run
assert run["env"]["BASE_REF"] == "${{ github.base_ref }}"
lh = yaml.safe_load(open("ci/lefthook.yml"))
assert "check-migrations" in lh["pre-commit"]["commands"]["check-migrations"]["run"]
assert "ci/hooks/pre-push" in lh["pre-push"]["commands"]["backend-verify"]["run"]
hooks = yaml.safe_load(open(".pre-commit-hooks.yaml"))
ids = {h["id"]: h for h in hooks}
for h in hooks:
    for key in ("id", "name", "entry", "language"):
        assert key in h, (key, h)
assert ids["xtask-check-migrations"]["entry"] == "cargo xtask check-migrations"
assert ids["xtask-pre-push"]["stages"] == ["pre-push"]
print("ok")
"#,
    );
    assert_eq!(out, "ok\n");
}

#[test]
fn the_workflow_passes_actionlint() {
    let Some((_, actionlint)) = ci_tools() else {
        return;
    };
    let wf = workspace().join("ci/github/backend-verify.yml");
    let lint = |path: &Path| {
        Command::new(&actionlint)
            .arg("-no-color")
            .arg(path)
            .output()
            .unwrap()
    };
    let out = lint(&wf);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The linter really looks: a misspelt input and an injectable expression are caught.
    let t = TempDir::new("ci-actionlint");
    let text = std::fs::read_to_string(&wf).unwrap();
    let broken = text
        .replace("fetch-depth: 0", "fetch-depht: 0")
        .replace("\"origin/$BASE_REF\"", "origin/${{ github.head_ref }}");
    assert_ne!(broken, text);
    let bad = t.path().join("broken.yml");
    std::fs::write(&bad, broken).unwrap();
    let out = lint(&bad);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("fetch-depht"), "{said}");
    assert!(said.contains("github.head_ref"), "{said}");
}

#[test]
fn the_shipped_hook_is_valid_sh() {
    let hook = workspace().join("ci/hooks/pre-push");
    let out = Command::new("sh").arg("-n").arg(&hook).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&hook).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "executable as committed");
}

// ---- install-hooks ----

fn install(repo: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["install-hooks", "--repo"];
    let p = repo.to_str().unwrap();
    args.push(p);
    args.extend(extra);
    run(xtask(repo, &args))
}

const FOREIGN: &str = "#!/bin/sh\necho the team's own hook\n";

#[test]
fn install_reinstall_foreign_force_uninstall() {
    let t = git_repo("hooks-cycle", &[("README.md", "x\n")]);
    let hook = t.path().join(".git/hooks/pre-push");
    let backup = t.path().join(".git/hooks/pre-push.xtask-backup");

    let r = install(t.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("installed the pre-push hook"),
        "{}",
        r.stdout
    );
    let text = std::fs::read_to_string(&hook).unwrap();
    assert!(text.contains("# xtask-managed-hook: pre-push"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&hook).unwrap().permissions().mode() & 0o111,
        0o111
    );

    // Again: nothing changes.
    let r = install(t.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("already installed"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), text);

    // Uninstall with nothing backed up: gone.
    let r = install(t.path(), &["--uninstall"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!hook.exists());

    // A team's own hook is never replaced without --force.
    std::fs::write(&hook, FOREIGN).unwrap();
    let r = install(t.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), FOREIGN);
    assert!(!backup.exists());
    // ... nor removed by --uninstall.
    let r = install(t.path(), &["--uninstall"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), FOREIGN);

    // --force keeps it as a backup.
    let r = install(t.path(), &["--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("kept as"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), FOREIGN);
    assert!(std::fs::read_to_string(&hook)
        .unwrap()
        .contains("# xtask-managed-hook: pre-push"));
    // Reinstalling over our own hook keeps the backup as it is.
    let r = install(t.path(), &["--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), FOREIGN);

    // --uninstall puts the team's hook back.
    let r = install(t.path(), &["--uninstall"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("restored"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), FOREIGN);
    assert!(!backup.exists());
}

#[test]
fn install_follows_core_hooks_path() {
    let t = git_repo("hooks-path", &[("README.md", "x\n")]);
    git(t.path(), &["config", "core.hooksPath", ".githooks"]);
    let sub = t.path().join("nested/dir");
    std::fs::create_dir_all(&sub).unwrap();
    // From a subdirectory, without --repo.
    let r = run(xtask(&sub, &["install-hooks"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t.path().join(".githooks/pre-push").is_file());
    assert!(!t.path().join(".git/hooks/pre-push").exists());
    assert!(!sub.join(".githooks").exists());
}

#[test]
fn install_outside_a_repository_is_exit_2() {
    let t = TempDir::outside_git("hooks-norepo");
    let r = run(xtask(t.path(), &["install-hooks"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
}

// ---- the hook on a real push ----

const INIT: &str = "create table tenants (id uuid primary key);\n\
create table docs (id uuid primary key, tenant_id uuid not null references tenants(id));\n\
create index on docs (tenant_id);\n\
alter table docs enable row level security;\n\
create policy docs_tenant on docs for all using (tenant_id = get_current_tenant_id());\n";

const NO_RLS: &str =
    "create table notes (id uuid primary key, tenant_id uuid not null references tenants(id));\n\
create index on notes (tenant_id);\n";

fn push(repo: &Path) -> Run {
    push_with(repo, &[])
}

fn push_with(repo: &Path, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("git");
    cmd.envs(env.iter().copied());
    cmd.current_dir(repo)
        .args(["push", "-q", "origin", "HEAD:refs/heads/feature"])
        .env("XTASK_BIN", env!("CARGO_BIN_EXE_xtask"))
        .env_remove("GITHUB_ACTIONS")
        .env("XTASK_NO_SPINNER", "1")
        .env("NO_COLOR", "1");
    let mut r = run(cmd);
    // git shows what a hook prints on either stream; keep it in one place.
    r.stderr = format!("{}{}", r.stdout, r.stderr);
    r
}

#[test]
fn the_installed_hook_stops_a_push_with_an_unprotected_table() {
    let t = git_repo(
        "hooks-push",
        &[
            ("supabase/migrations/0001_init.sql", INIT),
            (
                "xtask.toml",
                "[commands]\nlint = \"true\"\ntest = \"true\"\n",
            ),
        ],
    );
    let remote = TempDir::new("hooks-push-remote");
    git(remote.path(), &["init", "-q", "--bare"]);
    git(
        t.path(),
        &["remote", "add", "origin", remote.path().to_str().unwrap()],
    );
    git(t.path(), &["push", "-q", "origin", "main"]);
    let r = install(t.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The tool's workspace is not this repository: the hook names it.
    let installed = std::fs::read_to_string(t.path().join(".git/hooks/pre-push")).unwrap();
    assert!(
        installed.contains(&format!("workspace_default='{}'\n", workspace().display())),
        "{installed}"
    );

    git(t.path(), &["checkout", "-q", "-b", "feature"]);
    write(t.path(), "supabase/migrations/0002_notes.sql", NO_RLS);
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", "notes"]);
    let r = push(t.path());
    assert_ne!(r.code, 0, "the push went through:\n{}", r.stderr);
    assert!(r.stderr.contains("rls-not-enabled"), "{}", r.stderr);
    assert!(r.stderr.contains("push stopped"), "{}", r.stderr);

    // Fixed: the push goes through (lint and tests are not run by the quick hook).
    write(
        t.path(),
        "supabase/migrations/0002_notes.sql",
        &format!("{NO_RLS}alter table notes enable row level security;\n\
                  create policy notes_tenant on notes for all using (tenant_id = get_current_tenant_id());\n"),
    );
    git(t.path(), &["commit", "-q", "-am", "rls"]);
    let r = push(t.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("xtask pre-push: route checks"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_hook_stops_a_push_when_there_is_no_base_to_compare_with() {
    // A repository whose only branch is not a default branch, pushing a new branch: nothing
    // to compare with. Before, the base silently became HEAD and nothing was checked.
    let t = git_repo(
        "hooks-nobase",
        &[("supabase/migrations/0001_init.sql", INIT)],
    );
    git(t.path(), &["branch", "-q", "-m", "main", "work"]);
    write(t.path(), "supabase/migrations/0002_notes.sql", NO_RLS);
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", "notes"]);
    let remote = TempDir::new("hooks-nobase-remote");
    git(remote.path(), &["init", "-q", "--bare"]);
    git(
        t.path(),
        &["remote", "add", "origin", remote.path().to_str().unwrap()],
    );
    let r = install(t.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = push(t.path());
    assert_ne!(r.code, 0, "the push went through:\n{}", r.stderr);
    assert!(r.stderr.contains("could not run (exit 2)"), "{}", r.stderr);
    assert!(r.stderr.contains("--base <ref>"), "{}", r.stderr);
}
