//! The prompt of the backend stage: `templates/backend-prompt.md` (the stack, where work
//! goes, the rules, the templates, the commands, the handover format) filled with facts read
//! from the repository — its rules files, the configured sections of the agents guide, the
//! schema document, the existing contracts and migrations — and the task.
//!
//! Paths, headings and the size budget come from `[prompt]` of `xtask.toml`. The budget holds
//! for the whole prompt: the repository context is cut to fit, in reverse order of
//! importance, and the prompt says what was cut; the task is cut only when it does not fit
//! beside the template and the rules files (which stay), with a note saying how much. A
//! context file that is missing is a warning, not an error: the agent can still read the
//! repository itself.

use std::{collections::BTreeMap, fmt::Write as _, path::Path, sync::OnceLock};

use regex::Regex;

use super::conventions::{self, Conventions};
use crate::{
    config::Config,
    gather::migrations::{read_all, History},
    repo::Changes,
    schema::{Command, QualName},
};

const TEMPLATE: &str = include_str!("../../../templates/backend-prompt.md");

/// The assembled prompt and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub text: String,
    /// What was cut or left out (also said in the prompt itself).
    pub notes: Vec<String>,
    /// Context files that were configured but missing or unreadable.
    pub warnings: Vec<String>,
}

/// One block of repository context, before the budget is applied.
struct Part {
    title: String,
    body: String,
}

impl Part {
    /// Its size in the prompt: `## title`, a blank line, the body, a blank line.
    fn size(&self) -> usize {
        self.title.len() + self.body.len() + 8
    }
}

