//! `cargo xtask backend-stage`: run the agent on a work item, verify what it did, and give
//! the failures back to the same agent thread for up to `--fix-rounds` more rounds.
//!
//! The handover's boxes come from `verify`'s evidence, never from the agent. What the agent
//! said and did (final message, commands, the files it reported) is shown next to it and
//! cross-checked against the files that really changed, measured by snapshots taken around
//! each round — which is also how the user's own uncommitted changes are told apart.

use std::{
    io::{Read, Write},
    path::Path,
    time::Duration,
};

use anyhow::Context;

use crate::{
    actions,
    agent::{
        codex::{self, RoundFiles},
        fix,
        live::Live,
        prompt,
        snapshot::{self, Snapshot},
    },
    checklist,
    commands::verify::{self, Target},
    config::Config,
    exit::{self, Outcome},
    flags,
    gather::Evidence,
    model::{AgentReport, AgentRound, ChecklistItem, RoundVerify, Status},
    render, repo,
};

pub fn run(flags: flags::BackendStage) -> anyhow::Result<Outcome> {
    let target = Target::resolve(flags.repo.as_deref())?;
    let config = Config::load(&target.root)?;
    let task = read_task(&flags)?;
    if flags.timeout == Some(0) {
        return Err(exit::usage("--timeout must be at least 1 second"));
    }
    if flags.no_verify && flags.fix_rounds > 0 {
        return Err(exit::usage(
            "--fix-rounds needs verification: it gives verify's failures back to the agent; drop --no-verify",
        ));
    }
    verify::guard_log(&flags.verify);
    let prompt = prompt::build(&target.root, &config, &task);
    for w in &prompt.warnings {
        eprintln!("xtask: warning: {w}");
    }
    if flags.print_prompt {
        let mut out = std::io::stdout().lock();
        out.write_all(prompt.text.as_bytes())?;
        out.flush()?;
        return Ok(Outcome::Clean);
    }
    // Before the agent runs: an option verify cannot honour must not cost an agent run.
    if !flags.no_verify {
        verify::check_options(&flags.verify)?;
    }

    // codex insists on a git repository, and the snapshots need one.
    repo::toplevel(&target.root)?;
    let program = codex::locate(&config.agent, &target.root)?;
    let timeout = Duration::from_secs(flags.timeout.unwrap_or(config.agent.timeout_secs));
    let run_dir = snapshot::run_dir(&target.root)?;
    // The base is fixed before the agent starts, so every round is compared with the same
    // commit — even if the agent commits (which moves `HEAD`, and with it the default base).
    let mut opts = flags.verify.clone();
    opts.agent_run = true;
    if !opts.all && opts.base.is_none() {
        opts.base = repo::resolve_base(&target.root, None)?;
    }

    let before = Snapshot::take(&target.root)?;
    let backup = before.back_up(&target.root, &run_dir)?;
    if let Some(b) = &backup {
        eprintln!(
            "xtask: {} file(s) were already changed before the run: they are yours, recorded as such, and copied to {} (nothing is reverted)",
            before.files.len(),
            b.display()
        );
    }
    let mut report = AgentReport {
        agent: "codex".into(),
        run_dir: run_dir.display().to_string(),
        prompt_bytes: prompt.text.len(),
        prompt_notes: prompt.notes.clone(),
        preexisting: before.preexisting(),
        preexisting_backup: backup.map(|b| b.display().to_string()),
        ..AgentReport::default()
    };

    let mut round_prompt = prompt.text;
    let mut last_snapshot = before.clone();
    let mut earlier: Option<Evidence> = None;
    let mut round = 1;
    loop {
        let files = RoundFiles::new(&run_dir, round);
        std::fs::write(&files.prompt, &round_prompt)
            .with_context(|| format!("cannot write {}", files.prompt.display()))?;
        let argv = match (&report.thread_id, round) {
            (_, 1) => codex::exec_argv(&config.agent, &program, &target.root, &files.last_message),
            (Some(id), _) => codex::resume_argv(&config.agent, &program, id, &files.last_message),
            (None, _) => unreachable!("fix rounds need a thread id"),
        };
        eprintln!(
            "xtask: round {round}: {} (timeout {}s; log {})",
            if round == 1 {
                "codex exec"
            } else {
                "codex exec resume"
            },
            timeout.as_secs(),
            files.events.display()
        );
        let group = actions::Group::start(&format!("round {round}: codex"));
        let run = codex::run(
            argv.clone(),
            &target.root,
            &round_prompt,
            timeout,
            Live::stderr(),
            &files.events,
            &files.last_message,
        )?;
        drop(group);
        let after = Snapshot::take(&target.root)?;
        let mut r = round_report(
            round,
            argv,
            &run,
            &last_snapshot,
            &after,
            &before,
            &target.root,
            &files,
            timeout,
        );
        last_snapshot = after;
        eprintln!("xtask: round {round}: {}", round_line(&r));
        if report.thread_id.is_none() {
            report.thread_id = run.transcript.thread_id.clone();
        }

        if let Err(failed) = codex::check(&run, timeout, &files.events) {
            report.rounds.push(r);
            // A later round failed: what the earlier ones achieved is still reported.
            if let Some(mut ev) = earlier {
                report.stop_reason = Some(format!("round {round} failed to run: {failed}"));
                ev.agent = Some(report);
                let _ = verify::emit(&ev, &opts);
            }
            return Err(failed);
        }

        if flags.no_verify {
            report.rounds.push(r);
            report.stop_reason = Some("not verified: --no-verify".into());
            let mut out = std::io::stdout().lock();
            // Masked like every view (`render::render`): the agent's text may quote a key.
            let section =
                crate::rules::secrets::mask_text(&render::markdown::agent_section(&report))
                    .into_owned();
            if actions::stdout_is_guarded_log() {
                // The agent's final message, verbatim: none of its lines may be a command.
                actions::write_untrusted(&mut out, &section, &actions::random_token())?;
            } else {
                out.write_all(section.as_bytes())?;
            }
            writeln!(
                out,
                "\nNot verified (--no-verify): run `cargo xtask verify` before the handover."
            )?;
            return Ok(Outcome::Clean);
        }

        let mut ev = verify::gather(&target, &config, &opts)?;
        let items = checklist::build(&ev, opts.live);
        let clear = checklist::all_clear(&items, &ev);
        r.verify = Some(round_verify(&ev, &items, clear));
        report.rounds.push(r);

        let next = next_round(
            &ev,
            &items,
            clear,
            round,
            flags.fix_rounds,
            report.thread_id.is_some(),
        );
        match next {
            Ok(p) => {
                eprintln!(
                    "xtask: round {round}: checks did not pass; fix round {round} of {}",
                    flags.fix_rounds
                );
                round_prompt = p;
                round += 1;
                earlier = Some(ev);
            }
            Err(why) => {
                report.stop_reason = Some(why);
                ev.agent = Some(report);
                return verify::emit(&ev, &opts);
            }
        }
    }
}

