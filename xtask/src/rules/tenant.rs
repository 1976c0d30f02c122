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
    bypass: &[String],
) -> Judged {
    let mut out = Judged {
        tables: Vec::new(),
        findings: Vec::new(),
    };
    for (t, source) in tables {
        let (report, findings) = one(t, judge, tenancy, source, bypass);
        out.tables.push(report);
        out.findings.extend(findings);
    }
    out
}

fn at(f: Finding, o: &Origin, table: &QualName) -> Finding {
    f.at(o.path.clone(), Some(o.line))
        .on_table(table.to_string())
}

/// A table's names, current and former (a policy or config may name either).
pub fn names(t: &Table) -> Vec<QualName> {
    std::iter::once(t.name.clone())
        .chain(t.former_names.iter().cloned())
        .collect()
}

/// Roles that bypass row level security on a Supabase project (`service_role` has
/// BYPASSRLS, `postgres` and `supabase_admin` own the tables or are superusers): a policy for
/// them alone says nothing about tenant isolation. The live catalog adds every role with
/// BYPASSRLS or superuser (`Schema::bypass_roles`).
pub const BYPASS_ROLES: [&str; 3] = ["service_role", "postgres", "supabase_admin"];

/// Supabase's own service roles: the auth server, storage, realtime and the dashboard connect
/// as them, never a signed-in user, so policies for them alone are not tenant policies.
pub const SERVICE_ROLES: [&str; 9] = [
    "supabase_auth_admin",
    "supabase_storage_admin",
    "supabase_realtime_admin",
    "supabase_functions_admin",
    "supabase_replication_admin",
    "supabase_read_only_user",
    "dashboard_user",
    "pgbouncer",
    "authenticator",
];

/// Supabase's own schemas: their tables are the platform's, not the application's tenant
/// tables, and are never judged as such.
pub const PLATFORM_SCHEMAS: [&str; 11] = [
    "auth",
    "storage",
    "realtime",
    "extensions",
    "vault",
    "graphql",
    "graphql_public",
    "cron",
    "net",
    "supabase_functions",
    "pgsodium",
];

/// Is the table one of the platform's?
pub fn is_platform(name: &QualName) -> bool {
    PLATFORM_SCHEMAS.contains(&name.schema.as_str())
}

/// The table's own entry of `[[tenancy.tables]]`, if config gives one.
pub fn table_tenancy<'t>(
    tenancy: &'t Tenancy,
    name: &QualName,
) -> Option<&'t crate::config::TableTenancy> {
    tenancy
        .tables
        .iter()
        .find(|t| QualName::from_config(&t.table) == *name)
}

/// What `[[tenancy.tables]]` says of the table, for the handover: how it is scoped and why.
fn own_tenancy(name: &QualName, tenancy: &Tenancy) -> Option<String> {
    let t = table_tenancy(tenancy, name)?;
    let mut how = Vec::new();
    if let Some(c) = &t.column {
        how.push(format!("tenant column `{c}`"));
    }
    if let Some(c) = &t.owner_column {
        how.push(format!("scoped by its owner `{c}`"));
    }
    if t.public_read {
        how.push("SELECT open to every signed-in user by design".to_string());
    }
    if t.service_only {
        how.push("used by the service role only (no client policy by design)".to_string());
    }
    Some(format!(
        "per-table tenancy: {} ({})",
        how.join(", "),
        t.reason
    ))
}

/// Does the policy apply only to roles that bypass RLS anyway, or to Supabase's own service
/// roles (never a signed-in user)?
pub fn for_bypass_roles_only(p: &Policy, bypass: &[String]) -> bool {
    !p.roles.is_empty()
        && p.roles.iter().all(|r| {
            BYPASS_ROLES.contains(&r.as_str())
                || SERVICE_ROLES.contains(&r.as_str())
                || bypass.contains(r)
        })
}

