//! Replay the statements of one migration history, in order, into the schema model, as
//! `supabase db reset` would apply them. Whatever the reader cannot follow leaves a
//! [`Doubt`](crate::schema::Doubt) on the tables it may have touched, so they can never be
//! called protected.

use std::{collections::BTreeMap, sync::Arc};

use crate::rules::catalog::Rule;
use crate::{
    model::{Finding, Severity},
    schema::{Column, Function, Index, Origin, Policy, QualName, Schema, Table, CLIENT_ROLES},
    sql,
};

use super::{
    plpgsql::Pl,
    read::{
        Action, ColumnDef, CreateTable, IndexDef, Op, PolicyChange, Stmt, SyntaxProblem,
        Unverifiable,
    },
};

pub struct Replay {
    pub schema: Schema,
    /// Findings of the reader on new files.
    pub findings: Vec<Finding>,
    /// Human lines for the migration impact (new files only).
    pub impact: Vec<String>,
    /// Policies altered by new files: the judge says which were loosened.
    pub altered: Vec<Altered>,
    path: String,
    new: bool,
    /// What calling each function the history defined may do (its PL/pgSQL body).
    bodies: BTreeMap<QualName, Arc<Vec<Pl>>>,
    /// The functions being called now (a call of one of them again is not followed).
    calling: Vec<QualName>,
}

/// Calls inside calls followed at most this deep.
const MAX_CALLS: usize = 8;

/// A policy altered by a new file (`ALTER POLICY`): as it was and as it is, for the judge.
#[derive(Debug, Clone)]
pub struct Altered {
    /// Index of its line in `impact`.
    pub impact_line: usize,
    /// The table's names (current and former), which may qualify its columns.
    pub names: Vec<QualName>,
    pub before: Policy,
    pub after: Policy,
    /// The impact line to show when the judge finds it no longer tenant-scoped.
    pub loosened: String,
}

impl Default for Replay {
    fn default() -> Replay {
        Replay::new()
    }
}

impl Replay {
    pub fn new() -> Replay {
        Replay {
            schema: Schema::default(),
            findings: Vec::new(),
            impact: Vec::new(),
            altered: Vec::new(),
            path: String::new(),
            new: false,
            bodies: BTreeMap::new(),
            calling: Vec::new(),
        }
    }

    /// Start a file: its statements follow.
    pub fn file(&mut self, path: &str, new: bool) {
        self.path = path.to_string();
        self.new = new;
    }

    fn at(&self, line: u32) -> Origin {
        Origin::new(self.path.clone(), line)
    }

    fn note(&mut self, line: u32, what: impl std::fmt::Display) {
        if self.new {
            self.impact.push(format!("{what} ({}:{line})", self.path));
        }
    }

    fn finding(&mut self, f: Finding) {
        if self.new {
            self.findings.push(f);
        }
    }

    /// A file that could not be read whole (syntax errors, bad encoding): every table it
    /// touched or names loses the reader's trust.
    /// Without the text (the file could not be read), every table is in doubt.
    pub fn distrust_file(&mut self, text: Option<&str>, problems: &[SyntaxProblem], rule: Rule) {
        let words = text.map(sql::words);
        const SHOWN: usize = 5;
        for p in problems.iter().take(SHOWN) {
            let f = Finding::new(
                rule,
                Severity::Error,
                format!(
                    "{}: fix the SQL; until then no table this file names can be proved protected",
                    p.message
                ),
            )
            .at(self.path.clone(), Some(p.line));
            self.finding(f);
        }
        let Some(first) = problems.first() else {
            return;
        };
        let origin = self.at(first.line);
        let path = self.path.clone();
        for t in self.schema.tables.values_mut() {
            // What the file's statements touched, and whatever its words may name.
            let named = t.touched_by.contains(&path)
                || words.as_ref().is_none_or(|w| w.contains(&t.name.name));
            if named {
                t.doubt(
                    origin.clone(),
                    format!("{origin} cannot be read whole ({})", first.message),
                );
                t.touch(&path);
            }
        }
    }

    /// A file in the history that cannot be read at all: any table that exists may have been
    /// changed by it.
    pub fn distrust_all(&mut self, reason: &str) {
        let origin = self.at(1);
        let path = self.path.clone();
        for t in self.schema.tables.values_mut() {
            t.doubt(
                origin.clone(),
                format!("the history cannot be replayed: {reason}"),
            );
            t.touch(&path);
        }
    }

