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

/// A report such as a real repository gives: 100+ findings, most of them a few causes
/// repeated on many tables and handlers (28 tables the probe could not exercise for the
/// same reason, one missing guard on ten handlers), a few of their own.
fn crowded() -> Evidence {
    let mut ev = sample();
    let m = ev.migrations.as_mut().unwrap();
    m.live = LiveOutcome::Applied("throwaway Postgres 15".into());
    for i in 0..30 {
        let name = format!("public.t{i:02}");
        let file = format!("supabase/migrations/2025040{}000000_batch.sql", i % 5);
        let open = i < 6;
        let mut t = table(
            &name,
            if open {
                Verdict::Unprotected
            } else {
                Verdict::Protected
            },
            true,
            !open,
        );
        t.source = Source::Live;
        m.tables.push(t);
        let line = Some(10 + i as u32);
        if i < 28 {
            m.findings.push(
                Finding::new(
                    rule("live-probe-skipped"),
                    Severity::Info,
                    format!(
                        "{name}: live probe skipped: cannot make the probe's user a member of tenant A: \
                         insert or update on table \"t{i:02}\" violates foreign key constraint (23503); \
                         Failing row contains (1a743713-2f8f-4914-8b9b-4f190af375{i:02}); set `[live] become_tenant` in xtask.toml"
                    ),
                )
                .at(&file, line)
                .on_table(&name),
            );
        }
        if i % 2 == 0 {
            m.findings.push(
                Finding::new(
                    rule("tenant-index-missing"),
                    Severity::Warning,
                    format!("no index on {name} starts with `tenant_id`: every policy check scans the table; add `create index on {name} (tenant_id);`"),
                )
                .at(&file, line)
                .on_table(&name),
            );
        }
        if open {
            for cmd in ["select", "update", "delete"] {
                m.findings.push(
                    Finding::new(
                        rule("policy-not-tenant-scoped"),
                        Severity::Error,
                        format!("policy \"t{i:02}_{cmd}\" on {name} (permissive, for {cmd}, to authenticated) opens {cmd} to every tenant: USING `(true)`"),
                    )
                    .at(&file, line.map(|l| l + 100))
                    .on_table(&name),
                );
            }
        }
        if i < 12 {
            m.findings.push(
                Finding::new(
                    rule("function-search-path-mutable"),
                    Severity::Warning,
                    format!("security definer function public.touch_t{i:02} has no fixed search_path: add `set search_path = ''`"),
                )
                .at(&file, line.map(|l| l + 200)),
            );
        }
    }
    m.findings.push(
        Finding::new(
            rule("sql-syntax-error"),
            Severity::Error,
            "syntax error at or near \"tabel\"",
        )
        .at("supabase/migrations/20250405000000_typo.sql", Some(3)),
    );
    let routes = ev.routes.as_mut().unwrap();
    for i in 0..12 {
        let path = format!("apps/api/src/app/api/r{i:02}/route.ts");
        routes.routes.push(RouteReport {
            path: path.clone(),
            handlers: vec![
                HandlerReport {
                    method: "GET".into(),
                    line: 5,
                    auth: "guarded".into(),
                    validation: "no_input".into(),
                    note: String::new(),
                },
                HandlerReport {
                    method: "POST".into(),
                    line: 20,
                    auth: if i < 10 { "unguarded" } else { "guarded" }.into(),
                    validation: "none".into(),
                    note: String::new(),
                },
            ],
            public: i >= 10,
            exempt: None,
            rate_limited: Some(i < 10),
        });
        if i < 10 {
            routes.findings.push(
                Finding::new(
                    rule("route-unguarded"),
                    Severity::Error,
                    "POST does not call withAuth",
                )
                .at(&path, Some(21)),
            );
        }
        routes.findings.push(
            Finding::new(
                rule("input-not-validated"),
                Severity::Error,
                "POST reads the body with request.json() and validates it with no schema from the contracts package",
            )
            .at(&path, Some(24)),
        );
        if i >= 10 {
            routes.findings.push(
                Finding::new(
                    rule("rate-limit-missing"),
                    Severity::Error,
                    format!("public route r{i:02}: POST calls no rate limiter"),
                )
                .at(&path, Some(20)),
            );
        }
    }
    routes.findings.push(
        Finding::new(
            rule("raw-sql-interpolation"),
            Severity::Error,
            "GET interpolates `${id}` into SQL text",
        )
        .at("apps/api/src/app/api/r03/route.ts", Some(8)),
    );
    routes.findings.push(
        Finding::new(
            rule("hardcoded-secret"),
            Severity::Error,
            "a Stripe key in the source",
        )
        .at("apps/api/src/lib/stripe.ts", Some(3)),
    );
    ev
}

