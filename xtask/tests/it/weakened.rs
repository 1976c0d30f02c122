//! Issue 16 at the command line: a change that weakens the checks (a lint script replaced by
//! `true`, a test skipped, a test file deleted, an exemption added to xtask.toml, a statement
//! appended to an applied migration) fails `verify` with each weakening named at its file;
//! reverting them takes the findings away.

use crate::common::{self, git, git_repo, run_json, write, xtask};
use serde_json::Value;

const ROOT_PACKAGE: &str = r#"{
  "name": "dashboard",
  "private": true,
  "scripts": {
    "test:api": "pnpm --filter api test"
  }
}
"#;

const API_PACKAGE: &str = r#"{
  "name": "api",
  "private": true,
  "scripts": {
    "lint": "eslint .",
    "test": "vitest run"
  }
}
"#;

const INVOICES_TEST: &str = r#"import { describe, it, expect } from 'vitest';

describe('invoices', () => {
  it('lists rows', () => {
    expect([1, 2]).toHaveLength(2);
  });
  it('rejects other tenants', () => {
    expect(() => { throw new Error('no'); }).toThrow();
  });
});
"#;

const HEALTH_TEST: &str = r#"import { it, expect } from 'vitest';

it('is healthy', () => {
  expect(true).toBe(true);
});
"#;

const MIGRATION: &str = "supabase/migrations/20250101000000_invoices.sql";

const INIT_SQL: &str = "create table public.tenants (id uuid primary key);\n\
create table public.invoices (\n  id uuid primary key,\n  tenant_id uuid not null references public.tenants (id)\n);\n\
create index invoices_tenant_id_idx on public.invoices (tenant_id);\n\
alter table public.invoices enable row level security;\n\
create policy invoices_all on public.invoices for all to authenticated\n  using (tenant_id = public.get_current_tenant_id())\n  with check (tenant_id = public.get_current_tenant_id());\n";

const CONFIG: &str = "[routes]\npublic = [\"public/**\"]\n";

fn base_repo(name: &str) -> common::TempDir {
    git_repo(
        name,
        &[
            ("package.json", ROOT_PACKAGE),
            ("apps/api/package.json", API_PACKAGE),
            ("apps/api/src/invoices.test.ts", INVOICES_TEST),
            ("apps/api/src/health.test.ts", HEALTH_TEST),
            (MIGRATION, INIT_SQL),
            ("xtask.toml", CONFIG),
        ],
    )
}

fn weaken(dir: &std::path::Path) {
    write(
        dir,
        "apps/api/package.json",
        &API_PACKAGE.replace("\"lint\": \"eslint .\"", "\"lint\": \"true\""),
    );
    write(
        dir,
        "apps/api/src/invoices.test.ts",
        &INVOICES_TEST.replace(
            "it('rejects other tenants'",
            "it.skip('rejects other tenants'",
        ),
    );
    std::fs::remove_file(dir.join("apps/api/src/health.test.ts")).unwrap();
    write(
        dir,
        "xtask.toml",
        &format!("{CONFIG}[tenancy]\nexempt_tables = [{{ table = \"public.invoices\", reason = \"legacy\" }}]\n"),
    );
    write(
        dir,
        MIGRATION,
        &format!("{INIT_SQL}alter table public.invoices disable row level security;\n"),
    );
}

fn verify(dir: &std::path::Path, extra: &[&str]) -> (common::Run, Value) {
    let mut args = vec![
        "verify",
        "--repo",
        ".",
        "--base",
        "HEAD",
        "--skip-commands",
        "--live",
        "off",
        "--format",
        "json",
    ];
    args.extend(extra);
    run_json(xtask(dir, &args))
}

