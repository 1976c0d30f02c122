//! `cargo xtask verify`: gather the evidence, decide the checklist, print the handover.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::{
    actions, checklist,
    config::Config,
    exit::{self, Outcome},
    flags::{self, Format, Live, VerifyOptions},
    gather::{self, live::Database, migrations::History, Evidence},
    judge,
    model::Status,
    outfile,
    render::{self, Report},
    repo::{self, Changes},
    ui,
};

pub fn run(flags: flags::Verify) -> anyhow::Result<Outcome> {
    let target = Target::resolve(flags.repo.as_deref())?;
    let config = Config::load(&target.root)?;
    let ev = gather(&target, &config, &flags.verify)?;
    emit(&ev, &flags.verify)
}

/// The repository to check: its root, and the path as the user gave it (for the report).
pub struct Target {
    pub root: PathBuf,
    pub display: String,
}

impl Target {
    /// `--repo DIR` as given (it need not be the top of a work tree: the example monorepo
    /// lives inside this one), else the top of the work tree of the current directory.
    pub fn resolve(repo: Option<&Path>) -> anyhow::Result<Target> {
        match repo {
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(exit::usage(format!(
                        "--repo {}: no such directory",
                        dir.display()
                    )));
                }
                repo::not_bare(dir)?;
                Ok(Target {
                    root: dir.to_path_buf(),
                    display: dir.display().to_string(),
                })
            }
            None => {
                let cwd = std::env::current_dir().context("cannot read the current directory")?;
                let root = repo::toplevel(&cwd)?;
                Ok(Target {
                    display: root.display().to_string(),
                    root,
                })
            }
        }
    }
}

/// Resolve the output format and guard the log: with `--format github`, or inside GitHub
/// Actions, the output of the children that run from here on cannot issue workflow
/// commands, and phases become log groups.
/// `--report FILE` is checked here too, before anything runs: a path that cannot take the
/// report (a device, FIFO, socket, directory or symbolic link; a missing or read-only
/// directory) is exit 2 now, not an error after a long run.
pub fn check_options(opts: &VerifyOptions) -> anyhow::Result<Format> {
    if let Some(path) = &opts.report {
        outfile::check_report_target(path)
            .map_err(|why| exit::usage(format!("--report {}: {why}", path.display())))?;
    }
    Ok(guard_log(opts))
}

/// Gather every piece of evidence for one run.
pub fn gather(target: &Target, config: &Config, opts: &VerifyOptions) -> anyhow::Result<Evidence> {
    check_options(opts)?;
    let changes = if opts.all {
        Changes::all()
    } else {
        repo::changes(&target.root, opts.base.as_deref())?
    };
    // A loosened xtask.toml is not trusted unless --trust-config: the base's judges the run.
    let judged = gather::weakened::config(&target.root, &changes, config, opts.trust_config);
    let config = &judged.config;
    let mut weakened = gather::weakened::Weakened {
        findings: gather::weakened::gather(&target.root, &changes, config, opts.agent_run),
    };
    weakened.findings.extend(judged.findings);

    let progress = ui::Progress::start("reading migrations and routes");
    let histories = gather::migrations::read_all(&target.root, config, &changes);
    let routes = gather::routes::analyze(&target.root, config, &changes);
    progress.finish("done");
    let live = live_check(&histories, config, &changes, opts)?;
    let migrations = judge::migrations(&histories, live, config, &changes);

    let (lint, tests, other_commands) = if opts.skip_commands || crate::proc::interrupted() {
        let why = if opts.skip_commands {
            "not run: --skip-commands"
        } else {
            "not run: interrupted"
        };
        (Err(why.to_string()), Err(why.to_string()), Vec::new())
    } else {
        let progress = ui::Progress::start("running lint and tests");
        let r = gather::commands::run(&target.root, config, true);
        let ok = [&r.lint, &r.tests]
            .iter()
            .all(|c| matches!(c, Ok(c) if c.status == Status::Pass));
        progress.finish(if ok { "passed" } else { "did not pass" });
        (r.lint, r.tests, r.setup.into_iter().collect())
    };
    let mut ev = Evidence {
        repo: target.display.clone(),
        changes,
        migrations: Ok(migrations),
        routes,
        lint,
        tests,
        other_commands,
        weakened,
        agent: None,
    };
    judge::suppressions(&target.root, &mut ev);
    Ok(ev)
}