pub fn build(repo: &Path, config: &Config, task: &str) -> Prompt {
    let mut warnings = Vec::new();
    let mut parts = Vec::new();
    let p = &config.prompt;

    // In order of importance: the first parts are the last to be cut.
    let mut rules_bytes = 0;
    for rules in &p.rules {
        match read(repo, rules, "prompt.rules") {
            Ok(text) => {
                let part = Part {
                    title: format!("Rules: `{rules}`"),
                    body: demote(&text),
                };
                rules_bytes += part.size();
                parts.push(part);
            }
            Err(w) => warnings.push(w),
        }
    }
    parts.push(Part {
        title: format!("Existing contracts (`{}`)", config.contracts.package),
        body: contracts(repo, &config.contracts.package),
    });
    // Every history read once: listed in the context, and judged for the conventions.
    let histories = read_all(repo, config, &Changes::all());
    parts.push(Part {
        title: "Existing migrations".into(),
        body: migrations(config, &histories),
    });
    if !p.agents_doc.is_empty() {
        match read(repo, &p.agents_doc, "prompt.agents_doc") {
            Ok(text) => {
                for wanted in &p.agents_sections {
                    match section(&text, wanted) {
                        Some(s) => parts.push(Part {
                            title: format!("From `{}`", p.agents_doc),
                            body: demote(&s),
                        }),
                        None => warnings.push(format!(
                            "{}: no section headed `{wanted}` (prompt.agents_sections in xtask.toml); the prompt goes without it",
                            p.agents_doc
                        )),
                    }
                }
            }
            Err(w) => warnings.push(w),
        }
    }
    if !p.schema_doc.is_empty() {
        match read(repo, &p.schema_doc, "prompt.schema_doc") {
            Ok(text) => parts.push(Part {
                title: format!("Schema: `{}`", p.schema_doc),
                body: demote(&text),
            }),
            Err(w) => warnings.push(w),
        }
    }

    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    let c = &config.commands;
    let line = |cmd: &crate::config::CommandLine, what: &str| {
        if cmd.is_empty() {
            format!("# (no {what} command configured)")
        } else {
            cmd.to_string()
        }
    };
    let tenancy = &config.tenancy;
    values.insert("routes_root", config.routes.root.clone());
    values.insert(
        "migrations_dir",
        config.migrations.dirs.first().cloned().unwrap_or_default(),
    );
    values.insert("contracts_dir", config.contracts.package.clone());
    values.insert("tenant_column", tenancy.column.clone());
    let route_roots: Vec<&str> = config.routes.all_roots().collect();
    values.insert("stack", super::stack::stack_line(repo, &route_roots));
    let conv = conventions::read(repo, config, &histories);
    for (name, text) in convention_values(repo, config, &conv) {
        values.insert(name, text);
    }
    values.insert("setup_command", line(&c.setup, "setup"));
    values.insert("lint_command", line(&c.lint, "lint"));
    values.insert("test_command", line(&c.test, "test"));
    // When something must be cut, the notes saying so need room too.
    const NOTES_ROOM: usize = 1024;
    let notes_room = NOTES_ROOM + warnings.iter().map(|w| w.len() + 24).sum::<usize>();
    let mut notes = Vec::new();

    // The task first: it must fit beside the template and the rules files (at most half the
    // budget is kept for those); a task that does not is cut at a line end, and says so.
    let task = task.trim_end();
    values.insert("task", String::new());
    let template = fill(TEMPLATE, &values).len();
    const TASK_MARKER_ROOM: usize = 160;
    let task_room = p.budget_bytes.saturating_sub(
        template + rules_bytes.min(p.budget_bytes / 2) + notes_room + TASK_MARKER_ROOM,
    );
    if task.len() <= task_room {
        values.insert("task", task.to_string());
    } else {
        let kept = cut_at_line(task, task_room);
        values.insert(
            "task",
            format!(
                "{}\n\n[... the task was cut here to fit the prompt budget: {} of {} bytes kept, {} cut ...]",
                kept.trim_end(),
                kept.len(),
                task.len(),
                task.len() - kept.len()
            ),
        );
        notes.push(format!(
            "the task cut to {} of {} bytes ({} bytes cut) to fit the prompt budget ({} bytes, prompt.budget_bytes); the rules are kept whole",
            kept.len(),
            task.len(),
            task.len() - kept.len(),
            p.budget_bytes
        ));
    }

    // The budget: whatever the template and the task leave is shared by the context parts,
    // in order; a part that does not fit whole is cut at a line boundary.
    let fixed = fill(TEMPLATE, &values).len();
    let wanted: usize = parts.iter().map(Part::size).sum();
    let mut left = if fixed + wanted + notes_room * usize::from(!notes.is_empty()) <= p.budget_bytes
    {
        wanted
    } else {
        p.budget_bytes.saturating_sub(fixed + notes_room)
    };
    let mut context = String::new();
    for part in parts {
        let block_head = format!("## {}\n\n", part.title);
        let whole = block_head.len() + part.body.len() + 2;
        if whole <= left {
            left -= whole;
            let _ = write!(context, "{block_head}{}\n\n", part.body.trim_end());
            continue;
        }
        // Room for the head and a marker line at least, else the part is left out.
        const MARKER_ROOM: usize = 120;
        if left > block_head.len() + MARKER_ROOM + 200 {
            let room = left - block_head.len() - MARKER_ROOM;
            let kept = cut_at_line(&part.body, room);
            let _ = write!(
                context,
                "{block_head}{}\n[... cut to fit the prompt budget: {} of {} bytes kept ...]\n\n",
                kept.trim_end(),
                kept.len(),
                part.body.len()
            );
            notes.push(format!(
                "{} cut to {} of {} bytes to fit the prompt budget ({} bytes, prompt.budget_bytes)",
                part.title,
                kept.len(),
                part.body.len(),
                p.budget_bytes
            ));
            left = 0;
        } else {
            notes.push(format!(
                "{} left out to fit the prompt budget ({} bytes, prompt.budget_bytes)",
                part.title, p.budget_bytes
            ));
        }
    }
    for w in &warnings {
        notes.push(format!("not available: {w}"));
    }
    if context.is_empty() {
        context = "(none: read the repository yourself)\n".into();
    }
    values.insert("context", context.trim_end().to_string());
    values.insert(
        "notes",
        if notes.is_empty() {
            String::new()
        } else {
            let mut s = String::from(
                "\n> Note: this prompt is incomplete. Read the repository for what is missing:\n",
            );
            for n in &notes {
                let _ = writeln!(s, "> - {n}");
            }
            s
        },
    );
    Prompt {
        text: fill(TEMPLATE, &values),
        notes,
        warnings,
    }
}

