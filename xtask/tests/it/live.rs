//! The live check against a real Postgres: the example passes, isolation holes fail with the
//! probe's evidence, an error the static reader tolerates is caught at its line, and the
//! database (or the throwaway cluster) is left exactly as it was found — after a passing run,
//! a failing run, and a run killed with SIGKILL half-way.
//!
//! Needs the Postgres binaries (`initdb`, `postgres`): skipped with a printed reason when they
//! are missing, except in CI (`CI=true`), where that fails.

use crate::common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{copy_tree, item, run_json, unavailable, workspace, xtask, TempDir};
use postgres::NoTls;
use xtask::gather::live::cluster::{find_program, Cluster};

pub(crate) fn postgres_here() -> bool {
    find_program("initdb").is_some() || unavailable::<()>("no Postgres binaries (initdb)").is_some()
}

/// A running throwaway server for tests that pass `--database-url`.
pub(crate) fn server() -> Option<Cluster> {
    if !postgres_here() {
        return None;
    }
    match Cluster::start(Duration::from_secs(60)) {
        Ok(c) => Some(c),
        Err(e) => unavailable(&format!("cannot start a Postgres: {e}")),
    }
}

/// A copy of the example (no git needed: the tests use `--all`) with extra migration files.
pub(crate) fn example_with(name: &str, extra: &[(&str, &str)]) -> TempDir {
    let t = TempDir::new(name);
    copy_tree(&workspace().join("examples/dashboard"), t.path());
    for (rel, text) in extra {
        common::write(t.path(), rel, text);
    }
    t
}

fn verify(repo: &Path, extra: &[&str]) -> (common::Run, serde_json::Value) {
    let mut args = vec![
        "verify",
        "--repo",
        repo.to_str().unwrap(),
        "--all",
        "--skip-commands",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    run_json(xtask(&workspace(), &args))
}

pub(crate) fn findings<'a>(json: &'a serde_json::Value, rule: &str) -> Vec<&'a serde_json::Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

pub(crate) fn table<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no table {name}: {json:#}"))
}

#[test]
fn the_example_passes_live() {
    if !postgres_here() {
        return;
    }
    let repo = workspace().join("examples/dashboard");
    let (r, json) = verify(&repo, &["--live", "on"]);
    // lint and tests are skipped, so the run as a whole is not clean.
    assert_eq!(r.code, 1, "{}", r.stderr);
    for id in ["tenant_id", "rls", "migration"] {
        assert_eq!(item(&json, id)["status"], "pass", "{id}: {json:#}");
    }
    let rls = item(&json, "rls")["evidence"].as_str().unwrap();
    assert!(rls.contains("proved live (throwaway Postgres"), "{rls}");
    for name in [
        "public.projects",
        "public.documents",
        "public.tenant_members",
    ] {
        let t = table(&json, name);
        assert_eq!(t["verdict"], "protected", "{t:#}");
        assert_eq!(t["source"], "live", "{t:#}");
        // A live policy report carries Postgres's own rendering of the expression.
        assert!(
            t["policies"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["tenant_scoped"] == true),
            "{t:#}"
        );
    }
    // What Postgres records in pg_depend for each policy: the tenant column and the source.
    for p in table(&json, "public.documents")["policies"]
        .as_array()
        .unwrap()
    {
        assert_eq!(
            p["uses"]["columns"],
            serde_json::json!(["tenant_id"]),
            "{p:#}"
        );
        assert_eq!(
            p["uses"]["functions"],
            serde_json::json!(["public.get_current_tenant_id"]),
            "{p:#}"
        );
    }
    // The tenant root is judged by its own policies (its rows scoped by `id`), not probed.
    assert_eq!(table(&json, "public.tenants")["verdict"], "protected");
    assert!(
        table(&json, "public.tenants")["probe"].is_null(),
        "{json:#}"
    );
    assert!(
        findings(&json, "live-probe-skipped").is_empty(),
        "every table was probed: {json:#}"
    );
}

/// Each hole fails live, with the probe's evidence at the table's file.
#[test]
fn isolation_holes_fail_live_with_the_probes_evidence() {
    if !postgres_here() {
        return;
    }
    let cases: [(&str, &str, &str, &[&str]); 3] = [
        (
            "or-true",
            "create table public.notes (\n  id uuid primary key default gen_random_uuid(),\n  tenant_id uuid not null references public.tenants (id),\n  body text not null\n);\ncreate index on public.notes (tenant_id);\nalter table public.notes enable row level security;\ncreate policy notes_all on public.notes for all to authenticated\n  using (tenant_id = public.get_current_tenant_id() or true);\n",
            "public.notes",
            &[
                "tenant A's owner, admin and member read 1 row(s) of tenant B",
                "tenant A's owner, admin and member updated 1 row(s) of tenant B",
                "tenant A's owner, admin and member deleted 1 row(s) of tenant B",
                "tenant A's owner, admin and member inserted a row for tenant B",
            ],
        ),
        (
            "using-true",
            "create policy documents_peek on public.documents for select to authenticated using (true);\n",
            "public.documents",
            &["tenant A's owner, admin and member read 1 row(s) of tenant B"],
        ),
        (
            "disabled-later",
            "alter table public.projects disable row level security;\n",
            "public.projects",
            &[
                "tenant A's owner, admin and member read 1 row(s) of tenant B",
                "tenant A's owner, admin and member inserted a row for tenant B",
            ],
        ),
    ];
    for (case, sql, name, evidence) in cases {
        let rel = "supabase/migrations/20250201000000_hole.sql";
        let t = example_with(case, &[(rel, sql)]);
        let (r, json) = verify(t.path(), &["--live", "on"]);
        assert_eq!(r.code, 1, "{case}: {}", r.stderr);
        assert_eq!(item(&json, "rls")["status"], "fail", "{case}: {json:#}");
        let tbl = table(&json, name);
        assert_eq!(tbl["verdict"], "unprotected", "{case}");
        assert_eq!(tbl["source"], "live", "{case}");
        let probe: Vec<_> = findings(&json, "policy-not-tenant-scoped")
            .into_iter()
            .filter(|f| f["message"].as_str().unwrap().starts_with("live probe on"))
            .filter(|f| f["table"] == name)
            .collect();
        assert_eq!(probe.len(), 1, "{case}: {json:#}");
        let msg = probe[0]["message"].as_str().unwrap();
        for e in evidence {
            assert!(msg.contains(e), "{case}: {msg}");
        }
    }
}

#[test]
fn an_error_the_static_reader_tolerates_is_caught_live_at_its_line() {
    if !postgres_here() {
        return;
    }
    let rel = "supabase/migrations/20250201000000_insert_policy.sql";
    let sql = "-- Members may add comments.\ncreate policy documents_insert_using on public.documents\n  for insert\n  to authenticated\n  using (tenant_id = public.get_current_tenant_id());\n";
    let t = example_with("insert-using", &[(rel, sql)]);

    let (_, stat) = verify(t.path(), &["--live", "off"]);
    assert!(
        findings(&stat, "sql-syntax-error").is_empty(),
        "the static reader accepts it: {stat:#}"
    );

    let (r, json) = verify(t.path(), &["--live", "on"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let failed = findings(&json, "migration-apply-failed");
    assert_eq!(failed.len(), 1, "{json:#}");
    assert_eq!(failed[0]["path"], rel);
    assert_eq!(failed[0]["line"], 2);
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .contains("only WITH CHECK expression allowed for INSERT"),
        "{:#}",
        failed[0]
    );
    let migration = item(&json, "migration");
    assert_eq!(migration["status"], "fail", "{migration:#}");
    assert!(
        migration["evidence"]
            .as_str()
            .unwrap()
            .contains(&format!("{rel}:2")),
        "{migration:#}"
    );
}

/// Extensions Supabase offers and this Postgres lacks get stand-ins: a `vector(1536)` column,
/// its hnsw index, pgjwt, http, pg_net and pg_cron calls all apply, and the report says so.
#[test]
fn extensions_this_postgres_lacks_get_stand_ins() {
    if !postgres_here() {
        return;
    }
    let rel = "supabase/migrations/20250201000000_embeddings.sql";
    let sql = r#"create extension if not exists vector with schema extensions;
create extension if not exists pg_net;
create extension if not exists pg_cron;
create extension if not exists pgjwt with schema extensions;
create extension if not exists http with schema extensions;
create table public.chunks (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id),
  embedding extensions.vector(1536)
);
create index on public.chunks (tenant_id);
create index on public.chunks using hnsw (embedding extensions.vector_cosine_ops) with (m = 16);
alter table public.chunks enable row level security;
create policy chunks_all on public.chunks for all to authenticated using (tenant_id = public.get_current_tenant_id());
create function public.match_chunks(q extensions.vector(1536)) returns setof public.chunks language sql stable as $$ select * from public.chunks order by embedding operator(extensions.<=>) q limit 5 $$;
select cron.schedule('nightly', '0 3 * * *', 'select 1');
select net.http_post('https://example.invalid/hook', '{}'::jsonb);
select extensions.sign('{"sub":"1"}'::json, 'secret');
"#;
    let t = example_with("stand-ins", &[(rel, sql)]);
    let (r, json) = verify(t.path(), &["--live", "on"]);
    assert!(
        findings(&json, "migration-apply-failed").is_empty(),
        "{}\n{json:#}",
        r.stderr
    );
    let notes = json["live_notes"].to_string();
    assert!(notes.contains("a stand-in was installed"), "{notes}");
    assert!(notes.contains("hnsw"), "{notes}");
    assert_eq!(
        table(&json, "public.chunks")["verdict"],
        "protected",
        "{json:#}"
    );
}

