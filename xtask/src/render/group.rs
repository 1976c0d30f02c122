//! The findings of a report arranged for people (the text view and the handover): a cause
//! shared by many is listed once with everything it applies to ("11 tables: live probe
//! skipped: …"), and the rest is grouped by what it is about — a table, a route handler
//! (route file + export), a file — most severe first. Nothing is decided or dropped here:
//! every finding of the report is either under a shared cause or in a group, and the
//! machine formats (JSON, SARIF, JUnit, the annotations) keep the flat list.

use std::collections::HashMap;

use super::Report;
use crate::{
    model::{Finding, Severity, TableReport},
    rules::catalog::Rule,
};

/// A cause is shared (and folded) when at least this many findings have it.
pub const FOLD_AT: usize = 3;

/// What a group of findings is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject<'a> {
    /// A table (`public.invoices`), with its judged row when the report has one.
    Table(&'a str),
    /// One exported handler of a route file.
    Handler {
        path: &'a str,
        method: &'a str,
        line: u32,
    },
    /// A file, for what is about no table and no handler (a migration's syntax, a
    /// weakened test config, a route file outside its handlers).
    File(&'a str),
    /// Findings with no file (the configuration, a command).
    General,
}

impl Subject<'_> {
    /// The subject as one line of plain text (escape it for the view).
    pub fn label(&self) -> String {
        match self {
            Subject::Table(t) => t.to_string(),
            Subject::Handler { path, method, .. } => format!("{path} {method}"),
            Subject::File(p) => p.to_string(),
            Subject::General => "general".into(),
        }
    }
}

/// Findings that have the same cause once the name they are about is taken out.
pub struct Shared<'a> {
    pub rule: Rule,
    pub severity: Severity,
    /// The message with the parts that differ between the findings shown as `…`.
    pub message: String,
    /// "11 tables", "4 handlers", "24 places".
    pub count: String,
    /// What it applies to, each once: table names or `path METHOD` in order of name, or
    /// `path:line` in file and line order.
    pub subjects: Vec<String>,
    pub findings: Vec<&'a Finding>,
}

/// One table, handler or file with the findings about it that are not under a shared cause.
pub struct Group<'a> {
    pub subject: Subject<'a>,
    /// The judged table, for a table group.
    pub table: Option<&'a TableReport>,
    pub findings: Vec<&'a Finding>,
    /// The shared causes (indexes into [`Arranged::shared`]) that also apply here.
    pub also: Vec<usize>,
}

impl Group<'_> {
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .min()
            .unwrap_or(Severity::Info)
    }
}

pub struct Arranged<'a> {
    pub shared: Vec<Shared<'a>>,
    /// Groups with at least one finding of their own, most severe first; a subject whose
    /// findings are all under shared causes is named there only.
    pub groups: Vec<Group<'a>>,
}

impl Arranged<'_> {
    /// How many findings are under shared causes.
    pub fn folded(&self) -> usize {
        self.shared.iter().map(|s| s.findings.len()).sum()
    }
}

