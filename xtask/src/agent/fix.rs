//! The prompt of a fix round: what `verify` found, given back to the same agent thread.
//!
//! It lists each item that did not pass with its evidence, each finding as
//! `rule path:line (table): message`, and the tail of each failing command's output — the
//! same facts the handover shows, so the agent works from evidence, not from a summary.
//! Items the agent cannot change (the user chose not to run them) are left out: asking for
//! them would only burn a round.

use std::fmt::Write as _;

use crate::{
    checklist,
    gather::Evidence,
    model::{ChecklistItem, CommandReport, Finding, Rule, Severity, Status},
};

/// Each output tail is capped so a noisy test run cannot crowd out the findings.
const TAIL_BYTES: usize = 6000;

/// The items worth a fix round: failed, or unknown for a reason other than the user's choice.
pub fn actionable(items: &[ChecklistItem]) -> Vec<&ChecklistItem> {
    items
        .iter()
        .filter(|i| match i.status {
            Status::Fail => true,
            Status::Unknown => !i.evidence.contains("--skip-commands"),
            Status::Pass | Status::NotApplicable => false,
        })
        .collect()
}

/// The resume prompt, or `None` when nothing the agent could act on is left.
pub fn prompt(ev: &Evidence, items: &[ChecklistItem], round: u32, rounds: u32) -> Option<String> {
    let todo = actionable(items);
    let findings: Vec<_> = checklist::all_findings(ev).collect();
    if todo.is_empty() && findings.is_empty() {
        return None;
    }
    let mut s = format!(
        "`cargo xtask verify` checked the repository after your change and it is not done yet \
         (fix round {round} of {rounds}). Fix what is listed below in the same repository, \
         run the commands again, then end with an updated handover message. Do not edit \
         xtask.toml, do not weaken or delete tests or checks, and do not revert changes you \
         did not make.\n"
    );
    let failed: Vec<_> = todo.iter().filter(|i| i.status == Status::Fail).collect();
    let unknown: Vec<_> = todo
        .iter()
        .filter(|i| i.status == Status::Unknown)
        .collect();
    if !failed.is_empty() {
        s.push_str("\n## Failing checklist items\n\n");
        for i in failed {
            let _ = writeln!(s, "- `{}` {} — failed: {}", i.id, i.label, i.evidence);
        }
    }
    if !unknown.is_empty() {
        s.push_str("\n## Items that could not be proved (unknown)\n\n");
        for i in unknown {
            let _ = writeln!(s, "- `{}` {} — unknown: {}", i.id, i.label, i.evidence);
        }
    }
    // What weakened the checks comes first: it is undone, not worked around.
    let (weakened, findings): (Vec<_>, Vec<_>) = findings
        .into_iter()
        .partition(|f| is_weakening(f) && f.severity != Severity::Info);
    if !weakened.is_empty() {
        s.push_str("\n## Checks weakened by the change — revert each\n\n");
        for f in weakened {
            let at = f.location().map(|l| format!(" {l}")).unwrap_or_default();
            let _ = writeln!(s, "- `{}`{at}: {} — revert this.", f.rule, f.message);
        }
    }
    if !findings.is_empty() {
        s.push_str("\n## Findings\n\n");
        for f in findings {
            let at = f.location().map(|l| format!(" {l}")).unwrap_or_default();
            let table = f
                .table
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "- {} `{}`{at}{table}: {}",
                f.severity.as_str(),
                f.rule,
                f.message
            );
        }
    }
    let failing: Vec<&CommandReport> = [&ev.lint, &ev.tests]
        .into_iter()
        .filter_map(|c| c.as_ref().ok())
        .chain(&ev.other_commands)
        .filter(|c| c.status == Status::Fail || c.exit_code != Some(0))
        .collect();
    if !failing.is_empty() {
        s.push_str("\n## Failing commands\n");
        for c in failing {
            let exit = c
                .exit_code
                .map(|e| format!("exit {e}"))
                .unwrap_or_else(|| "did not finish".into());
            let _ = writeln!(s, "\n### `{}` — {exit}: {}\n", c.argv.join(" "), c.summary);
            let tail = last_bytes(&c.output_tail, TAIL_BYTES);
            let fence = "`".repeat(longest_backtick_run(tail).max(2) + 1);
            let _ = writeln!(s, "{fence}text\n{}\n{fence}", tail.trim_end());
        }
    }
    Some(s)
}

/// A finding about the checks themselves: the fix is to revert the change, not to add to it.
fn is_weakening(f: &Finding) -> bool {
    matches!(f.rule, Rule::ChecksWeakened | Rule::AppliedMigrationEdited)
}

