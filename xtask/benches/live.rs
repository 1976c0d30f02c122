//! The live check's cost, each part on its own. Prints figures; asserts nothing about speed.
//!
//!     cargo bench --bench live
//!
//! 1. start-up of the throwaway cluster (initdb + postgres until it accepts a connection);
//! 2. the live check of the example monorepo against a server that is already running
//!    (apply, catalog, rules, isolation probes; target: under 1 s);
//! 3. the same for a generated history of 200 migration files (199 tenant tables, each
//!    with RLS, four policies and a tenant index), every table judged and probed.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use xtask::{
    config::Config,
    gather::{
        live::{self, cluster::Cluster, Database},
        migrations::read_all,
    },
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
    let (d, s, t, _) = check_parts(repo, db);
    (d, s, t)
}

fn check_parts(repo: &Path, db: &Database) -> (Duration, usize, usize, (Duration, Duration)) {
    let config = Config::load(repo).unwrap_or_default();
    let changes = Changes::all();
    let t = Instant::now();
    let histories = read_all(repo, &config, &changes);
    let ev = live::check(&config, &changes, &histories, db).expect("the live check runs");
    assert_eq!(ev.apply_failures, 0, "{:?}", ev.findings);
    (
        t.elapsed(),
        ev.statements,
        ev.histories.iter().map(|h| h.schema.tables.len()).sum(),
        (ev.apply, ev.probe),
    )
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
    let mut parts = (Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        let (d, stmts, tables, p) = check_parts(&corpus, &db);
        times.push(d);
        shape = (stmts, tables);
        parts = p;
    }
    println!(
        "200 migration files, server running: median {} (min {}) over 3 runs; {} statements, {} tables judged and probed (last run: applying {}, probing {})",
        ms(median(times.clone())),
        ms(*times.iter().min().unwrap()),
        shape.0,
        shape.1,
        ms(parts.0),
        ms(parts.1)
    );
    println!(
        "throwaway cluster start-up: median {}",
        ms(median(startups))
    );
}
