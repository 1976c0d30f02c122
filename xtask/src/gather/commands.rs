//! The lint and test commands: run concurrently, each with a timeout, and judged from what
//! they printed as well as their exit code, because a green exit can mean "nothing ran"
//! (`../shared/reference/pnpm-eslint-vitest.md`):
//! - `pnpm --filter X` that matches no package exits 0: we pass `--fail-if-no-match`, and
//!   also look for pnpm's "No projects matched" line (a nested pnpm in a root script).
//! - a script missing in the filtered package exits 0 on pnpm 9: we check package.json before
//!   running and look for "None of the selected packages has a ... script".
//! - vitest / node --test with no tests: "no tests ran" is not a pass.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    thread,
    time::Duration,
};

use regex::Regex;

use crate::{
    config::{CommandLine, Config},
    model::{CommandReport, Status},
    proc::{self, SpawnError, Spec},
};

use super::Missing;

/// Results of the setup, lint and test commands.
pub struct CommandResults {
    pub lint: Result<CommandReport, Missing>,
    pub tests: Result<CommandReport, Missing>,
    /// The setup command, when one is configured.
    pub setup: Option<CommandReport>,
}

/// What kind of output a command produces, to read its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lint,
    Tests,
    Setup,
}

impl Kind {
    fn id(self) -> &'static str {
        match self {
            Kind::Lint => "lint",
            Kind::Tests => "tests",
            Kind::Setup => "setup",
        }
    }
}

/// Run setup (if configured), then lint and tests side by side.
pub fn run(repo: &Path, config: &Config, live_view: bool) -> CommandResults {
    let timeout = Duration::from_secs(config.commands.timeout_secs);
    let c = &config.commands;
    let setup =
        (!c.setup.is_empty()).then(|| run_one(repo, &c.setup, Kind::Setup, timeout, live_view));
    if let Some(s) = &setup {
        if s.status != Status::Pass {
            let why = format!(
                "not run: the setup command `{}` did not succeed ({})",
                c.setup, s.summary
            );
            return CommandResults {
                lint: Err(why.clone()),
                tests: Err(why),
                setup,
            };
        }
    }
    let (lint, tests) = thread::scope(|scope| {
        let lint = scope.spawn(|| run_one(repo, &c.lint, Kind::Lint, timeout, live_view));
        let tests = scope.spawn(|| run_one(repo, &c.test, Kind::Tests, timeout, live_view));
        (
            lint.join().expect("lint thread"),
            tests.join().expect("tests thread"),
        )
    });
    CommandResults {
        lint: Ok(lint),
        tests: Ok(tests),
        setup,
    }
}

