//! Tenant isolation rules over the schema model: one [`TableReport`] per judged table and the
//! findings (contract rule ids) that explain its verdict.
//!
//! `protected` needs every fact proved: a NOT NULL tenant column, RLS on at the end of the
//! history, and for each of select/insert/update/delete at least one permissive policy with
//! every permissive policy for that command tenant-scoped (they are OR-ed: one open policy
//! opens the table). Anything the reader could not follow makes the table `unverified`,
//! which never counts as a pass.

use crate::rules::catalog::Rule;
use crate::{
    config::Tenancy,
    model::{Finding, PolicyReport, Severity, Source, TableReport, Verdict},
    schema::{Command, Function, Origin, Policy, QualName, Table},
};

use super::policy::Judge;

pub struct Judged {
    pub tables: Vec<TableReport>,
    pub findings: Vec<Finding>,
}

/// Why config exempts a table from the tenant rules (the tenant root table, or
/// `[tenancy] exempt_tables`), if it does.
pub fn exemption(name: &QualName, tenancy: &Tenancy) -> Option<String> {
    if *name == QualName::from_config(&tenancy.root_table) {
        return Some(format!(
            "the tenant root table (`tenancy.root_table = \"{}\"`)",
            tenancy.root_table
        ));
    }
    tenancy
        .exempt_tables
        .iter()
        .find(|e| QualName::from_config(&e.name) == *name)
        .map(|e| format!("exempt by config: {}", e.reason))
}

/// Judge the given tables (the new or changed ones, or all with `--all`), each with where
/// its facts come from (the static reader or the live catalog).
pub fn judge<'t>(
    tables: impl IntoIterator<Item = (&'t Table, Source)>,
    tenancy: &Tenancy,
    judge: &Judge,
) -> Judged {
    let mut out = Judged {
        tables: Vec::new(),
        findings: Vec::new(),
    };
    for (t, source) in tables {
        let (report, findings) = one(t, judge, exemption(&t.name, tenancy), source);
        out.tables.push(report);
        out.findings.extend(findings);
    }
    out
}

fn at(f: Finding, o: &Origin, table: &QualName) -> Finding {
    f.at(o.path.clone(), Some(o.line))
        .on_table(table.to_string())
}

fn names(t: &Table) -> Vec<QualName> {
    std::iter::once(t.name.clone())
        .chain(t.former_names.iter().cloned())
        .collect()
}

/// Why a permissive policy does not scope `cmd`, if it does not.
fn unscoped_for(p: &Policy, cmd: Command, judge: &Judge, names: &[QualName]) -> Option<String> {
    // A live catalog knows which columns the policy really reads: one that never reads the
    // tenant column of its table cannot filter on it, whatever its text seems to say.
    if let Some(uses) = &p.uses {
        let needed = judge.scoping_columns(names);
        if !uses.columns.iter().any(|c| needed.contains(&c.as_str())) {
            return Some(format!(
                "Postgres records no use of `{}` in this policy (pg_depend)",
                needed.join("` or `")
            ));
        }
    }
    for (clause, expr) in p.exprs_for(cmd) {
        if let Err(why) = judge.scoped(expr, names) {
            return Some(match expr {
                None if cmd == Command::Insert => {
                    "no WITH CHECK: rows of any tenant can be inserted".to_string()
                }
                None => format!("no {clause}: every row passes"),
                Some(_) => format!("{clause} {why}"),
            });
        }
    }
    None
}