/// Arrange the report's findings (already most severe first, then by file and line).
pub fn arrange<'a>(r: &'a Report) -> Arranged<'a> {
    let routes: HashMap<&str, &crate::model::RouteReport> = match &r.ev.routes {
        Ok(routes) => routes.routes.iter().map(|x| (x.path.as_str(), x)).collect(),
        Err(_) => HashMap::new(),
    };
    let tables: HashMap<&str, &TableReport> = match &r.ev.migrations {
        Ok(m) => m.tables.iter().map(|t| (t.name.as_str(), t)).collect(),
        Err(_) => HashMap::new(),
    };
    let subject_of = |f: &'a Finding| -> Subject<'a> {
        if let Some(route) = f.path.as_deref().and_then(|p| routes.get(p)) {
            // The handler a line falls in: the last export that starts at or before it.
            let handler = f.line.and_then(|line| {
                route
                    .handlers
                    .iter()
                    .filter(|h| h.line <= line)
                    .max_by_key(|h| h.line)
            });
            return match handler {
                Some(h) => Subject::Handler {
                    path: route.path.as_str(),
                    method: h.method.as_str(),
                    line: h.line,
                },
                None => Subject::File(route.path.as_str()),
            };
        }
        match (&f.table, &f.path) {
            (Some(t), _) => Subject::Table(t.as_str()),
            (None, Some(p)) => Subject::File(p.as_str()),
            (None, None) => Subject::General,
        }
    };

    // Causes: rule, severity and the message with its subject's names taken out.
    type Cause = (Rule, Severity, String);
    let mut order: Vec<Cause> = Vec::new();
    let mut by_cause: HashMap<Cause, Vec<(&'a Finding, Subject<'a>)>> = HashMap::new();
    for f in &r.findings {
        let subject = subject_of(f);
        let key = (f.rule, f.severity, normalise(f, &subject));
        let entry = by_cause.entry(key.clone()).or_default();
        if entry.is_empty() {
            order.push(key);
        }
        entry.push((f, subject));
    }

    let mut shared: Vec<Shared<'a>> = Vec::new();
    for key in order {
        let members = by_cause.remove(&key).expect("every key has members");
        if members.len() < FOLD_AT {
            continue;
        }
        let mut subjects: Vec<String> = Vec::new();
        for (f, s) in &members {
            let label = match s {
                Subject::Table(_) | Subject::Handler { .. } => s.label(),
                _ => f.location().unwrap_or_else(|| "general".into()),
            };
            if !subjects.contains(&label) {
                subjects.push(label);
            }
        }
        let all = |pred: fn(&Subject) -> bool| members.iter().all(|(_, s)| pred(s));
        let noun = if all(|s| matches!(s, Subject::Table(_))) {
            "table"
        } else if all(|s| matches!(s, Subject::Handler { .. })) {
            "handler"
        } else {
            "place"
        };
        if noun != "place" {
            // Names read best in order; places stay in file and line order.
            subjects.sort();
        }
        let count = if subjects.len() == members.len() || noun == "place" {
            format!("{} {noun}{}", subjects.len(), plural(subjects.len()))
        } else {
            format!(
                "{} findings on {} {noun}{}",
                members.len(),
                subjects.len(),
                plural(subjects.len())
            )
        };
        let messages: Vec<&str> = members.iter().map(|(f, _)| f.message.as_str()).collect();
        shared.push(Shared {
            rule: key.0,
            severity: key.1,
            message: common_message(&messages).unwrap_or(key.2),
            count,
            subjects,
            findings: members.iter().map(|(f, _)| *f).collect(),
        });
    }
    shared.sort_by(|a, b| {
        (a.severity, std::cmp::Reverse(a.findings.len()), a.rule.id()).cmp(&(
            b.severity,
            std::cmp::Reverse(b.findings.len()),
            b.rule.id(),
        ))
    });
    let folded: HashMap<*const Finding, usize> = shared
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.findings.iter().map(move |f| (*f as *const Finding, i)))
        .collect();

    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut at: HashMap<Subject<'a>, usize> = HashMap::new();
    for f in &r.findings {
        let subject = subject_of(f);
        let i = *at.entry(subject.clone()).or_insert_with(|| {
            groups.push(Group {
                table: match subject {
                    Subject::Table(t) => tables.get(t).copied(),
                    _ => None,
                },
                subject,
                findings: Vec::new(),
                also: Vec::new(),
            });
            groups.len() - 1
        });
        match folded.get(&(f as *const Finding)) {
            Some(&s) if !groups[i].also.contains(&s) => groups[i].also.push(s),
            Some(_) => {}
            None => groups[i].findings.push(f),
        }
    }
    groups.retain(|g| !g.findings.is_empty());
    for g in &mut groups {
        g.also.sort_unstable();
        g.findings
            .sort_by(|a, b| (a.severity, &a.path, a.line).cmp(&(b.severity, &b.path, b.line)));
    }
    let kind = |s: &Subject| match s {
        Subject::Table(_) => 0,
        Subject::Handler { .. } => 1,
        Subject::File(_) => 2,
        Subject::General => 3,
    };
    groups.sort_by(|a, b| {
        (a.worst(), kind(&a.subject), &a.subject).cmp(&(b.worst(), kind(&b.subject), &b.subject))
    });
    Arranged { shared, groups }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The message with what names its subject taken out, so that one cause on many tables
