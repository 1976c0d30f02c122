//! The command line, exactly as `../shared/contract.md` § Commands promises it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Backend-stage automation for multi-tenant Next.js + Supabase monorepos",
    long_about = "Backend-stage automation for multi-tenant Next.js + Supabase monorepos.\n\n\
        Runs the coding agent on a backend work item, then fills the Backend -> Code Review \
        handover from evidence it measures itself: migrations, RLS policies, routes, lint and tests.",
    after_help = "Exit status: 0 every check passed, 1 a check failed, 2 usage or configuration error, \
        3 the agent or a required tool failed to run. \"Could not be checked\" is never 0.",
    arg_required_else_help = true,
    disable_help_subcommand = true
)]
pub struct Xtask {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the coding agent on a work item, then verify what it did and print the handover.
    BackendStage(BackendStage),
    /// Check what changed (migrations, RLS, routes, lint, tests) and print the handover.
    Verify(Verify),
    /// Static migration checks only, fast enough for a pre-commit hook.
    CheckMigrations(CheckMigrations),
    /// Install the pre-push hook into the repository's hooks directory.
    InstallHooks(InstallHooks),
    /// Write xtask.toml from the repository's own conventions, each key with its evidence.
    Init(Init),
}

#[derive(Debug, Args)]
pub struct BackendStage {
    /// The repository to work on [default: the git work tree of the current directory].
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// The work item as text.
    #[arg(long, value_name = "TEXT", group = "task_source")]
    pub task: Option<String>,
    /// The work item from a file (often the frontend's handover).
    #[arg(long, value_name = "FILE", group = "task_source")]
    pub task_file: Option<PathBuf>,
    /// `-`: read the work item from standard input.
    #[arg(value_name = "-", group = "task_source", value_parser = stdin_marker)]
    pub stdin: Option<String>,
    /// The agent to run.
    #[arg(long, value_enum, default_value_t = AgentKind::Codex)]
    pub agent: AgentKind,
    /// Wall-clock limit for one agent run, in seconds [default: agent.timeout_secs of xtask.toml].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// When a check fails, give the failures back to the agent and verify again, up to N times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fix_rounds: u32,
    /// Print the assembled prompt and exit without running the agent.
    #[arg(long)]
    pub print_prompt: bool,
    /// Run the agent only; do not verify afterwards.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

fn stdin_marker(s: &str) -> Result<String, String> {
    if s == "-" {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unexpected argument `{s}`: give the task with --task, --task-file or `-` for stdin"
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentKind {
    /// The `codex` CLI (`codex exec`).
    Codex,
}

#[derive(Debug, Args)]
pub struct Verify {
    /// The repository to check [default: the git work tree of the current directory].
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyOptions {
    /// Compare the work tree with this commit [default: merge base with the default branch, else HEAD].
    #[arg(long, value_name = "REF", conflicts_with = "all")]
    pub base: Option<String>,
    /// Treat every migration and route file as new.
    #[arg(long)]
    pub all: bool,
    /// Apply the migrations to a real Postgres: `auto` when one can be had, `on` required, `off` never.
    #[arg(long, value_enum, default_value_t = Live::Auto)]
    pub live: Live,
    /// Postgres to use for the live check [default: XTASK_DATABASE_URL, else a throwaway cluster].
    #[arg(
        long,
        value_name = "URL",
        env = "XTASK_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Do not run the lint and test commands (their items become `unknown`).
    #[arg(long)]
    pub skip_commands: bool,
    /// Output format [default: markdown; github when GITHUB_ACTIONS is set].
    #[arg(long, value_enum, value_name = "F")]
    pub format: Option<Format>,
    /// Also write the report to FILE (atomically); the terminal then gets the compact text view.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Judge with the changed xtask.toml (a reviewed change) [default: a loosened xtask.toml is replaced by the base's].
    #[arg(long)]
    pub trust_config: bool,
    /// Set by `backend-stage`: the change being verified is the agent's.
    #[arg(skip)]
    pub agent_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Live {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The Backend -> Code Review handover.
    Markdown,
    /// The JSON report, version 1.
    Json,
    /// A compact terminal view.
    Text,
    /// GitHub Actions annotations and step summary.
    Github,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// JUnit XML: one test case per checklist item and per finding.
    Junit,
}

impl Format {
    /// The default: `github` inside GitHub Actions (unless XTASK_GITHUB=0), else `fallback`.
    pub fn resolve(f: Option<Format>, fallback: Format) -> Format {
        f.unwrap_or_else(|| {
            let in_actions = std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true");
            let disabled = std::env::var_os("XTASK_GITHUB").is_some_and(|v| v == "0");
            if in_actions && !disabled {
                Format::Github
            } else {
                fallback
            }
        })
    }
}

#[derive(Debug, Args)]
pub struct CheckMigrations {
    /// The repository to check [default: the git work tree of the current directory].
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Compare the work tree with this commit [default: merge base with the default branch, else HEAD].
    #[arg(long, value_name = "REF", conflicts_with = "all")]
    pub base: Option<String>,
    /// Check every migration file, not only the new ones.
    #[arg(long)]
    pub all: bool,
    /// Output format [default: text].
    #[arg(long, value_enum, value_name = "F")]
    pub format: Option<Format>,
    /// Only these migration files count as new (paths relative to the repository).
    #[arg(value_name = "FILES")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InstallHooks {
    /// The repository to install into [default: the git work tree of the current directory].
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Replace a different existing hook (it is kept as pre-push.xtask-backup).
    #[arg(long, conflicts_with = "uninstall")]
    pub force: bool,
    /// Remove our hook and put back the one it replaced, if any.
    #[arg(long)]
    pub uninstall: bool,
}

#[derive(Debug, Args)]
pub struct Init {
    /// The repository to read [default: the git work tree of the current directory].
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Replace an existing xtask.toml.
    #[arg(long)]
    pub force: bool,
    /// Write the configuration to standard output instead of xtask.toml.
    #[arg(long)]
    pub print: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Xtask::command().debug_assert();
    }

    #[test]
    fn task_sources_are_exclusive() {
        let r = Xtask::try_parse_from(["x", "backend-stage", "--task", "a", "--task-file", "f"]);
        assert!(r.is_err());
        let r = Xtask::try_parse_from(["x", "backend-stage", "-"]).unwrap();
        let Cmd::BackendStage(b) = r.cmd else {
            panic!()
        };
        assert_eq!(b.stdin.as_deref(), Some("-"));
        assert!(Xtask::try_parse_from(["x", "backend-stage", "oops"]).is_err());
    }

    #[test]
    fn base_and_all_conflict() {
        assert!(Xtask::try_parse_from(["x", "verify", "--base", "main", "--all"]).is_err());
        let r =
            Xtask::try_parse_from(["x", "verify", "--all", "--live", "off", "--format", "json"])
                .unwrap();
        let Cmd::Verify(v) = r.cmd else { panic!() };
        assert!(v.verify.all);
        assert_eq!(v.verify.live, Live::Off);
        assert_eq!(v.verify.format, Some(Format::Json));
    }
}
