//! The "Backend → Code Review" handover (section 6 of the stage templates), filled from
//! evidence. The layout lives in `templates/handover.md`; this fills its `{{fields}}`.
//!
//! It is written for a reviewer, and it is what the GitHub job summary shows: the findings
//! are arranged as the text view arranges them ([`super::group`]: causes shared by many
//! listed once, the rest by table, handler and file), every long list is cut with "… and N
//! more" naming where the full list is, and the whole stays under [`MAX_BYTES`].

use crate::rules::catalog::Rule;
use std::{fmt::Write as _, io};

use super::{
    escape::{code, code_cell, markdown as md},
    group::{self, Subject},
    Report,
};
use crate::model::{AgentReport, AgentRound, ChangeStatus, LiveOutcome, Severity, Status, Verdict};

const TEMPLATE: &str = include_str!("../../../templates/handover.md");

/// The handover's ceiling: GitHub takes 1 MiB per step summary, a reviewer reads far less.
/// The lists below are cut long before; past this the text itself is cut, with a note.
pub const MAX_BYTES: usize = 60 * 1024;
/// Changed files, tables, security notes shown before "… and N more"; routes (a line each
/// and one per handler) fewer.
const ROWS_SHOWN: usize = 60;
const ROUTES_SHOWN: usize = 25;
/// Groups of findings (tables, handlers, files) shown, and findings shown in each; the
/// groups stop earlier when they would take more than the bytes the other sections leave
/// under [`MAX_BYTES`] (at least [`FINDINGS_MIN_BYTES`], at most [`FINDINGS_MAX_BYTES`]).
const GROUPS_SHOWN: usize = 40;
const FINDINGS_MIN_BYTES: usize = 12 * 1024;
const FINDINGS_MAX_BYTES: usize = 40 * 1024;
const PER_GROUP: usize = 8;
/// Tables or places named under a shared cause.
const NAMES_SHOWN: usize = 10;
/// A finding's message longer than this is cut (the JSON report has it whole).
const MESSAGE_CHARS: usize = 800;

/// Where the full list is, for "… and N more, see …" (markdown, escaped).
fn full_list(r: &Report) -> String {
    let mut s = String::from("the JSON report / SARIF");
    match &r.full_report {
        Some(path) => {
            let _ = write!(s, " ({})", code(path));
        }
        None => s.push_str(" (`cargo xtask verify --format json` or `--format sarif`)"),
    }
    if let Some(url) = r.log_url.as_deref().filter(|u| safe_url(u)) {
        let _ = write!(
            s,
            ", or every finding as an annotation in [this run's log]({url})"
        );
    }
    s
}

/// A URL put in a link as it is: only the characters of an http(s) address, nothing that
/// could end the link or start markup.
fn safe_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://"))
        && u.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, ':' | '/' | '.' | '-' | '_' | '?' | '=' | '%' | '#')
        })
}

fn more(r: &Report, n: usize, what: &str) -> String {
    format!("- … and {n} more {what}, see {}\n", full_list(r))
}

/// A section cut to `budget` bytes at a line end (whatever its row caps left), with a line
/// saying how many lines are not shown and where they are.
fn fit(r: &Report, section: String, budget: usize) -> String {
    if section.len() <= budget {
        return section;
    }
    let mut end = budget;
    while !section.is_char_boundary(end) {
        end -= 1;
    }
    let end = section[..end].rfind('\n').map_or(0, |i| i + 1);
    let hidden = section[end..]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    format!("{}\n{}", &section[..end], more(r, hidden, "lines"))
}

/// A message for the handover: cut to [`MESSAGE_CHARS`], then escaped.
fn message(m: &str) -> String {
    match m.char_indices().nth(MESSAGE_CHARS) {
        Some((i, _)) => format!("{} … (cut)", md(&m[..i])),
        None => md(m),
    }
}

