//! One migration file → the statements that matter for tenant isolation, as plain data.
//!
//! Reading is separate from replaying so that files can be parsed on several threads (the
//! syntax tree is not `Send`; these statements are) while the replay stays in file order.
//! Statements the reader cannot follow become [`Op::Unverifiable`]: never silently skipped
//! when they could change what is protected.

use std::collections::HashSet;

use squawk_syntax::{SourceFile, SyntaxKind as K, SyntaxNode};

use super::plpgsql;
use crate::{
    schema::{Command, QualName},
    sql::{self, child, children, has_token, paren_body, qual_name, simple_name, Lines},
};

/// One statement, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub line: u32,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    CreateTable(CreateTable),
    AlterTable {
        table: QualName,
        if_exists: bool,
        actions: Vec<Action>,
    },
    DropTable {
        tables: Vec<QualName>,
        if_exists: bool,
    },
    CreatePolicy {
        table: QualName,
        policy: PolicyDef,
    },
    AlterPolicy {
        table: QualName,
        name: String,
        change: PolicyChange,
    },
    DropPolicy {
        table: QualName,
        name: String,
        if_exists: bool,
    },
    CreateIndex {
        table: QualName,
        index: IndexDef,
        if_not_exists: bool,
    },
    DropIndex {
        names: Vec<QualName>,
        if_exists: bool,
    },
    CreateFunction {
        name: QualName,
        security_definer: bool,
        fixed_search_path: bool,
        /// Tables its body reads (`FROM`, `JOIN`).
        reads: Vec<QualName>,
        /// Parameter names in call order, and the words of its body (`schema::Function`).
        params: Vec<String>,
        words: Vec<String>,
        /// Tables its body inserts into or updates.
        writes: Vec<QualName>,
        /// What calling it may do to the schema: its PL/pgSQL body's statements (or, when the
        /// body cannot be read, the fail-closed guess over its text). `None`: nothing.
        body: Option<Vec<super::plpgsql::Pl>>,
    },
    /// Functions a statement calls (`select f()`, `CALL p()`): a function the history defined
    /// runs its body here. `otherwise`: what an unknown one may do (`CALL` of a procedure the
    /// history does not define).
    Calls {
        functions: Vec<QualName>,
        otherwise: Option<Unverifiable>,
    },
    /// `create trigger ... {before|after} insert or update on t ... execute function f()`.
    CreateTrigger {
        table: QualName,
        function: QualName,
        events: Vec<Command>,
    },
    /// `insert into storage.buckets (id, name, public) values (...)`: the buckets, each with
    /// its `public` value when given as a literal.
    CreateBuckets {
        buckets: Vec<(String, Option<bool>)>,
    },
    /// `create [or replace] view name [(columns)] [with (...)] as query` (not temporary).
    CreateView {
        name: QualName,
        /// The query's text as written.
        query: String,
        columns: Vec<String>,
        security_invoker: bool,
    },
    /// `drop view [if exists] a, b [cascade]`: with CASCADE, the policies reading them go too.
    DropView {
        names: Vec<QualName>,
        cascade: bool,
    },
    /// `alter view name rename to n | set schema s | set (security_invoker = ...) | reset (...)`.
    AlterView {
        name: QualName,
        rename: Option<QualName>,
        security_invoker: Option<bool>,
    },
    /// `grant | revoke <privileges> on [table] a, b | all tables in schema s to | from roles`:
    /// only what decides whether a client role keeps any privilege on a table. `all`: ALL
    /// [PRIVILEGES] (a list of some privileges leaves the others).
    Privileges {
        grant: bool,
        all: bool,
        tables: Vec<QualName>,
        schemas: Vec<String>,
        roles: Vec<String>,
    },
    /// A PL/pgSQL body that runs now (a `DO` block), read statement by statement.
    Plpgsql {
        what: String,
        body: Vec<super::plpgsql::Pl>,
    },
    /// A statement whose effect the reader cannot know (`DO` it cannot read, `EXECUTE`, `CALL`).
    Unverifiable(Unverifiable),
    /// Data-destroying statements for the migration impact (`TRUNCATE`, `DELETE` without `WHERE`).
    Destructive {
        what: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub name: QualName,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDef>,
    pub indexes: Vec<IndexDef>,
    /// Table-level `PRIMARY KEY (...)` columns: they become NOT NULL.
    pub pk_columns: Vec<String>,
    pub likes: Vec<Like>,
    pub partition_of: Option<QualName>,
    /// `CREATE TABLE ... AS` / `SELECT INTO`: columns come from a query the reader cannot type.
    pub from_query: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub not_null: bool,
    pub references: Option<QualName>,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub name: Option<String>,
    pub columns: Vec<Option<String>>,
    pub unique: bool,
    pub partial: bool,
    /// A PRIMARY KEY: its columns become NOT NULL.
    pub primary: bool,
}

