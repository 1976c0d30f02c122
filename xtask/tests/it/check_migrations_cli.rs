//! The built binary on temporary git repositories: output lines, JSON shape, exit statuses.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

struct TempRepo(PathBuf);

impl TempRepo {
    fn new(name: &str) -> TempRepo {
        let dir = std::env::temp_dir().join(format!("xtask-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("supabase/migrations")).unwrap();
        TempRepo(dir)
    }
    fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.0)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn xtask(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("check-migrations")
            .arg("--repo")
            .arg(&self.0)
            .args(args)
            .current_dir(&self.0)
            .env_remove("GITHUB_ACTIONS")
            .output()
            .expect("xtask runs")
    }
}

impl Drop for TempRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const INIT: &str = "create table tenants (id uuid primary key);\n\
create table docs (id uuid primary key, tenant_id uuid not null references tenants(id));\n\
create index on docs (tenant_id);\n\
alter table docs enable row level security;\n\
create policy docs_tenant on docs for all using (tenant_id = get_current_tenant_id());\n\
alter table tenants enable row level security;\n";

const NO_RLS: &str = "-- notes for each document\n\
create table notes (\n  id uuid primary key,\n  tenant_id uuid not null references tenants(id)\n);\n\
create index on notes (tenant_id);\n\
create policy notes_tenant on notes for all using (tenant_id = get_current_tenant_id());\n";

fn committed_repo(name: &str) -> TempRepo {
    let repo = TempRepo::new(name);
    repo.git(&["init", "-q", "-b", "main"]);
    repo.write("supabase/migrations/0001_init.sql", INIT);
    repo.git(&["add", "."]);
    repo.git(&["commit", "-q", "-m", "init"]);
    repo
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_new_table_without_rls_fails_at_its_line() {
    let repo = committed_repo("norls");
    repo.write("supabase/migrations/0002_notes.sql", NO_RLS);
    let out = repo.xtask(&[]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("supabase/migrations/0002_notes.sql:2: error: rls-not-enabled: ")
        ),
        "{text}"
    );
    // Only the new table is judged: docs of the committed history is not.
    assert!(!text.contains("public.docs"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("check-migrations: 1 error(s)"),
        "{text}"
    );

    // Fixed in the same file: exit 0.
    repo.write(
        "supabase/migrations/0002_notes.sql",
        &format!("{NO_RLS}alter table notes enable row level security;\n"),
    );
    let out = repo.xtask(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn json_report_has_the_contract_shape() {
    let repo = committed_repo("json");
    repo.write("supabase/migrations/0002_notes.sql", NO_RLS);
    let out = repo.xtask(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["version"], 1);
    assert!(v["base"].is_string());
    let t = &v["tables"][0];
    assert_eq!(t["name"], "public.notes");
    assert_eq!(t["new"], true);
    assert_eq!(t["verdict"], "unprotected");
    assert_eq!(t["tenant_column"], true);
    assert_eq!(t["tenant_not_null"], true);
    assert_eq!(t["rls_enabled"], false);
    assert_eq!(t["tenant_index"], true);
    assert_eq!(t["source"], "static");
    let p = &t["policies"][0];
    assert_eq!(p["name"], "notes_tenant");
    assert_eq!(p["command"], "all");
    assert_eq!(p["permissive"], true);
    assert_eq!(p["roles"][0], "public");
    assert_eq!(p["using"], "tenant_id = get_current_tenant_id()");
    assert!(p["with_check"].is_null());
    assert_eq!(p["tenant_scoped"], true);
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "rls-not-enabled");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["path"], "supabase/migrations/0002_notes.sql");
    assert_eq!(f["line"], 2);
    assert_eq!(f["table"], "public.notes");
    let ids: Vec<&str> = v["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tenant_id", "rls", "migration"]);
    assert_eq!(v["checklist"][1]["status"], "fail");
    assert_eq!(
        v["changed_files"][0]["path"],
        "supabase/migrations/0002_notes.sql"
    );
}

#[test]
fn files_given_are_the_only_new_ones() {
    let repo = TempRepo::new("files");
    repo.write("supabase/migrations/0001_init.sql", INIT);
    repo.write("supabase/migrations/0002_notes.sql", NO_RLS);
    // Not a git repository: FILES need no git.
    let out = repo.xtask(&["supabase/migrations/0001_init.sql"]);
    let text = stdout(&out);
    assert!(text.contains("2 table(s) checked: 2 protected"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    let out = repo.xtask(&["supabase/migrations/0002_notes.sql"]);
    assert_eq!(out.status.code(), Some(1));
    let out = repo.xtask(&["supabase/migrations/missing.sql"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn all_checks_every_table_without_git() {
    let repo = TempRepo::new("all");
    repo.write("supabase/migrations/0001_init.sql", INIT);
    let out = repo.xtask(&["--all"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("2 table(s) checked: 2 protected, 0 unprotected, 0 unverified, 0 exempt"),
        "{text}"
    );
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    let repo = TempRepo::new("usage");
    repo.write("supabase/migrations/0001_init.sql", INIT);
    // Not a git repository, no --all.
    let out = repo.xtask(&[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a git repository"));

    let repo = committed_repo("usage2");
    let out = repo.xtask(&["--base", "no-such-ref"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-ref"));

    repo.write("xtask.toml", "[migrations]\ndir = [\"db\"]\n");
    let out = repo.xtask(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ci_formats_render_the_same_findings() {
    let repo = committed_repo("ci-formats");
    repo.write("supabase/migrations/0002_notes.sql", NO_RLS);
    let out = repo.xtask(&["--format", "sarif"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let sarif: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let r = results
        .iter()
        .find(|r| r["ruleId"] == "rls-not-enabled")
        .expect("the finding is a result");
    let loc = &r["locations"][0]["physicalLocation"];
    assert!(loc["artifactLocation"]["uri"]
        .as_str()
        .unwrap()
        .ends_with("supabase/migrations/0002_notes.sql"));
    assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);

    let out = repo.xtask(&["--format", "junit"]);
    assert_eq!(out.status.code(), Some(1));
    let xml = stdout(&out);
    assert_eq!(
        xml.matches("<testcase ").count(),
        3 + 1,
        "3 migration items, 1 finding: {xml}"
    );
    assert!(xml.contains("<failure type=\"rls-not-enabled\""), "{xml}");

    let out = repo.xtask(&["--format", "github"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out)
        .lines()
        .any(|l| l.starts_with("::error file=") && l.contains("0002_notes.sql,line=")));
}

#[test]
fn nothing_new_is_clean() {
    let repo = committed_repo("clean");
    let out = repo.xtask(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 table(s) checked"));
}

#[test]
fn a_bare_repository_is_exit_2_not_clean() {
    let repo = committed_repo("bare-src");
    let bare = TempRepo::new("bare");
    std::fs::remove_dir_all(&bare.0).unwrap();
    let out = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&repo.0)
        .arg(&bare.0)
        .output()
        .unwrap();
    assert!(out.status.success());
    for args in [&[][..], &["--all"][..]] {
        let out = bare.xtask(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}{err}",
            stdout(&out)
        );
        assert!(err.contains("a bare git repository"), "{err}");
    }
}

#[test]
fn a_migration_name_that_is_not_utf8_is_named_as_such_not_as_a_dangling_link() {
    use std::os::unix::ffi::OsStrExt;
    let repo = committed_repo("not-utf8");
    let name = std::ffi::OsStr::from_bytes(b"0002_notes-\xff.sql");
    std::fs::write(repo.0.join("supabase/migrations").join(name), NO_RLS).unwrap();
    let out = repo.xtask(&[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("migration-unreadable"))
        .unwrap_or_else(|| panic!("no finding: {text}"));
    assert!(
        line.starts_with("supabase/migrations/0002_notes-\u{FFFD}.sql"),
        "{line}"
    );
    assert!(
        line.contains("not UTF-8") && !line.contains("dangling"),
        "{line}"
    );
}
