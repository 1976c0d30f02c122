//! Disable comments added by the change: `eslint-disable` (all its forms), `@ts-ignore`,
//! `@ts-expect-error`, `@ts-nocheck`, and our own `xtask-allow(rule): reason`. In code they
//! are read from the comments of the syntax tree (a string that says `eslint-disable` is
//! none); in SQL from `--` comments. A comment that was already there at the base (the same
//! text, wherever it moved) is not new.
//!
//! `xtask-allow(rule): reason` is the contract's way for a person to make a reviewed
//! exception: in `verify` one with a reason is listed for the reviewer (info), one without a
//! reason is an error; added by the agent in `backend-stage`, it is an error like the rest.

use std::collections::HashMap;

use oxc_allocator::Allocator;

use crate::{
    model::{Finding, Rule, Severity},
    ts,
};

use super::{code, line_at, weakened};

const MARKERS: [(&str, &str); 5] = [
    ("eslint-disable", "turns eslint rules off"),
    ("@ts-ignore", "silences the type checker"),
    ("@ts-expect-error", "silences the type checker"),
    ("@ts-nocheck", "turns type checking off for the file"),
    ("xtask-allow(", "silences an xtask finding"),
];

/// Is this a file whose comments are read: code or SQL?
pub fn is_read(path: &str) -> bool {
    ts::is_code(path) || path.ends_with(".sql")
}

/// Each suppression comment of a text: (line, the comment's text, what it does).
/// [`comments_here`] on a thread with the code reader's stack for this text.
fn comments(path: &str, text: &str) -> Vec<(u32, String, &'static str)> {
    ts::with_stack_for(text.as_bytes(), || comments_here(path, text))
}

fn comments_here(path: &str, text: &str) -> Vec<(u32, String, &'static str)> {
    let mut raw: Vec<(usize, &str)> = Vec::new();
    let alloc = Allocator::default();
    let src = ts::Source::new(path, text);
    let parsed = if ts::is_code(path) {
        ts::parse(&alloc, &src).ok()
    } else {
        None
    };
    match &parsed {
        Some(program) => {
            for c in program.comments.iter() {
                let (a, b) = (c.span.start as usize, c.span.end as usize);
                raw.push((a, &text[a..b.min(text.len())]));
            }
        }
        None => {
            // SQL, or code that does not parse: comments by their delimiters, line by line.
            let delims: &[&str] = if path.ends_with(".sql") {
                &["--", "/*"]
            } else {
                &["//", "/*", "*"]
            };
            let mut at = 0;
            for line in text.split_inclusive('\n') {
                if let Some(i) = delims.iter().filter_map(|d| line.find(d)).min() {
                    raw.push((at + i, line[i..].trim_end()));
                }
                at += line.len();
            }
        }
    }
    let mut out = Vec::new();
    for (start, body) in raw {
        for (marker, what) in MARKERS {
            if let Some(i) = body.find(marker) {
                let line_text = body[i..].lines().next().unwrap_or("").trim();
                let line_text = line_text.trim_end_matches("*/").trim();
                out.push((line_at(text, start + i), line_text.to_string(), what));
                break;
            }
        }
    }
    out
}

/// Does an `xtask-allow(rule): reason` comment give a reason?
fn has_reason(comment: &str) -> bool {
    comment
        .split_once("):")
        .is_some_and(|(_, reason)| !reason.trim().is_empty())
}

/// The suppression comments in `after` that were not in `before` (`None`: a new file).
/// `agent_run`: the change is the agent's.
pub fn added(path: &str, before: Option<&str>, after: &str, agent_run: bool) -> Vec<Finding> {
    let mut had: HashMap<String, usize> = HashMap::new();
    for (_, t, _) in before.map(|b| comments(path, b)).unwrap_or_default() {
        *had.entry(t).or_default() += 1;
    }
    let mut out = Vec::new();
    for (line, t, what) in comments(path, after) {
        match had.get_mut(&t) {
            Some(n) if *n > 0 => *n -= 1,
            _ if t.starts_with("xtask-allow(") && !agent_run && has_reason(&t) => out.push(
                Finding::new(
                    Rule::ChecksWeakened,
                    Severity::Info,
                    format!("suppression added: {} {what}; a reviewed exception, check that the reason holds", code(&t)),
                )
                .at(path, Some(line)),
            ),
            _ if t.starts_with("xtask-allow(") && !agent_run => out.push(weakened(
                path,
                Some(line),
                format!("suppression added without a reason: {} {what}; write `xtask-allow(rule): reason`", code(&t)),
            )),
            _ => out.push(weakened(
                path,
                Some(line),
                format!("suppression added: {} {what}", code(&t)),
            )),
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    fn msgs(path: &str, before: Option<&str>, after: &str) -> Vec<String> {
        added(path, before, after, true)
            .iter()
            .map(|f| format!("{}: {}", f.location().unwrap_or_default(), f.message))
            .collect()
    }

    #[test]
    fn added_disable_comments_are_named_at_their_line() {
        let before =
            "export const a = 1;\n// eslint-disable-next-line no-console\nconsole.log(a);\n";
        let after = "/* eslint-disable */\nexport const a: number = 1;\n// eslint-disable-next-line no-console\nconsole.log(a);\n// @ts-ignore\nconst b: string = 2;\n// xtask-allow(route-unguarded): webhook\nexport const c = b; // @ts-expect-error\n";
        expect_test::expect![[r#"
            [
                "x.ts:1: suppression added: `eslint-disable` turns eslint rules off",
                "x.ts:5: suppression added: `@ts-ignore` silences the type checker",
                "x.ts:7: suppression added: `xtask-allow(route-unguarded): webhook` silences an xtask finding",
                "x.ts:8: suppression added: `@ts-expect-error` silences the type checker",
            ]
        "#]]
        .assert_debug_eq(&msgs("x.ts", Some(before), after));
    }

    #[test]
    fn strings_moved_comments_and_sql() {
        let before = "// @ts-nocheck\nexport const a = 1;\n";
        let after =
            "export const s = '// eslint-disable';\n\n// @ts-nocheck\nexport const a = 1;\n";
        assert_eq!(msgs("x.ts", Some(before), after), Vec::<String>::new());
        let sql = "-- xtask-allow(rls-not-enabled): lookup table\ncreate table t (id int);\n";
        assert_eq!(
            msgs("supabase/migrations/1_t.sql", None, sql),
            ["supabase/migrations/1_t.sql:1: suppression added: `xtask-allow(rls-not-enabled): lookup table` silences an xtask finding"]
        );
        assert!(!is_read("README.md"));
    }

    #[test]
    fn a_persons_xtask_allow_with_a_reason_is_listed_not_failed() {
        let sql = "-- xtask-allow(rls-not-enabled): lookup table\n-- xtask-allow(rls-not-enabled)\ncreate table t (id int);\n";
        let f = added("m.sql", None, sql, false);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].severity, Severity::Info);
        assert_eq!(f[1].severity, Severity::Error);
        assert!(
            f[1].message.contains("without a reason"),
            "{}",
            f[1].message
        );
        // The agent's, reason or not: an error.
        assert!(added("m.sql", None, sql, true)
            .iter()
            .all(|f| f.severity == Severity::Error));
    }
}
