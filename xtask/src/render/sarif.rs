//! SARIF 2.1.0 (`--format sarif`), shaped for GitHub code scanning
//! (`github/codeql-action/upload-sarif`).
//!
//! Every rule the tool knows is in `tool.driver.rules`, with its short and full
//! description, help and default level. Each finding is a result; so is each checklist item
//! that did not pass (rule `checklist/<id>`), since a failing `tests` item has no finding.
//! Code scanning rejects a result without a location ("expected at least one location"), so
//! one without a file is placed on a file that says where it comes from — the first new
//! migration for a table finding, else the workspace manifest `package.json`, where the lint
//! and test scripts live — at line 1, and its message says so.

use std::io;

use serde_json::{json, Value};

use super::{repo_path, Report};
use crate::model::{Finding, Severity, Status};

pub const TOOL_NAME: &str = "xtask-backend-verify";

/// (id, short description, full description, help)
pub const RULES: &[(&str, &str, &str, &str)] = &[
    ("tenant-column-missing", "Table has no tenant column",
     "A new or changed table has no tenant column, so its rows cannot be kept apart by tenant.",
     "Add the tenant column (`tenant_id uuid not null references tenants(id)`), or exempt the table with a reason in `[tenancy] exempt_tables` of xtask.toml."),
    ("tenant-column-nullable", "Tenant column is nullable",
     "The tenant column of a new or changed table allows NULL: a row without a tenant is seen by no tenant or, with some policies, by all.",
     "Declare the tenant column `not null`."),
    ("rls-not-enabled", "Row level security is not enabled",
     "A new or changed table does not have row level security enabled: every role with table privileges reads every tenant's rows.",
     "Add `alter table ... enable row level security;` in the migration that creates the table."),
    ("policy-missing", "No RLS policy for a command",
     "Row level security is on but no permissive policy covers a command (select, insert, update or delete), so it is either denied or left to a policy that does not exist.",
     "Add a policy for every command the application uses, filtering on the tenant."),
    ("policy-not-tenant-scoped", "RLS policy does not filter on the tenant",
     "A permissive policy's USING or WITH CHECK expression does not compare the tenant column with the current tenant, so it lets rows of other tenants through.",
     "Compare the tenant column with the current tenant: `tenant_id = get_current_tenant_id()`, or membership through `tenant_members` and `auth.uid()`."),
    ("tenant-index-missing", "No index leads with the tenant column",
     "Every query a policy filters runs on the tenant column; without an index that starts with it, each one scans the table.",
     "Add `create index on <table> (tenant_id);` (or a composite index that starts with it)."),
    ("unverifiable-sql", "SQL a static reader cannot follow",
     "A DO block, EXECUTE or other dynamic SQL changes the schema in a way the static check cannot follow; its effect is unverified.",
     "Write the DDL as plain statements, or prove the result with the live check (`--live on`)."),
    ("sql-syntax-error", "SQL syntax error",
     "A migration does not parse as PostgreSQL, so what it does cannot be checked (and it will not apply).",
     "Fix the statement at the reported line."),
    ("migration-apply-failed", "Migration history does not apply",
     "Replaying the migration history on a real Postgres failed.",
     "Run `supabase db reset` locally and fix the first migration that fails."),
    ("migration-unreadable", "Migration file cannot be read",
     "A migration file or directory could not be read (a broken link, permissions, not UTF-8), so its statements were not checked.",
     "Point the link at a real migration file or remove it."),
    ("migration-duplicate", "Migration read twice",
     "A link points to a migration already read in this history; it is read once.",
     "Nothing to do unless the duplicate is a mistake."),
    ("migration-empty", "Empty migration",
     "The migration has no statements.",
     "Remove it or add what it was meant to do."),
    ("function-search-path-mutable", "Security definer function without a fixed search_path",
     "A SECURITY DEFINER function runs with its owner's rights and resolves names through the caller's search_path, which the caller can change.",
     "Add `set search_path = ''` and qualify the names the function uses."),
    ("route-unguarded", "Route handler without the auth guard",
     "An exported handler of a new or changed route is not wrapped in (or does not start with) a configured auth guard.",
     "Wrap the handler: `export const GET = withAuth(async (req, ctx) => ...)`, or exempt the route with a reason in `[routes] exempt`."),
    ("route-unverified", "Route handler's guard cannot be verified",
     "The handler comes from a factory, another file or a file that does not parse, so whether it is guarded cannot be decided from the route file.",
     "Define the handler in the route file with the guard, or list the factory in `[routes] guarded_factories`."),
    ("input-not-validated", "Request input is not validated with a contracts schema",
     "A handler reads the body, query or params without passing them through `.parse`/`.safeParse` of a Zod schema from the contracts package.",
     "Define the schema in packages/contracts and parse the input with it before use."),
    ("rate-limit-missing", "Public route without rate limiting",
     "A public route does not call a configured rate limiter before doing work.",
     "Call the rate limiter (`rateLimit(...)`) first in every public handler."),
    ("hardcoded-secret", "Secret in the code",
     "A changed file holds what looks like a key, token or password.",
     "Remove it, rotate it, and read it from the environment."),
    ("raw-sql-interpolation", "SQL or filter built from variables",
     "A SQL or PostgREST filter string is built by interpolating values, which allows injection.",
     "Use parameters or the query builder's typed filters."),
    ("ts-syntax-error", "TypeScript file does not parse",
     "A changed code file does not parse, so its strings were not checked.",
     "Fix the syntax error."),
    ("secret-scan-skipped", "File not scanned for secrets",
     "A changed file is binary or larger than 2 MiB and was not scanned for secrets.",
     "Check it by hand, or keep such files out of the change."),
];

