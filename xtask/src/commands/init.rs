//! `cargo xtask init`: write `xtask.toml` from the repository's own conventions.
//!
//! Everything is measured, never guessed silently: each key written carries a comment with
//! its evidence ("requireAuthContext is the first statement of 96 of 120 handlers"), and a
//! key that could not be inferred is written commented out, with the question to answer.
//! The migrations are read with the same static reader `verify` uses; route handlers with
//! the same parser (oxc). The result always loads with [`Config::parse`].

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use oxc_allocator::Allocator;
use oxc_ast::ast::{ArrowFunctionBody, Declaration, Expression, Statement};
use regex::Regex;

mod decide;
mod public;

use crate::{
    config::{self, Config},
    exit::{self, Outcome},
    flags,
    repo::Changes,
    ts::{self, Source},
};

pub fn run(flags: flags::Init) -> anyhow::Result<Outcome> {
    let root = match &flags.repo {
        Some(dir) if !dir.is_dir() => {
            return Err(exit::usage(format!(
                "--repo {}: no such directory",
                dir.display()
            )))
        }
        Some(dir) => dir.clone(),
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            crate::repo::toplevel(&cwd)?
        }
    };
    let target = root.join(config::FILE_NAME);
    if !flags.print && !flags.force && std::fs::symlink_metadata(&target).is_ok() {
        return Err(exit::usage(format!(
            "{} exists already and was left as it is. Run `cargo xtask init --force` to replace it, or `cargo xtask init --print` to see what init would write.",
            target.display()
        )));
    }
    let text = infer(&root);
    Config::parse(&text).map_err(|e| {
        exit::tool(format!(
            "init wrote a configuration that does not load ({e}); this is a bug of xtask"
        ))
    })?;
    if flags.print {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
    } else {
        crate::outfile::write_atomic(&target, text.as_bytes())
            .with_context(|| format!("cannot write {}", target.display()))?;
        eprintln!(
            "wrote {}: read its comments, answer the questions of the commented-out keys, then run `cargo xtask verify --all`",
            target.display()
        );
    }
    Ok(Outcome::Clean)
}

/// One line of the file: a key with its value (TOML) and its evidence, or a question.
#[derive(Clone)]
enum Line {
    Key {
        key: String,
        value: String,
        why: String,
    },
    Question {
        key: String,
        example: String,
        question: String,
    },
    Raw(String),
}

#[derive(Default, Clone)]
struct Section {
    lines: Vec<Line>,
}

impl Section {
    fn key(&mut self, key: &str, value: String, why: impl Into<String>) {
        self.lines.push(Line::Key {
            key: key.into(),
            value,
            why: why.into(),
        });
    }
    fn ask(&mut self, key: &str, example: String, question: impl Into<String>) {
        self.lines.push(Line::Question {
            key: key.into(),
            example,
            question: question.into(),
        });
    }
    fn raw(&mut self, s: impl Into<String>) {
        self.lines.push(Line::Raw(s.into()));
    }
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

fn comment(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Read the repository and write the configuration's text.
pub fn infer(root: &Path) -> String {
    let files = Files::walk(root);
    let mut out = String::new();
    out.push_str(
        "# xtask.toml written by `cargo xtask init` from this repository's own conventions.\n\
         # Each key says what it was inferred from; a commented-out key is a question init could\n\
         # not answer. Every key is optional (see the README of xtask); check them, then run\n\
         # `cargo xtask verify --all`.\n",
    );
    let migrations = migrations_section(&files);
    let tenancy = tenancy_section(root, &migrations.1);
    let routes = routes_section(root, &files);
    let contracts = contracts_section(root, &files, routes.1.as_deref());
    let commands = commands_section(root, &files, routes.1.as_deref());
    for (name, section) in [
        ("tenancy", tenancy),
        ("migrations", migrations.0),
        ("routes", routes.0),
        ("contracts", contracts),
        ("commands", commands),
    ] {
        write_section(&mut out, name, section);
    }
    out
}

fn write_section(out: &mut String, name: &str, section: Section) {
    out.push_str(&format!("\n[{name}]\n"));
    let mut tail = Vec::new();
    for line in section.lines {
        match line {
            Line::Key { key, value, why } => {
                out.push_str(&format!("# {}\n{key} = {value}\n", comment(&why)));
            }
            Line::Question {
                key,
                example,
                question,
            } => {
                out.push_str(&format!("# {}\n# {key} = {example}\n", comment(&question)));
            }
            // Array-of-tables entries must come after the plain keys of the section.
            Line::Raw(s) => tail.push(s),
        }
    }
    for s in tail {
        out.push_str(&s);
    }
}

/// The repository's files (relative, `/`-separated), without dependencies, builds and VCS.
struct Files {
    paths: Vec<String>,
}

impl Files {
    fn walk(root: &Path) -> Files {
        const SKIP: [&str; 9] = [
            "node_modules",
            ".git",
            ".next",
            "dist",
            "build",
            "target",
            ".turbo",
            "coverage",
            ".vercel",
        ];
        let mut paths = Vec::new();
        let walker = walkdir::WalkDir::new(root)
            .max_depth(12)
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0 || !SKIP.contains(&e.file_name().to_string_lossy().as_ref())
            });
        for e in walker.flatten() {
            if !e.file_type().is_file() {
                continue;
            }
            if let Ok(rel) = e.path().strip_prefix(root) {
                let rel = rel.to_string_lossy().replace('\\', "/");
                paths.push(rel);
            }
        }
        paths.sort();
        Files { paths }
    }
}

fn plural(n: usize, one: &str) -> String {
    match (n, one) {
        (1, "polic") => "1 policy".into(),
        (_, "polic") => format!("{n} policies"),
        (1, _) => format!("1 {one}"),
        _ => format!("{n} {one}s"),
    }
}

// ---------------------------------------------------------------------------------------
// migrations

fn migrations_section(files: &Files) -> (Section, Vec<String>) {
    let mut s = Section::default();
    let name = Regex::new(r"^\d+_.*\.sql$").unwrap();
    let mut dirs: BTreeMap<String, usize> = BTreeMap::new();
    for p in &files.paths {
        if let Some((dir, file)) = p.rsplit_once('/') {
            if (dir == "supabase/migrations" || dir.ends_with("/supabase/migrations"))
                && name.is_match(file)
            {
                *dirs.entry(dir.to_string()).or_default() += 1;
            }
        }
    }
    let found: Vec<String> = dirs.keys().cloned().collect();
    if found.is_empty() {
        s.ask(
            "dirs",
            list(&["supabase/migrations".into()]),
            "no `supabase/migrations` directory with `<timestamp>_<name>.sql` files was found: where are the migrations?",
        );
    } else {
        let why = dirs
            .iter()
            .map(|(d, n)| format!("{d} holds {}", plural(*n, "migration")))
            .collect::<Vec<_>>()
            .join("; ");
        s.key("dirs", list(&found), why);
    }
    (s, found)
}

// ---------------------------------------------------------------------------------------
// tenancy

const USER_COLUMNS: [&str; 7] = [
    "user_id",
    "owner_id",
    "member_id",
    "created_by",
    "profile_id",
    "author_id",
    "creator_id",
];

fn qualified(name: &str) -> String {
    if name.contains('.') {
        name.to_string()
    } else {
        format!("public.{name}")
    }
}