/// Does a permissive policy let `cmd` through at all? A clause Postgres has no expression for
/// grants nothing: no USING shows no row to select, update or delete; no WITH CHECK (and no
/// USING to fall back on) accepts no new row.
pub fn grants(p: &Policy, cmd: Command) -> bool {
    let exprs = p.exprs_for(cmd);
    match cmd {
        Command::Insert => exprs.iter().any(|(_, e)| e.is_some()),
        // Rows must be visible (USING) to be updated or deleted.
        _ => exprs.first().is_some_and(|(_, e)| e.is_some()),
    }
}

/// Why a permissive policy does not scope `cmd`, if it does not. A clause without an
/// expression grants nothing, so it opens nothing either.
fn unscoped_for(p: &Policy, cmd: Command, judge: &Judge, names: &[QualName]) -> Option<String> {
    if !grants(p, cmd) {
        return None;
    }
    // A live catalog knows which columns the policy really reads: one that never reads the
    // tenant column of its table cannot filter on it, whatever its text seems to say.
    if let Some(uses) = &p.uses {
        let needed = judge.scoping_columns(names);
        // A child scoped through its parent reads its link column and the parent table.
        // Or passes its link column to a helper function that reads the parent.
        let through_parent =
            (!uses.relations.is_empty() || !uses.functions.is_empty()) && !uses.columns.is_empty();
        if !through_parent && !uses.columns.iter().any(|c| needed.contains(&c.as_str())) {
            return Some(format!(
                "Postgres records no use of `{}` in this policy (pg_depend)",
                needed.join("` or `")
            ));
        }
    }
    for (clause, expr) in p.exprs_for(cmd) {
        let Some(expr) = expr else { continue };
        if let Err(why) = judge.scoped(Some(expr), names) {
            return Some(format!("{clause} {why}"));
        }
    }
    None
}

/// A restrictive policy that is tenant-scoped for `cmd` and applies to every role of
/// `permissive` narrows it to the tenant: restrictive policies are AND-ed with the OR of the
/// permissive ones.
fn narrowed_by_restrictive(
    permissive: &Policy,
    cmd: Command,
    t: &Table,
    judge: &Judge,
    names: &[QualName],
) -> bool {
    t.policies.iter().any(|q| {
        !q.permissive
            && q.command.covers(cmd)
            && (q.roles.iter().any(|r| r == "public")
                || permissive.roles.iter().all(|r| q.roles.contains(r)))
            && q.exprs_for(cmd).iter().all(|(_, e)| e.is_some())
            && unscoped_for(q, cmd, judge, names).is_none()
    })
}