/// Run one configured command and judge it.
pub fn run_one(
    repo: &Path,
    line: &CommandLine,
    kind: Kind,
    timeout: Duration,
    live_view: bool,
) -> CommandReport {
    let mut argv = line.0.clone();
    let mut report = CommandReport {
        id: kind.id().to_string(),
        argv: argv.clone(),
        exit_code: None,
        duration_ms: 0,
        summary: String::new(),
        status: Status::Unknown,
        output_tail: String::new(),
    };
    if argv.is_empty() {
        report.summary = format!(
            "no {} command configured (commands.{} in xtask.toml)",
            kind.id(),
            kind.id()
        );
        return report;
    }
    let is_pnpm = Path::new(&argv[0]).file_name().is_some_and(|n| n == "pnpm");
    if is_pnpm {
        if let Err(why) = pnpm_preflight(repo, &argv) {
            report.summary = why;
            report.status = Status::Fail;
            return report;
        }
        match pnpm_binary(repo) {
            Ok(bin) => argv[0] = bin.to_string_lossy().into_owned(),
            Err(why) => {
                report.summary = why;
                return report;
            }
        }
        if argv
            .iter()
            .any(|a| a == "--filter" || a.starts_with("--filter="))
            && !argv.iter().any(|a| a == "--fail-if-no-match")
        {
            argv.insert(1, "--fail-if-no-match".into());
        }
        report.argv = argv.clone();
    }
    let mut spec = Spec::new(argv, repo, timeout);
    if is_pnpm {
        // Root scripts call `pnpm` again (`test:api` = `pnpm --filter api test`): the pnpm we
        // resolved must be the one they find.
        if let Some(dir) = Path::new(&spec.argv[0])
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let joined = std::env::join_paths(
                std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path)),
            )
            .unwrap_or(path);
            spec.env
                .push(("PATH".into(), joined.to_string_lossy().into_owned()));
        }
    }
    // No colour codes in what we parse; children still see a normal environment.
    spec.env.push(("NO_COLOR".into(), "1".into()));
    spec.env.push(("FORCE_COLOR".into(), "0".into()));
    if live_view {
        spec.sink = Some(proc::prefixed_stderr(&format!("{:>5} │ ", kind.id())));
    }
    let out = match proc::run(spec) {
        Ok(out) => out,
        Err(SpawnError::NotFound(p)) => {
            report.summary = format!(
                "`{p}` not found on PATH: install it, or set commands.{} in xtask.toml",
                kind.id()
            );
            return report;
        }
        Err(e) => {
            report.summary = e.to_string();
            return report;
        }
    };
    report.duration_ms = out.duration.as_millis() as u64;
    report.output_tail = out.tail(40);
    if out.timed_out || out.interrupted || out.code.is_none() {
        report.summary = format!("did not finish: {}", out.describe(timeout));
        return report;
    }
    report.exit_code = out.code;
    let text = strip_ansi(&out.combined());
    let (status, summary) = judge(kind, out.code == Some(0), &text, is_pnpm);
    report.status = status;
    report.summary = summary;
    report
}

/// Decide a command's status from its exit and output.
pub fn judge(kind: Kind, exit_ok: bool, text: &str, via_pnpm: bool) -> (Status, String) {
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("No projects matched the filters"))
    {
        return (Status::Fail, format!("nothing ran: {}", line.trim()));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("None of the selected packages has a"))
    {
        return (Status::Fail, format!("nothing ran: {}", line.trim()));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("ERR_PNPM_NO_SCRIPT") || l.contains("Missing script"))
    {
        return (Status::Fail, format!("nothing ran: {}", line.trim()));
    }
    match kind {
        Kind::Setup => {
            if exit_ok {
                (Status::Pass, "done".into())
            } else {
                (
                    Status::Fail,
                    first_error_line(text).unwrap_or_else(|| "failed".into()),
                )
            }
        }
        Kind::Lint => {
            // pnpm prints a `> pkg@version script /path` banner for each script it runs.
            let ran = !via_pnpm
                || text
                    .lines()
                    .any(|l| l.starts_with("> ") || l.contains(" lint$ ") || l.contains(" lint: "));
            let counts = eslint_counts(text);
            let summary = match counts {
                Some((e, w)) => format!("{e} error{}, {w} warning{}", plural(e), plural(w)),
                None if exit_ok => "0 errors, 0 warnings".into(),
                None => first_error_line(text).unwrap_or_else(|| "lint failed".into()),
            };
            match (exit_ok, counts) {
                (true, Some((0, _)) | None) if ran => (Status::Pass, summary),
                (true, _) if !ran => (
                    Status::Unknown,
                    "exit 0, but no script ran (no pnpm banner in the output)".into(),
                ),
                (true, Some((e, _))) => (Status::Fail, format!("exit 0 with {e} errors reported")),
                _ => (Status::Fail, summary),
            }
        }
        Kind::Tests => match test_counts(text) {
            Some(c) if c.total_ran() == 0 => (Status::Fail, "no tests ran".into()),
            Some(c) => {
                let summary = c.summary();
                if exit_ok && c.failed == 0 {
                    (Status::Pass, summary)
                } else {
                    (Status::Fail, summary)
                }
            }
            None if text.contains("No test files found") => {
                (Status::Fail, "no tests ran: no test files found".into())
            }
            None if exit_ok => (
                Status::Unknown,
                "exit 0, but no test count was found in the output".into(),
            ),
            None => (
                Status::Fail,
                first_error_line(text).unwrap_or_else(|| "tests failed".into()),
            ),
        },
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid regex"))
}