pub fn render(r: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    let mut fields: Vec<(&str, String)> = vec![
        ("repo", code(&r.ev.repo)),
        ("base", base(r)),
        ("result", result(r)),
        ("checklist", checklist(r)),
        ("changed_files", fit(r, changed_files(r), 6 * 1024)),
        ("migration_impact", fit(r, migration_impact(r), 6 * 1024)),
        ("tenant_isolation", fit(r, tenant_isolation(r), 10 * 1024)),
        ("route_notes", fit(r, route_notes(r), 10 * 1024)),
        ("commands", commands(r)),
        ("agent", agent(r)),
        ("open_questions", open_questions(r)),
        ("next_stage", next_stage(r)),
    ];
    // The findings get what the rest leaves of the ceiling (within bounds).
    let rest = TEMPLATE.len() + fields.iter().map(|(_, v)| v.len()).sum::<usize>();
    let budget = MAX_BYTES
        .saturating_sub(rest + 2 * 1024)
        .clamp(FINDINGS_MIN_BYTES, FINDINGS_MAX_BYTES);
    fields.insert(8, ("findings", findings(r, budget)));
    let mut text = TEMPLATE.to_string();
    for (key, value) in fields {
        text = text.replace(&format!("{{{{{key}}}}}"), value.trim_end());
    }
    out.write_all(cap(text, &full_list(r)).as_bytes())
}

/// `text` within [`MAX_BYTES`]: cut at a line end, a code fence left open closed, and a
/// note saying so and where the rest is.
pub fn cap(text: String, rest: &str) -> String {
    if text.len() <= MAX_BYTES {
        return text;
    }
    let note = format!(
        "\n_The handover was cut here: it is {} KB, and a reviewer's summary is kept under {} KB. \
         Everything is in {rest}._\n",
        text.len() / 1024,
        MAX_BYTES / 1024
    );
    let mut end = MAX_BYTES.saturating_sub(note.len() + 64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map_or(0, |i| i + 1);
    let head = &text[..end];
    let mut fence: Option<usize> = None;
    for line in head.lines() {
        let l = line.trim_start();
        let run = l.chars().take_while(|&c| c == '`').count();
        match fence {
            None if run >= 3 => fence = Some(run),
            Some(open) if run >= open && l.trim_end().len() == run => fence = None,
            _ => {}
        }
    }
    let mut out = head.to_string();
    if let Some(open) = fence {
        out.push_str(&"`".repeat(open));
        out.push('\n');
    }
    out.push_str(&note);
    out
}

fn base(r: &Report) -> String {
    match (&r.ev.changes.base, r.ev.changes.all) {
        (_, true) => "every migration and route file (`--all`)".into(),
        (Some(b), false) => code(b.get(..12).unwrap_or(b)),
        (None, false) => "nothing (no commit yet: every file is new)".into(),
    }
}

fn counts(r: &Report) -> (usize, usize, usize, usize) {
    let n = |s| r.checklist.iter().filter(|i| i.status == s).count();
    (
        n(Status::Pass),
        n(Status::Fail),
        n(Status::Unknown),
        n(Status::NotApplicable),
    )
}

fn result(r: &Report) -> String {
    let (pass, fail, unknown, na) = counts(r);
    let verdict = if fail > 0 {
        "**changes needed**"
    } else if unknown > 0 {
        "**not proven**"
    } else {
        "**ready for review**"
    };
    format!("{verdict} ({pass} passed, {fail} failed, {unknown} unknown, {na} not applicable)")
}

fn checklist(r: &Report) -> String {
    let mut s = String::new();
    for item in &r.checklist {
        let line = match item.status {
            Status::Pass => format!("- [x] {} — {}", item.label, md(&item.evidence)),
            Status::Fail => format!("- [ ] {} — **failed:** {}", item.label, md(&item.evidence)),
            Status::Unknown => {
                format!("- [ ] {} — **unknown:** {}", item.label, md(&item.evidence))
            }
            Status::NotApplicable => {
                format!(
                    "- [x] ~~{}~~ — not applicable: {}",
                    item.label,
                    md(&item.evidence)
                )
            }
        };
        let _ = writeln!(s, "{line} `{}`", item.id);
    }
    s
}

fn status_word(s: ChangeStatus) -> &'static str {
    match s {
        ChangeStatus::Added => "added",
        ChangeStatus::Modified => "modified",
        ChangeStatus::Deleted => "deleted",
        ChangeStatus::Renamed => "renamed",
    }
}

