//! SARIF 2.1.0 (`--format sarif`), shaped for GitHub code scanning
//! (`github/codeql-action/upload-sarif`).
//!
//! Every rule the tool reports (the catalogue, `rules::catalog`) is in `tool.driver.rules`, with its short and full
//! description, help and default level. Each finding is a result; so is each checklist item
//! that did not pass (rule `checklist/<id>`), since a failing `tests` item has no finding.
//! Code scanning rejects a result without a location ("expected at least one location"), so
//! one without a file is placed on a file that says where it comes from — the first new
//! migration for a table finding, else the workspace manifest `package.json`, where the lint
//! and test scripts live — at line 1, and its message says so.

use std::io;

use serde_json::{json, Value};

use super::{repo_path, Report};
use crate::model::{Finding, Rule, Severity, Status};

pub const TOOL_NAME: &str = "xtask-backend-verify";

/// Where to read about the tool: the repository being run in GitHub Actions, else a name.
pub fn information_uri() -> String {
    match (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        (Ok(server), Ok(repo)) if !server.is_empty() && !repo.is_empty() => {
            format!("{}/{repo}", server.trim_end_matches('/'))
        }
        _ => "urn:cargo-xtask:backend-verify".into(),
    }
}

pub fn render(r: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    render_with_uri(r, &information_uri(), out)
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A rule's level before any result: the most severe level it reported in this run, else
/// its default severity in the catalogue.
fn default_level(rule: Rule, findings: &[Finding]) -> &'static str {
    let reported = findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.severity)
        .min();
    level(reported.unwrap_or(rule.meta().severity))
}

pub fn render_with_uri(
    r: &Report,
    information_uri: &str,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let mut rules: Vec<Value> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut add_rule = |id: String, short: &str, full: &str, help: &str, level: &str| {
        if ids.contains(&id) {
            return;
        }
        rules.push(json!({
            "id": id,
            "name": camel(&id),
            "shortDescription": {"text": short},
            "fullDescription": {"text": full},
            "help": {"text": help, "markdown": help},
            "defaultConfiguration": {"level": level},
        }));
        ids.push(id);
    };
    for rule in Rule::ALL.iter().filter(|r| !r.meta().planned) {
        let m = rule.meta();
        add_rule(
            m.id.to_string(),
            m.summary,
            m.description,
            m.help,
            default_level(*rule, &r.findings),
        );
    }
    for item in &r.checklist {
        add_rule(
            format!("checklist/{}", item.id),
            item.label,
            &format!(
                "Handover checklist item `{}`: \"{}\". It passes only when the tool measured it; an item that could not be decided is reported as a warning, never as a pass.",
                item.id, item.label
            ),
            "See the item's evidence in the result message and the filled handover (`--format markdown`).",
            "error",
        );
    }

    let fallback = fallback_file(r);
    let mut results = Vec::new();
    for f in &r.findings {
        let (uri, line, placed) = match &f.path {
            Some(p) => (repo_path(r.ev, p), f.line.unwrap_or(1).max(1), false),
            None => (
                f.table
                    .as_ref()
                    .and_then(|_| first_migration(r))
                    .unwrap_or_else(|| fallback.clone()),
                1,
                true,
            ),
        };
        let mut text = f.message.clone();
        if let Some(t) = &f.table {
            text = format!("{text} (table {t})");
        }
        if placed {
            text.push_str(" [no file: reported at the top of this file]");
        }
        results.push(result(
            f.rule.id(),
            ids.iter().position(|i| i == f.rule.id()),
            level(f.severity),
            &text,
            &uri,
            line,
        ));
    }
    for item in &r.checklist {
        let lvl = match item.status {
            Status::Fail => "error",
            Status::Unknown => "warning",
            Status::Pass | Status::NotApplicable => continue,
        };
        let id = format!("checklist/{}", item.id);
        let text = format!(
            "{}: {} — {} [checklist item: reported at the top of this file]",
            item.id,
            if item.status == Status::Fail {
                "fail"
            } else {
                "unknown (could not be decided)"
            },
            item.evidence
        );
        let at = checklist_file(r, item.id, &fallback);
        results.push(result(
            &id,
            ids.iter().position(|i| *i == id),
            lvl,
            &text,
            &at,
            1,
        ));
    }

    let sarif = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL_NAME,
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": information_uri,
                "rules": rules,
            }},
            "automationDetails": {"id": format!("{TOOL_NAME}/")},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &sarif).map_err(io::Error::other)?;
    writeln!(out)
}

fn result(
    rule: &str,
    index: Option<usize>,
    level: &str,
    text: &str,
    uri: &str,
    line: u32,
) -> Value {
    let mut v = json!({
        "ruleId": rule,
        "level": level,
        "message": {"text": text},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": uri},
            "region": {"startLine": line},
        }}],
    });
    if let Some(i) = index {
        v["ruleIndex"] = json!(i);
    }
    v
}

/// Where a result without a file is shown: the workspace manifest.
fn fallback_file(r: &Report) -> String {
    repo_path(r.ev, "package.json")
}

fn first_migration(r: &Report) -> Option<String> {
    let m = r.ev.migrations.as_ref().ok()?;
    m.new_files.first().map(|f| repo_path(r.ev, f))
}

fn checklist_file(r: &Report, id: &str, fallback: &str) -> String {
    let first_route =
        r.ev.routes
            .as_ref()
            .ok()
            .and_then(|rt| rt.routes.first())
            .map(|rt| &rt.path);
    let file = match id {
        "tenant_id" | "rls" | "migration" => first_migration(r),
        "auth" | "contracts" | "rate_limit" => first_route.map(|f| repo_path(r.ev, f)),
        _ => None,
    };
    file.unwrap_or_else(|| fallback.to_string())
}

/// `rls-not-enabled` → `RlsNotEnabled`, `checklist/lint` → `ChecklistLint`.
fn camel(id: &str) -> String {
    id.split(['-', '/', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