    pub fn apply(&mut self, stmt: &Stmt) {
        let line = stmt.line;
        match &stmt.op {
            Op::CreateTable(c) => self.create_table(c, line),
            Op::AlterTable {
                table,
                if_exists,
                actions,
            } => {
                // `alter table` renames a view too.
                if !self.schema.tables.contains_key(table) && self.schema.views.contains_key(table)
                {
                    for a in actions {
                        let to = match a {
                            Action::RenameTo(n) => QualName::new(table.schema.clone(), n.clone()),
                            Action::SetSchema(s) => QualName::new(s.clone(), table.name.clone()),
                            _ => continue,
                        };
                        self.alter_view(table, Some(&to), None);
                    }
                    return;
                }
                if !self.schema.tables.contains_key(table) && *if_exists {
                    return;
                }
                let mut name = table.clone();
                self.table_mut(&name, line, "ALTER TABLE");
                for a in actions {
                    name = self.alter(&name, a, line);
                }
            }
            Op::DropTable { tables, .. } => {
                for t in tables {
                    if self.schema.tables.remove(t).is_some() {
                        self.note(line, format!("destructive: dropped table {t}"));
                    }
                }
            }
            Op::CreatePolicy { table, policy } => {
                let origin = self.at(line);
                let t = self.table_mut(table, line, "CREATE POLICY");
                t.policies.retain(|p| p.name != policy.name);
                t.policies.push(Policy {
                    name: policy.name.clone(),
                    command: policy.command,
                    permissive: policy.permissive,
                    roles: policy.roles.clone(),
                    using: policy.using.clone(),
                    with_check: policy.with_check.clone(),
                    origin,
                    uses: None,
                });
                self.doubt_views(table);
                self.note(
                    line,
                    format!("created policy \"{}\" on {table}", policy.name),
                );
            }
            Op::AlterPolicy {
                table,
                name,
                change,
            } => {
                self.alter_policy(table, name, change, line);
                self.doubt_views(table);
            }
            Op::DropPolicy { table, name, .. } => {
                let Some(t) = self.schema.tables.get_mut(table) else {
                    return;
                };
                let before = t.policies.len();
                t.policies.retain(|p| p.name != *name);
                let dropped = t.policies.len() < before;
                t.touch(&self.path);
                if dropped {
                    self.note(line, format!("dropped policy \"{name}\" on {table}"));
                }
            }
            Op::CreateIndex {
                table,
                index,
                if_not_exists,
            } => {
                let origin = self.at(line);
                let path = self.path.clone();
                // An index on something the history never created is most likely on a view or
                // materialized view: it cannot change tenant isolation.
                let Some(t) = self.schema.tables.get_mut(table) else {
                    return;
                };
                if *if_not_exists
                    && index.name.is_some()
                    && t.indexes.iter().any(|i| i.name == index.name)
                {
                    return;
                }
                t.indexes.push(to_index(index, origin));
                t.touch(&path);
            }
            Op::DropIndex { names, .. } => {
                let path = self.path.clone();
                for n in names {
                    for t in self
                        .schema
                        .tables
                        .values_mut()
                        .filter(|t| t.name.schema == n.schema)
                    {
                        let before = t.indexes.len();
                        t.indexes
                            .retain(|i| i.name.as_deref() != Some(n.name.as_str()));
                        if t.indexes.len() < before {
                            t.touch(&path);
                        }
                    }
                }
            }
            Op::CreateFunction {
                name,
                security_definer,
                fixed_search_path,
                reads,
                params,
                words,
                writes,
                body,
            } => {
                match body {
                    Some(b) => self.bodies.insert(name.clone(), Arc::new(b.clone())),
                    None => self.bodies.remove(name),
                };
                let f = Function {
                    name: name.clone(),
                    security_definer: *security_definer,
                    fixed_search_path: *fixed_search_path,
                    origin: self.at(line),
                    reads: reads.clone(),
                    params: params.clone(),
                    words: words.clone(),
                    writes: writes.clone(),
                };
                self.schema.functions.insert(name.clone(), f);
            }
            Op::CreateTrigger {
                table,
                function,
                events,
            } => {
                let origin = self.at(line);
                self.schema.triggers.push(crate::schema::Trigger {
                    table: table.clone(),
                    function: function.clone(),
                    events: events.clone(),
                    origin,
                });
            }
            Op::CreateBuckets { buckets } => {
                let origin = self.at(line);
                for (id, public) in buckets {
                    self.schema.buckets.insert(
                        id.clone(),
                        crate::schema::Bucket {
                            id: id.clone(),
                            public: *public,
                            origin: origin.clone(),
                        },
                    );
                }
            }
            Op::Plpgsql { body, .. } => self.pl(body),
            Op::Calls {
                functions,
                otherwise,
            } => self.calls(functions, otherwise.as_ref(), line),
            Op::Unverifiable(u) => self.unverifiable(u, line),
            Op::Destructive { what } => self.note(line, format!("destructive: {what}")),
            Op::CreateView {
                name,
                query,
                columns,
                security_invoker,
            } => {
                let origin = self.at(line);
                self.schema.views.insert(
                    name.clone(),
                    crate::schema::View {
                        name: name.clone(),
                        query: query.clone(),
                        columns: columns.clone(),
                        security_invoker: *security_invoker,
                        client_writable: None,
                        client_readable: None,
                        client_roles: CLIENT_ROLES.iter().map(|r| r.to_string()).collect(),
                        origin,
                        doubt: None,
                    },
                );
            }
            Op::DropView { names, cascade } => {
                for n in names {
                    if self.schema.views.remove(n).is_none() || !cascade {
                        continue;
                    }
                    // Policies depend on the views they read: CASCADE drops them too.
                    let path = self.path.clone();
                    for t in self.schema.tables.values_mut() {
                        let before = t.policies.len();
                        t.policies.retain(|p| {
                            ![&p.using, &p.with_check]
                                .iter()
                                .any(|e| e.as_deref().is_some_and(|e| names_view(e, n)))
                        });
                        if t.policies.len() < before {
                            t.touch(&path);
                        }
                    }
                    self.note(line, format!("destructive: dropped view {n} with CASCADE"));
                }
            }
            Op::AlterView {
                name,
                rename,
                security_invoker,
            } => self.alter_view(name, rename.as_ref(), *security_invoker),
            Op::Privileges {
                grant,
                all,
                tables,
                schemas,
                roles,
            } => {
                // A GRANT TO PUBLIC reaches every role; a REVOKE FROM PUBLIC takes nothing
                // granted to anon or authenticated by name. A REVOKE of less than ALL leaves
                // them a privilege.
                let clients = crate::schema::clients_named(roles, *grant);
                if clients.is_empty() || (!grant && !all) {
                    return;
                }
                for t in self
                    .schema
                    .tables
                    .values_mut()
                    .filter(|t| tables.contains(&t.name) || schemas.contains(&t.name.schema))
                {
                    change_roles(&mut t.client_roles, &clients, *grant);
                    t.exposed = t.client_roles.is_empty().then_some(false);
                }
                for v in self
                    .schema
                    .views
                    .values_mut()
                    .filter(|v| tables.contains(&v.name) || schemas.contains(&v.name.schema))
                {
                    change_roles(&mut v.client_roles, &clients, *grant);
                    v.client_readable = v.client_roles.is_empty().then_some(false);
                }
            }
        }
    }

