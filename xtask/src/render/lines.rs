//! One line per finding, `path:line: severity: rule: message`, then the unverified tables
//! and a count: the view of `check-migrations` (a pre-commit hook), in the form compilers
//! and editors read.

use std::io;

use super::{escape::terminal as t, Report};
use crate::model::{Severity, Verdict};

pub fn render(r: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    let mut findings: Vec<_> = r.findings.iter().collect();
    findings.sort_by(|a, b| {
        (&a.path, a.line, a.severity, a.rule).cmp(&(&b.path, b.line, b.severity, b.rule))
    });
    for f in findings {
        match f.location() {
            Some(loc) => writeln!(
                out,
                "{}: {}: {}: {}",
                t(&loc),
                f.severity.as_str(),
                f.rule,
                t(&f.message)
            )?,
            None => writeln!(
                out,
                "{}: {}: {}",
                f.severity.as_str(),
                f.rule,
                t(&f.message)
            )?,
        }
    }
    let Ok(m) = &r.ev.migrations else {
        return Ok(());
    };
    for table in m.tables.iter().filter(|x| x.verdict == Verdict::Unverified) {
        writeln!(
            out,
            "note: {} is unverified: {}",
            t(&table.name),
            t(table.reason.as_deref().unwrap_or("see the findings"))
        )?;
    }
    let count = |s: Severity| r.findings.iter().filter(|f| f.severity == s).count();
    let verdict = |v: Verdict| m.tables.iter().filter(|t| t.verdict == v).count();
    writeln!(
        out,
        "check-migrations: {} error(s), {} warning(s); {} table(s) checked: {} protected, {} unprotected, {} unverified, {} exempt ({} file(s) read, {} new)",
        count(Severity::Error),
        count(Severity::Warning),
        m.tables.len(),
        verdict(Verdict::Protected),
        verdict(Verdict::Unprotected),
        verdict(Verdict::Unverified),
        verdict(Verdict::Exempt),
        m.files_read,
        m.new_files.len(),
    )
}
