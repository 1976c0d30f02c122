//! The real tools on the example monorepo: pnpm 9.15.0, eslint, vitest. Each test works on
//! its own temporary copy, so the example itself is never changed.

use crate::common;

use std::path::Path;

use common::*;

/// `xtask verify --all --live off --format json` on a copy, with the pinned pnpm.
fn verify_json(dir: &Path, pnpm: &Path) -> (Run, serde_json::Value) {
    let mut cmd = xtask(
        dir,
        &["verify", "--all", "--live", "off", "--format", "json"],
    );
    cmd.env("XTASK_PNPM", pnpm)
        .env(
            "npm_config_store_dir",
            workspace().join("target/xtask-cache/pnpm-store"),
        )
        .env("npm_config_manage_package_manager_versions", "false");
    run_json(cmd)
}

/// (status, evidence) of a checklist item.
fn status(json: &serde_json::Value, id: &str) -> (String, String) {
    let i = item(json, id);
    (
        i["status"].as_str().unwrap().into(),
        i["evidence"].as_str().unwrap().into(),
    )
}

fn edit(dir: &Path, rel: &str, f: impl FnOnce(String) -> String) {
    let p = dir.join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, f(text)).unwrap();
}

#[test]
fn example_lint_and_tests_pass_from_real_runs() {
    let Some((t, pnpm)) = example_with_node_modules("example-pass") else {
        return;
    };
    let (r, json) = verify_json(t.path(), &pnpm);
    let (lint, lint_ev) = status(&json, "lint");
    assert_eq!(lint, "pass", "{lint_ev}\n{}", r.stderr);
    assert_eq!(lint_ev, "0 errors, 0 warnings");
    let (tests, tests_ev) = status(&json, "tests");
    assert_eq!(tests, "pass", "{tests_ev}\n{}", r.stderr);
    assert!(tests_ev.ends_with("passed"), "{tests_ev}");
    let commands = json["commands"].as_array().unwrap();
    let lint_cmd = commands.iter().find(|c| c["id"] == "lint").unwrap();
    assert_eq!(lint_cmd["exit_code"], 0);
    assert!(lint_cmd["argv"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--fail-if-no-match"));
    // The items this run cannot prove are never a pass, so the exit is not 0.
    assert_ne!(r.code, 0);
}

#[test]
fn a_failing_vitest_test_fails_tests_and_is_named() {
    let Some((t, pnpm)) = example_with_node_modules("example-failing-test") else {
        return;
    };
    write(
        t.path(),
        "apps/api/test/billing.test.ts",
        "import { describe, expect, it } from 'vitest';\n\
         describe('billing', () => {\n  it('rounds totals to cents', () => {\n    expect(0.1 + 0.2).toBe(0.3);\n  });\n});\n",
    );
    let (r, json) = verify_json(t.path(), &pnpm);
    let (status, ev) = status(&json, "tests");
    assert_eq!(status, "fail", "{ev}");
    assert!(ev.contains("1 failed"), "{ev}");
    assert!(ev.contains("billing > rounds totals to cents"), "{ev}");
    assert_eq!(r.code, 1);
}

#[test]
fn an_eslint_error_fails_lint_with_the_count() {
    let Some((t, pnpm)) = example_with_node_modules("example-lint-error") else {
        return;
    };
    write(
        t.path(),
        "apps/api/src/server/sloppy.ts",
        "export function sloppy(x: any) {\n  const unused = 1;\n  return x;\n}\n",
    );
    let (r, json) = verify_json(t.path(), &pnpm);
    let (status, ev) = status(&json, "lint");
    assert_eq!(status, "fail", "{ev}");
    assert!(ev.starts_with("2 errors"), "{ev}");
    assert_eq!(r.code, 1);
}

#[test]
fn a_removed_script_or_a_filter_matching_nothing_never_passes() {
    let Some((t, pnpm)) = example_with_node_modules("example-no-script") else {
        return;
    };
    // 1. The lint script removed from apps/api: pnpm 9 would exit 0 having run nothing.
    edit(t.path(), "apps/api/package.json", |s| {
        s.replace("\"lint\":", "\"lint-disabled\":")
    });
    // 2. The test command filters on a package that does not exist.
    edit(t.path(), "xtask.toml", |s| {
        s.replace(
            "test = \"pnpm test:api\"",
            "test = \"pnpm --filter apii test\"",
        )
    });
    let (r, json) = verify_json(t.path(), &pnpm);
    let (lint, lint_ev) = status(&json, "lint");
    assert_eq!(lint, "fail", "{lint_ev}");
    assert!(lint_ev.contains("no \"lint\" script"), "{lint_ev}");
    let (tests, tests_ev) = status(&json, "tests");
    assert!(tests == "fail" || tests == "unknown", "{tests}: {tests_ev}");
    assert_ne!(r.code, 0);
}

#[test]
fn a_root_script_whose_nested_filter_matches_nothing_is_caught() {
    let Some((t, pnpm)) = example_with_node_modules("example-nested-filter") else {
        return;
    };
    // `pnpm test:api` runs `pnpm --filter <x> test` inside: our flag cannot reach it, the
    // output check must.
    edit(t.path(), "package.json", |s| {
        s.replace("pnpm --filter api test", "pnpm --filter apii test")
    });
    let (_, json) = verify_json(t.path(), &pnpm);
    let (tests, ev) = status(&json, "tests");
    assert_eq!(tests, "fail", "{ev}");
    assert!(ev.contains("No projects matched"), "{ev}");
}