    /// A table whose policies read a view the reader cannot vouch for is in doubt too.
    fn doubt_views(&mut self, table: &QualName) {
        let Some(t) = self.schema.tables.get_mut(table) else {
            return;
        };
        for v in self.schema.views.values() {
            let Some(d) = &v.doubt else {
                continue;
            };
            let reads = t.policies.iter().any(|p| {
                [&p.using, &p.with_check]
                    .iter()
                    .any(|e| e.as_deref().is_some_and(|e| names_view(e, &v.name)))
            });
            if reads {
                t.doubt(d.origin.clone(), d.reason.clone());
            }
        }
    }

    /// A view renamed, moved or given `security_invoker` (a view the history never made is
    /// not followed: no policy can be judged through it).
    fn alter_view(&mut self, name: &QualName, rename: Option<&QualName>, invoker: Option<bool>) {
        let Some(mut v) = self.schema.views.remove(name) else {
            return;
        };
        if let Some(i) = invoker {
            v.security_invoker = i;
        }
        if let Some(to) = rename {
            v.name = to.clone();
        }
        self.schema.views.insert(v.name.clone(), v);
    }

    /// The table, or a placeholder that the reader cannot vouch for (made by a DO block, an
    /// extension, or a file out of order).
    fn table_mut(&mut self, name: &QualName, line: u32, what: &str) -> &mut Table {
        let origin = self.at(line);
        let path = self.path.clone();
        let t = self.schema.tables.entry(name.clone()).or_insert_with(|| {
            let mut t = Table::new(name.clone(), origin.clone());
            t.doubt(
                origin.clone(),
                format!("{what} at {origin} on a table no migration before it creates"),
            );
            t
        });
        t.touch(&path);
        t
    }

