//! Inline suppressions: `-- xtask-allow(rule-id): reason` in SQL, `// xtask-allow(rule-id): reason`
//! in TypeScript (contract § Inline suppressions).
//!
//! SQL: on the line before a statement, or at the end of one of its lines. TypeScript: on the
//! line(s) before a statement. A finding of that rule whose line is inside that statement is
//! replaced by a `suppressed` finding (info) that carries the rule, the message and the
//! reason. A suppression without a reason suppresses nothing and is itself an error, so is
//! an unknown rule id; one that silences nothing is a warning (like eslint's
//! `--report-unused-disable-directives`).
//!
//! The checklist follows: a table whose every error finding was silenced is `exempt` (with
//! the reasons), a handler whose auth finding was silenced is `exempt` for the `auth` item.

use std::{collections::BTreeSet, path::Path, sync::OnceLock};

use regex::Regex;

use crate::{
    model::{Finding, MigrationEvidence, RouteEvidence, Severity, Verdict},
    rules::catalog::Rule,
    ts::{self, Source},
};

/// One `xtask-allow` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub path: String,
    /// The comment's line.
    pub line: u32,
    /// The rule ids as written.
    pub rules: Vec<String>,
    /// Empty: no reason given.
    pub reason: String,
    /// The lines of the statement it applies to (inclusive); `None`: no statement follows.
    pub lines: Option<(u32, u32)>,
}

/// The pattern of a suppression comment after `prefix` (`--` or `//`), compiled once per
/// process: every file of a history is scanned, and compiling it per file cost more than
/// the scan.
fn pattern(prefix: &'static str) -> &'static Regex {
    static SQL: OnceLock<Regex> = OnceLock::new();
    static CODE: OnceLock<Regex> = OnceLock::new();
    let cell = if prefix == "--" { &SQL } else { &CODE };
    cell.get_or_init(|| {
        Regex::new(&format!(
            r"{prefix}\s*xtask-allow\(\s*([^)]*?)\s*\)\s*(?::\s*(.*?))?\s*(?:\*/)?\s*$"
        ))
        .expect("suppression pattern")
    })
}

fn parse_comment(line_text: &str, re: &Regex) -> Option<(usize, Vec<String>, String)> {
    let c = re.captures(line_text)?;
    let at = c.get(0)?.start();
    let rules = c[1]
        .split(',')
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    let reason = c.get(2).map_or("", |m| m.as_str()).trim().to_string();
    Some((at, rules, reason))
}

/// The suppressions of a SQL file.
pub fn scan_sql(path: &str, text: &str) -> Vec<Suppression> {
    if !text.contains("xtask-allow") {
        return Vec::new();
    }
    let re = pattern("--");
    // Statement line ranges, without the comments and blank lines a piece starts or ends with.
    let ranges: Vec<(u32, u32)> = crate::gather::migrations::split::split(text)
        .iter()
        .filter_map(|p| {
            let mut code = p.text.lines().enumerate().filter(|(_, l)| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with("--")
            });
            let first = code.next()?.0 as u32;
            let last = code.last().map_or(first, |(i, _)| i as u32);
            // The piece's text starts at `offset`; its first line is the line of that byte.
            let start = text[..p.offset.min(text.len())].matches('\n').count() as u32 + 1;
            Some((start + first, start + last))
        })
        .collect();
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i as u32 + 1;
        let Some((at, rules, reason)) = parse_comment(l, re) else {
            continue;
        };
        let trailing = !l[..at].trim().is_empty();
        let lines = if trailing {
            ranges
                .iter()
                .find(|(a, b)| *a <= line && line <= *b)
                .copied()
        } else {
            ranges.iter().find(|(a, _)| *a > line).copied()
        };
        out.push(Suppression {
            path: path.to_string(),
            line,
            rules,
            reason,
            lines,
        });
    }
    out
}

/// The suppressions of a TypeScript/JavaScript file: each applies to the statement that
/// starts on the first code line after it (the outermost one starting there).
pub fn scan_ts(path: &str, text: &str) -> Vec<Suppression> {
    ts::with_stack_for(text.as_bytes(), || scan_ts_here(path, text))
}

