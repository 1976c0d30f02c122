//! The terminal view: the verdict of each checklist item first; then each cause shared by
//! many findings once, with what it applies to ("11 tables: live probe skipped: …"); then
//! the rest grouped by table, route handler (file + export) and file, most severe first,
//! each finding as `path:line: severity: rule: message`; then the totals. The flat list of
//! every finding is in `--format json`, `sarif` and `junit`.

use std::io;

use super::{
    escape::terminal as t,
    group::{self, Group, Subject},
    Report,
};
use crate::model::{Finding, Severity, Status, Verdict};

/// How many of a shared cause's tables or places are named before "and N more".
pub const NAMES_SHOWN: usize = 8;

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

pub fn render(r: &Report, color: bool, out: &mut dyn io::Write) -> io::Result<()> {
    let p = Paint(color);
    for item in &r.checklist {
        let (mark, code, word) = match item.status {
            Status::Pass => ("✔", "32", "pass"),
            Status::Fail => ("✘", "31", "FAIL"),
            Status::Unknown => ("?", "33", "unknown"),
            Status::NotApplicable => ("–", "2", "n/a"),
        };
        writeln!(
            out,
            "{} {:<10} {:<8} {}",
            p.wrap(code, mark),
            item.id,
            p.wrap(code, word),
            t(&item.evidence)
        )?;
    }
    if !r.findings.is_empty() {
        findings(r, &p, out)?;
    }
    if let Some(a) = &r.ev.agent {
        writeln!(out)?;
        for round in &a.rounds {
            let first = round
                .final_message
                .as_deref()
                .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
                .unwrap_or("(no final message)");
            writeln!(
                out,
                "agent round {}: {}, {} command(s), {} file(s) changed: {}",
                round.round,
                t(&round.outcome),
                round.commands.len(),
                round.changed_files.len(),
                t(first)
            )?;
            for (what, paths) in [
                (
                    "changed but not reported by the agent",
                    &round.changed_not_claimed,
                ),
                (
                    "reported by the agent but not changed",
                    &round.claimed_not_changed,
                ),
            ] {
                if !paths.is_empty() {
                    writeln!(out, "  {}: {}", p.wrap("33", what), t(&paths.join(", ")))?;
                }
            }
        }
        if let Some(why) = &a.stop_reason {
            writeln!(out, "agent stopped: {}", t(why))?;
        }
    }
    let n = |s| r.checklist.iter().filter(|i| i.status == s).count();
    let errors = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let folded = group::arrange(r).folded();
    let folded = if folded > 0 {
        format!(
            " ({folded} under shared causes; every one in --format json, sarif or junit{})",
            r.full_report
                .as_deref()
                .map(|f| format!(", {}", t(f)))
                .unwrap_or_default()
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "\n{} passed, {} failed, {} unknown, {} not applicable; {} finding(s){folded}, {errors} error(s)",
        n(Status::Pass),
        n(Status::Fail),
        n(Status::Unknown),
        n(Status::NotApplicable),
        r.findings.len()
    )
}

fn severity_code(s: Severity) -> &'static str {
    match s {
        Severity::Error => "31",
        Severity::Warning => "33",
        Severity::Info => "2",
    }
}

fn line(f: &Finding, p: &Paint, out: &mut dyn io::Write) -> io::Result<()> {
    let at = f
        .location()
        .map(|l| format!("{}: ", t(&l)))
        .unwrap_or_default();
    writeln!(
        out,
        "  {at}{}: {}: {}",
        p.wrap(severity_code(f.severity), f.severity.as_str()),
        f.rule,
        t(&f.message)
    )
}

/// `a, b, c and 5 more`, each name escaped.
pub fn names(all: &[String], shown: usize) -> String {
    let mut s = all
        .iter()
        .take(shown)
        .map(|n| t(n).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > shown {
        s.push_str(&format!(" and {} more", all.len() - shown));
    }
    s
}

pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Protected => "protected",
        Verdict::Unprotected => "unprotected",
        Verdict::Unverified => "unverified",
        Verdict::Exempt => "exempt",
    }
}

fn heading(g: &Group) -> String {
    match &g.subject {
        Subject::Table(name) => match g.table {
            Some(tr) => format!(
                "table {} ({}, {})",
                t(name),
                verdict_word(tr.verdict),
                tr.source.word()
            ),
            None => format!("table {}", t(name)),
        },
        Subject::Handler { path, method, line } => {
            format!("handler {} {} (line {line})", t(path), t(method))
        }
        Subject::File(path) => format!("file {}", t(path)),
        Subject::General => "not tied to a file".into(),
    }
}

fn findings(r: &Report, p: &Paint, out: &mut dyn io::Write) -> io::Result<()> {
    let arranged = group::arrange(r);
    if !arranged.shared.is_empty() {
        writeln!(
            out,
            "\n{} (each listed once with what it applies to):",
            p.wrap("1", "Shared causes")
        )?;
        for (i, s) in arranged.shared.iter().enumerate() {
            writeln!(
                out,
                "  [{}] {}: {}: {}: {}",
                i + 1,
                s.count,
                p.wrap(severity_code(s.severity), s.severity.as_str()),
                s.rule,
                t(&s.message)
            )?;
            writeln!(out, "      {}", names(&s.subjects, NAMES_SHOWN))?;
        }
    }
    // A blank line between sections (tables with errors, handlers with errors, …), none
    // between the groups of one: a heading at the margin and its findings indented.
    let mut section = None;
    for g in &arranged.groups {
        let kind = std::mem::discriminant(&g.subject);
        if section != Some((g.worst(), kind)) {
            writeln!(out)?;
            section = Some((g.worst(), kind));
        }
        let also = if g.also.is_empty() {
            String::new()
        } else {
            let refs: Vec<String> = g.also.iter().map(|i| format!("[{}]", i + 1)).collect();
            format!(", also {}", refs.join(" "))
        };
        writeln!(out, "{}{also}", p.wrap("1", &heading(g)))?;
        for f in &g.findings {
            line(f, p, out)?;
        }
    }
    Ok(())
}
