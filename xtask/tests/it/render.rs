//! Snapshot tests of the renderers on one fixed evidence set. `UPDATE_EXPECT=1 cargo test`
//! rewrites the snapshots; review the diff.

use crate::common;

use expect_test::expect_file;
use xtask::{
    checklist,
    flags::{Format, Live},
    gather::Evidence,
    model::*,
    render::{self, Report},
    repo::Changes,
};

fn table(name: &str, verdict: Verdict, rls: bool, scoped: bool) -> TableReport {
    TableReport {
        name: name.into(),
        new: true,
        verdict,
        tenant_column: true,
        tenant_not_null: true,
        rls_enabled: rls,
        policies: vec![PolicyReport {
            name: format!("{}_select", name.trim_start_matches("public.")),
            command: "select".into(),
            permissive: true,
            roles: vec!["authenticated".into()],
            using: Some(
                if scoped {
                    "(tenant_id = get_current_tenant_id())"
                } else {
                    "true"
                }
                .into(),
            ),
            with_check: None,
            tenant_scoped: scoped,
            uses: None,
        }],
        tenant_index: true,
        probe: None,
        denied: vec![],
        service_only: false,
        source: Source::Static,
        reason: None,
    }
}

fn cmd(id: &str, argv: &str, code: i32, status: Status, summary: &str) -> CommandReport {
    CommandReport {
        id: id.into(),
        argv: argv.split(' ').map(String::from).collect(),
        exit_code: Some(code),
        duration_ms: 1234,
        summary: summary.into(),
        status,
        output_tail: String::new(),
    }
}

pub fn sample() -> Evidence {
    let mig = "supabase/migrations/20250301000000_invoices.sql";
    Evidence {
        repo: "examples/dashboard".into(),
        changes: Changes {
            base: Some("0123456789abcdef0123456789abcdef01234567".into()),
            all: false,
            files: vec![
                ChangedFile { path: "apps/api/src/app/api/invoices/route.ts".into(), status: ChangeStatus::Added, from: None, target: None },
                ChangedFile { path: "docs/old.md".into(), status: ChangeStatus::Deleted, from: None, target: None },
                ChangedFile { path: mig.into(), status: ChangeStatus::Added, from: None, target: None },
                ChangedFile { path: "supabase/migrations/link.sql".into(), status: ChangeStatus::Renamed, from: Some("x.sql".into()), target: Some("shared/real.sql".into()) },
            ],
        },
        migrations: Ok(MigrationEvidence {
            new_files: vec![mig.into()],
            files_read: 4,
            tables: vec![
                table("public.invoices", Verdict::Protected, true, true),
                table("public.AuditTrail", Verdict::Unprotected, false, false),
                TableReport { reason: Some("global price list".into()), ..table("public.plans", Verdict::Exempt, false, false) },
            ],
            findings: vec![
                Finding::new(rule("rls-not-enabled"), Severity::Error, "RLS is not enabled on public.AuditTrail: add `alter table \"AuditTrail\" enable row level security;`")
                    .at(mig, Some(14))
                    .on_table("public.AuditTrail"),
                Finding::new(rule("policy-not-tenant-scoped"), Severity::Error, "policy `audit_select` USING (true) | lets every tenant read")
                    .at(mig, Some(20))
                    .on_table("public.AuditTrail"),
            ],
            impact: vec!["created table `public.invoices`".into(), "dropped column `public.projects.legacy`".into()],
            live: LiveOutcome::Unavailable("no Postgres binaries on PATH".into()),
            live_notes: vec![],
        }),
        routes: Ok(RouteEvidence {
            routes: vec![RouteReport {
                path: "apps/api/src/app/api/invoices/route.ts".into(),
                handlers: vec![
                    HandlerReport { method: "GET".into(), line: 8, auth: "guarded".into(), validation: "contracts".into(), note: "withAuth; ListInvoicesQuery from @dashboard/contracts".into() },
                    HandlerReport { method: "POST".into(), line: 20, auth: "unguarded".into(), validation: "inline".into(), note: "z.object in the route file".into() },
                ],
                public: false,
                exempt: None,
                rate_limited: None,
            }],
            findings: vec![Finding::new(rule("route-unguarded"), Severity::Error, "POST does not call withAuth").at("apps/api/src/app/api/invoices/route.ts", Some(20))],
            new_schemas: vec!["packages/contracts/src/invoices.ts: CreateInvoiceInput".into()],
        }),
        lint: Ok(cmd("lint", "pnpm --fail-if-no-match --filter api lint", 0, Status::Pass, "0 errors, 2 warnings")),
        tests: Ok(cmd("tests", "pnpm test:api", 1, Status::Fail, "11 passed, 1 failed: src/invoices.test.ts > invoices > POST rejects")),
        other_commands: vec![],
        weakened: Default::default(),
        agent: None,
    }
}