/// Where to read about the tool: the repository being run in GitHub Actions, else a name.
pub fn information_uri() -> String {
    match (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        (Ok(server), Ok(repo)) if !server.is_empty() && !repo.is_empty() => {
            format!("{}/{repo}", server.trim_end_matches('/'))
        }
        _ => "urn:cargo-xtask:backend-verify".into(),
    }
}

pub fn render(r: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    render_with_uri(r, &information_uri(), out)
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A rule's level before any result: the most severe level it reported in this run, else
/// what its kind usually is.
fn default_level(id: &str, findings: &[Finding]) -> &'static str {
    if let Some(s) = findings
        .iter()
        .filter(|f| f.rule == id)
        .map(|f| f.severity)
        .min()
    {
        return level(s);
    }
    match id {
        "migration-duplicate" | "migration-empty" | "secret-scan-skipped" => "note",
        "tenant-index-missing"
        | "function-search-path-mutable"
        | "ts-syntax-error"
        | "unverifiable-sql"
        | "route-unverified" => "warning",
        _ => "error",
    }
}

pub fn render_with_uri(
    r: &Report,
    information_uri: &str,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let mut rules: Vec<Value> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut add_rule = |id: String, short: &str, full: &str, help: &str, level: &str| {
        if ids.contains(&id) {
            return;
        }
        rules.push(json!({
            "id": id,
            "name": camel(&id),
            "shortDescription": {"text": short},
            "fullDescription": {"text": full},
            "help": {"text": help, "markdown": help},
            "defaultConfiguration": {"level": level},
        }));
        ids.push(id);
    };
    for (id, short, full, help) in RULES {
        add_rule(
            id.to_string(),
            short,
            full,
            help,
            default_level(id, &r.findings),
        );
    }
    // A rule added later without a description here still gets one.
    for f in &r.findings {
        let text = format!("Finding of rule {}", f.rule);
        add_rule(
            f.rule.to_string(),
            &text,
            &text,
            "See the message of each result.",
            level(f.severity),
        );
    }
    for item in &r.checklist {
        add_rule(
            format!("checklist/{}", item.id),
            item.label,
            &format!(
                "Handover checklist item `{}`: \"{}\". It passes only when the tool measured it; an item that could not be decided is reported as a warning, never as a pass.",
                item.id, item.label
            ),
            "See the item's evidence in the result message and the filled handover (`--format markdown`).",
            "error",
        );
    }

    let fallback = fallback_file(r);
    let mut results = Vec::new();
    for f in &r.findings {
        let (uri, line, placed) = match &f.path {
            Some(p) => (repo_path(r.ev, p), f.line.unwrap_or(1).max(1), false),
            None => (
                f.table
                    .as_ref()
                    .and_then(|_| first_migration(r))
                    .unwrap_or_else(|| fallback.clone()),
                1,
                true,
            ),
        };
        let mut text = f.message.clone();
        if let Some(t) = &f.table {
            text = format!("{text} (table {t})");
        }
        if placed {
            text.push_str(" [no file: reported at the top of this file]");
        }
        results.push(result(
            f.rule,
            ids.iter().position(|i| i == f.rule),
            level(f.severity),
            &text,
            &uri,
            line,
        ));
    }
    for item in &r.checklist {
        let lvl = match item.status {
            Status::Fail => "error",
            Status::Unknown => "warning",
            Status::Pass | Status::NotApplicable => continue,
        };
        let id = format!("checklist/{}", item.id);
        let text = format!(
            "{}: {} — {} [checklist item: reported at the top of this file]",
            item.id,
            if item.status == Status::Fail {
                "fail"
            } else {
                "unknown (could not be decided)"
            },
            item.evidence
        );
        let at = checklist_file(r, item.id, &fallback);
        results.push(result(
            &id,
            ids.iter().position(|i| *i == id),
            lvl,
            &text,
            &at,
            1,
        ));
    }

    let sarif = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL_NAME,
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": information_uri,
                "rules": rules,
            }},
            "automationDetails": {"id": format!("{TOOL_NAME}/")},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &sarif).map_err(io::Error::other)?;
    writeln!(out)
}

fn result(
    rule: &str,
    index: Option<usize>,
    level: &str,
    text: &str,
    uri: &str,
    line: u32,
) -> Value {
    let mut v = json!({
        "ruleId": rule,
        "level": level,
        "message": {"text": text},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": uri},
            "region": {"startLine": line},
        }}],
    });
    if let Some(i) = index {
        v["ruleIndex"] = json!(i);
    }
    v
}

/// Where a result without a file is shown: the workspace manifest.
fn fallback_file(r: &Report) -> String {
    repo_path(r.ev, "package.json")
}

fn first_migration(r: &Report) -> Option<String> {
    let m = r.ev.migrations.as_ref().ok()?;
    m.new_files.first().map(|f| repo_path(r.ev, f))
}

fn checklist_file(r: &Report, id: &str, fallback: &str) -> String {
    let first_route =
        r.ev.routes
            .as_ref()
            .ok()
            .and_then(|rt| rt.routes.first())
            .map(|rt| &rt.path);
    let file = match id {
        "tenant_id" | "rls" | "migration" => first_migration(r),
        "auth" | "contracts" | "rate_limit" => first_route.map(|f| repo_path(r.ev, f)),
        _ => None,
    };
    file.unwrap_or_else(|| fallback.to_string())
}

/// `rls-not-enabled` → `RlsNotEnabled`, `checklist/lint` → `ChecklistLint`.
fn camel(id: &str) -> String {
    id.split(['-', '/', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
