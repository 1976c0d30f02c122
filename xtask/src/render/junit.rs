//! JUnit XML (`--format junit`) for CI systems that show test reports (GitLab, Jenkins,
//! Azure Pipelines, test-reporter actions).
//!
//! Two suites. `checklist`: one test case per item — `fail` is a `<failure>`, `unknown` an
//! `<error>` (it could not be decided: never a pass), `not_applicable` is `<skipped>` with
//! its reason, `pass` passes. `findings`: one test case per finding — an error finding is a
//! `<failure>`; a warning or note does not fail the run (as with the exit status), so its
//! case passes and carries the message in `<system-out>`.
//!
//! Every text is escaped for XML; line breaks in it are written as `&#10;`, so no line of
//! the output starts with text from the checked repository (a log reader that acts on
//! lines, such as GitHub's runner, sees only our own), and characters XML 1.0 cannot hold
//! become U+FFFD.

use std::io;

use super::{repo_path, Report};
use crate::model::{Severity, Status};

/// Escape text for an XML attribute or element.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

pub fn render(r: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    let n = |s| r.checklist.iter().filter(|i| i.status == s).count();
    let (c_fail, c_err, c_skip) = (
        n(Status::Fail),
        n(Status::Unknown),
        n(Status::NotApplicable),
    );
    let f_fail = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let duration = |id: &str| {
        let c = match id {
            "lint" => r.ev.lint.as_ref().ok(),
            "tests" => r.ev.tests.as_ref().ok(),
            _ => None,
        };
        c.map(|c| c.duration_ms as f64 / 1000.0).unwrap_or(0.0)
    };
    let total_time: f64 = r.checklist.iter().map(|i| duration(i.id)).sum();

    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="xtask backend verify" tests="{}" failures="{}" errors="{c_err}" skipped="{c_skip}" time="{total_time:.3}">"#,
        r.checklist.len() + r.findings.len(),
        c_fail + f_fail,
    )?;
    writeln!(
        out,
        r#"  <testsuite name="checklist" tests="{}" failures="{c_fail}" errors="{c_err}" skipped="{c_skip}" time="{total_time:.3}">"#,
        r.checklist.len()
    )?;
    for item in &r.checklist {
        write!(
            out,
            r#"    <testcase classname="checklist" name="{}" time="{:.3}""#,
            escape(&format!("{}: {}", item.id, item.label)),
            duration(item.id)
        )?;
        let ev = escape(&item.evidence);
        match item.status {
            Status::Pass => writeln!(
                out,
                ">\n      <system-out>pass: {ev}</system-out>\n    </testcase>"
            )?,
            Status::Fail => writeln!(
                out,
                ">\n      <failure type=\"fail\" message=\"{ev}\">{}: fail: {ev}</failure>\n    </testcase>",
                item.id
            )?,
            Status::Unknown => writeln!(
                out,
                ">\n      <error type=\"unknown\" message=\"could not be decided: {ev}\">{}: unknown (could not be decided, so not a pass): {ev}</error>\n    </testcase>",
                item.id
            )?,
            Status::NotApplicable => writeln!(
                out,
                ">\n      <skipped message=\"not applicable: {ev}\"/>\n    </testcase>"
            )?,
        }
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(
        out,
        r#"  <testsuite name="findings" tests="{}" failures="{f_fail}" errors="0" skipped="0" time="0.000">"#,
        r.findings.len()
    )?;
    for f in &r.findings {
        let path = f.path.as_deref().map(|p| repo_path(r.ev, p));
        let at = match (&path, f.line) {
            (Some(p), Some(l)) => format!("{p}:{l}"),
            (Some(p), None) => p.clone(),
            (None, _) => f.table.clone().unwrap_or_else(|| "(no file)".into()),
        };
        write!(
            out,
            r#"    <testcase classname="{}" name="{}""#,
            escape(&format!("findings.{}", f.rule)),
            escape(&format!("{}: {at}", f.rule))
        )?;
        if let Some(p) = &path {
            write!(out, r#" file="{}""#, escape(p))?;
        }
        if let (Some(_), Some(l)) = (&path, f.line) {
            write!(out, r#" line="{l}""#)?;
        }
        let msg = escape(&f.message);
        let table = f
            .table
            .as_deref()
            .map(|t| format!(" (table {})", escape(t)))
            .unwrap_or_default();
        match f.severity {
            Severity::Error => writeln!(
                out,
                " time=\"0.000\">\n      <failure type=\"{}\" message=\"{msg}\">{}: error: {}: {msg}{table}</failure>\n    </testcase>",
                f.rule,
                escape(&at),
                f.rule
            )?,
            s => writeln!(
                out,
                " time=\"0.000\">\n      <system-out>{}: {}: {}: {msg}{table}</system-out>\n    </testcase>",
                escape(&at),
                s.as_str(),
                f.rule
            )?,
        }
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_line_breaks_and_forbidden_characters() {
        assert_eq!(
            escape("a<b>&\"c\"'d'\n::error::x\r\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;&#10;::error::x&#13;\u{fffd}"
        );
    }
}
