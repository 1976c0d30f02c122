//! The repository's own conventions, for the prompt: the guard as its handlers write it, the
//! policy expression its migrations use, its rate limiter, the name its routes import the
//! contracts package by, and the newest migration and route handler that the checks pass,
//! named by path so the agent can open them.
//!
//! Everything here is measured with the same readers and rules `verify` uses: the migrations
//! are replayed and judged (`judge::migrations`, `rules::policy::Judge`), the routes are read
//! and judged (`gather::routes::analyze`); the text shown is the repository's own, cut from
//! the file at the spans the parser gives. What cannot be found is `None`, and the prompt
//! says so instead of inventing a convention.

use std::{collections::HashMap, path::Path};

use oxc_allocator::Allocator;
use oxc_ast::ast::{ArrowFunctionBody, Declaration, Expression, Statement};
use oxc_span::{GetSpan, Span};

use crate::{
    config::Config,
    gather::migrations::History,
    judge,
    model::{RouteEvidence, Severity, Verdict},
    repo::Changes,
    rules::{policy::Judge, routes::first_call_named},
    schema::{Command, QualName, Table},
    ts::{self, Source},
};

/// A route handler as the repository writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// Repository path of the `route.ts`.
    pub path: String,
    /// `GET`, `POST`, ...
    pub method: String,
    pub line: u32,
    /// Its guard statement (or the limiter call), as written: one line.
    pub first: String,
    /// The statements before the guard (building the client it is called on), one line each.
    pub setup: Vec<String>,
    /// The configured name that statement calls, and whether it is an auth wrapper (else a
    /// guard call or a limiter).
    pub calls: Option<(String, bool)>,
    /// The file's imports and the handler, verbatim (cut when long).
    pub excerpt: String,
    /// Its input is parsed with a schema of the contracts package (else it reads none).
    pub validated: bool,
}

/// One policy of the model migration, its table's name replaced by `<things>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyShape {
    pub command: Command,
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

/// The newest table the checks find protected, and the migration that creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationModel {
    pub path: String,
    pub table: String,
    /// The table its tenant column references, when it has a foreign key.
    pub references: Option<String>,
    pub policies: Vec<PolicyShape>,
    /// It has its tenant index (else the only check it fails is rule 3's).
    pub indexed: bool,
    /// Where its policies are written, when not beside its `create table`.
    pub policy_files: Vec<String>,
    /// Its key column, tenant column type and timestamps as its `create table` writes
    /// them; `None` when that statement could not be read.
    pub shape: Option<super::stack::TableShape>,
}

/// A policy expression the judge calls tenant-scoped, and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedExpr {
    /// `using` (or `with check` when it has no `using`), the table's name replaced by `<things>`.
    pub expr: String,
    pub path: String,
    pub policy: String,
    pub table: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conventions {
    /// The newest migration with a policy the judge calls tenant-scoped.
    pub policy: Option<ScopedExpr>,
    /// Else the newest with a policy that calls a configured check function in a form the
    /// judge cannot confirm: the repository's own form, shown as such.
    pub check_call: Option<ScopedExpr>,
    pub migration: Option<MigrationModel>,
    /// The newest guarded handler that validates its input with a contracts schema (or has
    /// none) and has no finding.
    pub route: Option<Handler>,
    /// The newest guarded handler (the route model when there is one): its first statement is
    /// the guard as the repository writes it.
    pub guard: Option<Handler>,
    /// The newest handler calling a configured limiter (a rate-limited public route first):
    /// the call, as written.
    pub limiter: Option<Handler>,
    /// The contracts package as the routes import it (its package.json name).
    pub contracts_import: Option<String>,
    /// Newest files of each kind, to point at when there is no model.
    pub any_route: Option<String>,
    pub any_migration: Option<String>,
    /// The tenant root table, when the migrations create it.
    pub root_table: Option<String>,
    /// Do the migrations create the configured membership table?
    pub membership_exists: bool,
}

