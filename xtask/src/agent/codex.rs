//! Running `codex exec` (facts: `../shared/reference/codex-exec.md`).
//!
//! The argv is built without a shell and the prompt goes on stdin, never as an argument:
//! Linux caps one argument at 128 KiB, and a task's quotes, backticks and `$(...)` must reach
//! the model as bytes, not as shell syntax. The child runs in its own process group (see
//! `proc`), so the timeout ends codex and everything it started. Each stdout line is a JSON
//! event: it is written to the run's log file as it arrives (a killed run keeps its log) and
//! shown in the live view.

use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::{
    config::Agent,
    exit,
    proc::{self, SpawnError, Spec, Stream},
};

use super::{
    events::{self, Transcript},
    live::Live,
};

/// How to install the version these facts were measured on.
pub const INSTALL_HINT: &str = "install it with `npm install -g @openai/codex@0.169.0`, or set `command` in the [agent] table of xtask.toml to its path";

/// `codex exec --json -s <sandbox> -C <repo> -o <file> --color never [-m model] [extra] -`
pub fn exec_argv(agent: &Agent, program: &str, repo: &Path, last_message: &Path) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        program.into(),
        "exec".into(),
        "--json".into(),
        "-s".into(),
        agent.sandbox.clone(),
        "-C".into(),
        repo.display().to_string(),
        "-o".into(),
        last_message.display().to_string(),
        "--color".into(),
        "never".into(),
    ];
    if !agent.model.is_empty() {
        argv.extend(["-m".into(), agent.model.clone()]);
    }
    argv.extend(agent.extra_args.iter().cloned());
    argv.push("-".into());
    argv
}

/// `codex exec resume --json -o <file> -c sandbox_mode="<sandbox>" [-m model] [extra] <thread> -`
///
/// `exec resume` takes neither `-C` (the child's working directory is the repository instead)
/// nor `-s` nor `--color`; the sandbox is given as a config override.
pub fn resume_argv(
    agent: &Agent,
    program: &str,
    thread_id: &str,
    last_message: &Path,
) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        program.into(),
        "exec".into(),
        "resume".into(),
        "--json".into(),
        "-o".into(),
        last_message.display().to_string(),
        "-c".into(),
        format!("sandbox_mode=\"{}\"", agent.sandbox),
    ];
    if !agent.model.is_empty() {
        argv.extend(["-m".into(), agent.model.clone()]);
    }
    argv.extend(agent.extra_args.iter().cloned());
    argv.push(thread_id.into());
    argv.push("-".into());
    argv
}

/// The codex program: `agent.command` on PATH, or a path (relative paths are taken from the
/// repository root). Missing: exit 3 with how to install it.
pub fn locate(agent: &Agent, repo: &Path) -> anyhow::Result<String> {
    let cmd = agent.command.trim();
    let found = if cmd.contains('/') && !Path::new(cmd).is_absolute() {
        proc::which(&repo.join(cmd).display().to_string())
    } else {
        proc::which(cmd)
    };
    match found {
        Some(p) => Ok(p.display().to_string()),
        None => Err(exit::tool(format!(
            "`{cmd}` not found (agent.command in xtask.toml; PATH searched): the codex CLI is required for backend-stage; {INSTALL_HINT}"
        ))),
    }
}

/// One finished run of codex.
pub struct Run {
    pub output: proc::Output,
    pub transcript: Transcript,
    /// The `-o` file's contents: codex's final message, verbatim.
    pub last_message: Option<String>,
}

/// Run codex with `prompt` on stdin; the JSONL goes to `events_file` as it arrives.
pub fn run(
    argv: Vec<String>,
    cwd: &Path,
    prompt: &str,
    timeout: Duration,
    live: Live,
    events_file: &Path,
    last_message: &Path,
) -> anyhow::Result<Run> {
    // On failure codex leaves `-o` untouched: a stale file must not pass for this run's message.
    let _ = std::fs::remove_file(last_message);
    let log = File::create(events_file).map_err(|e| {
        exit::tool(format!(
            "cannot create the event log {}: {e}",
            events_file.display()
        ))
    })?;
    let log = Arc::new(Mutex::new(log));
    let transcript = Arc::new(Mutex::new(Transcript::default()));
    let live = Arc::new(live);
    let sink: proc::Sink = {
        let (log, transcript, live) = (log.clone(), transcript.clone(), live.clone());
        Arc::new(move |stream, line| {
            if stream == Stream::Stderr {
                return; // kept by proc for the error message; codex's warnings are noise live
            }
            if let Ok(mut f) = log.lock() {
                let _ = writeln!(f, "{line}");
            }
            let Some(ev) = events::parse(line) else {
                return;
            };
            if let Ok(mut t) = transcript.lock() {
                t.push(&ev);
            }
            live.event(&ev);
        })
    };
    let mut spec = Spec::new(argv.clone(), cwd, timeout);
    spec.stdin = Some(prompt.as_bytes().to_vec());
    spec.sink = Some(sink);
    let output = proc::run(spec).map_err(|e| match e {
        SpawnError::NotFound(p) => exit::tool(format!("`{p}` not found: {INSTALL_HINT}")),
        other => exit::tool(format!("{other}")),
    })?;
    // The reader threads are done with their sink: this drop stops the status line.
    drop(live);
    if let Ok(mut f) = log.lock() {
        let _ = f.flush();
    }
    let transcript = transcript.lock().map(|t| t.clone()).unwrap_or_default();
    let last_message = std::fs::read_to_string(last_message).ok();
    Ok(Run {
        output,
        transcript,
        last_message,
    })
}

