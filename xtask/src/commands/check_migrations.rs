//! `cargo xtask check-migrations`: static migration checks only, fast enough for a
//! pre-commit hook. Prints `path:line: severity: rule: message` per finding and a count, or
//! the contract's JSON report (`--format json`), or the github, sarif, junit or markdown
//! view of the same three checklist items. Exit 1 on an error finding or a new table
//! that is not proved protected.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use crate::{
    checklist,
    config::Config,
    exit::{self, Outcome},
    flags::{self, Format, Live},
    gather::{self, Evidence},
    model::{
        ChangeStatus, ChangedFile, ChecklistItem, Finding, MigrationEvidence, Severity, Verdict,
    },
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
    let config = Config::load(&repo)?;
    let changes = if !flags.files.is_empty() {
        given_files(&repo, &cwd, &flags.files)?
    } else if flags.all {
        Changes::all()
    } else {
        repo::changes(&repo, flags.base.as_deref())?
    };
    let ev = gather::migrations::analyze(&repo, &config, &changes).map_err(exit::tool)?;
    let failed = fails(&ev);
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => write_json(&mut out, &repo, &changes, ev)?,
        Format::Text => write_text(&mut out, &ev)?,
        other => write_report(&mut out, other, &repo, &changes, ev)?,
    }
    out.flush()?;
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Clean
    })
}

/// Exit 1: an error finding, or a new table not proved protected (`unverified` is no pass).
pub fn fails(ev: &MigrationEvidence) -> bool {
    ev.findings.iter().any(|f| f.severity == Severity::Error)
        || ev
            .tables
            .iter()
            .any(|t| t.new && matches!(t.verdict, Verdict::Unprotected | Verdict::Unverified))
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

fn sorted(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    v.sort_by(|a, b| {
        (&a.path, a.line, a.severity, a.rule).cmp(&(&b.path, b.line, b.severity, b.rule))
    });
    v
}

pub fn write_text(out: &mut dyn Write, ev: &MigrationEvidence) -> std::io::Result<()> {
    for f in sorted(&ev.findings) {
        match f.location() {
            Some(loc) => writeln!(
                out,
                "{loc}: {}: {}: {}",
                f.severity.as_str(),
                f.rule,
                f.message
            )?,
            None => writeln!(out, "{}: {}: {}", f.severity.as_str(), f.rule, f.message)?,
        }
    }
    for t in ev
        .tables
        .iter()
        .filter(|t| t.verdict == Verdict::Unverified)
    {
        writeln!(
            out,
            "note: {} is unverified: {}",
            t.name,
            t.reason.as_deref().unwrap_or("see the findings")
        )?;
    }
    let count = |s: Severity| ev.findings.iter().filter(|f| f.severity == s).count();
    let verdict = |v: Verdict| ev.tables.iter().filter(|t| t.verdict == v).count();
    writeln!(
        out,
        "check-migrations: {} error(s), {} warning(s); {} table(s) checked: {} protected, {} unprotected, {} unverified, {} exempt ({} file(s) read, {} new)",
        count(Severity::Error),
        count(Severity::Warning),
        ev.tables.len(),
        verdict(Verdict::Protected),
        verdict(Verdict::Unprotected),
        verdict(Verdict::Unverified),
        verdict(Verdict::Exempt),
        ev.files_read,
        ev.new_files.len(),
    )
}

/// The evidence of a static migration check, and the three checklist items it can decide.
fn static_evidence(
    repo: &Path,
    changes: &Changes,
    ev: MigrationEvidence,
) -> (Evidence, Vec<ChecklistItem>) {
    let not_here = || "not part of check-migrations (run `cargo xtask verify`)".to_string();
    let evidence = Evidence {
        repo: repo.display().to_string(),
        changes: changes.clone(),
        migrations: Ok(ev),
        routes: Err(not_here()),
        lint: Err(not_here()),
        tests: Err(not_here()),
        other_commands: Vec::new(),
        agent: None,
    };
    let items: Vec<_> = checklist::build(&evidence, Live::Off)
        .into_iter()
        .filter(|i| matches!(i.id, "tenant_id" | "rls" | "migration"))
        .collect();
    (evidence, items)
}

/// The other formats (github, sarif, junit, markdown) from the same report model as
/// `verify`, with the three migration items only.
fn write_report(
    out: &mut dyn Write,
    format: Format,
    repo: &Path,
    changes: &Changes,
    ev: MigrationEvidence,
) -> anyhow::Result<()> {
    let (evidence, items) = static_evidence(repo, changes, ev);
    let report = Report::new(&evidence, items);
    if format == Format::Github {
        if let Err(e) = render::github::step_summary(&report) {
            eprintln!("xtask: warning: cannot append to $GITHUB_STEP_SUMMARY: {e}");
        }
    }
    render::render(&report, format, false, out)?;
    Ok(())
}

/// The contract's JSON report (version 1), with what a static check can fill honestly: the
/// three migration items of the checklist, the findings, the tables, the changed files.
fn write_json(
    out: &mut dyn Write,
    repo: &Path,
    changes: &Changes,
    ev: MigrationEvidence,
) -> anyhow::Result<()> {
    let (evidence, items) = static_evidence(repo, changes, ev);
    let ev = evidence.migrations.as_ref().expect("set above");
    let mut findings = sorted(&ev.findings);
    findings.sort_by_key(|f| f.severity);
    let report = serde_json::json!({
        "version": 1,
        "repo": evidence.repo,
        "base": changes.base,
        "checklist": items,
        "findings": findings,
        "tables": ev.tables,
        "changed_files": changes.files,
        "commands": [],
        "agent": null,
        "impact": ev.impact,
        "files_read": ev.files_read,
        "new_files": ev.new_files,
    });
    serde_json::to_writer_pretty(&mut *out, &report)?;
    writeln!(out)?;
    Ok(())
}