    fn create_table(&mut self, c: &CreateTable, line: u32) {
        let origin = self.at(line);
        if let Some(existing) = self.schema.tables.get_mut(&c.name) {
            if !c.if_not_exists {
                existing.doubt(
                    origin.clone(),
                    format!(
                        "CREATE TABLE at {origin} of a table that already exists fails in Postgres"
                    ),
                );
                existing.touch(&self.path);
            }
            // IF NOT EXISTS on an existing table: Postgres keeps the old one, whatever this says.
            return;
        }
        let mut t = Table::new(c.name.clone(), origin.clone());
        let sources = c
            .likes
            .iter()
            .map(|l| (l.source.clone(), l.indexes))
            .chain(c.partition_of.clone().map(|p| (p, true)));
        for (source, with_indexes) in sources {
            match self.schema.tables.get(&source) {
                Some(src) => {
                    // LIKE copies columns and NOT NULL (and indexes when included), never RLS
                    // or policies; a partition gets the parent's columns and indexes but
                    // keeps its own RLS switch.
                    for col in &src.columns {
                        let mut col = col.clone();
                        col.origin = origin.clone();
                        col.null_origin = origin.clone();
                        t.columns.push(col);
                    }
                    if with_indexes {
                        t.indexes.extend(src.indexes.iter().map(|i| Index {
                            name: None,
                            origin: origin.clone(),
                            ..i.clone()
                        }));
                    }
                    if !src.unverified.is_empty() {
                        t.doubt(
                            origin.clone(),
                            format!("copies {source}, which the reader could not verify"),
                        );
                    }
                }
                None => t.doubt(
                    origin.clone(),
                    format!("copies {source}, which no migration before {origin} creates"),
                ),
            }
        }
        for col in &c.columns {
            let col = to_column(col, &origin);
            t.columns.retain(|c| c.name != col.name);
            t.columns.push(col);
        }
        for idx in &c.indexes {
            let mut i = to_index(idx, origin.clone());
            if idx.primary && i.name.is_none() {
                i.name = Some(format!("{}_pkey", c.name.name));
            }
            t.indexes.push(i);
        }
        for pk in &c.pk_columns {
            if let Some(col) = t.column_mut(pk) {
                col.not_null = true;
            }
        }
        if c.from_query {
            t.doubt(
                origin.clone(),
                "its columns come from a query (CREATE TABLE AS / SELECT INTO)",
            );
        }
        t.touch(&self.path);
        self.schema.tables.insert(c.name.clone(), t);
        self.note(line, format!("created table {}", c.name));
    }