/// A table scoped by its owner (`[[tenancy.tables]] owner_column`) is probed as user A, the
/// owner of A's row: isolated when the policy keeps users to their rows, a leak otherwise.
#[test]
fn owner_scoped_tables_are_probed_as_their_owner() {
    if !postgres_here() {
        return;
    }
    let rel = "supabase/migrations/20250201000000_notes.sql";
    let sql = "create table public.notes (id uuid primary key default gen_random_uuid(), user_id uuid not null, body text);\ncreate index on public.notes (user_id);\nalter table public.notes enable row level security;\ncreate policy notes_own on public.notes for all to authenticated using (user_id = (select auth.uid()));\n";
    let config = "\n[[tenancy.tables]]\ntable = \"public.notes\"\nowner_column = \"user_id\"\nreason = \"each user's own notes\"\n";
    let t = example_with("owner-probe", &[(rel, sql)]);
    let toml = t.path().join("xtask.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap_or_default();
    text.push_str(config);
    std::fs::write(&toml, &text).unwrap();
    let (_, json) = verify(t.path(), &["--live", "on"]);
    let notes = table(&json, "public.notes");
    assert_eq!(notes["verdict"], "protected", "{notes:#}");
    assert_eq!(notes["probe"]["status"], "probed", "{notes:#}");

    let open = sql.replace("using (user_id = (select auth.uid()))", "using (true)");
    let t = example_with("owner-probe-open", &[(rel, &open)]);
    std::fs::write(t.path().join("xtask.toml"), &text).unwrap();
    let (_, json) = verify(t.path(), &["--live", "on"]);
    let notes = table(&json, "public.notes");
    assert_eq!(notes["verdict"], "unprotected", "{notes:#}");
    assert!(
        notes["probe"]["reason"]
            .as_str()
            .unwrap()
            .contains("read 1 row"),
        "{notes:#}"
    );
}

/// The self-join attack, live: a membership INSERT that keeps users to their own rows lets
/// a member of tenant A add themself to tenant B; Postgres confirms it, and every table that
/// trusts the membership table is `tenant-source-writable` with that evidence.
#[test]
fn the_self_join_attack_is_tried_live() {
    if !postgres_here() {
        return;
    }
    let rel = "supabase/migrations/20250201000000_join.sql";
    let sql = "create policy members_self_join on public.tenant_members for insert to authenticated with check (user_id = auth.uid());\n";
    let t = example_with("self-join", &[(rel, sql)]);
    let (r, json) = verify(t.path(), &["--live", "on"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let f = findings(&json, "tenant-source-writable");
    assert!(!f.is_empty(), "{json:#}");
    assert!(
        f.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("live: a signed-in member of tenant A inserted a row of public.tenant_members for tenant B")),
        "{f:#?}"
    );
}

/// A table with RLS off that no client role can reach (the history revoked every grant) is
/// not an open table: a warning, verdict protected, "not exposed" — known only live.
#[test]
fn a_table_no_client_can_reach_is_not_exposed() {
    if !postgres_here() {
        return;
    }
    let rel = "supabase/migrations/20250201000000_internal.sql";
    let sql = "create table public.job_queue (id bigint primary key, tenant_id uuid not null references public.tenants (id), payload jsonb);\ncreate index on public.job_queue (tenant_id);\nrevoke all on public.job_queue from anon, authenticated;\n";
    let t = example_with("not-exposed", &[(rel, sql)]);
    let (_, json) = verify(t.path(), &["--live", "on"]);
    let q = table(&json, "public.job_queue");
    assert_eq!(q["verdict"], "protected", "{q:#}");
    assert_eq!(q["source"], "live", "{q:#}");
    let f: Vec<_> = findings(&json, "rls-not-enabled")
        .into_iter()
        .filter(|f| f["table"] == "public.job_queue")
        .collect();
    assert_eq!(f.len(), 1, "{json:#}");
    assert_eq!(f[0]["severity"], "warning", "{:#}", f[0]);
    assert!(f[0]["message"].as_str().unwrap().contains("not exposed"));

    // The same table with its grants left in place is an open table.
    let sql = sql.replace(
        "revoke all on public.job_queue from anon, authenticated;\n",
        "",
    );
    let t = example_with("exposed", &[(rel, &sql)]);
    let (_, json) = verify(t.path(), &["--live", "on"]);
    assert_eq!(table(&json, "public.job_queue")["verdict"], "unprotected");
}

/// Databases, roles and every object of every schema: what "left as found" compares.
pub(crate) fn snapshot(url: &str) -> Vec<String> {
    let mut c = url
        .parse::<postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .unwrap();
    let mut out = Vec::new();
    for q in [
        "select 'db ' || datname::text from pg_database",
        "select 'role ' || rolname::text || ' ' || rolsuper::text || rolcreaterole::text || rolcreatedb::text || rolcanlogin::text || rolbypassrls::text from pg_roles",
        "select 'member ' || roleid::regrole::text || ' ' || member::regrole::text from pg_auth_members",
        "select 'dbacl ' || datname::text || ' ' || coalesce(datacl::text, '') from pg_database",
        "select 'nsacl ' || nspname::text || ' ' || coalesce(nspacl::text, '') from pg_namespace",
        "select 'relacl ' || c.oid::regclass::text || ' ' || coalesce(c.relacl::text, '') from pg_class c",
        "select 'rel ' || n.nspname::text || '.' || c.relname::text || ' ' || c.relkind::text || ' ' || c.relrowsecurity::text from pg_class c join pg_namespace n on n.oid = c.relnamespace",
        "select 'ns ' || nspname::text from pg_namespace",
        "select 'fn ' || n.nspname::text || '.' || p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace",
        "select 'policy ' || polname::text from pg_policy",
        "select 'defacl ' || count(*)::text from pg_default_acl",
        "select 'ext ' || extname::text from pg_extension",
    ] {
        for row in c.query(q, &[]).unwrap() {
            out.push(row.get::<_, String>(0));
        }
    }
    out.sort();
    out
}

/// Wait until no backend but ours is connected (a killed client's transaction is over).
pub(crate) fn wait_idle(url: &str) {
    let mut c = url
        .parse::<postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = c
            .query_one(
                "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "a backend is still connected");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Run xtask in the background and SIGKILL it once `ready` says it is half-way.
fn kill_midway(mut cmd: Command, mut ready: impl FnMut() -> bool) -> i32 {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "xtask ended before it was killed"
        );
        assert!(Instant::now() < deadline, "xtask never got half-way");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id() as i32;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    pid
}

const SLOW: &str = "create table public.slow (id uuid primary key, tenant_id uuid not null);\nselect pg_sleep(4);\n";

#[test]
fn the_database_is_left_as_found() {
    let Some(cluster) = server() else { return };
    let url = cluster.url();
    let before = snapshot(&url);

    // A passing run.
    let repo = workspace().join("examples/dashboard");
    let (r, json) = verify(&repo, &["--live", "on", "--database-url", &url]);
    assert_eq!(item(&json, "migration")["status"], "pass", "{}", r.stderr);
    assert!(
        item(&json, "rls")["evidence"]
            .as_str()
            .unwrap()
            .contains("the database of --database-url"),
        "{json:#}"
    );
    assert_eq!(snapshot(&url), before, "after a passing run");

    // A failing run: a leaking policy and a statement Postgres rejects.
    let t = example_with(
        "left-as-found",
        &[(
            "supabase/migrations/20250201000000_bad.sql",
            "create policy peek on public.documents for select using (true);\ncreate table public.broken (id int primary key primary key);\n",
        )],
    );
    let (r, json) = verify(t.path(), &["--live", "on", "--database-url", &url]);
    assert_eq!(r.code, 1);
    assert_eq!(item(&json, "migration")["status"], "fail", "{json:#}");
    assert_eq!(item(&json, "rls")["status"], "fail", "{json:#}");
    assert_eq!(snapshot(&url), before, "after a failing run");

    // A run killed with SIGKILL while a migration is running.
    let t = example_with(
        "killed",
        &[("supabase/migrations/20250201000000_slow.sql", SLOW)],
    );
    let mut probe = url
        .parse::<postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .unwrap();
    let mut cmd = xtask(&workspace(), &[]);
    cmd.args(["verify", "--repo", t.path().to_str().unwrap(), "--all"])
        .args(["--skip-commands", "--live", "on", "--database-url", &url]);
    kill_midway(cmd, || {
        let n: i64 = probe
            .query_one(
                "select count(*) from pg_stat_activity where wait_event = 'PgSleep' and pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        n > 0
    });
    drop(probe);
    wait_idle(&url);
    assert_eq!(snapshot(&url), before, "after a run killed mid-way");
}

fn postgres_dirs(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("xtask-pg-"))
                .collect()
        })
        .unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped by whoever inherited it) is not running.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn the_throwaway_cluster_is_gone_afterwards_even_after_sigkill() {
    if !postgres_here() {
        return;
    }
    // Under the system temp directory, which the postgres account can reach.
    let tmp = TempDir::outside_git("pg-tmp");

    // A normal run: nothing left.
    let repo = workspace().join("examples/dashboard");
    let mut cmd = xtask(&workspace(), &[]);
    cmd.args(["verify", "--repo", repo.to_str().unwrap(), "--all"])
        .args(["--skip-commands", "--live", "on", "--format", "json"])
        .env("TMPDIR", tmp.path());
    let (_, json) = run_json(cmd);
    assert_eq!(item(&json, "migration")["status"], "pass", "{json:#}");
    assert_eq!(postgres_dirs(tmp.path()), Vec::<String>::new());

    // Killed while the server runs a migration: the reaper stops it and removes its files.
    let t = example_with(
        "killed-throwaway",
        &[("supabase/migrations/20250201000000_slow.sql", SLOW)],
    );
    let mut cmd = xtask(&workspace(), &[]);
    cmd.args(["verify", "--repo", t.path().to_str().unwrap(), "--all"])
        .args(["--skip-commands", "--live", "on"])
        .env("TMPDIR", tmp.path());
    let server_pid = std::cell::Cell::new(None);
    kill_midway(cmd, || {
        let dirs = postgres_dirs(tmp.path());
        let Some(d) = dirs.first() else { return false };
        let pidfile = tmp.path().join(d).join("data/postmaster.pid");
        let Some(pid) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
        else {
            return false;
        };
        server_pid.set(Some(pid));
        // Half-way: the slow migration is running (its table exists in the data directory
        // only as far as the server knows; give it time to get there).
        std::thread::sleep(Duration::from_millis(1500));
        true
    });
    let pid = server_pid.get().expect("the server's pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while (!postgres_dirs(tmp.path()).is_empty() || alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        postgres_dirs(tmp.path()),
        Vec::<String>::new(),
        "the cluster's files are gone"
    );
    assert!(!alive(pid), "the server (pid {pid}) is gone");
}

/// What `security-definer-view` claims, checked against Postgres itself: a signed-in member
/// of tenant A selects tenant B's rows through each view of `view_owner_rights`, and the
/// views through which Postgres shows any are exactly those the static rule reports as
/// errors (owner's rights without a tenant filter); the caller's-rights views and the one
/// filtered as the policy is show none.
#[test]
fn postgres_shows_other_tenants_rows_through_owner_rights_views() {
    use xtask::{config::Config, judge::static_migrations, model::Severity, repo::Changes};
    let Some(cluster) = server() else { return };
    let fixtures = workspace().join("xtask/tests/fixtures/migrations");
    let mut config = Config::default();
    config.migrations.dirs = vec!["view_owner_rights".into()];
    let ev = static_migrations(&fixtures, &config, &Changes::all());
    let mut reported: Vec<String> = ev
        .findings
        .iter()
        .filter(|f| f.rule.id() == "security-definer-view" && f.severity == Severity::Error)
        .filter_map(|f| f.table.clone())
        .collect();
    reported.sort();
    let mut admin = cluster
        .url()
        .parse::<postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .unwrap();
    admin
        .batch_execute(
            "do $$ begin create role anon nologin; exception when duplicate_object then null; end $$;
             do $$ begin create role authenticated nologin; exception when duplicate_object then null; end $$;
             do $$ begin create role view_owner nologin; exception when duplicate_object then null; end $$;",
        )
        .unwrap();
    admin
        .batch_execute("create database owner_rights_views")
        .unwrap();
    let mut c = format!("{} dbname=owner_rights_views", cluster.url())
        .parse::<postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .unwrap();
    let migration = std::fs::read_to_string(fixtures.join("view_owner_rights/0001.sql")).unwrap();
    // As on Supabase: the migration role owns the tables and views, and new relations are
    // granted to the client roles by default.
    c.batch_execute(&format!(
        "create schema auth;
         grant usage on schema auth to public;
         create function auth.uid() returns uuid language sql stable
           as $$ select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
         grant create, usage on schema public to view_owner;
         set role view_owner;
         alter default privileges in schema public grant all on tables to anon, authenticated;
         {migration}
         insert into tenant_members values
           ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001');
         insert into invoices (tenant_id, amount) values
           ('00000000-0000-0000-0000-00000000000a', 50),
           ('00000000-0000-0000-0000-00000000000b', 500);
         reset role;"
    ))
    .unwrap();
    let views: Vec<String> = c
        .query(
            "select 'public.' || viewname::text from pg_views where schemaname = 'public' order by 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(views.len() >= 5, "{views:?}");
    let mut shown = Vec::new();
    let mut refused = Vec::new();
    for v in &views {
        let mut tx = c.transaction().unwrap();
        tx.batch_execute(
            "set local role authenticated;
             set local request.jwt.claim.sub = '00000000-0000-0000-0000-000000000001';",
        )
        .unwrap();
        let n = match tx.query_one(
            &format!(
                "select count(*) from {v} where tenant_id = '00000000-0000-0000-0000-00000000000b'"
            ),
            &[],
        ) {
            Ok(r) => r.get::<_, i64>(0),
            // Revoked from the client roles: nothing shown.
            Err(e) => {
                let why = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_default();
                assert!(why.contains("permission denied"), "{v}: {e}");
                refused.push(v.clone());
                continue;
            }
        };
        // The member sees their own tenant through every view: the probe means something.
        let own: i64 = tx
            .query_one(
                &format!("select count(*) from {v} where tenant_id = '00000000-0000-0000-0000-00000000000a'"),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(
            own,
            if v.ends_with("large_invoices") { 0 } else { 1 },
            "{v}"
        );
        if n > 0 {
            shown.push(v.clone());
        }
    }
    assert!(!shown.is_empty());
    assert_eq!(
        shown, reported,
        "views through which Postgres shows tenant B's rows"
    );
}

/// What the fixtures assume exists: the tenant root, the membership table and the tenant
/// source function, as in the example.
const FIXTURE_BASE: &str = "create table public.tenants (id uuid primary key default gen_random_uuid(), name text not null default 'probe');
create table public.tenant_members (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null,
  primary key (tenant_id, user_id)
);
create function public.get_current_tenant_id() returns uuid language sql stable security definer set search_path = public as $$
  select tm.tenant_id from public.tenant_members tm
  where tm.tenant_id = (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'tenant_id')::uuid
    and tm.user_id = auth.uid()
$$;
alter table public.tenants enable row level security;
alter table public.tenant_members enable row level security;
create policy tenants_select on public.tenants for select using (id = public.get_current_tenant_id());
create policy members_own on public.tenant_members for select using (user_id = auth.uid());
";

/// Tables whose verdict the live probe must confirm in the differential check below:
/// (fixture, table, verdict).
const CONFIRMED: &[(&str, &str, &str)] = &[
    // `is_maintainer(auth.uid(), tenant_id)`: the current user passed to the check.
    ("helper_user_argument", "public.docs", "protected"),
    // Its policies read auth.users: every statement of a signed-in user is refused.
    ("policy_refused", "public.invitations", "refused"),
    // Reads refused, but its DELETE policy lets every row go: the probe still deletes B's.
    ("policy_refused", "public.leaky_invites", "unprotected"),
    // Its policies call a check that raises 42883 inside its body on every call.
    ("policy_broken_helper", "public.boards", "refused"),
    // The same broken read, and a DELETE policy that lets every row go.
    ("policy_broken_helper", "public.cards", "unprotected"),
];

/// The differential check: every migration fixture of the static reader is applied to a real
/// Postgres, and the static verdict of each table must equal the live one — or be
/// `unverified`, which never counts as a pass. A disagreement is a bug in one of the two
/// readers: the message names the fixture, the table and both verdicts.
#[test]
fn static_verdicts_agree_with_postgres_on_every_fixture() {
    use xtask::{
        config::Config,
        gather::{
            live::{self, Database},
            migrations::read_all,
        },
        judge::{self, Live},
        model::{Source, Verdict},
        repo::Changes,
    };
    let Some(cluster) = server() else { return };
    let db = Database::Disposable(cluster.url());
    let fixtures = workspace().join("xtask/tests/fixtures/migrations");
    let mut cases: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "{cases:?}");
    for (case, _, _) in CONFIRMED {
        assert!(cases.iter().any(|c| c == case), "no fixture {case}");
    }
    let config = Config::default();
    let changes = Changes::all();
    let mut disagreements = Vec::new();
    let mut compared = 0;
    let mut compared_views = 0;
    for case in &cases {
        let t = TempDir::new(&format!("diff-{case}"));
        common::write(t.path(), "supabase/migrations/0000_base.sql", FIXTURE_BASE);
        let mut files: Vec<_> = std::fs::read_dir(fixtures.join(case))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let dest = t
                .path()
                .join("supabase/migrations")
                .join(format!("1_{name}"));
            std::fs::copy(&f, dest).unwrap();
        }
        let histories = read_all(t.path(), &config, &changes);
        let stat = judge::migrations(&histories, Live::NotRun, &config, &changes);
        let live = live::check(&config, &changes, &histories, &db)
            .unwrap_or_else(|e| panic!("{case}: the live check did not run: {e}"));
        let judged = judge::migrations(&histories, Live::Ran(live), &config, &changes);
        let live_verdicts: std::collections::BTreeMap<String, Verdict> = judged
            .tables
            .iter()
            .filter(|t| t.source == Source::Live)
            .map(|t| (t.name.clone(), t.verdict))
            .collect();
        // Verdicts Postgres confirms: the probe ran on the table (as a member of tenant A)
        // and what it found is the verdict.
        for (_, table, want) in CONFIRMED.iter().filter(|(c, _, _)| c == case) {
            let got = judged.tables.iter().find(|t| t.name == *table);
            let ok = got.is_some_and(|t| {
                let verdict = format!("{:?}", t.verdict).to_lowercase();
                t.probe.as_ref().is_some_and(|p| {
                    p.status == "probed"
                        && match *want {
                            "protected" => verdict == "protected" && p.reason.is_empty(),
                            "refused" => {
                                verdict == "protected" && p.reason.starts_with("refused: ")
                            }
                            _ => verdict == *want && !p.reason.is_empty(),
                        }
                })
            });
            if !ok {
                disagreements.push(format!(
                    "{case}: {table}: want {want} confirmed by the probe, got {:?}",
                    got.map(|t| (t.verdict, t.probe.as_ref().map(|p| (p.status, &p.reason))))
                ));
            }
        }
        // Views shown with their owner's rights: the live catalog's text of each view
        // (`pg_get_viewdef`) must be judged as the migration's own text is.
        // A view the static reader could not check (defined differently on the paths of a
        // DO block) is left out, as an `unverified` table is.
        let unchecked: Vec<String> = stat
            .findings
            .iter()
            .filter(|f| {
                f.rule.id() == "security-definer-view" && f.message.contains("could not be checked")
            })
            .filter_map(|f| f.table.clone())
            .collect();
        let views = |ev: &xtask::model::MigrationEvidence| {
            let mut v: Vec<(String, String)> = ev
                .findings
                .iter()
                .filter(|f| f.rule.id() == "security-definer-view")
                .filter(|f| !unchecked.iter().any(|u| f.table.as_ref() == Some(u)))
                .map(|f| {
                    (
                        f.table.clone().unwrap_or_default(),
                        format!("{:?}", f.severity),
                    )
                })
                .collect();
            v.sort();
            v
        };
        if views(&stat) != views(&judged) {
            disagreements.push(format!(
                "{case}: views: static {:?}, live {:?}",
                views(&stat),
                views(&judged)
            ));
        }
        compared_views += views(&stat).len();
        for s in &stat.tables {
            if s.name == "public.tenants" || s.name == "public.tenant_members" {
                continue;
            }
            if s.verdict == Verdict::Unverified {
                continue;
            }
            compared += 1;
            match live_verdicts.get(&s.name) {
                Some(v) if *v == s.verdict => {}
                other => disagreements.push(format!(
                    "{case}: {}: static {:?}, live {:?}",
                    s.name, s.verdict, other
                )),
            }
        }
    }
    assert!(compared >= 30, "only {compared} verdicts compared");
    assert!(
        compared_views >= 2,
        "only {compared_views} view findings compared"
    );
    assert!(
        disagreements.is_empty(),
        "the static reader and Postgres disagree:\n{}",
        disagreements.join("\n")
    );
}

/// Bad input is a finding at its line, never a crash: a file that is not UTF-8, an empty
/// one, one with only comments, one whose statement never ends.
#[test]
fn bad_files_are_findings_not_failures_of_the_check() {
    if !postgres_here() {
        return;
    }
    let t = example_with(
        "live-bad-input",
        &[
            ("supabase/migrations/20250201000000_empty.sql", ""),
            (
                "supabase/migrations/20250202000000_comments.sql",
                "-- nothing yet\n/* still nothing */\n",
            ),
            (
                "supabase/migrations/20250204000000_unterminated.sql",
                "select 1;\ncreate table public.half (\n  id int\n",
            ),
        ],
    );
    let latin1 = b"-- caf\xe9\nselect 1;\nselect '\xe9';\n";
    std::fs::write(
        t.path()
            .join("supabase/migrations/20250203000000_latin1.sql"),
        latin1,
    )
    .unwrap();
    let (r, json) = verify(t.path(), &["--live", "on"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
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
        [
            (
                "supabase/migrations/20250203000000_latin1.sql".to_string(),
                1
            ),
            (
                "supabase/migrations/20250204000000_unterminated.sql".to_string(),
                4
            ),
        ],
        "{json:#}"
    );
    // The rest of the history was applied and judged.
    assert_eq!(table(&json, "public.documents")["source"], "live");
}

/// A `--database-url` that already holds the schema makes every `create` fail: the report
/// says why, instead of leaving the reader with a wall of "already exists".
#[test]
fn a_database_that_is_not_empty_is_named_in_the_report() {
    let Some(cluster) = server() else { return };
    let url = cluster.url();
    let mut c = url
        .parse::<postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .unwrap();
    c.batch_execute("create table public.tenants (id uuid primary key)")
        .unwrap();
    let repo = workspace().join("examples/dashboard");
    let (r, json) = verify(&repo, &["--live", "on", "--database-url", &url]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(item(&json, "migration")["status"], "fail", "{json:#}");
    let notes = json["live_notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("the database was not empty before history `supabase/migrations` was applied (1 table(s), e.g. public.tenants)")),
        "{notes:#?}"
    );
    let failed = findings(&json, "migration-apply-failed");
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{failed:#?}"
    );
}

/// The storage probe against the static judge: on each bucket of the fixture, the static
/// judge finds a leak exactly where Postgres lets tenant A read, overwrite or delete tenant
/// B's objects; the confined buckets are probed (not skipped) and isolated.
#[test]
fn storage_findings_agree_with_the_live_storage_probe() {
    use xtask::{
        config::Config,
        gather::{
            live::{self, probe::Probe, Database},
            migrations::read_all,
        },
        judge::{self, Live},
        repo::Changes,
    };
    let Some(cluster) = server() else { return };
    let db = Database::Disposable(cluster.url());
    let t = TempDir::new("storage-probe");
    common::write(t.path(), "supabase/migrations/0000_base.sql", FIXTURE_BASE);
    let fixture = workspace().join("xtask/tests/fixtures/migrations/storage_probe/0001.sql");
    common::write(
        t.path(),
        "supabase/migrations/1_0001.sql",
        &std::fs::read_to_string(fixture).unwrap(),
    );
    let config = Config::default();
    let changes = Changes::all();
    let histories = read_all(t.path(), &config, &changes);
    let stat = judge::migrations(&histories, Live::NotRun, &config, &changes);
    let mut static_leaky: Vec<String> = stat
        .findings
        .iter()
        .filter(|f| f.table.as_deref() == Some("storage.objects"))
        .map(|f| f.message.split('`').nth(1).unwrap().to_string())
        .collect();
    static_leaky.sort();
    static_leaky.dedup();
    let ev = live::check(&config, &changes, &histories, &db).expect("live check");
    let probes = ev.histories[0].storage.clone();
    let mut live_leaky = Vec::new();
    for (bucket, p) in &probes {
        match p {
            Probe::Leaks { .. } => live_leaky.push(bucket.clone()),
            Probe::Isolated { .. } => {}
            Probe::Skipped(why) => panic!("{bucket}: the probe did not run: {why}"),
        }
    }
    live_leaky.sort();
    assert_eq!(static_leaky, ["leaky", "overwrite"], "{:#?}", stat.findings);
    assert_eq!(live_leaky, static_leaky, "{probes:#?}");
    let judged = judge::migrations(&histories, Live::Ran(ev), &config, &changes);
    assert!(
        judged.findings.iter().any(|f| f
            .message
            .contains("storage bucket `overwrite`: live probe: tenant A overwrote")),
        "{:#?}",
        judged.findings
    );
}

/// What the trust chain claims of views, checked against Postgres itself: through an
/// updatable view that runs with its owner's rights, a signed-in user inserts a membership
/// row for another tenant although the membership table's policies allow no insert; through
/// a `security_invoker` view, or one Postgres cannot update (DISTINCT), they cannot.
#[test]
fn postgres_lets_a_client_join_any_tenant_through_an_owner_rights_view() {
    let Some(cluster) = server() else { return };
    let fixtures = workspace().join("xtask/tests/fixtures/migrations");
    let mut admin = cluster
        .url()
        .parse::<postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .unwrap();
    admin
        .batch_execute(
            "do $$ begin create role anon nologin; exception when duplicate_object then null; end $$;
             do $$ begin create role authenticated nologin; exception when duplicate_object then null; end $$;
             do $$ begin create role view_migrator nologin; exception when duplicate_object then null; end $$;",
        )
        .unwrap();
    // user 1 tries to join tenant B; 0 or 1 rows land in tenant_members.
    let mut join = |case: &str, view: &str| -> Result<(), String> {
        admin
            .batch_execute(&format!("create database {case}"))
            .unwrap();
        let mut c = format!("{} dbname={case}", cluster.url())
            .parse::<postgres::Config>()
            .unwrap()
            .connect(NoTls)
            .unwrap();
        let migration = std::fs::read_to_string(fixtures.join(case).join("0001.sql")).unwrap();
        c.batch_execute(&format!(
            "create schema auth;
             grant usage on schema auth to public;
             create function auth.uid() returns uuid language sql stable
               as $$ select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
             create table public.tenants (id uuid primary key);
             grant create, usage on schema public to view_migrator;
             set role view_migrator;
             alter default privileges in schema public grant all on tables to anon, authenticated;
             {migration}
             reset role;"
        ))
        .unwrap();
        let mut tx = c.transaction().unwrap();
        tx.batch_execute(
            "set local role authenticated;
             set local request.jwt.claim.sub = '00000000-0000-0000-0000-000000000001';",
        )
        .unwrap();
        let r = tx
            .execute(
                &format!("insert into public.{view} (tenant_id, user_id) values ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000001')"),
                &[],
            )
            .map(|_| ())
            .map_err(|e| e.as_db_error().map_or(e.to_string(), |d| d.message().to_string()));
        drop(tx);
        r
    };
    assert_eq!(join("view_membership_updatable", "my_memberships"), Ok(()));
    let denied = join("view_membership", "my_memberships").unwrap_err();
    assert!(denied.contains("row-level security"), "{denied}");
    // The same database: the DISTINCT view is not updatable.
    let mut c = format!("{} dbname=view_membership", cluster.url())
        .parse::<postgres::Config>()
        .unwrap()
        .connect(NoTls)
        .unwrap();
    let updatable: i32 = c
        .query_one(
            "select pg_catalog.pg_relation_is_updatable('public.my_tenants'::regclass, false)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(updatable, 0);
}

/// A throwaway cluster copied from the `initdb` template kept under `target/` is as fresh as
/// a new `initdb`: what one run committed (a role, a database) is not in the next run's
/// cluster, each run has a directory of its own, and the template itself is never started.
#[test]
fn each_throwaway_cluster_is_fresh_even_from_the_template() {
    if !postgres_here() {
        return;
    }
    let names = |c: &Cluster| -> (bool, bool) {
        let mut db = c.config().connect(NoTls).unwrap();
        let role: bool = db
            .query_one(
                "select exists (select from pg_roles where rolname = 'xtask_fresh_marker')",
                &[],
            )
            .unwrap()
            .get(0);
        let base: bool = db
            .query_one(
                "select exists (select from pg_database where datname = 'xtask_fresh_marker')",
                &[],
            )
            .unwrap()
            .get(0);
        (role, base)
    };
    let first = Cluster::start(Duration::from_secs(60)).expect("a throwaway cluster");
    assert_eq!(names(&first), (false, false));
    let mut db = first.config().connect(NoTls).unwrap();
    db.batch_execute("create role xtask_fresh_marker").unwrap();
    db.batch_execute("create database xtask_fresh_marker")
        .unwrap();
    assert_eq!(names(&first), (true, true));
    drop(db);
    // Twice: the second start at the latest comes from the template.
    for _ in 0..2 {
        let next = Cluster::start(Duration::from_secs(60)).expect("a throwaway cluster");
        assert_ne!(next.dir, first.dir);
        assert_eq!(names(&next), (false, false), "a cluster that is not fresh");
    }
    drop(first);
    let templates = workspace().join("target/xtask-pg-template");
    for t in std::fs::read_dir(&templates)
        .into_iter()
        .flatten()
        .flatten()
    {
        let data = t.path().join("data");
        if data.is_dir() {
            assert!(
                !data.join("postmaster.pid").exists(),
                "a template a server runs on: {}",
                data.display()
            );
        }
    }
}

/// The example with the history of `tests/fixtures/live/<case>` added after its own.
fn example_with_fixture(case: &str) -> TempDir {
    let dir = workspace().join("xtask/tests/fixtures/live").join(case);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                format!("supabase/migrations/{}", e.file_name().to_string_lossy()),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    let extra: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    example_with(case, &extra)
}

/// The `migration-apply-failed` findings as `file:line`.
fn rejected_at(json: &serde_json::Value) -> Vec<String> {
    findings(json, "migration-apply-failed")
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["path"]
                    .as_str()
                    .unwrap_or("?")
                    .rsplit('/')
                    .next()
                    .unwrap_or("?"),
                f["line"]
            )
        })
        .collect()
}

/// On the throwaway cluster each file is applied in a transaction of its own, as the
/// Supabase CLI applies it: an enum value added in one file is usable in the next but not
/// in its own file (Postgres: "unsafe use of new value"), `set_config(..., true)` lasts to
/// the end of its file, and a file's own `commit` and `rollback` are honoured.
#[test]
fn each_file_is_applied_in_its_own_transaction() {
    if !postgres_here() {
        return;
    }
    let t = example_with_fixture("file_transactions");
    let (r, json) = verify(t.path(), &["--live", "on"]);
    assert_eq!(
        rejected_at(&json),
        vec!["20250301000002_same_file.sql:4".to_string()],
        "{}\n{json:#}",
        r.stderr
    );
    let f = findings(&json, "migration-apply-failed")[0];
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("unsafe use of new value"),
        "{f:#}"
    );
}

