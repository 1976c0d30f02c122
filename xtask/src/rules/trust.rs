//! The trust chain: a policy is only as strong as what it trusts to know the tenant. A table
//! whose policies read the membership table (directly, or through a configured check
//! function) is open to any user who can write a membership row for another tenant — the
//! self-join hole (`with check (user_id = auth.uid())` on the membership table's INSERT, an
//! UPDATE that lets a member move their row to another tenant, or RLS off).

use std::collections::BTreeMap;

use crate::{
    model::{Finding, Severity, TableReport, Verdict},
    schema::{Command, Function, Origin, Policy, QualName, Table, Trigger, View},
};

use super::{catalog::Rule, policy::Judge, tenant};

/// How a user can write a membership row for another tenant: the words for the message and
/// where it is written.
pub struct Hole {
    pub how: String,
    pub origin: Origin,
}

/// Can a signed-in user write a row of the membership table for another tenant?
pub fn membership_hole(m: &Table, judge: &Judge, bypass: &[String]) -> Option<Hole> {
    if !m.rls.on {
        return Some(Hole {
            how: format!("row level security is off on {}: any user with table grants can add themself to any tenant", m.name),
            origin: m.rls.origin.clone().unwrap_or_else(|| m.origin.clone()),
        });
    }
    let names = [m.name.clone()];
    for p in m
        .policies
        .iter()
        .filter(|p| p.permissive && !tenant::for_bypass_roles_only(p, bypass))
    {
        for cmd in [Command::Insert, Command::Update] {
            if !p.command.covers(cmd) || !tenant::grants(p, cmd) {
                continue;
            }
            let check = p
                .exprs_for(cmd)
                .into_iter()
                .rev()
                .map(|(_, e)| e)
                .next()
                .flatten();
            // When the membership's tenant is its user (a personal account: both columns are
            // `id`), keeping the row to the current user keeps it to their own tenant.
            let (mt, mu) = judge.member_columns();
            let personal =
                mt == mu && check.is_some_and(|e| judge.scoped_as(e, &names, mu, true).is_ok());
            if personal {
                continue;
            }
            if let Err(why) = judge.scoped_for_membership_write(check, &names) {
                return Some(Hole {
                    how: format!(
                        "its {} policy \"{}\" accepts rows for any tenant (WITH CHECK {}): a user can add themself to another tenant",
                        cmd.as_str().to_uppercase(),
                        p.name,
                        match check {
                            Some(_) => why,
                            None => "none".into(),
                        }
                    ),
                    origin: p.origin.clone(),
                });
            }
        }
    }
    None
}

/// The history's write paths into the membership table besides its own policies: triggers
/// whose SECURITY DEFINER function writes it (with its owner's rights, past its policies).
pub struct Writers<'a> {
    pub triggers: &'a [Trigger],
    pub functions: &'a BTreeMap<QualName, Function>,
    /// The tenant root table: a trigger on its INSERT makes the creator a member of the new
    /// tenant, which is no other tenant's.
    pub root: QualName,
    /// The history's views: a view over the membership table that runs with its owner's
    /// rights is a write path past the table's policies.
    pub views: &'a BTreeMap<QualName, View>,
}

/// Can a client write membership rows through a view, past the table's policies? A simple
/// view over the membership table is updatable by Postgres itself; without
/// `security_invoker` its writes reach the table with the view owner's rights (the owner of
/// the table: its policies do not apply), and Supabase grants clients every privilege on
/// what the migrations create. Live, Postgres says whether the view is updatable and granted
/// (`pg_relation_is_updatable`, `has_table_privilege`).
pub fn view_hole(m: &QualName, writers: &Writers, judge: &Judge) -> Option<Hole> {
    writers
        .views
        .values()
        .filter(|v| !v.security_invoker)
        .filter(|v| match v.client_writable {
            Some(w) => w && judge.reads_only(v).as_ref() == Some(m),
            None => judge.writable_over(v).as_ref() == Some(m),
        })
        .map(|v| Hole {
            how: format!(
                "view {} over it runs with its owner's rights (no security_invoker) and is updatable: any user can insert a row for another tenant through it, past {m}'s policies",
                v.name
            ),
            origin: v.origin.clone(),
        })
        .next()
}

/// Can a client make a SECURITY DEFINER trigger write a membership row for another tenant?
/// The trigger's table must let clients write rows (for the trigger's events) that are not
/// kept to their own tenant: what the trigger copies into the membership table is then the
/// client's choice (nextbase: accepting an invitation after rewriting its organization).
pub fn trigger_hole<'t>(
    m: &QualName,
    writers: &Writers,
    lookup: &impl Fn(&str) -> Option<&'t Table>,
    judge: &Judge,
    bypass: &[String],
) -> Option<Hole> {
    for trig in writers.triggers {
        let Some(f) = writers.functions.get(&trig.function) else {
            continue;
        };
        if !f.security_definer || !f.writes.contains(m) || tenant::is_platform(&trig.table) {
            continue;
        }
        let events: Vec<Command> = trig
            .events
            .iter()
            .copied()
            .filter(|c| matches!(c, Command::Insert | Command::Update))
            .filter(|c| !(trig.table == writers.root && *c == Command::Insert))
            .collect();
        let Some(t) = lookup(&trig.table.to_string()) else {
            continue;
        };
        let via = format!(
            "trigger on {} runs {}() (security definer), which writes {m} from the rows clients write there",
            t.name, f.name
        );
        if !events.is_empty() && !t.rls.on {
            return Some(Hole {
                how: format!("a {via}, and row level security is off on {}", t.name),
                origin: trig.origin.clone(),
            });
        }
        let names: Vec<QualName> = std::iter::once(t.name.clone())
            .chain(t.former_names.iter().cloned())
            .collect();
        for cmd in events {
            for p in t.policies.iter().filter(|p| {
                p.permissive
                    && !tenant::for_bypass_roles_only(p, bypass)
                    && p.command.covers(cmd)
                    && tenant::grants(p, cmd)
            }) {
                let why = p.exprs_for(cmd).into_iter().find_map(|(clause, e)| {
                    judge
                        .scoped(e, &names)
                        .err()
                        .map(|w| format!("{clause} {w}"))
                });
                if let Some(why) = why {
                    return Some(Hole {
                        how: format!(
                            "a {via}; its {} policy \"{}\" does not keep those rows to the user's tenant ({why}) at {}:{}",
                            cmd.as_str().to_uppercase(),
                            p.name,
                            p.origin.path,
                            p.origin.line
                        ),
                        origin: trig.origin.clone(),
                    });
                }
            }
        }
    }
    None
}

