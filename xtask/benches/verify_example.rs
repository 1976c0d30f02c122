//! Wall time of `verify` on the example monorepo, lint and tests run side by side, beside
//! the sum of their separate times. Prints figures; asserts nothing about speed.
//!
//!     cargo bench --bench verify_example
//!
//! Uses a temporary copy of the example with node modules installed by the pinned pnpm
//! (provisioned under target/), like the tests.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use xtask::{
    config::Config,
    gather::commands::{self, Kind},
};

const ROUNDS: usize = 3;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let Some((copy, pnpm)) = common::example_with_node_modules("bench-verify") else {
        eprintln!("benchmark skipped: pnpm or the example's node modules are not available");
        return;
    };
    std::env::set_var("XTASK_PNPM", &pnpm);
    std::env::set_var(
        "npm_config_store_dir",
        common::workspace().join("target/xtask-cache/pnpm-store"),
    );
    let repo = copy.path();
    let config = Config::load(repo).expect("example config");
    let timeout = Duration::from_secs(config.commands.timeout_secs);

    // Warm up once (first runs pay for cold caches).
    let _ = commands::run_one(repo, &config.commands.lint, Kind::Lint, timeout, false);
    let _ = commands::run_one(repo, &config.commands.test, Kind::Tests, timeout, false);

    let (mut lint, mut tests, mut both, mut verify) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let r = commands::run_one(repo, &config.commands.lint, Kind::Lint, timeout, false);
        lint.push(t.elapsed());
        assert_eq!(r.status, xtask::model::Status::Pass, "lint: {}", r.summary);

        let t = Instant::now();
        let r = commands::run_one(repo, &config.commands.test, Kind::Tests, timeout, false);
        tests.push(t.elapsed());
        assert_eq!(r.status, xtask::model::Status::Pass, "tests: {}", r.summary);

        let mut no_setup = config.clone();
        no_setup.commands.setup = Default::default();
        let t = Instant::now();
        let _ = commands::run(repo, &no_setup, false);
        both.push(t.elapsed());

        let t = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .current_dir(repo)
            .args(["verify", "--all", "--live", "off", "--format", "json"])
            .env("XTASK_NO_SPINNER", "1")
            .output()
            .expect("xtask runs");
        verify.push(t.elapsed());
        assert!(out.status.code().is_some());
    }
    let (l, t, b, v) = (median(lint), median(tests), median(both), median(verify));
    println!(
        "verify on examples/dashboard (median of {ROUNDS}, {} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  lint alone                      {:>7.2} s",
        l.as_secs_f64()
    );
    println!(
        "  tests alone                     {:>7.2} s",
        t.as_secs_f64()
    );
    println!(
        "  sum of the two                  {:>7.2} s",
        (l + t).as_secs_f64()
    );
    println!(
        "  lint + tests side by side       {:>7.2} s  ({:.0}% of the sum)",
        b.as_secs_f64(),
        100.0 * b.as_secs_f64() / (l + t).as_secs_f64()
    );
    println!(
        "  whole `verify --all` (w/ setup) {:>7.2} s",
        v.as_secs_f64()
    );
}