/// `LIKE source INCLUDING ...`: columns and NOT NULL always; indexes only when included.
#[derive(Debug, Clone, PartialEq)]
pub struct Like {
    pub source: QualName,
    pub indexes: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    AddColumn {
        column: ColumnDef,
        indexes: Vec<IndexDef>,
        if_not_exists: bool,
    },
    DropColumn {
        name: String,
        if_exists: bool,
        cascade: bool,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    SetNotNull(String),
    DropNotNull(String),
    AddIndex(IndexDef),
    DropConstraint(String),
    Rls(bool),
    ForceRls(bool),
    RenameTo(String),
    SetSchema(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDef {
    pub name: String,
    pub command: Command,
    pub permissive: bool,
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyChange {
    pub rename: Option<String>,
    pub roles: Option<Vec<String>>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unverifiable {
    /// What it is, for the message: "DO block", "EXECUTE", ...
    pub what: String,
    /// Tables named as DDL targets in its text (`ALTER TABLE x`, `ON x`, `CREATE TABLE x`).
    pub targets: Vec<QualName>,
    /// Every word of its text: any existing table named there may be touched.
    pub words: HashSet<String>,
    /// It runs dynamic SQL: any table might be touched.
    pub anything: bool,
    /// With `anything`: only tables of this schema (`alter table public.%I ...`).
    pub within: Option<String>,
    /// It only creates tables whose names are known at run time: no table that exists is
    /// touched, the new ones are not seen.
    pub creates_only: bool,
}

/// A parse error, at its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxProblem {
    pub line: u32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileRead {
    pub stmts: Vec<Stmt>,
    pub errors: Vec<SyntaxProblem>,
    /// The statements as Postgres will be sent them, cut from the same tree (none when read
    /// for the static check alone: [`super::read_static`]).
    pub pieces: Vec<super::split::Piece>,
}

/// Parse one file's text.
pub fn read(text: &str) -> FileRead {
    read_keeping(text, super::Keep::Pieces)
}

/// Parse one file's text; its pieces only when `keep` asks for them.
pub fn read_keeping(text: &str, keep: super::Keep) -> FileRead {
    let lines = Lines::new(text);
    if let Some((at, why)) = sql::too_deep(text) {
        return FileRead {
            stmts: Vec::new(),
            errors: vec![SyntaxProblem {
                line: lines.line(at),
                message: why,
            }],
            pieces: match keep {
                super::Keep::Pieces => super::split::whole(text),
                super::Keep::Statements => Vec::new(),
            },
        };
    }
    let parse = SourceFile::parse(text);
    let mut errors: Vec<SyntaxProblem> = parse
        .errors()
        .iter()
        .map(|e| SyntaxProblem {
            line: lines.line(usize::from(e.range().start())),
            message: e.message().to_string(),
        })
        .collect();
    errors.dedup_by(|a, b| a.line == b.line);
    let root = parse.syntax_node();
    let mut stmts = Vec::new();
    for node in root.children() {
        let line = lines.of_node(&node);
        if let Some(op) = statement_in(&node, text, &lines, 0) {
            stmts.push(Stmt { line, op });
        }
    }
    let pieces = match keep {
        super::Keep::Pieces => super::split::pieces(&root, text, &lines),
        super::Keep::Statements => Vec::new(),
    };
    FileRead {
        stmts,
        errors,
        pieces,
    }
}

/// One statement node → what it does, if anything that matters. `depth` counts the bodies it
/// sits in (a `DO` inside an `EXECUTE` inside a `DO`).
pub(super) fn statement_in(
    node: &SyntaxNode,
    text: &str,
    lines: &Lines,
    depth: usize,
) -> Option<Op> {
    Some(match node.kind() {
        K::CREATE_TABLE => {
            if child(node, K::TEMP).is_some()
                || has_token(node, K::TEMP_KW)
                || has_token(node, K::TEMPORARY_KW)
            {
                return None; // temporary tables vanish with the session
            }
            Op::CreateTable(create_table(node, lines)?)
        }
        K::CREATE_TABLE_AS | K::SELECT_INTO => {
            let name = node
                .descendants()
                .find(|n| n.kind() == K::TABLE_NAME || n.kind() == K::INTO_CLAUSE)?;
            if has_token(node, K::TEMP_KW)
                || has_token(node, K::TEMPORARY_KW)
                || child(node, K::TEMP).is_some()
            {
                return None;
            }
            Op::CreateTable(CreateTable {
                name: qual_name(&name)?,
                if_not_exists: child(node, K::IF_NOT_EXISTS).is_some(),
                columns: Vec::new(),
                indexes: Vec::new(),
                pk_columns: Vec::new(),
                likes: Vec::new(),
                partition_of: None,
                from_query: true,
            })
        }
        K::ALTER_TABLE => alter_table(node, lines)?,
        K::DROP_TABLE => Op::DropTable {
            tables: children(node, K::TABLE_NAME_REF)
                .filter_map(|n| qual_name(&n))
                .collect(),
            if_exists: child(node, K::IF_EXISTS).is_some(),
        },
        K::CREATE_VIEW => create_view(node)?,
        K::DROP_VIEW => Op::DropView {
            names: children(node, K::VIEW_REF)
                .filter_map(|n| qual_name(&n))
                .collect(),
            cascade: child(node, K::CASCADE).is_some(),
        },
        K::ALTER_VIEW => alter_view(node)?,
        K::GRANT | K::REVOKE => privileges(node)?,
        K::CREATE_POLICY => create_policy(node, text)?,
        K::ALTER_POLICY => alter_policy(node, text)?,
        K::DROP_POLICY => Op::DropPolicy {
            table: on_table(node)?,
            name: simple_name(&child(node, K::POLICY_REF)?)?,
            if_exists: child(node, K::IF_EXISTS).is_some(),
        },
        K::CREATE_INDEX => create_index(node)?,
        K::DROP_INDEX => Op::DropIndex {
            names: children(node, K::INDEX_REF)
                .filter_map(|n| qual_name(&n))
                .collect(),
            if_exists: child(node, K::IF_EXISTS).is_some(),
        },
        K::CREATE_FUNCTION | K::CREATE_PROCEDURE => create_function(node, lines)?,
        K::CREATE_TRIGGER => create_trigger(&strip_comments(&node.text().to_string()))?,
        K::DO => do_block(node, lines, depth),
        K::EXECUTE => Op::Unverifiable(unverifiable("EXECUTE of a prepared statement", "", true)),
        K::CALL => Op::Calls {
            functions: child(node, K::PROCEDURE_NAME_REF)
                .and_then(|n| qual_name(&n))
                .into_iter()
                .chain(calls(node))
                .collect(),
            otherwise: Some(unverifiable(
                "CALL of a procedure",
                &node.text().to_string(),
                true,
            )),
        },
        K::TRUNCATE => Op::Destructive {
            what: one_line(&node.text().to_string()),
        },
        K::DELETE | K::UPDATE if child(node, K::WHERE_CLAUSE).is_none() => {
            let verb = if node.kind() == K::DELETE {
                "DELETE"
            } else {
                "UPDATE"
            };
            let target = child(node, K::RELATION_NAME).and_then(|n| qual_name(&n));
            Op::Destructive {
                what: format!(
                    "{verb} without WHERE on {}",
                    target.map_or("?".into(), |t| t.to_string())
                ),
            }
        }
        K::DROP_SCHEMA => Op::Destructive {
            what: one_line(&node.text().to_string()),
        },
        K::INSERT if let Some(buckets) = bucket_rows(node) => Op::CreateBuckets { buckets },
        K::SELECT | K::INSERT | K::UPDATE | K::DELETE | K::VALUES | K::MERGE => {
            let functions = calls(node);
            if functions.is_empty() {
                return None;
            }
            Op::Calls {
                functions,
                otherwise: None,
            }
        }
        _ => return None,
    })
}

/// `grant`/`revoke` on tables: `None` for other objects (functions, schemas, sequences, ...),
/// for role membership grants and for column privileges.
fn privileges(node: &SyntaxNode) -> Option<Op> {
    let on = child(node, K::ON_PRIVILEGE_OBJECTS_CLAUSE)?;
    let objects = on.children().next()?;
    let (tables, schemas) = match objects.kind() {
        K::PRIVILEGE_DEFAULT | K::PRIVILEGE_TABLE => (
            children(&objects, K::RELATION_NAME_REF)
                .filter_map(|n| qual_name(&n))
                .collect(),
            Vec::new(),
        ),
        K::PRIVILEGE_ALL_TABLES_IN_SCHEMA => (
            Vec::new(),
            children(&objects, K::SCHEMA_REF)
                .filter_map(|n| simple_name(&n))
                .collect(),
        ),
        _ => return None,
    };
    // `revoke select (col) on t`: column privileges leave the table's own.
    if node.descendants().any(|d| d.kind() == K::COLUMN_LIST) {
        return None;
    }
    let roles = child(node, K::ROLE_REF_LIST)?
        .children()
        .filter_map(|r| simple_name(&r))
        .collect();
    Some(Op::Privileges {
        grant: node.kind() == K::GRANT,
        all: child(node, K::ALL_PRIVILEGES).is_some(),
        tables,
        schemas,
        roles,
    })
}

/// [`buckets_insert`] of an INSERT whose target is `storage.buckets`; other inserts (the
/// thousands of rows of a seed file) are not copied out as text.
fn bucket_rows(node: &SyntaxNode) -> Option<Vec<(String, Option<bool>)>> {
    let target = child(node, K::RELATION_NAME_REF).and_then(|n| qual_name(&n))?;
    if target.schema != "storage" || target.name != "buckets" {
        return None;
    }
    buckets_insert(&node.text().to_string())
}

/// `create view`: its name, query text, column list and `security_invoker` option.
fn create_view(node: &SyntaxNode) -> Option<Op> {
    if child(node, K::TEMP).is_some()
        || has_token(node, K::TEMP_KW)
        || has_token(node, K::TEMPORARY_KW)
    {
        return None; // temporary views vanish with the session
    }
    let name = qual_name(&child(node, K::VIEW)?)?;
    let query = node.children().find(|c| {
        matches!(
            c.kind(),
            K::SELECT
                | K::COMPOUND_SELECT
                | K::SELECT_INTO
                | K::VALUES
                | K::TABLE
                | K::PAREN_SELECT
        )
    })?;
    let columns = child(node, K::COLUMN_LIST)
        .map(|l| {
            children(&l, K::COLUMN_NAME)
                .filter_map(|c| simple_name(&c))
                .collect()
        })
        .unwrap_or_default();
    Some(Op::CreateView {
        name,
        query: query.text().to_string(),
        columns,
        security_invoker: child(node, K::WITH_PARAMS)
            .and_then(|w| security_invoker(&w))
            .unwrap_or(false),
    })
}

/// `alter view`: a new name, or a changed `security_invoker`; `None` when neither.
fn alter_view(node: &SyntaxNode) -> Option<Op> {
    let name = qual_name(&child(node, K::VIEW_REF)?)?;
    let rename = if let Some(r) = child(node, K::VIEW_RENAME_TO) {
        Some(QualName::new(
            name.schema.clone(),
            simple_name(&child(&r, K::VIEW)?)?,
        ))
    } else if let Some(s) = child(node, K::SET_SCHEMA) {
        Some(QualName::new(
            simple_name(&child(&s, K::SCHEMA_REF)?)?,
            name.name.clone(),
        ))
    } else {
        None
    };
    let security_invoker = if let Some(o) = child(node, K::SET_OPTIONS) {
        security_invoker(&o)
    } else if let Some(o) = child(node, K::RESET_OPTIONS) {
        o.descendants()
            .filter(|n| n.kind() == K::ATTRIBUTE_NAME)
            .any(|n| simple_name(&n).as_deref() == Some("security_invoker"))
            .then_some(false)
    } else {
        None
    };
    if rename.is_none() && security_invoker.is_none() {
        return None;
    }
    Some(Op::AlterView {
        name,
        rename,
        security_invoker,
    })
}

/// The `security_invoker` option among `(name [= value], ...)`: a bare name is true; an
/// unreadable value is false (the owner's rights: the view's stricter reading).
fn security_invoker(options: &SyntaxNode) -> Option<bool> {
    options
        .descendants()
        .filter(|n| n.kind() == K::ATTRIBUTE_OPTION)
        .filter(|o| {
            child(o, K::ATTRIBUTE_NAME)
                .and_then(|n| simple_name(&n))
                .as_deref()
                == Some("security_invoker")
        })
        .last()
        .map(|o| match child(&o, K::ATTRIBUTE_VALUE) {
            None => true,
            Some(v) => matches!(
                v.text()
                    .to_string()
                    .trim()
                    .trim_matches('\'')
                    .to_ascii_lowercase()
                    .as_str(),
                "true" | "on" | "yes" | "1" | "t" | "y"
            ),
        })
}

/// The buckets of `insert into storage.buckets [(cols)] values (...), ...`: each row's `id`
/// (the first value without a column list) and its `public` literal. `None` when the
/// statement is not such an insert.
fn buckets_insert(text: &str) -> Option<Vec<(String, Option<bool>)>> {
    static HEAD: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let head = HEAD.get_or_init(|| {
        regex::Regex::new(
            r#"(?is)^\s*insert\s+into\s+"?storage"?\s*\.\s*"?buckets"?\s*(\(([^)]*)\))?\s*values\s*"#,
        )
        .expect("bucket insert pattern")
    });
    let text = strip_comments(text);
    let m = head.captures(&text)?;
    let cols: Vec<String> = match m.get(2) {
        Some(c) => c
            .as_str()
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
            .collect(),
        None => vec!["id".into(), "name".into()],
    };
    let id_at = cols.iter().position(|c| c == "id")?;
    let public_at = cols.iter().position(|c| c == "public");
    let mut out = Vec::new();
    for row in value_rows(&text[m.get(0)?.end()..]) {
        let Some(id) = row.get(id_at).and_then(|v| string_literal(v)) else {
            continue;
        };
        let public = public_at.and_then(|i| row.get(i)).and_then(|v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" | "'t'" | "'true'" => Some(true),
                "false" | "'f'" | "'false'" => Some(false),
                _ => None,
            }
        });
        out.push((id, public));
    }
    Some(out)
}

/// The text without `--` and `/* */` comments (quotes kept as they are).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut quote: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let len = c.len_utf8();
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            rest = &rest[len..];
            continue;
        }
        if rest.starts_with("--") {
            let end = rest.find('\n').unwrap_or(rest.len());
            out.push(' ');
            rest = &rest[end..];
        } else if let Some(body) = rest.strip_prefix("/*") {
            let end = body.find("*/").map_or(rest.len(), |i| i + 4);
            out.push(' ');
            rest = &rest[end..];
        } else {
            if c == '\'' || c == '"' {
                quote = Some(c);
            }
            out.push(c);
            rest = &rest[len..];
        }
    }
    out
}

