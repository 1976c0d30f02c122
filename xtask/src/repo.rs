//! What changed: the files added, modified, deleted or renamed between the base and the work
//! tree (untracked files that git does not ignore included), with symbolic links resolved.

use std::{
    ffi::OsStr,
    os::unix::ffi::OsStrExt,
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
/// The package manager a lock file at a repository's root stands for, in the order a root
/// holding several is read.
pub const LOCK_FILES: [(&str, &str); 5] = [
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("bun.lockb", "bun"),
    ("bun.lock", "bun"),
    ("package-lock.json", "npm"),
];

/// The first of [`LOCK_FILES`] at `root`: its name and package manager.
pub fn lock_file(root: &Path) -> Option<(&'static str, &'static str)> {
    LOCK_FILES.into_iter().find(|(f, _)| root.join(f).is_file())
}

pub fn toplevel(dir: &Path) -> Result<PathBuf, RepoError> {
    not_bare(dir)?;
    let out = git_bytes(dir, ["rev-parse", "--show-toplevel"]).map_err(|e| {
        RepoError(format!(
            "{}: not inside a git work tree ({e}); pass --repo DIR",
            dir.display()
        ))
    })?;
    // The path as bytes: the directory a repository lives in need not be UTF-8.
    let out = out.strip_suffix(b"\n").unwrap_or(&out);
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(out)))
}

/// Resolve the base: the given ref, else the merge base with the default branch (on the
/// default branch itself that is its upstream's merge base, or `HEAD` when it has none:
/// the uncommitted work). `None` when the repository has no commit yet (everything is new).
///
/// When no default branch can be found, or `HEAD` shares no history with it (a
/// single-branch, shallow or detached CI checkout), that is an error saying how to fix it:
/// falling back to `HEAD` would check nothing and call it ready for review.
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
    let defaults = default_branches(repo);
    for default in &defaults {
        if let Ok(mb) = git(repo, ["merge-base", "HEAD", default]) {
            return Ok(Some(mb.trim().to_string()));
        }
    }
    Err(no_default_base(repo, &defaults))
}

/// Why the default base cannot be found, and the three ways out.
fn no_default_base(repo: &Path, defaults: &[String]) -> RepoError {
    let short = |r: &str| {
        r.trim_start_matches("refs/remotes/")
            .trim_start_matches("refs/heads/")
            .to_string()
    };
    let mut why = if defaults.is_empty() {
        "no default branch found (no origin/HEAD, origin/main, origin/master, main or master)"
            .to_string()
    } else {
        format!(
            "HEAD shares no history with {}",
            defaults
                .iter()
                .map(|d| short(d))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if git(repo, ["rev-parse", "--is-shallow-repository"]).is_ok_and(|s| s.trim() == "true") {
        why.push_str("; this is a shallow clone");
    }
    if git(repo, ["symbolic-ref", "--quiet", "HEAD"]).is_err() {
        why.push_str("; HEAD is detached");
    }
    let branch = defaults
        .iter()
        .find(|d| d.starts_with("refs/remotes/origin/"))
        .map(|d| short(d).trim_start_matches("origin/").to_string())
        .unwrap_or_else(|| "main".into());
    RepoError(format!(
        "{}: cannot find the base to compare with: {why}. Checking against HEAD would check \
         nothing, so it is not done. Fix one of these ways:\n  \
         - pass `--base <ref>` (the branch this work will merge into; `--base HEAD` checks only \
         uncommitted changes, `--all` every migration and route);\n  \
         - fetch the default branch: `git fetch origin {branch}` (and `git fetch --unshallow` \
         in a shallow clone);\n  \
         - in GitHub Actions, check out with `actions/checkout` and `fetch-depth: 0`.",
        repo.display()
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
        if !out.iter().any(|o| o == b) && git(repo, ["rev-parse", "--verify", "--quiet", b]).is_ok()
        {
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
    })?;
    not_bare(repo)
}

/// A bare repository has no work tree: there is nothing to check in it, and reading its
/// directory as one would pass on nothing. Outside git this is fine (`--all`).
pub fn not_bare(dir: &Path) -> Result<(), RepoError> {
    match git(dir, ["rev-parse", "--is-bare-repository"]) {
        Ok(s) if s.trim() == "true" => Err(RepoError(format!(
            "{}: a bare git repository (no work tree, no files to check): clone it (`git clone {} work`) and run in the clone",
            dir.display(),
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// The changed files between `base` and the work tree, plus untracked files git does not
/// ignore. `repo` must be the top of the work tree.
pub fn changes(repo: &Path, base: Option<&str>) -> Result<Changes, RepoError> {
    let base = resolve_base(repo, base)?;
    let mut files = Vec::new();
    if let Some(base) = &base {
        // -z: NUL separated, no quoting of unusual names. -M: renames.
        let out = git_bytes(
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
        let fields = z_paths(&out);
        let mut fields = fields.iter().map(String::as_str);
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
        let out = git_bytes(repo, ["ls-files", "-z", "--cached"]).map_err(RepoError)?;
        for path in z_paths(&out) {
            files.push(ChangedFile {
                path,
                status: ChangeStatus::Added,
                from: None,
                target: None,
            });
        }
    }
    let untracked =
        git_bytes(repo, ["ls-files", "-z", "--others", "--exclude-standard"]).map_err(RepoError)?;
    for path in z_paths(&untracked) {
        if !files.iter().any(|f| f.path == path) {
            files.push(ChangedFile {
                path,
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

/// Variables through which the environment points git at another repository, work tree,
/// index or object store (`git rev-parse --local-env-vars`, plus the `-c` settings of a
/// parent git): a hook, an IDE or a hostile `.envrc` may set them, and then `--repo` would
/// not be what is checked. Every git child goes without them.
pub const GIT_LOCAL_ENV: [&str; 17] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_NAMESPACE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
];

/// The one way this tool starts git: `git -C dir`, without the variables that would point it
/// elsewhere ([`GIT_LOCAL_ENV`]), and without taking optional locks (a check never blocks
/// the user's own git). Add the arguments and run it.
pub fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir);
    for var in GIT_LOCAL_ENV {
        cmd.env_remove(var);
    }
    cmd.env("GIT_OPTIONAL_LOCKS", "0");
    cmd
}

/// Run git; its stdout as bytes (file names need not be UTF-8), or its stderr.
fn git_bytes<I, S>(dir: &Path, args: I) -> Result<Vec<u8>, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = git_command(dir)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}; install git"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn git<I, S>(dir: &Path, args: I) -> Result<String, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = git_bytes(dir, args)?;
    String::from_utf8(out).map_err(|_| "git printed non-UTF-8 output".to_string())
}

/// The NUL-separated paths of a `-z` listing. A name that is not UTF-8 is shown with
/// U+FFFD in its place (said on stderr once per name): the run goes on, and whatever reads
/// that path finds nothing there and says so.
fn z_paths(out: &[u8]) -> Vec<String> {
    out.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|raw| match std::str::from_utf8(raw) {
            Ok(s) => s.to_string(),
            Err(_) => {
                let lossy = String::from_utf8_lossy(raw).into_owned();
                eprintln!(
                    "xtask: warning: `{}`: the file name is not UTF-8 (shown with \u{FFFD}); it cannot be read under that name, so it is not checked: rename it",
                    lossy.escape_debug()
                );
                lossy
            }
        })
        .collect()
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