#[test]
fn crowded_text_view_folds_shared_causes_and_groups_the_rest() {
    let ev = crowded();
    let report = report_of(&ev);
    assert!(report.findings.len() >= 100, "{}", report.findings.len());
    let text = rendered_ev(&ev, Format::Text);
    expect_file!["snapshots/crowded.txt"].assert_eq(&text);
    // The verdicts lead.
    assert!(text.starts_with("✔ lint "), "{text}");
    // The probe's cause is said once, with the count of tables it applies to.
    assert_eq!(text.matches("live probe skipped").count(), 1, "{text}");
    assert!(
        text.contains("28 tables: info: live-probe-skipped"),
        "{text}"
    );
    assert!(
        text.contains("11 handlers: error: route-unguarded: POST does not call withAuth"),
        "{text}"
    );
    // A handler's own finding is under its route file and export.
    let handler = text
        .split("\nhandler apps/api/src/app/api/r03/route.ts GET (line 5)")
        .nth(1)
        .unwrap_or_else(|| panic!("no group for r03 GET:\n{text}"));
    assert!(
        handler
            .lines()
            .nth(1)
            .unwrap()
            .contains("raw-sql-interpolation"),
        "{text}"
    );
    assert!(!rendered_ev(&ev, Format::Text).contains('\x1b'));
    assert!(rendered(Format::Text, true).contains("\x1b[31m"));
}

#[test]
fn every_finding_is_under_a_shared_cause_or_in_one_group() {
    let ev = crowded();
    let report = report_of(&ev);
    let arranged = render::group::arrange(&report);
    let mut seen: Vec<*const Finding> = arranged
        .shared
        .iter()
        .flat_map(|s| s.findings.iter().map(|f| *f as *const Finding))
        .chain(
            arranged
                .groups
                .iter()
                .flat_map(|g| g.findings.iter().map(|f| *f as *const Finding)),
        )
        .collect();
    assert_eq!(seen.len(), report.findings.len());
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), report.findings.len(), "a finding shown twice");
    // Each shared cause has at least FOLD_AT findings; no group is empty; errors come first.
    assert!(arranged
        .shared
        .iter()
        .all(|s| s.findings.len() >= render::group::FOLD_AT));
    assert!(arranged.groups.iter().all(|g| !g.findings.is_empty()));
    let worst: Vec<_> = arranged.groups.iter().map(|g| g.worst()).collect();
    assert!(worst.windows(2).all(|w| w[0] <= w[1]), "{worst:?}");
    // The machine formats keep the flat list.
    let json: serde_json::Value = serde_json::from_str(&rendered_ev(&ev, Format::Json)).unwrap();
    assert_eq!(
        json["findings"].as_array().unwrap().len(),
        report.findings.len()
    );
    let sarif: serde_json::Value = serde_json::from_str(&sarif_of(&ev)).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.len() >= report.findings.len(), "{}", results.len());
}

#[test]
fn crowded_handover_groups_and_stays_short() {
    let ev = crowded();
    let md = rendered_ev(&ev, Format::Markdown);
    expect_file!["snapshots/crowded.md"].assert_eq(&md);
    assert!(md.len() < render::markdown::MAX_BYTES, "{}", md.len());
    assert_eq!(md.matches("live probe skipped").count(), 1, "{md}");
    assert!(
        md.contains("`live-probe-skipped` — 28 tables: public.…: live probe skipped:"),
        "{md}"
    );
    assert!(
        md.contains("**Table `public.t00` — unprotected (live)** · also shared cause"),
        "{md}"
    );
}

/// A repository with thousands of findings: the handover is cut by groups, each cut says
/// how many more and where they are, and the whole stays under the ceiling.
#[test]
fn the_handover_is_capped_and_points_at_the_full_list() {
    let mut ev = crowded();
    let m = ev.migrations.as_mut().unwrap();
    for i in 0..3000u32 {
        let name = format!("public.big{i:04}");
        m.findings.push(
            Finding::new(
                rule("policy-not-tenant-scoped"),
                Severity::Error,
                format!(
                    "policy \"p{i}\" on {name} opens select to every tenant: {}",
                    "x".repeat(i as usize % 700)
                ),
            )
            .at("supabase/migrations/20250406000000_big.sql", Some(i))
            .on_table(&name),
        );
        m.findings.push(
            Finding::new(
                rule("tenant-column-missing"),
                Severity::Error,
                format!("{name} has no `tenant_id` column: reason {i}"),
            )
            .at("supabase/migrations/20250406000000_big.sql", Some(i))
            .on_table(&name),
        );
    }
    for i in 0..400 {
        let t = table(
            &format!("public.wide{i:03}"),
            Verdict::Protected,
            true,
            true,
        );
        ev.migrations.as_mut().unwrap().tables.push(t);
    }
    let routes = ev.routes.as_mut().unwrap();
    let handler = routes.routes[1].clone();
    for i in 0..300 {
        routes.routes.push(RouteReport {
            path: format!("apps/api/src/app/api/many/r{i:03}/route.ts"),
            ..handler.clone()
        });
    }
    for i in 0..200 {
        ev.changes.files.push(ChangedFile {
            path: format!("apps/api/src/lib/f{i:03}.ts"),
            status: ChangeStatus::Added,
            from: None,
            target: None,
        });
    }
    let md = rendered_ev(&ev, Format::Markdown);
    assert!(md.len() <= render::markdown::MAX_BYTES, "{}", md.len());
    // The lists' own caps keep it under the ceiling: the last-resort cut is not needed.
    assert!(!md.contains("The handover was cut here"), "{md}");
    for what in ["more tables, see", "more routes, see", "more files, see"] {
        assert!(md.contains(what), "{what} missing:\n{md}");
    }
    assert!(
        md.contains("more table(s), handler(s) and file(s) with ")
            && md.contains("see the JSON report / SARIF (`cargo xtask verify --format json` or `--format sarif`)"),
        "{md}"
    );
    // The link to the run's log, when there is one; a URL that could break out is not linked.
    let mut report = report_of(&ev);
    report.log_url = Some("https://github.com/o/r/actions/runs/42".into());
    let mut out = Vec::new();
    render::render(&report, Format::Markdown, false, &mut out).unwrap();
    let md = String::from_utf8(out).unwrap();
    assert!(
        md.contains("[this run's log](https://github.com/o/r/actions/runs/42)"),
        "{md}"
    );
    report.log_url = Some("https://x)<img src=x>".into());
    let mut out = Vec::new();
    render::render(&report, Format::Markdown, false, &mut out).unwrap();
    let md = String::from_utf8(out).unwrap();
    assert!(
        !md.contains("this run's log") && !md.contains("<img"),
        "{md}"
    );
}