/// `(a, b), (c, d) on conflict ...` → [[a, b], [c, d]]: the top-level tuples, split on
/// commas outside quotes and parentheses.
fn value_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut quote = None;
    for c in text.chars() {
        if let Some(q) = quote {
            cur.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                cur.push(c);
            }
            '(' => {
                depth += 1;
                if depth > 1 {
                    cur.push(c);
                }
            }
            ')' if depth == 1 => {
                depth = 0;
                row.push(std::mem::take(&mut cur).trim().to_string());
                rows.push(std::mem::take(&mut row));
            }
            ')' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            ',' if depth == 1 => row.push(std::mem::take(&mut cur).trim().to_string()),
            ',' if depth == 0 => {}
            c if depth == 0 && !c.is_whitespace() => break,
            c => {
                if depth > 0 {
                    cur.push(c);
                }
            }
        }
    }
    rows
}

/// `'text'` (also `'text'::text`) → `text`.
fn string_literal(v: &str) -> Option<String> {
    let v = v.trim();
    let v = v.split("::").next()?.trim();
    let inner = v.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

/// The functions called under a node (`f(...)`, `public.f(...)`).
pub(super) fn calls(node: &SyntaxNode) -> Vec<QualName> {
    let mut out: Vec<QualName> = Vec::new();
    if !sql::has_node(node, K::CALL_EXPR) {
        return out;
    }
    for call in node.descendants().filter(|n| n.kind() == K::CALL_EXPR) {
        if let Some(q) = qual_name(&call) {
            if !out.contains(&q) {
                out.push(q);
            }
        }
    }
    out
}

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 100 {
        format!("{}...", s.chars().take(100).collect::<String>())
    } else {
        s
    }
}

