//! Benchmark of `check-migrations --all`, next to squawk-cli on the same files. Ignored in
//! the normal test run; run it with
//!
//! ```text
//! cargo test --test it bench_migrations -- --ignored --nocapture            # the dev profile `cargo xtask` uses
//! cargo test --release --test it bench_migrations -- --ignored --nocapture  # optimised
//! ```
//!
//! Figures, before and after, and where the time goes: `docs/bench-migrations.md`.
//!
//! It generates a corpus of Supabase-shaped migrations (tables with RLS, policies, indexes,
//! triggers and grants; plpgsql functions; alters; seed files) under
//! `target/bench-migrations/`, and squawk-cli under `target/tools/` (`npm install --prefix`).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const FILES: usize = 3_200;

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// A small deterministic generator: the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 12] = [
    "invoice", "project", "task", "comment", "report", "asset", "order", "contact", "note",
    "event", "budget", "ticket",
];

fn table_file(t: &str, r: &mut Rng) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "-- Migration: {t}\n-- Adds {t} for the dashboard; every row belongs to one tenant.\n"
    );
    let _ = writeln!(
        s,
        "create table if not exists public.{t} (\n  id uuid primary key default gen_random_uuid(),\n  \
         tenant_id uuid not null references public.tenants(id) on delete cascade,\n  \
         created_at timestamptz not null default now(),\n  updated_at timestamptz not null default now(),\n  \
         created_by uuid references auth.users(id),\n  name text not null,\n  \
         status text not null default 'draft' check (status in ('draft', 'active', 'archived')),\n  \
         amount numeric(12, 2),\n  metadata jsonb not null default '{{}}'::jsonb"
    );
    for i in 0..r.below(6) {
        let _ = writeln!(s, "  , extra_{i} text");
    }
    let _ = writeln!(s, ");\n");
    let _ = writeln!(
        s,
        "create index if not exists {t}_tenant_id_idx on public.{t} (tenant_id);"
    );
    let _ = writeln!(s, "create index if not exists {t}_tenant_created_idx on public.{t} (tenant_id, created_at desc);");
    let _ = writeln!(s, "alter table public.{t} enable row level security;\n");
    let src = if r.below(2) == 0 {
        "(select get_current_tenant_id())".to_string()
    } else {
        "(select tenant_id from public.tenant_members where user_id = (select auth.uid()))"
            .to_string()
    };
    let op = if src.contains("tenant_members") {
        "in"
    } else {
        "="
    };
    let _ = writeln!(
        s,
        "create policy \"{t}_select\" on public.{t} for select to authenticated\n  using (tenant_id {op} {src});"
    );
    let _ = writeln!(
        s,
        "create policy \"{t}_insert\" on public.{t} for insert to authenticated\n  with check (tenant_id {op} {src});"
    );
    let _ = writeln!(
        s,
        "create policy \"{t}_update\" on public.{t} for update to authenticated\n  using (tenant_id {op} {src})\n  with check (tenant_id {op} {src});"
    );
    let _ = writeln!(
        s,
        "create policy \"{t}_delete\" on public.{t} for delete to authenticated\n  using (tenant_id {op} {src});\n"
    );
    let _ = writeln!(
        s,
        "create trigger {t}_set_updated_at before update on public.{t}\n  for each row execute function public.set_updated_at();"
    );
    let _ = writeln!(
        s,
        "comment on table public.{t} is 'Tenant-scoped {t} records.';"
    );
    let _ = writeln!(
        s,
        "grant select, insert, update, delete on public.{t} to authenticated;"
    );
    s
}

fn function_file(t: &str, r: &mut Rng) -> String {
    let mut s = format!(
        "create or replace function public.{t}_summary(p_from date, p_to date)\nreturns table (day date, total numeric)\n\
         language plpgsql stable security definer set search_path = public\nas $$\ndeclare\n  v_tenant uuid := get_current_tenant_id();\nbegin\n"
    );
    for i in 0..(5 + r.below(20)) {
        let _ = writeln!(
            s,
            "  -- step {i}\n  if p_from > p_to then\n    raise exception 'bad range %', {i};\n  end if;\n  \
             perform 1 from public.tenants where id = v_tenant and created_at < now() - interval '{i} days';"
        );
    }
    s.push_str("  return query select d::date, coalesce(sum(1), 0) from generate_series(p_from, p_to, interval '1 day') d group by 1;\nend;\n$$;\n");
    let _ = writeln!(
        s,
        "revoke all on function public.{t}_summary(date, date) from public;"
    );
    let _ = writeln!(
        s,
        "grant execute on function public.{t}_summary(date, date) to authenticated;"
    );
    s
}

fn alter_file(t: &str, r: &mut Rng) -> String {
    let n = r.below(1000);
    format!(
        "alter table public.{t} add column if not exists note_{n} text;\n\
         alter table public.{t} alter column name set not null;\n\
         create index if not exists {t}_note_{n}_idx on public.{t} (tenant_id, note_{n});\n\
         alter policy \"{t}_select\" on public.{t} using (tenant_id = (select get_current_tenant_id()));\n"
    )
}

fn seed_file(t: &str, r: &mut Rng) -> String {
    let mut s = format!("-- Seed data for {t}\n");
    let rows = 1200 + r.below(1000);
    for _ in 0..rows / 10 {
        let _ = writeln!(
            s,
            "insert into public.{t} (id, tenant_id, name, status, amount) values"
        );
        for j in 0..10 {
            let _ = writeln!(
                s,
                "  ('{:08x}-0000-4000-8000-{:012x}', '00000000-0000-4000-8000-000000000001', 'Seeded {t} {j} lorem ipsum dolor sit amet', 'active', {}.{:02}){}",
                r.next() as u32,
                r.next() & 0xffff_ffff_ffff,
                r.below(100_000),
                r.below(100),
                if j == 9 { ";" } else { "," }
            );
        }
    }
    s
}