/// Read the conventions from the histories (already replayed) and the route files.
pub fn read(repo: &Path, config: &Config, histories: &[History]) -> Conventions {
    let mut c = Conventions {
        contracts_import: crate::gather::routes::package_name(repo, &config.contracts.package),
        ..Conventions::default()
    };
    read_migrations(config, histories, &mut c);
    if let Some(m) = &mut c.migration {
        let bare = m
            .table
            .rsplit('.')
            .next()
            .unwrap_or(&m.table)
            .trim_matches('"');
        m.shape = std::fs::read_to_string(repo.join(&m.path))
            .ok()
            .and_then(|sql| super::stack::table_shape(&sql, bare, &config.tenancy.column));
    }
    if let Ok(ev) = crate::gather::routes::analyze(repo, config, &Changes::all()) {
        read_routes(repo, config, &ev, &mut c);
    }
    c
}

/// The file's place in replay order across histories: its name (a timestamp, in the
/// Supabase layout), then its path.
fn file_key(path: &str) -> (String, String) {
    (
        path.rsplit('/').next().unwrap_or(path).to_string(),
        path.to_string(),
    )
}

fn names(t: &Table) -> Vec<QualName> {
    std::iter::once(t.name.clone())
        .chain(t.former_names.iter().cloned())
        .collect()
}

/// `public.documents.tenant_id`, `documents.tenant_id` → `<things>.tenant_id`.
fn generic(expr: &str, t: &Table) -> String {
    let mut out = expr.to_string();
    for n in names(t) {
        for written in [
            format!("\"{}\".\"{}\".", n.schema, n.name),
            format!("{}.{}.", n.schema, n.name),
            format!("{}.", n.sql()),
            format!("\"{}\".", n.name),
            format!("{}.", n.name),
        ] {
            let mut s = String::with_capacity(out.len());
            let mut rest = out.as_str();
            while let Some(i) = rest.find(&written) {
                let before = rest[..i].chars().next_back();
                let word = before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
                s.push_str(&rest[..i]);
                s.push_str(if word { &written } else { "<things>." });
                rest = &rest[i + written.len()..];
            }
            s.push_str(rest);
            out = s;
        }
    }
    out
}

/// The newest migration with one of these policies; of its policies, the expression most of
/// them use (the repository's form, not one table's special case), then the shortest, then
/// the first written.
fn representative(all: &[((String, String), u32, ScopedExpr)]) -> Option<ScopedExpr> {
    let newest = all.iter().map(|(k, _, _)| k).max()?;
    let in_newest: Vec<&(_, u32, ScopedExpr)> =
        all.iter().filter(|(k, _, _)| k == newest).collect();
    let count = |e: &str| in_newest.iter().filter(|(_, _, x)| x.expr == e).count();
    in_newest
        .iter()
        .min_by_key(|(_, line, e)| (std::cmp::Reverse(count(&e.expr)), e.expr.len(), *line))
        .map(|(_, _, e)| e.clone())
}

/// How a model table ranks: with its tenant index first, then newest.
type ModelKey = (bool, (String, String));

