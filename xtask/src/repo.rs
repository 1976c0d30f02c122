//! What changed: the files added, modified, deleted or renamed between the base and the work
//! tree (untracked files that git does not ignore included), with symbolic links resolved.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
};

use crate::model::{ChangeStatus, ChangedFile};

/// A usage problem with the repository or the base: exit status 2.
#[derive(Debug)]
pub struct RepoError(pub String);

impl std::fmt::Display for RepoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RepoError {}

/// Which files count as "new" for the checks.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The resolved base commit (`None` with `--all` outside git, or when nothing to compare).
    pub base: Option<String>,
    /// `--all`: every migration and route file is treated as new.
    pub all: bool,
    pub files: Vec<ChangedFile>,
}

impl Changes {
    /// Everything is new (`--all`), with no git involved.
    pub fn all() -> Changes {
        Changes {
            base: None,
            all: true,
            files: Vec::new(),
        }
    }

    /// Is this repository path (`/`-separated, relative) new or changed? Deleted files are not.
    pub fn is_new(&self, path: &str) -> bool {
        self.all
            || self.files.iter().any(|f| {
                f.status != ChangeStatus::Deleted
                    && (f.path == path || f.target.as_deref() == Some(path))
            })
    }

    /// Changed (not deleted) files under a directory prefix.
    pub fn under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a ChangedFile> + 'a {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.files
            .iter()
            .filter(move |f| f.status != ChangeStatus::Deleted && f.path.starts_with(&prefix))
    }
}

/// The root of the git work tree that contains `dir`.
pub fn toplevel(dir: &Path) -> Result<PathBuf, RepoError> {
    let out = git(dir, ["rev-parse", "--show-toplevel"]).map_err(|e| {
        RepoError(format!(
            "{}: not inside a git work tree ({e}); pass --repo DIR",
            dir.display()
        ))
    })?;
    Ok(PathBuf::from(out.trim_end()))
}

/// Resolve the base: the given ref, else the merge base with the default branch, else `HEAD`.
/// `None` when the repository has no commit yet (everything is new).
pub fn resolve_base(repo: &Path, base: Option<&str>) -> Result<Option<String>, RepoError> {
    ensure_git(repo)?;
    if let Some(base) = base {
        let spec = format!("{base}^{{commit}}");
        return match git(repo, ["rev-parse", "--verify", "--quiet", &spec]) {
            Ok(sha) => Ok(Some(sha.trim().to_string())),
            Err(_) => Err(RepoError(format!(
                "base `{base}` does not exist in {}: give a branch, tag or commit (did you fetch it? `git fetch origin {base}`)",
                repo.display()
            ))),
        };
    }
    if git(repo, ["rev-parse", "--verify", "--quiet", "HEAD"]).is_err() {
        return Ok(None);
    }
    for default in default_branches(repo) {
        if let Ok(mb) = git(repo, ["merge-base", "HEAD", &default]) {
            return Ok(Some(mb.trim().to_string()));
        }
    }
    Ok(Some(
        git(repo, ["rev-parse", "HEAD"])
            .map_err(RepoError)?
            .trim()
            .to_string(),
    ))
}

/// Candidates for the default branch, best first: the remote's HEAD, then `main`/`master`
/// (remote and local).
fn default_branches(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(r) = git(
        repo,
        ["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"],
    ) {
        out.push(r.trim().to_string());
    }
    for b in [
        "refs/remotes/origin/main",
        "refs/remotes/origin/master",
        "refs/heads/main",
        "refs/heads/master",
    ] {
        if git(repo, ["rev-parse", "--verify", "--quiet", b]).is_ok() {
            out.push(b.to_string());
        }
    }
    out
}

fn ensure_git(repo: &Path) -> Result<(), RepoError> {
    git(repo, ["rev-parse", "--git-dir"]).map(drop).map_err(|e| {
        RepoError(format!(
            "{}: not a git repository ({e}); run inside a git work tree, or use --all to check every file",
            repo.display()
        ))
    })
}

/// The changed files between `base` and the work tree, plus untracked files git does not
/// ignore. `repo` must be the top of the work tree.
pub fn changes(repo: &Path, base: Option<&str>) -> Result<Changes, RepoError> {
    let base = resolve_base(repo, base)?;
    let mut files = Vec::new();
    if let Some(base) = &base {
        // -z: NUL separated, no quoting of unusual names. -M: renames.
        let out = git(
            repo,
            [
                "diff",
                "--name-status",
                "--relative",
                "-z",
                "-M",
                "--no-ext-diff",
                base.as_str(),
                "--",
            ],
        )
        .map_err(RepoError)?;
        let mut fields = out.split('\0').filter(|s| !s.is_empty());
        while let Some(code) = fields.next() {
            let (status, from) = match code.chars().next() {
                Some('A') => (ChangeStatus::Added, None),
                Some('D') => (ChangeStatus::Deleted, None),
                Some('R') => (ChangeStatus::Renamed, fields.next().map(str::to_string)),
                Some('C') => {
                    fields.next();
                    (ChangeStatus::Added, None)
                }
                _ => (ChangeStatus::Modified, None),
            };
            let Some(path) = fields.next() else { break };
            files.push(ChangedFile {
                path: path.to_string(),
                status,
                from,
                target: None,
            });
        }
    } else {
        // No commit yet: everything in the index is new.
        let out = git(repo, ["ls-files", "-z", "--cached"]).map_err(RepoError)?;
        for path in out.split('\0').filter(|s| !s.is_empty()) {
            files.push(ChangedFile {
                path: path.into(),
                status: ChangeStatus::Added,
                from: None,
                target: None,
            });
        }
    }
    let untracked =
        git(repo, ["ls-files", "-z", "--others", "--exclude-standard"]).map_err(RepoError)?;
    for path in untracked.split('\0').filter(|s| !s.is_empty()) {
        if !files.iter().any(|f| f.path == path) {
            files.push(ChangedFile {
                path: path.into(),
                status: ChangeStatus::Added,
                from: None,
                target: None,
            });
        }
    }
    for f in &mut files {
        if f.status != ChangeStatus::Deleted {
            f.target = resolve_link(repo, &f.path);
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Changes {
        base,
        all: false,
        files,
    })
}

/// For a symbolic link inside the repository: the repository path of the file it finally
/// points at. `None` for ordinary files, and for links that leave the repository or dangle.
pub fn resolve_link(repo: &Path, rel: &str) -> Option<String> {
    let full = repo.join(rel);
    let meta = std::fs::symlink_metadata(&full).ok()?;
    if !meta.file_type().is_symlink() {
        return None;
    }
    let real = std::fs::canonicalize(&full).ok()?;
    let root = std::fs::canonicalize(repo).ok()?;
    let inside = real.strip_prefix(&root).ok()?;
    Some(to_slash(inside))
}

/// A relative path with `/` separators, as the reports show it.
pub fn to_slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn git<I, S>(dir: &Path, args: I) -> Result<String, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}; install git"))?;
    if out.status.success() {
        String::from_utf8(out.stdout).map_err(|_| "git printed non-UTF-8 output".to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The bytes of `path` (`/`-separated, relative to `repo` as the changed files are; a
/// directory gives git's listing of its entries) in commit `base`, or `None` when it does
/// not exist there. GIT_DIR and GIT_WORK_TREE are scrubbed, so a hook's environment cannot
/// point git elsewhere.
pub fn show_at(repo: &Path, base: &str, path: &str) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["show", "--no-textconv", &format!("{base}:./{path}")])
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}