/// Does the policy decide the tenant from the membership table? `Some` with how: directly
/// (empty), the helper function whose body reads it (" via public.is_member_of()"), or the
/// membership view it reads (" via view public.my_memberships").
fn trusts(p: &Policy, m: &QualName, judge: &Judge) -> Option<String> {
    let uses = |name: &QualName| {
        p.uses
            .as_ref()
            .is_some_and(|u| u.relations.iter().any(|r| *r == name.to_string()))
    };
    let live = uses(m);
    let exprs = || {
        [p.using.as_deref(), p.with_check.as_deref()]
            .into_iter()
            .flatten()
    };
    if let Some(f) = exprs().find_map(|e| judge.helpers_called(e).first().cloned()) {
        return Some(match judge.helper_view(f) {
            Some(v) => format!(" via {f}() and view {v}"),
            None => format!(" via {f}()"),
        });
    }
    if let Some(v) = judge
        .member_views()
        .iter()
        .map(|v| &v.name)
        .find(|v| uses(v) || exprs().any(|e| judge.member_views_named(e).contains(v)))
    {
        return Some(format!(" via view {v}"));
    }
    (live
        || exprs().any(|e| crate::sql::words(e).contains(&m.name) || judge.calls_check_function(e)))
    .then(String::new)
}

/// Mark every judged table whose policies trust a writable membership table: unprotected,
/// with the chain in the message. `lookup` finds a table of the history by its name as
/// reported (`public.docs`).
pub fn apply<'t>(
    reports: &mut [TableReport],
    findings: &mut Vec<Finding>,
    lookup: impl Fn(&str) -> Option<&'t Table>,
    judge: &Judge,
    bypass: &[String],
    live: Option<&str>,
    writers: &Writers,
) {
    let m_name = judge.membership().clone();
    let Some(m) = lookup(&m_name.to_string()) else {
        return;
    };
    // What the policies say (the membership table's own, then the triggers that write it),
    // and (live) what Postgres let the probe's user do.
    let said = membership_hole(m, judge, bypass)
        .or_else(|| trigger_hole(&m_name, writers, &lookup, judge, bypass))
        .or_else(|| view_hole(&m_name, writers, judge));
    let hole = match (said, live) {
        (Some(h), Some(ev)) => Some(Hole {
            how: format!("{} ({ev})", h.how),
            origin: h.origin,
        }),
        (Some(h), None) => Some(h),
        (None, Some(ev)) => Some(Hole {
            how: format!("{ev}, whatever its policies seem to say"),
            origin: m.origin.clone(),
        }),
        (None, None) => None,
    };
    let Some(hole) = hole else {
        return;
    };
    for report in reports.iter_mut() {
        if report.verdict == Verdict::Exempt {
            continue;
        }
        let Some(t) = lookup(&report.name) else {
            continue;
        };
        let at_hole = format!("{}:{}", hole.origin.path, hole.origin.line);
        if t.name == m_name {
            report.verdict = Verdict::Unprotected;
            findings.push(
                Finding::new(
                    Rule::TenantSourceWritable,
                    Severity::Error,
                    format!("{m_name} is the membership table every tenant check trusts, and {} ({at_hole})", hole.how),
                )
                .at(hole.origin.path.clone(), Some(hole.origin.line))
                .on_table(report.name.clone()),
            );
            continue;
        }
        // On a table readable by all by design, a SELECT policy's trust decides nothing.
        let names = [t.name.clone()];
        let public_read = judge.public_read(&names);
        let Some((p, via)) = t
            .policies
            .iter()
            .filter(|p| p.permissive && !tenant::for_bypass_roles_only(p, bypass))
            .filter(|p| !(public_read && p.command == Command::Select))
            .find_map(|p| trusts(p, &m_name, judge).map(|via| (p, via)))
        else {
            continue;
        };
        report.verdict = Verdict::Unprotected;
        findings.push(
            Finding::new(
                Rule::TenantSourceWritable,
                Severity::Error,
                format!(
                    "{} trusts {m_name}{via} (policy \"{}\"), and {m_name} is writable for other tenants: {} ({at_hole}); every row of {} is open to a user who joins another tenant",
                    t.name, p.name, hole.how, t.name
                ),
            )
            .at(p.origin.path.clone(), Some(p.origin.line))
            .on_table(report.name.clone()),
        );
    }
}
