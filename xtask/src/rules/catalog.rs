//! The rule catalogue: every rule the tool can report, once, with its id, default severity,
//! descriptions, help, the checklist item it feeds and whether a live verdict supersedes it.
//!
//! Everything else reads this table: findings carry a [`Rule`], SARIF lists its rules from
//! here, JUnit names its cases by [`Rule::id`], and the README's rule table is generated
//! from [`markdown_table`] (a test fails when the README differs and says how to regenerate).
//! Adding a rule is one variant here plus the code that emits it, and its test.

use std::{fmt, str::FromStr};

use serde::{Serialize, Serializer};

use crate::model::Severity;

/// Where a rule's findings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The contract names it (`../shared/contract.md`, "Rule ids").
    Contract,
    /// The tool's own addition (the contract allows more).
    Tool,
}

/// One entry of the catalogue.
#[derive(Debug)]
pub struct Meta {
    pub id: &'static str,
    /// The usual severity; a finding may be more or less severe than this.
    pub severity: Severity,
    pub summary: &'static str,
    pub description: &'static str,
    pub help: &'static str,
    /// The checklist item (contract id) whose verdict this rule's findings explain.
    pub item: Option<&'static str>,
    /// A finding about a table that the live check judged again is replaced by the live one.
    pub live_supersedes: bool,
    pub origin: Origin,
    /// Not reported yet by this version (the contract names it for work still open).
    pub planned: bool,
}

macro_rules! catalogue {
    ($( $variant:ident => {
        id: $id:literal, severity: $sev:ident, item: $item:expr, live: $live:literal,
        origin: $origin:ident, planned: $planned:literal,
        summary: $summary:literal, description: $desc:literal, help: $help:literal $(,)?
    } ),* $(,)?) => {
        /// A rule of the catalogue. Serialized (JSON report) as its id; ordered by its id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Rule { $( $variant ),* }

        impl Rule {
            /// Every rule, in the order of the catalogue.
            pub const ALL: &'static [Rule] = &[ $( Rule::$variant ),* ];

            pub fn meta(self) -> &'static Meta {
                match self {
                    $( Rule::$variant => &Meta {
                        id: $id,
                        severity: Severity::$sev,
                        summary: $summary,
                        description: $desc,
                        help: $help,
                        item: $item,
                        live_supersedes: $live,
                        origin: Origin::$origin,
                        planned: $planned,
                    } ),*
                }
            }
        }
    };
}