#[test]
fn a_cut_handover_closes_its_code_fence() {
    let long = format!(
        "## h\n\n````text\n{}````\n",
        "```sql\nselect 1;\n".repeat(render::markdown::MAX_BYTES / 8)
    );
    let cut = render::markdown::cap(long.clone(), "the JSON report");
    assert!(cut.len() <= render::markdown::MAX_BYTES, "{}", cut.len());
    assert!(
        cut.ends_with("Everything is in the JSON report._\n"),
        "{}",
        &cut[cut.len() - 200..]
    );
    let before_note = cut.rsplit_once("\n_The handover was cut here").unwrap().0;
    assert!(
        before_note.ends_with("\n````\n"),
        "{}",
        &before_note[before_note.len() - 50..]
    );
    // Short enough: untouched.
    assert_eq!(render::markdown::cap("a\n".into(), "x"), "a\n");
}

/// A section over its byte budget (here: route notes with very long paths) is cut at a line
/// end with the count of lines not shown, whatever its row cap let through.
#[test]
fn a_long_section_is_cut_by_bytes_with_the_count_of_lines_left_out() {
    let mut ev = crowded();
    let routes = ev.routes.as_mut().unwrap();
    let first = routes.routes[0].clone();
    routes.routes.extend(std::iter::repeat_n(first, 12));
    for (i, r) in routes.routes.iter_mut().enumerate() {
        r.path = format!("apps/api/src/app/api/{}{i}/route.ts", "deep/".repeat(60));
    }
    let md = rendered_ev(&ev, Format::Markdown);
    let notes = md
        .split("### Rate limit / validation / security notes\n")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .unwrap();
    assert!(notes.len() < 11 * 1024, "{}", notes.len());
    assert!(
        notes.contains("more lines, see the JSON report / SARIF"),
        "{notes}"
    );
}

/// Names under a shared cause and in group headings are escaped like every other name.
#[test]
fn folded_and_grouped_names_are_escaped() {
    let mut ev = sample();
    let m = ev.migrations.as_mut().unwrap();
    for i in 0..3 {
        let name = format!("public.t{i}\r\x1b[2K<img src=x onerror=alert({i})>");
        m.findings.push(
            Finding::new(
                rule("tenant-index-missing"),
                Severity::Warning,
                format!("no index on {name} starts with `tenant_id`"),
            )
            .at(
                "supabase/migrations/20250301000000_invoices.sql",
                Some(30 + i),
            )
            .on_table(&name),
        );
    }
    m.findings.push(
        Finding::new(rule("rls-not-enabled"), Severity::Error, "RLS is off")
            .at("supabase/migrations/20250301000000_invoices.sql", Some(40))
            .on_table("public.h\u{202e}x"),
    );
    let text = rendered_ev(&ev, Format::Text);
    assert!(
        text.contains("3 tables: warning: tenant-index-missing"),
        "{text}"
    );
    assert!(
        !text.contains('\r') && !text.contains('\x1b') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(text.contains("public.t0\\r\\x1b[2K<img"), "{text}");
    assert!(text.contains("table public.h\\u{202e}x"), "{text}");
    let md = rendered_ev(&ev, Format::Markdown);
    assert!(md.contains("— 3 tables: no index on"), "{md}");
    assert!(
        !md.contains('\r') && !md.contains('\x1b') && !md.contains('\u{202e}'),
        "{md:?}"
    );
    // The names sit in code spans only: outside them no `<img` is left.
    let outside: String = md
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, s)| s)
        .collect();
    assert!(!outside.contains("<img"), "{md}");
    assert!(
        md.contains("`public.t0\\r\\x1b[2K<img src=x onerror=alert(0)>`"),
        "{md}"
    );
}
