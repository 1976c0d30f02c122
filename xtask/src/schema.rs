//! The schema model: what a database looks like after a migration history, as far as tenant
//! isolation is concerned.
//!
//! Two readers fill it: the static reader (`gather::migrations`, replaying `.sql` files) and,
//! later, the live reader (a Postgres catalog). The rules in `rules::tenant` judge it and do
//! not know which reader filled it. Policy expressions are therefore kept as SQL *text* (what
//! `pg_get_expr` also returns), and `rules::policy` re-parses that text to judge it.
//!
//! Every fact keeps its [`Origin`] so that findings can name the file and line to fix.

use std::{collections::BTreeMap, fmt};

/// Where a fact came from: a migration file and line, or a catalog (`line` 0, `path` naming it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// Repository path, `/`-separated.
    pub path: String,
    /// 1-based line of the statement.
    pub line: u32,
}

impl Origin {
    pub fn new(path: impl Into<String>, line: u32) -> Origin {
        Origin {
            path: path.into(),
            line,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path, self.line)
    }
}

/// A schema-qualified name, each part folded as Postgres folds identifiers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualName {
    pub schema: String,
    pub name: String,
}

impl QualName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> QualName {
        QualName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parse a name as written in `xtask.toml` (`audit_log`, `public.audit_log`,
    /// `public."AuditTrail"`): unquoted parts fold to lower case, the schema defaults to `public`.
    pub fn from_config(s: &str) -> QualName {
        let parts = split_config_name(s);
        match parts.as_slice() {
            [name] => QualName::new("public", name.clone()),
            [.., schema, name] => QualName::new(schema.clone(), name.clone()),
            [] => QualName::new("public", ""),
        }
    }
}

impl QualName {
    /// As SQL: parts quoted where Postgres would otherwise fold or reject them.
    pub fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// A string literal: quotes doubled, backslashes as they are (read so with
/// `standard_conforming_strings` on, Postgres's default).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Quote an identifier unless it reads back the same unquoted.
pub fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

impl fmt::Display for QualName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Split `a."B".c` into folded parts; a trailing `()` is ignored (`auth.uid()`).
pub fn split_config_name(s: &str) -> Vec<String> {
    let s = s.trim().trim_end_matches("()");
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            '.' if !quoted => {
                parts.push(fold_part(std::mem::take(&mut cur), was_quoted));
                was_quoted = false;
            }
            c => cur.push(c),
        }
    }
    parts.push(fold_part(cur, was_quoted));
    parts
}

fn fold_part(s: String, quoted: bool) -> String {
    if quoted {
        s
    } else {
        s.trim().to_ascii_lowercase()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// Roles that bypass RLS (BYPASSRLS or superuser), as the live catalog knows them.
    pub bypass_roles: Vec<String>,
    /// Keyed by the qualified name.
    pub tables: BTreeMap<QualName, Table>,
    pub functions: BTreeMap<QualName, Function>,
    /// Triggers, as created (a dropped trigger is not removed: the trust chain errs towards
    /// a write path too many).
    pub triggers: Vec<Trigger>,
    /// Storage buckets the history creates (`insert into storage.buckets`), by id.
    pub buckets: BTreeMap<String, Bucket>,
    /// Views, by their current name: a policy may read the membership table through one.
    pub views: BTreeMap<QualName, View>,
}

/// `create [or replace] view name [(columns)] [with (...)] as query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub name: QualName,
    /// The query's text (`select ...`), as written or as `pg_get_viewdef` prints it, without
    /// a trailing semicolon. The policy judge parses it.
    pub query: String,
    /// The column names of `create view name (a, b)`, which rename the query's outputs in
    /// order (empty when none were given; `pg_get_viewdef` prints them as `AS` aliases).
    pub columns: Vec<String>,
    /// `with (security_invoker = true)`: the tables it reads apply the caller's rights and
    /// policies; otherwise its owner's (an owner's write through it passes their RLS).
    pub security_invoker: bool,
    /// Can a client role (`anon`, `authenticated`) insert or update rows through it? Known
    /// live only (`pg_relation_is_updatable` and `has_table_privilege`); `None` from the
    /// static reader, which leaves it to the view's shape.
    pub client_writable: Option<bool>,
    /// Can a client role (`anon`, `authenticated`) select from it? Known live only
    /// (`has_table_privilege`); statically `Some(false)` once the history has revoked every
    /// privilege of both client roles, else `None` (Supabase grants new relations to them).
    pub client_readable: Option<bool>,
    /// The static reader's account of the client roles that may hold a privilege on it, as
    /// [`Table::client_roles`].
    pub client_roles: Vec<String>,
    pub origin: Origin,
    /// Why the reader cannot vouch for the definition (the paths of a DO block define it
    /// differently): such a view is no membership select, and a policy reading it is in doubt.
    pub doubt: Option<Doubt>,
}