fn read_migrations(config: &Config, histories: &[History], c: &mut Conventions) {
    let judge = Judge::new(&config.tenancy);
    let root = QualName::from_config(&config.tenancy.root_table);
    let mut newest_file: Option<(String, String)> = None;
    // Every permissive policy the judge calls tenant-scoped: (file, line, expression).
    let mut scoped_all: Vec<((String, String), u32, ScopedExpr)> = Vec::new();
    // Those the judge does not call scoped that call a configured check function.
    let mut checks_all: Vec<((String, String), u32, ScopedExpr)> = Vec::new();
    for h in histories {
        if let Some((f, _)) = h.files.last() {
            let key = file_key(&f.path);
            if newest_file.as_ref().is_none_or(|n| key > *n) {
                newest_file = Some(key);
            }
        }
        if h.schema.tables.contains_key(&root) {
            c.root_table = Some(root.sql());
        }
        if h.schema
            .tables
            .contains_key(&QualName::from_config(&config.tenancy.membership_table))
        {
            c.membership_exists = true;
        }
        for t in h.schema.tables.values() {
            if crate::rules::tenant::is_platform(&t.name) {
                continue;
            }
            let ns = names(t);
            for p in t.policies.iter().filter(|p| p.permissive) {
                let scoped = Command::EACH
                    .iter()
                    .filter(|cmd| p.command.covers(**cmd))
                    .all(|cmd| {
                        p.exprs_for(*cmd)
                            .iter()
                            .all(|(_, e)| judge.scoped(*e, &ns).is_ok())
                    });
                let Some(expr) = p.using.as_deref().or(p.with_check.as_deref()) else {
                    continue;
                };
                // Policies of tables that carry the tenant column (not the tenant root).
                let (column, owner) = judge.column_for(&ns);
                if owner || column != judge.column() || t.column(column).is_none() {
                    continue;
                }
                let into = if scoped {
                    &mut scoped_all
                } else if judge.calls_check_function(expr) {
                    &mut checks_all
                } else {
                    continue;
                };
                into.push((
                    file_key(&p.origin.path),
                    p.origin.line,
                    ScopedExpr {
                        expr: one_spaced(&generic(expr, t)),
                        path: p.origin.path.clone(),
                        policy: p.name.clone(),
                        table: t.name.sql(),
                    },
                ));
            }
        }
    }
    c.policy = representative(&scoped_all);
    c.check_call = representative(&checks_all);
    c.any_migration = newest_file.map(|(_, p)| p);

    // The newest table the judge calls protected, with its tenant index, in the tenant column
    // of the configuration (not an owner-scoped table).
    let judged = judge::migrations(histories, judge::Live::NotRun, config, &Changes::all());
    let mut best: Option<(ModelKey, MigrationModel)> = None;
    for report in judged
        .tables
        .iter()
        .filter(|r| r.verdict == Verdict::Protected && r.tenant_column && !r.service_only)
    {
        let Some(t) = histories
            .iter()
            .flat_map(|h| h.schema.tables.values())
            .find(|t| t.name.to_string() == report.name)
        else {
            continue;
        };
        let ns = names(t);
        let (column, owner) = judge.column_for(&ns);
        if owner || column != judge.column() {
            continue;
        }
        // With its tenant index first (then every check passes), newest first.
        let key = (report.tenant_index, file_key(&t.origin.path));
        if best.as_ref().is_some_and(|(k, _)| *k >= key) {
            continue;
        }
        let policies = t
            .policies
            .iter()
            .filter(|p| p.permissive)
            .map(|p| PolicyShape {
                command: p.command,
                roles: p.roles.clone(),
                using: p.using.as_deref().map(|e| one_spaced(&generic(e, t))),
                with_check: p.with_check.as_deref().map(|e| one_spaced(&generic(e, t))),
            })
            .collect();
        best = Some((
            key,
            MigrationModel {
                path: t.origin.path.clone(),
                table: t.name.sql(),
                references: t
                    .column(column)
                    .and_then(|col| col.references.as_ref())
                    .map(QualName::sql),
                policies,
                indexed: report.tenant_index,
                policy_files: t
                    .policies
                    .iter()
                    .map(|p| p.origin.path.clone())
                    .filter(|p| *p != t.origin.path)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                shape: None,
            },
        ));
    }
    c.migration = best.map(|(_, m)| m);
}

/// When each file last changed: its last commit (one `git log` for the route root), or its
/// modification time when git does not know it; uncommitted changes count as now.
fn times(repo: &Path, root: &str, paths: &[&str]) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    let log = crate::repo::git_command(repo)
        .args(["log", "--relative", "--format=%x00%ct", "--name-only", "--"])
        .arg(if root.is_empty() { "." } else { root })
        .output();
    if let Some(o) = log.ok().filter(|o| o.status.success()) {
        let text = String::from_utf8_lossy(&o.stdout);
        let mut when = 0;
        for line in text.lines() {
            if let Some(t) = line.strip_prefix('\0') {
                when = t.trim().parse().unwrap_or(0);
            } else if !line.is_empty() {
                out.entry(line.to_string()).or_insert(when);
            }
        }
    }
    let dirty: Vec<String> = crate::repo::git_command(repo)
        .args([
            "status",
            "--porcelain",
            "--no-renames",
            "--untracked-files=all",
            "--",
        ])
        .arg(if root.is_empty() { "." } else { root })
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.get(3..).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for p in paths {
        let mtime = || {
            std::fs::metadata(repo.join(p))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64)
        };
        // `git status` prints paths from the repository's top: compare by suffix.
        if dirty.iter().any(|d| d.ends_with(*p)) || !out.contains_key(*p) {
            out.insert(p.to_string(), mtime());
        }
    }
    out
}