/// Against --database-url the history runs in one transaction that is rolled back: a new
/// enum value cannot be used before a commit there, so the file after the one adding it is
/// rejected, and the report says that a real replay would not reject it.
#[test]
fn one_rolled_back_transaction_says_what_it_cannot_do() {
    let Some(cluster) = server() else { return };
    let t = example_with_fixture("file_transactions");
    let (_, json) = verify(
        t.path(),
        &["--live", "on", "--database-url", &cluster.url()],
    );
    let rejected = rejected_at(&json);
    assert!(
        rejected.contains(&"20250301000001_use_status.sql:2".to_string()),
        "{rejected:?}\n{json:#}"
    );
    let notes = json["live_notes"].to_string();
    assert!(
        notes.contains("add value") && notes.contains("ONE transaction"),
        "{notes}"
    );
}

/// The probes of a scratch database run on a pool of connections, each table in its own
/// transaction; against --database-url on the one connection of the rolled-back
/// transaction. Both give every table the same result, in the same order: a table that leaks
/// in every way, one that leaks to reads only, the example's isolated ones.
#[test]
fn probes_on_the_pool_agree_with_probes_on_one_connection() {
    use xtask::{
        config::Config,
        gather::{
            live::{self, Database},
            migrations::read_all,
        },
        repo::Changes,
    };
    let Some(cluster) = server() else { return };
    let t = example_with(
        "pool-agrees",
        &[(
            "supabase/migrations/20250201000000_holes.sql",
            "create table public.notes (\n  id uuid primary key default gen_random_uuid(),\n  tenant_id uuid not null references public.tenants (id),\n  body text not null\n);\ncreate index on public.notes (tenant_id);\nalter table public.notes enable row level security;\ncreate policy notes_all on public.notes for all to authenticated\n  using (tenant_id = public.get_current_tenant_id() or true);\ncreate policy documents_peek on public.documents for select to authenticated using (true);\n",
        )],
    );
    let config = Config::load(t.path()).unwrap();
    let changes = Changes::all();
    let histories = read_all(t.path(), &config, &changes);
    let probes = |db: Database| {
        let ev = live::check(&config, &changes, &histories, &db).expect("the live check runs");
        assert_eq!(ev.apply_failures, 0, "{:?}", ev.findings);
        ev.histories
            .into_iter()
            .flat_map(|h| h.probes)
            .map(|(name, p)| format!("{name}: {p:?}"))
            .collect::<Vec<_>>()
    };
    let pooled = probes(Database::Disposable(cluster.url()));
    let single = probes(Database::Url(cluster.url()));
    assert!(pooled.len() >= 3, "{pooled:#?}");
    assert!(pooled.iter().any(|p| p.contains("Leaks")), "{pooled:#?}");
    assert_eq!(pooled, single);
}

