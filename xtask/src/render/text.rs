//! A compact terminal view: one line per checklist item, findings as
//! `path:line: severity: rule: message`, then the totals.

use std::io;

use super::{escape::terminal as t, Report};
use crate::model::{Severity, Status};

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
        writeln!(out)?;
        for f in &r.findings {
            let code = match f.severity {
                Severity::Error => "31",
                Severity::Warning => "33",
                Severity::Info => "2",
            };
            let at = f
                .location()
                .map(|l| format!("{}: ", t(&l)))
                .unwrap_or_default();
            writeln!(
                out,
                "{at}{}: {}: {}",
                p.wrap(code, f.severity.as_str()),
                f.rule,
                t(&f.message)
            )?;
        }
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
    writeln!(
        out,
        "\n{} passed, {} failed, {} unknown, {} not applicable; {} finding(s), {errors} error(s)",
        n(Status::Pass),
        n(Status::Fail),
        n(Status::Unknown),
        n(Status::NotApplicable),
        r.findings.len()
    )
}
