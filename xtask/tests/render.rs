//! Snapshot tests of the renderers on one fixed evidence set. `UPDATE_EXPECT=1 cargo test`
//! rewrites the snapshots; review the diff.

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
                Finding::new("rls-not-enabled", Severity::Error, "RLS is not enabled on public.AuditTrail: add `alter table \"AuditTrail\" enable row level security;`")
                    .at(mig, Some(14))
                    .on_table("public.AuditTrail"),
                Finding::new("policy-not-tenant-scoped", Severity::Error, "policy `audit_select` USING (true) | lets every tenant read")
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
            findings: vec![Finding::new("route-unguarded", Severity::Error, "POST does not call withAuth").at("apps/api/src/app/api/invoices/route.ts", Some(20))],
            new_schemas: vec!["packages/contracts/src/invoices.ts: CreateInvoiceInput".into()],
        }),
        lint: Ok(cmd("lint", "pnpm --fail-if-no-match --filter api lint", 0, Status::Pass, "0 errors, 2 warnings")),
        tests: Ok(cmd("tests", "pnpm test:api", 1, Status::Fail, "11 passed, 1 failed: src/invoices.test.ts > invoices > POST rejects")),
        other_commands: vec![],
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
    render::write_atomic(&path, b"new report").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new report");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // A failed write (directory gone) leaves nothing behind and reports the error.
    let missing = dir.join("no/such/dir/r.md");
    assert!(render::write_atomic(&missing, b"x").is_err());
    // Writing over a directory fails at the rename: the old contents stay, no temp file left.
    std::fs::create_dir_all(dir.join("taken")).unwrap();
    assert!(render::write_atomic(&dir.join("taken"), b"x").is_err());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
