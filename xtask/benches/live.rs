//! The live check's cost, each part on its own. Prints figures; asserts nothing about speed.
//!
//!     cargo bench --bench live
//!
//! 1. start-up of the throwaway cluster (initdb + postgres until it accepts a connection);
//! 2. the live check of the example monorepo against a server that is already running
//!    (apply, catalog, rules, isolation probes; target: under 1 s);
//! 3. the same for a generated history of 200 migration files (199 tenant tables, each
//!    with RLS, four policies and a tenant index), every table judged and probed;
//! 4. the largest corpus history (chatbot-ui, from its mirror under /work/.mirror or
//!    `XTASK_BENCH_CHATBOT_UI=<git dir>`, with docs/corpus/configs/chatbot-ui.xtask.toml)
//!    read, applied, judged and probed on a throwaway cluster, its start-up included.
//!
//! Each live figure is followed by where its time went: cluster start-up, the Supabase shim
//! and the migration role, applying, reading the catalog, the isolation probes, the
//! self-join and storage probes, ending the history (rollback or dropping the scratch
//! database) and stopping the cluster.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use xtask::{
    config::Config,
    gather::{
        live::{self, cluster::Cluster, Database, LiveEvidence},
        migrations::read_all,
    },
    judge::{self, Live},
    repo::Changes,
};

const ROUNDS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// 200 files: the example's tenants migration, then 199 tenant tables.
fn generate(dir: &Path) {
    let migrations = dir.join("supabase/migrations");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::copy(
        workspace().join("examples/dashboard/supabase/migrations/20250101000000_tenants.sql"),
        migrations.join("20250101000000_tenants.sql"),
    )
    .unwrap();
    for i in 1..200 {
        let t = format!("items_{i:03}");
        let mut s = String::new();
        let _ = writeln!(
            s,
            "-- Migration {i}: {t}\ncreate table public.{t} (\n  id uuid primary key default gen_random_uuid(),\n  \
             tenant_id uuid not null references public.tenants (id) on delete cascade,\n  \
             name text not null,\n  amount numeric(12, 2),\n  created_at timestamptz not null default now()\n);\n\
             create index {t}_tenant_id_idx on public.{t} (tenant_id);\n\
             alter table public.{t} enable row level security;"
        );
        for (cmd, clause) in [
            ("select", "using"),
            ("insert", "with check"),
            ("update", "using"),
            ("delete", "using"),
        ] {
            let _ = writeln!(
                s,
                "create policy {t}_{cmd} on public.{t} for {cmd} to authenticated\n  {clause} (tenant_id = public.get_current_tenant_id());"
            );
        }
        std::fs::write(
            migrations.join(format!("2025020{}{i:06}_{t}.sql", i / 100)),
            s,
        )
        .unwrap();
    }
}

fn check(repo: &Path, db: &Database) -> (Duration, usize, usize) {
    let (d, s, t, _) = check_parts(repo, db, true);
    (d, s, t)
}

/// Read, apply, judge and probe `repo`: the time, statements, tables judged, and the
/// breakdown of the live part.
fn check_parts(repo: &Path, db: &Database, clean: bool) -> (Duration, usize, usize, String) {
    let config = Config::load(repo).unwrap_or_default();
    let changes = Changes::all();
    let t = Instant::now();
    let histories = read_all(repo, &config, &changes);
    let read = t.elapsed();
    let ev = live::check(&config, &changes, &histories, db).expect("the live check runs");
    if clean {
        assert_eq!(ev.apply_failures, 0, "{:?}", ev.findings);
    }
    let (statements, tables) = (
        ev.statements,
        ev.histories.iter().map(|h| h.schema.tables.len()).sum(),
    );
    let parts = breakdown(read, &ev);
    let judging = Instant::now();
    let judged = judge::migrations(&histories, Live::Ran(ev), &config, &changes);
    assert!(!judged.tables.is_empty());
    let parts = format!("{parts}, judge {}", ms(judging.elapsed()));
    (t.elapsed(), statements, tables, parts)
}

