//! The eight handover items of the contract, each decided from evidence only.
//!
//! An item passes only when the evidence proves it; missing evidence is `unknown` with the
//! reason; nothing of its kind in the change is `not_applicable` with the reason.

use crate::rules::catalog::Rule;
use crate::{
    flags::Live,
    gather::Evidence,
    model::{
        ChecklistItem, CommandReport, LiveOutcome, MigrationEvidence, RouteEvidence, Severity,
        Status, Verdict,
    },
};

/// (id, label) in the order of the handover. Ids and labels are fixed by the contract.
pub const ITEMS: [(&str, &str); 8] = [
    ("lint", "pnpm --filter api lint passes (0 errors)"),
    ("tests", "pnpm test:api passes"),
    ("tenant_id", "tenant_id present on all new/modified tables"),
    ("rls", "RLS policies active and tested"),
    ("contracts", "Zod schemas defined in packages/contracts/"),
    ("auth", "Auth middleware applied to all endpoints"),
    ("rate_limit", "Rate limiting on public endpoints"),
    ("migration", "Migration file created and tested"),
];

pub fn build(ev: &Evidence, live: Live) -> Vec<ChecklistItem> {
    ITEMS
        .iter()
        .map(|&(id, label)| {
            let (status, evidence) = match id {
                "lint" => command(&ev.lint),
                "tests" => command(&ev.tests),
                "tenant_id" => with(&ev.migrations, tenant_id),
                "rls" => with(&ev.migrations, |m| rls(m, live)),
                "contracts" => with(&ev.routes, contracts),
                "auth" => with(&ev.routes, auth),
                "rate_limit" => with(&ev.routes, rate_limit),
                "migration" => match edited_migrations(ev) {
                    Some(failed) => failed,
                    None => with(&ev.migrations, |m| migration(m, live)),
                },
                _ => unreachable!("unknown checklist id {id}"),
            };
            ChecklistItem {
                id,
                label,
                status,
                evidence,
            }
        })
        .collect()
}

/// Exit status 0 only when every item passed (or had nothing to check) and no finding is an error.
pub fn all_clear(items: &[ChecklistItem], ev: &Evidence) -> bool {
    items
        .iter()
        .all(|i| matches!(i.status, Status::Pass | Status::NotApplicable))
        && all_findings(ev).all(|f| f.severity != Severity::Error)
}

/// Every finding of the run, migrations first.
pub fn all_findings(ev: &Evidence) -> impl Iterator<Item = &crate::model::Finding> {
    let m = ev
        .migrations
        .as_ref()
        .map(|m| m.findings.as_slice())
        .unwrap_or_default();
    let r = ev
        .routes
        .as_ref()
        .map(|r| r.findings.as_slice())
        .unwrap_or_default();
    m.iter().chain(r).chain(&ev.weakened.findings)
}

/// A migration that existed at the base and was edited, renamed or deleted fails the item.
fn edited_migrations(ev: &Evidence) -> Option<Decided> {
    let edited: Vec<String> = ev
        .weakened
        .findings
        .iter()
        .filter(|f| f.rule == Rule::AppliedMigrationEdited && f.severity == Severity::Error)
        .filter_map(|f| f.location())
        .collect();
    (!edited.is_empty()).then(|| {
        let refs: Vec<&str> = edited.iter().map(String::as_str).collect();
        (
            Status::Fail,
            format!(
                "a migration that existed at the base was edited, renamed or deleted: {}",
                names(&refs)
            ),
        )
    })
}

type Decided = (Status, String);

fn with<T>(ev: &Result<T, String>, judge: impl FnOnce(&T) -> Decided) -> Decided {
    match ev {
        Ok(t) => judge(t),
        Err(reason) => (Status::Unknown, reason.clone()),
    }
}

fn command(ev: &Result<CommandReport, String>) -> Decided {
    match ev {
        Ok(c) => (c.status, c.summary.clone()),
        Err(reason) => (Status::Unknown, reason.clone()),
    }
}

fn names(list: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut s = list
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > SHOWN {
        s.push_str(&format!(" and {} more", list.len() - SHOWN));
    }
    s
}