/// A `DO` block: its PL/pgSQL body read statement by statement; when it cannot be read (another
/// language, a body this reader does not follow), the fail-closed guess over its text.
fn do_block(node: &SyntaxNode, lines: &Lines, depth: usize) -> Op {
    let guess = |why: &str| {
        Op::Unverifiable(unverifiable(
            &format!("DO block ({why})"),
            &node.text().to_string(),
            true,
        ))
    };
    if let Some(lang) = child(node, K::DO_LANGUAGE) {
        let name = sql::tokens(&lang).last().map(|t| language_name(t.text()));
        if name.as_deref() != Some("plpgsql") {
            return guess("not PL/pgSQL");
        }
    }
    let Some((body, line)) = child(node, K::LITERAL).and_then(|l| plpgsql::body_of(&l, lines))
    else {
        return guess("its body is not a plain string");
    };
    match plpgsql::read_block(&body, line, depth) {
        Ok(body) => Op::Plpgsql {
            what: "DO block".into(),
            body,
        },
        Err(why) => guess(&format!("not read: {why}")),
    }
}

/// `plpgsql`, `'plpgsql'`, `"PLpgSQL"` → `plpgsql`.
fn language_name(tok: &str) -> String {
    let t = tok.trim_matches('\'');
    sql::fold_ident(t).to_ascii_lowercase()
}

/// The fail-closed guess of what a statement we cannot follow might touch.
pub(super) fn unverifiable(what: &str, body: &str, dynamic_possible: bool) -> Unverifiable {
    let targets = ddl_targets(body);
    let words = sql::words(body);
    let lower = body.to_ascii_lowercase();
    let dynamic = lower.contains("execute") || body.is_empty();
    Unverifiable {
        what: what.to_string(),
        // Text that runs EXECUTE may touch any table, whatever else it names.
        anything: dynamic_possible && dynamic,
        targets,
        words,
        within: None,
        creates_only: false,
    }
}

/// `ALTER TABLE x`, `CREATE TABLE [IF NOT EXISTS] x`, `... ON x` (policies, indexes, triggers)
/// inside text the parser does not descend into (a DO body).
fn ddl_targets(body: &str) -> Vec<QualName> {
    let lower = body.to_ascii_lowercase();
    let toks: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';' || c == '\'')
        .filter(|s| !s.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let start = match (toks[i], toks.get(i + 1)) {
            ("table", _) if i > 0 && matches!(toks[i - 1], "alter" | "create" | "drop") => {
                Some(i + 1)
            }
            ("on", _)
                if i > 1
                    && toks[..i]
                        .iter()
                        .rev()
                        .take(4)
                        .any(|t| *t == "policy" || *t == "index") =>
            {
                Some(i + 1)
            }
            _ => None,
        };
        if let Some(mut j) = start {
            while j < toks.len() && matches!(toks[j], "if" | "not" | "exists" | "only") {
                j += 1;
            }
            if let Some(name) = toks.get(j) {
                // Take the original spelling back to keep quoted names as written.
                let name = name.trim_matches(|c: char| c == ',' || c == ')');
                if !name.is_empty() && !name.contains('%') && !name.contains('$') {
                    let original = find_original(body, name).unwrap_or_else(|| name.to_string());
                    let parts = crate::schema::split_config_name(&original);
                    let q = match parts.as_slice() {
                        [n] => QualName::new("public", n.clone()),
                        [.., s, n] => QualName::new(s.clone(), n.clone()),
                        [] => QualName::new("public", ""),
                    };
                    if !q.name.is_empty() {
                        out.push(q);
                    }
                }
            }
            i = j;
        }
        i += 1;
    }
    out
}

fn find_original(body: &str, lower: &str) -> Option<String> {
    let at = body.to_ascii_lowercase().find(lower)?;
    body.get(at..at + lower.len()).map(str::to_string)
}