/// Apply the migrations to a real Postgres unless `--live off` (or nothing is new). With
/// `--live on`, a live check that cannot run is exit 3; with `auto` its items are `unknown`.
fn live_check(
    histories: &[History],
    config: &Config,
    changes: &Changes,
    opts: &VerifyOptions,
) -> anyhow::Result<judge::Live> {
    if opts.live == Live::Off || !gather::live::wanted(histories, changes) {
        return Ok(judge::Live::NotRun);
    }
    let db = match &opts.database_url {
        Some(url) => Database::Url(url.clone()),
        None => Database::Throwaway,
    };
    let progress = ui::Progress::start("applying the migrations to Postgres");
    match gather::live::check(config, changes, histories, &db) {
        Ok(live) => {
            let ok = live.apply_failures == 0;
            progress.finish(&format!(
                "{} ({} statements, {} ms{})",
                if ok { "applied" } else { "did not apply" },
                live.statements,
                live.check.as_millis(),
                live.startup
                    .map(|d| format!(", start-up {} ms", d.as_millis()))
                    .unwrap_or_default()
            ));
            Ok(judge::Live::Ran(live))
        }
        Err(why) => {
            progress.finish("could not run");
            if crate::proc::interrupted() {
                // The report is still written: the live items say what was cut short.
                eprintln!("xtask: live check interrupted: {why}");
                return Ok(judge::Live::Unavailable(format!("interrupted: {why}")));
            }
            if opts.live == Live::On {
                return Err(exit::tool(format!("--live on: {why}")));
            }
            Ok(judge::Live::Unavailable(why))
        }
    }
}

/// Decide, print (and write the report file), and give the exit outcome.
pub fn emit(ev: &Evidence, opts: &VerifyOptions) -> anyhow::Result<Outcome> {
    let format = Format::resolve(opts.format, Format::Markdown);
    let items = checklist::build(ev, opts.live);
    let clear = checklist::all_clear(&items, ev);
    let mut report = Report::new(ev, items);
    // The compact view printed beside a `--report FILE` that holds every finding says so.
    if let Some(path) = &opts.report {
        if matches!(format, Format::Json | Format::Sarif | Format::Junit) {
            report.full_report = Some(path.display().to_string());
        }
    }

    if format == Format::Github {
        if let Err(e) = render::github::step_summary(&report) {
            eprintln!("xtask: warning: cannot append the handover to $GITHUB_STEP_SUMMARY: {e}");
        }
    }
    let mut stdout = std::io::stdout().lock();
    // The views for people hold text from the repository and the agent verbatim; while the
    // log is guarded, none of their lines may act as a workflow command (unless stdout goes
    // to a file, which must hold the plain view). github escapes its own; json, sarif and
    // junit never start a line with foreign text.
    let to_screen = |format: Format, color: bool, out: &mut dyn Write| -> std::io::Result<()> {
        if actions::stdout_is_guarded_log() && matches!(format, Format::Markdown | Format::Text) {
            let mut buf = Vec::new();
            render::render(&report, format, false, &mut buf)?;
            actions::write_untrusted(
                out,
                &String::from_utf8_lossy(&buf),
                &actions::random_token(),
            )
        } else {
            render::render(&report, format, color, out)
        }
    };
    match &opts.report {
        Some(path) => {
            // The verdict is printed whatever happens to the file; then a failure to write it
            // is the exit status, naming the path (checked again: it may have changed during
            // the run).
            let mut buf = Vec::new();
            render::render(&report, format, false, &mut buf)?;
            let written = match outfile::check_report_target(path) {
                Err(why) => Err(exit::usage(format!(
                    "cannot write the report to {}: {why}",
                    path.display()
                ))),
                Ok(()) => outfile::write_atomic(path, &buf).map_err(|e| {
                    exit::tool(format!(
                        "cannot write the report to {}: {e}",
                        path.display()
                    ))
                }),
            };
            to_screen(Format::Text, ui::color_stdout(), &mut stdout)?;
            match written {
                Ok(()) => writeln!(stdout, "report written to {}", path.display())?,
                Err(e) => {
                    writeln!(stdout, "report NOT written to {}", path.display())?;
                    stdout.flush()?;
                    return Err(e);
                }
            }
        }
        None => to_screen(
            format,
            format == Format::Text && ui::color_stdout(),
            &mut stdout,
        )?,
    }
    stdout.flush()?;

    if crate::proc::interrupted() {
        return Err(exit::interrupted(
            "interrupted: the report says which checks were cut short",
        ));
    }
    if let Some(failed) = failed_to_run(ev) {
        return Err(exit::tool(failed));
    }
    Ok(if clear {
        Outcome::Clean
    } else {
        Outcome::Failed
    })
}

/// Turn the log guard on with `--format github` or inside GitHub Actions; the format.
pub fn guard_log(opts: &VerifyOptions) -> Format {
    let format = Format::resolve(opts.format, Format::Markdown);
    if format == Format::Github || actions::in_actions() {
        actions::protect();
    }
    format
}

/// A required command that could not run (missing, killed, timed out): exit 3.
fn failed_to_run(ev: &Evidence) -> Option<String> {
    let commands = [&ev.lint, &ev.tests]
        .into_iter()
        .filter_map(|c| c.as_ref().ok())
        .chain(&ev.other_commands);
    let failed: Vec<String> = commands
        .filter(|c| c.exit_code.is_none())
        .map(|c| format!("{}: {}", c.id, c.summary))
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}
