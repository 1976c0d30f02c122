//! Hostile migrations against the live check (issue 11): they cannot escape the database
//! (no shell, no files, no superuser left behind, no COMMIT smuggled past the splitter), hang
//! it (deadlines and Ctrl-C reach the server), or fool it (tables of the base are context,
//! not subjects).
//!
//! Needs the Postgres binaries: skipped with a printed reason when they are missing, except
//! in CI (`CI=true`), where that fails.

use crate::common;
use crate::live::{example_with, findings, postgres_here, server, snapshot, table, wait_idle};

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use common::{copy_tree, git, item, run_json, workspace, xtask, TempDir};
use postgres::NoTls;

fn verify_all(repo: &Path, extra: &[&str]) -> (common::Run, serde_json::Value) {
    let mut args = vec![
        "verify",
        "--repo",
        repo.to_str().unwrap(),
        "--all",
        "--skip-commands",
        "--format",
        "json",
        "--live",
        "on",
    ];
    args.extend_from_slice(extra);
    run_json(xtask(&workspace(), &args))
}

/// A git repository holding the example (and `base` files) committed as `main`, with
/// `change` written on top, uncommitted: what is new is exactly `change`.
fn repo_with_change(name: &str, base: &[(&str, &str)], change: &[(&str, &str)]) -> TempDir {
    let t = TempDir::new(name);
    copy_tree(&workspace().join("examples/dashboard"), t.path());
    for (rel, text) in base {
        common::write(t.path(), rel, text);
    }
    git(t.path(), &["init", "-q", "-b", "main"]);
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", "base"]);
    for (rel, text) in change {
        common::write(t.path(), rel, text);
    }
    t
}

fn verify_change(repo: &Path) -> (common::Run, serde_json::Value) {
    let args = [
        "verify",
        "--repo",
        repo.to_str().unwrap(),
        "--base",
        "main",
        "--skip-commands",
        "--format",
        "json",
        "--live",
        "on",
    ];
    run_json(xtask(&workspace(), &args))
}

fn table_names(json: &serde_json::Value) -> Vec<String> {
    json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

const CLEAN_NOTES: &str = "create table public.notes (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  body text not null
);
create index notes_tenant_id_idx on public.notes (tenant_id);
alter table public.notes enable row level security;
create policy notes_all on public.notes for all to authenticated
  using (tenant_id = public.get_current_tenant_id())
  with check (tenant_id = public.get_current_tenant_id());
";

/// A legacy table of the base (no tenant column, no RLS) beside a clean change: the change
/// is judged, the legacy table is context.
#[test]
fn a_legacy_table_of_the_base_is_not_judged_live() {
    if !postgres_here() {
        return;
    }
    let t = repo_with_change(
        "legacy-beside-clean",
        &[(
            "supabase/migrations/20250104000000_legacy.sql",
            "create table public.audit_log (id bigint generated always as identity primary key, line text);\n",
        )],
        &[("supabase/migrations/20250201000000_notes.sql", CLEAN_NOTES)],
    );
    let (_, json) = verify_change(t.path());
    assert_eq!(table_names(&json), ["public.notes"], "{json:#}");
    assert_eq!(table(&json, "public.notes")["source"], "live", "{json:#}");
    for id in ["tenant_id", "rls", "migration"] {
        assert_eq!(item(&json, id)["status"], "pass", "{id}: {json:#}");
    }
    let rls = item(&json, "rls")["evidence"].as_str().unwrap();
    assert!(rls.contains("1 table(s)"), "{rls}");
}

/// An index-only change proves no table live that the change did not touch.
#[test]
fn an_index_only_change_proves_no_untouched_table_live() {
    if !postgres_here() {
        return;
    }
    let t = repo_with_change(
        "index-only",
        &[],
        &[(
            "supabase/migrations/20250201000000_index.sql",
            "create index projects_name_idx on public.projects (name);\n",
        )],
    );
    let (_, json) = verify_change(t.path());
    let names = table_names(&json);
    assert!(
        !names
            .iter()
            .any(|n| n == "public.documents" || n == "public.tenant_members"),
        "untouched tables judged: {names:?}: {json:#}"
    );
    let rls = item(&json, "rls")["evidence"].as_str().unwrap();
    assert!(!rls.contains("3 table(s)"), "{rls}");
}

