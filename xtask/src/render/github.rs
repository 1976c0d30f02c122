//! GitHub Actions output (`--format github`): the compact view in a foldable group, then one
//! annotation per finding on its file and line, most severe first.
//!
//! GitHub shows at most 10 error, 10 warning and 10 notice annotations per step, so the
//! order matters: first one error saying which checklist items did not pass (when any did
//! not), then the findings, errors before warnings before notes. Every finding is a line of
//! the log; the job summary (the markdown handover, [`step_summary`]) arranges them for a
//! reviewer, cut to a readable length, and links to this run's log for the rest.
//!
//! Nothing here can be read by the runner as a command it did not mean: the compact view
//! (paths and messages come from the checked repository) sits in a stop-commands block, and
//! every annotation is escaped (`%`, CR, LF in data; also `:` and `,` in properties).

use std::io;

use super::{repo_path, Report};
use crate::{
    actions::{self, escape_data, escape_property},
    model::{Severity, Status},
};

/// GitHub's per-step limit for each kind of annotation.
pub const ANNOTATIONS_SHOWN: usize = 10;

pub fn render(r: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    render_with_token(r, &actions::random_token(), out)
}

/// The same, with a given stop-commands token (tests use a fixed one).
pub fn render_with_token(r: &Report, token: &str, out: &mut dyn io::Write) -> io::Result<()> {
    let n = |s| r.checklist.iter().filter(|i| i.status == s).count();
    let (pass, fail, unknown, na) = (
        n(Status::Pass),
        n(Status::Fail),
        n(Status::Unknown),
        n(Status::NotApplicable),
    );
    writeln!(
        out,
        "::group::{}",
        escape_data(&format!(
            "Backend handover: {pass} passed, {fail} failed, {unknown} unknown, {na} not applicable"
        ))
    )?;
    let mut view = Vec::new();
    super::text::render(r, false, &mut view)?;
    actions::write_untrusted(out, &String::from_utf8_lossy(&view), token)?;
    writeln!(out, "::endgroup::")?;

    let mut counts = [0usize; 3];
    let not_passed: Vec<String> = r
        .checklist
        .iter()
        .filter(|i| matches!(i.status, Status::Fail | Status::Unknown))
        .map(|i| format!("{} ({})", i.id, i.status.as_str()))
        .collect();
    if !not_passed.is_empty() {
        counts[0] += 1;
        writeln!(
            out,
            "::error title={}::{}",
            escape_property("Backend handover: not ready for review"),
            escape_data(&format!(
                "{} of {} checklist item(s) did not pass: {}. The filled handover is in the job summary.",
                not_passed.len(),
                r.checklist.len(),
                not_passed.join(", ")
            ))
        )?;
    }
    for f in &r.findings {
        let (command, slot) = match f.severity {
            Severity::Error => ("error", 0),
            Severity::Warning => ("warning", 1),
            Severity::Info => ("notice", 2),
        };
        counts[slot] += 1;
        let mut props = Vec::new();
        if let Some(p) = &f.path {
            props.push(format!(
                "file={}",
                escape_property(&super::escape::controls_but_line_breaks(&repo_path(
                    r.ev, p
                )))
            ));
            if let Some(l) = f.line.filter(|l| *l > 0) {
                props.push(format!("line={l}"));
            }
        }
        let title = match &f.table {
            Some(t) => format!("{} ({t})", f.rule),
            None => f.rule.to_string(),
        };
        let plain = super::escape::controls_but_line_breaks;
        props.push(format!("title={}", escape_property(&plain(&title))));
        writeln!(
            out,
            "::{command} {}::{}",
            props.join(","),
            escape_data(&plain(&f.message))
        )?;
    }
    let over: Vec<String> = ["error", "warning", "notice"]
        .iter()
        .zip(counts)
        .filter(|(_, c)| *c > ANNOTATIONS_SHOWN)
        .map(|(k, c)| format!("{c} {k}s"))
        .collect();
    if !over.is_empty() {
        writeln!(
            out,
            "xtask: {} annotated; GitHub shows the first {ANNOTATIONS_SHOWN} of each kind per step (the most severe come first). Every finding is a line of this log; the job summary lists them by table, handler and file.",
            over.join(", ")
        )?;
    }
    Ok(())
}

/// Append the whole handover (markdown) to `$GITHUB_STEP_SUMMARY`, when it is set: cut to
/// GitHub's 1 MiB limit, with a note saying so.
pub fn step_summary(r: &Report) -> io::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let log_url = match (
        var("GITHUB_SERVER_URL"),
        var("GITHUB_REPOSITORY"),
        var("GITHUB_RUN_ID"),
    ) {
        (Some(server), Some(repo), Some(run)) => {
            Some(format!("{server}/{repo}/actions/runs/{run}"))
        }
        _ => None,
    };
    let r = Report {
        ev: r.ev,
        checklist: r.checklist.clone(),
        findings: r.findings.clone(),
        full_report: r.full_report.clone(),
        log_url,
    };
    step_summary_to(&r, std::path::Path::new(&path))
}

/// [`step_summary`] to a given file: the handover, masked and escaped like every view.
pub fn step_summary_to(r: &Report, path: &std::path::Path) -> io::Result<()> {
    let mut md = Vec::new();
    super::render(r, crate::flags::Format::Markdown, false, &mut md)?;
    let mut text = String::from_utf8_lossy(&md).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    actions::append_summary(path, &text)
}