fn tenant_id(m: &MigrationEvidence) -> Decided {
    let tables: Vec<_> = m.tables.iter().filter(|t| t.new).collect();
    if tables.is_empty() {
        return (Status::NotApplicable, "no new or changed tables".into());
    }
    let checked: Vec<_> = tables
        .iter()
        .filter(|t| t.verdict != Verdict::Exempt && !t.service_only)
        .collect();
    let missing: Vec<&str> = checked
        .iter()
        .filter(|t| !t.tenant_column)
        .map(|t| t.name.as_str())
        .collect();
    let nullable: Vec<&str> = checked
        .iter()
        .filter(|t| t.tenant_column && !t.tenant_not_null)
        .map(|t| t.name.as_str())
        .collect();
    if !missing.is_empty() || !nullable.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("no tenant column: {}", names(&missing)));
        }
        if !nullable.is_empty() {
            parts.push(format!("tenant column nullable: {}", names(&nullable)));
        }
        return (Status::Fail, parts.join("; "));
    }
    let unverified: Vec<&str> = checked
        .iter()
        .filter(|t| t.verdict == Verdict::Unverified)
        .map(|t| t.name.as_str())
        .collect();
    if !unverified.is_empty() {
        return (
            Status::Unknown,
            format!(
                "could not follow every statement on: {}",
                names(&unverified)
            ),
        );
    }
    let exempt = tables.len() - checked.len();
    let mut s = format!("{} table(s) with a NOT NULL tenant column", checked.len());
    if exempt > 0 {
        s.push_str(&format!(", {exempt} exempt"));
    }
    (Status::Pass, s)
}

fn rls(m: &MigrationEvidence, live: Live) -> Decided {
    let tables: Vec<_> = m
        .tables
        .iter()
        .filter(|t| t.new && t.verdict != Verdict::Exempt)
        .collect();
    if tables.is_empty() {
        return (
            Status::NotApplicable,
            "no new or changed tenant tables".into(),
        );
    }
    let bad: Vec<&str> = tables
        .iter()
        .filter(|t| t.verdict == Verdict::Unprotected)
        .map(|t| t.name.as_str())
        .collect();
    if !bad.is_empty() {
        return (
            Status::Fail,
            format!("not isolated by tenant: {}", names(&bad)),
        );
    }
    let unverified: Vec<&str> = tables
        .iter()
        .filter(|t| t.verdict == Verdict::Unverified)
        .map(|t| t.name.as_str())
        .collect();
    if !unverified.is_empty() {
        return (
            Status::Unknown,
            format!("isolation not proved for: {}", names(&unverified)),
        );
    }
    let n = tables.len();
    // Proved live means exercised by the isolation probe too: a table the probe could not
    // exercise leaves the item unknown, with why.
    let unprobed: Vec<String> = tables
        .iter()
        .filter_map(|t| match &t.probe {
            Some(p) if p.status != "probed" => Some(format!("{} ({})", t.name, p.reason)),
            _ => None,
        })
        .collect();
    if matches!(m.live, LiveOutcome::Applied(_)) && !unprobed.is_empty() {
        let refs: Vec<&str> = unprobed.iter().map(String::as_str).collect();
        return (
            Status::Unknown,
            format!(
                "RLS and policies hold, but the isolation probe could not exercise: {}",
                names(&refs)
            ),
        );
    }
    match (&m.live, live) {
        (LiveOutcome::Applied(how), _) => (
            Status::Pass,
            format!("{n} table(s): RLS on, every command tenant-scoped; proved live ({how})"),
        ),
        (_, Live::Off) => (
            Status::Pass,
            format!("{n} table(s): RLS on, every command tenant-scoped (static proof; --live off)"),
        ),
        (LiveOutcome::Failed(why), _) => (Status::Fail, format!("live check failed: {why}")),
        (LiveOutcome::Unavailable(why), _) => (
            Status::Unknown,
            format!("static proof holds for {n} table(s); not proved live: {why}"),
        ),
        (LiveOutcome::NotRun, _) => (
            Status::Unknown,
            format!("static proof holds for {n} table(s); the live Postgres check did not run"),
        ),
    }
}