/// A path the server's account can write, that must not appear.
fn proof_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("xtask-proof-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// `copy ... from program` and `copy ... to 'file'` run as the migration role, which may do
/// neither: no command runs, no file is written, and the finding names the line.
#[test]
fn a_migration_cannot_run_a_shell_command_or_write_a_file() {
    if !postgres_here() {
        return;
    }
    let program = proof_path("program");
    let file = proof_path("file");
    let sql = format!(
        "create table public.scratch (line text);\n\ncopy public.scratch from program 'touch {}';\ncopy (select 1) to '{}';\nselect pg_read_file('/etc/hostname');\nselect lo_import('/etc/hostname');\n",
        program.display(),
        file.display()
    );
    let rel = "supabase/migrations/20250201000000_shell.sql";
    let t = example_with("shell", &[(rel, &sql)]);
    let (r, json) = verify_all(t.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        !program.exists(),
        "the shell command ran: {}",
        program.display()
    );
    assert!(!file.exists(), "the file was written: {}", file.display());
    let failed: Vec<(String, u64)> = findings(&json, "migration-apply-failed")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        [3, 4, 5, 6].map(|l| (rel.to_string(), l)),
        "{json:#}"
    );
    assert_eq!(item(&json, "migration")["status"], "fail", "{json:#}");
}