fn scan_ts_here(path: &str, text: &str) -> Vec<Suppression> {
    if !text.contains("xtask-allow") {
        return Vec::new();
    }
    let re = pattern("//");
    let alloc = oxc_allocator::Allocator::default();
    let src = Source::new(path, text);
    let mut statements: Vec<(u32, u32)> = Vec::new();
    if let Ok(program) = ts::parse(&alloc, &src) {
        use oxc_ast_visit::Visit;
        struct Spans<'s, 'x> {
            src: &'s Source<'x>,
            out: &'s mut Vec<(u32, u32)>,
        }
        impl<'a> Visit<'a> for Spans<'_, '_> {
            fn visit_statement(&mut self, s: &oxc_ast::ast::Statement<'a>) {
                use oxc_span::GetSpan;
                let span = s.span();
                self.out.push((
                    self.src.line(span.start),
                    self.src.line(span.end.saturating_sub(1)),
                ));
                oxc_ast_visit::walk::walk_statement(self, s);
            }
        }
        Spans {
            src: &src,
            out: &mut statements,
        }
        .visit_program(&program);
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let line = i as u32 + 1;
        let Some((at, rules, reason)) = parse_comment(l, re) else {
            continue;
        };
        if !l[..at].trim().is_empty() {
            // Only comments on their own line count in code (contract: "before a statement").
            continue;
        }
        let next = lines
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, t)| {
                let t = t.trim();
                !t.is_empty() && !t.starts_with("//")
            })
            .map(|(j, _)| j as u32 + 1);
        let range = next.map(|n| {
            statements
                .iter()
                .filter(|(a, _)| *a == n)
                .map(|(_, b)| *b)
                .max()
                .map_or((n, n), |b| (n, b))
        });
        out.push(Suppression {
            path: path.to_string(),
            line,
            rules,
            reason,
            lines: range,
        });
    }
    out
}

/// The suppressions of one repository file, by its kind.
pub fn scan_file(root: &Path, path: &str) -> Vec<Suppression> {
    let Ok(bytes) = std::fs::read(root.join(path)) else {
        return Vec::new();
    };
    // Most files have none: found on the bytes, before any decoding.
    if memchr::memmem::find(&bytes, b"xtask-allow").is_none() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    if path.ends_with(".sql") {
        scan_sql(path, &text)
    } else if ts::is_code(path) {
        scan_ts(path, &text)
    } else {
        Vec::new()
    }
}

/// A finding an inline suppression silenced, as it was.
#[derive(Debug, Clone)]
pub struct Silenced {
    pub finding: Finding,
    pub reason: String,
}

/// Apply `sups` to `findings` (each list is one slice of the report, e.g. the migrations'
/// findings): the silenced findings become `suppressed` ones and are returned as they were.
/// `used` records, per suppression, whether it silenced something, so the caller can report
/// unused ones once over all lists.
pub fn apply(findings: &mut [Finding], sups: &[Suppression], used: &mut [bool]) -> Vec<Silenced> {
    let mut silenced = Vec::new();
    for f in findings.iter_mut() {
        let (Some(path), Some(line)) = (&f.path, f.line) else {
            continue;
        };
        let hit = sups.iter().enumerate().find(|(_, s)| {
            s.path == *path
                && !s.reason.is_empty()
                && s.rules.iter().any(|r| r == f.rule.id())
                && s.lines.is_some_and(|(a, b)| a <= line && line <= b)
        });
        if let Some((i, s)) = hit {
            used[i] = true;
            silenced.push(Silenced {
                finding: f.clone(),
                reason: s.reason.clone(),
            });
            *f = Finding {
                rule: Rule::Suppressed,
                severity: Severity::Info,
                path: f.path.clone(),
                line: f.line,
                table: f.table.take(),
                message: format!(
                    "{} ({}) suppressed by xtask-allow at line {}, reason: {}; the finding: {}",
                    f.rule.id(),
                    f.severity.as_str(),
                    s.line,
                    s.reason,
                    f.message
                ),
            };
        }
    }
    silenced
}

/// The findings about the suppressions themselves: no reason or an unknown rule (errors),
/// silencing nothing (warning).
pub fn problems(sups: &[Suppression], used: &[bool]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (s, used) in sups.iter().zip(used) {
        let at = |f: Finding| f.at(s.path.clone(), Some(s.line));
        let written = format!("xtask-allow({})", s.rules.join(", "));
        if s.rules.is_empty() {
            out.push(at(Finding::new(
                Rule::Suppressed,
                Severity::Error,
                format!("{written} names no rule: write `xtask-allow(rule-id): reason`"),
            )));
            continue;
        }
        let unknown: Vec<&str> = s
            .rules
            .iter()
            .filter(|r| r.parse::<Rule>().is_err())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            out.push(at(Finding::new(
                Rule::Suppressed,
                Severity::Error,
                format!(
                    "{written}: unknown rule id {}; the rule ids are listed in the README",
                    unknown
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )));
        }
        if s.reason.is_empty() {
            out.push(at(Finding::new(
                Rule::Suppressed,
                Severity::Error,
                format!(
                    "{written} needs a reason: write `{written}: why this is safe`; without one it suppresses nothing"
                ),
            )));
        } else if !used && unknown.is_empty() {
            out.push(at(Finding::new(
                Rule::Suppressed,
                Severity::Warning,
                format!(
                    "{written} is unused: no such finding in the statement it precedes; remove it"
                ),
            )));
        }
    }
    out
}