    /// Apply one ALTER TABLE action; returns the table's name afterwards.
    fn alter(&mut self, name: &QualName, action: &Action, line: u32) -> QualName {
        let origin = self.at(line);
        let Some(t) = self.schema.tables.get_mut(name) else {
            return name.clone();
        };
        let mut note: Option<String> = None;
        match action {
            Action::AddColumn {
                column,
                indexes,
                if_not_exists,
            } => {
                if t.column(&column.name).is_some() {
                    if !if_not_exists {
                        t.doubt(
                            origin.clone(),
                            format!(
                                "ADD COLUMN {} at {origin}: the column exists, Postgres fails",
                                column.name
                            ),
                        );
                    }
                } else {
                    t.columns.push(to_column(column, &origin));
                    t.indexes
                        .extend(indexes.iter().map(|i| to_index(i, origin.clone())));
                    note = Some(format!("added column {name}.{}", column.name));
                }
            }
            Action::DropColumn {
                name: col, cascade, ..
            } => {
                if t.column(col).is_some() {
                    t.columns.retain(|c| c.name != *col);
                    t.indexes
                        .retain(|i| !i.columns.iter().any(|c| c.as_deref() == Some(col.as_str())));
                    if *cascade {
                        // Policies depend on the columns they read: CASCADE drops them too.
                        t.policies.retain(|p| {
                            ![&p.using, &p.with_check]
                                .iter()
                                .any(|e| e.as_deref().is_some_and(|e| sql::idents(e).contains(col)))
                        });
                    }
                    note = Some(format!("destructive: dropped column {name}.{col}"));
                }
            }
            Action::RenameColumn { from, to } => {
                if let Some(c) = t.column_mut(from) {
                    c.name = to.clone();
                    for i in &mut t.indexes {
                        for c in i.columns.iter_mut().flatten() {
                            if c == from {
                                *c = to.clone();
                            }
                        }
                    }
                    for p in &mut t.policies {
                        for e in [&mut p.using, &mut p.with_check].into_iter().flatten() {
                            *e = sql::replace_ident(e, from, to);
                        }
                    }
                    note = Some(format!("renamed column {name}.{from} to {to}"));
                } else {
                    t.doubt(
                        origin.clone(),
                        format!("RENAME COLUMN {from} at {origin}: no such column"),
                    );
                }
            }
            Action::SetNotNull(col) | Action::DropNotNull(col) => {
                let on = matches!(action, Action::SetNotNull(_));
                match t.column_mut(col) {
                    Some(c) => {
                        c.not_null = on;
                        c.null_origin = origin.clone();
                    }
                    None => t.doubt(
                        origin.clone(),
                        format!("ALTER COLUMN {col} at {origin}: no such column"),
                    ),
                }
            }
            Action::AddIndex(idx) => {
                let mut i = to_index(idx, origin.clone());
                if idx.primary {
                    if i.name.is_none() {
                        i.name = Some(format!("{}_pkey", name.name));
                    }
                    for c in idx.columns.iter().flatten() {
                        if let Some(col) = t.column_mut(c) {
                            col.not_null = true;
                            col.null_origin = origin.clone();
                        }
                    }
                }
                t.indexes.push(i);
            }
            Action::DropConstraint(c) => {
                t.indexes.retain(|i| i.name.as_deref() != Some(c.as_str()))
            }
            Action::Rls(on) => {
                t.rls.set(*on, origin.clone());
                if !on {
                    note = Some(format!("disabled row level security on {name}"));
                }
            }
            Action::ForceRls(on) => t.rls_forced.set(*on, origin.clone()),
            Action::RenameTo(new) | Action::SetSchema(new) => {
                let to = match action {
                    Action::RenameTo(_) => QualName::new(name.schema.clone(), new.clone()),
                    _ => QualName::new(new.clone(), name.name.clone()),
                };
                let mut t = self.schema.tables.remove(name).expect("present above");
                // RLS, policies and indexes stay with the table: Postgres stores the table, not its name.
                t.former_names.push(t.name.clone());
                t.name = to.clone();
                self.schema.tables.insert(to.clone(), t);
                self.note(line, format!("renamed table {name} to {to}"));
                return to;
            }
        }
        if let Some(n) = note {
            self.note(line, n);
        }
        name.clone()
    }

    fn alter_policy(&mut self, table: &QualName, name: &str, change: &PolicyChange, line: u32) {
        let origin = self.at(line);
        let t = self.table_mut(table, line, "ALTER POLICY");
        let Some(p) = t.policies.iter_mut().find(|p| p.name == name) else {
            t.doubt(
                origin.clone(),
                format!("ALTER POLICY \"{name}\" at {origin}: no such policy on {table}"),
            );
            return;
        };
        let before = p.clone();
        if let Some(r) = &change.rename {
            p.name = r.clone();
        }
        if let Some(r) = &change.roles {
            p.roles = r.clone();
        }
        if change.using.is_some() {
            p.using = change.using.clone();
        }
        if change.with_check.is_some() {
            p.with_check = change.with_check.clone();
        }
        p.origin = origin;
        let after = p.clone();
        let names: Vec<QualName> = std::iter::once(t.name.clone())
            .chain(t.former_names.iter().cloned())
            .collect();
        self.note(line, format!("altered policy \"{name}\" on {table}"));
        if self.new {
            self.altered.push(Altered {
                impact_line: self.impact.len() - 1,
                names,
                before,
                after,
                loosened: format!(
                    "loosened policy \"{name}\" on {table}: no longer tenant-scoped ({}:{line})",
                    self.path
                ),
            });
        }
    }

    /// The statements of a PL/pgSQL body, in order.
    fn pl(&mut self, body: &[Pl]) {
        for s in body {
            match s {
                Pl::Sql { line, op, ensure } => self.ensure(op, *line, *ensure),
                Pl::Dynamic { line, guess } => self.unverifiable(guess, *line),
                Pl::Choice { line, what, paths } => self.choice(*line, what, paths),
                Pl::Call { line, functions } => self.calls(functions, None, *line),
            }
        }
    }