fn on_table(node: &SyntaxNode) -> Option<QualName> {
    let on = child(node, K::ON_TABLE)?;
    qual_name(&child(&on, K::TABLE_NAME_REF)?)
}

fn create_table(node: &SyntaxNode, lines: &Lines) -> Option<CreateTable> {
    let name = qual_name(&child(node, K::TABLE_NAME)?)?;
    let mut t = CreateTable {
        name,
        if_not_exists: child(node, K::IF_NOT_EXISTS).is_some(),
        columns: Vec::new(),
        indexes: Vec::new(),
        pk_columns: Vec::new(),
        likes: Vec::new(),
        partition_of: child(node, K::PARTITION_OF)
            .and_then(|p| child(&p, K::TABLE_NAME_REF))
            .and_then(|n| qual_name(&n)),
        from_query: false,
    };
    if let Some(inherits) = child(node, K::INHERITS) {
        // INHERITS copies the parent's columns like LIKE does (not its indexes).
        for n in inherits
            .descendants()
            .filter(|n| n.kind() == K::PATH_REF || n.kind() == K::TABLE_NAME_REF)
        {
            if n.parent().is_some_and(|p| p.kind() == K::PATH_REF) {
                continue;
            }
            if let Some(q) = qual_name(&n) {
                t.likes.push(Like {
                    source: q,
                    indexes: false,
                });
            }
        }
    }
    let Some(args) = child(node, K::TABLE_ARG_LIST) else {
        return Some(t);
    };
    for item in args.children() {
        match item.kind() {
            K::COLUMN => {
                let (col, idx) = column(&item, lines.of_node(&item))?;
                t.columns.push(col);
                t.indexes.extend(idx);
            }
            K::LIKE_CLAUSE => {
                let source = child(&item, K::RELATION_NAME_REF)
                    .or_else(|| child(&item, K::TABLE_NAME_REF))
                    .and_then(|n| qual_name(&n))?;
                let indexes = item
                    .children()
                    .filter(|c| c.kind() == K::INCLUDING_PROPERTY)
                    .any(|p| {
                        p.children()
                            .any(|c| matches!(c.kind(), K::PROPERTY_ALL | K::PROPERTY_INDEXES))
                            || sql::tokens(&p).any(|t| {
                                matches!(t.kind(), K::ALL_KW)
                                    || t.text().eq_ignore_ascii_case("indexes")
                            })
                    });
                t.likes.push(Like { source, indexes });
            }
            _ => {
                if let Some(idx) = table_constraint(&item) {
                    if idx.primary {
                        t.pk_columns.extend(idx.columns.iter().flatten().cloned());
                    }
                    t.indexes.push(idx);
                }
            }
        }
    }
    Some(t)
}

/// A column definition, with the indexes its inline PRIMARY KEY / UNIQUE make.
fn column(node: &SyntaxNode, line: u32) -> Option<(ColumnDef, Vec<IndexDef>)> {
    let name = simple_name(&child(node, K::COLUMN_NAME)?)?;
    let mut def = ColumnDef {
        name: name.clone(),
        not_null: false,
        references: None,
        line,
    };
    let mut indexes = Vec::new();
    for c in node.children() {
        match c.kind() {
            K::NOT_NULL_CONSTRAINT => def.not_null = true,
            K::NULL_CONSTRAINT => def.not_null = false,
            K::PRIMARY_KEY_CONSTRAINT => {
                def.not_null = true;
                indexes.push(IndexDef {
                    name: constraint_name(&c),
                    columns: vec![Some(name.clone())],
                    unique: true,
                    partial: false,
                    primary: true,
                });
            }
            K::UNIQUE_CONSTRAINT => indexes.push(IndexDef {
                name: constraint_name(&c),
                columns: vec![Some(name.clone())],
                unique: true,
                partial: false,
                primary: false,
            }),
            K::REFERENCES_CONSTRAINT => {
                def.references = child(&c, K::TABLE_NAME_REF).and_then(|n| qual_name(&n));
            }
            _ => {}
        }
    }
    Some((def, indexes))
}

fn constraint_name(node: &SyntaxNode) -> Option<String> {
    child(node, K::CONSTRAINT_NAME_CLAUSE)
        .and_then(|c| child(&c, K::CONSTRAINT_NAME))
        .and_then(|n| simple_name(&n))
}

/// `PRIMARY KEY (...)` / `UNIQUE (...)` as a table constraint → the index it creates.
fn table_constraint(node: &SyntaxNode) -> Option<IndexDef> {
    let primary = match node.kind() {
        K::PRIMARY_KEY_CONSTRAINT => true,
        K::UNIQUE_CONSTRAINT => false,
        _ => return None,
    };
    let list = node
        .descendants()
        .find(|n| n.kind() == K::CONSTRAINT_COLUMN_REF_LIST || n.kind() == K::COLUMN_LIST)?;
    let columns = list
        .children()
        .filter(|n| matches!(n.kind(), K::COLUMN_NAME_REF | K::COLUMN_NAME | K::COLUMN))
        .map(|n| simple_name(&n))
        .collect::<Vec<_>>();
    if columns.is_empty() {
        // `PRIMARY KEY USING INDEX idx`: the columns are the index's, which we track elsewhere.
        return None;
    }
    Some(IndexDef {
        name: constraint_name(node),
        columns,
        unique: true,
        partial: false,
        primary,
    })
}

