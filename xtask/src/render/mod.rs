//! Renderers: one report model, several formats, each written against `impl Write`.

pub mod github;
pub mod json;
pub mod junit;
pub mod lines;
pub mod markdown;
pub mod sarif;
pub mod text;

use std::io;

use serde::Serialize;

use crate::{
    checklist,
    flags::Format,
    gather::Evidence,
    model::{ChecklistItem, Finding},
};

/// What every renderer reads: the evidence and the checklist decided from it.
pub struct Report<'a> {
    pub ev: &'a Evidence,
    pub checklist: Vec<ChecklistItem>,
    /// All findings, most severe first, then by file and line.
    pub findings: Vec<Finding>,
}

impl<'a> Report<'a> {
    pub fn new(ev: &'a Evidence, checklist: Vec<ChecklistItem>) -> Report<'a> {
        let mut findings: Vec<Finding> = checklist::all_findings(ev).cloned().collect();
        findings.sort_by(|a, b| {
            (a.severity, &a.path, a.line, a.rule).cmp(&(b.severity, &b.path, b.line, b.rule))
        });
        Report {
            ev,
            checklist,
            findings,
        }
    }
}

pub fn render(
    report: &Report,
    format: Format,
    color: bool,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    match format {
        Format::Markdown => markdown::render(report, out),
        Format::Json => json::render(report, out),
        Format::Text => text::render(report, color, out),
        Format::Github => github::render(report, out),
        Format::Sarif => sarif::render(report, out),
        Format::Junit => junit::render(report, out),
    }
}

/// A repository path as seen from where the tool runs (the checkout root in CI): a relative
/// `--repo DIR` is put in front, so annotations and SARIF locations land on the right file.
/// An absolute `--repo` (the default: the top of the work tree) leaves the path as it is.
pub fn repo_path(ev: &Evidence, path: &str) -> String {
    let repo = ev.repo.trim_end_matches('/');
    let repo = repo.strip_prefix("./").unwrap_or(repo);
    if repo.is_empty() || repo == "." || repo.starts_with('/') || path.starts_with('/') {
        path.to_string()
    } else {
        format!("{repo}/{path}")
    }
}

/// Serialize helper shared by the json renderer and tests.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("report serializes")
}