fn read_routes(repo: &Path, config: &Config, ev: &RouteEvidence, c: &mut Conventions) {
    let flagged = |path: &str| {
        ev.findings.iter().any(|f| {
            f.path.as_deref() == Some(path)
                && matches!(f.severity, Severity::Error | Severity::Warning)
        })
    };
    let paths: Vec<&str> = ev.routes.iter().map(|r| r.path.as_str()).collect();
    let times = times(repo, &config.routes.root, &paths);
    let when = |p: &str| times.get(p).copied().unwrap_or(0);
    c.any_route = paths
        .iter()
        .max_by_key(|p| (when(p), p.to_string()))
        .map(|p| p.to_string());

    // Guarded handlers: those with nothing found against their file and validating with a
    // contracts schema first (they show the import), then those reading no input, then any
    // guarded one (for the guard alone); newest first within each.
    let mut guarded: Vec<(u8, i64, &str, &str)> = Vec::new();
    // Handlers that may call a limiter: rate-limited public routes first.
    let mut limited: Vec<(u8, i64, &str, &str)> = Vec::new();
    for r in &ev.routes {
        if r.exempt.is_some() {
            continue;
        }
        let clean = !flagged(&r.path);
        for h in &r.handlers {
            let public_limited = r.public && r.rate_limited == Some(true) && clean;
            limited.push((u8::from(public_limited), when(&r.path), &r.path, &h.method));
            if r.public || h.auth != "guarded" {
                continue;
            }
            let rank = match h.validation.as_str() {
                "contracts" if clean => 3,
                "no_input" if clean => 2,
                _ => 1,
            };
            guarded.push((rank, when(&r.path), &r.path, &h.method));
        }
    }
    guarded.sort_by(|a, b| b.cmp(a));
    limited.sort_by(|a, b| b.cmp(a));
    let guards: Vec<String> = config
        .routes
        .auth_wrappers
        .iter()
        .chain(&config.routes.guard_calls)
        .chain(&config.routes.guarded_factories)
        .cloned()
        .collect();
    let wrappers = &config.routes.auth_wrappers;
    c.route = guarded
        .iter()
        .filter(|g| g.0 >= 2)
        .find_map(|(rank, _, path, method)| {
            handler(repo, path, method, &guards, wrappers, false).map(|h| Handler {
                validated: *rank == 3,
                ..h
            })
        });
    c.guard = match &c.route {
        Some(h) => Some(h.clone()),
        None => guarded
            .iter()
            .find_map(|(_, _, path, method)| handler(repo, path, method, &guards, wrappers, false)),
    };
    if !config.routes.rate_limiters.is_empty() {
        c.limiter = limited.iter().find_map(|(_, _, path, method)| {
            handler(repo, path, method, &config.routes.rate_limiters, &[], true)
        });
    }
}

/// Lines kept of a handler shown as the route template.
const EXCERPT_LINES: usize = 60;