fn changed_files(r: &Report) -> String {
    let ev = r.ev;
    let mut s = String::new();
    if ev.changes.all {
        s.push_str("Every file was treated as new (`--all`).\n");
        let migrations = ev.migrations.iter().flat_map(|m| &m.new_files);
        let routes = ev
            .routes
            .iter()
            .flat_map(|r| r.routes.iter().map(|x| &x.path));
        let all: Vec<String> = migrations
            .map(|f| format!("- {} (migration)", code(f)))
            .chain(routes.map(|p| format!("- {} (route)", code(p))))
            .collect();
        for line in all.iter().take(ROWS_SHOWN) {
            let _ = writeln!(s, "{line}");
        }
        if all.len() > ROWS_SHOWN {
            s.push_str(&more(r, all.len() - ROWS_SHOWN, "files"));
        }
        return s;
    }
    if ev.changes.files.is_empty() {
        return "No file changed.".into();
    }
    // Under backend-stage, the files the user had changed before the agent started.
    let users: Vec<&str> = ev
        .agent
        .iter()
        .flat_map(|a| a.preexisting.iter().map(|p| p.path.as_str()))
        .collect();
    for f in ev.changes.files.iter().take(ROWS_SHOWN) {
        let mut line = format!("- {} ({})", code(&f.path), status_word(f.status));
        if users.contains(&f.path.as_str()) {
            line.push_str(" — already changed before the agent ran (the user's)");
        }
        if let Some(from) = &f.from {
            let _ = write!(line, " from {}", code(from));
        }
        if let Some(t) = &f.target {
            let _ = write!(line, " → {}", code(t));
        }
        let _ = writeln!(s, "{line}");
    }
    if ev.changes.files.len() > ROWS_SHOWN {
        s.push_str(&more(r, ev.changes.files.len() - ROWS_SHOWN, "files"));
    }
    s
}

fn migration_impact(r: &Report) -> String {
    match &r.ev.migrations {
        Err(why) => format!("_Not measured: {}._", md(why)),
        Ok(m) if m.impact.is_empty() => "No schema change.".into(),
        Ok(m) => {
            let mut s: String = m
                .impact
                .iter()
                .take(ROWS_SHOWN)
                .map(|l| format!("- {}\n", md(l)))
                .collect();
            if m.impact.len() > ROWS_SHOWN {
                s.push_str(&more(r, m.impact.len() - ROWS_SHOWN, "changes"));
            }
            s
        }
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Protected => "protected",
        Verdict::Unprotected => "**unprotected**",
        Verdict::Unverified => "**unverified**",
        Verdict::Exempt => "exempt",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "**no**"
    }
}