/// `Err` (exit 3) when the run did not complete: the message says why, with codex's exit
/// code, and where the log is.
pub fn check(run: &Run, timeout: Duration, events_file: &Path) -> anyhow::Result<()> {
    let out = &run.output;
    let log = format!("events: {}", events_file.display());
    if out.timed_out {
        return Err(exit::tool(format!(
            "codex did not finish within {}s (--timeout or agent.timeout_secs): its whole process group was ended; {log}",
            timeout.as_secs()
        )));
    }
    if out.interrupted {
        return Err(exit::tool(format!(
            "interrupted: codex and its process group were ended; {log}"
        )));
    }
    if let Some(msg) = &run.transcript.turn_failed {
        return Err(exit::tool(format!(
            "codex failed ({}): {msg}; {log}",
            out.describe(timeout)
        )));
    }
    if out.code != Some(0) {
        let tail = stderr_tail(&out.stderr);
        return Err(exit::tool(format!(
            "codex failed ({}){}; {log}",
            out.describe(timeout),
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        )));
    }
    Ok(())
}

/// The last few meaningful stderr lines, for an error message.
fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("WARNING: proceeding"))
        .collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// The files of one round inside the run directory.
pub struct RoundFiles {
    pub prompt: PathBuf,
    pub events: PathBuf,
    pub last_message: PathBuf,
}

impl RoundFiles {
    pub fn new(run_dir: &Path, round: u32) -> RoundFiles {
        RoundFiles {
            prompt: run_dir.join(format!("round-{round}.prompt.md")),
            events: run_dir.join(format!("round-{round}.jsonl")),
            last_message: run_dir.join(format!("round-{round}.last-message.md")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_argv_has_the_prompt_on_stdin_and_config_in_place() {
        let mut agent = Agent::default();
        let argv = exec_argv(&agent, "codex", Path::new("/r"), Path::new("/d/last"));
        assert_eq!(
            argv,
            [
                "codex",
                "exec",
                "--json",
                "-s",
                "workspace-write",
                "-C",
                "/r",
                "-o",
                "/d/last",
                "--color",
                "never",
                "-"
            ]
        );
        agent.model = "gpt-5-codex".into();
        agent.sandbox = "read-only".into();
        agent.extra_args = vec!["--skip-git-repo-check".into()];
        let argv = exec_argv(&agent, "/opt/codex", Path::new("/r"), Path::new("/d/last"));
        assert_eq!(&argv[3..5], ["-s", "read-only"]);
        assert_eq!(
            &argv[argv.len() - 4..],
            ["-m", "gpt-5-codex", "--skip-git-repo-check", "-"]
        );
    }

    #[test]
    fn resume_argv_has_no_cd_and_sets_the_sandbox_by_config() {
        let argv = resume_argv(&Agent::default(), "codex", "01a2", Path::new("/d/last"));
        assert_eq!(
            argv,
            [
                "codex",
                "exec",
                "resume",
                "--json",
                "-o",
                "/d/last",
                "-c",
                "sandbox_mode=\"workspace-write\"",
                "01a2",
                "-"
            ]
        );
        assert!(!argv.iter().any(|a| a == "-C" || a == "-s"));
    }

    #[test]
    fn a_missing_codex_is_exit_3_with_the_install_command() {
        let agent = Agent {
            command: "no-such-codex-xyz".into(),
            ..Agent::default()
        };
        let err = locate(&agent, Path::new("/")).unwrap_err();
        assert_eq!(exit::code_of(&err), 3);
        let msg = err.to_string();
        assert!(msg.contains("`no-such-codex-xyz` not found"), "{msg}");
        assert!(
            msg.contains("npm install -g @openai/codex@0.169.0"),
            "{msg}"
        );
    }

    #[test]
    fn failures_say_why_with_the_exit_code() {
        let out = |code, timed_out, stderr: &str| proc::Output {
            code,
            signal: None,
            timed_out,
            interrupted: false,
            stdout: String::new(),
            stderr: stderr.into(),
            duration: Duration::ZERO,
        };
        let t = Duration::from_secs(7);
        let f = Path::new("/d/round-1.jsonl");
        let run = |output, turn_failed: Option<&str>| {
            let mut transcript = Transcript::default();
            transcript.turn_failed = turn_failed.map(str::to_string);
            Run {
                output,
                transcript,
                last_message: None,
            }
        };
        let err = check(
            &run(out(Some(1), false, ""), Some("unexpected status 500")),
            t,
            f,
        )
        .unwrap_err();
        assert_eq!(exit::code_of(&err), 3);
        assert_eq!(
            err.to_string(),
            "codex failed (exit code 1): unexpected status 500; events: /d/round-1.jsonl"
        );
        let err = check(&run(out(None, true, ""), None), t, f).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("codex did not finish within 7s"),
            "{err}"
        );
        let err = check(
            &run(
                out(Some(2), false, "WARNING: proceeding\nerror: bad flag\n"),
                None,
            ),
            t,
            f,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("(exit code 2): error: bad flag"),
            "{err}"
        );
        assert!(check(&run(out(Some(0), false, ""), None), t, f).is_ok());
    }
}