/// One handler of a file as written: its first statement (or, with `find`, the first
/// statement that calls one of `names`), and the file's imports with the handler.
fn handler(
    repo: &Path,
    path: &str,
    method: &str,
    names: &[String],
    wrappers: &[String],
    find: bool,
) -> Option<Handler> {
    let bytes = std::fs::read(repo.join(path)).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    ts::with_stack_for(text.as_bytes(), || {
        let alloc = Allocator::default();
        let src = Source::new(path, &text);
        let program = ts::parse(&alloc, &src).ok()?;
        let slice = |s: Span| text.get(s.start as usize..s.end as usize).unwrap_or("");
        let mut imports = Vec::new();
        let mut found: Option<(Span, Vec<&Statement>, Span)> = None;
        for stmt in &program.body {
            if let Statement::ImportDeclaration(i) = stmt {
                imports.push(slice(i.span));
                continue;
            }
            let Statement::ExportDeclaration(d) = stmt else {
                continue;
            };
            match &d.declaration {
                Declaration::FunctionDeclaration(f)
                    if f.id.as_ref().is_some_and(|id| id.name == method) =>
                {
                    let body: Vec<&Statement> = f
                        .body
                        .as_ref()
                        .map(|b| b.statements.iter().collect())
                        .unwrap_or_default();
                    found = Some((d.span, body, d.span));
                }
                Declaration::VariableDeclaration(v) => {
                    for decl in &v.declarations {
                        if decl.id.get_identifier_name().is_none_or(|n| n != method) {
                            continue;
                        }
                        let Some(init) = &decl.init else { continue };
                        let body = match init.get_inner_expression() {
                            Expression::ArrowFunctionExpression(a) => match &a.body {
                                ArrowFunctionBody::FunctionBody(b) => b.statements.iter().collect(),
                                _ => Vec::new(),
                            },
                            _ => Vec::new(),
                        };
                        // A handler made by a call (`export const GET = withAuth(...)`):
                        // the declaration is its guard.
                        found = Some((d.span, body, d.span));
                    }
                }
                _ => {}
            }
        }
        let (span, body, decl) = found?;
        let first_of = |s: &Statement| match s {
            Statement::TryStatement(t) => t.block.body.first().map(|s| s.span()),
            other => Some(other.span()),
        };
        let (stmt_span, calls) = if find {
            // The line the call is on: the statement holding it may be a whole `try` block.
            let (at, name) = body.iter().find_map(|s| {
                first_call_named(s, names).map(|(n, at)| (at as usize, n.to_string()))
            })?;
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            (Span::new(start as u32, end as u32), Some((name, false)))
        } else if body.is_empty() {
            // `export const GET = withAuth(async (req) => ...)`: the declaration.
            let calls = names
                .iter()
                .find(|n| slice(decl).contains(&format!("{n}(")))
                .map(|n| (n.clone(), wrappers.contains(n)));
            (decl, calls)
        } else {
            let s = first_of(body[0])?;
            let calls = first_call_named(body[0], names)
                .map(|(n, _)| (n.to_string(), wrappers.iter().any(|w| w == n)));
            (s, calls)
        };
        // A guard made on a client the handler builds first (`supabase.auth.getUser()` after
        // `const supabase = createClient()`): the statements before it are its setup.
        let mut setup = Vec::new();
        let (stmt_span, calls) = match calls {
            None if !find && !body.is_empty() => {
                let members: Vec<String> = names
                    .iter()
                    .map(|n| n.rsplit('.').next().unwrap_or(n).to_string())
                    .collect();
                let at = body.iter().take(4).position(|s| {
                    first_call_named(s, names).is_some() || first_call_named(s, &members).is_some()
                });
                match at {
                    Some(i) if i > 0 => {
                        let name = first_call_named(body[i], names)
                            .or_else(|| first_call_named(body[i], &members))
                            .map(|(n, _)| {
                                // Named as configured (`auth.getUser`), not as called.
                                names
                                    .iter()
                                    .find(|c| *c == n || c.rsplit('.').next() == Some(n))
                                    .cloned()
                                    .unwrap_or_else(|| n.to_string())
                            })
                            .unwrap_or_default();
                        setup = body[..i]
                            .iter()
                            .map(|s| one_line(slice(s.span())))
                            .collect();
                        (body[i].span(), Some((name, false)))
                    }
                    _ => (stmt_span, None),
                }
            }
            other => (stmt_span, other),
        };
        let first = one_line(slice(stmt_span));
        let line = src.line(span.start);
        let whole = slice(span);
        let lines: Vec<&str> = whole.lines().collect();
        let mut excerpt = String::new();
        if !imports.is_empty() {
            excerpt.push_str(&imports.join("\n"));
            excerpt.push_str("\n\n");
        }
        if lines.len() > EXCERPT_LINES {
            excerpt.push_str(&lines[..EXCERPT_LINES].join("\n"));
            excerpt.push_str(&format!(
                "\n  // … {} more lines: open the file\n",
                lines.len() - EXCERPT_LINES
            ));
        } else {
            excerpt.push_str(whole);
        }
        Some(Handler {
            path: path.to_string(),
            method: method.to_string(),
            line,
            first,
            calls,
            excerpt: excerpt.trim_end().to_string(),
            validated: false,
            setup,
        })
    })
}