/// After a verified round: the prompt of the next fix round, or why there is none.
fn next_round(
    ev: &Evidence,
    items: &[ChecklistItem],
    clear: bool,
    round: u32,
    fix_rounds: u32,
    has_thread: bool,
) -> Result<String, String> {
    if clear {
        return Err("every check passed".into());
    }
    if round > fix_rounds {
        return Err(if fix_rounds == 0 {
            "checks did not pass; no fix round asked for (--fix-rounds N)".into()
        } else {
            format!("checks did not pass after {fix_rounds} fix round(s)")
        });
    }
    if !has_thread {
        return Err(
            "checks did not pass; codex reported no thread id, so no fix round could resume it"
                .into(),
        );
    }
    fix::prompt(ev, items, round, fix_rounds).ok_or_else(|| {
        "checks did not pass, but nothing left is the agent's to fix (items skipped by the user)"
            .into()
    })
}

/// The work item: `--task`, `--task-file` or stdin (`-`). An empty one is a usage error.
fn read_task(flags: &flags::BackendStage) -> anyhow::Result<String> {
    let text = if let Some(t) = &flags.task {
        t.clone()
    } else if let Some(f) = &flags.task_file {
        let bytes = std::fs::read(f).map_err(|e| {
            exit::usage(format!("--task-file {}: cannot read it: {e}", f.display()))
        })?;
        String::from_utf8(bytes)
            .map_err(|_| exit::usage(format!("--task-file {}: not UTF-8 text", f.display())))?
    } else if flags.stdin.is_some() {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| exit::usage(format!("cannot read the task from stdin: {e}")))?;
        String::from_utf8(bytes).map_err(|_| exit::usage("the task on stdin is not UTF-8 text"))?
    } else {
        return Err(exit::usage(
            "no task: give it with --task TEXT, --task-file FILE, or `-` to read it from stdin",
        ));
    };
    if text.trim().is_empty() {
        return Err(exit::usage("the task is empty"));
    }
    Ok(text)
}

