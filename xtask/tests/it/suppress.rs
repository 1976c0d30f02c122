//! Inline suppressions (`xtask-allow(rule-id): reason`) through the built binary: every
//! format shows them, and the ones without a reason, with an unknown rule or unused are
//! findings of their own.

use crate::common;

use common::*;

const SQL: &str = "\
-- xtask-allow(tenant-column-missing): a global list of countries, the same for every tenant
create table public.countries (code text primary key);
alter table public.countries enable row level security;
create policy countries_read on public.countries for select using (true); -- xtask-allow(policy-not-tenant-scoped): readable by everyone
-- xtask-allow(rls-not-enabled)
create table public.b (id int);
-- xtask-allow(no-such-rule): typo
create table public.c (id int, tenant_id uuid not null);
";

const ROUTE: &str = "\
// xtask-allow(route-unguarded): the load balancer's health check
export async function GET() {
  return new Response(\"ok\");
}
// xtask-allow(input-not-validated): nothing to validate
export async function HEAD() {
  return new Response(\"ok\");
}
";

const SQL_PATH: &str = "supabase/migrations/20250101000000_a.sql";
const ROUTE_PATH: &str = "apps/api/src/app/api/health/route.ts";

fn repo() -> TempDir {
    git_repo("suppress", &[(SQL_PATH, SQL), (ROUTE_PATH, ROUTE)])
}

fn finding<'a>(
    json: &'a serde_json::Value,
    path: &str,
    line: u64,
    rule: &str,
) -> Option<&'a serde_json::Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path && f["line"] == line && f["rule"] == rule)
}

#[test]
fn suppressions_in_the_json_report() {
    let t = repo();
    let args = [
        "verify",
        "--all",
        "--skip-commands",
        "--live",
        "off",
        "--format",
        "json",
    ];
    let (r, json) = run_json(xtask(t.path(), &args));
    assert_eq!(r.code, 1, "{}", r.stderr);

    // With a reason: replaced by `suppressed` (info) carrying rule, message and reason.
    let f = finding(&json, SQL_PATH, 2, "suppressed").expect("suppressed tenant-column-missing");
    assert_eq!(f["severity"], "info");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("tenant-column-missing"), "{msg}");
    assert!(msg.contains("a global list of countries"), "{msg}");
    assert!(msg.contains("public.countries has no `tenant_id`"), "{msg}");
    assert!(finding(&json, SQL_PATH, 2, "tenant-column-missing").is_none());
    // At the end of the statement.
    let f = finding(&json, SQL_PATH, 4, "suppressed").expect("end-of-line suppression");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("readable by everyone"));
    // The table's every error was silenced: it is exempt, with the reasons.
    let countries = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "public.countries")
        .unwrap();
    assert_eq!(countries["verdict"], "exempt");
    // In code, before the statement; the handler is then exempt for the auth item.
    let f = finding(&json, ROUTE_PATH, 2, "suppressed").expect("suppressed route-unguarded");
    assert!(f["message"].as_str().unwrap().contains("health check"));
    let auth = item(&json, "auth");
    assert!(
        !auth["evidence"].as_str().unwrap().contains("GET"),
        "{auth}"
    );

    // No reason: an error, and the finding stays.
    let f = finding(&json, SQL_PATH, 5, "suppressed").expect("no reason");
    assert_eq!(f["severity"], "error");
    assert!(f["message"].as_str().unwrap().contains("needs a reason"));
    assert!(finding(&json, SQL_PATH, 6, "rls-not-enabled").is_some());
    // Unknown rule: an error.
    let f = finding(&json, SQL_PATH, 7, "suppressed").expect("unknown rule");
    assert_eq!(f["severity"], "error");
    assert!(f["message"].as_str().unwrap().contains("no-such-rule"));
    // Unused: a warning.
    let f = finding(&json, ROUTE_PATH, 5, "suppressed").expect("unused");
    assert_eq!(f["severity"], "warning");
    assert!(f["message"].as_str().unwrap().contains("unused"));
}

#[test]
fn suppressions_in_the_handover_security_notes() {
    let t = repo();
    let args = [
        "verify",
        "--all",
        "--skip-commands",
        "--live",
        "off",
        "--format",
        "markdown",
    ];
    let r = run(xtask(t.path(), &args));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let notes = r
        .stdout
        .split("\nSecurity:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no security notes:\n{}", r.stdout));
    for needle in [
        "`suppressed`: route-unguarded (error) suppressed by xtask-allow at line 1, reason: the load balancer's health check",
        "reason: a global list of countries",
        "xtask-allow(rls-not-enabled) needs a reason",
    ] {
        assert!(notes.contains(needle), "{needle} missing from:\n{}", r.stdout);
    }
}

#[test]
fn check_migrations_reads_suppressions_too() {
    let t = repo();
    let r = run(xtask(t.path(), &["check-migrations", "--all"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "{SQL_PATH}:2: info: suppressed: tenant-column-missing"
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("needs a reason"), "{}", r.stdout);
}

/// A change whose only problem is suppressed with a reason passes the migration items.
#[test]
fn a_suppressed_table_passes_its_items() {
    let t = git_repo(
        "suppress-ok",
        &[(
            SQL_PATH,
            "-- xtask-allow(tenant-column-missing, rls-not-enabled, policy-missing): static lookup data, no rows per tenant\n\
             create table public.currencies (code text primary key);\n",
        )],
    );
    let (r, json) = run_json(xtask(
        t.path(),
        &["check-migrations", "--all", "--format", "json"],
    ));
    assert_eq!(r.code, 0, "{}\n{json}", r.stderr);
    assert_eq!(item(&json, "tenant_id")["status"], "pass", "{json}");
    assert_eq!(item(&json, "rls")["status"], "not_applicable", "{json}");
}

/// The other formats carry them too: each is a finding like any other.
#[test]
fn suppressions_in_text_and_sarif() {
    let t = repo();
    let base = [
        "verify",
        "--all",
        "--skip-commands",
        "--live",
        "off",
        "--format",
    ];
    let r = run(xtask(t.path(), &[&base[..], &["text"]].concat()));
    assert!(
        r.stdout.contains("suppressed") && r.stdout.contains("health check"),
        "{}",
        r.stdout
    );
    let (r, sarif) = run_json(xtask(t.path(), &[&base[..], &["sarif"]].concat()));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let suppressed: Vec<_> = results
        .iter()
        .filter(|r| r["ruleId"] == "suppressed")
        .collect();
    assert!(suppressed.len() >= 6, "{sarif}");
    assert!(
        suppressed.iter().any(|r| r["level"] == "note"
            && r["message"]["text"]
                .as_str()
                .unwrap()
                .contains("load balancer")),
        "{sarif}"
    );
}