/// eslint's `✖ 5 problems (3 errors, 2 warnings)`, summed over every run in the output.
pub fn eslint_counts(text: &str) -> Option<(u64, u64)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = re(&RE, r"(\d+) problems? \((\d+) errors?, (\d+) warnings?\)");
    let mut found = None;
    for c in re.captures_iter(text) {
        let (e, w) = found.unwrap_or((0, 0));
        found = Some((
            e + c[2].parse::<u64>().unwrap_or(0),
            w + c[3].parse::<u64>().unwrap_or(0),
        ));
    }
    found
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub failed_names: Vec<String>,
}

impl TestCounts {
    fn total_ran(&self) -> u64 {
        self.passed + self.failed
    }

    fn summary(&self) -> String {
        let mut s = format!("{} passed", self.passed);
        if self.failed > 0 {
            s.push_str(&format!(", {} failed", self.failed));
        }
        if self.skipped > 0 {
            s.push_str(&format!(", {} skipped", self.skipped));
        }
        if !self.failed_names.is_empty() {
            const SHOWN: usize = 5;
            let mut names = self
                .failed_names
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            if self.failed_names.len() > SHOWN {
                names.push_str(&format!("; and {} more", self.failed_names.len() - SHOWN));
            }
            s.push_str(&format!(": {names}"));
        }
        s
    }
}

/// vitest's `Tests  1 failed | 11 passed | 1 skipped (13)` (summed over every run in the
/// output), or node --test's TAP counts. Failed test names from vitest's `FAIL  file > test`.
pub fn test_counts(text: &str) -> Option<TestCounts> {
    static VITEST: OnceLock<Regex> = OnceLock::new();
    static PART: OnceLock<Regex> = OnceLock::new();
    static FAIL: OnceLock<Regex> = OnceLock::new();
    static TAP: OnceLock<Regex> = OnceLock::new();
    let vitest = re(&VITEST, r"(?m)^\s*Tests\s+(.+?)\s*\(\d+\)\s*$");
    let part = re(&PART, r"(\d+) (passed|failed|skipped|todo)");
    let fail = re(&FAIL, r"(?m)^\s*FAIL\s+(.+ > .+?)\s*$");
    let mut counts: Option<TestCounts> = None;
    for line in vitest.captures_iter(text) {
        let c = counts.get_or_insert_with(TestCounts::default);
        for p in part.captures_iter(&line[1]) {
            let n: u64 = p[1].parse().unwrap_or(0);
            match &p[2] {
                "passed" => c.passed += n,
                "failed" => c.failed += n,
                _ => c.skipped += n,
            }
        }
    }
    if let Some(c) = &mut counts {
        for f in fail.captures_iter(text) {
            let name = f[1].trim().to_string();
            if !c.failed_names.contains(&name) {
                c.failed_names.push(name);
            }
        }
        return counts;
    }
    // node --test (TAP): `# tests 4`, `# pass 3`, `# fail 1`, `# skipped 0`.
    let tap = re(&TAP, r"(?m)^# (tests|pass|fail|skipped|todo) (\d+)\s*$");
    let mut c = TestCounts::default();
    let mut seen = false;
    for m in tap.captures_iter(text) {
        seen = true;
        let n: u64 = m[2].parse().unwrap_or(0);
        match &m[1] {
            "pass" => c.passed += n,
            "fail" => c.failed += n,
            "skipped" | "todo" => c.skipped += n,
            _ => {}
        }
    }
    seen.then_some(c)
}