fn tenant_isolation(r: &Report) -> String {
    let m = match &r.ev.migrations {
        Err(why) => return format!("_Not measured: {}._", md(why)),
        Ok(m) => m,
    };
    let tables: Vec<_> = m.tables.iter().filter(|t| t.new).collect();
    if tables.is_empty() {
        return "No new or changed tables.".into();
    }
    let mut s = String::from(
        "| table | verdict | tenant column (NOT NULL) | RLS | policies (tenant-scoped) | tenant index | source |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let hidden = tables.len().saturating_sub(ROWS_SHOWN);
    for t in tables.into_iter().take(ROWS_SHOWN) {
        let scoped = t.policies.iter().filter(|p| p.tenant_scoped).count();
        let _ = writeln!(
            s,
            "| {} | {} | {} ({}) | {} | {} ({scoped}) | {} | {} |",
            code_cell(&t.name),
            verdict_word(t.verdict),
            yes_no(t.tenant_column),
            yes_no(t.tenant_not_null),
            yes_no(t.rls_enabled),
            t.policies.len(),
            yes_no(t.tenant_index),
            t.source.word()
        );
        if let Some(reason) = &t.reason {
            let _ = writeln!(s, "|  | _{}_ | | | | | |", md(reason));
        }
        if !t.denied.is_empty() {
            let _ = writeln!(
                s,
                "|  | _{}: denied to clients by RLS (no permissive policy; service role only)_ | | | | | |",
                t.denied.join(", ")
            );
        }
    }
    if hidden > 0 {
        s.push('\n');
        s.push_str(&more(r, hidden, "tables"));
    }
    match &m.live {
        LiveOutcome::Applied(how) => {
            let _ = writeln!(s, "\nChecked on a live Postgres: {}.", md(how));
        }
        LiveOutcome::Failed(why) => {
            let _ = writeln!(s, "\nLive check failed: {}.", md(why));
        }
        LiveOutcome::Unavailable(why) => {
            let _ = writeln!(s, "\nNot proved on a live Postgres: {}.", md(why));
        }
        LiveOutcome::NotRun => {}
    }
    for note in m.live_notes.iter().take(ROWS_SHOWN) {
        let _ = writeln!(s, "- {}", message(note));
    }
    if m.live_notes.len() > ROWS_SHOWN {
        s.push_str(&more(r, m.live_notes.len() - ROWS_SHOWN, "notes"));
    }
    s
}

fn route_notes(r: &Report) -> String {
    let routes = match &r.ev.routes {
        Err(why) => return format!("_Not measured: {}._", md(why)),
        Ok(routes) => routes,
    };
    let mut s = String::new();
    if routes.routes.is_empty() {
        s.push_str("No new or changed routes.\n");
    }
    for route in routes.routes.iter().take(ROUTES_SHOWN) {
        let mut head = format!("- {}", code(&route.path));
        if route.public {
            let limiter = match route.rate_limited {
                Some(true) => "rate limited",
                Some(false) => "**no rate limiter**",
                None => "rate limit not verified",
            };
            let _ = write!(head, " — public, {limiter}");
        }
        if let Some(reason) = &route.exempt {
            let _ = write!(head, " — exempt from auth: {}", md(reason));
        }
        let _ = writeln!(s, "{head}");
        for h in &route.handlers {
            let _ = writeln!(
                s,
                "  - {} (line {}): auth {}, input {}{}",
                code(&h.method),
                h.line,
                md(&h.auth),
                md(&h.validation.replace('_', " ")),
                if h.note.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", md(&h.note))
                }
            );
        }
    }
    if routes.routes.len() > ROUTES_SHOWN {
        s.push_str(&more(r, routes.routes.len() - ROUTES_SHOWN, "routes"));
    }
    if !routes.new_schemas.is_empty() {
        s.push_str("\nNew schemas in the contracts package:\n");
        for schema in &routes.new_schemas {
            let _ = writeln!(s, "- {}", code(schema));
        }
    }
    let security: Vec<_> = r
        .findings
        .iter()
        .filter(|f| {
            matches!(
                f.rule,
                Rule::HardcodedSecret
                    | Rule::RawSqlInterpolation
                    | Rule::ChecksWeakened
                    | Rule::AppliedMigrationEdited
                    | Rule::Suppressed
            )
        })
        .collect();
    if !security.is_empty() {
        s.push_str("\nSecurity:\n");
        for f in security.iter().take(ROWS_SHOWN) {
            let _ = writeln!(
                s,
                "- {} `{}`: {}",
                md(&f.location().unwrap_or_default()),
                f.rule,
                message(&f.message)
            );
        }
        if security.len() > ROWS_SHOWN {
            s.push_str(&more(r, security.len() - ROWS_SHOWN, "notes"));
        }
    }
    s
}