/// A table whose every error finding was silenced is no longer judged by the checklist: its
/// verdict becomes `exempt`, with the suppressions' reasons (as a `[tenancy] exempt_tables`
/// entry would). A table with any error left keeps its verdict.
pub fn settle_tables(m: &mut MigrationEvidence, silenced: &[Silenced]) {
    for t in m.tables.iter_mut() {
        if t.verdict == Verdict::Exempt {
            continue;
        }
        let mine: Vec<&Silenced> = silenced
            .iter()
            .filter(|s| s.finding.table.as_deref() == Some(t.name.as_str()))
            .filter(|s| s.finding.severity == Severity::Error)
            .collect();
        let left = m
            .findings
            .iter()
            .any(|f| f.table.as_deref() == Some(t.name.as_str()) && f.severity == Severity::Error);
        if mine.is_empty() || left {
            continue;
        }
        let reasons: BTreeSet<String> = mine
            .iter()
            .map(|s| format!("{}: {}", s.finding.rule, s.reason))
            .collect();
        t.verdict = Verdict::Exempt;
        t.reason = Some(format!(
            "suppressed inline ({})",
            reasons.into_iter().collect::<Vec<_>>().join("; ")
        ));
    }
}

/// A handler whose auth finding was silenced counts as exempt for the `auth` item, with the
/// reason in its note; its route is marked exempt with the reason.
pub fn settle_handlers(r: &mut RouteEvidence, silenced: &[Silenced]) {
    for route in r.routes.iter_mut() {
        for h in route.handlers.iter_mut() {
            let hit = silenced.iter().find(|s| {
                matches!(s.finding.rule, Rule::RouteUnguarded | Rule::RouteUnverified)
                    && s.finding.path.as_deref() == Some(route.path.as_str())
                    && s.finding.line == Some(h.line)
            });
            if let Some(s) = hit {
                h.auth = "exempt".into();
                h.note = if h.note.is_empty() {
                    format!("auth suppressed inline: {}", s.reason)
                } else {
                    format!("{}; auth suppressed inline: {}", h.note, s.reason)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_before_and_at_the_end_of_a_statement() {
        let text = "create table a (id int);\n\
                    -- xtask-allow(tenant-column-missing): global lookup table\n\
                    create table b (\n  id int\n);\n\
                    create table c (id int); -- xtask-allow(rls-not-enabled, tenant-column-missing): seed data\n\
                    -- xtask-allow(policy-missing)\n\
                    create table d (id int);\n";
        let s = scan_sql("m.sql", text);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0].line, 2);
        assert_eq!(s[0].rules, [Rule::TenantColumnMissing.id()]);
        assert_eq!(s[0].reason, "global lookup table");
        assert_eq!(s[0].lines, Some((3, 5)));
        assert_eq!(
            s[1].rules,
            [Rule::RlsNotEnabled.id(), Rule::TenantColumnMissing.id()]
        );
        assert_eq!(s[1].lines, Some((6, 6)));
        assert_eq!(s[2].reason, "");
        assert_eq!(s[2].lines, Some((8, 8)));
    }

    #[test]
    fn ts_before_a_statement() {
        let text = "import x from 'y';\n\
                    // xtask-allow(route-unguarded): health check for the load balancer\n\
                    export async function GET() {\n  return new Response('ok');\n}\n";
        let s = scan_ts("route.ts", text);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].lines, Some((3, 5)));
        assert_eq!(s[0].reason, "health check for the load balancer");
    }

    #[test]
    fn apply_replaces_and_reports() {
        let sups = scan_sql(
            "m.sql",
            "-- xtask-allow(tenant-column-missing): lookup\ncreate table b (id int);\n\
             -- xtask-allow(rls-not-enabled): unused here\ncreate table c (id int);\n\
             -- xtask-allow(no-such-rule): x\ncreate table d (id int);\n\
             -- xtask-allow(tenant-column-missing)\ncreate table e (id int);\n",
        );
        let mut f = vec![
            Finding::new(Rule::TenantColumnMissing, Severity::Error, "b has none")
                .at("m.sql", Some(2)),
            Finding::new(Rule::TenantColumnMissing, Severity::Error, "e has none")
                .at("m.sql", Some(8)),
        ];
        let mut used = vec![false; sups.len()];
        apply(&mut f, &sups, &mut used);
        assert_eq!(f[0].rule, Rule::Suppressed);
        assert_eq!(f[0].severity, Severity::Info);
        assert!(
            f[0].message.contains(Rule::TenantColumnMissing.id()),
            "{}",
            f[0].message
        );
        assert!(f[0].message.contains("lookup"), "{}", f[0].message);
        assert!(f[0].message.contains("b has none"), "{}", f[0].message);
        assert_eq!(
            f[1].rule,
            Rule::TenantColumnMissing,
            "no reason: not suppressed"
        );
        let p = problems(&sups, &used);
        let sev: Vec<_> = p.iter().map(|f| (f.line, f.severity)).collect();
        assert_eq!(
            sev,
            [
                (Some(3), Severity::Warning),
                (Some(5), Severity::Error),
                (Some(7), Severity::Error)
            ],
            "{p:?}"
        );
    }
}
