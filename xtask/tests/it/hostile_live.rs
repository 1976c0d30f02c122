//! Hostile migrations against the live check (issue 11): they cannot escape the database
//! (no shell, no files, no superuser left behind, no COMMIT smuggled past the splitter), hang
//! it (deadlines and Ctrl-C reach the server), or fool it (tables of the base are context,
//! not subjects).
//!
//! Needs the Postgres binaries: skipped with a printed reason when they are missing, except
//! in CI (`CI=true`), where that fails.

use crate::common;
use crate::live::{postgres_here, table};

use std::path::Path;

use common::{copy_tree, git, item, run_json, workspace, xtask, TempDir};

#[allow(dead_code)]
fn verify_all(repo: &Path, extra: &[&str]) -> (common::Run, serde_json::Value) {
    let mut args = vec![
        "verify",
        "--repo",
        repo.to_str().unwrap(),
        "--all",
        "--skip-commands",
        "--format",
        "json",
        "--live",
        "on",
    ];
    args.extend_from_slice(extra);
    run_json(xtask(&workspace(), &args))
}

/// A git repository holding the example (and `base` files) committed as `main`, with
/// `change` written on top, uncommitted: what is new is exactly `change`.
fn repo_with_change(name: &str, base: &[(&str, &str)], change: &[(&str, &str)]) -> TempDir {
    let t = TempDir::new(name);
    copy_tree(&workspace().join("examples/dashboard"), t.path());
    for (rel, text) in base {
        common::write(t.path(), rel, text);
    }
    git(t.path(), &["init", "-q", "-b", "main"]);
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", "base"]);
    for (rel, text) in change {
        common::write(t.path(), rel, text);
    }
    t
}

fn verify_change(repo: &Path) -> (common::Run, serde_json::Value) {
    let args = [
        "verify",
        "--repo",
        repo.to_str().unwrap(),
        "--base",
        "main",
        "--skip-commands",
        "--format",
        "json",
        "--live",
        "on",
    ];
    run_json(xtask(&workspace(), &args))
}

fn table_names(json: &serde_json::Value) -> Vec<String> {
    json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

const CLEAN_NOTES: &str = "create table public.notes (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  body text not null
);
create index notes_tenant_id_idx on public.notes (tenant_id);
alter table public.notes enable row level security;
create policy notes_all on public.notes for all to authenticated
  using (tenant_id = public.get_current_tenant_id())
  with check (tenant_id = public.get_current_tenant_id());
";

/// A legacy table of the base (no tenant column, no RLS) beside a clean change: the change
/// is judged, the legacy table is context.
#[test]
fn a_legacy_table_of_the_base_is_not_judged_live() {
    if !postgres_here() {
        return;
    }
    let t = repo_with_change(
        "legacy-beside-clean",
        &[(
            "supabase/migrations/20250104000000_legacy.sql",
            "create table public.audit_log (id bigint generated always as identity primary key, line text);\n",
        )],
        &[("supabase/migrations/20250201000000_notes.sql", CLEAN_NOTES)],
    );
    let (_, json) = verify_change(t.path());
    assert_eq!(table_names(&json), ["public.notes"], "{json:#}");
    assert_eq!(table(&json, "public.notes")["source"], "live", "{json:#}");
    for id in ["tenant_id", "rls", "migration"] {
        assert_eq!(item(&json, id)["status"], "pass", "{id}: {json:#}");
    }
    let rls = item(&json, "rls")["evidence"].as_str().unwrap();
    assert!(rls.contains("1 table(s)"), "{rls}");
}

/// An index-only change proves no table live that the change did not touch.
#[test]
fn an_index_only_change_proves_no_untouched_table_live() {
    if !postgres_here() {
        return;
    }
    let t = repo_with_change(
        "index-only",
        &[],
        &[(
            "supabase/migrations/20250201000000_index.sql",
            "create index projects_name_idx on public.projects (name);\n",
        )],
    );
    let (_, json) = verify_change(t.path());
    let names = table_names(&json);
    assert!(
        !names
            .iter()
            .any(|n| n == "public.documents" || n == "public.tenant_members"),
        "untouched tables judged: {names:?}: {json:#}"
    );
    let rls = item(&json, "rls")["evidence"].as_str().unwrap();
    assert!(!rls.contains("3 table(s)"), "{rls}");
}