fn findings(r: &Report, budget: usize) -> String {
    if r.findings.is_empty() {
        return "None.".into();
    }
    let count = |sev| r.findings.iter().filter(|f| f.severity == sev).count();
    let arranged = group::arrange(r);
    let mut s = format!(
        "{} finding(s): {} error(s), {} warning(s), {} note(s).",
        r.findings.len(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    if !arranged.shared.is_empty() {
        let _ = write!(
            s,
            " A cause shared by {} or more is listed once with what it applies to; the rest are grouped by table, handler and file, most severe first.",
            group::FOLD_AT
        );
    }
    s.push('\n');
    if !arranged.shared.is_empty() {
        s.push_str("\n**Shared causes**\n\n");
        for (i, c) in arranged.shared.iter().enumerate() {
            let _ = writeln!(
                s,
                "{}. **{}** `{}` — {}: {}",
                i + 1,
                c.severity.as_str(),
                c.rule,
                md(&c.count),
                message(&c.message)
            );
            let mut names: Vec<String> = c
                .subjects
                .iter()
                .take(NAMES_SHOWN)
                .map(|n| code(n))
                .collect();
            if c.subjects.len() > NAMES_SHOWN {
                names.push(format!(
                    "… and {} more, see {}",
                    c.subjects.len() - NAMES_SHOWN,
                    full_list(r)
                ));
            }
            let _ = writeln!(s, "   {}", names.join(", "));
        }
    }
    let mut shown = 0;
    for g in arranged.groups.iter().take(GROUPS_SHOWN) {
        let mut part = String::new();
        let head = match &g.subject {
            Subject::Table(name) => match g.table {
                Some(t) => format!(
                    "Table {} — {} ({})",
                    code(name),
                    super::text::verdict_word(t.verdict),
                    t.source.word()
                ),
                None => format!("Table {}", code(name)),
            },
            Subject::Handler { path, method, line } => {
                format!("Handler {} in {} (line {line})", code(method), code(path))
            }
            Subject::File(path) => format!("File {}", code(path)),
            Subject::General => "Not tied to a file".into(),
        };
        let also = if g.also.is_empty() {
            String::new()
        } else {
            let refs: Vec<String> = g.also.iter().map(|i| (i + 1).to_string()).collect();
            format!(" · also shared cause {}", refs.join(", "))
        };
        let _ = writeln!(part, "\n**{head}**{also}\n");
        for f in g.findings.iter().take(PER_GROUP) {
            let at = f
                .location()
                .map(|l| format!("{} ", code(&l)))
                .unwrap_or_default();
            let _ = writeln!(
                part,
                "- {at}**{}** `{}`: {}",
                f.severity.as_str(),
                f.rule,
                message(&f.message)
            );
        }
        if g.findings.len() > PER_GROUP {
            part.push_str(&more(r, g.findings.len() - PER_GROUP, "here"));
        }
        if shown > 0 && s.len() + part.len() > budget {
            break;
        }
        s.push_str(&part);
        shown += 1;
    }
    if arranged.groups.len() > shown {
        let rest = &arranged.groups[shown..];
        let n: usize = rest.iter().map(|g| g.findings.len()).sum();
        let _ = write!(
            s,
            "\n_… and {} more table(s), handler(s) and file(s) with {n} finding(s), see {}._\n",
            rest.len(),
            full_list(r)
        );
    }
    s
}

fn commands(r: &Report) -> String {
    let ev = r.ev;
    let all = ev.other_commands.iter().chain(
        [&ev.lint, &ev.tests]
            .into_iter()
            .filter_map(|c| c.as_ref().ok()),
    );
    let mut s = String::new();
    for c in all {
        let exit = c
            .exit_code
            .map(|e| format!("exit {e}"))
            .unwrap_or_else(|| "did not run".into());
        let _ = writeln!(
            s,
            "- {} — {exit}, {:.1}s — {}",
            code(&c.argv.join(" ")),
            c.duration_ms as f64 / 1000.0,
            md(&c.summary)
        );
    }
    for (id, c) in [("lint", &ev.lint), ("tests", &ev.tests)] {
        if let Err(why) = c {
            let _ = writeln!(s, "- {id}: {}", md(why));
        }
    }
    s
}

fn agent(r: &Report) -> String {
    match &r.ev.agent {
        None => String::new(),
        Some(a) => format!("\n{}", agent_section(a)),
    }
}

/// The agent's side of the story, every round: its final message verbatim, the commands it
/// ran, the files it reported set against the files that changed on disk, token usage, and
/// what `verify` said after the round. Also printed alone by `backend-stage --no-verify`.
pub fn agent_section(a: &AgentReport) -> String {
    let mut s = String::from("### Agent run\n\n");
    let _ = writeln!(
        s,
        "{}{}, {} round(s); prompt {} bytes. Prompts, event logs and final messages are kept in {}.",
        code(&a.agent),
        a.thread_id
            .as_deref()
            .map(|t| format!(", thread {}", code(t)))
            .unwrap_or_default(),
        a.rounds.len(),
        a.prompt_bytes,
        code(&a.run_dir)
    );
    if let Some(why) = &a.stop_reason {
        let _ = writeln!(s, "Stopped: {}.", md(why));
    }
    if !a.prompt_notes.is_empty() {
        s.push_str("\nThe prompt was incomplete:\n");
        for n in &a.prompt_notes {
            let _ = writeln!(s, "- {}", md(n));
        }
    }
    if !a.preexisting.is_empty() {
        s.push_str("\nChanged before the run (the user's, not the agent's):\n");
        for p in &a.preexisting {
            let _ = writeln!(s, "- {} ({})", code(&p.path), code(p.git_status.trim()));
        }
        if let Some(b) = &a.preexisting_backup {
            let _ = writeln!(
                s,
                "\nCopied before the run to {}; nothing was reverted.",
                code(b)
            );
        }
    }
    for round in &a.rounds {
        s.push('\n');
        s.push_str(&agent_round(round));
    }
    s
}

fn agent_round(r: &AgentRound) -> String {
    let mut s = String::new();
    let what = if r.round == 1 {
        "the task".to_string()
    } else {
        format!("fix round {}", r.round - 1)
    };
    let _ = writeln!(
        s,
        "#### Round {} ({what}) — {}, {:.1}s",
        r.round,
        md(&r.outcome),
        r.duration_ms as f64 / 1000.0
    );
    if let Some(u) = &r.usage {
        let _ = writeln!(
            s,
            "\nTokens (thread total): {} input ({} cached), {} output ({} reasoning).",
            u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_output_tokens
        );
    }
    match &r.final_message {
        Some(m) => {
            // Verbatim but for control characters (the view goes to terminals too).
            let m = m
                .lines()
                .map(|l| super::escape::terminal(l).into_owned())
                .collect::<Vec<_>>()
                .join("\n");
            let m = m.as_str();
            let fence = "`".repeat(crate::agent::fix::longest_backtick_run(m).max(3) + 1);
            let _ = writeln!(
                s,
                "\nFinal message (verbatim):\n\n{fence}text\n{m}\n{fence}"
            );
        }
        None => s.push_str("\nNo final message.\n"),
    }
    if r.commands.is_empty() {
        s.push_str("\nCommands it ran: none.\n");
    } else {
        s.push_str("\nCommands it ran:\n");
        for c in &r.commands {
            let exit = match c.exit_code {
                Some(e) => format!("exit {e}"),
                None => md(&c.status.replace('_', " ")),
            };
            let _ = writeln!(s, "- {} — {exit}", code(&c.command));
        }
    }
    let list = |paths: &[String]| paths.iter().map(|p| code(p)).collect::<Vec<_>>().join(", ");
    if r.claimed_files.is_empty() {
        s.push_str("\nFiles it reported changing: none.\n");
    } else {
        let claimed: Vec<String> = r
            .claimed_files
            .iter()
            .map(|c| format!("{} ({})", code(&c.path), md(&c.kind)))
            .collect();
        let _ = writeln!(s, "\nFiles it reported changing: {}.", claimed.join(", "));
    }
    if r.changed_files.is_empty() {
        s.push_str("Changed on disk during the round: none.\n");
    } else {
        let _ = writeln!(
            s,
            "Changed on disk during the round: {}.",
            list(&r.changed_files)
        );
    }
    if !r.changed_not_claimed.is_empty() {
        let _ = writeln!(
            s,
            "- **Changed but not reported by the agent** (written by a command, or left out of its account): {}",
            list(&r.changed_not_claimed)
        );
    }
    if !r.claimed_not_changed.is_empty() {
        let _ = writeln!(
            s,
            "- **Reported by the agent but not changed on disk:** {}",
            list(&r.claimed_not_changed)
        );
    }
    if !r.user_files_touched.is_empty() {
        let _ = writeln!(
            s,
            "- **Changed again by the agent although the user had changed them before the run** (the user's version is in the backup): {}",
            list(&r.user_files_touched)
        );
    }
    if !r.commits.is_empty() {
        let _ = writeln!(
            s,
            "- **The agent committed** (it was asked not to; the checks compare with the commit before the run): {}",
            r.commits.iter().map(|c| code(c)).collect::<Vec<_>>().join(", ")
        );
    }
    if !r.errors.is_empty() {
        s.push_str("\nErrors and warnings it reported:\n");
        for e in &r.errors {
            let _ = writeln!(s, "- {}", md(e));
        }
    }
    if let Some(v) = &r.verify {
        let _ = write!(s, "\nVerify after round {}: {}", r.round, md(&v.summary));
        if v.not_passed.is_empty() {
            s.push_str(".\n");
        } else {
            let _ = writeln!(s, "; not passed: {}.", md(&v.not_passed.join(", ")));
        }
    }
    let _ = writeln!(s, "\nEvent log: {}.", code(&r.events_file));
    s
}

fn open_questions(r: &Report) -> String {
    let unknown: Vec<_> = r
        .checklist
        .iter()
        .filter(|i| i.status == Status::Unknown)
        .collect();
    if unknown.is_empty() {
        return "None from the checks.".into();
    }
    unknown
        .iter()
        .map(|i| format!("- Not proven: {} — {}\n", i.label, md(&i.evidence)))
        .collect()
}

fn next_stage(r: &Report) -> String {
    let (_, fail, unknown, _) = counts(r);
    if fail > 0 {
        "Back to the backend stage: fix the failed items and the error findings above, then run `cargo xtask verify` again.".into()
    } else if unknown > 0 {
        "Code review, with the open questions above answered by hand: the tool could not prove them.".into()
    } else {
        "Code review.".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentCommand, ClaimedFile, PreexistingChange, RoundVerify, TokenUsage};

    #[test]
    fn the_agent_section_shows_every_round_and_every_discrepancy() {
        let round1 = AgentRound {
            round: 1,
            argv: vec!["codex".into(), "exec".into()],
            exit_code: Some(0),
            outcome: "exit code 0".into(),
            duration_ms: 2500,
            final_message: Some("Done: see ```sql``` below.\n\nAll `tests` pass.".into()),
            commands: vec![
                AgentCommand {
                    command: "pnpm test:api".into(),
                    exit_code: Some(1),
                    status: "failed".into(),
                },
                AgentCommand {
                    command: "echo `date`".into(),
                    exit_code: None,
                    status: "in_progress".into(),
                },
            ],
            claimed_files: vec![ClaimedFile {
                path: "packages/contracts/src/invoices.ts".into(),
                kind: "add".into(),
            }],
            changed_files: vec!["README.md".into(), "supabase/migrations/1_x.sql".into()],
            claimed_not_changed: vec!["packages/contracts/src/invoices.ts".into()],
            changed_not_claimed: vec!["README.md".into(), "supabase/migrations/1_x.sql".into()],
            user_files_touched: vec!["README.md".into()],
            usage: Some(TokenUsage {
                input_tokens: 120,
                cached_input_tokens: 20,
                output_tokens: 30,
                reasoning_output_tokens: 5,
            }),
            errors: vec!["Reconnecting... 1/5".into()],
            events_file: "/r/.git/xtask/backend-stage/1/round-1.jsonl".into(),
            commits: vec!["abc1234 agent work".into()],
            verify: Some(RoundVerify {
                clear: false,
                summary: "1 passed, 1 failed, 6 unknown, 0 not applicable".into(),
                not_passed: vec!["rls: fail".into()],
                checklist: Vec::new(),
                findings: Vec::new(),
            }),
        };
        let round2 = AgentRound {
            round: 2,
            outcome: "exit code 0".into(),
            duration_ms: 1000,
            final_message: None,
            events_file: "/r/.git/xtask/backend-stage/1/round-2.jsonl".into(),
            ..AgentRound::default()
        };
        let report = AgentReport {
            agent: "codex".into(),
            thread_id: Some("01a2".into()),
            run_dir: "/r/.git/xtask/backend-stage/1".into(),
            prompt_bytes: 18000,
            prompt_notes: vec!["Schema: `docs/db/schema.md` cut to 100 of 3930 bytes".into()],
            preexisting: vec![PreexistingChange {
                path: "README.md".into(),
                git_status: " M".into(),
            }],
            preexisting_backup: Some("/r/.git/xtask/backend-stage/1/user-changes".into()),
            rounds: vec![round1, round2],
            stop_reason: Some("checks did not pass after 1 fix round(s)".into()),
        };
        expect_test::expect![[r#"
            ### Agent run

            `codex`, thread `01a2`, 2 round(s); prompt 18000 bytes. Prompts, event logs and final messages are kept in `/r/.git/xtask/backend-stage/1`.
            Stopped: checks did not pass after 1 fix round(s).

            The prompt was incomplete:
            - Schema: `docs/db/schema.md` cut to 100 of 3930 bytes

            Changed before the run (the user's, not the agent's):
            - `README.md` (`M`)

            Copied before the run to `/r/.git/xtask/backend-stage/1/user-changes`; nothing was reverted.

            #### Round 1 (the task) — exit code 0, 2.5s

            Tokens (thread total): 120 input (20 cached), 30 output (5 reasoning).

            Final message (verbatim):

            ````text
            Done: see ```sql``` below.

            All `tests` pass.
            ````

            Commands it ran:
            - `pnpm test:api` — exit 1
            - `` echo `date` `` — in progress

            Files it reported changing: `packages/contracts/src/invoices.ts` (add).
            Changed on disk during the round: `README.md`, `supabase/migrations/1_x.sql`.
            - **Changed but not reported by the agent** (written by a command, or left out of its account): `README.md`, `supabase/migrations/1_x.sql`
            - **Reported by the agent but not changed on disk:** `packages/contracts/src/invoices.ts`
            - **Changed again by the agent although the user had changed them before the run** (the user's version is in the backup): `README.md`
            - **The agent committed** (it was asked not to; the checks compare with the commit before the run): `abc1234 agent work`

            Errors and warnings it reported:
            - Reconnecting... 1/5

            Verify after round 1: 1 passed, 1 failed, 6 unknown, 0 not applicable; not passed: rls: fail.

            Event log: `/r/.git/xtask/backend-stage/1/round-1.jsonl`.

            #### Round 2 (fix round 1) — exit code 0, 1.0s

            No final message.

            Commands it ran: none.

            Files it reported changing: none.
            Changed on disk during the round: none.

            Event log: `/r/.git/xtask/backend-stage/1/round-2.jsonl`.
        "#]].assert_eq(&agent_section(&report));
    }

    #[test]
    fn changed_files_say_which_were_the_users() {
        use crate::model::{ChangeStatus, ChangedFile};
        let file = |path: &str, status| ChangedFile {
            path: path.into(),
            status,
            from: None,
            target: None,
        };
        let ev = crate::gather::Evidence {
            repo: ".".into(),
            changes: crate::repo::Changes {
                base: Some("abc".into()),
                all: false,
                files: vec![
                    file("README.md", ChangeStatus::Modified),
                    file("supabase/migrations/1_x.sql", ChangeStatus::Added),
                ],
            },
            migrations: Err("not built".into()),
            routes: Err("not built".into()),
            lint: Err("skipped".into()),
            tests: Err("skipped".into()),
            other_commands: Vec::new(),
            weakened: Default::default(),
            agent: Some(AgentReport {
                preexisting: vec![PreexistingChange {
                    path: "README.md".into(),
                    git_status: " M".into(),
                }],
                ..AgentReport::default()
            }),
        };
        let r = super::super::Report::new(&ev, Vec::new());
        assert_eq!(
            changed_files(&r),
            "- `README.md` (modified) — already changed before the agent ran (the user's)\n\
             - `supabase/migrations/1_x.sql` (added)\n"
        );
    }
}