    /// Calls of functions: one the history defined runs its body here (once; its lines are
    /// the call's). A recursive call, or calls nested too deep, may do anything.
    fn calls(&mut self, functions: &[QualName], otherwise: Option<&Unverifiable>, line: u32) {
        for f in functions {
            let Some(body) = self.bodies.get(f).cloned() else {
                if let Some(u) = otherwise {
                    self.unverifiable(u, line);
                }
                continue;
            };
            if self.calling.contains(f) || self.calling.len() >= MAX_CALLS {
                let u = Unverifiable {
                    what: format!("a call of {f} inside itself or too deep"),
                    targets: Vec::new(),
                    words: Default::default(),
                    anything: true,
                    within: None,
                    creates_only: false,
                };
                self.unverifiable(&u, line);
                continue;
            }
            self.calling.push(f.clone());
            self.pl(&relined(&body, line));
            self.calling.pop();
        }
    }

    /// A statement that runs only when its object is missing (`IF NOT EXISTS (... pg_policies
    /// ...)`, a swallowed `duplicate_object`): an object of that name that exists is kept.
    fn ensure(&mut self, op: &Op, line: u32, ensure: bool) {
        if !ensure {
            return self.apply(&Stmt {
                line,
                op: op.clone(),
            });
        }
        let op = match op {
            Op::CreatePolicy { table, policy } => {
                let exists = self
                    .schema
                    .tables
                    .get(table)
                    .is_some_and(|t| t.policies.iter().any(|p| p.name == policy.name));
                if exists {
                    return;
                }
                op.clone()
            }
            Op::CreateTable(c) => Op::CreateTable(CreateTable {
                if_not_exists: true,
                ..c.clone()
            }),
            Op::CreateIndex { table, index, .. } => Op::CreateIndex {
                table: table.clone(),
                index: index.clone(),
                if_not_exists: true,
            },
            Op::AlterTable {
                table,
                if_exists,
                actions,
            } => Op::AlterTable {
                table: table.clone(),
                if_exists: *if_exists,
                actions: actions
                    .iter()
                    .map(|a| match a {
                        Action::AddColumn {
                            column, indexes, ..
                        } => Action::AddColumn {
                            column: column.clone(),
                            indexes: indexes.clone(),
                            if_not_exists: true,
                        },
                        a => a.clone(),
                    })
                    .collect(),
            },
            op => op.clone(),
        };
        self.apply(&Stmt { line, op });
    }