/// `create trigger ... on table ... execute function function()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub table: QualName,
    pub function: QualName,
    /// The events among INSERT, UPDATE, DELETE that fire it.
    pub events: Vec<Command>,
    pub origin: Origin,
}

/// A Supabase Storage bucket: its objects are rows of `storage.objects` with this `bucket_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub id: String,
    /// The `public` column as inserted (`None`: not given, Storage's default is private).
    pub public: Option<bool>,
    pub origin: Origin,
}

/// The roles clients act as on Supabase.
pub const CLIENT_ROLES: [&str; 2] = ["anon", "authenticated"];

/// The client roles a GRANT (`grant`) or a REVOKE names: by name, and for a GRANT all of
/// them through PUBLIC (a REVOKE FROM PUBLIC takes nothing granted to them by name).
pub fn clients_named(roles: &[String], grant: bool) -> Vec<&'static str> {
    if grant && roles.iter().any(|r| r == "public") {
        return CLIENT_ROLES.to_vec();
    }
    CLIENT_ROLES
        .into_iter()
        .filter(|c| roles.iter().any(|r| r == c))
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: QualName,
    /// Names the table had before `RENAME TO` / `SET SCHEMA` (policies written against them
    /// still apply: Postgres stores the table, not its name).
    pub former_names: Vec<QualName>,
    /// The `CREATE TABLE`, or the first statement that mentioned a table the reader never saw created.
    pub origin: Origin,
    pub columns: Vec<Column>,
    pub indexes: Vec<Index>,
    /// Set by `ENABLE ROW LEVEL SECURITY`, cleared by `DISABLE`: where that happened.
    pub rls: Switch,
    /// `FORCE ROW LEVEL SECURITY` (the owner is subject to policies too).
    pub rls_forced: Switch,
    pub policies: Vec<Policy>,
    /// Why the reader cannot vouch for this table (DO blocks, syntax errors, ...). Non-empty
    /// means the verdict can never be `protected`.
    pub unverified: Vec<Doubt>,
    /// Files (repository paths) whose statements created or changed this table.
    pub touched_by: Vec<String>,
    /// Can `anon` or `authenticated` reach it at all (any table privilege)? Live from
    /// `has_table_privilege`; statically `Some(false)` once the history has revoked every
    /// privilege of both (see `client_roles`), else `None`.
    pub exposed: Option<bool>,
    /// The static reader's account of which client roles (`anon`, `authenticated`) may hold a
    /// privilege on it: both at first (Supabase grants new relations to them by default),
    /// less each one a `REVOKE ALL` names, more each one a `GRANT` names.
    pub client_roles: Vec<String>,
}