/// `(rule, severity, path:line)` of every finding of the two weakening rules.
fn weakenings(json: &Value) -> Vec<(String, String, String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "checks-weakened" || f["rule"] == "applied-migration-edited")
        .map(|f| {
            let at = match f["line"].as_u64() {
                Some(l) => format!("{}:{l}", f["path"].as_str().unwrap_or("")),
                None => f["path"].as_str().unwrap_or("").to_string(),
            };
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                at,
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(found: &[(String, String, String, String)], rule: &str, sev: &str, at: &str, says: &str) {
    assert!(
        found
            .iter()
            .any(|(r, s, a, m)| r == rule && s == sev && a == at && m.contains(says)),
        "no {sev} {rule} at {at} saying {says:?} in {found:#?}"
    );
}

#[test]
fn weakening_the_checks_fails_verify_and_reverting_clears_it() {
    let repo = base_repo("weakened-cli");
    let dir = repo.path();
    weaken(dir);

    let (r, json) = verify(dir, &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let found = weakenings(&json);
    has(
        &found,
        "checks-weakened",
        "error",
        "apps/api/package.json:5",
        "`\"lint\": \"eslint .\"` → `\"true\"`",
    );
    has(
        &found,
        "checks-weakened",
        "error",
        "apps/api/src/invoices.test.ts:7",
        "test `invoices > rejects other tenants` newly skipped with `it.skip`",
    );
    has(
        &found,
        "checks-weakened",
        "error",
        "apps/api/src/health.test.ts",
        "test file deleted",
    );
    has(
        &found,
        "checks-weakened",
        "error",
        "xtask.toml:4",
        "exempt table `public.invoices` added",
    );
    has(
        &found,
        "applied-migration-edited",
        "error",
        &format!("{MIGRATION}:11"),
        "existed at the base was edited",
    );
    assert_eq!(found.len(), 5, "{found:#?}");
    let migration = common::item(&json, "migration");
    assert_eq!(migration["status"], "fail", "{migration}");
    // Judged with the base's xtask.toml: the exemption does not apply.
    let invoices = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "public.invoices")
        .expect("invoices judged");
    assert_ne!(invoices["verdict"], "exempt", "{invoices}");

    // The handover's security notes list them for the reviewer.
    let md = common::run(xtask(
        dir,
        &[
            "verify",
            "--repo",
            ".",
            "--base",
            "HEAD",
            "--skip-commands",
            "--live",
            "off",
        ],
    ));
    assert!(md.stdout.contains("Security:"), "{}", md.stdout);
    assert!(
        md.stdout.contains("`applied-migration-edited`"),
        "{}",
        md.stdout
    );

    // A reviewed xtask.toml: trusted, named as info, and the exemption applies.
    let (_, trusted) = verify(dir, &["--trust-config"]);
    let found = weakenings(&trusted);
    has(
        &found,
        "checks-weakened",
        "info",
        "xtask.toml:4",
        "trusted (--trust-config)",
    );
    let invoices = trusted["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "public.invoices");
    assert!(
        invoices.is_none_or(|t| t["verdict"] == "exempt"),
        "{invoices:?}"
    );

    // Reverted: nothing weakened is left.
    git(dir, &["checkout", "--", "."]);
    let (r, json) = verify(dir, &[]);
    assert_eq!(weakenings(&json), Vec::new(), "{}", r.stdout);
}

#[test]
fn what_only_adds_or_tightens_is_no_weakening() {
    let repo = base_repo("weakened-cli-clean");
    let dir = repo.path();
    // A new test file, a new later migration, a renamed test, a stricter config.
    write(dir, "apps/api/src/new.test.ts", HEALTH_TEST);
    write(
        dir,
        "supabase/migrations/20250201000000_more.sql",
        "create index invoices_id_idx on public.invoices (id);\n",
    );
    write(
        dir,
        "apps/api/src/invoices.test.ts",
        &INVOICES_TEST.replace("it('lists rows'", "it('lists the rows of the tenant'"),
    );
    write(dir, "xtask.toml", "[routes]\npublic = []\n");
    let (_, json) = verify(dir, &[]);
    assert_eq!(weakenings(&json), Vec::new(), "{json:#}");

    // A new migration older than the newest applied one: a warning of the same rule.
    write(
        dir,
        "supabase/migrations/20241231000000_early.sql",
        "select 1;\n",
    );
    let (_, json) = verify(dir, &[]);
    let found = weakenings(&json);
    has(
        &found,
        "applied-migration-edited",
        "warning",
        "supabase/migrations/20241231000000_early.sql",
        "sorts before 20250101000000",
    );
}

/// `backend-stage` end to end: the real codex CLI and the scripted model server (see
/// `backend_stage.rs`), on a temp git copy of the example monorepo.
mod agent {
    use std::time::Duration;

    use serde_json::Value;

    use crate::agent_support::*;

    const LINT: &str = "apps/api/package.json";
    const SKIPPED: &str = "apps/api/test/routes/projects.test.ts";
    const DELETED: &str = "apps/api/test/routes/public-status.test.ts";
    const APPLIED: &str = "supabase/migrations/20250102000000_projects.sql";

    /// One shell command that makes every weakening of the issue.
    fn weaken() -> String {
        [
            format!("sed -i 's/\"lint\": \"eslint .\"/\"lint\": \"true\"/' {LINT}"),
            format!("sed -i 's/  it(\"returns 401 without a token\"/  it.skip(\"returns 401 without a token\"/' {SKIPPED}"),
            format!("rm {DELETED}"),
            "sed -i '/^\\[tenancy\\]/a exempt_tables = [{ table = \"public.projects\", reason = \"legacy\" }]' xtask.toml".to_string(),
            format!("echo 'alter table public.projects disable row level security;' >> {APPLIED}"),
        ]
        .join(" && ")
    }

    /// The revert, without writing to .git (the sandbox may keep it read-only).
    fn revert() -> String {
        [LINT, SKIPPED, DELETED, "xtask.toml", APPLIED]
            .iter()
            .map(|p| format!("GIT_OPTIONAL_LOCKS=0 git show HEAD:{p} > {p}"))
            .collect::<Vec<_>>()
            .join(" && ")
    }

    fn weakenings(findings: &Value) -> Vec<(String, String)> {
        findings
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                (f["rule"] == "checks-weakened" || f["rule"] == "applied-migration-edited")
                    && f["severity"] == "error"
            })
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_string(),
                    f["path"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn expected() -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = [
            ("checks-weakened", LINT),
            ("checks-weakened", SKIPPED),
            ("checks-weakened", DELETED),
            ("checks-weakened", "xtask.toml"),
            ("applied-migration-edited", APPLIED),
        ]
        .iter()
        .map(|(r, p)| (r.to_string(), p.to_string()))
        .collect();
        v.sort();
        v
    }

    #[test]
    fn an_agent_that_weakens_the_checks_is_told_to_revert_and_then_passes_them() {
        let Some(codex) = codex() else { return };
        let Some(repo) = example_repo("weakened-agent") else {
            return;
        };
        let server = ModelServer::start(
            vec![
                Reply::Turn(vec![shell("call_1", &weaken())]),
                Reply::Turn(vec![message("Done: lint and tests are green now.")]),
                Reply::Turn(vec![shell("call_2", &revert())]),
                Reply::Turn(vec![message("Reverted every weakening.")]),
            ],
            Duration::from_secs(180),
        );
        let home = codex_home(server.port);
        let cmd = backend_stage(
            &codex,
            home.path(),
            repo.path(),
            &[
                "--task",
                "Make the checks pass.",
                "--fix-rounds",
                "1",
                "--skip-commands",
                "--live",
                "off",
                "--format",
                "json",
            ],
        );
        let (out, _) = run_with_stdin(cmd, None, Duration::from_secs(120));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--skip-commands: {stderr}");
        let json: Value = serde_json::from_slice(&out.stdout).expect("json report");
        let rounds = json["agent"]["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 2, "{json:#}");

        // Round 1: each weakening named at its file, as an error.
        let mut first = weakenings(&rounds[0]["verify"]["findings"]);
        first.sort();
        first.dedup();
        assert_eq!(first, expected(), "{:#}", rounds[0]["verify"]["findings"]);
        let toml = rounds[0]["verify"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "xtask.toml")
            .unwrap();
        assert!(
            toml["message"]
                .as_str()
                .unwrap()
                .contains("was changed during the run"),
            "{toml}"
        );
        let migration = rounds[0]["verify"]["checklist"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "migration")
            .unwrap();
        assert_eq!(migration["status"], "fail", "{migration}");

        // The fix round asks for each to be reverted.
        let requests = server.requests();
        let resume = user_texts(&requests[2]).pop().unwrap();
        assert!(
            resume.contains("## Checks weakened by the change — revert each"),
            "{resume}"
        );
        for (_, path) in expected() {
            assert!(
                resume
                    .lines()
                    .any(|l| l.contains(&path) && l.ends_with("revert this.")),
                "{path} not listed to revert:\n{resume}"
            );
        }

        // Round 2 reverted them: none is left.
        assert_eq!(
            weakenings(&rounds[1]["verify"]["findings"]),
            Vec::new(),
            "{:#}",
            rounds[1]["verify"]["findings"]
        );
        assert_eq!(weakenings(&json["findings"]), Vec::new());
    }

    #[test]
    fn the_checks_run_with_the_configuration_from_before_the_agent() {
        let Some(codex) = codex() else { return };
        let Some(repo) = example_repo("weakened-agent-config") else {
            return;
        };
        let server = ModelServer::start(
            vec![
                Reply::Turn(vec![shell("call_1", &weaken())]),
                Reply::Turn(vec![message("Done.")]),
            ],
            Duration::from_secs(180),
        );
        let home = codex_home(server.port);
        let cmd = backend_stage(
            &codex,
            home.path(),
            repo.path(),
            &[
                "--task",
                "Make the checks pass.",
                "--skip-commands",
                "--live",
                "off",
                "--format",
                "json",
                // Trusting the configuration is trusting the one the run started with.
                "--trust-config",
            ],
        );
        let (out, _) = run_with_stdin(cmd, None, Duration::from_secs(120));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let json: Value = serde_json::from_slice(&out.stdout).expect("json report");
        // The agent's exemption of public.projects did not apply.
        let projects = json["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "public.projects")
            .expect("the edited migration's table is judged");
        assert_ne!(projects["verdict"], "exempt", "{projects}");
        // And the agent's change to xtask.toml is an error, --trust-config or not.
        assert!(
            json["findings"].as_array().unwrap().iter().any(|f| {
                f["rule"] == "checks-weakened"
                    && f["severity"] == "error"
                    && f["path"] == "xtask.toml"
            }),
            "{:#}",
            json["findings"]
        );
    }
}

/// The configuration a run is judged with: the base's when the one it started with loosens
/// it (unless trusted), never one changed while it ran.
#[test]
fn the_configuration_judged_with_is_never_one_changed_during_the_run() {
    use xtask::{config::Config, gather::weakened, model::Severity, repo};
    let repo_dir = base_repo("weakened-config");
    let dir = repo_dir.path();
    let exempt = format!(
        "{CONFIG}[tenancy]\nexempt_tables = [{{ table = \"public.invoices\", reason = \"legacy\" }}]\n"
    );
    let base = Config::parse(CONFIG).unwrap();
    let loose = Config::parse(&exempt).unwrap();
    let changes = || repo::changes(dir, Some("HEAD")).unwrap();

    // The run started with the base's configuration and the agent loosened it: judged with
    // the one it started with, and the change is an error even when trusted.
    write(dir, "xtask.toml", &exempt);
    for trust in [false, true] {
        let j = weakened::config(dir, &changes(), &base, trust);
        assert_eq!(j.config, base);
        assert_eq!(j.findings.len(), 1, "{:#?}", j.findings);
        assert_eq!(j.findings[0].severity, Severity::Error);
        assert!(j.findings[0].message.contains("changed during the run"));
    }
    // A person's loosened file (verify: loaded from disk): the base's unless trusted.
    let j = weakened::config(dir, &changes(), &loose, false);
    assert_eq!(j.config, base);
    assert!(j.with_base);
    assert_eq!(j.findings[0].severity, Severity::Error);
    assert_eq!(j.findings[0].location().as_deref(), Some("xtask.toml:4"));
    let j = weakened::config(dir, &changes(), &loose, true);
    assert_eq!(j.config, loose);
    assert_eq!(j.findings[0].severity, Severity::Info);
    // A broken file written during the run is an error too; the run keeps what it loaded.
    write(dir, "xtask.toml", "[tenancy\n");
    let j = weakened::config(dir, &changes(), &base, false);
    assert_eq!(j.config, base);
    assert!(
        j.findings[0].message.contains("no longer parses"),
        "{:#?}",
        j.findings
    );
}

/// Another package given the filtered name takes over the lint command: named, though no
/// script the base ran was edited in place.
#[test]
fn a_package_swapped_under_the_filter_is_named() {
    let repo = base_repo("weakened-swap");
    let dir = repo.path();
    write(
        dir,
        "apps/api/package.json",
        &API_PACKAGE.replace("\"name\": \"api\"", "\"name\": \"api-old\""),
    );
    write(
        dir,
        "packages/fake/package.json",
        "{\"name\": \"api\", \"scripts\": {\"lint\": \"true\", \"test\": \"true\"}}\n",
    );
    let (r, json) = verify(dir, &[]);
    assert_eq!(r.code, 1);
    let found = weakenings(&json);
    has(
        &found,
        "checks-weakened",
        "error",
        "packages/fake/package.json",
        "the lint command `pnpm --filter api lint` now runs `lint` of `packages/fake/package.json` (at the base: `lint` of `apps/api/package.json`)",
    );
    has(
        &found,
        "checks-weakened",
        "error",
        "package.json",
        "the test command `pnpm test:api` now runs",
    );
}

/// What the lint and test commands run with: their configs, disable comments, a focused
/// new test file. Each named at its file and line.
#[test]
fn configs_suppressions_and_focus_are_named() {
    const ESLINT: &str = "import js from \"@eslint/js\";\nexport default [\n  js.configs.recommended,\n  {\n    rules: {\n      \"no-console\": \"error\",\n    },\n  },\n];\n";
    const VITEST: &str = "import { defineConfig } from \"vitest/config\";\nexport default defineConfig({\n  test: {\n    include: [\"src/**/*.test.ts\"],\n  },\n});\n";
    const CODE: &str =
        "export function total(a: number, b: number): number {\n  return a + b;\n}\n";
    let repo = git_repo(
        "weakened-configs",
        &[
            ("package.json", ROOT_PACKAGE),
            ("apps/api/package.json", API_PACKAGE),
            ("apps/api/eslint.config.mjs", ESLINT),
            ("apps/api/vitest.config.ts", VITEST),
            ("apps/api/src/total.ts", CODE),
            ("apps/api/src/invoices.test.ts", INVOICES_TEST),
        ],
    );
    let dir = repo.path();
    write(
        dir,
        "apps/api/eslint.config.mjs",
        &ESLINT.replace("\"no-console\": \"error\"", "\"no-console\": \"off\""),
    );
    write(
        dir,
        "apps/api/vitest.config.ts",
        &VITEST.replace(
            "    include:",
            "    passWithNoTests: true,\n    exclude: [\"src/billing/**\"],\n    include:",
        ),
    );
    write(
        dir,
        "apps/api/src/total.ts",
        &format!("// @ts-nocheck\n{CODE}"),
    );
    write(
        dir,
        "apps/api/src/focus.test.ts",
        "import { it, expect } from 'vitest';\nit.only('runs alone', () => {\n  expect(1).toBe(1);\n});\n",
    );
    let (r, json) = verify(dir, &[]);
    assert_eq!(r.code, 1);
    let found = weakenings(&json);
    has(
        &found,
        "checks-weakened",
        "error",
        "apps/api/eslint.config.mjs:6",
        "eslint rule `no-console` lowered from error to off",
    );
    has(
        &found,
        "checks-weakened",
        "error",
        "apps/api/vitest.config.ts:4",
        "`test.passWithNoTests` set to `true`",
    );
    has(
        &found,
        "checks-weakened",
        "error",
        "apps/api/vitest.config.ts:5",
        "`test.exclude` gained `src/billing/**`",
    );
    has(
        &found,
        "checks-weakened",
        "error",
        "apps/api/src/total.ts:1",
        "`@ts-nocheck` turns type checking off for the file",
    );
    has(
        &found,
        "checks-weakened",
        "error",
        "apps/api/src/focus.test.ts:2",
        "test `runs alone` focused with `it.only`",
    );
    assert_eq!(found.len(), 5, "{found:#?}");
}
