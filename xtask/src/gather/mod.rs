//! Evidence gatherers. Each one looks at the repository (and, for some, a database or a
//! child process) and returns what it measured, or the reason it could not measure.

pub mod commands;
pub mod live;
pub mod migrations;
pub mod routes;
pub mod weakened;

use crate::{
    model::{AgentReport, CommandReport, MigrationEvidence, RouteEvidence},
    repo::Changes,
};

/// Why a piece of evidence is missing: shown as the `unknown` item's reason.
pub type Missing = String;

/// Everything one verification run measured.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The repository as the user gave it.
    pub repo: String,
    pub changes: Changes,
    pub migrations: Result<MigrationEvidence, Missing>,
    pub routes: Result<RouteEvidence, Missing>,
    pub lint: Result<CommandReport, Missing>,
    pub tests: Result<CommandReport, Missing>,
    /// Other commands that ran (setup), shown in the report.
    pub other_commands: Vec<CommandReport>,
    /// The agent run, for `backend-stage`.
    pub agent: Option<AgentReport>,
    /// What the change did to the checks themselves.
    pub weakened: weakened::Weakened,
}
