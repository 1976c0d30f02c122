//! `cargo xtask check-migrations`: static migration checks only, fast enough for a
//! pre-commit hook. Prints `path:line: severity: rule: message` per finding and a count
//! (`render::lines`), or any other format of `render` from the same report as `verify`
//! (`--format json` is the same JSON shape). Exit with the same rule as `verify`, over the
//! items a static check decides: 1 on an error finding or a new table not proved protected.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use crate::{
    checklist,
    config::Config,
    exit::{self, Outcome},
    flags::{self, Format, Live},
    gather::Evidence,
    model::{ChangeStatus, ChangedFile, ChecklistItem, MigrationEvidence, Status},
    render::{self, Report},
    repo::{self, Changes},
};

pub fn run(flags: flags::CheckMigrations) -> anyhow::Result<Outcome> {
    let format = Format::resolve(flags.format, Format::Text);
    if format == Format::Github || crate::actions::in_actions() {
        crate::actions::protect();
    }
    let cwd = std::env::current_dir()?;
    let repo = match &flags.repo {
        Some(r) => r.clone(),
        None => match repo::toplevel(&cwd) {
            Ok(top) => top,
            Err(_) if flags.all => cwd.clone(),
            Err(e) => return Err(e.into()),
        },
    };
    if !repo.is_dir() {
        return Err(exit::usage(format!(
            "--repo {}: not a directory",
            repo.display()
        )));
    }
    // `--all` and FILES need no git, but a bare repository has no files to check at all.
    repo::not_bare(&repo)?;
    let config = Config::load(&repo)?;
    let changes = if !flags.files.is_empty() {
        given_files(&repo, &cwd, &flags.files)?
    } else if flags.all {
        Changes::all()
    } else {
        repo::changes(&repo, flags.base.as_deref())?
    };
    let ev = crate::judge::static_migrations(&repo, &config, &changes);
    let (evidence, items) = static_evidence(&repo, &changes, ev);
    let decided: Vec<ChecklistItem> = items
        .iter()
        .filter(|i| STATIC_ITEMS.contains(&i.id) || i.status == Status::Fail)
        .cloned()
        .collect();
    let clear = checklist::all_clear(&decided, &evidence);
    let report = Report::new(&evidence, items);
    if format == Format::Github {
        if let Err(e) = render::github::step_summary(&report) {
            eprintln!("xtask: warning: cannot append to $GITHUB_STEP_SUMMARY: {e}");
        }
    }
    let mut out = std::io::stdout().lock();
    match format {
        Format::Text => render::masked(&mut out, |buf| render::lines::render(&report, buf))?,
        other => render::render(&report, other, false, &mut out)?,
    }
    out.flush()?;
    Ok(if clear {
        Outcome::Clean
    } else {
        Outcome::Failed
    })
}

/// FILES: only these count as new. Paths may be relative to the repository or to the
/// current directory, or absolute inside the repository.
fn given_files(repo: &Path, cwd: &Path, files: &[PathBuf]) -> anyhow::Result<Changes> {
    let root = std::fs::canonicalize(repo)?;
    let mut out = Vec::new();
    for f in files {
        let candidates = [repo.join(f), cwd.join(f)];
        let Some(found) = candidates
            .iter()
            .find(|p| std::fs::symlink_metadata(p).is_ok())
        else {
            return Err(exit::usage(format!(
                "{}: no such file (give paths relative to the repository)",
                f.display()
            )));
        };
        // Canonicalize the directory only: the file itself may be a symbolic link.
        let parent = found
            .parent()
            .map(std::fs::canonicalize)
            .transpose()?
            .unwrap_or_else(|| root.clone());
        let full = parent.join(found.file_name().unwrap_or_default());
        let Ok(rel) = full.strip_prefix(&root) else {
            return Err(exit::usage(format!(
                "{}: outside the repository {}",
                f.display(),
                repo.display()
            )));
        };
        let path = repo::to_slash(rel);
        let target = repo::resolve_link(repo, &path);
        out.push(ChangedFile {
            path,
            status: ChangeStatus::Added,
            from: None,
            target,
        });
    }
    Ok(Changes {
        base: None,
        all: false,
        files: out,
    })
}

/// The checklist items a static check decides. `migration` is shown too, but only its
/// failure counts: "not applied to a Postgres" is what a static check is, and its syntax
/// errors are error findings.
const STATIC_ITEMS: [&str; 2] = ["tenant_id", "rls"];

/// The evidence of a static migration check, and the checklist items it can decide.
fn static_evidence(
    repo: &Path,
    changes: &Changes,
    ev: MigrationEvidence,
) -> (Evidence, Vec<ChecklistItem>) {
    let not_here = || "not part of check-migrations (run `cargo xtask verify`)".to_string();
    let mut evidence = Evidence {
        repo: repo.display().to_string(),
        changes: changes.clone(),
        migrations: Ok(ev),
        routes: Err(not_here()),
        lint: Err(not_here()),
        tests: Err(not_here()),
        other_commands: Vec::new(),
        weakened: Default::default(),
        agent: None,
    };
    crate::judge::suppressions(repo, &mut evidence);
    let items: Vec<_> = checklist::build(&evidence, Live::Off)
        .into_iter()
        .filter(|i| matches!(i.id, "tenant_id" | "rls" | "migration"))
        .collect();
    (evidence, items)
}