/// Where the time of one run went.
fn breakdown(read: Duration, ev: &LiveEvidence) -> String {
    let accounted = ev.timings.setup
        + ev.apply
        + ev.timings.catalog
        + ev.probe
        + ev.timings.probe_other
        + ev.timings.teardown;
    format!(
        "read {}, start-up {}, shim+role {}, apply {}, catalog {}, probe {}, self-join+storage {}, end of history {}, other {}, cluster stop {}",
        ms(read),
        ev.startup.map_or("-".into(), ms),
        ms(ev.timings.setup),
        ms(ev.apply),
        ms(ev.timings.catalog),
        ms(ev.probe),
        ms(ev.timings.probe_other),
        ms(ev.timings.teardown),
        ms(ev.check.saturating_sub(accounted)),
        ms(ev.timings.stop),
    )
}

/// chatbot-ui's history at the corpus commit, with our corpus config, under target/.
fn chatbot_ui() -> Option<PathBuf> {
    let git_dir = std::env::var_os("XTASK_BENCH_CHATBOT_UI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/.mirror/mckaywrigley+chatbot-ui/repo"));
    if !git_dir.is_dir() {
        return None;
    }
    let dir = workspace().join("target/bench-live-chatbot-ui");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    let archive = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&git_dir)
        .args([
            "archive",
            "81328b61d2a4ab597a7a057be70e785cf756d9f8",
            "supabase",
        ])
        .output()
        .ok()?;
    if !archive.status.success() {
        return None;
    }
    let mut tar = std::process::Command::new("tar")
        .args(["-x", "-C"])
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    std::io::Write::write_all(tar.stdin.as_mut()?, &archive.stdout).ok()?;
    drop(tar.stdin.take());
    tar.wait().ok()?.success().then_some(())?;
    std::fs::copy(
        workspace().join("docs/corpus/configs/chatbot-ui.xtask.toml"),
        dir.join("xtask.toml"),
    )
    .ok()?;
    Some(dir)
}

fn main() {
    if live::cluster::find_program("initdb").is_none() {
        eprintln!("benchmark skipped: no Postgres binaries (initdb)");
        return;
    }
    let mut startups = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let c = Cluster::start(Duration::from_secs(60)).expect("a throwaway cluster");
        startups.push(c.startup);
        drop(c);
        println!(
            "cluster start-up {} (start + stop {})",
            ms(startups[startups.len() - 1]),
            ms(t.elapsed())
        );
    }

    let cluster = Cluster::start(Duration::from_secs(60)).expect("a throwaway cluster");
    let db = Database::Disposable(cluster.url());
    let example = workspace().join("examples/dashboard");
    let _ = check(&example, &db); // warm-up
    let mut times = Vec::new();
    let mut shape = (0, 0);
    for _ in 0..ROUNDS {
        let (d, stmts, tables) = check(&example, &db);
        times.push(d);
        shape = (stmts, tables);
    }
    println!(
        "example, server running: median {} (min {}, max {}) over {ROUNDS} runs; {} statements, {} tables judged",
        ms(median(times.clone())),
        ms(*times.iter().min().unwrap()),
        ms(*times.iter().max().unwrap()),
        shape.0,
        shape.1
    );

    let corpus = workspace().join("target/bench-live");
    generate(&corpus);
    let mut times = Vec::new();
    let mut parts = String::new();
    for _ in 0..3 {
        let (d, stmts, tables, p) = check_parts(&corpus, &db, true);
        times.push(d);
        shape = (stmts, tables);
        parts = p;
    }
    println!(
        "200 migration files, server running: median {} (min {}) over 3 runs; {} statements, {} tables judged and probed\n  last run: {parts}",
        ms(median(times.clone())),
        ms(*times.iter().min().unwrap()),
        shape.0,
        shape.1,
    );
    drop(cluster);

    match chatbot_ui() {
        None => {
            println!("chatbot-ui: skipped (no mirror; set XTASK_BENCH_CHATBOT_UI to its git dir)")
        }
        Some(repo) => {
            let mut times = Vec::new();
            for _ in 0..3 {
                let (d, stmts, tables, p) = check_parts(&repo, &Database::Throwaway, false);
                times.push(d);
                shape = (stmts, tables);
                parts = p;
            }
            println!(
                "chatbot-ui, throwaway cluster (start-up included): median {} (min {}, max {}) over 3 runs; {} statements, {} tables judged and probed\n  last run: {parts}",
                ms(median(times.clone())),
                ms(*times.iter().min().unwrap()),
                ms(*times.iter().max().unwrap()),
                shape.0,
                shape.1,
            );
        }
    }
    println!(
        "throwaway cluster start-up: median {}",
        ms(median(startups))
    );
}