fn rendered(format: Format, color: bool) -> String {
    let ev = sample();
    let report = Report::new(&ev, checklist::build(&ev, Live::Auto));
    let mut out = Vec::new();
    render::render(&report, format, color, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn markdown_handover() {
    expect_file!["snapshots/handover.md"].assert_eq(&rendered(Format::Markdown, false));
}

#[test]
fn json_report_v1() {
    let text = rendered(Format::Json, false);
    expect_file!["snapshots/report.json"].assert_eq(&text);
    // The contract's fields are present with their names.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in [
        "version",
        "repo",
        "base",
        "checklist",
        "findings",
        "tables",
        "changed_files",
        "commands",
        "agent",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    let t = &v["tables"][0];
    for key in [
        "name",
        "new",
        "verdict",
        "tenant_column",
        "tenant_not_null",
        "rls_enabled",
        "policies",
        "tenant_index",
        "source",
    ] {
        assert!(t.get(key).is_some(), "tables[].{key}");
    }
    for key in [
        "name",
        "command",
        "permissive",
        "roles",
        "using",
        "with_check",
        "tenant_scoped",
    ] {
        assert!(t["policies"][0].get(key).is_some(), "policies[].{key}");
    }
}

#[test]
fn text_view_plain_and_coloured() {
    expect_file!["snapshots/report.txt"].assert_eq(&rendered(Format::Text, false));
    let coloured = rendered(Format::Text, true);
    assert!(coloured.contains("\x1b[31m"), "colour codes when asked");
    assert!(!rendered(Format::Text, false).contains('\x1b'));
}

#[test]
fn checklist_from_the_sample() {
    let ev = sample();
    let items = checklist::build(&ev, Live::Auto);
    let got: Vec<(&str, &str)> = items.iter().map(|i| (i.id, i.status.as_str())).collect();
    assert_eq!(
        got,
        [
            ("lint", "pass"),
            ("tests", "fail"),
            ("tenant_id", "pass"),
            ("rls", "fail"),
            ("contracts", "fail"),
            ("auth", "fail"),
            ("rate_limit", "not_applicable"),
            ("migration", "unknown"),
        ]
    );
    assert!(!checklist::all_clear(&items, &ev));
}

#[test]
fn atomic_write_replaces_whole_and_leaves_no_temp_file() {
    let dir = std::env::temp_dir().join(format!("xtask-atomic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("r.md");
    std::fs::write(&path, "old report").unwrap();
    xtask::outfile::write_atomic(&path, b"new report").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new report");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // A failed write (directory gone) leaves nothing behind and reports the error.
    let missing = dir.join("no/such/dir/r.md");
    assert!(xtask::outfile::write_atomic(&missing, b"x").is_err());
    // Writing over a directory fails at the rename: the old contents stay, no temp file left.
    std::fs::create_dir_all(dir.join("taken")).unwrap();
    assert!(xtask::outfile::write_atomic(&dir.join("taken"), b"x").is_err());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn report_of(ev: &Evidence) -> Report<'_> {
    Report::new(ev, checklist::build(ev, Live::Auto))
}

fn github_with_token(ev: &Evidence) -> String {
    let mut out = Vec::new();
    render::github::render_with_token(&report_of(ev), "T0KEN", &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn sarif_of(ev: &Evidence) -> String {
    let mut out = Vec::new();
    render::sarif::render_with_uri(&report_of(ev), "urn:cargo-xtask:backend-verify", &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn github_annotations() {
    let text = github_with_token(&sample());
    expect_file!["snapshots/report.github.txt"].assert_eq(&text);
    let seen = common::runner_view(&text).commands;
    // The group, the checklist error, then findings: errors first.
    assert!(
        seen[0].starts_with("::group::Backend handover: 2 passed, 4 failed"),
        "{seen:?}"
    );
    assert_eq!(seen[1], "::endgroup::");
    assert!(seen[2].starts_with("::error title=Backend handover%3A not ready for review::"));
    assert!(seen[3].starts_with(
        "::error file=examples/dashboard/apps/api/src/app/api/invoices/route.ts,line=20,title=route-unguarded::"
    ), "{seen:?}");
    assert_eq!(seen.len(), 6, "one annotation per finding: {seen:?}");
}

#[test]
fn github_escapes_data_and_properties() {
    let mut ev = sample();
    let nasty_path = "supabase/migrations/50%_a:b,c\nd.sql";
    let routes = ev.routes.as_mut().unwrap();
    routes.findings = vec![
        Finding::new(
            rule("hardcoded-secret"),
            Severity::Error,
            "100% sure: key, token\n::error::pwned\r\nend",
        )
        .at(nasty_path, Some(3))
        .on_table("public.a:b,c"),
        Finding::new(
            rule("tenant-index-missing"),
            Severity::Warning,
            "no file: 1, 2",
        )
        .on_table("public.x"),
    ];
    ev.migrations.as_mut().unwrap().findings.clear();
    let text = github_with_token(&ev);
    let seen = common::runner_view(&text).commands;
    let secret = seen
        .iter()
        .find(|l| l.contains("hardcoded-secret"))
        .expect("annotated");
    assert_eq!(
        secret,
        "::error file=examples/dashboard/supabase/migrations/50%25_a%3Ab%2Cc%0Ad.sql,line=3,\
         title=hardcoded-secret (public.a%3Ab%2Cc)::100%25 sure: key, token%0A::error::pwned%0D%0Aend"
    );
    assert!(
        seen.iter()
            .any(|l| l == "::warning title=tenant-index-missing (public.x)::no file: 1, 2"),
        "a finding without a file has no file= or line=: {seen:?}"
    );
    assert!(
        !seen.iter().any(|l| l.starts_with("::error::pwned")),
        "the message's second line is data, never a command: {seen:?}"
    );
    // The compact view holds the raw text, but only inside the stop-commands block.
    assert!(text.contains("\n::error::pwned\n") || text.contains("::error::pwned"));

    // SARIF keeps the text exactly (JSON escaping), with the path as the location.
    let sarif: serde_json::Value = serde_json::from_str(&sarif_of(&ev)).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let r = results
        .iter()
        .find(|r| r["ruleId"] == "hardcoded-secret")
        .unwrap();
    assert_eq!(
        r["message"]["text"],
        "100% sure: key, token\n::error::pwned\r\nend (table public.a:b,c)"
    );
    assert_eq!(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        format!("examples/dashboard/{nasty_path}")
    );

    // JUnit: one line per element start; the text survives an XML parser unchanged.
    let junit = rendered_ev(&ev, Format::Junit);
    assert!(
        !junit.lines().any(|l| l.trim_start().starts_with("::")),
        "{junit}"
    );
    assert!(junit.contains("100% sure: key, token&#10;::error::pwned&#13;&#10;end"));
    if let Some(parsed) = parse_junit(&junit) {
        assert!(
            parsed.contains("failure|100% sure: key, token\n::error::pwned\r\nend"),
            "{parsed}"
        );
    }
}

fn rendered_ev(ev: &Evidence, format: Format) -> String {
    let mut out = Vec::new();
    render::render(&report_of(ev), format, false, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Parse with Python's XML parser (when python3 is there): `tag|message` of every failure,
/// error and skipped element, one per line; `None` when skipped.
fn parse_junit(xml: &str) -> Option<String> {
    let script = r#"
import sys, xml.etree.ElementTree as E
root = E.fromstring(sys.stdin.buffer.read())
assert root.tag == "testsuites", root.tag
n = 0
for case in root.iter("testcase"):
    n += 1
    for child in case:
        if child.tag in ("failure", "error", "skipped"):
            sys.stdout.write(child.tag + "|" + child.get("message", "") + "\n")
sys.stdout.write("cases=%d\n" % n)
"#;
    use std::io::Write;
    let child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return common::unavailable("python3 is not on PATH (it parses the JUnit XML)");
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not well-formed XML: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn sarif_for_code_scanning() {
    let text = sarif_of(&sample());
    expect_file!["snapshots/report.sarif"].assert_eq(&text);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let driver = &run["tool"]["driver"];
    for key in ["name", "version", "informationUri", "rules"] {
        assert!(driver.get(key).is_some(), "driver.{key}");
    }
    let rules = driver["rules"].as_array().unwrap();
    for rule in rules {
        for key in ["id", "shortDescription", "fullDescription", "help"] {
            assert!(rule.get(key).is_some(), "{key} of {rule}");
        }
        let level = rule["defaultConfiguration"]["level"].as_str().unwrap();
        assert!(["error", "warning", "note"].contains(&level), "{rule}");
    }
    // Every contract rule id is described.
    for id in [
        "tenant-column-missing",
        "tenant-column-nullable",
        "rls-not-enabled",
        "policy-missing",
        "policy-not-tenant-scoped",
        "tenant-index-missing",
        "unverifiable-sql",
        "sql-syntax-error",
        "migration-apply-failed",
        "route-unguarded",
        "route-unverified",
        "input-not-validated",
        "rate-limit-missing",
        "hardcoded-secret",
        "raw-sql-interpolation",
    ] {
        assert!(rules.iter().any(|r| r["id"] == id), "{id}");
    }
    let results = run["results"].as_array().unwrap();
    // 3 findings, and the 5 checklist items that did not pass (4 fail, 1 unknown).
    assert_eq!(results.len(), 8, "{results:#?}");
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"], "ruleIndex matches");
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(
            !loc["artifactLocation"]["uri"].as_str().unwrap().is_empty(),
            "{r}"
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1, "{r}");
    }
    let tests = results
        .iter()
        .find(|r| r["ruleId"] == "checklist/tests")
        .unwrap();
    assert_eq!(tests["level"], "error");
    assert_eq!(
        tests["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "examples/dashboard/package.json"
    );
    let migration = results
        .iter()
        .find(|r| r["ruleId"] == "checklist/migration")
        .unwrap();
    assert_eq!(migration["level"], "warning", "unknown is never a pass");
}

#[test]
fn junit_one_case_per_item_and_finding() {
    let text = rendered(Format::Junit, false);
    expect_file!["snapshots/report.junit.xml"].assert_eq(&text);
    assert_eq!(text.matches("<testcase ").count(), 8 + 3);
    // fail → failure, unknown → error, not_applicable → skipped; never a pass for unknown.
    assert_eq!(text.matches("<failure type=\"fail\"").count(), 4);
    assert!(text.contains("name=\"migration: Migration file created and tested\" time=\"0.000\">\n      <error type=\"unknown\""));
    assert!(text.contains(
        "name=\"rate_limit: Rate limiting on public endpoints\" time=\"0.000\">\n      <skipped"
    ));
    if let Some(parsed) = parse_junit(&text) {
        assert!(parsed.ends_with("cases=11\n"), "{parsed}");
        assert_eq!(parsed.matches("failure|").count(), 4 + 3, "{parsed}");
        assert_eq!(parsed.matches("error|").count(), 1, "{parsed}");
        assert_eq!(parsed.matches("skipped|").count(), 1, "{parsed}");
    }
}

fn rule(id: &str) -> xtask::model::Rule {
    id.parse().unwrap()
}

/// Every view of `ev`: the six formats and the job summary.
fn every_view(ev: &Evidence, name: &str) -> Vec<(String, String)> {
    let mut views: Vec<(String, String)> = [
        Format::Markdown,
        Format::Json,
        Format::Text,
        Format::Github,
        Format::Sarif,
        Format::Junit,
    ]
    .into_iter()
    .map(|f| (format!("{f:?}"), rendered_ev(ev, f)))
    .collect();
    let dir = common::TempDir::new(name);
    let summary = dir.path().join("summary.md");
    render::github::step_summary_to(&report_of(ev), &summary).unwrap();
    views.push((
        "step summary".into(),
        std::fs::read_to_string(&summary).unwrap(),
    ));
    views
}

#[test]
fn secrets_are_masked_in_every_format_whatever_carries_them() {
    let key = "sk_live_abcdefghijklmnopqrstuvwx";
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    let url = "postgres://app:hunter2secret@db.example.com:5432/app";
    let mut ev = sample();
    let m = ev.migrations.as_mut().unwrap();
    // Postgres's own error text quotes the value it could not read.
    m.findings.push(
        Finding::new(
            rule("migration-apply-failed"),
            Severity::Error,
            format!("invalid input syntax for type integer: \"{key}\""),
        )
        .at("supabase/migrations/20250301000000_invoices.sql", Some(3)),
    );
    m.live = LiveOutcome::Failed(format!("could not connect to {url}"));
    m.live_notes = vec![format!("token {jwt} in the seed")];
    m.tables[0].reason = Some(format!("exempt: {key}"));
    let tests = ev.tests.as_mut().unwrap();
    tests.summary = format!("1 failed: expected {jwt}");
    tests.output_tail = format!("Error: {key}\n");
    let mut round = AgentRound {
        round: 1,
        final_message: Some(format!("I used {key} and {url}")),
        errors: vec![format!("auth {jwt}")],
        ..AgentRound::default()
    };
    round.outcome = "exit code 0".into();
    ev.agent = Some(AgentReport {
        agent: "codex".into(),
        rounds: vec![round],
        ..AgentReport::default()
    });
    let (items, findings) = {
        let r = report_of(&ev);
        (r.checklist.len(), r.findings.len())
    };
    assert!(items > 0 && findings > 0);
    for (name, text) in every_view(&ev, "mask-views") {
        for value in [key, jwt, "hunter2secret"] {
            assert!(!text.contains(value), "{name} shows {value}:\n{text}");
        }
        assert!(
            text.contains("sk_l…"),
            "{name} lost the masked key:\n{text}"
        );
    }
    // Where the key was in Postgres's text, its masked form is what is shown.
    let md = rendered_ev(&ev, Format::Markdown);
    assert!(md.contains("type integer: \"sk_l…\""), "{md}");
    assert!(md.contains("postgres://app:hunt…@db.example.com"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&rendered_ev(&ev, Format::Json)).unwrap();
    assert_eq!(json["tables"][0]["reason"], "exempt: sk_l…");
}

#[test]
fn hostile_names_are_escaped_in_the_text_and_markdown_views() {
    let spoof = "public.t\r\x1b[2K✔ lint       pass";
    let route = "apps/api/src/app/api/a`b<img src=x onerror=alert(1)>/route.ts";
    let mut ev = sample();
    let m = ev.migrations.as_mut().unwrap();
    m.tables[0].name = spoof.into();
    m.findings.push(
        Finding::new(
            rule("rls-not-enabled"),
            Severity::Error,
            format!("RLS is not enabled on {spoof}"),
        )
        .at("supabase/migrations/20250301000000_invoices.sql", Some(2))
        .on_table(spoof),
    );
    let routes = ev.routes.as_mut().unwrap();
    routes.routes[0].path = route.into();
    routes.findings.push(
        Finding::new(
            rule("route-unguarded"),
            Severity::Error,
            format!("GET in {route} <b>does not</b> call withAuth"),
        )
        .at(route, Some(1)),
    );
    ev.changes.files[0].path = route.into();

    for text in [rendered_ev(&ev, Format::Text), {
        let mut out = Vec::new();
        render::lines::render(&report_of(&ev), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }] {
        assert!(
            !text.contains('\r') && !text.contains('\x1b'),
            "a control character reached the terminal:\n{text:?}"
        );
        assert!(text.contains("public.t\\r\\x1b[2K✔ lint"), "{text}");
    }

    // The github view (the compact view and the annotations) reaches the runner's log.
    let github = rendered_ev(&ev, Format::Github);
    assert!(!github.contains('\x1b'), "{github:?}");
    assert!(github.contains("public.t\\r\\x1b[2K✔ lint"), "{github}");

    let views = every_view(&ev, "escape-views");
    for (name, md) in views
        .iter()
        .filter(|(n, _)| n == "Markdown" || n == "step summary")
    {
        // The only `<img` left is inside the route's code spans, where it is shown as text.
        let span = "``apps/api/src/app/api/a`b<img src=x onerror=alert(1)>/route.ts";
        let outside = md.replace(span, "");
        assert!(!outside.contains("<img"), "{name}: raw HTML:\n{md}");
        assert!(!md.contains("<b>"), "{name}: raw HTML:\n{md}");
        assert!(!md.contains('\r') && !md.contains('\x1b'), "{name}: {md:?}");
        // The route path is one code span whose fence no backtick in it can close.
        assert!(
            md.contains("- ``apps/api/src/app/api/a`b<img src=x onerror=alert(1)>/route.ts``"),
            "{name}:\n{md}"
        );
        assert!(
            md.contains("&lt;b&gt;does not&lt;/b&gt;"),
            "{name}: text outside code spans is escaped:\n{md}"
        );
        assert!(
            md.contains("| `public.t\\r\\x1b[2K✔ lint       pass` |"),
            "{name}:\n{md}"
        );
    }
}
