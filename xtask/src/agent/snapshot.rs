//! Telling the agent's changes from the user's.
//!
//! Before each round we record every file that differs from `HEAD` (git status, untracked
//! files included) with a hash of its contents; after the round we record again. A file whose
//! entry changed between the two was changed during the round. Files dirty before the first
//! round are the user's: they are listed, and copied aside (a `git diff --binary` patch plus
//! the untracked files) so nothing of theirs can be lost. Nothing here ever writes to the
//! work tree or the index: no checkout, reset or stash.

use std::{
    collections::BTreeMap,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};

use crate::model::PreexistingChange;

/// The dirty files of a work tree at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The commit checked out (`None` before the first commit).
    pub head: Option<String>,
    /// path → (porcelain status, hash of the contents; `None` when the file is gone).
    pub files: BTreeMap<String, (String, Option<u64>)>,
}

impl Snapshot {
    /// Record the dirty files under `repo` (a work tree, or a directory inside one), with
    /// paths relative to `repo`.
    pub fn take(repo: &Path) -> anyhow::Result<Snapshot> {
        let out = git(
            repo,
            &[
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=all",
                "--no-renames",
                "--",
                ".",
            ],
        )?;
        // Porcelain paths are relative to the top of the work tree.
        let prefix = git(repo, &["rev-parse", "--show-prefix"])?;
        let prefix = prefix.trim_end_matches('\n');
        let mut files = BTreeMap::new();
        for entry in out.split('\0').filter(|e| e.len() > 3) {
            let (status, path) = entry.split_at(3);
            let path = path.strip_prefix(prefix).unwrap_or(path);
            files.insert(
                path.to_string(),
                (status[..2].to_string(), hash_file(&repo.join(path))),
            );
        }
        let head = git(repo, &["rev-parse", "--verify", "--quiet", "HEAD"])
            .ok()
            .map(|h| h.trim().to_string());
        Ok(Snapshot { head, files })
    }

    /// Paths whose state differs between `self` (before) and `after`, sorted. When `HEAD`
    /// moved in between (the agent committed), the files of those commits count too: a
    /// committed file is clean in `git status` but changed all the same.
    pub fn changed_since(&self, after: &Snapshot, repo: &Path) -> Vec<String> {
        let mut paths: Vec<String> = self
            .files
            .keys()
            .chain(after.files.keys())
            .filter(|p| self.files.get(*p).map(|e| e.1) != after.files.get(*p).map(|e| e.1))
            .cloned()
            .collect();
        if let (Some(old), Some(new)) = (&self.head, &after.head) {
            if old != new {
                let names = git(
                    repo,
                    &[
                        "diff",
                        "--name-only",
                        "--relative",
                        "-z",
                        "--no-renames",
                        old,
                        new,
                        "--",
                        ".",
                    ],
                )
                .unwrap_or_default();
                paths.extend(
                    names
                        .split('\0')
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                );
            }
        }
        paths.sort();
        paths.dedup();
        paths
    }