fn one(
    t: &Table,
    judge: &Judge,
    tenancy: &Tenancy,
    source: Source,
    bypass: &[String],
) -> (TableReport, Vec<Finding>) {
    // The tenant root is judged by its own policies (its rows scoped by `id`), unless config
    // also lists it among the exempt tables or gives it a tenancy of its own.
    let root = t.name == QualName::from_config(&tenancy.root_table)
        && table_tenancy(tenancy, &t.name).is_none()
        && !tenancy
            .exempt_tables
            .iter()
            .any(|e| QualName::from_config(&e.name) == t.name);
    let exemption = exemption(&t.name, tenancy).filter(|_| !root);
    let names = names(t);
    let (col, owner) = judge.column_for(&names);
    let tenant = t.column(col);
    let public_read = judge.public_read(&names);
    let mut findings = Vec::new();

    // For each policy, the commands it leaves open and why (judged once, used twice). A
    // command a tenant-scoped restrictive policy narrows for all its roles is not open.
    let open: Vec<Vec<(&str, String)>> = t
        .policies
        .iter()
        .map(|p| {
            Command::EACH
                .into_iter()
                .filter(|c| p.command.covers(*c))
                .filter_map(|c| unscoped_for(p, c, judge, &names).map(|why| (c, why)))
                .filter(|(c, _)| !p.permissive || !narrowed_by_restrictive(p, *c, t, judge, &names))
                // SELECT open to every signed-in user by design (config, with a reason).
                .filter(|(c, _)| !(public_read && *c == Command::Select))
                // Creating a tenant reaches no other tenant's rows.
                .filter(|(c, _)| !(root && *c == Command::Insert))
                .map(|(c, why)| (c.as_str(), why))
                .collect()
        })
        .collect();
    // The permissive policies that apply to roles subject to RLS: the tenant policies.
    let client = |p: &Policy| p.permissive && !for_bypass_roles_only(p, bypass);
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
        denied: Vec::new(),
        service_only: false,
        source,
        reason: None,
        probe: None,
    };
    if let Some(reason) = exemption {
        report.verdict = Verdict::Exempt;
        report.reason = Some(reason);
        return (report, findings);
    }
    report.reason = own_tenancy(&t.name, tenancy);
    if root {
        report.reason = Some(format!(
            "the tenant root table (`tenancy.root_table = \"{}\"`): its rows are scoped by `id`; creating a tenant (INSERT) is not judged",
            tenancy.root_table
        ));
    }
    let service_only = table_tenancy(tenancy, &t.name).is_some_and(|tt| tt.service_only);
    report.service_only = service_only;

    // A child without the tenant column whose every client policy is scoped through its
    // parent (`project_id in (select id from projects where <scoped>)`, a helper that reads
    // the parent and the membership table): its rows are the parent's tenant's.
    // Judged as if the table had no tenant column at all (a name no expression can hold),
    // so that only a parent or a helper following the link can scope it.
    // SELECT open by design (`public_read`) needs no scoping: only the writes must follow it.
    let judged = |p: &Policy, c: Command| {
        p.command.covers(c) && grants(p, c) && !(public_read && c == Command::Select)
    };
    let through_link = |p: &Policy| {
        Command::EACH
            .into_iter()
            .filter(|c| judged(p, *c))
            .all(|c| {
                p.exprs_for(c).iter().all(|(_, e)| {
                    e.is_some_and(|e| judge.scoped_as(e, &names, "\u{0}", false).is_ok())
                })
            })
    };
    let granting: Vec<&Policy> = t
        .policies
        .iter()
        .filter(|p| client(p) && Command::EACH.iter().any(|c| judged(p, *c)))
        .collect();
    let through_parent = tenant.is_none()
        && !owner
        && t.rls.on
        && t.unverified.is_empty()
        && !granting.is_empty()
        && granting.iter().all(|p| through_link(p));
    if through_parent {
        let how = format!(
            "no `{col}` column: every client policy scopes its rows through a parent table or a helper that reads the membership table"
        );
        report.reason = Some(match report.reason.take() {
            Some(r) => format!("{r}; {how}"),
            None => how,
        });
    }

    match tenant {
        _ if service_only || through_parent || root => {}
        None => findings.push(at(
            Finding::new(
                Rule::TenantColumnMissing,
                Severity::Error,
                format!("{} has no `{col}` column: add `{col} uuid not null references tenants(id)` (or exempt the table in xtask.toml with a reason)", t.name),
            ),
            &t.origin,
            &t.name,
        )),
        // A row without an owner matches no `owner = auth.uid()`: nobody's, not everybody's.
        Some(c) if !c.not_null && owner => findings.push(at(
            Finding::new(
                Rule::TenantColumnNullable,
                Severity::Warning,
                format!("{}.{col} (its owner) may be NULL: such a row belongs to no user and no policy shows it; `alter table {} alter column {col} set not null` if every row has an owner", t.name, t.name.sql()),
            ),
            &c.null_origin,
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

    if !t.rls.on && t.exposed == Some(false) {
        // No client role has any privilege on it: nothing reaches it but the service role
        // and the owner. Not an open table; RLS would still be the safer default.
        let origin = t.rls.origin.as_ref().unwrap_or(&t.origin);
        findings.push(at(
            Finding::new(
                Rule::RlsNotEnabled,
                Severity::Warning,
                format!(
                    "row level security on {} is off, but anon and authenticated have no privileges on it (not exposed to clients, {}); enable RLS before granting it to any client role",
                    t.name,
                    match source {
                        Source::Live => "checked live",
                        Source::Static => "the history revokes all their privileges",
                    }
                ),
            ),
            origin,
            &t.name,
        ));
        report.reason = Some("not exposed: no client role has privileges on it".into());
        report.verdict = if t.unverified.is_empty() {
            Verdict::Protected
        } else {
            Verdict::Unverified
        };
        return (report, findings);
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

    // With RLS on, a command no permissive policy grants is denied to clients: Postgres's
    // default, not a hole. Only a table no client can use at all is `policy-missing`.
    let denied: Vec<&str> = Command::EACH
        .into_iter()
        .filter(|c| {
            !t.policies
                .iter()
                .any(|p| client(p) && p.command.covers(*c) && grants(p, *c))
        })
        .map(|c| c.as_str())
        .collect();
    if t.rls.on && denied.len() < Command::EACH.len() {
        report.denied = denied.iter().map(|c| c.to_string()).collect();
    }
    // A root no client may touch is managed by the service: closed, not a finding.
    if denied.len() == Command::EACH.len() && !service_only && !root {
        let restrictive = t.policies.iter().any(|p| !p.permissive);
        let extra = if restrictive {
            " (restrictive policies only narrow permissive ones; alone they let nothing through)"
        } else if t.policies.iter().any(|p| p.permissive) {
            " (its permissive policies are for roles that bypass RLS, or grant nothing)"
        } else {
            ""
        };
        let origin = t.rls.origin.as_ref().unwrap_or(&t.origin);
        findings.push(at(
            Finding::new(
                Rule::PolicyMissing,
                Severity::Error,
                format!(
                    "{} has no permissive policy for a client role{extra}: signed-in users can do nothing with it; add `create policy ... on {} for select using ({col} = get_current_tenant_id())`, or exempt it as a service-only table",
                    t.name,
                    t.name.sql(),
                ),
            ),
            origin,
            &t.name,
        ));
    }

    for (p, open) in t.policies.iter().zip(&open).filter(|(p, _)| client(p)) {
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

    if report.tenant_column && !report.tenant_index && !root {
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
    // A policy that reads `auth.users` makes Postgres refuse the whole statement for a role
    // without SELECT there (Supabase grants the client roles nothing on it; the privilege is
    // checked when the statement starts, whatever the row). When every command the policies
    // leave open has such a policy, what Postgres allows depends on grants the static reader
    // does not follow: unknown, said why; the live check (the probe) decides.
    let refused_maybe: Vec<&str> = if source == Source::Static && errors {
        let only_policy_errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .all(|f| f.rule == Rule::PolicyNotTenantScoped);
        let mut open_cmds: Vec<Command> = Vec::new();
        for (_, o) in t.policies.iter().zip(&open).filter(|(p, _)| client(p)) {
            for (c, _) in o {
                if let Some(cmd) = Command::EACH.into_iter().find(|x| x.as_str() == *c) {
                    if !open_cmds.contains(&cmd) {
                        open_cmds.push(cmd);
                    }
                }
            }
        }
        let reader = |cmd: Command| {
            t.policies.iter().find(|p| {
                client(p)
                    && p.command.covers(cmd)
                    && [p.using.as_deref(), p.with_check.as_deref()]
                        .into_iter()
                        .flatten()
                        .any(reads_auth_users)
            })
        };
        let readers: Vec<&str> = open_cmds
            .iter()
            .filter_map(|c| reader(*c).map(|p| p.name.as_str()))
            .collect();
        if only_policy_errors && !open_cmds.is_empty() && readers.len() == open_cmds.len() {
            readers
        } else {
            Vec::new()
        }
    } else {
        Vec::new()
    };
    report.verdict = if !refused_maybe.is_empty() {
        let mut names = refused_maybe.clone();
        names.dedup();
        report.reason = Some(format!(
            "policy {} reads auth.users, which Supabase's client roles may not read: unless the history grants it, Postgres refuses every such statement of a signed-in user; only the live check can tell",
            names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
        ));
        Verdict::Unverified
    } else if !t.unverified.is_empty() {
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

/// Does a policy expression read `auth.users` as a relation (`from auth.users`, `join auth.users`)?
fn reads_auth_users(expr: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r#"(?i)\b(?:from|join)\s+"?auth"?\s*\.\s*"?users"?(?:\s|\)|$|,)"#)
            .expect("auth.users pattern")
    })
    .is_match(expr)
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