/// What one round did, set against the files that changed on disk during it.
#[allow(clippy::too_many_arguments)]
fn round_report(
    round: u32,
    argv: Vec<String>,
    run: &codex::Run,
    snap_before: &Snapshot,
    snap_after: &Snapshot,
    first: &Snapshot,
    repo: &Path,
    files: &RoundFiles,
    timeout: Duration,
) -> AgentRound {
    let t = &run.transcript;
    let changed = snap_before.changed_since(snap_after, repo);
    let claimed = t.claimed_files(repo);
    let claimed_paths: Vec<&str> = claimed.iter().map(|c| c.path.as_str()).collect();
    AgentRound {
        round,
        argv,
        exit_code: run.output.code,
        outcome: run.output.describe(timeout),
        duration_ms: run.output.duration.as_millis() as u64,
        final_message: run
            .last_message
            .clone()
            .or_else(|| t.messages.last().cloned()),
        commands: t.commands.clone(),
        claimed_not_changed: claimed_paths
            .iter()
            .filter(|p| !changed.iter().any(|c| c == *p))
            .map(|p| p.to_string())
            .collect(),
        changed_not_claimed: changed
            .iter()
            .filter(|c| !claimed_paths.contains(&c.as_str()))
            .cloned()
            .collect(),
        user_files_touched: changed
            .iter()
            .filter(|c| first.files.contains_key(*c))
            .cloned()
            .collect(),
        claimed_files: claimed,
        changed_files: changed,
        usage: t.usage,
        errors: t.errors.clone(),
        events_file: files.events.display().to_string(),
        commits: snap_before.commits_since(snap_after, repo),
        verify: None,
    }
}

/// One line for the live view: how codex ended and what changed on disk.
fn round_line(r: &AgentRound) -> String {
    const SHOWN: usize = 8;
    let mut s = format!(
        "codex {} after {:.1}s; {} file(s) changed on disk",
        r.outcome,
        r.duration_ms as f64 / 1000.0,
        r.changed_files.len()
    );
    if !r.changed_files.is_empty() {
        let shown: Vec<&str> = r
            .changed_files
            .iter()
            .take(SHOWN)
            .map(String::as_str)
            .collect();
        s.push_str(&format!(": {}", shown.join(", ")));
        if r.changed_files.len() > SHOWN {
            s.push_str(&format!(" and {} more", r.changed_files.len() - SHOWN));
        }
    }
    s
}

fn round_verify(ev: &Evidence, items: &[ChecklistItem], clear: bool) -> RoundVerify {
    let n = |s| items.iter().filter(|i| i.status == s).count();
    RoundVerify {
        clear,
        summary: format!(
            "{} passed, {} failed, {} unknown, {} not applicable",
            n(Status::Pass),
            n(Status::Fail),
            n(Status::Unknown),
            n(Status::NotApplicable)
        ),
        not_passed: items
            .iter()
            .filter(|i| matches!(i.status, Status::Fail | Status::Unknown))
            .map(|i| format!("{}: {}", i.id, i.status.as_str()))
            .collect(),
        checklist: items.to_vec(),
        findings: checklist::all_findings(ev).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Changes;

    fn evidence() -> Evidence {
        Evidence {
            repo: ".".into(),
            changes: Changes::default(),
            migrations: Err("migration analysis is not built yet".into()),
            routes: Err("route checks are not built yet".into()),
            lint: Err("not run: --skip-commands".into()),
            tests: Err("not run: --skip-commands".into()),
            other_commands: Vec::new(),
            weakened: Default::default(),
            agent: None,
        }
    }

    #[test]
    fn fix_rounds_happen_only_while_there_is_something_to_fix_and_rounds_left() {
        let ev = evidence();
        let items = checklist::build(&ev, flags::Live::Off);
        let skipped_only: Vec<_> = items
            .iter()
            .filter(|i| matches!(i.id, "lint" | "tests"))
            .cloned()
            .collect();
        assert_eq!(
            next_round(&ev, &items, true, 1, 3, true).unwrap_err(),
            "every check passed"
        );
        assert_eq!(
            next_round(&ev, &items, false, 1, 0, true).unwrap_err(),
            "checks did not pass; no fix round asked for (--fix-rounds N)"
        );
        assert_eq!(
            next_round(&ev, &items, false, 3, 2, true).unwrap_err(),
            "checks did not pass after 2 fix round(s)"
        );
        assert!(next_round(&ev, &items, false, 1, 2, false)
            .unwrap_err()
            .contains("no thread id"));
        assert!(next_round(&ev, &skipped_only, false, 1, 2, true)
            .unwrap_err()
            .contains("nothing left is the agent's to fix"));
        let prompt = next_round(&ev, &items, false, 2, 2, true).unwrap();
        assert!(prompt.contains("fix round 2 of 2"), "{prompt}");
        assert!(prompt.contains("`rls`"), "{prompt}");
    }
}
