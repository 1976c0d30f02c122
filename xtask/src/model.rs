//! The one evidence and findings model. Gatherers fill it, `checklist` judges it, the
//! renderers in `report/` print it. Field names of the serialized form are the JSON report
//! of the contract (version 1): they may gain fields, never be renamed.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

/// One finding of one rule (`rule` is a contract rule id such as `rls-not-enabled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub path: Option<String>,
    pub line: Option<u32>,
    pub table: Option<String>,
    pub message: String,
}

impl Finding {
    pub fn new(rule: &'static str, severity: Severity, message: impl Into<String>) -> Finding {
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
    pub source: Source,
    /// Why the verdict is what it is (exemption reason, what could not be followed, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