    /// Exactly one of `paths` runs: each is replayed on its own copy of the schema, and a table
    /// is kept as the paths leave it only when they all leave it protected the same way.
    /// Otherwise it is unverified, with the line of the branch point, and kept as the first
    /// path that has it leaves it (the code as written: what its findings show).
    fn choice(&mut self, line: u32, what: &str, paths: &[Vec<Pl>]) {
        let origin = self.at(line);
        let outs: Vec<Replay> = paths
            .iter()
            .map(|p| {
                let mut r = Replay {
                    schema: self.schema.clone(),
                    findings: Vec::new(),
                    impact: Vec::new(),
                    altered: Vec::new(),
                    path: self.path.clone(),
                    new: self.new,
                    bodies: self.bodies.clone(),
                    calling: self.calling.clone(),
                };
                r.pl(p);
                r
            })
            .collect();
        if outs.is_empty() {
            return;
        }
        let mut names: Vec<QualName> = outs
            .iter()
            .flat_map(|r| r.schema.tables.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        let mut tables = std::collections::BTreeMap::new();
        let mut differ = Vec::new();
        for name in names {
            let versions: Vec<Option<&Table>> =
                outs.iter().map(|r| r.schema.tables.get(&name)).collect();
            let Some(mut t) = versions.iter().flatten().next().map(|t| (*t).clone()) else {
                continue;
            };
            for v in versions.iter().flatten() {
                for d in &v.unverified {
                    t.doubt(d.origin.clone(), d.reason.clone());
                }
                for p in &v.touched_by {
                    t.touch(p);
                }
            }
            let same = versions.iter().all(Option::is_some)
                && versions
                    .windows(2)
                    .all(|w| w[0].map(protection) == w[1].map(protection));
            if !same {
                let how = if versions.iter().all(Option::is_some) {
                    "protected differently"
                } else {
                    "present"
                };
                t.doubt(
                    origin.clone(),
                    format!(
                        "the {what} at {origin} leaves it {how} on some paths and not others: it is protected only if protected whichever path runs"
                    ),
                );
                t.touch(&self.path);
                differ.push(name.to_string());
            }
            tables.insert(name, t);
        }
        let mut functions = std::collections::BTreeMap::new();
        for r in outs.iter().rev() {
            functions.extend(r.schema.functions.clone());
        }
        // Views as the first path leaves them; a view the paths leave different (or absent
        // on some) puts every table whose policies read it in doubt: a policy through it is
        // scoped only if scoped whichever path runs.
        let mut views = BTreeMap::new();
        for r in outs.iter().rev() {
            views.extend(r.schema.views.clone());
        }
        let same_view = |a: &crate::schema::View, b: &crate::schema::View| {
            (&a.query, &a.columns, a.security_invoker) == (&b.query, &b.columns, b.security_invoker)
        };
        for (name, v) in views.iter_mut() {
            let differs = outs
                .iter()
                .any(|r| r.schema.views.get(name).is_none_or(|w| !same_view(v, w)));
            if !differs {
                continue;
            }
            let reason = format!(
                "the {what} at {origin} leaves view {name}, which its policies read, different on some paths: it is protected only if protected whichever path runs"
            );
            v.doubt = Some(crate::schema::Doubt {
                origin: origin.clone(),
                reason: reason.clone(),
            });
            differ.push(format!("view {name}"));
            for t in tables.values_mut() {
                let reads = t.policies.iter().any(|p| {
                    [&p.using, &p.with_check]
                        .iter()
                        .any(|e| e.as_deref().is_some_and(|e| names_view(e, name)))
                });
                if reads {
                    t.doubt(origin.clone(), reason.clone());
                    t.touch(&self.path);
                    if !differ.contains(&t.name.to_string()) {
                        differ.push(t.name.to_string());
                    }
                }
            }
        }
        let bodies: Vec<BTreeMap<QualName, Arc<Vec<Pl>>>> =
            outs.iter().map(|r| r.bodies.clone()).collect();
        for mut r in outs {
            let mut map = Vec::with_capacity(r.impact.len());
            for l in r.impact.drain(..) {
                let at = match self.impact.iter().position(|x| *x == l) {
                    Some(at) => at,
                    None => {
                        self.impact.push(l);
                        self.impact.len() - 1
                    }
                };
                map.push(at);
            }
            for mut a in r.altered.drain(..) {
                a.impact_line = map[a.impact_line];
                if !self.altered.iter().any(|b| b.impact_line == a.impact_line) {
                    self.altered.push(a);
                }
            }
            for f in r.findings.drain(..) {
                if !self.findings.contains(&f) {
                    self.findings.push(f);
                }
            }
        }
        self.schema.tables = tables;
        self.schema.functions = functions;
        self.schema.views = views;
        // Function bodies as the first path leaves them (the code as written), with what
        // the other paths defined besides.
        let mut paths = bodies.into_iter();
        if let Some(first) = paths.next() {
            self.bodies = first;
        }
        for r in paths {
            for (k, v) in r {
                self.bodies.entry(k).or_insert(v);
            }
        }
        if !differ.is_empty() {
            let msg = format!(
                "the {what} at this line leaves {} protected differently depending on the path taken: each is unverified; make the DDL unconditional, or let the live check prove the result",
                differ.join(", ")
            );
            self.finding(
                Finding::new(Rule::UnverifiableSql, Severity::Warning, msg)
                    .at(self.path.clone(), Some(line)),
            );
        }
    }

    fn unverifiable(&mut self, u: &Unverifiable, line: u32) {
        let origin = self.at(line);
        let path = self.path.clone();
        let reason = format!(
            "{} at {origin} may change it, and no static reader can see inside",
            u.what
        );
        for target in &u.targets {
            if !self.schema.tables.contains_key(target) {
                self.table_mut(target, line, &u.what);
            }
        }
        let mut touched = Vec::new();
        for t in self.schema.tables.values_mut() {
            let named = u.targets.contains(&t.name) || u.words.contains(&t.name.name);
            let any = u.anything && u.within.as_ref().is_none_or(|s| *s == t.name.schema);
            if named || any {
                t.doubt(origin.clone(), reason.clone());
                t.touch(&path);
                touched.push(t.name.to_string());
            }
        }
        let scope = if u.creates_only {
            "it only creates tables: none that exists is in doubt, and the tables it creates are not seen by the static reader".to_string()
        } else if let (true, Some(schema)) = (u.anything, &u.within) {
            format!("it runs dynamic SQL on tables of {schema}: every table of {schema} that exists at this point is unverified")
        } else if u.anything {
            "it runs dynamic SQL: every table that exists at this point is unverified".to_string()
        } else if touched.is_empty() {
            "it names no table the history knows".to_string()
        } else {
            format!("unverified: {}", touched.join(", "))
        };
        let msg = format!(
            "{}: a static reader cannot see what it does ({scope}); move the DDL out of it, or let the live check prove the result",
            u.what
        );
        self.finding(
            Finding::new(Rule::UnverifiableSql, Severity::Warning, msg).at(path, Some(line)),
        );
    }
}

/// A called function's statements, at the line of the call (its own lines are in another
/// file, or another part of this one).
fn relined(body: &[Pl], line: u32) -> Vec<Pl> {
    body.iter()
        .map(|s| match s {
            Pl::Sql { op, ensure, .. } => Pl::Sql {
                line,
                op: reline_op(op, line),
                ensure: *ensure,
            },
            Pl::Dynamic { guess, .. } => Pl::Dynamic {
                line,
                guess: guess.clone(),
            },
            Pl::Choice { what, paths, .. } => Pl::Choice {
                line,
                what,
                paths: paths.iter().map(|p| relined(p, line)).collect(),
            },
            Pl::Call { functions, .. } => Pl::Call {
                line,
                functions: functions.clone(),
            },
        })
        .collect()
}

fn reline_op(op: &Op, line: u32) -> Op {
    let col = |c: &ColumnDef| ColumnDef { line, ..c.clone() };
    match op {
        Op::CreateTable(c) => Op::CreateTable(CreateTable {
            columns: c.columns.iter().map(col).collect(),
            ..c.clone()
        }),
        Op::AlterTable {
            table,
            if_exists,
            actions,
        } => Op::AlterTable {
            table: table.clone(),
            if_exists: *if_exists,
            actions: actions
                .iter()
                .map(|a| match a {
                    Action::AddColumn {
                        column,
                        indexes,
                        if_not_exists,
                    } => Action::AddColumn {
                        column: col(column),
                        indexes: indexes.clone(),
                        if_not_exists: *if_not_exists,
                    },
                    a => a.clone(),
                })
                .collect(),
        },
        Op::Plpgsql { what, body } => Op::Plpgsql {
            what: what.clone(),
            body: relined(body, line),
        },
        Op::CreateFunction {
            name,
            security_definer,
            fixed_search_path,
            reads,
            params,
            words,
            writes,
            body,
        } => Op::CreateFunction {
            name: name.clone(),
            security_definer: *security_definer,
            fixed_search_path: *fixed_search_path,
            reads: reads.clone(),
            params: params.clone(),
            words: words.clone(),
            writes: writes.clone(),
            body: body.as_ref().map(|b| relined(b, line)),
        },
        op => op.clone(),
    }
}

/// A relation's client roles after a GRANT (added) or a REVOKE ALL (taken away).
fn change_roles(held: &mut Vec<String>, clients: &[&str], grant: bool) {
    for c in clients {
        if grant {
            if !held.iter().any(|r| r == c) {
                held.push(c.to_string());
            }
        } else {
            held.retain(|r| r != c);
        }
    }
}

/// Does a policy expression read the view (`v`, `public.v`)?
fn names_view(expr: &str, view: &QualName) -> bool {
    sql::idents(expr).contains(&view.name)
}

/// What decides a table's protection, without where each fact came from: two paths that leave
/// equal fingerprints leave the table protected alike.
fn protection(t: &Table) -> impl PartialEq {
    let columns: Vec<_> = t
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.not_null, c.references.clone()))
        .collect();
    let mut policies: Vec<_> = t
        .policies
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.command,
                p.permissive,
                p.roles.clone(),
                p.using.clone(),
                p.with_check.clone(),
            )
        })
        .collect();
    policies.sort_by(|a, b| a.0.cmp(&b.0));
    let indexes: Vec<_> = t
        .indexes
        .iter()
        .map(|i| (i.name.clone(), i.columns.clone(), i.unique, i.partial))
        .collect();
    (
        t.name.clone(),
        columns,
        t.rls.on,
        t.rls_forced.on,
        policies,
        indexes,
        t.former_names.clone(),
        t.exposed,
    )
}

fn to_column(c: &ColumnDef, origin: &Origin) -> Column {
    Column {
        name: c.name.clone(),
        not_null: c.not_null,
        references: c.references.clone(),
        origin: Origin::new(
            origin.path.clone(),
            if c.line > 0 { c.line } else { origin.line },
        ),
        null_origin: Origin::new(
            origin.path.clone(),
            if c.line > 0 { c.line } else { origin.line },
        ),
    }
}

fn to_index(i: &IndexDef, origin: Origin) -> Index {
    Index {
        name: i.name.clone(),
        columns: i.columns.clone(),
        unique: i.unique,
        partial: i.partial,
        origin,
    }
}
