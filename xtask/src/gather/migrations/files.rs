//! The files of one migration history: the `.sql` files of a directory in name order, as
//! `supabase db reset` applies them. Symbolic links are followed; a file reached twice is
//! read once; a link that dangles or loops is a finding, never a hang.

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

/// List `<repo>/<dir>`. A missing directory is a warning: the history is empty.
pub fn list(repo: &Path, dir: &str) -> (Vec<MigrationFile>, Vec<Finding>) {
    let mut findings = Vec::new();
    let root = repo.join(dir);
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
    let mut names: Vec<String> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") {
            names.push(name);
        }
    }
    names.sort();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut files = Vec::new();
    let dir = dir.trim_end_matches('/');
    for name in names {
        let rel = format!("{dir}/{name}");
        let full = root.join(&name);
        // `metadata` follows links: ELOOP for a loop, NotFound for a dangling link.
        match std::fs::metadata(&full) {
            Ok(m) if m.is_file() => {}
            Ok(_) => continue, // a directory named *.sql
            Err(e) => {
                let what = if e.raw_os_error() == Some(libc::ELOOP) {
                    "is a symbolic link loop".to_string()
                } else if e.kind() == std::io::ErrorKind::NotFound {
                    "is a symbolic link to nothing (dangling)".to_string()
                } else {
                    format!("cannot be read: {e}")
                };
                findings.push(
                    Finding::new(
                        Rule::MigrationUnreadable,
                        Severity::Error,
                        format!("{rel} {what}: point it at a real migration file or remove it; its statements cannot be checked"),
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