fn first_error_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| {
            l.contains("ERR_PNPM")
                || l.starts_with("Error")
                || l.contains("error:")
                || l.contains("Oops!")
                || l.ends_with("not found")
        })
        .map(|l| l.chars().take(200).collect())
}

/// Remove ANSI escape sequences (colour, cursor movement) before parsing.
pub fn strip_ansi(s: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    re(&RE, r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
        .replace_all(s, "")
        .into_owned()
}

/// Before running `pnpm [--filter NAME] SCRIPT`: the script must exist, or a green exit
/// would mean nothing ran. Only decides what it can read; anything else is left to the
/// output checks.
fn pnpm_preflight(repo: &Path, argv: &[String]) -> Result<(), String> {
    let mut filter: Option<&str> = None;
    let mut script: Option<&str> = None;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--filter" || a == "-F" {
            filter = argv.get(i + 1).map(String::as_str);
            i += 2;
            continue;
        }
        if let Some(f) = a.strip_prefix("--filter=") {
            filter = Some(f);
        } else if a == "run" {
            // `pnpm run SCRIPT`
        } else if !a.starts_with('-') {
            script = Some(a);
            break;
        }
        i += 1;
    }
    let Some(script) = script else { return Ok(()) };
    if matches!(script, "install" | "i" | "add" | "exec" | "dlx") && filter.is_none() {
        return Ok(()); // pnpm's own commands
    }
    let manifest = match filter {
        None => repo.join("package.json"),
        Some(name) => match find_workspace_package(repo, name) {
            Some(dir) => dir.join("package.json"),
            None => return Ok(()), // a glob or path filter: the output checks decide
        },
    };
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return Err(format!(
            "{} not found: is this a pnpm workspace?",
            manifest.display()
        ));
    };
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: invalid JSON: {e}", manifest.display()))?;
    let has = json.get("scripts").and_then(|s| s.get(script)).is_some();
    if has {
        Ok(())
    } else {
        let rel = manifest
            .strip_prefix(repo)
            .unwrap_or(&manifest)
            .display()
            .to_string();
        Err(format!("nothing to run: {rel} has no \"{script}\" script"))
    }
}

/// The directory of the workspace package whose package.json `name` is `name`: the usual
/// workspace folders (`apps/*`, `packages/*`, and those named in pnpm-workspace.yaml).
fn find_workspace_package(repo: &Path, name: &str) -> Option<PathBuf> {
    let mut roots = vec!["apps".to_string(), "packages".to_string()];
    if let Ok(ws) = std::fs::read_to_string(repo.join("pnpm-workspace.yaml")) {
        for line in ws.lines() {
            let item = line
                .trim()
                .trim_start_matches('-')
                .trim()
                .trim_matches(['\'', '"']);
            if let Some(dir) = item.strip_suffix("/*").or_else(|| item.strip_suffix("/**")) {
                if !dir.starts_with('!') && !roots.iter().any(|r| r == dir) {
                    roots.push(dir.to_string());
                }
            }
        }
    }
    for root in roots {
        let Ok(entries) = std::fs::read_dir(repo.join(&root)) else {
            continue;
        };
        for e in entries.flatten() {
            let manifest = e.path().join("package.json");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if json.get("name").and_then(|n| n.as_str()) == Some(name) {
                return Some(e.path());
            }
        }
    }
    None
}