catalogue! {
    TenantColumnMissing => {
        id: "tenant-column-missing", severity: Error, item: Some("tenant_id"), live: true,
        origin: Contract, planned: false,
        summary: "Table has no tenant column",
        description: "A new or changed table has no tenant column, so its rows cannot be kept apart by tenant.",
        help: "Add the tenant column (`tenant_id uuid not null references tenants(id)`), or exempt the table with a reason in `[tenancy] exempt_tables` of xtask.toml.",
    },
    TenantColumnNullable => {
        id: "tenant-column-nullable", severity: Error, item: Some("tenant_id"), live: true,
        origin: Contract, planned: false,
        summary: "Tenant column is nullable",
        description: "The tenant column of a new or changed table allows NULL: a row without a tenant is seen by no tenant or, with some policies, by all.",
        help: "Declare the tenant column `not null`.",
    },
    RlsNotEnabled => {
        id: "rls-not-enabled", severity: Error, item: Some("rls"), live: true,
        origin: Contract, planned: false,
        summary: "Row level security is not enabled",
        description: "A new or changed table does not have row level security enabled: every role with table privileges reads every tenant's rows.",
        help: "Add `alter table ... enable row level security;` in the migration that creates the table.",
    },
    PolicyMissing => {
        id: "policy-missing", severity: Error, item: Some("rls"), live: true,
        origin: Contract, planned: false,
        summary: "No RLS policy for a command",
        description: "Row level security is on but no permissive policy covers a command (select, insert, update or delete), so it is either denied or left to a policy that does not exist.",
        help: "Add a policy for every command the application uses, filtering on the tenant.",
    },
    PolicyNotTenantScoped => {
        id: "policy-not-tenant-scoped", severity: Error, item: Some("rls"), live: true,
        origin: Contract, planned: false,
        summary: "RLS policy does not filter on the tenant",
        description: "A permissive policy's USING or WITH CHECK expression does not compare the tenant column with the current tenant, so it lets rows of other tenants through.",
        help: "Compare the tenant column with the current tenant: `tenant_id = get_current_tenant_id()`, or membership through `tenant_members` and `auth.uid()`.",
    },
    TenantIndexMissing => {
        id: "tenant-index-missing", severity: Warning, item: Some("rls"), live: true,
        origin: Contract, planned: false,
        summary: "No index leads with the tenant column",
        description: "Every query a policy filters runs on the tenant column; without an index that starts with it, each one scans the table.",
        help: "Add `create index on <table> (tenant_id);` (or a composite index that starts with it).",
    },
    UnverifiableSql => {
        id: "unverifiable-sql", severity: Warning, item: Some("rls"), live: false,
        origin: Contract, planned: false,
        summary: "SQL a static reader cannot follow",
        description: "A DO block, EXECUTE or other dynamic SQL changes the schema in a way the static check cannot follow; its effect is unverified.",
        help: "Write the DDL as plain statements, or prove the result with the live check (`--live on`).",
    },
    SqlSyntaxError => {
        id: "sql-syntax-error", severity: Error, item: Some("migration"), live: false,
        origin: Contract, planned: false,
        summary: "SQL syntax error",
        description: "A migration does not parse as PostgreSQL, so what it does cannot be checked (and it will not apply).",
        help: "Fix the statement at the reported line.",
    },
    MigrationApplyFailed => {
        id: "migration-apply-failed", severity: Error, item: Some("migration"), live: false,
        origin: Contract, planned: false,
        summary: "Migration history does not apply",
        description: "Replaying the migration history on a real Postgres failed.",
        help: "Run `supabase db reset` locally and fix the first migration that fails.",
    },
    MigrationUnreadable => {
        id: "migration-unreadable", severity: Error, item: Some("migration"), live: false,
        origin: Tool, planned: false,
        summary: "Migration file cannot be read",
        description: "A migration file or directory could not be read (a broken link, permissions, not UTF-8), so its statements were not checked.",
        help: "Point the link at a real migration file or remove it.",
    },
    MigrationDuplicate => {
        id: "migration-duplicate", severity: Info, item: None, live: false,
        origin: Tool, planned: false,
        summary: "Migration read twice",
        description: "A link points to a migration already read in this history; it is read once.",
        help: "Nothing to do unless the duplicate is a mistake.",
    },
    MigrationEmpty => {
        id: "migration-empty", severity: Info, item: None, live: false,
        origin: Tool, planned: false,
        summary: "Empty migration",
        description: "The migration has no statements.",
        help: "Remove it or add what it was meant to do.",
    },
    FunctionSearchPathMutable => {
        id: "function-search-path-mutable", severity: Warning, item: None, live: false,
        origin: Tool, planned: false,
        summary: "Security definer function without a fixed search_path",
        description: "A SECURITY DEFINER function runs with its owner's rights and resolves names through the caller's search_path, which the caller can change.",
        help: "Add `set search_path = ''` and qualify the names the function uses.",
    },
    LiveProbeSkipped => {
        id: "live-probe-skipped", severity: Info, item: Some("rls"), live: false,
        origin: Contract, planned: false,
        summary: "Table not exercised by the isolation probe",
        description: "The live check could not exercise the table with the cross-tenant probe (no values for its columns, an identity that cannot read its own row, ...), so its isolation is not proved by Postgres.",
        help: "Read the reason; set `[live] become_tenant` when the probe cannot make its user a tenant member.",
    },
    RouteUnguarded => {
        id: "route-unguarded", severity: Error, item: Some("auth"), live: false,
        origin: Contract, planned: false,
        summary: "Route handler without the auth guard",
        description: "An exported handler of a new or changed route is not wrapped in (or does not start with) a configured auth guard.",
        help: "Wrap the handler: `export const GET = withAuth(async (req, ctx) => ...)`, or exempt the route with a reason in `[routes] exempt`.",
    },
    RouteUnverified => {
        id: "route-unverified", severity: Warning, item: Some("auth"), live: false,
        origin: Contract, planned: false,
        summary: "Route handler's guard cannot be verified",
        description: "The handler comes from a factory, another file or a file that does not parse, so whether it is guarded cannot be decided from the route file.",
        help: "Define the handler in the route file with the guard, or list the factory in `[routes] guarded_factories`.",
    },
    InputNotValidated => {
        id: "input-not-validated", severity: Error, item: Some("contracts"), live: false,
        origin: Contract, planned: false,
        summary: "Request input is not validated with a contracts schema",
        description: "A handler reads the body, query or params without passing them through `.parse`/`.safeParse` of a Zod schema from the contracts package.",
        help: "Define the schema in packages/contracts and parse the input with it before use.",
    },
    RateLimitMissing => {
        id: "rate-limit-missing", severity: Error, item: Some("rate_limit"), live: false,
        origin: Contract, planned: false,
        summary: "Public route without rate limiting",
        description: "A public route does not call a configured rate limiter before doing work.",
        help: "Call the rate limiter (`rateLimit(...)`) first in every public handler.",
    },
    HardcodedSecret => {
        id: "hardcoded-secret", severity: Error, item: None, live: false,
        origin: Contract, planned: false,
        summary: "Secret in the code",
        description: "A changed file holds what looks like a key, token or password.",
        help: "Remove it, rotate it, and read it from the environment.",
    },
    RawSqlInterpolation => {
        id: "raw-sql-interpolation", severity: Error, item: None, live: false,
        origin: Contract, planned: false,
        summary: "SQL or filter built from variables",
        description: "A SQL or PostgREST filter string is built by interpolating values, which allows injection.",
        help: "Use parameters or the query builder's typed filters.",
    },
    TsSyntaxError => {
        id: "ts-syntax-error", severity: Warning, item: None, live: false,
        origin: Tool, planned: false,
        summary: "TypeScript file does not parse",
        description: "A changed code file does not parse, so its strings were not checked.",
        help: "Fix the syntax error.",
    },
    SecretScanSkipped => {
        id: "secret-scan-skipped", severity: Info, item: None, live: false,
        origin: Tool, planned: false,
        summary: "File not scanned for secrets",
        description: "A changed file is binary or larger than 2 MiB and was not scanned for secrets.",
        help: "Check it by hand, or keep such files out of the change.",
    },
    TenantSourceWritable => {
        id: "tenant-source-writable", severity: Error, item: Some("rls"), live: true,
        origin: Contract, planned: false,
        summary: "A policy trusts a tenant source users can write",
        description: "A policy decides the tenant from a table or function that a user can write to for another tenant (a membership table whose INSERT lets anyone add themself to any tenant): every table relying on it is not isolated.",
        help: "Scope the INSERT and UPDATE policies of the membership table so a user cannot add themself to another tenant.",
    },
    SecurityDefinerView => {
        id: "security-definer-view", severity: Error, item: Some("rls"), live: false,
        origin: Tool, planned: false,
        summary: "A view shows a tenant table with its owner's rights",
        description: "A view without security_invoker reads its tables as its owner, whom row level security does not restrict: clients selecting from it see rows of every tenant unless the view's own WHERE keeps them to the current tenant (Supabase's advisor calls this security_definer_view).",
        help: "Create the view `with (security_invoker = true)` (Postgres 15+), filter it to the current tenant, or revoke select on it from anon and authenticated.",
    },
    ServiceRoleUnscoped => {
        id: "service-role-unscoped", severity: Error, item: Some("auth"), live: false,
        origin: Contract, planned: false,
        summary: "RLS-bypassing client without a tenant filter",
        description: "A handler uses a client that bypasses RLS (the service-role key) without filtering every query on the tenant taken from the auth context.",
        help: "Use the user's client, or filter every query on the tenant of the auth context.",
    },
    TenantFromRequest => {
        id: "tenant-from-request", severity: Error, item: Some("auth"), live: false,
        origin: Tool, planned: false,
        summary: "The tenant of a query is taken from the request",
        description: "A handler filters or writes the tenant column with a value from the body, query or route params instead of the auth context, so a caller can name another tenant (tenant hopping).",
        help: "Take the tenant from the auth context (the guard's result or the wrapper's context), never from the request.",
    },
    ChecksWeakened => {
        id: "checks-weakened", severity: Error, item: None, live: false,
        origin: Contract, planned: false,
        summary: "The change weakens a check",
        description: "The change weakens what the checks prove: lint or test scripts or configs, skipped or deleted tests, disable comments, `xtask.toml` exemptions.",
        help: "Revert the weakening; a deliberate exception goes in an inline suppression with a reason.",
    },
    AppliedMigrationEdited => {
        id: "applied-migration-edited", severity: Error, item: Some("migration"), live: false,
        origin: Contract, planned: false,
        summary: "A migration that existed at the base was edited",
        description: "A migration that existed at the base was changed, renamed or deleted; databases that ran it never run it again.",
        help: "Restore the old file and put the change in a new migration.",
    },
    Suppressed => {
        id: "suppressed", severity: Info, item: None, live: false,
        origin: Contract, planned: false,
        summary: "A finding silenced by an inline suppression",
        description: "A finding was silenced by an `xtask-allow(rule-id): reason` comment (SQL `--` on the line before or at the end of the statement, TypeScript `//` before it); the reason is shown for the reviewer. A suppression without a reason or with an unknown rule id is an error, one that silences nothing a warning.",
        help: "Check that the reason holds; give every suppression a reason, and remove unused ones.",
    },
}

