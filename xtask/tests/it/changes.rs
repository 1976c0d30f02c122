//! What changed: base resolution, statuses, untracked and ignored files, symbolic links.

use crate::common;

use common::*;
use xtask::{model::ChangeStatus, repo};

fn status_of<'a>(c: &'a repo::Changes, path: &str) -> Option<&'a xtask::model::ChangedFile> {
    c.files.iter().find(|f| f.path == path)
}

#[test]
fn added_modified_deleted_renamed_untracked_and_ignored() {
    let t = git_repo(
        "changes-kinds",
        &[
            (".gitignore", "secret.log\n"),
            ("keep.sql", "select 1;\n"),
            ("edit.sql", "select 1;\n"),
            ("gone.sql", "select 1;\n"),
            (
                "old-name.sql",
                "create table t (id int primary key, tenant_id uuid not null);\n",
            ),
        ],
    );
    let p = t.path();
    write(p, "edit.sql", "select 2;\n");
    std::fs::remove_file(p.join("gone.sql")).unwrap();
    git(p, &["mv", "old-name.sql", "new-name.sql"]);
    write(p, "staged.sql", "select 3;\n");
    git(p, &["add", "staged.sql"]);
    write(p, "untracked.sql", "select 4;\n");
    write(p, "secret.log", "ignored\n");

    let c = repo::changes(p, None).unwrap();
    let st = |path| status_of(&c, path).map(|f| f.status);
    assert_eq!(st("edit.sql"), Some(ChangeStatus::Modified));
    assert_eq!(st("gone.sql"), Some(ChangeStatus::Deleted));
    assert_eq!(st("new-name.sql"), Some(ChangeStatus::Renamed));
    assert_eq!(
        status_of(&c, "new-name.sql").unwrap().from.as_deref(),
        Some("old-name.sql")
    );
    assert_eq!(st("staged.sql"), Some(ChangeStatus::Added));
    assert_eq!(st("untracked.sql"), Some(ChangeStatus::Added));
    assert_eq!(st("secret.log"), None, "ignored files are not changes");
    assert_eq!(st("keep.sql"), None);
    assert!(c.is_new("untracked.sql") && c.is_new("edit.sql"));
    assert!(!c.is_new("gone.sql") && !c.is_new("keep.sql"));
}

#[test]
fn default_base_is_the_merge_base_with_the_default_branch() {
    let t = git_repo("changes-mergebase", &[("a.sql", "select 1;\n")]);
    let p = t.path();
    let fork = git(p, &["rev-parse", "HEAD"]).trim().to_string();
    git(p, &["checkout", "-q", "-b", "feature"]);
    write(p, "feature.sql", "select 2;\n");
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "feature"]);
    // main moves on after the fork: its new file is not part of this change.
    git(p, &["checkout", "-q", "main"]);
    write(p, "later-on-main.sql", "select 3;\n");
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "main moves"]);
    git(p, &["checkout", "-q", "feature"]);

    let c = repo::changes(p, None).unwrap();
    assert_eq!(c.base.as_deref(), Some(fork.as_str()));
    let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["feature.sql"]);

    // An explicit base wins.
    let c = repo::changes(p, Some("HEAD")).unwrap();
    assert!(c.files.is_empty(), "{:?}", c.files);
    // Without a default branch there is no honest base: HEAD would check nothing.
    git(p, &["branch", "-q", "-m", "main", "trunk"]);
    let err = repo::resolve_base(p, None).unwrap_err();
    assert!(err.0.contains("no default branch found"), "{err}");
    // An explicit `--base HEAD` is still a choice the user may make.
    let head = git(p, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(
        repo::resolve_base(p, Some("HEAD")).unwrap().as_deref(),
        Some(head.as_str())
    );
}

/// `main` (two commits) and `feature` (forked at the first, one commit of its own), in a
/// repository to clone from.
fn upstream(name: &str) -> TempDir {
    let t = git_repo(name, &[("a.sql", "select 1;\n")]);
    let p = t.path();
    git(p, &["checkout", "-q", "-b", "feature"]);
    write(p, "feature.sql", "select 2;\n");
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "feature"]);
    git(p, &["checkout", "-q", "main"]);
    write(p, "b.sql", "select 3;\n");
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "main moves"]);
    t
}

fn clone(from: &TempDir, name: &str, args: &[&str]) -> TempDir {
    let t = TempDir::new(name);
    let url = format!("file://{}", from.path().display());
    let mut all = vec!["clone", "-q"];
    all.extend(args);
    all.extend([url.as_str(), "w"]);
    git(t.path(), &all);
    t
}

#[test]
fn a_single_branch_clone_has_no_default_base_and_says_how_to_fix_it() {
    let up = upstream("changes-single-branch-up");
    let t = clone(
        &up,
        "changes-single-branch",
        &["--single-branch", "--branch", "feature"],
    );
    let p = t.path().join("w");
    let err = repo::changes(&p, None).unwrap_err();
    for needed in [
        "no default branch found",
        "--base <ref>",
        "git fetch origin main",
        "fetch-depth: 0",
    ] {
        assert!(err.0.contains(needed), "{needed} missing: {err}");
    }
    // Detached (as a CI checkout is): said too.
    git(&p, &["checkout", "-q", "--detach"]);
    let err = repo::changes(&p, None).unwrap_err();
    assert!(err.0.contains("HEAD is detached"), "{err}");
    // Fetching the default branch is the fix.
    git(
        &p,
        &["fetch", "-q", "origin", "main:refs/remotes/origin/main"],
    );
    let c = repo::changes(&p, None).unwrap();
    let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["feature.sql"]);
}