/// The pnpm to run: `XTASK_PNPM`, else `pnpm` on PATH, else the version the repository pins
/// in `packageManager`, installed once from the npm registry into the xtask cache.
pub fn pnpm_binary(repo: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("XTASK_PNPM") {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = proc::which("pnpm") {
        return Ok(p);
    }
    let pinned = pinned_pnpm(repo).ok_or_else(|| {
        "pnpm not found on PATH: install it with `npm install -g pnpm@9` or `corepack enable pnpm`".to_string()
    })?;
    provision_pnpm(&pinned)
}

/// `9.15.0` from `"packageManager": "pnpm@9.15.0+sha512..."`.
fn pinned_pnpm(repo: &Path) -> Option<String> {
    let text = std::fs::read_to_string(repo.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let pm = json.get("packageManager")?.as_str()?;
    let version = pm.strip_prefix("pnpm@")?.split('+').next()?;
    version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        .then(|| version.to_string())
}

/// Where xtask keeps what it installs for itself: `XTASK_CACHE_DIR`, else `target/xtask-cache`
/// of the workspace this xtask was built from. Never inside the checked repository.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XTASK_CACHE_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/xtask-cache")
}

/// `npm install --prefix <cache>/pnpm-<version> pnpm@<version>`, once.
pub fn provision_pnpm(version: &str) -> Result<PathBuf, String> {
    let prefix = cache_dir().join(format!("pnpm-{version}"));
    let bin = prefix.join("node_modules/.bin/pnpm");
    if bin.is_file() {
        return Ok(bin);
    }
    let hint = format!("pnpm not found on PATH, and pnpm@{version} (package.json packageManager) could not be installed");
    if proc::which("npm").is_none() {
        return Err(format!(
            "{hint}: npm is missing too; install Node.js, then `npm install -g pnpm@{version}`"
        ));
    }
    std::fs::create_dir_all(&prefix).map_err(|e| format!("{hint}: {}: {e}", prefix.display()))?;
    let progress =
        crate::ui::Progress::start(&format!("installing pnpm@{version} from the npm registry"));
    let sh = xshell::Shell::new().map_err(|e| format!("{hint}: {e}"))?;
    sh.change_dir(&prefix);
    let package = format!("pnpm@{version}");
    let mut spec: Spec = xshell::cmd!(
        sh,
        "npm install --no-audit --no-fund --prefix {prefix} {package}"
    )
    .into();
    spec.timeout = Duration::from_secs(300);
    let out = proc::run(spec);
    match out {
        Ok(o) if o.success() && bin.is_file() => {
            progress.finish("done");
            Ok(bin)
        }
        Ok(o) => {
            progress.finish("failed");
            Err(format!(
                "{hint}: npm {}: {}",
                o.describe(Duration::from_secs(300)),
                o.tail(3)
            ))
        }
        Err(e) => {
            progress.finish("failed");
            Err(format!("{hint}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eslint_summary_is_read() {
        assert_eq!(
            eslint_counts("\n✖ 5 problems (3 errors, 2 warnings)\n"),
            Some((3, 2))
        );
        assert_eq!(
            eslint_counts("✖ 1 problem (1 error, 0 warnings)"),
            Some((1, 0))
        );
        assert_eq!(eslint_counts("all good"), None);
    }

    #[test]
    fn vitest_summary_and_failed_names_are_read() {
        let out = " FAIL  src/app/api/projects/route.test.ts > projects > GET lists rows\n\
                   AssertionError: expected 1 to be 2\n\n \
                   Test Files  1 failed | 2 passed (3)\n      \
                   Tests  1 failed | 11 passed | 1 skipped (13)\n";
        let c = test_counts(out).unwrap();
        assert_eq!((c.passed, c.failed, c.skipped), (11, 1, 1));
        assert_eq!(
            c.failed_names,
            ["src/app/api/projects/route.test.ts > projects > GET lists rows"]
        );
        assert_eq!(
            c.summary(),
            "11 passed, 1 failed, 1 skipped: src/app/api/projects/route.test.ts > projects > GET lists rows"
        );
    }

    #[test]
    fn node_test_tap_counts_are_read() {
        let c = test_counts("# tests 4\n# pass 3\n# fail 1\n# skipped 0\n").unwrap();
        assert_eq!((c.passed, c.failed), (3, 1));
        let none = test_counts("# tests 0\n# pass 0\n# fail 0\n").unwrap();
        assert_eq!(none.total_ran(), 0);
    }

    #[test]
    fn no_tests_is_not_a_pass() {
        let (s, why) = judge(Kind::Tests, true, "# tests 0\n# pass 0\n", false);
        assert_eq!((s, why.as_str()), (Status::Fail, "no tests ran"));
        let (s, _) = judge(Kind::Tests, true, "everything is fine\n", false);
        assert_eq!(s, Status::Unknown);
        let (s, _) = judge(
            Kind::Tests,
            false,
            "No test files found, exiting with code 1\n",
            false,
        );
        assert_eq!(s, Status::Fail);
    }

    #[test]
    fn pnpm_no_match_and_missing_script_are_caught_despite_exit_0() {
        let (s, why) = judge(
            Kind::Lint,
            true,
            "No projects matched the filters in \"/r\"\n",
            true,
        );
        assert_eq!(s, Status::Fail, "{why}");
        let (s, why) = judge(
            Kind::Tests,
            true,
            "None of the selected packages has a \"test\" script\n",
            true,
        );
        assert_eq!(s, Status::Fail, "{why}");
    }

    #[test]
    fn lint_needs_a_banner_to_pass_under_pnpm() {
        let (s, why) = judge(
            Kind::Lint,
            true,
            "> api@0.1.0 lint /r/apps/api\n> eslint .\n\n",
            true,
        );
        assert_eq!((s, why.as_str()), (Status::Pass, "0 errors, 0 warnings"));
        let (s, _) = judge(Kind::Lint, true, "", true);
        assert_eq!(s, Status::Unknown);
        let (s, why) = judge(
            Kind::Lint,
            false,
            "> api lint\n✖ 4 problems (3 errors, 1 warning)\n",
            true,
        );
        assert_eq!((s, why.as_str()), (Status::Fail, "3 errors, 1 warning"));
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(
            strip_ansi("\x1b[31m✖ 1 problem\x1b[39m\x1b[2K"),
            "✖ 1 problem"
        );
    }

    #[test]
    fn preflight_finds_missing_scripts() {
        let dir = std::env::temp_dir().join(format!("xtask-preflight-{}", std::process::id()));
        let api = dir.join("apps/api");
        std::fs::create_dir_all(&api).unwrap();
        std::fs::write(
            dir.join("package.json"),
            r#"{"scripts":{"test:api":"pnpm --filter api test"}}"#,
        )
        .unwrap();
        std::fs::write(
            api.join("package.json"),
            r#"{"name":"api","scripts":{"test":"vitest run"}}"#,
        )
        .unwrap();
        let argv = |s: &str| CommandLine::words(s).0;
        assert!(pnpm_preflight(&dir, &argv("pnpm test:api")).is_ok());
        assert!(pnpm_preflight(&dir, &argv("pnpm --filter api test")).is_ok());
        let err = pnpm_preflight(&dir, &argv("pnpm --filter api lint")).unwrap_err();
        assert_eq!(
            err,
            "nothing to run: apps/api/package.json has no \"lint\" script"
        );
        assert!(pnpm_preflight(&dir, &argv("pnpm test:nope")).is_err());
        // A filter we cannot resolve statically is left to pnpm (--fail-if-no-match).
        assert!(pnpm_preflight(&dir, &argv("pnpm --filter ./apps/* lint")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pinned_pnpm_version_is_read() {
        let dir = std::env::temp_dir().join(format!("xtask-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("package.json"),
            r#"{"packageManager":"pnpm@9.15.0+sha512.abc"}"#,
        )
        .unwrap();
        assert_eq!(pinned_pnpm(&dir).as_deref(), Some("9.15.0"));
        std::fs::write(
            dir.join("package.json"),
            r#"{"packageManager":"pnpm@9; rm -rf /"}"#,
        )
        .unwrap();
        assert_eq!(pinned_pnpm(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