fn alter_table(node: &SyntaxNode, lines: &Lines) -> Option<Op> {
    let rel = child(node, K::TABLE_RELATION_NAME)?;
    let table = qual_name(&child(&rel, K::TABLE_NAME_REF)?)?;
    let mut actions = Vec::new();
    for a in node.children() {
        let action = match a.kind() {
            K::ADD_COLUMN => {
                let (column, indexes) = column(&a, lines.of_node(&a))?;
                Action::AddColumn {
                    column,
                    indexes,
                    if_not_exists: child(&a, K::IF_NOT_EXISTS).is_some(),
                }
            }
            K::DROP_COLUMN => Action::DropColumn {
                name: simple_name(&child(&a, K::COLUMN_NAME_REF)?)?,
                if_exists: child(&a, K::IF_EXISTS).is_some(),
                cascade: child(&a, K::CASCADE).is_some(),
            },
            K::RENAME_COLUMN => Action::RenameColumn {
                from: simple_name(&child(&a, K::COLUMN_NAME_REF)?)?,
                to: simple_name(&child(&a, K::COLUMN_NAME)?)?,
            },
            K::ALTER_COLUMN => {
                let col = simple_name(&child(&a, K::COLUMN_NAME_REF)?)?;
                if child(&a, K::SET_NOT_NULL).is_some() {
                    Action::SetNotNull(col)
                } else if child(&a, K::DROP_NOT_NULL).is_some() {
                    Action::DropNotNull(col)
                } else {
                    continue;
                }
            }
            K::ADD_CONSTRAINT => {
                let Some(c) = a
                    .children()
                    .find(|c| matches!(c.kind(), K::PRIMARY_KEY_CONSTRAINT | K::UNIQUE_CONSTRAINT))
                else {
                    continue;
                };
                match table_constraint(&c) {
                    Some(idx) => Action::AddIndex(idx),
                    None => continue,
                }
            }
            K::DROP_CONSTRAINT => {
                Action::DropConstraint(simple_name(&child(&a, K::CONSTRAINT_NAME_REF)?)?)
            }
            K::ENABLE_RLS => Action::Rls(true),
            K::DISABLE_RLS => Action::Rls(false),
            K::FORCE_RLS => Action::ForceRls(true),
            K::NO_FORCE_RLS => Action::ForceRls(false),
            K::TABLE_RENAME_TO => Action::RenameTo(simple_name(
                &a.children().find(|c| c.kind() == K::TABLE_NAME)?,
            )?),
            K::SET_SCHEMA => Action::SetSchema(simple_name(&child(&a, K::SCHEMA_REF)?)?),
            _ => continue,
        };
        actions.push(action);
    }
    Some(Op::AlterTable {
        table,
        if_exists: child(node, K::IF_EXISTS).is_some(),
        actions,
    })
}

fn roles(node: &SyntaxNode) -> Option<Vec<String>> {
    let roles = child(node, K::POLICY_ROLES)?;
    let list = child(&roles, K::ROLE_REF_LIST)?;
    Some(
        children(&list, K::ROLE_REF)
            .filter_map(|r| simple_name(&r))
            .collect(),
    )
}

fn create_policy(node: &SyntaxNode, text: &str) -> Option<Op> {
    let name = simple_name(&child(node, K::POLICY)?)?;
    let table = on_table(node)?;
    let permissive = child(node, K::AS_POLICY_TYPE)
        .and_then(|t| sql::tokens(&t).last())
        .is_none_or(|t| !t.text().eq_ignore_ascii_case("restrictive"));
    let command = match child(node, K::POLICY_COMMAND)
        .and_then(|c| c.children().next())
        .map(|c| c.kind())
    {
        None | Some(K::POLICY_COMMAND_ALL) => Command::All,
        Some(K::POLICY_COMMAND_SELECT) => Command::Select,
        Some(K::POLICY_COMMAND_INSERT) => Command::Insert,
        Some(K::POLICY_COMMAND_UPDATE) => Command::Update,
        Some(K::POLICY_COMMAND_DELETE) => Command::Delete,
        Some(_) => return None,
    };
    let using = child(node, K::USING_EXPR_CLAUSE).and_then(|c| paren_body(&c, text));
    let with_check = child(node, K::WITH_CHECK_EXPR_CLAUSE).and_then(|c| paren_body(&c, text));
    let roles = roles(node).unwrap_or_else(|| vec!["public".into()]);
    Some(Op::CreatePolicy {
        table,
        policy: PolicyDef {
            name,
            command,
            permissive,
            roles,
            using,
            with_check,
        },
    })
}

fn alter_policy(node: &SyntaxNode, text: &str) -> Option<Op> {
    let name = simple_name(&child(node, K::POLICY_REF)?)?;
    let table = on_table(node)?;
    let mut change = PolicyChange::default();
    if let Some(r) = child(node, K::POLICY_RENAME_TO) {
        change.rename = simple_name(&child(&r, K::POLICY)?);
    }
    let body = child(node, K::ALTER_POLICY_TO).unwrap_or_else(|| node.clone());
    change.roles = roles(&body);
    change.using = child(&body, K::USING_EXPR_CLAUSE).and_then(|c| paren_body(&c, text));
    change.with_check = child(&body, K::WITH_CHECK_EXPR_CLAUSE).and_then(|c| paren_body(&c, text));
    Some(Op::AlterPolicy {
        table,
        name,
        change,
    })
}

fn create_index(node: &SyntaxNode) -> Option<Op> {
    let rel = child(node, K::TABLE_RELATION_NAME)?;
    let table = qual_name(&child(&rel, K::TABLE_NAME_REF)?)?;
    let name = child(node, K::INDEX).and_then(|n| simple_name(&n));
    let items = child(node, K::PARTITION_ITEM_LIST)?;
    let columns = children(&items, K::PARTITION_ITEM)
        .map(|item| {
            let first = item.children().next()?;
            (first.kind() == K::NAME_REF)
                .then(|| simple_name(&first))
                .flatten()
        })
        .collect();
    Some(Op::CreateIndex {
        table,
        index: IndexDef {
            name,
            columns,
            unique: has_token(node, K::UNIQUE_KW),
            partial: child(node, K::WHERE_CLAUSE).is_some(),
            primary: false,
        },
        if_not_exists: child(node, K::IF_NOT_EXISTS).is_some(),
    })
}