/// The ways back to the superuser are closed: `RESET ROLE` and `SET SESSION AUTHORIZATION`
/// (in a `DO` block too), making the check's wrapper SECURITY INVOKER, and a trigger that the
/// probe's fixture rows set off. Each would end in a shell command; none runs.
#[test]
fn a_migration_cannot_become_the_superuser_again() {
    if !postgres_here() {
        return;
    }
    let proofs: Vec<_> = (1..=5).map(|i| proof_path(&format!("escape{i}"))).collect();
    let copy = |i: usize| {
        format!(
            "copy public.scratch from program 'touch {}'",
            proofs[i].display()
        )
    };
    let sql = format!(
        "create table public.scratch (line text);
reset role; {c0};
do $$ begin execute 'reset session authorization'; execute $q${c1}$q$; end $$;
do $$ begin perform set_config('role', 'none', false); execute $q${c2}$q$; end $$;
alter function xtask_live.apply(text) security invoker;
{c3};
create table public.trap (id uuid primary key default gen_random_uuid(), tenant_id uuid not null references public.tenants (id));
create index on public.trap (tenant_id);
alter table public.trap enable row level security;
create policy trap_all on public.trap for all to authenticated using (tenant_id = public.get_current_tenant_id());
create function public.trap_fire() returns trigger language plpgsql as $$
begin
  begin execute 'reset role'; exception when others then null; end;
  execute $q${c4}$q$;
  return new;
end $$;
create trigger trap_fire before insert on public.trap for each row execute function public.trap_fire();
",
        c0 = copy(0),
        c1 = copy(1),
        c2 = copy(2),
        c3 = copy(3),
        c4 = copy(4),
    );
    let rel = "supabase/migrations/20250201000000_escape.sql";
    let t = example_with("escape", &[(rel, &sql)]);
    let (r, json) = verify_all(t.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for p in &proofs {
        assert!(
            !p.exists(),
            "a shell command ran: {}: {json:#}",
            p.display()
        );
    }
    let lines: Vec<u64> = findings(&json, "migration-apply-failed")
        .iter()
        .filter(|f| f["path"] == rel)
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    for line in [2, 3, 4, 5, 6] {
        assert!(lines.contains(&line), "line {line}: {json:#}");
    }
    // The trap's fixture row could not be made: the probe says so instead of passing.
    let trap = table(&json, "public.trap");
    let reason = trap["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("live probe skipped") && reason.contains("COPY"),
        "{trap:#}"
    );
}

/// What cannot run in a transaction: `create index concurrently` is still applied (in a
/// scratch database, by the superuser, alone), what needs a superuser is refused at its line.
#[test]
fn statements_for_a_superuser_are_refused_and_concurrent_indexes_still_apply() {
    if !postgres_here() {
        return;
    }
    let rel = "supabase/migrations/20250201000000_ops.sql";
    let sql = "create index concurrently projects_name_idx on public.projects (name);\nvacuum public.projects;\nalter system set work_mem = '1MB';\nset role postgres;\ncreate extension if not exists citext;\n";
    let t = example_with("superuser-ops", &[(rel, sql)]);
    let (r, json) = verify_all(t.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let failed: Vec<u64> = findings(&json, "migration-apply-failed")
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [3, 4], "{json:#}");
    let notes = json["live_notes"].to_string();
    assert!(notes.contains("scratch database"), "{notes}");
}

/// The same catalog: what was added and what went missing, when not.
fn assert_same(before: &[String], after: &[String], what: &str) {
    let added: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    assert!(
        added.is_empty() && gone.is_empty(),
        "{what} changed: added {added:?}, gone {gone:?}"
    );
}

/// A database of the test's server for `--database-url`, and the server's own URL.
fn target_database(cluster: &xtask::gather::live::cluster::Cluster, name: &str) -> String {
    let mut c = cluster.config().connect(NoTls).unwrap();
    c.batch_execute(&format!("create database {name}")).unwrap();
    format!(
        "{} dbname={name}",
        cluster.url().replace(" dbname=postgres", "")
    )
}

/// dblink would reach the server on a connection of its own and commit there: the
/// extension is not the migration's to create, and nothing is left behind.
#[test]
fn dblink_cannot_leave_a_superuser_behind() {
    let Some(cluster) = server() else { return };
    let url = target_database(&cluster, "target_dblink");
    let before = snapshot(&cluster.url());
    let before_target = snapshot(&url);
    let sql = format!(
        "create extension if not exists dblink;\nselect dblink_exec('host={} port=5432 user=postgres dbname=postgres', 'create role intruder superuser login');\n",
        cluster.dir.display()
    );
    let rel = "supabase/migrations/20250201000000_dblink.sql";
    let t = example_with("dblink", &[(rel, &sql)]);
    let (r, json) = verify_all(t.path(), &["--database-url", &url]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    wait_idle(&cluster.url());
    assert_same(&before, &snapshot(&cluster.url()), "the server");
    assert_same(&before_target, &snapshot(&url), "the database");
    let failed = findings(&json, "migration-apply-failed");
    assert!(
        failed
            .iter()
            .any(|f| f["line"] == 1 && f["message"].as_str().unwrap().contains("dblink")),
        "{json:#}"
    );
}

/// `standard_conforming_strings = off` makes Postgres read one piece of our splitter as
/// several statements, a COMMIT among them: Postgres refuses the second statement, nothing
/// is committed, and the report does not claim a clean rolled-back run.
#[test]
fn a_commit_cannot_be_smuggled_past_the_splitter() {
    let Some(cluster) = server() else { return };
    let url = target_database(&cluster, "target_smuggle");
    let before = snapshot(&cluster.url());
    let before_target = snapshot(&url);
    // Our splitter reads line 2 as one statement (a string from `'a\'` to `'x`); with
    // the setting off, Postgres reads four.
    let sql = "set standard_conforming_strings = off;\nselect 'a\\'';commit;create role smuggled superuser login;commit;select 'x''\n';\n";
    let rel = "supabase/migrations/20250201000000_smuggle.sql";
    let t = example_with("smuggle", &[(rel, sql)]);
    let (r, json) = verify_all(t.path(), &["--database-url", &url]);
    wait_idle(&cluster.url());
    assert_same(&before, &snapshot(&cluster.url()), "the server");
    assert_same(&before_target, &snapshot(&url), "the database");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(item(&json, "migration")["status"], "fail", "{json:#}");
    let failed = findings(&json, "migration-apply-failed");
    assert!(
        failed.iter().any(|f| f["path"] == rel && f["line"] == 2),
        "{json:#}"
    );
}

/// `statement_timeout = 0` does not outlive `[live] timeout_secs`: the running statement is
/// cancelled on the server at the deadline.
#[test]
fn a_statement_cannot_run_past_the_deadline() {
    let Some(cluster) = server() else { return };
    let url = cluster.url();
    let rel = "supabase/migrations/20250201000000_sleep.sql";
    let t = example_with(
        "sleep-timeout",
        &[(rel, "set statement_timeout = 0;\nselect pg_sleep(60);\n")],
    );
    let toml = t.path().join("xtask.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[live]\ntimeout_secs = 3\n");
    std::fs::write(&toml, text).unwrap();
    let started = Instant::now();
    let r = common::run({
        let mut cmd = xtask(&workspace(), &[]);
        cmd.args(["verify", "--repo", t.path().to_str().unwrap(), "--all"])
            .args(["--skip-commands", "--format", "json", "--live", "on"])
            .args(["--database-url", &url]);
        cmd
    });
    let took = started.elapsed();
    eprintln!("stopped {took:?} after the start (limit 3 s)");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("{rel}:2")), "{}", r.stderr);
    wait_idle(&url);
}