impl Table {
    pub fn new(name: QualName, origin: Origin) -> Table {
        Table {
            name,
            former_names: Vec::new(),
            origin,
            columns: Vec::new(),
            indexes: Vec::new(),
            rls: Switch::default(),
            rls_forced: Switch::default(),
            policies: Vec::new(),
            unverified: Vec::new(),
            touched_by: Vec::new(),
            exposed: None,
            client_roles: CLIENT_ROLES.iter().map(|r| r.to_string()).collect(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        self.columns.iter_mut().find(|c| c.name == name)
    }

    pub fn touch(&mut self, path: &str) {
        if !self.touched_by.iter().any(|p| p == path) {
            self.touched_by.push(path.to_string());
        }
    }

    pub fn doubt(&mut self, origin: Origin, reason: impl Into<String>) {
        let reason = reason.into();
        if !self
            .unverified
            .iter()
            .any(|d| d.origin == origin && d.reason == reason)
        {
            self.unverified.push(Doubt { origin, reason });
        }
    }

    /// Is there an index whose first column is `column`?
    pub fn has_index_on(&self, column: &str) -> bool {
        self.indexes.iter().any(|i| {
            i.columns
                .first()
                .is_some_and(|c| c.as_deref() == Some(column))
        })
    }
}

/// An on/off state and where it was last set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switch {
    pub on: bool,
    pub origin: Option<Origin>,
}

impl Switch {
    pub fn set(&mut self, on: bool, origin: Origin) {
        self.on = on;
        self.origin = Some(origin);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doubt {
    pub origin: Origin,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub not_null: bool,
    /// `REFERENCES other(col)`: the referenced table.
    pub references: Option<QualName>,
    pub origin: Origin,
    /// Where NOT NULL was last set or dropped.
    pub null_origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The index name (`None` when Postgres would generate one the reader does not model).
    pub name: Option<String>,
    /// Key columns in order; `None` for an expression.
    pub columns: Vec<Option<String>>,
    pub unique: bool,
    /// A partial index (`WHERE ...`) does not serve every query on its first column.
    pub partial: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Command {
    All,
    Select,
    Insert,
    Update,
    Delete,
}

impl Command {
    /// The four commands a table must cover.
    pub const EACH: [Command; 4] = [
        Command::Select,
        Command::Insert,
        Command::Update,
        Command::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Command::All => "all",
            Command::Select => "select",
            Command::Insert => "insert",
            Command::Update => "update",
            Command::Delete => "delete",
        }
    }

    /// Does a policy `FOR self` apply to `cmd`?
    pub fn covers(self, cmd: Command) -> bool {
        self == Command::All || self == cmd
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub command: Command,
    pub permissive: bool,
    /// Folded role names; `public` when no `TO` was given.
    pub roles: Vec<String>,
    /// Expression text of `USING (...)`, without the parentheses of the clause.
    pub using: Option<String>,
    /// Expression text of `WITH CHECK (...)`.
    pub with_check: Option<String>,
    pub origin: Origin,
    /// What the policy's expressions use, as Postgres records it in `pg_depend` (live
    /// catalog only; `None` from the static reader).
    pub uses: Option<PolicyUses>,
}

/// The objects a policy's expressions depend on, from `pg_depend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PolicyUses {
    /// Columns of the policy's own table.
    pub columns: Vec<String>,
    /// Functions, schema-qualified (`public.get_current_tenant_id`).
    pub functions: Vec<String>,
    /// Other tables and views (a membership sub-select), schema-qualified.
    pub relations: Vec<String>,
}

impl Policy {
    /// The expressions Postgres evaluates for `cmd`: rows it lets the command see (`USING`)
    /// and new rows it accepts (`WITH CHECK`, which for ALL and UPDATE falls back to `USING`).
    /// Each `None` means "no expression": for a permissive policy, nothing filters.
    pub fn exprs_for(&self, cmd: Command) -> Vec<(&'static str, Option<&str>)> {
        let using = self.using.as_deref();
        let check = self.with_check.as_deref().or(match self.command {
            Command::All | Command::Update => using,
            _ => None,
        });
        match cmd {
            Command::Select | Command::Delete => vec![("USING", using)],
            Command::Insert => vec![("WITH CHECK", check)],
            Command::Update => vec![("USING", using), ("WITH CHECK", check)],
            Command::All => vec![("USING", using), ("WITH CHECK", check)],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: QualName,
    pub security_definer: bool,
    /// `SET search_path = ...` on the function: a security definer function without it can be
    /// tricked by objects a caller puts earlier on the path.
    pub fixed_search_path: bool,
    pub origin: Origin,
    /// Tables its body reads (`FROM` and `JOIN` relations of a `language sql` or `plpgsql`
    /// body), for the trust chain: a SECURITY DEFINER `is_member(tenant)` reading
    /// `tenant_members` is only as good as that table's policies. Empty when not known (the
    /// live catalog reads it from `prosrc`).
    pub reads: Vec<QualName>,
    /// Its parameters' names in call order (folded; empty for an unnamed one), so a call's
    /// argument can be matched with what the body does with it (`$2` or its name).
    pub params: Vec<String>,
    /// The words of its body (identifiers, folded; sorted): what the policy judge needs to
    /// know whether a helper compares the membership table's columns with its parameter and
    /// the current user. Empty when the body is not known.
    pub words: Vec<String>,
    /// Tables its body inserts into or updates (for a trigger that writes the membership
    /// table with its owner's rights).
    pub writes: Vec<QualName>,
}

impl Function {
    /// Does the body name the parameter at `i` (by its name or as `$i+1`)?
    pub fn uses_param(&self, i: usize) -> bool {
        let positional = format!("${}", i + 1);
        self.has_word(&positional)
            || self
                .params
                .get(i)
                .is_some_and(|n| !n.is_empty() && self.has_word(n))
    }

    /// Does the body have this word?
    pub fn has_word(&self, w: &str) -> bool {
        self.words.binary_search_by(|x| x.as_str().cmp(w)).is_ok()
    }
}

/// The words of a function body, as [`Function::words`] keeps them.
pub fn body_words(body: &str) -> Vec<String> {
    let mut w: Vec<String> = crate::sql::idents(body).into_iter().collect();
    // `$1` is not an identifier to `sql::idents`: add the positional parameters the body names.
    let b = body.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'$' {
            let digits: String = body[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if !digits.is_empty()
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            {
                w.push(format!("${digits}"));
            }
        }
    }
    w.sort();
    w.dedup();
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_fold_like_postgres() {
        assert_eq!(
            QualName::from_config("audit_log"),
            QualName::new("public", "audit_log")
        );
        assert_eq!(
            QualName::from_config("Private.Audit"),
            QualName::new("private", "audit")
        );
        assert_eq!(
            QualName::from_config("public.\"AuditTrail\""),
            QualName::new("public", "AuditTrail")
        );
        assert_eq!(split_config_name("auth.uid()"), ["auth", "uid"]);
        assert_eq!(
            QualName::new("public", "AuditTrail").sql(),
            "public.\"AuditTrail\""
        );
        assert_eq!(
            QualName::new("public", "audit_trail").sql(),
            "public.audit_trail"
        );
        assert_eq!(split_config_name("\"a.b\".\"c\"\"d\""), ["a.b", "c\"d"]);
    }

    #[test]
    fn update_without_check_reuses_using() {
        let p = Policy {
            name: "p".into(),
            command: Command::Update,
            permissive: true,
            roles: vec!["public".into()],
            using: Some("a".into()),
            with_check: None,
            origin: Origin::new("x.sql", 1),
            uses: None,
        };
        assert_eq!(
            p.exprs_for(Command::Update),
            [("USING", Some("a")), ("WITH CHECK", Some("a"))]
        );
        let ins = Policy {
            command: Command::Insert,
            using: None,
            ..p
        };
        assert_eq!(ins.exprs_for(Command::Insert), [("WITH CHECK", None)]);
    }
}