fn create_function(node: &SyntaxNode, lines: &Lines) -> Option<Op> {
    let name = qual_name(
        &node
            .children()
            .find(|c| matches!(c.kind(), K::FUNCTION_NAME | K::PROCEDURE_NAME | K::PATH))?,
    )?;
    let opts = child(node, K::FUNC_OPTION_LIST);
    let security_definer = opts.as_ref().is_some_and(|o| {
        o.children()
            .any(|c| c.kind() == K::SECURITY_DEFINER_FUNC_OPTION)
    });
    let fixed_search_path = opts.as_ref().is_some_and(|o| {
        o.descendants()
            .filter(|c| c.kind() == K::CONFIG_PARAMETER_REF)
            .any(|c| simple_name(&c).as_deref() == Some("search_path"))
    });
    let language = opts
        .as_ref()
        .and_then(|o| child(o, K::LANGUAGE_FUNC_OPTION))
        .and_then(|l| sql::tokens(&l).last().map(|t| language_name(t.text())))
        .unwrap_or_else(|| "sql".into());
    let body = opts
        .as_ref()
        .and_then(|o| child(o, K::AS_FUNC_OPTION))
        .and_then(|a| child(&a, K::AS_DEFINITION))
        .and_then(|d| child(&d, K::LITERAL));
    let params = function_params(node);
    let mut reads = Vec::new();
    let mut words = Vec::new();
    let mut writes = Vec::new();
    let mut runs = None;
    match body {
        Some(lit) if language == "sql" || language == "plpgsql" => {
            if let Some((text, line)) = plpgsql::body_of(&lit, lines) {
                let (body, r) = plpgsql::read_function(&language, &text, line);
                reads = r;
                words = crate::schema::body_words(&text);
                writes = body_writes(&text);
                runs = match body {
                    Ok(b) if b.is_empty() => None,
                    Ok(b) => Some(b),
                    Err(why) => Some(vec![plpgsql::Pl::Dynamic {
                        line,
                        guess: unverifiable(
                            &format!("function {name} (its body is not read: {why})"),
                            &text,
                            true,
                        ),
                    }]),
                };
            }
        }
        Some(_) => {}
        // A SQL-standard body (`BEGIN ATOMIC ... END`, `RETURN ...`) is part of the tree.
        None => {
            sql::relations_read(node, &mut reads);
            // The body is among the options (`RETURN ...`, `BEGIN ATOMIC ... END`).
            if let Some(o) = &opts {
                words = crate::schema::body_words(&o.text().to_string());
            }
        }
    }
    Some(Op::CreateFunction {
        name,
        security_definer,
        fixed_search_path,
        reads,
        params,
        words,
        writes,
        body: runs,
    })
}

/// The tables a function body inserts into or updates (`insert into t`, `update t set`),
/// comments and strings aside: for the trust chain, a SECURITY DEFINER trigger function that
/// writes the membership table.
pub fn body_writes(body: &str) -> Vec<QualName> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r#"(?is)\b(?:insert\s+into|update(?:\s+only)?)\s+((?:"[^"]+"|[a-z_][a-z0-9_$]*)(?:\s*\.\s*(?:"[^"]+"|[a-z_][a-z0-9_$]*))?)"#,
        )
        .expect("write pattern")
    });
    let text = strip_comments(body);
    let mut out: Vec<QualName> = Vec::new();
    for c in re.captures_iter(&text) {
        let q = QualName::from_config(&c[1].replace(char::is_whitespace, ""));
        if q.name != "set" && !out.contains(&q) {
            out.push(q);
        }
    }
    out
}

/// `create [or replace] [constraint] trigger name {before|after|instead of} events on table
/// ... execute {function|procedure} f(...)`.
fn create_trigger(text: &str) -> Option<Op> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r#"(?is)^\s*create\s+(?:or\s+replace\s+)?(?:constraint\s+)?trigger\s+(?:"[^"]+"|\S+)\s+(?:before|after|instead\s+of)\s+(.*?)\s+on\s+((?:"[^"]+"|[a-z_][a-z0-9_$]*)(?:\s*\.\s*(?:"[^"]+"|[a-z_][a-z0-9_$]*))?)\s.*?execute\s+(?:function|procedure)\s+((?:"[^"]+"|[a-z_][a-z0-9_$]*)(?:\s*\.\s*(?:"[^"]+"|[a-z_][a-z0-9_$]*))?)\s*\("#,
        )
        .expect("trigger pattern")
    });
    let c = re.captures(text)?;
    let ev = c[1].to_ascii_lowercase();
    let events = [
        ("insert", Command::Insert),
        ("update", Command::Update),
        ("delete", Command::Delete),
    ]
    .into_iter()
    .filter(|(w, _)| ev.contains(w))
    .map(|(_, c)| c)
    .collect();
    Some(Op::CreateTrigger {
        table: QualName::from_config(&c[2].replace(char::is_whitespace, "")),
        function: QualName::from_config(&c[3].replace(char::is_whitespace, "")),
        events,
    })
}