/// Ctrl-C during a long statement: the statement is cancelled on the server and the
/// command exits 130 at once.
#[test]
fn sigint_during_a_long_statement_exits_130_promptly() {
    let Some(cluster) = server() else { return };
    let url = cluster.url();
    let rel = "supabase/migrations/20250201000000_sleep.sql";
    let t = example_with(
        "sleep-sigint",
        &[(rel, "set statement_timeout = 0;\nselect pg_sleep(60);\n")],
    );
    let report = t.path().join("report.json");
    let mut cmd = xtask(&workspace(), &[]);
    cmd.args(["verify", "--repo", t.path().to_str().unwrap(), "--all"])
        .args(["--skip-commands", "--live", "on", "--database-url", &url])
        .args(["--format", "json", "--report", report.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut probe = url
        .parse::<postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = probe
            .query_one(
                "select count(*) from pg_stat_activity where wait_event = 'PgSleep' and pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if n > 0 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "xtask ended early");
        assert!(Instant::now() < deadline, "the statement never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("xtask still runs 10 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    eprintln!("exited {took:?} after SIGINT");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(stderr.contains(&format!("{rel}:2")), "{stderr}");
    // The report is written all the same, and says what was cut short.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let migration = json["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "migration")
        .unwrap();
    assert_eq!(migration["status"], "unknown", "{migration}");
    let evidence = migration["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("interrupted") && evidence.contains(&format!("{rel}:2")),
        "{evidence}"
    );
    drop(probe);
    wait_idle(&url);
}

/// A `--database-url` whose role is not a superuser cannot host the migration role: the
/// check says so instead of running the migrations with whatever powers that role has.
#[test]
fn a_database_url_without_a_superuser_is_named() {
    let Some(cluster) = server() else { return };
    let mut c = cluster.config().connect(NoTls).unwrap();
    c.batch_execute("create role plain login").unwrap();
    let url = cluster.url().replace("user=postgres", "user=plain");
    let repo = workspace().join("examples/dashboard");
    let mut cmd = xtask(&workspace(), &[]);
    cmd.args(["verify", "--repo", repo.to_str().unwrap(), "--all"])
        .args(["--skip-commands", "--live", "on", "--database-url", &url]);
    let r = common::run(cmd);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("role `plain` is not a superuser"),
        "{}",
        r.stderr
    );
}

/// `[live] allow_extensions` lets a migration have dblink; dblink still runs as the
/// migration role, which may not open a connection without a password: nothing escapes.
#[test]
fn an_allowed_dblink_still_cannot_reach_the_server_as_the_superuser() {
    let Some(cluster) = server() else { return };
    let url = target_database(&cluster, "target_allowed");
    let before = snapshot(&cluster.url());
    let sql = format!(
        "create extension if not exists dblink;\nselect dblink_exec('host={} port=5432 user=postgres dbname=postgres', 'create role intruder superuser login');\n",
        cluster.dir.display()
    );
    let rel = "supabase/migrations/20250201000000_dblink.sql";
    let t = example_with("dblink-allowed", &[(rel, &sql)]);
    let toml = t.path().join("xtask.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[live]\nallow_extensions = [\"dblink\"]\n");
    std::fs::write(&toml, text).unwrap();
    let (r, json) = verify_all(t.path(), &["--database-url", &url]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    wait_idle(&cluster.url());
    assert_same(&before, &snapshot(&cluster.url()), "the server");
    let lines: Vec<u64> = findings(&json, "migration-apply-failed")
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2], "{json:#}");
}