fn one(
    t: &Table,
    judge: &Judge,
    exemption: Option<String>,
    source: Source,
) -> (TableReport, Vec<Finding>) {
    let col = judge.column();
    let names = names(t);
    let tenant = t.column(col);
    let mut findings = Vec::new();

    // For each policy, the commands it leaves open and why (judged once, used twice).
    let open: Vec<Vec<(&str, String)>> = t
        .policies
        .iter()
        .map(|p| {
            Command::EACH
                .into_iter()
                .filter(|c| p.command.covers(*c))
                .filter_map(|c| unscoped_for(p, c, judge, &names).map(|why| (c.as_str(), why)))
                .collect()
        })
        .collect();
    let policies: Vec<PolicyReport> = t
        .policies
        .iter()
        .zip(&open)
        .map(|(p, open)| PolicyReport {
            name: p.name.clone(),
            command: p.command.as_str().to_string(),
            permissive: p.permissive,
            roles: p.roles.clone(),
            using: p.using.clone(),
            with_check: p.with_check.clone(),
            tenant_scoped: open.is_empty(),
            uses: p.uses.clone(),
        })
        .collect();

    let mut report = TableReport {
        name: t.name.to_string(),
        new: true,
        verdict: Verdict::Protected,
        tenant_column: tenant.is_some(),
        tenant_not_null: tenant.is_some_and(|c| c.not_null),
        rls_enabled: t.rls.on,
        policies,
        tenant_index: t
            .indexes
            .iter()
            .any(|i| !i.partial && i.columns.first().is_some_and(|c| c.as_deref() == Some(col))),
        source,
        reason: None,
    };
    if let Some(reason) = exemption {
        report.verdict = Verdict::Exempt;
        report.reason = Some(reason);
        return (report, findings);
    }

    match tenant {
        None => findings.push(at(
            Finding::new(
                Rule::TenantColumnMissing,
                Severity::Error,
                format!("{} has no `{col}` column: add `{col} uuid not null references tenants(id)` (or exempt the table in xtask.toml with a reason)", t.name),
            ),
            &t.origin,
            &t.name,
        )),
        Some(c) if !c.not_null => findings.push(at(
            Finding::new(
                Rule::TenantColumnNullable,
                Severity::Error,
                format!("{}.{col} may be NULL: a row without a tenant belongs to no one and slips past tenant checks; `alter table {} alter column {col} set not null`", t.name, t.name.sql()),
            ),
            &c.null_origin,
            &t.name,
        )),
        Some(_) => {}
    }

    if !t.rls.on {
        let (origin, how) = match &t.rls.origin {
            Some(o) => (o, "is disabled here"),
            None => (&t.origin, "is never enabled"),
        };
        findings.push(at(
            Finding::new(
                Rule::RlsNotEnabled,
                Severity::Error,
                format!("row level security on {} {how}: every role with table grants sees every tenant's rows; add `alter table {} enable row level security;`", t.name, t.name.sql()),
            ),
            origin,
            &t.name,
        ));
    }

    let mut missing = Vec::new();
    for cmd in Command::EACH {
        let permissive: Vec<&Policy> = t
            .policies
            .iter()
            .filter(|p| p.permissive && p.command.covers(cmd))
            .collect();
        if permissive.is_empty() {
            missing.push(cmd.as_str());
        }
    }
    if !missing.is_empty() {
        let restrictive = t.policies.iter().any(|p| !p.permissive);
        let extra = if restrictive {
            " (restrictive policies only narrow permissive ones; alone they let nothing through)"
        } else {
            ""
        };
        let origin = t.rls.origin.as_ref().unwrap_or(&t.origin);
        findings.push(at(
            Finding::new(
                Rule::PolicyMissing,
                Severity::Error,
                format!(
                    "{} has no permissive policy for {}{extra}: add `create policy ... on {} for {} {} ({col} = get_current_tenant_id())`",
                    t.name,
                    missing.join(", "),
                    t.name.sql(),
                    missing[0],
                    if missing[0] == "insert" { "with check" } else { "using" }
                ),
            ),
            origin,
            &t.name,
        ));
    }

    for (p, open) in t.policies.iter().zip(&open).filter(|(p, _)| p.permissive) {
        if open.is_empty() {
            continue;
        }
        let cmds: Vec<&str> = open.iter().map(|(c, _)| *c).collect();
        let mut whys: Vec<&str> = Vec::new();
        for (_, w) in open {
            if !whys.contains(&w.as_str()) {
                whys.push(w);
            }
        }
        findings.push(at(
            Finding::new(
                Rule::PolicyNotTenantScoped,
                Severity::Error,
                format!(
                    "policy \"{}\" on {} (permissive, for {}, to {}) opens {} to every tenant: {}; permissive policies are OR-ed, so this one alone decides",
                    p.name,
                    t.name,
                    p.command.as_str(),
                    p.roles.join(", "),
                    cmds.join(", "),
                    whys.join("; ")
                ),
            ),
            &p.origin,
            &t.name,
        ));
    }

    if report.tenant_column && !report.tenant_index {
        findings.push(at(
            Finding::new(
                Rule::TenantIndexMissing,
                Severity::Warning,
                format!("no index on {} starts with `{col}`: every policy check scans the table; add `create index on {} ({col});`", t.name, t.name.sql()),
            ),
            &t.origin,
            &t.name,
        ));
    }

    let errors = findings.iter().any(|f| f.severity == Severity::Error);
    report.verdict = if !t.unverified.is_empty() {
        let mut reasons: Vec<&str> = t.unverified.iter().map(|d| d.reason.as_str()).collect();
        reasons.dedup();
        report.reason = Some(reasons.join("; "));
        Verdict::Unverified
    } else if errors {
        Verdict::Unprotected
    } else {
        Verdict::Protected
    };
    (report, findings)
}

/// Security definer functions run with their owner's rights: without a fixed `search_path`, a
/// caller can put look-alike objects first on the path (`function_search_path_mutable` of
/// Supabase's linter). Tenant source functions are usually of this kind.
pub fn functions<'f>(functions: impl IntoIterator<Item = &'f Function>) -> Vec<Finding> {
    functions
        .into_iter()
        .filter(|f| f.security_definer && !f.fixed_search_path)
        .map(|f| {
            Finding::new(
                Rule::FunctionSearchPathMutable,
                Severity::Warning,
                format!(
                    "security definer function {} has no fixed search_path: add `set search_path = ''` (and qualify the names it uses) or `set search_path = public`",
                    f.name
                ),
            )
            .at(f.origin.path.clone(), Some(f.origin.line))
        })
        .collect()
}