/// SQL or code with its whitespace runs made one space.
fn one_spaced(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A statement on one line: whole (whitespace collapsed) when short and not holding a
/// function (a wrapper's callback), else its first line.
fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or("").trim();
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let holds_fn = collapsed.contains("=>") || collapsed.contains("function");
    if s.lines().count() == 1 || collapsed.len() <= 120 && !holds_fn {
        collapsed
    } else {
        first.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_name_becomes_a_placeholder_only_where_it_qualifies_a_column() {
        let t = Table::new(
            QualName::new("public", "docs"),
            crate::schema::Origin::new("a.sql", 1),
        );
        assert_eq!(
            generic(
                "is_member(docs.org_id) and public.docs.x = 1 and my_docs.y",
                &t
            ),
            "is_member(<things>.org_id) and <things>.x = 1 and my_docs.y"
        );
    }

    #[test]
    fn a_statement_is_shown_on_one_line() {
        assert_eq!(
            one_line("const ctx = await requireAuthContext(req);"),
            "const ctx = await requireAuthContext(req);"
        );
        assert_eq!(
            one_line("return withAuth(req, async ({ supabase }) => {\n  return 1;\n});"),
            "return withAuth(req, async ({ supabase }) => {"
        );
        assert_eq!(
            one_line("const limited = rateLimit(req, {\n  key: \"a\",\n});"),
            "const limited = rateLimit(req, { key: \"a\", });"
        );
    }

    #[test]
    fn handlers_are_read_as_written_in_each_shape() {
        let dir = std::env::temp_dir().join(format!("xtask-conv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("route.ts"),
            "import { withOrg } from \"@/auth\";\nimport { limit } from \"@/limit\";\n\nexport const GET = withOrg(async (req, { org }) => {\n  return Response.json({ org });\n});\n\nexport async function POST(req: Request) {\n  try {\n    const session = await requireSession(req);\n    return Response.json(session);\n  } catch {\n    return new Response(null, { status: 401 });\n  }\n}\n\nexport async function PUT(req: Request) {\n  try {\n    const blocked = await limit(req);\n    if (blocked) return blocked;\n  } finally {}\n}\n",
        )
        .unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let guards = names(&["withOrg", "requireSession"]);
        let wrappers = names(&["withOrg"]);

        // A handler made by a wrapper call: the declaration is the guard.
        let get = handler(&dir, "route.ts", "GET", &guards, &wrappers, false).unwrap();
        assert_eq!(
            get.first,
            "export const GET = withOrg(async (req, { org }) => {"
        );
        assert_eq!(get.calls, Some(("withOrg".to_string(), true)));
        assert!(get
            .excerpt
            .starts_with("import { withOrg } from \"@/auth\";\nimport { limit }"));
        assert!(get.excerpt.ends_with("});"), "{}", get.excerpt);
        assert_eq!(get.line, 4);

        // A guard inside `try`: the statement in the block, not `try {`.
        let post = handler(&dir, "route.ts", "POST", &guards, &wrappers, false).unwrap();
        assert_eq!(post.first, "const session = await requireSession(req);");
        assert_eq!(post.calls, Some(("requireSession".to_string(), false)));
        assert!(post.setup.is_empty());

        // The limiter: the line the call is on.
        let put = handler(&dir, "route.ts", "PUT", &names(&["limit"]), &[], true).unwrap();
        assert_eq!(put.first, "const blocked = await limit(req);");
        assert!(handler(&dir, "route.ts", "GET", &names(&["limit"]), &[], true).is_none());
        assert!(handler(&dir, "route.ts", "DELETE", &guards, &wrappers, false).is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