/// (or handlers, or functions) reads the same: the table (qualified, or quoted bare as
/// Postgres's own messages quote it), the handler's export and file, any other
/// schema-qualified name (a function, a trigger), UUIDs (the probe's made-up rows) and
/// `line N` (where in a handler it happens).
pub fn normalise(f: &Finding, subject: &Subject) -> String {
    let mut m = f.message.clone();
    if let Some(t) = &f.table {
        m = m.replace(t.as_str(), "<table>");
        if let Some(bare) = t.rsplit('.').next().filter(|b| !b.is_empty()) {
            m = m.replace(&format!("\"{bare}\""), "\"<table>\"");
        }
    }
    if let Subject::Handler { path, method, .. } = subject {
        m = m.replace(path, "<file>");
        m = replace_word(&m, method, "<export>");
    }
    line_numbers(&replace_tokens(&m))
}

/// `line 12` as `line <n>`: where in its handler a body is read is not the cause.
fn line_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("line ") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push_str("<n>");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// `word` replaced where it stands as a whole word.
fn replace_word(s: &str, word: &str, with: &str) -> String {
    if word.is_empty() {
        return s.to_string();
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Schema-qualified names (`public.delete_old_file`, but not a file name such as
/// `0001_init.sql`) as `<name>`, UUIDs as `<id>`.
fn replace_tokens(s: &str) -> String {
    const EXTENSIONS: [&str; 10] = [
        "sql", "ts", "tsx", "js", "jsx", "mjs", "cjs", "json", "toml", "md",
    ];
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let boundary = i == 0 || !(ident(chars[i - 1]) || matches!(chars[i - 1], '.' | '/' | '-'));
        if boundary && (ident(c) || c == '"') {
            // A run of identifier characters, dots, dashes and quotes: one token.
            let start = i;
            let mut j = i;
            while j < chars.len() && (ident(chars[j]) || matches!(chars[j], '.' | '-' | '"')) {
                j += 1;
            }
            let token: String = chars[start..j].iter().collect();
            let trimmed = token.trim_end_matches('.');
            let end = start + trimmed.chars().count();
            if is_uuid(trimmed) {
                out.push_str("<id>");
                i = end;
                continue;
            }
            let parts: Vec<&str> = trimmed.split('.').collect();
            let qualified = parts.len() == 2
                && parts.iter().all(|p| {
                    let p = p.trim_matches('"');
                    !p.is_empty()
                        && p.chars().all(ident)
                        && !p.chars().next().is_some_and(|c| c.is_ascii_digit())
                })
                && !EXTENSIONS.contains(&parts[1])
                // `auth.uid()` is an expression, not a name: kept.
                && !(end < chars.len() && matches!(chars[end], '/' | '('));
            if qualified {
                out.push_str("<name>");
            } else {
                out.push_str(trimmed);
            }
            i = end;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The words the messages share, `…` where they differ (keeping what a differing word
/// starts and ends with in common: `public.…:`). `None` when they do not have the same
/// number of words.
pub fn common_message(messages: &[&str]) -> Option<String> {
    let first: Vec<&str> = messages.first()?.split(' ').collect();
    let others: Vec<Vec<&str>> = messages[1..]
        .iter()
        .map(|m| m.split(' ').collect())
        .collect();
    if others.iter().any(|o| o.len() != first.len()) {
        return None;
    }
    let mut words = Vec::with_capacity(first.len());
    for (i, w) in first.iter().enumerate() {
        if others.iter().all(|o| o[i] == *w) {
            words.push(w.to_string());
            continue;
        }
        let all: Vec<&str> = std::iter::once(*w)
            .chain(others.iter().map(|o| o[i]))
            .collect();
        // Only what ends (or starts) at a punctuation mark: `public.…:`, never `public.…s`.
        let name = |c: char| c.is_alphanumeric() || c == '_';
        let prefix = common_prefix(&all);
        let cut = prefix
            .char_indices()
            .rfind(|(_, c)| !name(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let prefix = &prefix[..cut];
        let rest: Vec<&str> = all.iter().map(|x| &x[prefix.len()..]).collect();
        let suffix = common_suffix(&rest);
        let suffix = &suffix[suffix.find(|c: char| !name(c)).unwrap_or(suffix.len())..];
        words.push(format!("{prefix}…{suffix}"));
    }
    Some(words.join(" "))
}

fn common_prefix<'s>(all: &[&'s str]) -> &'s str {
    let first = all[0];
    let mut end = first.len();
    for x in &all[1..] {
        end = end.min(
            first
                .char_indices()
                .zip(x.chars())
                .find(|((_, a), b)| a != b)
                .map(|((i, _), _)| i)
                .unwrap_or(first.len().min(x.len())),
        );
    }
    while !first.is_char_boundary(end) {
        end -= 1;
    }
    &first[..end]
}

fn common_suffix<'s>(all: &[&'s str]) -> &'s str {
    let first = all[0];
    let mut len = first.len();
    for x in &all[1..] {
        let n = first
            .chars()
            .rev()
            .zip(x.chars().rev())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a.len_utf8())
            .sum::<usize>();
        len = len.min(n);
    }
    &first[first.len() - len..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::catalog::Rule;

    #[test]
    fn names_are_taken_out_of_the_cause() {
        let f = Finding::new(
            Rule::LiveProbeSkipped,
            Severity::Info,
            "public.profiles: live probe skipped: cannot insert a row into public.profiles: \
             new row for relation \"profiles\" violates check constraint; Failing row contains \
             (1a743713-2f8f-4914-8b9b-4f190af37580, x)",
        )
        .on_table("public.profiles");
        assert_eq!(
            normalise(&f, &Subject::Table("public.profiles")),
            "<table>: live probe skipped: cannot insert a row into <table>: new row for \
             relation \"<table>\" violates check constraint; Failing row contains (<id>, x)"
        );
        let g = Finding::new(
            Rule::FunctionSearchPathMutable,
            Severity::Warning,
            "security definer function public.delete_old_file has no fixed search_path \
             (supabase/migrations/0001_init.sql): add `set search_path = ''`, auth.uid()",
        );
        assert_eq!(
            normalise(&g, &Subject::File("x.sql")),
            "security definer function <name> has no fixed search_path \
             (supabase/migrations/0001_init.sql): add `set search_path = ''`, auth.uid()"
        );
        let h = Finding::new(
            Rule::RouteUnguarded,
            Severity::Error,
            "POST does not call withAuth",
        );
        let s = Subject::Handler {
            path: "app/api/x/route.ts",
            method: "POST",
            line: 3,
        };
        assert_eq!(normalise(&h, &s), "<export> does not call withAuth");
        let body = Finding::new(
            Rule::InputNotValidated,
            Severity::Error,
            "POST handler reads body (line 12) but never passes it through a schema (lines 3)",
        );
        assert_eq!(
            normalise(&body, &s),
            "<export> handler reads body (line <n>) but never passes it through a schema (lines 3)"
        );
    }

    #[test]
    fn the_common_message_keeps_what_is_shared() {
        assert_eq!(
            common_message(&[
                "no index on public.a starts with `user_id`: add `create index on public.a (user_id);`",
                "no index on public.bb starts with `user_id`: add `create index on public.bb (user_id);`",
            ])
            .unwrap(),
            "no index on public.… starts with `user_id`: add `create index on public.… (user_id);`"
        );
        assert_eq!(common_message(&["a b", "a b c"]), None);
        assert_eq!(common_message(&["é x", "é y"]).unwrap(), "é …");
    }
}
