//! The JSON report, version 1 (`../shared/contract.md` § JSON report). Fields may be added,
//! never renamed.

use std::io;

use serde::Serialize;

use super::Report;
use crate::model::{
    AgentReport, ChangedFile, ChecklistItem, CommandReport, Finding, LiveOutcome, RouteReport,
    TableReport,
};

#[derive(Serialize)]
struct Json<'a> {
    version: u32,
    repo: &'a str,
    base: Option<&'a str>,
    checklist: &'a [ChecklistItem],
    findings: &'a [Finding],
    tables: &'a [TableReport],
    changed_files: &'a [ChangedFile],
    commands: Vec<&'a CommandReport>,
    agent: &'a Option<AgentReport>,
    // Additions beyond version 1's fixed fields.
    all: bool,
    migration_impact: &'a [String],
    /// Migration files read, and those new in this change.
    migration_files_read: usize,
    new_migrations: &'a [String],
    live: Option<&'a LiveOutcome>,
    live_notes: &'a [String],
    routes: &'a [RouteReport],
    new_schemas: &'a [String],
    /// Why a whole area could not be measured, by area.
    not_measured: Vec<(&'static str, &'a str)>,
}

pub fn render(r: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    let ev = r.ev;
    let m = ev.migrations.as_ref().ok();
    let routes = ev.routes.as_ref().ok();
    let mut not_measured = Vec::new();
    for (area, res) in [
        ("migrations", ev.migrations.as_ref().err()),
        ("routes", ev.routes.as_ref().err()),
        ("lint", ev.lint.as_ref().err()),
        ("tests", ev.tests.as_ref().err()),
    ] {
        if let Some(why) = res {
            not_measured.push((area, why.as_str()));
        }
    }
    let json = Json {
        version: 1,
        repo: &ev.repo,
        base: ev.changes.base.as_deref(),
        checklist: &r.checklist,
        findings: &r.findings,
        tables: m.map(|m| m.tables.as_slice()).unwrap_or_default(),
        changed_files: &ev.changes.files,
        commands: ev
            .other_commands
            .iter()
            .chain(
                [&ev.lint, &ev.tests]
                    .into_iter()
                    .filter_map(|c| c.as_ref().ok()),
            )
            .collect(),
        agent: &ev.agent,
        all: ev.changes.all,
        migration_impact: m.map(|m| m.impact.as_slice()).unwrap_or_default(),
        migration_files_read: m.map_or(0, |m| m.files_read),
        new_migrations: m.map(|m| m.new_files.as_slice()).unwrap_or_default(),
        live: m.map(|m| &m.live),
        live_notes: m.map(|m| m.live_notes.as_slice()).unwrap_or_default(),
        routes: routes.map(|r| r.routes.as_slice()).unwrap_or_default(),
        new_schemas: routes.map(|r| r.new_schemas.as_slice()).unwrap_or_default(),
        not_measured,
    };
    serde_json::to_writer_pretty(&mut *out, &json).map_err(io::Error::other)?;
    writeln!(out)
}