/// Deferred constraints are checked at the file's commit, as in a replay: a child inserted
/// before its parent in one file applies; an orphan is refused at the end of its file (the
/// finding at its last statement, saying the transaction was refused at its commit).
#[test]
fn deferred_constraints_are_checked_at_the_files_commit() {
    if !postgres_here() {
        return;
    }
    let t = example_with_fixture("deferred_constraints");
    let (r, json) = verify(t.path(), &["--live", "on"]);
    assert_eq!(
        rejected_at(&json),
        vec!["20250301000001_orphan.sql:3".to_string()],
        "{}\n{json:#}",
        r.stderr
    );
    let f = findings(&json, "migration-apply-failed")[0];
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains("at its commit") && msg.contains("children_parent_id_fkey"),
        "{f:#}"
    );
}

/// The plain statements of a file go to Postgres together; one it refuses among them is
/// found and reported at its own line (the error's line, as when sent alone), and the
/// others are applied, before and after it. Here the 2nd of 4 (an unknown type on line 7):
/// the 3rd adds a column to the 1st's table, the 4th makes a table; in a second file the
/// 1st, 2nd, 4th and 5th are refused (the 5th holds a NUL, which cannot be sent at all);
/// a third file sets the check's own counter for the session, and the first statement of
/// the fourth is still found refused. In the scratch database and in the one rolled-back
/// transaction of --database-url alike; neither leaves a database or the migration role.
#[test]
fn a_refused_statement_among_others_of_its_file_is_found_and_the_rest_applied() {
    use xtask::{
        config::Config,
        gather::{
            live::{self, Database},
            migrations::read_all,
        },
        repo::Changes,
        rules::catalog::Rule,
    };
    let Some(cluster) = server() else { return };
    let first = "supabase/migrations/20250201000000_batch.sql";
    let second = "supabase/migrations/20250201000001_batch.sql";
    let t = example_with(
        "batch-refused",
        &[
            (
                first,
                "create table public.batch_one (\n  id uuid primary key,\n  tenant_id uuid not null references public.tenants (id)\n);\ncreate table public.batch_two (\n  id uuid primary key,\n  kind nosuchtype\n);\nalter table public.batch_one add column note text;\ncreate table public.batch_three (id uuid primary key);\n",
            ),
            (
                second,
                "alter table public.batch_two add column x int;\nalter table public.nosuch add column x int;\nalter table public.batch_three add column y int;\nalter table public.batch_one add column note text;\nselect 'a\0b';\nalter table public.batch_three add column z int;\n",
            ),
            (
                "supabase/migrations/20250201000002_batch.sql",
                "select set_config('xtask_live.n', '5000', false);\n",
            ),
            (
                "supabase/migrations/20250201000003_batch.sql",
                "alter table public.nosuch2 add column x int;\nalter table public.batch_three add column w int;\n",
            ),
        ],
    );
    let config = Config::load(t.path()).unwrap();
    let changes = Changes::all();
    let histories = read_all(t.path(), &config, &changes);
    let before = snapshot(&cluster.url());
    for db in [
        Database::Disposable(cluster.url()),
        Database::Url(cluster.url()),
    ] {
        let ev = live::check(&config, &changes, &histories, &db).expect("the live check runs");
        // The scratch database and the migration role are gone when the check returns (the
        // Supabase roles of the shim stay on a server of our own: they are not compared).
        let mine = |l: &&String| l.starts_with("db ") || l.contains(live::role::ROLE);
        let now = snapshot(&cluster.url());
        assert_same(
            &before.iter().filter(mine).cloned().collect::<Vec<_>>(),
            &now.iter().filter(mine).cloned().collect::<Vec<_>>(),
        );
        let refused: Vec<(String, u32)> = ev
            .findings
            .iter()
            .filter(|f| f.rule == Rule::MigrationApplyFailed)
            .map(|f| {
                let file = f.path.clone().unwrap_or_default();
                (
                    file.rsplit('/').next().unwrap().to_string(),
                    f.line.unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(
            refused,
            [
                ("20250201000000_batch.sql".to_string(), 7),
                ("20250201000001_batch.sql".to_string(), 1),
                ("20250201000001_batch.sql".to_string(), 2),
                ("20250201000001_batch.sql".to_string(), 4),
                ("20250201000001_batch.sql".to_string(), 5),
                ("20250201000003_batch.sql".to_string(), 1),
            ],
            "{:#?}",
            ev.findings
        );
        let messages: Vec<&str> = ev.findings.iter().map(|f| f.message.as_str()).collect();
        assert!(
            messages[0].contains("\"nosuchtype\" does not exist"),
            "{messages:#?}"
        );
        assert!(
            messages[1].contains("\"public.batch_two\" does not exist"),
            "{messages:#?}"
        );
        assert!(
            messages[2].contains("\"public.nosuch\" does not exist"),
            "{messages:#?}"
        );
        assert!(
            messages[3].contains("\"note\" of relation \"batch_one\" already exists"),
            "{messages:#?}"
        );
        let tables = &ev.histories[0].schema.tables;
        let get = |name: &str| {
            tables
                .iter()
                .find(|(n, _)| n.to_string() == name)
                .map(|(_, t)| t)
        };
        let one = get("public.batch_one").expect("the 1st statement applied");
        assert!(one.column("note").is_some(), "the 3rd statement applied");
        assert!(get("public.batch_two").is_none());
        let three = get("public.batch_three").expect("the 4th statement applied");
        assert!(
            three.column("y").is_some(),
            "the 3rd statement of the 2nd file applied"
        );
        assert!(
            three.column("z").is_some(),
            "the statement after the one with a NUL applied"
        );
        assert!(
            three.column("w").is_some(),
            "the statement after a refused first one applied"
        );
    }
}

/// A piece our splitter reads as one statement and Postgres as several is still refused
/// whole among batched statements: the statements before and after it apply, the smuggled
/// one never runs. Our splitter reads lines 2-3 as one statement (the strings `'a\'` and
/// `' ;create ... select '`, then a `--` comment); with `standard_conforming_strings` off,
/// Postgres reads three (`'a\''`, `create table public.smuggled ...`, `select '--\''`).
#[test]
fn a_piece_postgres_reads_as_several_commands_is_refused_among_batched_ones() {
    use xtask::{
        config::Config,
        gather::{
            live::{self, Database},
            migrations::read_all,
        },
        repo::Changes,
        rules::catalog::Rule,
    };
    let Some(cluster) = server() else { return };
    let rel = "supabase/migrations/20250201000000_several.sql";
    let t = example_with(
        "several-batched",
        &[(
            rel,
            "set standard_conforming_strings = off;\nselect 'a\\'' ;create table public.smuggled (id int); select '--\\''\n;\ncreate table public.after_smuggle (id int);\n",
        )],
    );
    let config = Config::load(t.path()).unwrap();
    let changes = Changes::all();
    let histories = read_all(t.path(), &config, &changes);
    for db in [
        Database::Disposable(cluster.url()),
        Database::Url(cluster.url()),
    ] {
        let ev = live::check(&config, &changes, &histories, &db).expect("the live check runs");
        let refused: Vec<(u32, &str)> = ev
            .findings
            .iter()
            .filter(|f| f.rule == Rule::MigrationApplyFailed)
            .map(|f| (f.line.unwrap_or(0), f.message.as_str()))
            .collect();
        assert_eq!(refused.len(), 1, "{refused:#?}");
        assert_eq!(refused[0].0, 2, "{refused:#?}");
        assert!(
            refused[0].1.contains("more than one statement"),
            "{refused:#?}"
        );
        let tables = &ev.histories[0].schema.tables;
        let names: Vec<String> = tables.keys().map(|n| n.to_string()).collect();
        assert!(
            names.contains(&"public.after_smuggle".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"public.smuggled".to_string()), "{names:?}");
    }
}

/// Nothing added, nothing gone.
fn assert_same(before: &[String], after: &[String]) {
    let added: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    assert!(
        added.is_empty() && gone.is_empty(),
        "the server changed: added {added:?}, gone {gone:?}"
    );
}

/// The tables after each file are read with one statement prepared once per session, so it
/// must read the same whatever search path a migration set: with operators planted ahead of
/// `pg_catalog`'s (which make the same query, unqualified, read every relation), it still
/// finds exactly the tables; so does the reading with their names.
#[test]
fn the_tables_after_each_file_are_read_whatever_search_path_a_migration_set() {
    use std::collections::BTreeSet;
    use xtask::gather::live::catalog;
    let Some(cluster) = server() else { return };
    let mut admin = cluster.config().connect(NoTls).unwrap();
    admin.batch_execute("create database oid_list").unwrap();
    let mut cfg = cluster.config();
    cfg.dbname("oid_list");
    let mut c = cfg.connect(NoTls).unwrap();
    c.batch_execute(
        "create schema evil;
         create function evil.eq(\"char\", \"char\") returns bool language sql as 'select true';
         create operator evil.= (leftarg = \"char\", rightarg = \"char\", function = evil.eq);
         create function evil.ne(name, name) returns bool language sql as 'select true';
         create operator evil.<> (leftarg = name, rightarg = name, function = evil.ne);
         create table public.t1 (a int);
         create table evil.t2 (a int primary key);
         create view public.v as select 1 as one;",
    )
    .unwrap();
    let expected: BTreeSet<u32> = catalog::table_oids(&mut c).unwrap().into_keys().collect();
    assert_eq!(expected.len(), 2);
    let read = |c: &mut postgres::Client, q: &postgres::Statement| -> BTreeSet<u32> {
        let list: Option<String> = c.query_one(q, &[]).unwrap().get(0);
        list.unwrap_or_default()
            .split(',')
            .filter(|o| !o.is_empty())
            .map(|o| o.parse().unwrap())
            .collect()
    };
    let q = c.prepare(catalog::TABLE_OID_LIST).unwrap();
    assert_eq!(read(&mut c, &q), expected);
    c.batch_execute("set search_path = evil, pg_catalog")
        .unwrap();
    let unqualified = c
        .query(
            "select c.oid from pg_catalog.pg_class c \
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
             where c.relkind in ('r', 'p') and n.nspname not in \
               ('pg_catalog', 'information_schema', 'pg_toast') \
               and n.nspname not like 'pg_temp_%' and n.nspname not like 'pg_toast_temp_%'",
            &[],
        )
        .unwrap();
    assert!(
        unqualified.len() > expected.len(),
        "the planted operators do not change the unqualified query: the test proves nothing"
    );
    assert_eq!(read(&mut c, &q), expected);
    let named: BTreeSet<u32> = catalog::table_oids(&mut c).unwrap().into_keys().collect();
    assert_eq!(
        named, expected,
        "the tables with their names, the same query"
    );
    let fresh = c.prepare(catalog::TABLE_OID_LIST).unwrap();
    assert_eq!(read(&mut c, &fresh), expected);
    drop(c);
    admin
        .batch_execute("drop database oid_list with (force)")
        .unwrap();
}

/// The probe's round trips cut (the steps Postgres usually refuses run in one batch with the
/// others, each undone server-side when refused; the catalog read once for all tables) give
/// every table the same result as each step in a round trip of its own: an UPDATE that moves
/// rows and an INSERT that Postgres lets through; an INSERT a trigger refuses for another
/// reason than row level security (the probe says so, with Postgres's words) and a move a
/// trigger refuses; an INSERT refused by an error inside the policy's own function (as
/// Postgres refuses it to every client).
#[test]
fn batched_steps_agree_with_steps_one_by_one() {
    if !postgres_here() {
        return;
    }
    let table = |name: &str, extra: &str| {
        format!(
            "create table public.{name} (\n  id uuid primary key default gen_random_uuid(),\n  tenant_id uuid not null references public.tenants (id),\n  body text not null\n);\ncreate index on public.{name} (tenant_id);\nalter table public.{name} enable row level security;\n{extra}\n"
        )
    };
    let sql = [
        table(
            "moves",
            "create policy moves_select on public.moves for select to authenticated using (tenant_id = public.get_current_tenant_id());\n\
             create policy moves_update on public.moves for update to authenticated using (true) with check (true);\n\
             create policy moves_insert on public.moves for insert to authenticated with check (true);",
        ),
        table(
            "guarded",
            "create policy guarded_all on public.guarded for all to authenticated using (tenant_id = public.get_current_tenant_id()) with check (true);\n\
             create function public.guarded_rows() returns trigger language plpgsql as $$\nbegin\n  \
               if current_user = 'authenticated' and tg_op = 'INSERT' then\n    raise exception 'clients do not add rows here' using detail = 'a server route does', hint = 'call the route';\n  end if;\n  \
               if tg_op = 'UPDATE' and new.tenant_id <> old.tenant_id then\n    raise exception 'a row stays with its tenant';\n  end if;\n  return new;\nend\n$$;\n\
             create trigger guarded_rows before insert or update on public.guarded for each row execute function public.guarded_rows();",
        ),
        table(
            "broken",
            "create function public.broken_check() returns boolean language plpgsql as $$\nbegin\n  execute 'select no_such_column from public.broken';\n  return true;\nend\n$$;\n\
             create policy broken_all on public.broken for all to authenticated using (tenant_id = public.get_current_tenant_id());\n\
             create policy broken_insert on public.broken as restrictive for insert to authenticated with check (public.broken_check());",
        ),
    ]
    .concat();
    let (batched, one_by_one) = probed_both_ways("batched-agree", &sql);
    let of = |name: &str| {
        batched
            .iter()
            .find(|p| p.starts_with(&format!("public.{name}: ")))
            .unwrap_or_else(|| panic!("{name} probed: {batched:#?}"))
            .clone()
    };
    let moves = of("moves");
    for deed in [
        "tenant A's owner, admin and member updated 1 row(s) of tenant B",
        "tenant A's owner, admin and member moved 1 row(s) of its own into tenant B",
        "tenant A's owner, admin and member inserted a row for tenant B",
    ] {
        assert!(moves.contains(deed), "{deed}: {moves}");
    }
    assert!(
        of("guarded").contains(
            "Skipped(\"the INSERT for tenant B failed for another reason than row level security: clients do not add rows here (P0001); a server route does; hint: call the route\")"
        ),
        "{batched:#?}"
    );
    assert!(of("broken").contains("Isolated"), "{batched:#?}");
    assert_eq!(batched, one_by_one);
}

/// The example with `sql` as a migration, checked live on a scratch database (the probes on
/// the pool: batched steps, identities shared where they may be), then again with every step
/// and identity of each table's probe made one by one, as before: each table's probe, both
/// ways.
fn probed_both_ways(name: &str, sql: &str) -> (Vec<String>, Vec<String>) {
    use std::sync::atomic::Ordering;
    use xtask::{
        config::Config,
        gather::{
            live::{self, probe::STEP_BY_STEP, Database},
            migrations::read_all,
        },
        repo::Changes,
    };
    let cluster = server().expect("a throwaway cluster");
    let t = example_with(
        name,
        &[("supabase/migrations/20250201000000_case.sql", sql)],
    );
    let config = Config::load(t.path()).unwrap();
    let changes = Changes::all();
    let histories = read_all(t.path(), &config, &changes);
    let probes = || {
        let db = Database::Disposable(cluster.url());
        let ev = live::check(&config, &changes, &histories, &db).expect("the live check runs");
        assert_eq!(ev.apply_failures, 0, "{:?}", ev.findings);
        ev.histories
            .into_iter()
            .flat_map(|h| h.probes)
            .map(|(name, p)| format!("{name}: {p:?}"))
            .collect::<Vec<_>>()
    };
    let fast = probes();
    STEP_BY_STEP.store(true, Ordering::SeqCst);
    let slow = probes();
    STEP_BY_STEP.store(false, Ordering::SeqCst);
    (fast, slow)
}

/// The identities made once per pool connection (users A and B, the tenants, a member of A
/// per role) give each table the probe it gets alone, where rows of them could change what it
/// finds too: a signup trigger that makes each user a personal tenant and its owner; a
/// membership trigger that writes tenant rows to `audit` (probed alone: sharing would add the
/// other roles' rows to what tenant A moves into B); a trigger on `seats` that counts the
/// members of the row's tenant (probed alone: with every role already a member of A, A's own
/// row would be refused); a role whose membership Postgres refuses (`admin`), left out of the
/// identities with its reason as before; tables whose UPDATE is denied or whose own read is
/// refused as a statement (the shared member's one batch stops, and its steps are taken one
/// by one, as that member).
#[test]
fn shared_identities_agree_with_identities_per_table() {
    if !postgres_here() {
        return;
    }
    let table = |name: &str, extra: &str| {
        format!(
            "create table public.{name} (\n  id uuid primary key default gen_random_uuid(),\n  tenant_id uuid not null references public.tenants (id),\n  body text not null default 'x'\n);\ncreate index on public.{name} (tenant_id);\nalter table public.{name} enable row level security;\n{extra}\n"
        )
    };
    let sql = [
        "create function public.on_signup() returns trigger language plpgsql security definer set search_path = public as $$\n\
         declare t uuid;\nbegin\n  insert into public.tenants (name) values ('personal') returning id into t;\n  \
         insert into public.tenant_members (tenant_id, user_id, role) values (t, new.id, 'owner');\n  return new;\nend\n$$;\n\
         create trigger on_signup after insert on auth.users for each row execute function public.on_signup();\n\
         create function public.no_added_admins() returns trigger language plpgsql as $$\nbegin\n  \
         if new.role = 'admin' then\n    raise exception 'admins are invited, not added';\n  end if;\n  return new;\nend\n$$;\n\
         create trigger no_added_admins before insert on public.tenant_members for each row execute function public.no_added_admins();\n".to_string(),
        table(
            "audit",
            "create policy audit_all on public.audit for all to authenticated using (true) with check (true);\n\
             create function public.audit_member() returns trigger language plpgsql security definer set search_path = public as $$\nbegin\n  \
             insert into public.audit (tenant_id, body) values (new.tenant_id, 'member ' || new.role);\n  return new;\nend\n$$;\n\
             create trigger audit_member after insert on public.tenant_members for each row execute function public.audit_member();",
        ),
        table(
            "seats",
            "create policy seats_select on public.seats for select to authenticated using (tenant_id = public.get_current_tenant_id());\n\
             create policy seats_insert on public.seats for insert to authenticated with check (true);\n\
             create function public.seat_limit() returns trigger language plpgsql security definer set search_path = public as $$\nbegin\n  \
             if (select count(*) from public.tenant_members m where m.tenant_id = new.tenant_id) > 1 then\n    \
             raise exception 'no seats left';\n  end if;\n  return new;\nend\n$$;\n\
             create trigger seat_limit before insert on public.seats for each row execute function public.seat_limit();",
        ),
        table(
            "notes",
            "create policy notes_all on public.notes for all to authenticated using (tenant_id = public.get_current_tenant_id());",
        ),
        table(
            "ledger",
            "create policy ledger_all on public.ledger for all to authenticated using (tenant_id = public.get_current_tenant_id());\n\
             revoke select on public.ledger from authenticated;",
        ),
        table(
            "frozen",
            "create policy frozen_all on public.frozen for all to authenticated using (tenant_id = public.get_current_tenant_id());\n\
             revoke update on public.frozen from authenticated;",
        ),
    ]
    .concat();
    let (shared, alone) = probed_both_ways("shared-agree", &sql);
    let of = |name: &str| {
        shared
            .iter()
            .find(|p| p.starts_with(&format!("public.{name}: ")))
            .unwrap_or_else(|| panic!("{name} probed: {shared:#?}"))
            .clone()
    };
    assert!(
        of("audit").contains("tenant A's owner and member moved "),
        "{shared:#?}"
    );
    assert!(
        of("seats").contains("tenant A's owner and member inserted a row for tenant B"),
        "{shared:#?}"
    );
    assert!(
        of("notes").contains("Isolated { identities: [\"owner\", \"member\"]"),
        "{shared:#?}"
    );
    // Its UPDATE denied, its own read refused as a statement: the batch of a shared member
    // stops, and the steps are taken one by one as that member.
    assert!(
        of("frozen").contains("Isolated { identities: [\"owner\", \"member\"], refused: None }"),
        "{shared:#?}"
    );
    assert!(
        of("ledger").contains("refused: Some(\"permission denied for table ledger (42501)\")"),
        "{shared:#?}"
    );
    assert_eq!(shared, alone);
}
