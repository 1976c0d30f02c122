//! The files of one migration history: the `.sql` files of a directory in name order, as
//! `supabase db reset` applies them. Symbolic links are followed inside the repository; a file
//! reached twice is read once; a link that dangles, loops or leaves the repository (the
//! directory's or a file's) is a finding, never a hang, and what is outside is never read.

use crate::rules::catalog::Rule;
use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use crate::model::{Finding, Severity};

pub struct MigrationFile {
    /// Repository path of the directory entry (`supabase/migrations/0001_init.sql`).
    pub path: String,
    /// What to read.
    pub full: PathBuf,
    /// Why it cannot be read (a dangling or looping link): what it did is unknown.
    pub unreadable: Option<String>,
}

/// List `<repo>/<dir>`. A missing directory is a warning: the history is empty. A directory
/// that resolves outside the repository (a symbolic link to `/etc`, to another checkout) is
/// not read: it is an error finding, since what it would apply is not part of the change.
pub fn list(repo: &Path, dir: &str) -> (Vec<MigrationFile>, Vec<Finding>) {
    let mut findings = Vec::new();
    let root = repo.join(dir);
    let top = std::fs::canonicalize(repo).ok();
    if let (Ok(real), Some(top)) = (std::fs::canonicalize(&root), &top) {
        if !real.starts_with(top) {
            findings.push(
                Finding::new(
                    Rule::MigrationUnreadable,
                    Severity::Error,
                    format!(
                        "migration directory `{dir}` resolves outside the repository (to {}): it is not read, so its migrations are not checked; keep the migrations inside the repository",
                        real.display()
                    ),
                )
                .at(dir.to_string(), None),
            );
            return (Vec::new(), findings);
        }
    }
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) => {
            let msg = if e.kind() == std::io::ErrorKind::NotFound {
                format!("migration directory `{dir}` does not exist: nothing to check there (set `migrations.dirs` in xtask.toml if your migrations live elsewhere)")
            } else {
                format!("cannot list migration directory `{dir}`: {e}")
            };
            let sev = if e.kind() == std::io::ErrorKind::NotFound {
                Severity::Warning
            } else {
                Severity::Error
            };
            findings
                .push(Finding::new(Rule::MigrationUnreadable, sev, msg).at(dir.to_string(), None));
            return (Vec::new(), findings);
        }
    };
    // The name as shown (U+FFFD for bytes that are not UTF-8), and the entry as it is.
    let mut names: Vec<(String, std::ffi::OsString)> = Vec::new();
    for e in entries.flatten() {
        let os = e.file_name();
        let name = os.to_string_lossy().into_owned();
        if name.ends_with(".sql") {
            names.push((name, os));
        }
    }
    names.sort();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut files = Vec::new();
    let dir = dir.trim_end_matches('/');
    for (name, os) in names {
        let rel = format!("{dir}/{name}");
        let full = root.join(&os);
        // `metadata` follows links: ELOOP for a loop, NotFound for a dangling link.
        let meta = if os.to_str().is_none() {
            Err(None)
        } else {
            std::fs::metadata(&full).map_err(Some)
        };
        match meta {
            Ok(m) if m.is_file() => {}
            Ok(_) => continue, // a directory named *.sql
            Err(e) => {
                let what = if e.is_none() {
                    "has a file name that is not UTF-8 (shown with \u{FFFD})".to_string()
                } else if e.as_ref().and_then(|e| e.raw_os_error()) == Some(libc::ELOOP) {
                    "is a symbolic link loop".to_string()
                } else if e.as_ref().map(std::io::Error::kind) == Some(std::io::ErrorKind::NotFound)
                {
                    "is a symbolic link to nothing (dangling)".to_string()
                } else {
                    format!(
                        "cannot be read: {}",
                        e.map(|e| e.to_string()).unwrap_or_default()
                    )
                };
                let fix = if os.to_str().is_none() {
                    "rename it"
                } else {
                    "point it at a real migration file or remove it"
                };
                findings.push(
                    Finding::new(
                        Rule::MigrationUnreadable,
                        Severity::Error,
                        format!("{rel} {what}: {fix}; its statements cannot be checked"),
                    )
                    .at(rel.clone(), None),
                );
                files.push(MigrationFile {
                    path: rel,
                    full,
                    unreadable: Some(what),
                });
                continue;
            }
        }
        let canonical = std::fs::canonicalize(&full).unwrap_or_else(|_| full.clone());
        if top.as_ref().is_some_and(|top| !canonical.starts_with(top)) {
            let what = "is a symbolic link that leaves the repository".to_string();
            findings.push(
                Finding::new(
                    Rule::MigrationUnreadable,
                    Severity::Error,
                    format!("{rel} {what}: it is not read, so its statements cannot be checked; keep the migration inside the repository"),
                )
                .at(rel.clone(), None),
            );
            files.push(MigrationFile {
                path: rel,
                full,
                unreadable: Some(what),
            });
            continue;
        }
        if !seen.insert(canonical) {
            findings.push(
                Finding::new(
                    Rule::MigrationDuplicate,
                    Severity::Info,
                    format!("{rel} is a link to a file already read in this history: read once"),
                )
                .at(rel.clone(), None),
            );
            continue;
        }
        files.push(MigrationFile {
            path: rel,
            full,
            unreadable: None,
        });
    }
    (files, findings)
}