/// The end of `s`, at most `max` bytes, starting at a line.
fn last_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    match s[start..].find('\n') {
        Some(nl) => &s[start + nl + 1..],
        None => &s[start..],
    }
}

/// The longest run of backticks in `s`, so a fence around it can be longer.
pub fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{model::MigrationEvidence, repo::Changes};

    fn evidence() -> Evidence {
        Evidence {
            repo: ".".into(),
            changes: Changes::default(),
            migrations: Ok(MigrationEvidence {
                findings: vec![Finding::new(
                    Rule::RlsNotEnabled,
                    Severity::Error,
                    "row level security is not enabled",
                )
                .at("supabase/migrations/2025_x.sql", Some(3))
                .on_table("public.invoices")],
                ..MigrationEvidence::default()
            }),
            routes: Err("route checks are not built yet".into()),
            lint: Err("not run: --skip-commands".into()),
            tests: Ok(CommandReport {
                id: "tests".into(),
                argv: vec!["pnpm".into(), "test:api".into()],
                exit_code: Some(1),
                duration_ms: 10,
                summary: "3 passed, 1 failed: invoices > lists".into(),
                status: Status::Fail,
                output_tail: format!("{}\nFAIL invoices > lists\n```\n", "noise\n".repeat(5000)),
            }),
            other_commands: Vec::new(),
            weakened: Default::default(),
            agent: None,
        }
    }

    fn item(id: &'static str, status: Status, evidence: &str) -> ChecklistItem {
        ChecklistItem {
            id,
            label: "label",
            status,
            evidence: evidence.into(),
        }
    }

    #[test]
    fn lists_items_findings_and_command_tails() {
        let items = [
            item("lint", Status::Unknown, "not run: --skip-commands"),
            item(
                "tests",
                Status::Fail,
                "3 passed, 1 failed: invoices > lists",
            ),
            item(
                "rls",
                Status::Unknown,
                "migration analysis is not built yet",
            ),
            item("auth", Status::Pass, "ok"),
        ];
        let p = prompt(&evidence(), &items, 1, 2).unwrap();
        assert!(p.contains("fix round 1 of 2"));
        assert!(
            p.contains("- `tests` label — failed: 3 passed, 1 failed: invoices > lists"),
            "{p}"
        );
        assert!(
            p.contains("- `rls` label — unknown: migration analysis is not built yet"),
            "{p}"
        );
        assert!(
            !p.contains("`lint`"),
            "the user's --skip-commands is not the agent's to fix"
        );
        assert!(!p.contains("`auth`"));
        assert!(p.contains(
            "- error `rls-not-enabled` supabase/migrations/2025_x.sql:3 (public.invoices): row level security is not enabled"
        ), "{p}");
        assert!(p.contains("### `pnpm test:api` — exit 1"), "{p}");
        assert!(p.contains("FAIL invoices > lists"), "the tail is kept");
        assert!(p.len() < 8000, "the tail is capped: {}", p.len());
        assert!(
            p.contains("````text\n"),
            "the fence outgrows backticks in the output"
        );
    }

    #[test]
    fn each_weakening_is_listed_to_revert() {
        let mut ev = evidence();
        ev.weakened.findings = vec![
            Finding::new(
                Rule::ChecksWeakened,
                Severity::Error,
                "the `lint` script the checks run changed: `\"lint\": \"eslint .\"` → `\"true\"`",
            )
            .at("apps/api/package.json", Some(5)),
            Finding::new(
                Rule::AppliedMigrationEdited,
                Severity::Error,
                "migration that existed at the base was edited",
            )
            .at("supabase/migrations/1_a.sql", Some(11)),
        ];
        let items = [item("migration", Status::Fail, "edited")];
        let p = prompt(&ev, &items, 1, 1).unwrap();
        assert!(p.contains("## Checks weakened by the change — revert each\n\n\
            - `checks-weakened` apps/api/package.json:5: the `lint` script the checks run changed: `\"lint\": \"eslint .\"` → `\"true\"` — revert this.\n\
            - `applied-migration-edited` supabase/migrations/1_a.sql:11: migration that existed at the base was edited — revert this.\n"), "{p}");
        assert_eq!(p.matches("revert this").count(), 2, "listed once: {p}");
    }

    #[test]
    fn nothing_to_act_on_is_no_round() {
        let mut ev = evidence();
        ev.migrations = Ok(MigrationEvidence::default());
        ev.tests = Err("not run: --skip-commands".into());
        let items = [
            item("lint", Status::Unknown, "not run: --skip-commands"),
            item("auth", Status::Pass, "ok"),
        ];
        assert_eq!(prompt(&ev, &items, 1, 1), None);
    }
}