/// Generate the corpus once (reused while FILES and the generator do not change).
fn corpus() -> (PathBuf, Vec<PathBuf>) {
    let root = target().join("bench-migrations");
    let full = root.join("full/supabase/migrations");
    let marker = root.join(format!("corpus-v3-{FILES}"));
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&full).unwrap();
        let mut r = Rng(0x5eed_1234_abcd_ef01);
        let mut created: Vec<String> = Vec::new();
        let base = "create table public.tenants (id uuid primary key, name text not null, created_at timestamptz not null default now());\n\
                    create table public.tenant_members (tenant_id uuid not null references public.tenants(id), user_id uuid not null, primary key (tenant_id, user_id));\n\
                    alter table public.tenants enable row level security;\n\
                    alter table public.tenant_members enable row level security;\n\
                    create policy tm on public.tenant_members for all using (tenant_id = (select get_current_tenant_id()));\n";
        std::fs::write(full.join("20240101000000_base.sql"), base).unwrap();
        for i in 1..FILES {
            let kind = r.below(100);
            let text = if created.is_empty() || kind < 65 {
                let t = format!("{}_{i}", WORDS[r.below(WORDS.len() as u64) as usize]);
                created.push(t.clone());
                table_file(&t, &mut r)
            } else {
                let t = created[r.below(created.len() as u64) as usize].clone();
                match kind {
                    65..=79 => function_file(&t, &mut r),
                    80..=94 => alter_file(&t, &mut r),
                    _ => seed_file(&t, &mut r),
                }
            };
            std::fs::write(full.join(format!("2024{:010}_m.sql", i)), text).unwrap();
        }
        std::fs::write(&marker, "").unwrap();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&full)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    (root, files)
}

/// A repository holding the first `n` files (hard links: no copy).
fn subset(root: &Path, files: &[PathBuf], label: &str) -> PathBuf {
    let repo = root.join(label);
    let dir = repo.join("supabase/migrations");
    if label != "full" {
        let _ = std::fs::remove_dir_all(&repo);
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::hard_link(f, dir.join(f.file_name().unwrap())).unwrap();
        }
    }
    repo
}

fn best_of(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().unwrap()
}

fn time_xtask(repo: &Path, threads: Option<usize>) -> Duration {
    let start = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    if let Some(n) = threads {
        cmd.env("XTASK_THREADS", n.to_string());
    }
    let status = cmd
        .args(["check-migrations", "--all", "--repo"])
        .arg(repo)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let d = start.elapsed();
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "xtask failed to run: {status}"
    );
    d
}

/// squawk-cli, installed under target/tools on first use. `Err` says why it is missing.
fn squawk() -> Result<PathBuf, String> {
    let tools = target().join("tools");
    let bin = tools.join("node_modules/.bin/squawk");
    if !bin.exists() {
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&tools)
            .arg("squawk-cli")
            .output()
            .map_err(|e| {
                format!("npm not found ({e}): install Node.js to compare with squawk-cli")
            })?;
        if !out.status.success() {
            return Err(format!(
                "npm install squawk-cli failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(bin)
}

fn time_squawk(bin: &Path, files: &[PathBuf]) -> Duration {
    let start = Instant::now();
    let status = Command::new(bin)
        .args(files)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let d = start.elapsed();
    assert!(status.code().is_some(), "squawk was killed: {status}");
    d
}

fn mb(files: &[PathBuf]) -> f64 {
    files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum::<u64>() as f64
        / (1024.0 * 1024.0)
}

#[test]
#[ignore = "benchmark: cargo test --test it bench_migrations -- --ignored --nocapture"]
fn bench_check_migrations() {
    let (root, files) = corpus();
    let total = mb(&files);
    assert!(
        files.len() >= 3_000 && total >= 40.0,
        "corpus too small: {} files, {total:.1} MB",
        files.len()
    );
    let squawk = squawk();
    let profile = if cfg!(debug_assertions) {
        "dev profile (what `cargo xtask` runs)"
    } else {
        "release"
    };
    println!(
        "\ncheck-migrations --all, {profile}, {} parser threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if let Err(why) = &squawk {
        println!("squawk-cli: not compared: {why}");
    }
    println!(
        "{:>8} {:>7} {:>9} {:>14} {:>14} {:>10}",
        "corpus", "files", "MB", "xtask", "squawk-cli", "xtask MB/s"
    );
    for (label, n) in [
        ("quarter", files.len() / 4),
        ("half", files.len() / 2),
        ("full", files.len()),
    ] {
        let part = &files[..n];
        let repo = subset(&root, part, label);
        let ours = best_of(3, || time_xtask(&repo, None));
        let theirs = match &squawk {
            Ok(bin) => format!(
                "{:>12.0}ms",
                best_of(3, || time_squawk(bin, part)).as_secs_f64() * 1e3
            ),
            Err(_) => "-".into(),
        };
        let size = mb(part);
        println!(
            "{label:>8} {n:>7} {size:>9.1} {:>12.0}ms {theirs:>14} {:>10.1}",
            ours.as_secs_f64() * 1e3,
            size / ours.as_secs_f64()
        );
    }
    // What the second core buys: the full corpus on one parser thread.
    let one = best_of(3, || time_xtask(&root.join("full"), Some(1)));
    println!(
        "full corpus with XTASK_THREADS=1: {:.0}ms",
        one.as_secs_f64() * 1e3
    );
}