/// The names of a function's parameters in call order (OUT parameters are not passed; an
/// unnamed one is an empty name).
fn function_params(node: &SyntaxNode) -> Vec<String> {
    let Some(list) = child(node, K::PARAM_LIST) else {
        return Vec::new();
    };
    list.children()
        .filter(|p| p.kind() == K::PARAM)
        .filter(|p| !p.descendants().any(|c| c.kind() == K::PARAM_OUT))
        .map(|p| {
            child(&p, K::PARAM_NAME)
                .map(|n| crate::sql::fold_ident(n.text().to_string().trim()))
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_inserted_into_storage() {
        assert_eq!(
            buckets_insert(
                "INSERT INTO STORAGE.buckets (id, name, \"public\")\n  -- a comment (with parens)\n  values ('a', 'a', true), ('b''s', 'b', false), ('c', 'c', null) on conflict (id) do nothing"
            ),
            Some(vec![
                ("a".to_string(), Some(true)),
                ("b's".to_string(), Some(false)),
                ("c".to_string(), None)
            ])
        );
        assert_eq!(
            buckets_insert("insert into storage.buckets values ('x', 'x')"),
            Some(vec![("x".to_string(), None)])
        );
        assert_eq!(
            buckets_insert("insert into storage.buckets(name, id, public, file_size_limit) values ('n', 'i', 'true', 5)"),
            Some(vec![("i".to_string(), Some(true))])
        );
        assert_eq!(
            buckets_insert("insert into storage.objects (bucket_id) values ('a')"),
            None
        );
        assert_eq!(
            buckets_insert("insert into public.buckets (id) values ('a')"),
            None
        );
    }

    #[test]
    fn bucket_inserts_are_read_by_their_target_only() {
        let r = read(
            "insert into \"storage\".\"buckets\" (id, name, public) values ('logos', 'logos', true);\n\
             insert into public.buckets (id) values ('not-storage');\n\
             insert into storage.objects (bucket_id, name) values ('logos', 'x');\n\
             INSERT /* c */ INTO Storage.Buckets (id, name) VALUES ('docs', 'docs');\n",
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let buckets: Vec<_> = r
            .stmts
            .iter()
            .filter_map(|s| match &s.op {
                Op::CreateBuckets { buckets } => Some(buckets.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            buckets,
            vec![
                vec![("logos".to_string(), Some(true))],
                vec![("docs".to_string(), None)]
            ]
        );
    }

    #[test]
    fn reads_the_statements_that_matter() {
        let r = read(
            "-- comment\ncreate table public.\"AuditTrail\" (id uuid primary key, tenant_id uuid not null references tenants(id));\n\
             alter table only \"AuditTrail\" enable row level security;\n\
             select 1;\n",
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.stmts.len(), 2);
        assert_eq!(r.stmts[0].line, 2);
        let Op::CreateTable(t) = &r.stmts[0].op else {
            panic!("{:?}", r.stmts[0])
        };
        assert_eq!(t.name, QualName::new("public", "AuditTrail"));
        assert_eq!(t.columns[1].name, "tenant_id");
        assert!(t.columns[1].not_null);
        assert_eq!(
            t.columns[1].references,
            Some(QualName::new("public", "tenants"))
        );
        assert!(t.columns[0].not_null, "primary key implies NOT NULL");
        assert_eq!(
            r.stmts[1].op,
            Op::AlterTable {
                table: QualName::new("public", "AuditTrail"),
                if_exists: false,
                actions: vec![Action::Rls(true)]
            }
        );
    }

    #[test]
    fn views_are_read_and_replayed() {
        let r = read(
            "create or replace view public.my_memberships (org) with (security_invoker = on) as\n  select tenant_id from tenant_members where user_id = auth.uid();\n\
             create temp view scratch as select 1;\n\
             create view plain as select 1;\n\
             alter view plain rename to renamed;\n\
             alter view renamed set (security_invoker);\n\
             alter table renamed set schema private;\n\
             create table docs (id uuid, tenant_id uuid);\n\
             create policy d on docs using (tenant_id in (select org from my_memberships));\n\
             drop view if exists my_memberships cascade;\n",
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let Op::CreateView {
            name,
            query,
            columns,
            security_invoker,
        } = &r.stmts[0].op
        else {
            panic!("{:?}", r.stmts[0])
        };
        assert_eq!(*name, QualName::new("public", "my_memberships"));
        assert_eq!(
            query,
            "select tenant_id from tenant_members where user_id = auth.uid()"
        );
        assert_eq!(columns, &["org"]);
        assert!(*security_invoker);
        // The temporary view is not read.
        assert!(
            matches!(&r.stmts[1].op, Op::CreateView { name, security_invoker: false, .. } if name.name == "plain")
        );
        assert_eq!(
            r.stmts[2].op,
            Op::AlterView {
                name: QualName::new("public", "plain"),
                rename: Some(QualName::new("public", "renamed")),
                security_invoker: None
            }
        );

        let mut replay = super::super::replay::Replay::new();
        replay.file("0001.sql", true);
        let mut after_policy = None;
        for s in &r.stmts {
            replay.apply(s);
            if matches!(s.op, Op::CreatePolicy { .. }) {
                after_policy = Some(replay.schema.clone());
            }
        }
        let before = after_policy.unwrap();
        assert_eq!(before.views.len(), 2, "{:?}", before.views);
        assert_eq!(
            before.views[&QualName::new("public", "my_memberships")].columns,
            ["org"]
        );
        assert_eq!(
            before.tables[&QualName::new("public", "docs")]
                .policies
                .len(),
            1
        );
        let moved = &before.views[&QualName::new("private", "renamed")];
        assert!(moved.security_invoker);
        assert_eq!(moved.origin.line, 4);
        // DROP VIEW ... CASCADE takes the policies that read the view with it.
        let s = &replay.schema;
        assert_eq!(
            s.views.keys().collect::<Vec<_>>(),
            [&QualName::new("private", "renamed")]
        );
        assert!(s.tables[&QualName::new("public", "docs")]
            .policies
            .is_empty());
        assert!(!s.tables.contains_key(&QualName::new("private", "renamed")));
    }

    #[test]
    fn policy_clauses_keep_their_text() {
        let r = read("create policy \"Read\" on t as restrictive for update to authenticated using (tenant_id = get_current_tenant_id() /* c */) with check (true);");
        let Op::CreatePolicy { table, policy } = &r.stmts[0].op else {
            panic!()
        };
        assert_eq!(table.name, "t");
        assert_eq!(policy.name, "Read");
        assert!(!policy.permissive);
        assert_eq!(policy.command, Command::Update);
        assert_eq!(policy.roles, ["authenticated"]);
        assert_eq!(
            policy.using.as_deref(),
            Some("tenant_id = get_current_tenant_id() /* c */")
        );
        assert_eq!(policy.with_check.as_deref(), Some("true"));
    }

    #[test]
    fn do_blocks_are_read_and_unreadable_ones_name_their_targets() {
        // Read: its one statement is the DDL it runs.
        let r = read(
            "do $$ begin alter table if exists Public.Docs disable row level security; end $$;",
        );
        let Op::Plpgsql { body, .. } = &r.stmts[0].op else {
            panic!("{:?}", r.stmts[0])
        };
        assert_eq!(body.len(), 1, "{body:?}");
        // Not read (another language, a body that does not end): the old guess, by its words.
        let r = read(
            "do language plv8 $$ begin alter table if exists Public.Docs disable row level security; end $$;",
        );
        let Op::Unverifiable(u) = &r.stmts[0].op else {
            panic!("{:?}", r.stmts[0])
        };
        assert_eq!(u.targets, [QualName::new("public", "docs")]);
        assert!(!u.anything);
        let r =
            read("do $$ begin execute format('alter table %I disable row level security', t); $$;");
        let Op::Unverifiable(u) = &r.stmts[0].op else {
            panic!("{:?}", r.stmts[0])
        };
        assert!(u.anything);
        assert!(u.what.contains("not read"), "{}", u.what);
    }

    #[test]
    fn function_bodies_record_what_they_read() {
        let r = read(
            "create function public.is_member(t uuid) returns boolean language sql security definer set search_path = '' as $$\n  select exists (select 1 from public.tenant_members m where m.tenant_id = t and m.user_id = auth.uid())\n$$;\n\
             create function f() returns int language plpgsql as 'begin return (select count(*) from docs d join notes n on n.id = d.id); end';\n\
             create function g() returns int language sql begin atomic select count(*) from audit; end;",
        );
        let reads: Vec<Vec<QualName>> = r
            .stmts
            .iter()
            .map(|s| match &s.op {
                Op::CreateFunction { reads, .. } => reads.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            reads,
            [
                vec![QualName::new("public", "tenant_members")],
                vec![
                    QualName::new("public", "docs"),
                    QualName::new("public", "notes")
                ],
                vec![QualName::new("public", "audit")],
            ]
        );
    }
}
