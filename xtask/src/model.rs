//! The one evidence and findings model. Gatherers fill it, `checklist` judges it, the
//! renderers in `report/` print it. Field names of the serialized form are the JSON report
//! of the contract (version 1): they may gain fields, never be renamed.

use serde::Serialize;

pub use crate::rules::catalog::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One finding of one rule of the catalogue (serialized as its id, `rls-not-enabled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub path: Option<String>,
    pub line: Option<u32>,
    pub table: Option<String>,
    pub message: String,
}

impl Finding {
    pub fn new(rule: Rule, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            rule,
            severity,
            path: None,
            line: None,
            table: None,
            message: message.into(),
        }
    }
    pub fn at(mut self, path: impl Into<String>, line: Option<u32>) -> Finding {
        self.path = Some(path.into());
        self.line = line;
        self
    }
    pub fn on_table(mut self, table: impl Into<String>) -> Finding {
        self.table = Some(table.into());
        self
    }
    /// `path:line` (or `path`, or nothing) for compact output.
    pub fn location(&self) -> Option<String> {
        match (&self.path, self.line) {
            (Some(p), Some(l)) => Some(format!("{p}:{l}")),
            (Some(p), None) => Some(p.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Unknown,
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
            Status::NotApplicable => "not_applicable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChecklistItem {
    pub id: &'static str,
    pub label: &'static str,
    pub status: Status,
    /// One line: what was measured, or why it could not be decided.
    pub evidence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Protected,
    Unprotected,
    Unverified,
    Exempt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Static,
    Live,
}

impl Source {
    /// The word the JSON report and the views use: `static` or `live`.
    pub fn word(self) -> &'static str {
        match self {
            Source::Static => "static",
            Source::Live => "live",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyReport {
    pub name: String,
    /// `all|select|insert|update|delete`
    pub command: String,
    pub permissive: bool,
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
    pub tenant_scoped: bool,
    /// Live only: the columns, functions and tables the policy uses, from `pg_depend`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<crate::schema::PolicyUses>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableReport {
    /// Schema-qualified, folded as Postgres folds it: `public.invoices`, `public.AuditTrail`.
    pub name: String,
    pub new: bool,
    pub verdict: Verdict,
    pub tenant_column: bool,
    pub tenant_not_null: bool,
    pub rls_enabled: bool,
    pub policies: Vec<PolicyReport>,
    pub tenant_index: bool,
    /// Commands no permissive policy grants to a client role: Postgres denies them (only
    /// roles that bypass RLS, such as the service role, can run them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<String>,
    /// Declared used by the service role only (`[[tenancy.tables]] service_only`): needs no
    /// tenant column.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub service_only: bool,
    pub source: Source,
    /// Why the verdict is what it is (exemption reason, what could not be followed, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The isolation probe on this table (live only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeReport>,
}

/// `tables[].probe` of the contract: was the table exercised by the isolation probe?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// `probed`, `skipped` or `not_run`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The identities the probe acted as ("member of tenant A").
    pub identities: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    /// Relative to the repository root, `/`-separated.
    pub path: String,
    pub status: ChangeStatus,
    /// For a renamed file: where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// For a symbolic link: the repository path of the file it resolves to (what gets read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl ChangedFile {
    /// The path whose contents are the change (the link target for a symbolic link).
    pub fn content_path(&self) -> &str {
        self.target.as_deref().unwrap_or(&self.path)
    }
}

/// The result of one external command (lint, tests, setup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandReport {
    pub id: String,
    pub argv: Vec<String>,
    /// `None` when the command could not be started or was killed.
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// One line: "0 errors, 2 warnings", "12 passed, 1 failed: <names>".
    pub summary: String,
    /// What the command's result means for its checklist item.
    pub status: Status,
    /// The last lines of its output, for the report and for fix rounds.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output_tail: String,
}

/// Migration analysis results (static reader, and later the live database).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationEvidence {
    /// Migration files that are new in this change (repository paths).
    pub new_files: Vec<String>,
    /// Every migration file read, in replay order.
    pub files_read: usize,
    pub tables: Vec<TableReport>,
    pub findings: Vec<Finding>,
    /// Human lines for the handover's "Migration impact" field.
    pub impact: Vec<String>,
    /// Was the history applied to a real Postgres, and what came of it.
    pub live: LiveOutcome,
    /// How the live check ran: scratch databases, statements not sent, probes skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live_notes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum LiveOutcome {
    /// The live check is not part of this run (`--live off`, or not built).
    #[default]
    NotRun,
    /// The live check was wanted but could not run: the reason.
    Unavailable(String),
    /// All migrations applied and the catalog was judged.
    Applied(String),
    /// Applying failed (see `migration-apply-failed` findings).
    Failed(String),
}

/// Route and code check results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteEvidence {
    pub routes: Vec<RouteReport>,
    pub findings: Vec<Finding>,
    /// New schemas in the contracts package: `file: SchemaName`.
    pub new_schemas: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteReport {
    pub path: String,
    /// Exported handlers: `GET`, `POST`, ...
    pub handlers: Vec<HandlerReport>,
    pub public: bool,
    /// Set when the route is exempt from auth by config: the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exempt: Option<String>,
    pub rate_limited: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerReport {
    pub method: String,
    pub line: u32,
    /// `guarded`, `unguarded`, `unverified`, `exempt`.
    pub auth: String,
    /// `contracts`, `inline`, `none`, `no_input`, `unverified`.
    pub validation: String,
    /// Free text for the handover notes: the guard, the schema, ...
    pub note: String,
}

/// The agent run of `backend-stage`: what the agent said and did in every round, set against
/// what git shows. Nothing here ticks a checklist box; it is the agent's side of the story,
/// printed next to the evidence so a reviewer can compare the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentReport {
    /// `codex`.
    pub agent: String,
    /// The thread the rounds share (from `thread.started`).
    pub thread_id: Option<String>,
    /// Where the prompts, the JSONL event logs and the final messages are kept.
    pub run_dir: String,
    pub prompt_bytes: usize,
    /// What the prompt left out or cut to fit, and context files that were missing.
    pub prompt_notes: Vec<String>,
    /// Files already changed before the run: the user's, not the agent's.
    pub preexisting: Vec<PreexistingChange>,
    /// Where the user's changes were copied before the run (nothing when there were none).
    pub preexisting_backup: Option<String>,
    pub rounds: Vec<AgentRound>,
    /// Why the rounds ended: "every check passed", "checks did not pass after 2 fix round(s)", ...
    pub stop_reason: Option<String>,
}

/// A file that differed from `HEAD` before the agent started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreexistingChange {
    pub path: String,
    /// git's two-letter porcelain status (`" M"`, `"??"`, ...).
    pub git_status: String,
}

/// One run of the agent: round 1 is the task, later rounds are fix rounds (`exec resume`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentRound {
    pub round: u32,
    /// The command line (the prompt went on stdin, so it is not part of it).
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    /// "exit code 0", "timed out after 30s", ...
    pub outcome: String,
    pub duration_ms: u64,
    /// The agent's last message, verbatim.
    pub final_message: Option<String>,
    pub commands: Vec<AgentCommand>,
    /// Files the agent reported changing (`file_change` events), relative to the repository.
    pub claimed_files: Vec<ClaimedFile>,
    /// Files whose contents changed during the round, measured on disk.
    pub changed_files: Vec<String>,
    /// Reported by the agent, but unchanged on disk.
    pub claimed_not_changed: Vec<String>,
    /// Changed on disk, but not reported as a file change (written by a command, say).
    pub changed_not_claimed: Vec<String>,
    /// Files the user had changed before the run that the agent changed again (or reverted).
    pub user_files_touched: Vec<String>,
    /// Token usage, the running total of the thread after this round.
    pub usage: Option<TokenUsage>,
    /// Non-fatal errors the agent reported, and the fatal one if the turn failed.
    pub errors: Vec<String>,
    /// The JSONL event log of this round.
    pub events_file: String,
    /// Commits the agent made during the round (`git log --oneline`), which it was asked not to.
    pub commits: Vec<String>,
    /// What `verify` said after this round (`None` with `--no-verify` or when it did not run).
    pub verify: Option<RoundVerify>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentCommand {
    pub command: String,
    pub exit_code: Option<i32>,
    /// `completed`, `failed`, `declined`, `in_progress` (never finished).
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimedFile {
    pub path: String,
    /// `add`, `update`, `delete`.
    pub kind: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_output_tokens: u64,
}

/// The checklist after one round, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundVerify {
    pub clear: bool,
    /// "2 passed, 1 failed, 5 unknown, 0 not applicable".
    pub summary: String,
    /// `id: status` of every item that did not pass.
    pub not_passed: Vec<String>,
    /// The whole checklist and the findings of this round, as the fix prompt saw them.
    pub checklist: Vec<ChecklistItem>,
    pub findings: Vec<Finding>,
}

/// Tests and scripts compare rule ids as text (the JSON report's form).
impl PartialEq<&str> for Rule {
    fn eq(&self, other: &&str) -> bool {
        self.id() == *other
    }
}