    /// The commits between `self` and `after` (`git log --oneline`), newest first.
    pub fn commits_since(&self, after: &Snapshot, repo: &Path) -> Vec<String> {
        match (&self.head, &after.head) {
            (old, Some(new)) if old.as_ref() != Some(new) => {
                let range = match old {
                    Some(old) => format!("{old}..{new}"),
                    None => new.clone(),
                };
                git(repo, &["log", "--oneline", "--no-decorate", &range, "--"])
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn preexisting(&self) -> Vec<PreexistingChange> {
        self.files
            .iter()
            .map(|(path, (status, _))| PreexistingChange {
                path: path.clone(),
                git_status: status.clone(),
            })
            .collect()
    }

    /// Copy the user's changes into `dir`: `user-changes.patch` (tracked files, binary-safe)
    /// and `user-untracked/` (untracked files). Returns `None` when there is nothing to keep.
    pub fn back_up(&self, repo: &Path, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        if self.files.is_empty() {
            return Ok(None);
        }
        let backup = dir.join("user-changes");
        std::fs::create_dir_all(&backup)
            .with_context(|| format!("cannot create {}", backup.display()))?;
        if git(repo, &["rev-parse", "--verify", "--quiet", "HEAD"]).is_ok() {
            let patch = git(
                repo,
                &[
                    "diff",
                    "--binary",
                    "--no-ext-diff",
                    "--relative",
                    "HEAD",
                    "--",
                    ".",
                ],
            )?;
            std::fs::write(backup.join("tracked.patch"), patch)
                .with_context(|| format!("cannot write {}", backup.display()))?;
        }
        let mut not_copied = Vec::new();
        for (path, (status, _)) in &self.files {
            if status != "??" {
                continue;
            }
            let from = repo.join(path);
            let to = backup.join("untracked").join(path);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let meta = std::fs::symlink_metadata(&from)
                .with_context(|| format!("cannot read {}", from.display()))?;
            if meta.file_type().is_symlink() {
                // The link itself, not what it points at (which may be a directory).
                let target = std::fs::read_link(&from)?;
                std::os::unix::fs::symlink(target, &to)
                    .with_context(|| format!("cannot copy the link {path} to {}", to.display()))?;
            } else if meta.len() > MAX_COPY_BYTES {
                not_copied.push(format!("{path} ({} bytes)", meta.len()));
            } else {
                std::fs::copy(&from, &to)
                    .with_context(|| format!("cannot copy {path} to {}", to.display()))?;
            }
        }
        if !not_copied.is_empty() {
            let note = format!(
                "Untracked files larger than {MAX_COPY_BYTES} bytes were not copied (they are still in the work tree):\n{}\n",
                not_copied.join("\n")
            );
            std::fs::write(backup.join("NOT-COPIED.txt"), note)
                .with_context(|| format!("cannot write {}", backup.display()))?;
        }
        Ok(Some(backup))
    }
}

/// Untracked files above this size are listed, not copied (a database dump left in the tree
/// should not double its disk use on every run).
const MAX_COPY_BYTES: u64 = 64 << 20;

/// A hash of the file's bytes (a change detector, not a security measure).
fn hash_file(path: &Path) -> Option<u64> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if meta.file_type().is_symlink() {
        std::fs::read_link(path).ok()?.hash(&mut h);
    } else if meta.is_file() {
        std::fs::read(path).ok()?.hash(&mut h);
    } else {
        meta.is_dir().hash(&mut h);
    }
    Some(h.finish())
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = crate::repo::git_command(repo)
        .args(args)
        .output()
        .context("cannot run git: install git")?;
    if !out.status.success() {
        bail!(
            "git {} in {}: {}",
            args.join(" "),
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `<git dir>/xtask/backend-stage/<stamp>`: where a run keeps its prompts and logs. Inside the
/// git directory, so it is never part of the work tree the checks look at.
pub fn run_dir(repo: &Path) -> anyhow::Result<PathBuf> {
    let base = git(repo, &["rev-parse", "--git-path", "xtask/backend-stage"])?;
    let base = repo.join(base.trim_end());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let dir = base.join(format!("{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn repo(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-snap-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let g = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(&dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        g(&["init", "-q"]);
        std::fs::write(dir.join("a.txt"), "one\n").unwrap();
        std::fs::write(dir.join("b.txt"), "two\n").unwrap();
        g(&["add", "-A"]);
        g(&["commit", "-q", "-m", "init"]);
        dir
    }

    #[test]
    fn tells_the_rounds_changes_from_what_was_there() {
        let dir = repo("rounds");
        // The user's work: a modified file and an untracked one.
        std::fs::write(dir.join("a.txt"), "mine\n").unwrap();
        std::fs::write(dir.join("notes.md"), "draft\n").unwrap();
        let before = Snapshot::take(&dir).unwrap();
        assert_eq!(
            before.preexisting(),
            [
                PreexistingChange {
                    path: "a.txt".into(),
                    git_status: " M".into()
                },
                PreexistingChange {
                    path: "notes.md".into(),
                    git_status: "??".into()
                }
            ]
        );
        // The agent: a new file, an edit of a clean file, an edit of the user's file.
        std::fs::create_dir_all(dir.join("m")).unwrap();
        std::fs::write(dir.join("m/new.sql"), "create table t();\n").unwrap();
        std::fs::write(dir.join("b.txt"), "changed\n").unwrap();
        std::fs::write(dir.join("notes.md"), "draft, edited\n").unwrap();
        let after = Snapshot::take(&dir).unwrap();
        assert_eq!(
            before.changed_since(&after, &dir),
            ["b.txt", "m/new.sql", "notes.md"]
        );
        // Reverting a clean file back to HEAD counts too.
        std::fs::write(dir.join("b.txt"), "two\n").unwrap();
        let reverted = Snapshot::take(&dir).unwrap();
        assert_eq!(after.changed_since(&reverted, &dir), ["b.txt"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn files_the_agent_committed_count_as_changed() {
        let dir = repo("commits");
        let before = Snapshot::take(&dir).unwrap();
        std::fs::write(dir.join("c.txt"), "committed\n").unwrap();
        let add = |args: &[&str]| {
            assert!(Command::new("git")
                .arg("-C")
                .arg(&dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .status()
                .unwrap()
                .success())
        };
        add(&["add", "c.txt"]);
        add(&["commit", "-q", "-m", "agent work"]);
        let after = Snapshot::take(&dir).unwrap();
        assert!(after.files.is_empty(), "clean in git status");
        assert_eq!(before.changed_since(&after, &dir), ["c.txt"]);
        let commits = before.commits_since(&after, &dir);
        assert_eq!(commits.len(), 1);
        assert!(commits[0].ends_with(" agent work"), "{commits:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_users_changes_are_copied_aside_and_left_in_place() {
        let dir = repo("backup");
        std::fs::write(dir.join("a.txt"), "mine\n").unwrap();
        std::fs::write(dir.join("untracked.txt"), "keep me\n").unwrap();
        // A link to a directory is kept as a link (copying through it would fail).
        std::fs::create_dir_all(dir.join("somedir")).unwrap();
        std::fs::write(dir.join("somedir/f"), "x").unwrap();
        std::os::unix::fs::symlink("somedir", dir.join("dirlink")).unwrap();
        let snap = Snapshot::take(&dir).unwrap();
        let keep = std::env::temp_dir().join(format!("xtask-snap-keep-{}", std::process::id()));
        let backup = snap.back_up(&dir, &keep).unwrap().unwrap();
        let patch = std::fs::read_to_string(backup.join("tracked.patch")).unwrap();
        assert!(patch.contains("+mine"), "{patch}");
        assert_eq!(
            std::fs::read_to_string(backup.join("untracked/untracked.txt")).unwrap(),
            "keep me\n"
        );
        assert_eq!(
            std::fs::read_link(backup.join("untracked/dirlink")).unwrap(),
            Path::new("somedir")
        );
        assert_eq!(
            std::fs::read_to_string(backup.join("untracked/somedir/f")).unwrap(),
            "x"
        );
        // The work tree is untouched.
        assert_eq!(
            std::fs::read_to_string(dir.join("a.txt")).unwrap(),
            "mine\n"
        );
        assert_eq!(Snapshot::take(&dir).unwrap(), snap);
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(keep);
    }

    #[test]
    fn a_clean_tree_has_nothing_to_keep() {
        let dir = repo("clean");
        let snap = Snapshot::take(&dir).unwrap();
        assert!(snap.files.is_empty());
        assert_eq!(snap.back_up(&dir, &dir.join("x")).unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
