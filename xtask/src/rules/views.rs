//! Views that show clients a tenant table with their owner's rights.
//!
//! A view without `security_invoker` reads its tables as the view's owner. On Supabase the
//! owner is the role that ran the migration, which owns the tables too, so row level
//! security does not apply: a signed-in user selecting from the view gets whatever its query
//! selects, every tenant's rows included, whatever the table's policies say (Supabase's
//! advisor reports these as `security_definer_view`). A view is fine when it runs with the
//! caller's rights (`with (security_invoker = true)`), when clients may not select from it
//! (live: `has_table_privilege`), when its own WHERE keeps the rows to the current tenant as
//! a SELECT policy would, or when the tables it reads are no tenant tables (exempt, SELECT
//! open by design, no tenant column) or force row level security on their owner.

use std::collections::BTreeMap;

use squawk_syntax::{SourceFile, SyntaxKind};

use crate::{
    config::Tenancy,
    model::{Finding, Severity},
    schema::{QualName, Table, View},
    sql,
};

use super::{catalog::Rule, policy::Judge, tenant};

/// The findings for the views `judged` selects (the ones this change creates or changes).
pub fn judge<'t>(
    views: &BTreeMap<QualName, View>,
    table: impl Fn(&QualName) -> Option<&'t Table>,
    tenancy: &Tenancy,
    judge: &Judge,
    judged: impl Fn(&View) -> bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for v in views.values() {
        if !judged(v)
            || tenant::is_platform(&v.name)
            || v.security_invoker
            || v.client_readable == Some(false)
        {
            continue;
        }
        let reads = relations(&v.query);
        let exposed: Vec<&Table> = reads
            .iter()
            .filter_map(&table)
            .filter(|t| tenant_rows(t, tenancy, judge))
            .collect();
        if exposed.is_empty() {
            continue;
        }
        // Defined differently on the paths of a DO block: which query runs is not known.
        if let Some(d) = &v.doubt {
            out.push(
                Finding::new(
                    Rule::SecurityDefinerView,
                    Severity::Warning,
                    format!(
                        "view {} reads {} with its owner's rights (no security_invoker), and whether it keeps the rows to the current tenant could not be checked: {}",
                        v.name,
                        exposed.iter().map(|t| t.name.to_string()).collect::<Vec<_>>().join(", "),
                        d.reason
                    ),
                )
                .at(d.origin.path.clone(), Some(d.origin.line))
                .on_table(v.name.to_string()),
            );
            continue;
        }
        // One relation whose rows the view's WHERE keeps to the tenant: as safe as a policy.
        let why = match exposed.as_slice() {
            [t] if reads.len() == 1 => match judge.view_filters(v, &t.name) {
                Ok(()) => continue,
                Err(why) => why,
            },
            _ => format!(
                "it reads {}",
                reads
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        // A query that never names the current user shows every tenant's rows; one that
        // does may filter in a way the judge cannot follow.
        let words = sql::words(&v.query);
        let names_user = words.iter().any(|w| w == "uid" || w == "jwt")
            || judge
                .user_function_names()
                .any(|f| words.iter().any(|w| w == f))
            || judge.calls_check_function(&v.query);
        let tables = exposed
            .iter()
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let (severity, what) = if names_user {
            (
                Severity::Warning,
                "its filter could not be confirmed to keep the rows to the current tenant",
            )
        } else {
            (
                Severity::Error,
                "a signed-in user selecting from it gets every tenant's rows",
            )
        };
        out.push(
            Finding::new(
                Rule::SecurityDefinerView,
                severity,
                format!(
                    "view {} reads {tables} with its owner's rights (no security_invoker), so the table's policies do not apply: {what} ({why}); create it `with (security_invoker = true)`, or revoke select on it from anon, authenticated",
                    v.name
                ),
            )
            .at(v.origin.path.clone(), Some(v.origin.line))
            .on_table(v.name.to_string()),
        );
    }
    out
}

/// The relations whose rows a view's query shows: those of its `FROM` (joins and subqueries
/// there included), not the ones a WHERE only consults; every relation of a query that is not
/// one SELECT (a UNION, a WITH, ...). An unparseable query reads nothing the reader can name.
fn relations(query: &str) -> Vec<QualName> {
    let mut out = Vec::new();
    if sql::too_deep(query).is_some() {
        return out;
    }
    let root = SourceFile::parse(&format!("{query};")).syntax_node();
    let from = root
        .children()
        .next()
        .filter(|s| s.kind() == SyntaxKind::SELECT && !sql::has_node(s, SyntaxKind::WITH_TABLE))
        .and_then(|s| sql::child(&s, SyntaxKind::FROM_CLAUSE));
    sql::relations_read(from.as_ref().unwrap_or(&root), &mut out);
    out
}

/// Does `t` hold rows of tenants that clients must not see across tenants: RLS on without
/// FORCE (the owner's reads skip the policies), a tenant (or owner) column, not exempt and
/// not open to every reader by design?
fn tenant_rows(t: &Table, tenancy: &Tenancy, judge: &Judge) -> bool {
    if tenant::is_platform(&t.name)
        || !t.rls.on
        || t.rls_forced.on
        || tenant::exemption(&t.name, tenancy).is_some()
    {
        return false;
    }
    // Read as the table rules read it (`tenant::one`): by its names, current and former.
    let names = tenant::names(t);
    if judge.public_read(&names) {
        return false;
    }
    if tenant::table_tenancy(tenancy, &t.name).is_some_and(|o| o.service_only) {
        return true;
    }
    t.column(judge.column_for(&names).0).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_of_a_view_query() {
        assert_eq!(
            relations("select i.id, c.name from invoices i join public.customers c on c.id = i.customer_id, (select 1 from app.members) m"),
            vec![
                QualName::new("public", "invoices"),
                QualName::new("public", "customers"),
                QualName::new("app", "members")
            ]
        );
        assert_eq!(
            relations("with t as (select * from invoices) select * from t"),
            vec![QualName::new("public", "invoices")]
        );
        assert!(relations("select 1").is_empty());
        // A WHERE that consults the membership table shows none of its rows.
        assert_eq!(
            relations(
                "select id from invoices where tenant_id in (select tenant_id from tenant_members)"
            ),
            vec![QualName::new("public", "invoices")]
        );
        // Every branch of a UNION shows its rows.
        assert_eq!(
            relations("select id from invoices union select id from notes"),
            vec![
                QualName::new("public", "invoices"),
                QualName::new("public", "notes")
            ]
        );
    }
}