impl Rule {
    pub fn id(self) -> &'static str {
        self.meta().id
    }

    /// The rules whose findings about a table a live verdict replaces.
    pub fn live_supersedes(self) -> bool {
        self.meta().live_supersedes
    }
}

impl Ord for Rule {
    fn cmp(&self, other: &Rule) -> std::cmp::Ordering {
        self.id().cmp(other.id())
    }
}

impl PartialOrd for Rule {
    fn partial_cmp(&self, other: &Rule) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Rule, String> {
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.id() == s)
            .ok_or_else(|| format!("`{s}` is not a rule of the catalogue"))
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// The README's rule table, generated from the catalogue.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| rule | default severity | checklist item | what it means |\n|---|---|---|---|\n",
    );
    for r in Rule::ALL {
        let m = r.meta();
        let mut what = m.description.to_string();
        if m.planned {
            what.push_str(" (not reported yet)");
        }
        if m.origin == Origin::Tool {
            what.push_str(" (the tool's own)");
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            m.id,
            m.severity.as_str(),
            m.item
                .map(|i| format!("`{i}`"))
                .unwrap_or_else(|| "—".into()),
            what.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Rule::ALL {
            assert!(seen.insert(r.id()), "duplicate id {}", r.id());
            assert_eq!(r.id().parse::<Rule>(), Ok(*r));
            assert!(r.id().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
        assert!("no-such-rule".parse::<Rule>().is_err());
    }

    #[test]
    fn items_are_checklist_ids() {
        for r in Rule::ALL {
            if let Some(item) = r.meta().item {
                assert!(
                    crate::checklist::ITEMS.iter().any(|(id, _)| *id == item),
                    "{}: item {item} is not a checklist id",
                    r.id()
                );
            }
        }
    }
}