#[test]
fn a_shallow_clone_without_the_fork_point_is_an_error_not_head() {
    let up = upstream("changes-shallow-up");
    let t = clone(
        &up,
        "changes-shallow",
        &["--depth", "1", "--no-single-branch"],
    );
    let p = t.path().join("w");
    git(&p, &["checkout", "-q", "feature"]);
    let err = repo::changes(&p, None).unwrap_err();
    assert!(err.0.contains("shares no history with origin/"), "{err}");
    assert!(err.0.contains("shallow clone"), "{err}");
    assert!(err.0.contains("--unshallow"), "{err}");
}

#[test]
fn on_the_default_branch_the_base_is_its_upstream_else_head() {
    let up = upstream("changes-on-main-up");
    let t = clone(&up, "changes-on-main", &[]);
    let p = t.path().join("w");
    let pushed = git(&p, &["rev-parse", "HEAD"]).trim().to_string();
    write(&p, "c.sql", "select 4;\n");
    git(&p, &["add", "-A"]);
    git(
        &p,
        &["-c", "user.name=t", "commit", "-q", "-m", "not pushed yet"],
    );
    // A commit not pushed yet is part of the change.
    let c = repo::changes(&p, None).unwrap();
    assert_eq!(c.base.as_deref(), Some(pushed.as_str()));
    assert!(c.is_new("c.sql"));
    // Only a local `main`: the uncommitted work.
    let c = repo::changes(up.path(), None).unwrap();
    let head = git(up.path(), &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(c.base.as_deref(), Some(head.as_str()));
}

#[test]
fn a_missing_base_is_a_usage_error_naming_it() {
    let t = git_repo("changes-missing-base", &[("a", "1")]);
    let err = repo::changes(t.path(), Some("no-such-branch")).unwrap_err();
    assert!(err.0.contains("no-such-branch"), "{err}");
}

#[test]
fn a_repository_without_commits_has_everything_new() {
    let t = TempDir::new("changes-empty");
    git(t.path(), &["init", "-q", "-b", "main"]);
    write(t.path(), "m.sql", "select 1;\n");
    let c = repo::changes(t.path(), None).unwrap();
    assert_eq!(c.base, None);
    assert_eq!(c.files.len(), 1);
    assert_eq!(c.files[0].status, ChangeStatus::Added);
}

#[test]
fn symbolic_links_are_resolved_to_the_file_they_point_at() {
    let t = git_repo("changes-symlink", &[("shared/real.sql", "select 1;\n")]);
    let p = t.path();
    std::fs::create_dir_all(p.join("supabase/migrations")).unwrap();
    std::os::unix::fs::symlink(
        "../../shared/real.sql",
        p.join("supabase/migrations/001_link.sql"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/hostname", p.join("outside.sql")).unwrap();
    std::os::unix::fs::symlink("nowhere.sql", p.join("dangling.sql")).unwrap();
    let c = repo::changes(p, None).unwrap();
    let link = status_of(&c, "supabase/migrations/001_link.sql").unwrap();
    assert_eq!(link.target.as_deref(), Some("shared/real.sql"));
    assert_eq!(link.content_path(), "shared/real.sql");
    assert!(
        c.is_new("shared/real.sql"),
        "the file behind a new link is new"
    );
    assert_eq!(
        status_of(&c, "outside.sql").unwrap().target,
        None,
        "links leaving the repo are not followed"
    );
    assert_eq!(status_of(&c, "dangling.sql").unwrap().target, None);
}

#[test]
fn a_subdirectory_repo_sees_paths_relative_to_itself() {
    let t = git_repo(
        "changes-subdir",
        &[("examples/app/a.sql", "select 1;\n"), ("other/b.sql", "x")],
    );
    let p = t.path();
    write(p, "examples/app/new.sql", "select 2;\n");
    write(p, "other/c.sql", "select 3;\n");
    let sub = p.join("examples/app");
    let c = repo::changes(&sub, Some("HEAD")).unwrap();
    let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["new.sql"]);
}

#[test]
fn unusual_file_names_survive() {
    let t = git_repo("changes-names", &[("a", "1")]);
    write(t.path(), "dir with space/quote\"d ünï.sql", "select 1;\n");
    let c = repo::changes(t.path(), None).unwrap();
    assert_eq!(c.files[0].path, "dir with space/quote\"d ünï.sql");
}

#[test]
fn a_file_name_that_is_not_utf8_is_named_and_the_run_goes_on() {
    use std::os::unix::ffi::OsStrExt;
    let t = git_repo("changes-not-utf8", &[("a", "1")]);
    let name = std::ffi::OsStr::from_bytes(b"notes-\xff.txt");
    std::fs::write(t.path().join(name), "x").unwrap();
    write(t.path(), "ok.sql", "select 1;\n");
    let c = repo::changes(t.path(), None).expect("not a usage error");
    let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["notes-\u{FFFD}.txt", "ok.sql"]);
}