/// Replace each `{{name}}` of the template in ONE pass, so text from the repository or the
/// task that happens to contain `{{...}}` is never substituted again.
fn fill(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out =
        String::with_capacity(template.len() + values.values().map(String::len).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if values.contains_key(&after[..end]) => {
                out.push_str(&values[&after[..end]]);
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A document's headings pushed two levels down (`#` → `###`, at most `######`), so that
/// quoted files sit under the prompt's own `## ...` blocks instead of competing with them.
/// Lines inside fenced code blocks are left alone.
fn demote(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len() + 64);
    let mut in_fence = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        let level = line.chars().take_while(|&c| c == '#').count();
        if !in_fence && (1..=6).contains(&level) && line[level..].starts_with(' ') {
            out.push_str(&"#".repeat((level + 2).min(6)));
            out.push_str(&line[level..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The longest prefix of `s` that ends at a line end and is at most `max` bytes.
fn cut_at_line(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    match s[..end].rfind('\n') {
        Some(nl) => &s[..nl + 1],
        None => &s[..end],
    }
}

/// A context file, or the warning that names it.
fn read(repo: &Path, rel: &str, key: &str) -> Result<String, String> {
    match std::fs::read(repo.join(rel)) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "{rel} not found ({key} in xtask.toml); the prompt goes without it"
        )),
        Err(e) => Err(format!(
            "{rel}: cannot read it ({e}); the prompt goes without it"
        )),
    }
}

/// The section of a markdown document whose heading is `wanted`: a number (`8` matches
/// `## 8. Data Model`) or the heading's text (`Data Model`), case-insensitive. It runs to the
/// next heading of the same or a higher level.
pub fn section(doc: &str, wanted: &str) -> Option<String> {
    let wanted = wanted.trim().trim_end_matches('.').to_lowercase();
    let heading = |line: &str| -> Option<(usize, String)> {
        let level = line.chars().take_while(|&c| c == '#').count();
        let text = line[level..].strip_prefix(' ')?;
        (1..=6)
            .contains(&level)
            .then(|| (level, text.trim().to_lowercase()))
    };
    let matches = |text: &str| {
        let (number, title) = match text.split_once(' ') {
            Some((n, t))
                if n.trim_end_matches('.')
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.') =>
            {
                (n.trim_end_matches('.'), t.trim())
            }
            _ => ("", text),
        };
        text == wanted || (!number.is_empty() && number == wanted) || title == wanted
    };
    let mut lines = doc.lines();
    let mut out = String::new();
    let mut in_fence = false;
    let mut level = 0;
    for line in lines.by_ref() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if in_fence {
            continue;
        }
        if let Some((l, text)) = heading(line) {
            if matches(&text) {
                level = l;
                out.push_str(line);
                out.push('\n');
                break;
            }
        }
    }
    if level == 0 {
        return None;
    }
    in_fence = false;
    for line in lines {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence {
            if let Some((l, _)) = heading(line) {
                if l <= level {
                    break;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    Some(out.trim_end().to_string())
}

/// The contracts package: each TypeScript source file with the names it exports as values
/// (the schemas; `export type` aliases are left out).
fn contracts(repo: &Path, package: &str) -> String {
    static EXPORT: OnceLock<Regex> = OnceLock::new();
    let export = EXPORT.get_or_init(|| {
        Regex::new(r"(?m)^\s*export\s+(?:const|let|function)\s+([A-Za-z_$][\w$]*)").unwrap()
    });
    let root = repo.join(package);
    if !root.is_dir() {
        return format!("(no `{package}` directory yet)");
    }
    let mut lines = Vec::new();
    for entry in walkdir::WalkDir::new(&root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !(e.file_type().is_dir()
                && matches!(
                    name.as_ref(),
                    "node_modules" | "dist" | "test" | "tests" | "__tests__"
                ))
        })
        .filter_map(Result::ok)
    {
        let path = entry.path();
        let name = path.to_string_lossy();
        if !entry.file_type().is_file()
            || !(name.ends_with(".ts") || name.ends_with(".tsx"))
            || name.ends_with(".d.ts")
            || name.contains(".test.")
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let names: Vec<&str> = export
            .captures_iter(&text)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        let rel = crate::repo::to_slash(path.strip_prefix(repo).unwrap_or(path));
        if names.is_empty() {
            lines.push(format!("- `{rel}`"));
        } else {
            lines.push(format!("- `{rel}`: {}", names.join(", ")));
        }
    }
    if lines.is_empty() {
        format!("(no TypeScript files in `{package}`)")
    } else {
        format!(
            "Schemas (exported names) per file — reuse them, add new ones beside them:\n\n{}",
            lines.join("\n")
        )
    }
}

/// The migration files of each configured history, in replay order, with the tables each
/// creates as the schema model knows them at the end of the history (what a later file
/// dropped is gone, a renamed table has its new name; names folded as Postgres folds them).
fn migrations(config: &Config, histories: &[History]) -> String {
    let col = &config.tenancy.column;
    let mut s = String::new();
    for h in histories {
        if h.files.is_empty() {
            let _ = writeln!(s, "`{}/`: no migration yet.", h.dir);
            continue;
        }
        let _ = writeln!(
            s,
            "`{}/`, in the order they apply, with the tables each creates as they stand at the end (tenant column, RLS, policies):\n",
            h.dir
        );
        for (f, _) in &h.files {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            let tables: Vec<String> = h
                .schema
                .tables
                .values()
                .filter(|t| t.origin.path == f.path)
                .map(|t| {
                    let tenant = match t.column(col) {
                        Some(c) if c.not_null => format!("{col} NOT NULL"),
                        Some(_) => format!("{col} nullable"),
                        None => format!("no {col}"),
                    };
                    format!(
                        "{} ({tenant}, RLS {}, {} polic{})",
                        t.name.sql(),
                        if t.rls.on { "on" } else { "off" },
                        t.policies.len(),
                        if t.policies.len() == 1 { "y" } else { "ies" }
                    )
                })
                .collect();
            if tables.is_empty() {
                let _ = writeln!(s, "- `{name}`");
            } else {
                let _ = writeln!(s, "- `{name}`: creates {}", tables.join("; "));
            }
        }
        s.push('\n');
    }
    s.trim_end().to_string()
}

/// The template's values that say the repository's conventions: from what the repository's
/// own migrations and handlers do (`agent::conventions`), else from `xtask.toml`, else said
/// to be unknown with a file to open instead.
fn convention_values(repo: &Path, config: &Config, c: &Conventions) -> Vec<(&'static str, String)> {
    let col = &config.tenancy.column;
    let root = config.routes.root.trim_end_matches('/');
    let contracts = &config.contracts.package;
    let mut v = Vec::new();
    v.push((
        "contracts_import",
        c.contracts_import
            .as_ref()
            .map(|n| format!(" (imported as `{n}`)"))
            .unwrap_or_default(),
    ));
    // The app that holds the route root: `apps/api/src/app/api` → `apps/api/src/`.
    let app = root
        .strip_suffix("app/api")
        .or_else(|| root.strip_suffix("app"))
        .unwrap_or(root)
        .trim_end_matches('/');
    v.push((
        "app_dir",
        if app.is_empty() {
            "./".to_string()
        } else {
            format!("{app}/")
        },
    ));
    let mut extra = String::new();
    for (dir, what) in [
        (
            "apps/web/src/server",
            "server-side code of the web app (server actions, loaders), when the task needs it",
        ),
        ("packages/db", "database client code and generated types"),
    ] {
        if repo.join(dir).is_dir()
            && !root.starts_with(dir)
            && contracts.trim_end_matches('/') != dir
        {
            extra.push_str(&format!("- `{dir}/` — {what}\n"));
        }
    }
    v.push(("extra_dirs", extra));

    let tenant_table = c
        .migration
        .as_ref()
        .and_then(|m| m.references.clone())
        .or_else(|| c.root_table.clone());
    v.push((
        "tenant_table",
        match &tenant_table {
            Some(t) => format!("`{t}`"),
            None => format!(
                "the tenant table (`tenancy.root_table` is `{}`, which no migration creates yet)",
                config.tenancy.root_table
            ),
        },
    ));

    // The policy expression: the repository's own, else the configured tenant source.
    let from_config = config_policy(config, c);
    let expr = c
        .policy
        .as_ref()
        .or(c.check_call.as_ref())
        .map(|p| p.expr.clone())
        .or_else(|| from_config.as_ref().map(|(e, _)| e.clone()));
    let both = "— `using` and, for insert and update, `with check`";
    v.push((
        "policy_rule",
        match (&c.policy, &from_config) {
            (None, _) if c.check_call.is_some() => {
                let p = c.check_call.as_ref().expect("checked");
                format!(
                    "that keeps rows to the caller's tenant {both}. No policy of this repository is tenant-scoped as the checks read them; its policies call the check function as `{}` does: `{}` (policy `{}` on `{}`). Write yours so the checks can confirm them (`{col}` compared with a tenant source, or passed to a check function of `[tenancy]`), and say in the handover how they find the tenant.",
                    p.path, p.expr, p.policy, p.table
                )
            }
            (Some(p), _) => format!(
                "that keeps rows to the caller's tenant as this repository's policies do {both}: `{}` (policy `{}` on `{}` in `{}`).",
                p.expr, p.policy, p.table, p.path
            ),
            (None, Some((e, key))) => format!(
                "that compares `{col}` with the current tenant {both}: `{e}` (from `{key}` in xtask.toml; no policy of the migrations is tenant-scoped yet to show the repository's own form)."
            ),
            (None, None) => format!(
                "that keeps rows to the caller's tenant {both}. This repository's policy expression is not known: no policy of its migrations is tenant-scoped as the checks read them, and xtask.toml names no tenant source or check function (`[tenancy]`). {} and say in the handover how your policies find the tenant.",
                match &c.any_migration {
                    Some(p) => format!("Open `{p}` for the repository's style,"),
                    None => "There is no migration yet to follow:".to_string(),
                }
            ),
        },
    ));

    // The migration template: the key column, the tenant column's type and the timestamps
    // of the model table as its `create table` writes them; else said where to look.
    let shape = c.migration.as_ref().and_then(|m| m.shape.as_ref());
    // (code, comment): a comma follows every column but the last.
    let mut lines: Vec<(String, String)> = Vec::new();
    match (shape.and_then(|s| s.key.clone()), &c.migration, &c.any_migration) {
        (Some(key), _, _) => lines.push((key, String::new())),
        (None, Some(m), _) => lines.push((
            String::new(),
            format!("-- the key column: model on `{}`", m.path),
        )),
        (None, None, Some(p)) => lines.push((
            String::new(),
            format!("-- the key column and timestamps: model on `{p}`"),
        )),
        (None, None, None) => lines.push((
            String::new(),
            "-- the key column and timestamps: unknown (no migration yet to model on); say in the handover what you chose".into(),
        )),
    }
    let tenant_type = shape
        .and_then(|s| s.tenant_type.clone())
        .unwrap_or_else(|| "uuid".into());
    match &tenant_table {
        Some(t) => lines.push((
            format!("{col} {tenant_type} not null references {t} (id) on delete cascade"),
            String::new(),
        )),
        None => lines.push((
            format!("{col} {tenant_type} not null"),
            "-- references the tenant table: see rule 1".into(),
        )),
    }
    lines.push((String::new(), "-- columns of the task".into()));
    match (shape, &c.migration) {
        (Some(s), _) => {
            for t in &s.timestamps {
                lines.push((t.clone(), String::new()));
            }
        }
        (None, Some(m)) => lines.push((
            String::new(),
            format!("-- timestamps: model on `{}`", m.path),
        )),
        (None, None) => {}
    }
    // The task's columns go where the placeholder is: every column before it takes a comma.
    let last_code = lines.iter().rposition(|(code, _)| !code.is_empty());
    let placeholder = lines
        .iter()
        .position(|(_, comment)| comment == "-- columns of the task")
        .unwrap_or(0);
    let mut sql = String::from("create table public.<things> (\n");
    for (i, (code, comment)) in lines.iter().enumerate() {
        let comma = if !code.is_empty() && (i < placeholder || Some(i) != last_code) {
            ","
        } else {
            ""
        };
        let gap = if !code.is_empty() && !comment.is_empty() {
            " "
        } else {
            ""
        };
        sql.push_str(&format!("  {code}{comma}{gap}{comment}\n"));
    }
    sql.push_str(&format!(
        ");\ncreate index <things>_{col}_idx on public.<things> ({col});\nalter table public.<things> enable row level security;\n"
    ));
    let (head, policies) = match &c.migration {
        Some(m) => (
            format!(
                "A migration for a tenant-owned table, modelled on `{}`{} (`{}`, the newest table the checks find protected{}: open it for the repository's own style):",
                m.path,
                if m.policy_files.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and its policies in {}",
                        m.policy_files
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                m.table,
                if m.indexed {
                    ""
                } else {
                    "; it lacks the tenant index of rule 3, which the template adds"
                }
            ),
            m.policies.clone(),
        ),
        None => (
            format!(
                "A migration for a tenant-owned table{}:",
                match &c.any_migration {
                    Some(p) => format!(
                        " (no table of the migrations passes the checks yet to model it on; `{p}` is the newest migration)"
                    ),
                    None => String::new(),
                }
            ),
            match &expr {
                Some(e) => Command::EACH
                    .iter()
                    .map(|cmd| conventions::PolicyShape {
                        command: *cmd,
                        roles: vec!["authenticated".into()],
                        using: (*cmd != Command::Insert).then(|| e.clone()),
                        with_check: matches!(cmd, Command::Insert | Command::Update)
                            .then(|| e.clone()),
                    })
                    .collect(),
                None => Vec::new(),
            },
        ),
    };
    if policies.is_empty() {
        sql.push_str("-- a policy for select, insert, update and delete: see rule 2\n");
    } else if c.migration.is_none() && c.policy.is_none() && c.check_call.is_some() {
        sql.push_str(
            "-- the repository's own policy form (rule 2); the checks cannot confirm it is tenant-scoped\n",
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for p in &policies {
        let cmd = p.command.as_str();
        let n = seen.iter().filter(|c| **c == cmd).count();
        seen.push(cmd);
        let name = if n == 0 {
            format!("<things>_{cmd}")
        } else {
            format!("<things>_{cmd}_{}", n + 1)
        };
        let to = if p.roles.is_empty() || p.roles == ["public"] {
            String::new()
        } else {
            format!(" to {}", p.roles.join(", "))
        };
        let mut clauses = Vec::new();
        if let Some(u) = &p.using {
            clauses.push(format!("using ({u})"));
        }
        if let Some(w) = &p.with_check {
            clauses.push(format!("with check ({w})"));
        }
        sql.push_str(&format!(
            "create policy {name} on public.<things> for {cmd}{to}\n  {};\n",
            clauses.join(" ")
        ));
    }
    v.push((
        "migration_template",
        format!("{head}\n\n```sql\n{}```", sql),
    ));

    // The guard.
    let wrappers = &config.routes.auth_wrappers;
    let guards = &config.routes.guard_calls;
    let listed = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    v.push((
        "auth_rule",
        match &c.guard {
            Some(h) => {
                let at = format!("`{}` of `{}`", h.method, h.path);
                let first = if h.setup.is_empty() {
                    h.first.clone()
                } else {
                    format!("{}` then `{}", h.setup.join("` then `"), h.first)
                };
                match &h.calls {
                    Some((name, true)) => format!(
                        "Every exported route handler is wrapped in `{name}`, as this repository writes it: `{}` ({at}).",
                        first
                    ),
                    Some((name, false)) => format!(
                        "Every exported route handler calls the guard `{name}` before anything else, as this repository writes it: `{}` ({at}), and stops when it fails.",
                        first
                    ),
                    None => format!(
                        "Every exported route handler is guarded as {at} is; its first statement: `{}`.",
                        first
                    ),
                }
            }
            None => {
                let example = match &c.any_route {
                    Some(p) => format!(" (no handler passes the checks yet to show how; see `{p}`)"),
                    None => String::new(),
                };
                match (wrappers.is_empty(), guards.is_empty()) {
                    (false, true) => format!(
                        "Every exported route handler is wrapped in {}{example}.",
                        listed(wrappers)
                    ),
                    (true, false) => format!(
                        "Every exported route handler starts with a call of {}, which rejects a request without a user{example}.",
                        listed(guards)
                    ),
                    (false, false) => format!(
                        "Every exported route handler is wrapped in {} or starts with a call of {}{example}.",
                        listed(wrappers),
                        listed(guards)
                    ),
                    (true, true) => format!(
                        "This repository's auth guard is not known: xtask.toml names no `routes.auth_wrappers` or `routes.guard_calls`, and no handler passes the checks to show one{}. Guard every exported handler so that a request without a signed-in user is rejected before anything else, and name the guard you used in the handover.",
                        match &c.any_route {
                            Some(p) => format!(" (`{p}` is the newest handler: open it for the layout)"),
                            None => String::new(),
                        }
                    ),
                }
            }
        },
    ));
    v.push((
        "route_template",
        match &c.route {
            Some(h) => format!(
                "A route handler, modelled on `{}` (its `{}` at line {}: the newest handler the checks pass — guarded, {}, nothing found); as the repository writes it:\n\n```ts\n{}\n```",
                h.path,
                h.method,
                h.line,
                if h.validated {
                    format!("its input parsed with a schema from `{contracts}`")
                } else {
                    "reading no input".to_string()
                },
                h.excerpt
            ),
            None => match &c.any_route {
                Some(p) => format!(
                    "A route handler: no handler of this repository passes the checks yet (guarded, input parsed with a schema from `{contracts}`, nothing found), so none is shown as a template. Open `{p}` for the layout, and follow rules 5–8."
                ),
                None => format!(
                    "A route handler: there is none under `{root}/` yet, so none is shown as a template. Follow rules 5–8 and Next.js's `route.ts` convention."
                ),
            },
        },
    ));

    // The limiter.
    let limiters = &config.routes.rate_limiters;
    v.push((
        "limiter_rule",
        match (limiters.is_empty(), &c.limiter) {
            (false, Some(h)) => format!(
                "Public routes (no auth) call the rate limiter `{}` before anything else; this repository calls it as `{}` does in its `{}`: `{}`.",
                h.calls.as_ref().map_or(limiters[0].as_str(), |(n, _)| n.as_str()),
                h.path,
                h.method,
                h.first
            ),
            (false, None) => format!(
                "Public routes (no auth) call the rate limiter {} before anything else.",
                listed(limiters)
            ),
            (true, _) => "Public routes (no auth) need a rate limiter, and this repository's is not known (`routes.rate_limiters` in xtask.toml is empty): do not add a public route without asking; say so in the handover.".to_string(),
        },
    ));
    v
}

/// The policy expression `xtask.toml` implies, when the migrations show none: the first
/// configured source function, else check function, else the membership sub-select when the
/// migrations create that table; with the key it comes from.
fn config_policy(config: &Config, c: &Conventions) -> Option<(String, &'static str)> {
    let t = &config.tenancy;
    let col = &t.column;
    if let Some(f) = t.source_functions.first() {
        let f = if f.contains('.') {
            f.clone()
        } else {
            format!("public.{f}")
        };
        return Some((format!("{col} = {f}()"), "tenancy.source_functions"));
    }
    if let Some(f) = t.check_functions.first() {
        return Some((format!("{f}({col})"), "tenancy.check_functions"));
    }
    if c.membership_exists {
        let user = t
            .user_functions
            .first()
            .map_or("auth.uid".to_string(), |u| u.clone());
        return Some((
            format!(
                "{col} in (select {} from {} where {} = {user}())",
                t.membership_tenant_column,
                QualName::from_config(&t.membership_table).sql(),
                t.membership_user_column
            ),
            "tenancy.membership_table",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = "# Guide\n\n## 7. Testing\n\nTests.\n\n## 8. Data Model\n\nTables.\n\n### Adding a table\n\nSteps.\n\n```sh\n## not a heading\n```\n\n## 9. API Conventions\n\nConventions.\n\n## 10. API Endpoints\n\nEndpoints.\n";

    #[test]
    fn sections_are_found_by_number_or_title() {
        let s8 = section(GUIDE, "8").unwrap();
        assert!(s8.starts_with("## 8. Data Model"), "{s8}");
        assert!(s8.contains("### Adding a table"), "subsections stay: {s8}");
        assert!(
            s8.contains("## not a heading"),
            "fenced lines are not headings: {s8}"
        );
        assert!(!s8.contains("Conventions"), "{s8}");
        assert_eq!(section(GUIDE, "data model").unwrap(), s8);
        assert!(section(GUIDE, "10").unwrap().ends_with("Endpoints."));
        assert!(section(GUIDE, "1").is_none(), "`1` must not match `10.`");
        assert!(section(GUIDE, "11").is_none());
    }

    #[test]
    fn fill_is_one_pass() {
        let mut v = BTreeMap::new();
        v.insert("task", "use {{context}} literally".to_string());
        v.insert("context", "CTX".to_string());
        assert_eq!(
            fill("{{context}} / {{task}} / {{unknown}}", &v),
            "CTX / use {{context}} literally / {{unknown}}"
        );
    }

    #[test]
    fn cutting_keeps_whole_lines() {
        assert_eq!(cut_at_line("ab\ncd\nef\n", 7), "ab\ncd\n");
        assert_eq!(cut_at_line("ab\n", 10), "ab\n");
        assert_eq!(cut_at_line("ééé", 3), "é");
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-prompt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let w = |rel: &str, text: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("CLAUDE.md", "# Rules\n\nAlways tenant_id.\n");
        w("docs/agents.md", GUIDE);
        w("docs/db/schema.md", &"| column | type |\n".repeat(200));
        w(
            "packages/contracts/src/invoices.ts",
            "export const Invoice = z.object({});\nexport type Invoice = z.infer<typeof Invoice>;\nexport const CreateInvoiceInput = Invoice.strict();\n",
        );
        w(
            "packages/contracts/test/x.test.ts",
            "export const NotASchema = 1;\n",
        );
        w(
            "supabase/migrations/20250101000000_init.sql",
            "-- create table public.commented_out ();\ncreate table public.tenants (id uuid);\nCREATE TABLE IF NOT EXISTS \"Audit\" ();\n",
        );
        w(
            "supabase/migrations/20250102000000_fn.sql",
            "create function f() returns int as $$ select 1 $$ language sql;\n",
        );
        dir
    }

    #[test]
    fn the_prompt_carries_the_repository_facts_and_the_task() {
        let dir = fixture("facts");
        let p = build(
            &dir,
            &Config::default(),
            "Add invoices. Use `{{task}}` and $(rm -rf ~).",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert!(p.notes.is_empty(), "{:?}", p.notes);
        let t = &p.text;
        assert!(t.contains("Always tenant_id."), "rules");
        assert!(
            t.contains("\n#### 8. Data Model\n")
                && t.contains("\n#### 9. API Conventions\n")
                && t.contains("\n#### 10. API Endpoints\n"),
            "sections, demoted under the prompt's own headings: {t}"
        );
        assert!(
            t.contains("\n### Rules\n"),
            "CLAUDE.md's `# Rules`, demoted"
        );
        assert!(
            t.contains("\n## not a heading\n"),
            "fenced lines stay as they are"
        );
        assert!(!t.contains("## 7. Testing"), "only the configured sections");
        assert!(
            t.contains("`packages/contracts/src/invoices.ts`: Invoice, CreateInvoiceInput"),
            "{t}"
        );
        assert!(!t.contains("NotASchema"), "tests are not contracts");
        assert!(
            t.contains("`20250101000000_init.sql`: creates public.\"Audit\" (no tenant_id, RLS off, 0 policies); public.tenants (no tenant_id, RLS off, 0 policies)"),
            "{t}"
        );
        assert!(!t.contains("commented_out"));
        assert!(t.contains("- `20250102000000_fn.sql`\n"));
        assert!(
            t.contains("tenant_id = public.get_current_tenant_id()"),
            "config fills the rules"
        );
        assert!(t.contains("pnpm --filter api lint") && t.contains("pnpm test:api"));
        assert!(
            t.ends_with("Add invoices. Use `{{task}}` and $(rm -rf ~).\n"),
            "task last, verbatim"
        );
        let head = &t[..t.find("# The work item").unwrap()];
        assert!(!head.contains("{{"), "every placeholder filled");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn missing_files_are_warnings_that_name_them() {
        let dir = fixture("missing");
        std::fs::remove_file(dir.join("docs/db/schema.md")).unwrap();
        let mut config = Config::default();
        config.prompt.agents_sections.push("Deployment".into());
        let p = build(&dir, &config, "task");
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("no section headed `Deployment`"));
        assert!(
            p.warnings[1].contains("docs/db/schema.md not found"),
            "{:?}",
            p.warnings
        );
        assert!(p
            .text
            .contains("not available: docs/db/schema.md not found"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_budget_cuts_context_first_and_says_what() {
        let dir = fixture("budget");
        let mut config = Config::default();
        let whole = build(&dir, &config, "task").text.len();
        config.prompt.budget_bytes = whole - 2000;
        let p = build(&dir, &config, "task");
        assert!(
            p.text.len() <= config.prompt.budget_bytes,
            "{} > {}",
            p.text.len(),
            config.prompt.budget_bytes
        );
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
        assert!(
            p.notes[0].starts_with("Schema: `docs/db/schema.md` cut to"),
            "{:?}",
            p.notes
        );
        assert!(p.text.contains("[... cut to fit the prompt budget:"));
        assert!(p.text.contains("> Note: this prompt is incomplete"));

        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_huge_task_is_cut_to_the_budget_and_the_rules_stay() {
        let dir = fixture("huge-task");
        let config = Config::default();
        let budget = config.prompt.budget_bytes;
        // 5 MB of task, in lines.
        let task = "Add the invoices table with its policies and routes.\n".repeat(100_000);
        let p = build(&dir, &config, &task);
        assert!(
            p.text.len() <= budget,
            "{} bytes > the budget of {budget}",
            p.text.len()
        );
        assert!(p.text.contains("Always tenant_id."), "the rules stay");
        assert!(
            !p.notes.iter().any(|n| n.starts_with("Rules:")),
            "{:?}",
            p.notes
        );
        let note = p
            .notes
            .iter()
            .find(|n| n.starts_with("the task cut to "))
            .unwrap_or_else(|| panic!("no note: {:?}", p.notes));
        assert!(
            note.contains(&format!("of {} bytes", task.trim_end().len())),
            "{note}"
        );
        assert!(p
            .text
            .contains("[... the task was cut here to fit the prompt budget:"));
        assert!(
            p.text.contains("> - the task cut to"),
            "said in the prompt too"
        );
        assert!(
            p.text
                .contains("Add the invoices table with its policies and routes.\n"),
            "the task's start is kept"
        );
        // A task that fits is never cut.
        let p = build(&dir, &config, "Add invoices.");
        assert!(p.notes.is_empty(), "{:?}", p.notes);
        let _ = std::fs::remove_dir_all(dir);
    }
}
