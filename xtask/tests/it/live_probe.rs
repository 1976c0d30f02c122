//! The isolation probe on schemas as real repositories write them (issue 12 parts 5–6): rows
//! that meet every CHECK, domain and type; defaults that read the signed-in user; parents of
//! the same tenant through composite keys; one probe per membership role. Each case is a
//! fixture of ours under `tests/fixtures/migrations/probe_*`, applied to a throwaway
//! Postgres with a configuration naming its tenancy.

use crate::common;
use crate::live::{postgres_here, table};

use common::{run_json, workspace, xtask, TempDir};

const CONFIG: &str = r#"[tenancy]
column = "team_id"
root_table = "public.teams"
source_functions = []
check_functions = ["public.is_team_member"]
membership_table = "public.team_members"
membership_tenant_column = "team_id"
membership_user_column = "user_id"

[migrations]
dirs = ["supabase/migrations"]
"#;

/// The fixture's history in a repository of its own, verified live; the JSON report.
fn probe_case(case: &str) -> serde_json::Value {
    let t = TempDir::new(&format!("probe-{case}"));
    let dir = workspace()
        .join("xtask/tests/fixtures/migrations")
        .join(case);
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(f.path()).unwrap();
        common::write(t.path(), &format!("supabase/migrations/{name}"), &text);
    }
    common::write(t.path(), "xtask.toml", CONFIG);
    let repo = t.path().to_str().unwrap().to_string();
    let args = [
        "verify",
        "--repo",
        &repo,
        "--all",
        "--skip-commands",
        "--live",
        "on",
        "--format",
        "json",
    ];
    let (_, json) = run_json(xtask(&workspace(), &args));
    json
}

fn probed(json: &serde_json::Value, name: &str) -> serde_json::Value {
    let t = table(json, name);
    assert_eq!(t["probe"]["status"], "probed", "{name}: {t:#}");
    t.clone()
}

/// CHECKs (`in (...)`, `= any (array[...])`, a regex, `char_length` and number bounds), a
/// domain with a regex, an enum, an array that must not be empty, and types with modifiers
/// (`numeric(12,2)`, `timestamp(3) with time zone`, `varchar(8)`, `bit(4)`, `cidr`, ...):
/// the probe makes a row that meets them all, so the table is probed, not skipped.
#[test]
fn rows_meet_every_check_domain_and_type() {
    if !postgres_here() {
        return;
    }
    let json = probe_case("probe_check_values");
    let t = probed(&json, "public.listings");
    assert_eq!(t["verdict"], "protected", "{t:#}");
}

/// A tenant root whose NOT NULL owner defaults to `auth.uid()` and whose trigger makes the
/// creator a member, a CHECK across two columns, a profile whose id defaults to `auth.uid()`
/// and that a signup trigger makes from the user's metadata: the probe creates each tenant as
/// its own signed-in user and uses the rows the triggers made.
#[test]
fn defaults_and_triggers_see_the_probes_user() {
    if !postgres_here() {
        return;
    }
    let json = probe_case("probe_owner_default");
    let t = probed(&json, "public.notes");
    assert_eq!(t["verdict"], "protected", "{t:#}");
}

/// A composite foreign key `(team_id, project_id)`: the parent project is made for the same
/// team, so the child row can exist and the table is probed.
#[test]
fn composite_foreign_keys_get_parents_of_the_same_tenant() {
    if !postgres_here() {
        return;
    }
    let json = probe_case("probe_composite_fk");
    for name in ["public.projects", "public.tasks"] {
        let t = probed(&json, name);
        assert_eq!(t["verdict"], "protected", "{t:#}");
    }
}

/// One probe per role the membership's role CHECK allows: a hole only a viewer falls into is
/// found, the evidence names the role, and `identities` lists every role probed.
#[test]
fn each_membership_role_is_probed() {
    if !postgres_here() {
        return;
    }
    let json = probe_case("probe_roles");
    let docs = probed(&json, "public.docs");
    assert_eq!(docs["verdict"], "unprotected", "{docs:#}");
    assert_eq!(
        docs["probe"]["identities"],
        serde_json::json!(["owner", "editor", "viewer"]),
        "{docs:#}"
    );
    let reason = docs["probe"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("{docs:#}"));
    assert!(
        reason.contains("tenant A's viewer read 1 row(s) of tenant B"),
        "{reason}"
    );
    assert!(!reason.contains("owner"), "{reason}");
    assert!(!reason.contains("editor"), "{reason}");
    // An UPDATE hole behind a tight SELECT policy: found only by an UPDATE that reads no
    // column.
    let memos = probed(&json, "public.memos");
    assert_eq!(memos["verdict"], "unprotected", "{memos:#}");
    let reason = memos["probe"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("{memos:#}"));
    assert!(
        reason.contains("tenant A's viewer updated 1 row(s) of tenant B"),
        "{reason}"
    );
    assert!(!reason.contains("read"), "{reason}");
    let pages = probed(&json, "public.pages");
    assert_eq!(pages["verdict"], "protected", "{pages:#}");
    assert_eq!(
        pages["probe"]["identities"],
        serde_json::json!(["owner", "editor", "viewer"]),
        "{pages:#}"
    );
}