fn bare(name: &str) -> String {
    name.strip_prefix("public.").unwrap_or(name).to_string()
}

struct TableFacts {
    name: String,
    columns: Vec<(String, Option<String>)>,
    /// Lowercased USING and WITH CHECK texts.
    policies: Vec<String>,
    /// RLS is enabled and no policy exists: no client role can touch it.
    closed: bool,
}

/// The membership table the policies tie to the current user, with its tenant and user
/// columns: `x in (select tenant from m where user = auth.uid())` in a policy, or a helper
/// function a policy calls whose body reads `m` and names both columns. Helpers are found
/// as the judge finds them ([`crate::rules::policy::Judge::helpers_called`] with `m` as
/// the membership table), from the reader's reading of their bodies.
struct Membership {
    table: String,
    tenant: String,
    user: String,
    /// Policies that reach it.
    policies: usize,
    /// Helper functions (qualified, `public.` dropped) that read it.
    helpers: BTreeSet<String>,
    /// Policies that look it up in a sub-select.
    subselects: usize,
}

impl Membership {
    fn evidence(&self) -> String {
        let mut how = Vec::new();
        if self.subselects > 0 {
            how.push(format!(
                "{} `in (select {} from {} where {} = auth.uid())`",
                plural(self.subselects, "polic"),
                self.tenant,
                self.table,
                self.user
            ));
        }
        if !self.helpers.is_empty() {
            let names: Vec<&str> = self.helpers.iter().map(String::as_str).collect();
            how.push(format!(
                "they call {}, whose {} {} and name{} `{}` and `{}`",
                names.join(", "),
                if names.len() == 1 {
                    "body reads"
                } else {
                    "bodies read"
                },
                self.table,
                if names.len() == 1 { "s" } else { "" },
                self.tenant,
                self.user
            ));
        }
        format!(
            "{} reach {} ({})",
            plural(self.policies, "polic"),
            self.table,
            how.join("; ")
        )
    }
}

/// Tables whose policies compare their `id` with the current user: each row is a user.
fn owner_by_id(tables: &[TableFacts]) -> BTreeSet<String> {
    let uid = Regex::new(
        r"(?:^|[^\w.])(?:\w+\.)?id\s*=\s*\(?\s*(?:select\s+)?auth\.uid\(\)|auth\.uid\(\)(?:\s+as\s+\w+)?\s*\)?\s*=\s*(?:\w+\.)?id\b",
    )
    .unwrap();
    tables
        .iter()
        .filter(|t| t.policies.iter().any(|p| uid.is_match(p)))
        .map(|t| t.name.clone())
        .collect()
}

/// The table a `<stem>_id` column is named after, if the history has one.
fn named_after(tables: &[TableFacts], column: &str) -> Option<String> {
    let stem = column.strip_suffix("_id")?;
    [format!("{stem}s"), format!("{stem}es"), stem.to_string()]
        .into_iter()
        .find(|n| tables.iter().any(|t| t.name == *n))
}

fn find_membership(
    tables: &[TableFacts],
    functions: &[crate::schema::Function],
) -> Option<Membership> {
    let owners = owner_by_id(tables);
    let refs_owner = |r: &Option<String>| r.as_deref().is_some_and(|r| owners.contains(&bare(r)));
    // How surely a column holds a user: a foreign key to auth.users, a user-like name, a
    // foreign key to a table whose rows are users (`accounts.id = auth.uid()`).
    let user_rank = |c: &str, r: &Option<String>| -> Option<u8> {
        if r.as_deref() == Some("auth.users") {
            Some(0)
        } else if USER_COLUMNS.contains(&c) {
            Some(1)
        } else if refs_owner(r) {
            Some(2)
        } else {
            None
        }
    };
    let tenant_like = |c: &str, r: &Option<String>| {
        c != "id"
            && c.ends_with("_id")
            && user_rank(c, r).is_none()
            && (r.is_some() || named_after(tables, c).is_some())
    };
    let sub = Regex::new(
        r"in\s*\(\s*select\s+(?:\w+\.)?(\w+)\s+from\s+([\w.]+)(?:\s+(?:as\s+)?\w+)?\s+where\s+\(?\s*(?:\w+\.)?(\w+)\s*=\s*\(?\s*(?:select\s+)?auth\.uid\(\)",
    )
    .unwrap();
    let policies: Vec<&String> = tables.iter().flat_map(|t| &t.policies).collect();
    let mut best: Option<(Membership, u8)> = None;
    for m in tables {
        for (u, ur) in &m.columns {
            let Some(rank) = user_rank(u, ur) else {
                continue;
            };
            for (t, tr) in &m.columns {
                if t == u || !tenant_like(t, tr) {
                    continue;
                }
                let tenancy = config::Tenancy {
                    column: t.clone(),
                    membership_table: qualified(&m.name),
                    membership_tenant_column: t.clone(),
                    membership_user_column: u.clone(),
                    ..config::Tenancy::default()
                };
                let judge =
                    crate::rules::policy::Judge::new(&tenancy).with_functions(functions.iter());
                let mut found = Membership {
                    table: m.name.clone(),
                    tenant: t.clone(),
                    user: u.clone(),
                    policies: 0,
                    helpers: BTreeSet::new(),
                    subselects: 0,
                };
                for p in &policies {
                    let by_sub = sub
                        .captures_iter(p)
                        .any(|c| c[1] == **t && bare(&c[2]) == m.name && c[3] == **u);
                    let helpers: Vec<String> = judge
                        .helpers_called(p)
                        .into_iter()
                        .filter(|name| {
                            functions
                                .iter()
                                .find(|f| f.name == **name)
                                .is_some_and(|f| f.has_word(t) && f.has_word(u))
                        })
                        .map(|n| bare(&n.to_string()))
                        .collect();
                    if by_sub {
                        found.subselects += 1;
                    }
                    if by_sub || !helpers.is_empty() {
                        found.policies += 1;
                    }
                    found.helpers.extend(helpers);
                }
                if found.policies == 0 {
                    continue;
                }
                let better = best.as_ref().is_none_or(|(b, r)| {
                    (found.policies, std::cmp::Reverse(rank)) > (b.policies, std::cmp::Reverse(*r))
                });
                if better {
                    best = Some((found, rank));
                }
            }
        }
    }
    best.map(|(m, _)| m)
}

