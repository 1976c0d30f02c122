//! Renderers: one report model, several formats, each written against `impl Write`.

pub mod escape;
pub mod github;
pub mod group;
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
    /// Where every finding can be read when a view for people shortens the list (the
    /// handover caps its length): a markdown link or a path. `None`: the views name the
    /// formats that hold the full list.
    pub full_report: Option<String>,
    /// The CI run whose log holds every finding as an annotation (set for the GitHub job
    /// summary).
    pub log_url: Option<String>,
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
            full_report: None,
            log_url: None,
        }
    }
}

pub fn render(
    report: &Report,
    format: Format,
    color: bool,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    masked(out, |buf| match format {
        Format::Markdown => markdown::render(report, buf),
        Format::Json => json::render(report, buf),
        Format::Text => text::render(report, color, buf),
        Format::Github => github::render(report, buf),
        Format::Sarif => sarif::render(report, buf),
        Format::Junit => junit::render(report, buf),
    })
}

/// Render into a buffer, then write it with every secret-looking value masked
/// ([`crate::rules::secrets::mask_text`]): masking is a property of the output, so a key in
/// a Postgres error, a command's output or the agent's message is hidden in every format,
/// whichever field carried it. Every view goes through here (or calls this).
pub fn masked(
    out: &mut dyn io::Write,
    render: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    render(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    out.write_all(crate::rules::secrets::mask_text(&text).as_bytes())
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