fn migration(m: &MigrationEvidence, live: Live) -> Decided {
    let schema_touched = m.tables.iter().any(|t| t.new);
    if m.new_files.is_empty() {
        return if schema_touched {
            (
                Status::Fail,
                "the change touches the schema but adds no migration file".into(),
            )
        } else {
            (
                Status::NotApplicable,
                "no new migration and no schema change".into(),
            )
        };
    }
    let syntax: Vec<String> = m
        .findings
        .iter()
        .filter(|f| f.rule == Rule::SqlSyntaxError || f.rule == Rule::MigrationApplyFailed)
        .filter_map(|f| f.location())
        .collect();
    if !syntax.is_empty() {
        let refs: Vec<&str> = syntax.iter().map(String::as_str).collect();
        return (
            Status::Fail,
            format!("does not apply cleanly: {}", names(&refs)),
        );
    }
    let n = m.new_files.len();
    match (&m.live, live) {
        (LiveOutcome::Applied(how), _) => (
            Status::Pass,
            format!("{n} new migration(s); the history applies cleanly ({how})"),
        ),
        (LiveOutcome::Failed(why), _) => (Status::Fail, format!("does not apply: {why}")),
        (_, Live::Off) => (
            Status::Unknown,
            format!("{n} new migration(s); not applied to a Postgres (--live off)"),
        ),
        (LiveOutcome::Unavailable(why), _) => (
            Status::Unknown,
            format!("{n} new migration(s); not applied to a Postgres: {why}"),
        ),
        (LiveOutcome::NotRun, _) => (
            Status::Unknown,
            format!("{n} new migration(s) parsed; not applied to a Postgres"),
        ),
    }
}

fn handlers(r: &RouteEvidence) -> impl Iterator<Item = (&str, &crate::model::HandlerReport)> {
    r.routes
        .iter()
        .flat_map(|route| route.handlers.iter().map(move |h| (route.path.as_str(), h)))
}

fn auth(r: &RouteEvidence) -> Decided {
    if r.routes.is_empty() {
        return (Status::NotApplicable, "no new or changed routes".into());
    }
    let pick = |state: &str| -> Vec<String> {
        handlers(r)
            .filter(|(_, h)| h.auth == state)
            .map(|(p, h)| format!("{} {p}", h.method))
            .collect()
    };
    let unguarded = pick("unguarded");
    if !unguarded.is_empty() {
        return (
            Status::Fail,
            format!(
                "unguarded: {}",
                names(&unguarded.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        );
    }
    let unverified = pick("unverified");
    if !unverified.is_empty() {
        return (
            Status::Unknown,
            format!(
                "could not verify: {}",
                names(&unverified.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        );
    }
    let total = handlers(r).count();
    let exempt = pick("exempt").len();
    (
        Status::Pass,
        format!(
            "{} of {total} handler(s) guarded, {exempt} exempt by config",
            total - exempt
        ),
    )
}

fn contracts(r: &RouteEvidence) -> Decided {
    let with_input: Vec<_> = handlers(r)
        .filter(|(_, h)| h.validation != "no_input")
        .collect();
    if with_input.is_empty() {
        return (
            Status::NotApplicable,
            "no new or changed endpoint reads input".into(),
        );
    }
    let list = |states: &[&str]| -> Vec<String> {
        with_input
            .iter()
            .filter(|(_, h)| states.contains(&h.validation.as_str()))
            .map(|(p, h)| format!("{} {p}", h.method))
            .collect()
    };
    let bad = list(&["none", "inline"]);
    if !bad.is_empty() {
        return (
            Status::Fail,
            format!(
                "not validated with a contracts schema: {}",
                names(&bad.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        );
    }
    let unverified = list(&["unverified"]);
    if !unverified.is_empty() {
        return (
            Status::Unknown,
            format!(
                "could not verify: {}",
                names(&unverified.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        );
    }
    (
        Status::Pass,
        format!(
            "{} handler(s) validate input with contracts schemas",
            with_input.len()
        ),
    )
}

fn rate_limit(r: &RouteEvidence) -> Decided {
    let public: Vec<_> = r.routes.iter().filter(|r| r.public).collect();
    if public.is_empty() {
        return (
            Status::NotApplicable,
            "no new or changed public routes".into(),
        );
    }
    let missing: Vec<&str> = public
        .iter()
        .filter(|r| r.rate_limited == Some(false))
        .map(|r| r.path.as_str())
        .collect();
    if !missing.is_empty() {
        return (
            Status::Fail,
            format!("no rate limiter: {}", names(&missing)),
        );
    }
    let unknown: Vec<&str> = public
        .iter()
        .filter(|r| r.rate_limited.is_none())
        .map(|r| r.path.as_str())
        .collect();
    if !unknown.is_empty() {
        return (
            Status::Unknown,
            format!("could not verify: {}", names(&unknown)),
        );
    }
    (
        Status::Pass,
        format!("{} public route(s) call a rate limiter", public.len()),
    )
}