fn tenancy_section(root: &Path, dirs: &[String]) -> Section {
    let mut s = Section::default();
    if dirs.is_empty() {
        s.ask(
            "column",
            q("tenant_id"),
            "no migrations were found, so the tenant column could not be measured: which column do tenant tables carry?",
        );
        return s;
    }
    let mut cfg = Config::default();
    cfg.migrations.dirs = dirs.to_vec();
    let histories = crate::gather::migrations::read_all(root, &cfg, &Changes::all());
    let mut tables = Vec::new();
    let mut functions: Vec<crate::schema::Function> = Vec::new();
    let mut sql_text = String::new();
    for h in &histories {
        functions.extend(h.schema.functions.values().cloned());
        for (_, loaded) in &h.files {
            if let Some(text) = loaded_text(loaded) {
                sql_text.push_str(&text.to_lowercase());
                sql_text.push('\n');
            }
        }
        for t in h.schema.tables.values() {
            if crate::rules::tenant::is_platform(&t.name) {
                continue;
            }
            tables.push(TableFacts {
                name: bare(&t.name.to_string()),
                columns: t
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.references.as_ref().map(|r| r.to_string())))
                    .collect(),
                policies: t
                    .policies
                    .iter()
                    .flat_map(|p| [p.using.clone(), p.with_check.clone()])
                    .flatten()
                    // Quoted identifiers (`"public"."x"`, pg_dump style) read like plain ones.
                    .map(|e| e.to_lowercase().replace('"', ""))
                    .collect(),
                closed: t.rls.on && t.policies.is_empty(),
            });
        }
    }
    let with_policies = tables.iter().filter(|t| !t.policies.is_empty()).count();

    // The tenant column: the column policies filter on in the most tables.
    let mut in_policies: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tables {
        let idents: BTreeSet<String> = t
            .policies
            .iter()
            .flat_map(|p| crate::sql::idents(p))
            .collect();
        for (c, _) in &t.columns {
            if c != "id" && c.ends_with("id") && idents.contains(c) {
                *in_policies.entry(c.clone()).or_default() += 1;
            }
        }
    }
    let best = |user: bool| {
        in_policies
            .iter()
            .filter(|(c, _)| USER_COLUMNS.contains(&c.as_str()) == user)
            .max_by_key(|(c, n)| (**n, std::cmp::Reverse((*c).clone())))
            .map(|(c, n)| (c.clone(), *n))
    };
    // A column used to look up a membership or passed to a function is a tenant whatever
    // its count.
    let strong = |c: &str| {
        let c = regex::escape(c);
        let re = Regex::new(&format!(
            r"(?:^|[^\w.]){c}\s+in\s*\(\s*select|\w\s*\(\s*(?:(?:[^()]|\([^()]*\))*,\s*)?(?:\w+\.)?{c}\s*[,)]"
        ))
        .unwrap();
        tables
            .iter()
            .flat_map(|t| &t.policies)
            .any(|p| re.is_match(p))
    };
    let mut by_lookup = false;
    // The membership the policies tie to the current user names the tenant outright,
    // however few tables its column is on (a tenant reached through parents).
    let membership = find_membership(&tables, &functions);
    let chosen = match (best(false), best(true)) {
        _ if membership.is_some() => {
            let t = membership.as_ref().unwrap().tenant.clone();
            let n = in_policies.get(&t).copied().unwrap_or(0);
            Some(((t, n), false))
        }
        (Some(t), _) if t.1 >= 2 => Some((t, false)),
        // One table is weak evidence: only against a user column that is not much commoner.
        (Some(t), u) if strong(&t.0) && u.as_ref().is_none_or(|u| u.1 <= 2 * t.1) => {
            by_lookup = true;
            Some((t, false))
        }
        (_, Some(u)) => Some((u, true)),
        (Some(t), None) => Some((t, false)),
        (None, None) => None,
    };
    let Some(((column, count), owner_as_tenant)) = chosen else {
        s.ask(
            "column",
            q("tenant_id"),
            format!(
                "no policy of the {} tables filters on a `*_id` column: which column do tenant tables carry?",
                tables.len()
            ),
        );
        // Tables scoped by their owner are known all the same (`accounts.id = auth.uid()`).
        let column = Config::default().tenancy.column;
        let entries = other_tables(&tables, &column, &[], None);
        decide::finish(
            &mut s,
            decide::Facts {
                tables: &tables,
                histories: &histories,
                column: &column,
                root_name: None,
                dirs,
                sql_text: &sql_text,
            },
            entries,
        );
        return s;
    };
    let carrying = tables
        .iter()
        .filter(|t| t.columns.iter().any(|(c, _)| *c == column))
        .count();
    s.key(
        "column",
        q(&column),
        format!(
            "{column} is filtered on by the policies of {count} of the {with_policies} tables with policies ({}); {carrying} of {} tables carry it{}",
            if let Some(m) = &membership {
                format!("the membership table {} ties it to the current user through `{}`: {}", m.table, m.user, m.evidence())
            } else if by_lookup {
                "policies look members up by it or pass it to a function".to_string()
            } else {
                "the most frequent column in policies".to_string()
            },
            tables.len(),
            if owner_as_tenant { "; each user is their own tenant (owner-as-tenant)" } else { "" }
        ),
    );

    // Root table: where the tenant column points.
    let mut targets: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tables {
        for (c, r) in &t.columns {
            if *c == column {
                if let Some(r) = r {
                    *targets.entry(bare(r)).or_default() += 1;
                }
            }
        }
    }
    // Without a foreign key (added later, or not at all): the table named after the column.
    let named_root = named_after(&tables, &column);
    if targets.is_empty() {
        if let Some(r) = &named_root {
            targets.insert(r.clone(), 0);
        }
    }
    match targets.iter().max_by_key(|(_, n)| **n) {
        Some((r, 0)) => s.key(
            "root_table",
            q(r),
            format!("no `{column}` column has a foreign key the reader saw; {r} is the table named after the column"),
        ),
        Some((r, n)) => s.key(
            "root_table",
            q(r),
            format!("{n} of {carrying} `{column}` columns reference {r}"),
        ),
        None if owner_as_tenant => s.key(
            "root_table",
            q("auth.users"),
            format!("`{column}` is compared with the current user: the tenant is the user"),
        ),
        None => s.ask(
            "root_table",
            q("tenants"),
            format!("no `{column}` column has a foreign key: which table is the tenant?"),
        ),
    }

    let col = regex::escape(&column);
    let policies: Vec<&String> = tables.iter().flat_map(|t| &t.policies).collect();
    let count_in = |re: &Regex| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for p in &policies {
            let names: BTreeSet<String> = re.captures_iter(p).map(|c| bare(&c[1])).collect();
            for n in names {
                *m.entry(n).or_default() += 1;
            }
        }
        m
    };

    // Source functions: `col = f()`.
    let source = Regex::new(&format!(
        r"(?:^|[^\w.]){col}\s*=\s*\(?\s*(?:select\s+)?([a-z_][\w]*(?:\.[a-z_]\w*)?)\s*\(\s*\)|([a-z_][\w]*(?:\.[a-z_]\w*)?)\s*\(\s*\)(?:\s+as\s+\w+)?\s*\)?\s*=\s*(?:[\w]+\.)?{col}\b"
    ))
    .unwrap();
    let mut sources: BTreeMap<String, usize> = BTreeMap::new();
    for p in &policies {
        let names: BTreeSet<String> = source
            .captures_iter(p)
            .filter_map(|c| c.get(1).or(c.get(2)).map(|m| bare(m.as_str())))
            .collect();
        for n in names {
            *sources.entry(n).or_default() += 1;
        }
    }
    if sources.is_empty() {
        s.key(
            "source_functions",
            "[]".into(),
            format!("no policy compares `{column}` with a function call like `{column} = current_tenant()`"),
        );
    } else {
        let names: Vec<String> = sources.keys().cloned().collect();
        s.key(
            "source_functions",
            list(&names),
            sources
                .iter()
                .map(|(n, k)| format!("`{column} = {n}()` in {}", plural(*k, "polic")))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }

    // Check functions: `f(col)` or `f(x, col)`.
    let check = Regex::new(&format!(
        r"([a-z_][\w]*(?:\.[a-z_]\w*)?)\s*\(\s*(?:(?:[^()]|\([^()]*\))*,\s*)?(?:[\w]+\.)?{col}\s*(?:::\s*\w+\s*)?[,)]"
    ))
    .unwrap();
    let noise = [
        "coalesce", "in", "any", "and", "or", "not", "exists", "select", "lower",
    ];
    let mut checks: BTreeMap<String, usize> = count_in(&check)
        .into_iter()
        .filter(|(n, _)| !noise.contains(&n.as_str()))
        .collect();
    // With the membership known, a function whose body the reader has and which does not
    // read the membership table is no tenant check, whatever it is passed (the judge's
    // reading of helpers: `Judge::with_functions` keeps those that read it).
    let mut not_checks: Vec<String> = Vec::new();
    if let Some(m) = membership.as_ref().filter(|m| m.tenant == column) {
        let members = crate::schema::QualName::from_config(&qualified(&m.table));
        checks.retain(|name, _| {
            let wanted = crate::schema::QualName::from_config(name);
            let bodies: Vec<&crate::schema::Function> = functions
                .iter()
                .filter(|f| f.name == wanted && !f.reads.is_empty())
                .collect();
            let keep = bodies.is_empty() || bodies.iter().any(|f| f.reads.contains(&members));
            if !keep {
                not_checks.push(name.clone());
            }
            keep
        });
    }
    let dropped = if not_checks.is_empty() {
        String::new()
    } else {
        format!(
            "; not {}: {} (passed `{column}`, but {} not read the membership table)",
            if not_checks.len() == 1 {
                "this one"
            } else {
                "these"
            },
            not_checks.join(", "),
            if not_checks.len() == 1 {
                "its body does"
            } else {
                "their bodies do"
            }
        )
    };
    if checks.is_empty() {
        s.key(
            "check_functions",
            "[]".into(),
            if not_checks.is_empty() {
                format!("no policy passes `{column}` to a function")
            } else {
                format!("no policy passes `{column}` to a function that checks membership{dropped}")
            },
        );
    } else {
        s.key(
            "check_functions",
            list(&checks.keys().cloned().collect::<Vec<_>>()),
            format!(
                "{}{dropped}",
                checks
                    .iter()
                    .map(|(n, k)| format!("`{n}({column})` in {}", plural(*k, "polic")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }

    // Membership: `col in (select t from m where u = auth.uid())`, else a `*member*` table
    // that carries the tenant column and a user column.
    let member = Regex::new(&format!(
        r"{col}\s+in\s*\(\s*select\s+(?:\w+\.)?(\w+)\s+from\s+([\w.]+)(?:\s+(?:as\s+)?\w+)?\s+where\s+\(?\s*(?:\w+\.)?(\w+)\s*=\s*\(?\s*(?:select\s+)?auth\.uid\(\)"
    ))
    .unwrap();
    let mut memberships: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for p in &policies {
        for c in member.captures_iter(p) {
            *memberships
                .entry((bare(&c[2]), c[1].to_string(), c[3].to_string()))
                .or_default() += 1;
        }
    }
    if let Some(m) = membership.as_ref().filter(|m| m.tenant == column) {
        let why = m.evidence();
        s.key("membership_table", q(&m.table), why.clone());
        s.key("membership_tenant_column", q(&m.tenant), why.clone());
        s.key("membership_user_column", q(&m.user), why);
    } else if let Some(((table, tcol, ucol), n)) = memberships.iter().max_by_key(|(_, n)| **n) {
        let why = format!(
            "`{column} in (select {tcol} from {table} where {ucol} = auth.uid())` in {}",
            plural(*n, "polic")
        );
        s.key("membership_table", q(table), why.clone());
        s.key("membership_tenant_column", q(tcol), why.clone());
        s.key("membership_user_column", q(ucol), why);
    } else if let Some(t) = tables
        .iter()
        .filter(|t| {
            let n = t.name.rsplit('.').next().unwrap_or(&t.name);
            n.contains("member")
                || n.ends_with("_user")
                || n.ends_with("_users")
                || n.starts_with("user_")
        })
        .min_by_key(|t| {
            let n = t.name.rsplit('.').next().unwrap_or(&t.name);
            (!n.contains("member"), !n.contains("_user"), t.name.clone())
        })
        .filter(|t| {
            t.columns.iter().any(|(c, _)| *c == column)
                && t.columns
                    .iter()
                    .any(|(c, _)| USER_COLUMNS.contains(&c.as_str()) && *c != column)
        })
    {
        let ucol = t
            .columns
            .iter()
            .map(|(c, _)| c)
            .find(|c| USER_COLUMNS.contains(&c.as_str()) && **c != column)
            .cloned()
            .unwrap_or_default();
        let why = format!(
            "{} is the likeliest membership table by name (`*member*`, `*_users`, `user_*`) and carries both `{column}` and a user column (`{ucol}`)",
            t.name
        );
        s.key("membership_table", q(&t.name), why.clone());
        s.key("membership_tenant_column", q(&column), why.clone());
        s.key("membership_user_column", q(&ucol), why);
    } else if owner_as_tenant {
        s.raw(String::new());
        s.ask(
            "membership_table",
            q("tenant_members"),
            "no membership table: the tenant is the user itself. If users share tenants, which table lists the members?",
        );
    } else {
        s.ask(
            "membership_table",
            q("tenant_members"),
            format!("no table lists members of a tenant by `{column}` and a user column: which table says who belongs to which tenant?"),
        );
    }

    // Settings read with current_setting.
    let setting = Regex::new(r"current_setting\s*\(\s*'([^']+)'").unwrap();
    let settings: BTreeSet<String> = setting
        .captures_iter(&sql_text)
        .map(|c| c[1].to_string())
        // Custom settings are namespaced (`app.tenant_id`); Postgres' own and PostgREST's
        // `request.*` are not tenants.
        .filter(|n| n.contains('.') && !n.starts_with("request.") && !n.starts_with("app.settings"))
        .collect();
    if settings.is_empty() {
        s.key(
            "settings",
            "[]".into(),
            "no migration reads a namespaced setting with `current_setting('app.x')` (request.* aside)",
        );
    } else {
        s.key(
            "settings",
            list(&settings.into_iter().collect::<Vec<_>>()),
            "read with `current_setting('...')` in the migrations: check that each one carries the tenant",
        );
    }

    let root_name = targets
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(r, _)| r.clone());
    let checks: Vec<String> = checks.keys().cloned().collect();
    let entries = other_tables(&tables, &column, &checks, root_name.as_deref());
    decide::finish(
        &mut s,
        decide::Facts {
            tables: &tables,
            histories: &histories,
            column: &column,
            root_name: root_name.as_deref(),
            dirs,
            sql_text: &sql_text,
        },
        entries,
    );
    s
}

/// One `[[tenancy.tables]]` block init writes: the table, its keys (TOML values) and the
/// evidence for each.
struct Entry {
    table: String,
    keys: Vec<(&'static str, String)>,
    reasons: Vec<String>,
}

impl Entry {
    fn new(table: &str, key: &'static str, value: String, reason: String) -> Entry {
        Entry {
            table: qualified(table),
            keys: vec![(key, value)],
            reasons: vec![reason],
        }
    }

    fn text(&self) -> String {
        let mut out = format!("\n[[tenancy.tables]]\ntable = {}\n", q(&self.table));
        for (k, v) in &self.keys {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out.push_str(&format!("reason = {}\n", q(&self.reasons.join("; "))));
        out
    }
}

/// The tables scoped otherwise than by `column` (an owner column, another column passed to
/// a check function), as `[[tenancy.tables]]` entries.
fn other_tables(
    tables: &[TableFacts],
    column: &str,
    checks: &[String],
    root_name: Option<&str>,
) -> Vec<Entry> {
    // Tables whose tenancy differs.
    let owner = Regex::new(
        r"(?:^|[^\w.])(?:\w+\.)?(user_id|owner_id|id|profile_id|created_by|author_id)\s*=\s*\(?\s*(?:select\s+)?auth\.uid\(\)|auth\.uid\(\)(?:\s+as\s+\w+)?\s*\)?\s*=\s*(?:\w+\.)?(user_id|owner_id|id|profile_id|created_by|author_id)\b",
    )
    .unwrap();
    let mut entries = Vec::new();
    for t in tables {
        if t.policies.is_empty()
            || t.columns.iter().any(|(c, _)| *c == column)
            || Some(t.name.as_str()) == root_name
        {
            continue;
        }
        let text = t.policies.join(" ");
        let own: Option<String> = owner
            .captures_iter(&text)
            .filter_map(|c| c.get(1).or(c.get(2)).map(|m| m.as_str().to_string()))
            .find(|c| t.columns.iter().any(|(n, _)| n == c));
        let other_col = checks.iter().find_map(|f| {
            let re = Regex::new(&format!(
                r"{}\s*\(\s*(?:\w+\.)?(\w+)\s*[,)]",
                regex::escape(f)
            ))
            .ok()?;
            let found = re
                .captures_iter(&text)
                .map(|c| c[1].to_string())
                .find(|c| t.columns.iter().any(|(n, _)| n == c));
            found
        });
        entries.push(match (other_col, own) {
            (Some(c), _) => Entry::new(
                &t.name,
                "column",
                q(&c),
                format!("inferred by init: its policies pass `{c}` to a check function; it has no `{column}`"),
            ),
            (None, Some(c)) => Entry::new(
                &t.name,
                "owner_column",
                q(&c),
                format!("inferred by init: its policies compare `{c}` with auth.uid(); it has no `{column}`"),
            ),
            _ => continue,
        });
    }
    entries
}

fn loaded_text(loaded: &crate::gather::migrations::Loaded) -> Option<String> {
    loaded.text.clone()
}

// ---------------------------------------------------------------------------------------
// routes

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The first thing each handler does, as the route checker would see it.
#[derive(Default)]
struct RouteFacts {
    handlers: usize,
    /// Called as the first statement, its result returned or given a callback: a wrapper.
    wrappers: BTreeMap<String, usize>,
    /// Called (awaited) as the first statement: a guard call.
    guards: BTreeMap<String, usize>,
    limiters: BTreeMap<String, usize>,
    /// Route folders (relative to the root) of handlers that start with no recognised guard.
    unguarded_dirs: BTreeMap<String, usize>,
    /// Route folders exempt by what their handlers do ([`public::evidence`]): a sign-in
    /// callback, the same content for everyone, a shared secret checked first, a tRPC
    /// adapter, ...; with their handlers and the evidence.
    exempt_dirs: BTreeMap<String, (usize, String)>,
    /// Guard calls opening one handler only, kept because their body refuses on a failed
    /// check: where that body is.
    refusing: BTreeMap<String, String>,
    /// Route folders of forms a visitor without an account submits ([`public::visitor_form`]).
    form_dirs: BTreeSet<String>,
}

/// The route roots and how many route files each holds: `<app>/app/api`, or the app
/// directory itself (`<app>/app`) when some of its route handlers sit outside `api/`
/// (`app/auth/callback/route.ts`), so that none is left unchecked.
fn route_roots(files: &Files) -> BTreeMap<String, usize> {
    // Per app directory: route files under its `api/`, and elsewhere.
    let mut apps: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for p in &files.paths {
        let Some((dir, file)) = p.rsplit_once('/') else {
            continue;
        };
        if !file.starts_with("route.") || !ts::is_code(file) {
            continue;
        }
        let full = format!("/{dir}/");
        // The innermost `app` directory above the file.
        let Some(i) = full.rfind("/app/") else {
            continue;
        };
        let (i, in_api) = match full.find("/app/api/") {
            Some(j) => (j, true),
            None => (i, false),
        };
        let app = full[1..i + "/app".len()].to_string();
        let e = apps.entry(app).or_default();
        if in_api {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    apps.into_iter()
        .map(|(app, (api, other))| {
            if other == 0 {
                (format!("{app}/api"), api)
            } else {
                (app, api + other)
            }
        })
        .collect()
}

fn routes_section(root: &Path, files: &Files) -> (Section, Option<String>) {
    let mut s = Section::default();
    let roots = route_roots(files);
    let Some((chosen, n)) = roots
        .iter()
        .max_by_key(|(r, n)| (**n, std::cmp::Reverse((*r).clone())))
        .map(|(r, n)| (r.clone(), *n))
    else {
        s.ask(
            "root",
            q("apps/api/src/app/api"),
            "no `app/api/**/route.ts` was found: where are the Next.js route handlers?",
        );
        return (s, None);
    };
    let others: Vec<(String, usize)> = {
        let mut v: Vec<(String, usize)> = roots
            .iter()
            .filter(|(r, _)| **r != chosen)
            .map(|(r, n)| (r.clone(), *n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    };
    s.key(
        "root",
        q(&chosen),
        format!(
            "{} under it{}",
            plural(n, "route file"),
            if others.is_empty() {
                ""
            } else {
                ", the most of the route roots"
            }
        ),
    );
    if !others.is_empty() {
        s.key(
            "roots",
            list(&others.iter().map(|o| o.0.clone()).collect::<Vec<_>>()),
            format!(
                "more route roots (other apps): {}",
                others
                    .iter()
                    .map(|(r, n)| format!("{} under {r}", plural(*n, "route file")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    // The code reader recurses once per level: the route files are read on one thread whose
    // stack holds the deepest of them.
    let all: Vec<String> = std::iter::once(chosen.clone())
        .chain(others.iter().map(|o| o.0.clone()))
        .collect();
    let deepest = files
        .paths
        .iter()
        .filter(|p| all.iter().any(|r| p.starts_with(&format!("{r}/"))) && ts::is_code(p))
        .filter_map(|p| std::fs::read(root.join(p)).ok())
        .max_by_key(|b| ts::nesting_chars(b))
        .unwrap_or_default();
    let mut facts = ts::with_stack_for(&deepest, || read_routes(root, files, &all));
    for (dir, why) in public::middleware(root, files, &chosen) {
        facts.exempt_dirs.entry(dir).or_insert((0, why));
    }
    let h = facts.handlers;
    let top = |m: &BTreeMap<String, usize>| -> Vec<(String, usize)> {
        let mut v: Vec<_> = m.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    };
    let describe = |v: &[(String, usize)], how: &str| {
        v.iter()
            .map(|(k, n)| format!("{k} {how} {n} of {h} handlers"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let wrappers = top(&facts.wrappers);
    if wrappers.is_empty() {
        s.key(
            "auth_wrappers",
            "[]".into(),
            format!("no handler of {h} returns a call that is given the handler as a callback"),
        );
    } else {
        s.key(
            "auth_wrappers",
            list(&wrappers.iter().map(|w| w.0.clone()).collect::<Vec<_>>()),
            describe(&wrappers, "wraps"),
        );
    }
    let guards = top(&facts.guards);
    let mut guard_names: Vec<String> = guards.iter().map(|w| w.0.clone()).collect();
    let mut why: Vec<String> = if guards.is_empty() {
        Vec::new()
    } else {
        let mut v = vec![describe(&guards, "is the first statement of")];
        v.extend(facts.refusing.iter().map(|(name, at)| {
            format!("{name}, first in one handler only, refuses by itself ({at})")
        }));
        v
    };
    // Supabase's own checks of the user, called in a helper the handlers call
    // (`getServerProfile()` calling `supabase.auth.getUser()`) rather than first: kept when
    // the route checker, which follows those helpers, finds more handlers guarded with it.
    let wrapper_names: Vec<String> = wrappers.iter().map(|w| w.0.clone()).collect();
    for (candidate, why_more) in supabase_guards(root, files, &all, &wrapper_names, &guard_names) {
        why.push(why_more);
        guard_names.push(candidate);
    }
    if guard_names.is_empty() {
        s.ask(
            "guard_calls",
            list(&["requireUser".into()]),
            format!("no auth-like call is the first statement of any of the {h} handlers: which call, made first, rejects a request without a user?"),
        );
    } else {
        s.key("guard_calls", list(&guard_names), why.join("; "));
    }
    let publics: Vec<String> = facts
        .unguarded_dirs
        .keys()
        .filter(|d| {
            d.split('/').any(|seg| {
                matches!(
                    seg,
                    "public" | "webhooks" | "webhook" | "health" | "examples" | "demo"
                )
            })
        })
        .map(|d| {
            let mut segs = Vec::new();
            for seg in d.split('/') {
                segs.push(seg);
                if matches!(
                    seg,
                    "public" | "webhooks" | "webhook" | "health" | "examples" | "demo"
                ) {
                    break;
                }
            }
            format!("{}/**", segs.join("/"))
        })
        .chain(facts.form_dirs.iter().map(|d| format!("{d}/**")))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let unguarded: Vec<String> = facts
        .unguarded_dirs
        .iter()
        .map(|(d, n)| format!("{d} ({n})"))
        .collect();
    if publics.is_empty() {
        s.ask(
            "public",
            list(&["public/**".into()]),
            if h == 0 {
                "no exported GET/POST/... handler was read: which route folders are public (they must call a rate limiter)?".to_string()
            } else if unguarded.is_empty() {
                "every handler starts with a guard: which route folders are public (they must call a rate limiter)?".to_string()
            } else {
                format!(
                    "handlers with no recognised guard first: {}. Which of these folders are public by design?",
                    unguarded.join(", ")
                )
            },
        );
    } else {
        s.key(
            "public",
            list(&publics),
            format!(
                "folders named public/webhooks/health/examples/demo whose handlers start with no guard{}; all handlers without one: {}",
                if facts.form_dirs.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", and forms a visitor submits (an email field, no user, cookie or database read: {})",
                        facts.form_dirs.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                },
                unguarded.join(", ")
            ),
        );
    }
    if !facts.exempt_dirs.is_empty() {
        let items: Vec<String> = facts
            .exempt_dirs
            .iter()
            .map(|(d, (_, why))| {
                format!(
                    "{{ name = {}, reason = {} }}",
                    q(&format!("{d}/**")),
                    q(&format!("inferred by init: {why}"))
                )
            })
            .collect();
        s.key(
            "exempt",
            format!("[{}]", items.join(", ")),
            format!(
                "handlers exempt by what they do (a sign-in callback, the same content for everyone, a shared secret checked first, a tRPC adapter, a one-time link, a folder the middleware closes): {}",
                facts
                    .exempt_dirs
                    .iter()
                    .map(|(d, (n, _))| if *n > 0 { format!("{d} ({n})") } else { d.clone() })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let limiters = top(&facts.limiters);
    if limiters.is_empty() {
        s.ask(
            "rate_limiters",
            list(&["rateLimit".into()]),
            "no route handler calls anything named like a rate limiter: which call limits public routes?",
        );
    } else {
        s.key(
            "rate_limiters",
            list(&limiters.iter().map(|w| w.0.clone()).collect::<Vec<_>>()),
            limiters
                .iter()
                .map(|(k, n)| format!("{k} is called in {}", plural(*n, "route file")))
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    database_handles(&mut s, root, files, &all);
    (s, Some(chosen))
}

/// `auth.getUser` and `auth.getClaims` (Supabase's checks of the signed-in user; not
/// `auth.getSession`, which trusts the cookie) as guard calls, each kept when the code calls
/// it and the route checker finds more handlers guarded with it than without: it follows
/// the helpers a handler calls, which init's first-statement reading does not.
fn supabase_guards(
    root: &Path,
    files: &Files,
    route_roots: &[String],
    wrappers: &[String],
    guards: &[String],
) -> Vec<(String, String)> {
    let mut cfg = Config::default();
    cfg.routes.root = route_roots.first().cloned().unwrap_or_default();
    cfg.routes.roots = route_roots.iter().skip(1).cloned().collect();
    cfg.routes.auth_wrappers = wrappers.to_vec();
    cfg.routes.guard_calls = guards.to_vec();
    cfg.routes.public = Vec::new();
    let guarded = |cfg: &Config| -> Option<(usize, usize)> {
        let ev = crate::gather::routes::analyze(root, cfg, &Changes::all()).ok()?;
        let handlers: Vec<_> = ev.routes.iter().flat_map(|r| &r.handlers).collect();
        Some((
            handlers.iter().filter(|h| h.auth == "guarded").count(),
            handlers.len(),
        ))
    };
    let called: Vec<&str> =
        ["auth.getUser", "auth.getClaims"]
            .into_iter()
            .filter(|c| !guards.iter().any(|g| g == c))
            .filter(|c| {
                let member = format!(".{c}(");
                files.paths.iter().filter(|p| ts::is_code(p)).any(|p| {
                    std::fs::read_to_string(root.join(p)).is_ok_and(|t| t.contains(&member))
                })
            })
            .collect();
    let mut out = Vec::new();
    if called.is_empty() {
        return out;
    }
    let Some((mut base, total)) = guarded(&cfg) else {
        return out;
    };
    for c in called {
        let mut with = cfg.clone();
        with.routes.guard_calls.push(c.to_string());
        let Some((n, _)) = guarded(&with) else {
            continue;
        };
        if n > base {
            out.push((
                c.to_string(),
                format!(
                    "with `{c}` (called in the code) as a guard call the route checker finds {n} of {total} handlers guarded instead of {base}: handlers reach it through the helpers they call"
                ),
            ));
            base = n;
            cfg = with;
        }
    }
    out
}

/// Drizzle handles (`export const db = drizzle(pool)`): they connect as the database owner,
/// so RLS does not guard their queries. The route checker knows a value made by
/// `drizzle(...)` where it can follow the import; listing the names covers the rest.
fn database_handles(s: &mut Section, root: &Path, files: &Files, route_roots: &[String]) {
    let made = Regex::new(
        r"(?m)^\s*(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=\n]+)?=\s*(?:await\s+)?drizzle\s*\(",
    )
    .unwrap();
    let mut handles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut routes: Vec<String> = Vec::new();
    for p in files.paths.iter().filter(|p| ts::is_code(p)) {
        let Ok(text) = std::fs::read_to_string(root.join(p)) else {
            continue;
        };
        if route_roots.iter().any(|r| p.starts_with(&format!("{r}/"))) {
            routes.push(text.clone());
        }
        if !text.contains("drizzle") {
            continue;
        }
        for c in made.captures_iter(&text) {
            handles.entry(c[1].to_string()).or_default().push(p.clone());
        }
    }
    if handles.is_empty() {
        return;
    }
    let why = handles
        .iter()
        .map(|(name, at)| {
            let used = Regex::new(&format!(r"\b{}\b", regex::escape(name))).unwrap();
            let n = routes.iter().filter(|t| used.is_match(t)).count();
            format!(
                "`{name} = drizzle(...)` in {}{}, named in {}",
                at[0],
                if at.len() > 1 {
                    format!(" (and {} more)", at.len() - 1)
                } else {
                    String::new()
                },
                plural(n, "route file")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    s.key(
        "database_handles",
        list(&handles.keys().cloned().collect::<Vec<_>>()),
        format!("{why}: a Drizzle handle connects as the database owner, RLS does not apply, so every query through it must filter on the tenant"),
    );
}

fn read_routes(root: &Path, files: &Files, route_roots: &[String]) -> RouteFacts {
    let mut facts = RouteFacts::default();
    let prefixes: Vec<String> = route_roots.iter().map(|r| format!("{r}/")).collect();
    let limiter =
        Regex::new(r"\b((?:\w*[Rr]ate_?[Ll]imit\w*)|(?:\w*[Ll]imiter))\s*(\.\s*(\w+)\s*)?\(")
            .unwrap();
    let mut firsts: Vec<(String, bool, String)> = Vec::new();
    for p in &files.paths {
        let Some(rel) = prefixes.iter().find_map(|pre| p.strip_prefix(pre.as_str())) else {
            continue;
        };
        let file = rel.rsplit('/').next().unwrap_or(rel);
        // Under a private folder (`_lib/`): no route (`verify` does not check it either).
        if !file.starts_with("route.") || !ts::is_code(file) || crate::gather::routes::private(rel)
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(p)) else {
            continue;
        };
        let mut limited = BTreeSet::new();
        for c in limiter.captures_iter(&text) {
            let name = match c.get(3) {
                Some(m) => m.as_str().to_string(),
                None => c[1].to_string(),
            };
            if !text[..c.get(0).unwrap().start()].ends_with("function ") {
                limited.insert(name);
            }
        }
        for n in limited {
            *facts.limiters.entry(n).or_default() += 1;
        }
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        let alloc = Allocator::default();
        let src = Source::new(p, &text);
        let Ok(program) = ts::parse(&alloc, &src) else {
            continue;
        };
        let before = firsts.len();
        for stmt in program.body.iter() {
            let Statement::ExportDeclaration(d) = stmt else {
                continue;
            };
            match &d.declaration {
                Declaration::FunctionDeclaration(f) => {
                    let Some(id) = &f.id else { continue };
                    if !METHODS.contains(&id.name.as_str()) {
                        continue;
                    }
                    facts.handlers += 1;
                    let first = f
                        .body
                        .as_ref()
                        .and_then(|b| first_call(b.statements.first()?));
                    match first {
                        Some((name, wrapper)) => firsts.push((name, wrapper, dir.clone())),
                        None => firsts.push((String::new(), false, dir.clone())),
                    }
                }
                Declaration::VariableDeclaration(v) => {
                    for decl in &v.declarations {
                        let Some(name) = decl.id.get_identifier_name() else {
                            continue;
                        };
                        if !METHODS.contains(&name.as_str()) {
                            continue;
                        }
                        facts.handlers += 1;
                        let first = match decl.init.as_ref().map(|e| e.get_inner_expression()) {
                            Some(Expression::CallExpression(c)) => {
                                callee_name(&c.callee).map(|n| (n, true))
                            }
                            Some(Expression::ArrowFunctionExpression(a)) => match &a.body {
                                ArrowFunctionBody::FunctionBody(b) => {
                                    b.statements.first().and_then(first_call)
                                }
                                _ => None,
                            },
                            _ => None,
                        };
                        match first {
                            Some((name, wrapper)) => firsts.push((name, wrapper, dir.clone())),
                            None => firsts.push((String::new(), false, dir.clone())),
                        }
                    }
                }
                _ => {}
            }
        }
        if !dir.is_empty() {
            match public::evidence(&dir, &text) {
                // Exempt by what it does, not a guard convention.
                Some(why) => {
                    let n = firsts.len() - before;
                    firsts.truncate(before);
                    facts.exempt_dirs.entry(dir).or_insert((0, why)).0 += n;
                }
                None if public::visitor_form(&text) => {
                    facts.form_dirs.insert(dir);
                }
                None => {}
            }
        }
    }
    // A name counts when it opens two or more handlers (or every handler of a small app)
    // and does not look like a limiter or a response helper.
    let mut counts: BTreeMap<(String, bool), usize> = BTreeMap::new();
    for (name, wrapper, _) in &firsts {
        if !name.is_empty() {
            *counts.entry((name.clone(), *wrapper)).or_default() += 1;
        }
    }
    let looks_auth = |n: &str| {
        let l = n.to_lowercase();
        [
            "auth", "user", "session", "guard", "protect", "require", "member", "tenant", "org",
        ]
        .iter()
        .any(|k| l.contains(k))
            // `ensureAppAdmin()`, not a method of an admin client (`supabaseAdmin.from`).
            || (l.contains("admin") && !n.contains('.'))
    };
    let mut accepted = BTreeSet::new();
    let handlers = facts.handlers;
    for ((name, wrapper), n) in counts {
        let l = name.to_lowercase();
        // A convention opens two handlers or more (every handler of a tiny app); creating a
        // client is not a guard.
        let often = n >= 2 || handlers <= 2;
        if !looks_auth(&name) || l.contains("limit") || l.contains("client") {
            continue;
        }
        // Once only: a guard all the same when its own body refuses (throws, redirects,
        // answers 401/403) on a failed check.
        let refuses = (!often && !wrapper)
            .then(|| public::refuses(root, files, &name))
            .flatten();
        if often || refuses.is_some() {
            accepted.insert(name.clone());
            if let Some(at) = refuses {
                facts.refusing.insert(name.clone(), at);
            }
            if wrapper {
                facts.wrappers.insert(name, n);
            } else {
                facts.guards.insert(name, n);
            }
        }
    }
    for (name, _, dir) in &firsts {
        if !accepted.contains(name) {
            *facts
                .unguarded_dirs
                .entry(if dir.is_empty() {
                    ".".into()
                } else {
                    dir.clone()
                })
                .or_default() += 1;
        }
    }
    facts
}

/// The call a statement starts with: its name, and whether it is a wrapper (returned, or
/// given a function).
fn first_call(stmt: &Statement<'_>) -> Option<(String, bool)> {
    let (expr, returned) = match stmt {
        Statement::ReturnStatement(r) => (r.argument.as_ref()?, true),
        Statement::ExpressionStatement(e) => (&e.expression, false),
        Statement::VariableDeclaration(v) => (v.declarations.first()?.init.as_ref()?, false),
        Statement::TryStatement(t) => return first_call(t.block.body.first()?),
        _ => return None,
    };
    let mut e = expr.get_inner_expression();
    if let Expression::AwaitExpression(a) = e {
        e = a.argument.get_inner_expression();
    }
    let Expression::CallExpression(c) = e else {
        return None;
    };
    let callback = c.arguments.iter().any(|a| {
        matches!(
            a.as_expression().map(|e| e.get_inner_expression()),
            Some(Expression::ArrowFunctionExpression(_) | Expression::FunctionExpression(_))
        )
    });
    Some((callee_name(&c.callee)?, returned || callback))
}

fn callee_name(callee: &Expression<'_>) -> Option<String> {
    match callee.get_inner_expression() {
        Expression::Identifier(id) => Some(id.name.to_string()),
        other => other
            .get_member_expr()
            .and_then(|m| m.static_property_name())
            .map(|s| s.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// packages: contracts and commands

struct Package {
    dir: String,
    name: String,
    json: serde_json::Value,
}

fn packages(root: &Path, files: &Files) -> Vec<Package> {
    files
        .paths
        .iter()
        .filter(|p| *p == "package.json" || p.ends_with("/package.json"))
        .filter(|p| p.matches('/').count() <= 3)
        .filter_map(|p| {
            let text = std::fs::read_to_string(root.join(p)).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            let dir = p
                .strip_suffix("package.json")?
                .trim_end_matches('/')
                .to_string();
            Some(Package {
                name: json.get("name")?.as_str().unwrap_or_default().to_string(),
                dir,
                json,
            })
        })
        .collect()
}

fn contracts_section(root: &Path, files: &Files, route_root: Option<&str>) -> Section {
    let mut s = Section::default();
    let pkgs = packages(root, files);
    let route_texts: Vec<String> = route_root
        .map(|r| {
            files
                .paths
                .iter()
                .filter(|p| p.starts_with(&format!("{r}/")) && ts::is_code(p))
                .filter_map(|p| std::fs::read_to_string(root.join(p)).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut best: Option<(usize, &Package)> = None;
    for p in pkgs.iter().filter(|p| !p.dir.is_empty()) {
        let named = ["contract", "schema", "validat", "zod"]
            .iter()
            .any(|k| p.name.to_lowercase().contains(k));
        let zod = ["dependencies", "peerDependencies", "devDependencies"]
            .iter()
            .any(|d| p.json.get(d).and_then(|v| v.get("zod")).is_some());
        if !named || !zod && !p.name.to_lowercase().contains("contract") {
            continue;
        }
        let needle = format!("\"{}", p.name);
        let needle2 = format!("'{}", p.name);
        let imports = route_texts
            .iter()
            .filter(|t| t.contains(&needle) || t.contains(&needle2))
            .count();
        if best.is_none_or(|(n, _)| imports > n) {
            best = Some((imports, p));
        }
    }
    match best {
        Some((n, p)) => s.key(
            "package",
            q(&p.dir),
            format!(
                "workspace package {} (zod schemas by its name and dependencies) is imported by {} of {}",
                p.name,
                n,
                plural(route_texts.len(), "route file")
            ),
        ),
        None => s.ask(
            "package",
            q("packages/contracts"),
            "no workspace package named like contracts/schemas/validators depends on zod: where are the request schemas?",
        ),
    }
    s
}

fn commands_section(root: &Path, files: &Files, route_root: Option<&str>) -> Section {
    let mut s = Section::default();
    let pkgs = packages(root, files);
    let Some(top) = pkgs.iter().find(|p| p.dir.is_empty()) else {
        s.ask(
            "lint",
            q("pnpm --filter api lint"),
            "no package.json at the root: which command lints the API?",
        );
        s.ask(
            "test",
            q("pnpm test:api"),
            "which command runs the API's tests?",
        );
        return s;
    };
    let pm_field = top
        .json
        .get("packageManager")
        .and_then(|v| v.as_str())
        .map(|v| v.split('@').next().unwrap_or(v).to_string());
    let lock = crate::repo::lock_file(root);
    let (pm, pm_why) = match (&pm_field, lock) {
        (Some(pm), _) => (pm.clone(), format!("packageManager is {pm}")),
        (None, Some((f, pm))) => (pm.to_string(), format!("{f} at the root")),
        (None, None) => (
            "npm".to_string(),
            "no packageManager field and no lock file: npm assumed".to_string(),
        ),
    };
    let scripts = |p: &Package| -> Vec<String> {
        p.json
            .get("scripts")
            .and_then(|v| v.as_object())
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    // The API package: the deepest package that holds the route root.
    let api = route_root.and_then(|r| {
        pkgs.iter()
            .filter(|p| !p.dir.is_empty() && r.starts_with(&format!("{}/", p.dir)))
            .max_by_key(|p| p.dir.len())
    });
    let run_in = |p: &Package, script: &str| -> String {
        if p.dir.is_empty() {
            match pm.as_str() {
                // `bun test` is bun's own test runner, not the script.
                "npm" | "bun" => format!("{pm} run {script}"),
                other => format!("{other} {script}"),
            }
        } else {
            match pm.as_str() {
                "pnpm" => format!("pnpm --filter {} {script}", p.name),
                "yarn" => format!("yarn workspace {} {script}", p.name),
                "bun" => format!("bun run --filter {} {script}", p.name),
                _ => format!("npm run {script} --workspace {}", p.name),
            }
        }
    };
    let top_scripts = scripts(top);
    for (key, base) in [("lint", "lint"), ("test", "test")] {
        let api_named = api.map(|a| format!("{base}:{}", a.name));
        let chosen = if let Some(named) = api_named.filter(|n| top_scripts.contains(n)) {
            Some((run_in(top, &named), format!("the root script `{named}`")))
        } else if top_scripts.contains(&format!("{base}:api")) {
            let n = format!("{base}:api");
            Some((run_in(top, &n), format!("the root script `{n}`")))
        } else if let Some(a) = api.filter(|a| scripts(a).contains(&base.to_string())) {
            Some((
                run_in(a, base),
                format!(
                    "the `{base}` script of {} ({}), the package of the routes",
                    a.name, a.dir
                ),
            ))
        } else if top_scripts.contains(&base.to_string()) {
            Some((run_in(top, base), format!("the root `{base}` script")))
        } else {
            None
        };
        match chosen {
            Some((cmd, why)) => s.key(key, q(&cmd), format!("{why}; {pm_why}")),
            None => s.ask(
                key,
                q(&format!("{pm} {base}")),
                format!("no `{base}` script was found at the root or in the package of the routes: which command runs it?"),
            ),
        }
    }
    let setup = match lock.map(|l| l.0) {
        Some("pnpm-lock.yaml") => Some("pnpm install --frozen-lockfile --prefer-offline"),
        Some("yarn.lock") => Some("yarn install --frozen-lockfile"),
        Some("package-lock.json") => Some("npm ci"),
        Some("bun.lockb" | "bun.lock") => Some("bun install --frozen-lockfile"),
        _ => None,
    };
    match setup {
        Some(cmd) => s.key(
            "setup",
            q(cmd),
            format!(
                "{} at the root: install exactly what it locks",
                lock.unwrap().0
            ),
        ),
        None => s.ask(
            "setup",
            q(&format!("{pm} install")),
            "no lock file at the root: which command installs the dependencies?",
        ),
    }
    s
}

/// Where the file goes (for messages and tests).
pub fn target(root: &Path) -> PathBuf {
    root.join(config::FILE_NAME)
}
