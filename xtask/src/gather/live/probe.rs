//! The isolation probe: can tenant A reach tenant B's rows?
//!
//! As the superuser, a row is made for tenant A and one for tenant B (values from defaults,
//! made up from column types, parent rows created for foreign keys). Then, as the
//! `authenticated` role with tenant A's identity, the probe counts B's rows that A can
//! SELECT, UPDATE and DELETE, and tries to INSERT a row for B. Before any of that counts, A
//! must be able to read its own row: a probe whose identity the policies do not recognise
//! proves nothing, and says so instead of passing.
//!
//! Everything happens under a savepoint that is rolled back, inside the transaction that is
//! itself rolled back at the end of the check.

use std::{
    cell::RefCell,
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use postgres::Client;

use crate::{
    config::Tenancy,
    schema::{quote_literal as lit, QualName},
};

use super::{
    apply::describe,
    role::{probe_batch, through, Tried, Wrapper},
};

/// What the probe found on one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Tenant A saw its own row and nothing of B's, as each of `identities` (the roles).
    /// `refused`: A could not even read its own row because Postgres refused the statement
    /// as a whole, for every identity (a privilege the policies need and the role lacks:
    /// checked when the statement starts, whoever the user is), and every attempt on B's rows
    /// was refused or denied too: the table is closed to clients, and this says why.
    Isolated {
        identities: Vec<String>,
        refused: Option<String>,
    },
    /// Tenant A reached B's rows: each line of `leaks` is one piece of evidence.
    Leaks {
        leaks: Vec<String>,
        identities: Vec<String>,
    },
    /// The probe could not be run or proves nothing: why.
    Skipped(String),
}

/// For tests: probe as before the probe's round trips were cut, each step of an attack in a
/// round trip of its own. The results must be the same either way.
#[doc(hidden)]
pub static STEP_BY_STEP: AtomicBool = AtomicBool::new(false);

fn step_by_step() -> bool {
    STEP_BY_STEP.load(Ordering::SeqCst)
}

/// How the probe becomes a tenant.
pub struct Identity<'a> {
    pub tenancy: &'a Tenancy,
    /// `[live] become_tenant`: SQL with `:tenant` and `:user`; empty = membership + claims.
    pub become_tenant: &'a str,
}

/// What the probe reads of the catalog, kept for one history's probing (the schema does not
/// change while the probe runs: every row it makes is rolled back). [`forget`] empties it;
/// the driver calls it before and after each history's probes.
#[derive(Default)]
struct Cache {
    meta_keys: Option<Vec<String>>,
    columns: HashMap<String, Vec<Col>>,
    multi_keys: HashMap<String, Vec<MultiKey>>,
    row_checks: HashMap<String, Vec<(String, Vec<String>)>>,
    /// Per `table.column`: which candidate meets its CHECKs (see [`value_for`]).
    chosen: HashMap<String, Option<usize>>,
    /// Does the table exist (the membership table the config names)?
    exists: HashMap<String, bool>,
    /// Per table: does no policy admit a signed-in user (see [`no_policy_admits`])?
    closed: HashMap<String, bool>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// Empty the catalog cache of the probe (a new history, or another database).
pub fn forget() {
    CACHE.with(|c| *c.borrow_mut() = Cache::default());
}

/// What the probe reads of the catalog for each table it probes, read for all of them at
/// once (four queries, instead of four per table): see [`read_facts`] and [`seed`].
#[derive(Default, Clone)]
pub struct Facts {
    columns: HashMap<String, Vec<Col>>,
    multi_keys: HashMap<String, Vec<MultiKey>>,
    row_checks: HashMap<String, Vec<(String, Vec<String>)>>,
    closed: HashMap<String, bool>,
    exists: HashMap<String, bool>,
}

/// The catalog facts of `tables` (and of the membership table of `id`), each as the probe
/// reads it of one table. A table that is not there is left out (the probe then reads it
/// alone, and says why it cannot). `None` when a query fails: the probe reads table by table.
pub fn read_facts(c: &mut Client, tables: &[QualName], id: &Identity) -> Option<Facts> {
    let mut keys: Vec<String> = tables.iter().map(QualName::sql).collect();
    keys.push(QualName::from_config(&id.tenancy.membership_table).sql());
    keys.sort();
    keys.dedup();
    // Each key with the relation it names, in the order of the keys.
    let rel = "unnest($1::text[]) with ordinality r(key, o) \
               join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(r.key)";
    let mut f = Facts::default();
    for row in c
        .query(&format!("select r.key, {CLOSED} from {rel}"), &[&keys])
        .ok()?
    {
        let key: String = row.get(0);
        f.exists.insert(key.clone(), true);
        f.columns.insert(key.clone(), Vec::new());
        f.multi_keys.insert(key.clone(), Vec::new());
        f.row_checks.insert(key.clone(), Vec::new());
        f.closed.insert(key, row.get(1));
    }
    let rows = c
        .query(
            &format!(
                "select {COLUMN_FIELDS}, r.key from {rel} \
                 join pg_catalog.pg_attribute a on a.attrelid = c.oid \
                 join pg_catalog.pg_type t on t.oid = a.atttypid \
                 where a.attnum > 0 and not a.attisdropped order by r.o, a.attnum"
            ),
            &[&keys],
        )
        .ok()?;
    for row in &rows {
        f.columns.entry(row.get(13)).or_default().push(col_of(row));
    }
    let rows = c
        .query(
            &format!(
                "select x.*, r.key from {rel} cross join lateral \
                 (select {MULTI_KEY_FIELDS}, k.conname {MULTI_KEY_FROM} c.oid) x \
                 order by r.o, x.conname"
            ),
            &[&keys],
        )
        .ok()?;
    for row in &rows {
        f.multi_keys
            .entry(row.get(5))
            .or_default()
            .push(multi_key_of(row));
    }
    let rows = c
        .query(
            &format!(
                "select x.*, r.key from {rel} cross join lateral \
                 (select {ROW_CHECK_FIELDS}, k.conname {ROW_CHECK_FROM} c.oid) x \
                 order by r.o, x.conname"
            ),
            &[&keys],
        )
        .ok()?;
    for row in &rows {
        f.row_checks
            .entry(row.get(3))
            .or_default()
            .push((row.get(0), row.get(1)));
    }
    Some(f)
}

/// Put `facts` into this thread's catalog cache (after [`forget`]).
pub fn seed(facts: &Facts) {
    CACHE.with(|k| {
        let mut k = k.borrow_mut();
        k.columns.extend(facts.columns.clone());
        k.multi_keys.extend(facts.multi_keys.clone());
        k.row_checks.extend(facts.row_checks.clone());
        k.closed.extend(facts.closed.clone());
        k.exists.extend(facts.exists.clone());
    });
}

/// What `read` gives for `table`, read once per history: kept in the cache's map `of`.
fn per_table<T: Clone>(
    of: fn(&mut Cache) -> &mut HashMap<String, T>,
    table: &QualName,
    read: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    let key = table.sql();
    if let Some(v) = CACHE.with(|k| of(&mut k.borrow_mut()).get(&key).cloned()) {
        return Ok(v);
    }
    let v = read(&key)?;
    CACHE.with(|k| of(&mut k.borrow_mut()).insert(key, v.clone()));
    Ok(v)
}

/// Does `table` exist? (Read once per history.)
fn table_exists(c: &mut Client, table: &QualName) -> Result<bool, String> {
    per_table(
        |k| &mut k.exists,
        table,
        |key| {
            c.query_one("select to_regclass($1) is not null", &[&key])
                .map(|r| r.get(0))
                .map_err(|e| describe(&e).0)
        },
    )
}

/// A column as the probe needs it.
#[derive(Clone)]
struct Col {
    name: String,
    /// `format_type` of the column's type.
    ty: String,
    /// The type values are made of: the domain's base type for a domain, else `ty`.
    base: String,
    not_null: bool,
    has_default: bool,
    identity: bool,
    generated: bool,
    /// The generation expression of a generated column.
    generation: Option<String>,
    /// The default expression of a column that has one.
    default: Option<String>,
    /// Single-column foreign key: referenced table and column.
    references: Option<(QualName, String)>,
    /// The labels of an enum type (or of a domain over one), in order.
    enum_labels: Vec<String>,
    /// The table's CHECK expressions on this column alone (they name the column).
    checks: Vec<String>,
    /// The domain's CHECK expressions (they name `VALUE`).
    domain_checks: Vec<String>,
}

impl Col {
    /// The column's CHECKs and its domain's, as one text to read values from.
    fn all_checks(&self) -> String {
        self.checks
            .iter()
            .chain(&self.domain_checks)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The value of a SQL expression, as text (evaluated as the migration role: see [`as_migrator`]).
/// A plain literal (`'abc'`) is read without asking the server.
fn eval_text(c: &mut Client, expr: &str) -> Result<String, String> {
    if let Some(inner) = expr
        .strip_prefix('\'')
        .and_then(|e| e.strip_suffix('\''))
        .filter(|i| !i.replace("''", "").contains('\''))
    {
        return Ok(inner.replace("''", "'"));
    }
    as_migrator(c, &format!("select ({expr})::text"))
        .map_err(|e| describe(&e).0)?
        .ok_or_else(|| format!("{expr} is null"))
}

/// Run a statement of the probe as the migration role (which owns the tables and bypasses
/// row level security, as Supabase's `postgres` does): the triggers, defaults and functions
/// of the migrations it sets off never run as the superuser. Its first value as text.
fn as_migrator(c: &mut Client, sql: &str) -> Result<Option<String>, postgres::Error> {
    through(c, Wrapper::QueryAsMigrator, sql)
}

/// The ctids of tenant B's rows, seen as the migration role (past row level security).
fn ctids(c: &mut Client, b_rows: &str) -> Result<Vec<String>, String> {
    let all = as_migrator(c, &ctids_sql(b_rows)).map_err(|e| describe(&e).0)?;
    Ok(ctid_list(all))
}

/// The query of [`ctids`], to send along with another statement.
fn ctids_sql(b_rows: &str) -> String {
    format!("select string_agg(ctid::text, ' ') from ({b_rows}) r")
}

fn ctid_list(all: Option<String>) -> Vec<String> {
    all.unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn q(s: &str) -> String {
    crate::schema::quote_ident(s)
}

fn columns(c: &mut Client, table: &QualName) -> Result<Vec<Col>, String> {
    per_table(|k| &mut k.columns, table, |_| read_columns(c, table))
}

/// What [`Col`] is read from, per column of the relation `a.attrelid` (`t` its type).
const COLUMN_FIELDS: &str = "a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
   a.atthasdef, a.attidentity <> '', a.attgenerated <> '', \
   (select fn.nspname::text || '.' || fc.relname::text || '.' || fa.attname::text \
      from pg_catalog.pg_constraint f \
      join pg_catalog.pg_class fc on fc.oid = f.confrelid \
      join pg_catalog.pg_namespace fn on fn.oid = fc.relnamespace \
      join pg_catalog.pg_attribute fa on fa.attrelid = f.confrelid and fa.attnum = f.confkey[1] \
     where f.conrelid = a.attrelid and f.contype = 'f' and f.conkey = array[a.attnum] limit 1), \
   coalesce((select array_agg(e.enumlabel::text order by e.enumsortorder) from pg_catalog.pg_enum e \
     where e.enumtypid = (case when t.typtype = 'd' then t.typbasetype else a.atttypid end)), '{}'), \
   case when t.typtype = 'd' then pg_catalog.format_type(t.typbasetype, t.typtypmod) \
        else pg_catalog.format_type(a.atttypid, a.atttypmod) end, \
   coalesce((select array_agg(pg_catalog.pg_get_expr(k.conbin, k.conrelid)) from pg_catalog.pg_constraint k \
     where k.conrelid = a.attrelid and k.contype = 'c' and k.conkey = array[a.attnum]), '{}'), \
   coalesce((select array_agg(pg_catalog.pg_get_expr(k.conbin, 0)) from pg_catalog.pg_constraint k \
     where k.contypid = a.atttypid and k.contype = 'c'), '{}'), \
   (select pg_catalog.pg_get_expr(d.adbin, d.adrelid) from pg_catalog.pg_attrdef d \
     where d.adrelid = a.attrelid and d.adnum = a.attnum and a.attgenerated <> ''), \
   (select pg_catalog.pg_get_expr(d.adbin, d.adrelid) from pg_catalog.pg_attrdef d \
     where d.adrelid = a.attrelid and d.adnum = a.attnum and a.attgenerated = '')";

fn read_columns(c: &mut Client, table: &QualName) -> Result<Vec<Col>, String> {
    let rows = c
        .query(
            &format!(
                "select {COLUMN_FIELDS} \
                 from pg_catalog.pg_attribute a join pg_catalog.pg_type t on t.oid = a.atttypid \
                 where a.attrelid = $1::text::regclass and a.attnum > 0 and not a.attisdropped \
                 order by a.attnum"
            ),
            &[&table.sql()],
        )
        .map_err(|e| describe(&e).0)?;
    Ok(rows.iter().map(col_of).collect())
}

/// A row of [`COLUMN_FIELDS`].
fn col_of(r: &postgres::Row) -> Col {
    let reference: Option<String> = r.get(6);
    Col {
        name: r.get(0),
        ty: r.get(1),
        not_null: r.get(2),
        has_default: r.get(3),
        identity: r.get(4),
        generated: r.get(5),
        references: reference.and_then(|s| {
            let mut parts = s.splitn(3, '.');
            let (schema, name, col) = (parts.next()?, parts.next()?, parts.next()?);
            Some((QualName::new(schema, name), col.to_string()))
        }),
        enum_labels: r.get(7),
        base: r.get(8),
        checks: r.get(9),
        domain_checks: r.get(10),
        generation: r.get(11),
        default: r.get(12),
    }
}

/// A type's name without schema and modifiers: `timestamp(3) with time zone` →
/// `timestamp with time zone`, `extensions.vector(1536)` → `vector`.
fn type_name(ty: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for ch in ty.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let out = match out.rsplit_once('.') {
        Some((_, name)) if !out.starts_with('"') => name.to_string(),
        _ => out,
    };
    out.trim_matches('"').to_lowercase()
}

/// The first number of a type's modifier: `varchar(25)` → 25.
fn modifier(ty: &str) -> Option<usize> {
    let (_, rest) = ty.split_once('(')?;
    let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    n.parse().ok()
}

/// A fresh short identifier: a letter, then 11 lowercase letters and digits (meets the usual
/// `^[a-z][a-z0-9_]{2,}$` handles and `char_length` bounds).
const IDENT: &str = "'xp' || substr(md5(random()::text), 1, 10)";

/// A made-up value of a (base) type, as SQL.
fn made_up_base(ty: &str) -> Option<String> {
    let name = type_name(ty);
    let n = modifier(ty);
    let v = match name.as_str() {
        _ if ty.ends_with("[]") => format!("'{{}}'::{ty}"),
        "uuid" => "gen_random_uuid()".to_string(),
        "text" | "character varying" | "character" | "citext" | "name" | "varchar" | "bpchar" => {
            format!(
                "left('xtask-probe-' || gen_random_uuid()::text, {})",
                n.unwrap_or(64)
            )
        }
        "smallint" => "(random() * 30000)::int2".into(),
        "integer" => "(random() * 2000000000)::int4".into(),
        "bigint" => "(random() * 9000000000000000)::int8".into(),
        "numeric" | "real" | "double precision" => format!("1::{ty}"),
        "money" => "'1.00'::money".into(),
        "boolean" => "false".into(),
        "date" => "current_date".into(),
        "timestamp with time zone"
        | "timestamp without time zone"
        | "time without time zone"
        | "time with time zone" => format!("now()::{ty}"),
        "interval" => format!("interval '1 day'::{ty}"),
        "jsonb" | "json" => format!("'{{}}'::{ty}"),
        "bytea" => "'\\x00'::bytea".into(),
        "inet" => "'127.0.0.1'::inet".into(),
        "cidr" => "'10.0.0.0/8'::cidr".into(),
        "macaddr" => "'08:00:2b:01:02:03'::macaddr".into(),
        "macaddr8" => "'08:00:2b:01:02:03:04:05'::macaddr8".into(),
        "bit" => format!("repeat('0', {})::{ty}", n.unwrap_or(1)),
        "bit varying" => format!("'0'::{ty}"),
        "tsvector" => "'xtask'::tsvector".into(),
        "tsquery" => "'xtask'::tsquery".into(),
        "int4range" | "int8range" | "numrange" | "tsrange" | "tstzrange" | "daterange" => {
            format!("'empty'::{ty}")
        }
        "point" => "'(0,0)'::point".into(),
        "xml" => "'<x/>'::xml".into(),
        "oid" => "0::oid".into(),
        "vector" | "halfvec" => format!(
            "('[' || array_to_string(array_fill(0, array[{}]), ',') || ']')::{ty}",
            n.unwrap_or(3)
        ),
        _ => return None,
    };
    Some(v)
}

/// The quoted literals of SQL text (`'draft'`, `'it''s'`).
fn literals(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '\'' {
            continue;
        }
        let mut s = String::new();
        while let Some(ch) = chars.next() {
            if ch == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    s.push('\'');
                    continue;
                }
                break;
            }
            s.push(ch);
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The numbers of SQL text outside its literals (`char_length(x) >= 3` → 3; not the 5 of md5).
fn numbers(sql: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut quoted = false;
    let mut prev = ' ';
    let mut cur = String::new();
    for ch in sql.chars().chain(std::iter::once(' ')) {
        if ch == '\'' {
            quoted = !quoted;
        }
        let digit = !quoted && (ch.is_ascii_digit() || (ch == '.' && !cur.is_empty()));
        if digit && (!cur.is_empty() || !(prev.is_alphanumeric() || prev == '_')) {
            cur.push(ch);
        } else if !cur.is_empty() {
            let n = std::mem::take(&mut cur);
            let n = n.trim_end_matches('.').to_string();
            if !out.contains(&n) {
                out.push(n);
            }
        }
        prev = ch;
    }
    out
}

/// Values of a column's base type to try against its CHECKs, most general first.
fn candidates(col: &Col) -> Vec<String> {
    if !col.enum_labels.is_empty() {
        return col.enum_labels.iter().map(|l| lit(l)).collect();
    }
    let mut out: Vec<String> = made_up_base(&col.base).into_iter().collect();
    let checks = col.all_checks();
    let name = type_name(&col.base);
    match name.as_str() {
        _ if col.base.ends_with("[]") => {
            let elem = col.base.trim_end_matches("[]");
            if let Some(v) = made_up_base(elem) {
                out.push(format!("array[{v}]"));
            }
        }
        "text" | "character varying" | "character" | "citext" | "name" | "varchar" | "bpchar" => {
            out.push(IDENT.to_string());
            out.push(format!("{IDENT} || '@example.com'"));
            out.push("'https://example.com/' || substr(md5(random()::text), 1, 8)".to_string());
            out.extend(literals(&checks).iter().map(|l| lit(l)));
            for n in numbers(&checks) {
                if let Ok(n) = n.parse::<usize>() {
                    if (1..=10_000).contains(&n) {
                        out.push(format!("rpad('xp' || md5(random()::text), {n}, 'x')"));
                    }
                }
            }
        }
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" => {
            for n in numbers(&checks) {
                out.push(n.clone());
                out.push(format!("{n} + 1"));
                out.push(format!("{n} - 1"));
            }
            out.push("0".into());
            out.push("1".into());
        }
        _ => out.extend(literals(&checks).iter().map(|l| lit(l))),
    }
    out
}

/// Under a savepoint: the first value of a query as the superuser, or `None` when it fails.
fn try_query(c: &mut Client, sql: &str) -> Option<String> {
    c.batch_execute("savepoint xtask_try").ok()?;
    match c.query_opt(sql, &[]) {
        Ok(row) => {
            c.batch_execute("release savepoint xtask_try").ok()?;
            row.and_then(|r| r.get::<_, Option<String>>(0))
        }
        Err(_) => {
            let _ = c.batch_execute("rollback to savepoint xtask_try; release savepoint xtask_try");
            None
        }
    }
}

/// A value for a NOT NULL column without a default, as SQL of the column's type: the first
/// candidate that Postgres says meets every CHECK of the column and of its domain.
fn value_for(c: &mut Client, table: &QualName, col: &Col) -> Result<String, String> {
    let cands = candidates(col);
    let cast = |v: &str| format!("({v})::{}", col.ty);
    if cands.is_empty() {
        return Err(format!(
            "cannot make up a value for {table}.{} of type {}",
            col.name, col.ty
        ));
    }
    if col.checks.is_empty() && col.domain_checks.is_empty() {
        return Ok(cast(&cands[0]));
    }
    // Each candidate under the column's name (the table's CHECKs name it) and as VALUE (the
    // domain's CHECKs do); a CHECK passes when it is not false, as Postgres decides.
    let value = col.name != "value";
    let rows: Vec<String> = cands
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v = format!("({v})::{}", col.base);
            if value {
                format!("({i}, {v}, {v})")
            } else {
                format!("({i}, {v})")
            }
        })
        .collect();
    let conds: Vec<String> = col
        .checks
        .iter()
        .chain(&col.domain_checks)
        .map(|k| format!("({k}) is not false"))
        .collect();
    let sql = format!(
        "select min(i)::text from (values {}) v(i, {}{}) where {}",
        rows.join(", "),
        q(&col.name),
        if value { ", value" } else { "" },
        conds.join(" and ")
    );
    let key = format!("{}.{}", table.sql(), q(&col.name));
    let chosen = match CACHE.with(|k| k.borrow().chosen.get(&key).copied()) {
        Some(i) => i,
        None => {
            let i = try_query(c, &sql).and_then(|i| i.parse::<usize>().ok());
            CACHE.with(|k| k.borrow_mut().chosen.insert(key, i));
            i
        }
    };
    match chosen {
        Some(i) => Ok(cast(&cands[i])),
        None => Err(format!(
            "no value the probe can make meets the CHECK of {table}.{} ({})",
            col.name,
            col.checks
                .iter()
                .chain(&col.domain_checks)
                .cloned()
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

/// A made-up value of a column's type, as SQL, without looking at its CHECKs.
fn made_up(col: &Col) -> Option<String> {
    candidates(col)
        .first()
        .map(|v| format!("({v})::{}", col.ty))
}

/// A multi-column foreign key: its columns, the referenced table and columns, in order.
#[derive(Clone)]
struct MultiKey {
    cols: Vec<String>,
    parent: QualName,
    pcols: Vec<String>,
}

fn multi_keys(c: &mut Client, table: &QualName) -> Result<Vec<MultiKey>, String> {
    per_table(|k| &mut k.multi_keys, table, |_| read_multi_keys(c, table))
}

/// What [`MultiKey`] is read from, per foreign key `k` (`fc` the referenced table, `fn` its
/// schema).
const MULTI_KEY_FIELDS: &str =
    "array(select a.attname::text from unnest(k.conkey) with ordinality u(n, o) \
     join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.o), \
   fn.nspname::text, fc.relname::text, \
   array(select a.attname::text from unnest(k.confkey) with ordinality u(n, o) \
     join pg_catalog.pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.o)";

/// The constraints [`MULTI_KEY_FIELDS`] reads, of the relation that ends the text.
const MULTI_KEY_FROM: &str = "from pg_catalog.pg_constraint k \
   join pg_catalog.pg_class fc on fc.oid = k.confrelid \
   join pg_catalog.pg_namespace fn on fn.oid = fc.relnamespace \
   where k.contype = 'f' and cardinality(k.conkey) > 1 and k.conrelid =";

fn read_multi_keys(c: &mut Client, table: &QualName) -> Result<Vec<MultiKey>, String> {
    let rows = c
        .query(
            &format!(
                "select {MULTI_KEY_FIELDS} {MULTI_KEY_FROM} $1::text::regclass order by k.conname"
            ),
            &[&table.sql()],
        )
        .map_err(|e| describe(&e).0)?;
    Ok(rows.iter().map(multi_key_of).collect())
}

/// A row of [`MULTI_KEY_FIELDS`].
fn multi_key_of(r: &postgres::Row) -> MultiKey {
    MultiKey {
        cols: r.get(0),
        parent: QualName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
        pcols: r.get(3),
    }
}

/// A CHECK `k` on several columns: its expression and its columns.
const ROW_CHECK_FIELDS: &str = "pg_catalog.pg_get_expr(k.conbin, k.conrelid), \
   array(select a.attname::text from pg_catalog.pg_attribute a \
          where a.attrelid = k.conrelid and a.attnum = any(k.conkey))";

/// The constraints [`ROW_CHECK_FIELDS`] reads, of the relation that ends the text.
const ROW_CHECK_FROM: &str =
    "from pg_catalog.pg_constraint k where k.contype = 'c' and cardinality(k.conkey) > 1 and k.conrelid =";

/// The table's CHECKs on several columns: expression and column names.
fn row_checks(c: &mut Client, table: &QualName) -> Result<Vec<(String, Vec<String>)>, String> {
    per_table(
        |k| &mut k.row_checks,
        table,
        |key| {
            Ok(c.query(
            &format!("select {ROW_CHECK_FIELDS} {ROW_CHECK_FROM} $1::text::regclass order by k.conname"),
            &[&key],
        )
        .map_err(|e| describe(&e).0)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
        },
    )
}

/// A generation expression that is a constant (`true`, `false`, a number): the value a
/// generated column will have, known before the insert.
fn constant(expr: &str) -> Option<String> {
    let e = expr.trim();
    (e == "true" || e == "false" || e.parse::<f64>().is_ok()).then(|| e.to_string())
}

/// Builds rows for the probe, creating parent rows for foreign keys as it goes.
struct Maker<'c> {
    c: &'c mut Client,
    tenant_col: String,
    /// The tables whose rows are being made (a foreign key back to one is a cycle).
    visiting: Vec<QualName>,
}

impl<'c> Maker<'c> {
    fn new(c: &'c mut Client, tenant_col: &str) -> Self {
        Maker {
            c,
            tenant_col: tenant_col.to_string(),
            visiting: Vec::new(),
        }
    }

    /// The SQL values for a new row of `table` owned by `tenant` (a SQL literal), keyed by
    /// column. Columns left out take their defaults; `fixed` ones are the caller's.
    fn values(
        &mut self,
        table: &QualName,
        tenant: Option<&str>,
        fixed: &[(String, String)],
        depth: u32,
    ) -> Result<Vec<(String, String)>, String> {
        if depth > 5 {
            return Err(format!("foreign keys nest too deep at {table}"));
        }
        if self.visiting.contains(table) {
            return Err(format!(
                "the NOT NULL foreign keys of {table} form a cycle the probe cannot close"
            ));
        }
        self.visiting.push(table.clone());
        let out = self.values_of(table, tenant, fixed, depth);
        self.visiting.pop();
        out
    }

    fn values_of(
        &mut self,
        table: &QualName,
        tenant: Option<&str>,
        fixed: &[(String, String)],
        depth: u32,
    ) -> Result<Vec<(String, String)>, String> {
        let cols = columns(self.c, table)?;
        let mut out: Vec<(String, String)> = fixed.to_vec();
        let has = |out: &[(String, String)], name: &str| out.iter().any(|(k, _)| k == name);
        if let Some(t) = tenant {
            if let Some(col) = cols.iter().find(|k| k.name == self.tenant_col) {
                if !has(&out, &col.name) && !col.generated && !col.identity {
                    out.push((col.name.clone(), format!("{t}::{}", col.ty)));
                }
            }
        }
        let needed = |k: &Col| k.not_null && !k.has_default && !k.generated && !k.identity;
        // Multi-column foreign keys: one parent row of the same tenant gives them all.
        for key in multi_keys(self.c, table)? {
            let cols_of = |n: &str| cols.iter().find(|k| k.name == n);
            if !key
                .cols
                .iter()
                .any(|n| cols_of(n).is_some_and(&needed) && !out.iter().any(|(k, _)| k == n))
            {
                continue;
            }
            let mut pfixed = Vec::new();
            for (lc, pc) in key.cols.iter().zip(&key.pcols) {
                if let Some((_, v)) = out.iter().find(|(k, _)| k == lc) {
                    pfixed.push((pc.clone(), v.clone()));
                } else if let Some(v) = cols_of(lc)
                    .and_then(|k| k.generation.as_deref())
                    .and_then(constant)
                {
                    pfixed.push((pc.clone(), v));
                }
            }
            let returning: Vec<String> = key
                .pcols
                .iter()
                .filter(|pc| !pfixed.iter().any(|(k, _)| k == *pc))
                .cloned()
                .collect();
            let got = self.insert_row(&key.parent, tenant, &pfixed, &returning, depth + 1)?;
            for (lc, pc) in key.cols.iter().zip(&key.pcols) {
                if let Some(i) = returning.iter().position(|r| r == pc) {
                    if cols_of(lc).is_some_and(|k| !k.generated) && !has(&out, lc) {
                        out.push((lc.clone(), got[i].clone()));
                    }
                }
            }
        }
        for col in &cols {
            if !needed(col) || has(&out, &col.name) {
                continue;
            }
            if let Some((parent, pcol)) = &col.references {
                let id = self.insert(parent, tenant, Some(pcol), depth + 1)?;
                out.push((col.name.clone(), id));
                continue;
            }
            let v = value_for(self.c, table, col)?;
            out.push((col.name.clone(), v));
        }
        self.meet_row_checks(table, &cols, &mut out)?;
        Ok(out)
    }

    /// A CHECK on several columns (`slug` set unless `personal_account`): when the row as
    /// made fails it, its nullable columns get values too, if that makes it pass.
    fn meet_row_checks(
        &mut self,
        table: &QualName,
        cols: &[Col],
        out: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        let checks = row_checks(self.c, table)?;
        for (expr, names) in checks {
            let passes = |c: &mut Client, out: &[(String, String)]| {
                let fields: Vec<String> = names
                    .iter()
                    .filter_map(|n| {
                        let col = cols.iter().find(|k| &k.name == n)?;
                        let v = out
                            .iter()
                            .find(|(k, _)| k == n)
                            .map(|(_, v)| v.clone())
                            .or_else(|| col.default.clone())
                            .unwrap_or_else(|| "null".into());
                        Some(format!("({v})::{} as {}", col.ty, q(n)))
                    })
                    .collect();
                try_query(
                    c,
                    &format!(
                        "select (({expr}) is not false)::text from (select {}) r",
                        fields.join(", ")
                    ),
                )
                .is_none_or(|v| v == "true")
            };
            if passes(self.c, out) {
                continue;
            }
            let mut filled = out.clone();
            for n in &names {
                let Some(col) = cols.iter().find(|k| &k.name == n) else {
                    continue;
                };
                if col.generated
                    || col.identity
                    || col.has_default
                    || filled.iter().any(|(k, _)| k == n)
                {
                    continue;
                }
                if let Ok(v) = value_for(self.c, table, col) {
                    filled.push((n.clone(), v));
                }
            }
            if passes(self.c, &filled) {
                *out = filled;
            }
        }
        Ok(())
    }

    /// After a unique violation: the row that holds the violated key with our values, made
    /// by a trigger of an earlier insert; the `returning` columns of it.
    fn made_by_trigger(
        &mut self,
        table: &QualName,
        values: &[(String, String)],
        returning: &[String],
        e: &postgres::Error,
    ) -> Option<Vec<String>> {
        if e.code() != Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
            return None;
        }
        let constraint = e.as_db_error()?.constraint()?.to_string();
        let cols: Vec<String> = self
            .c
            .query(
                "select a.attname::text from pg_catalog.pg_constraint k \
                 join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = any(k.conkey) \
                 where k.conrelid = $1::text::regclass and k.conname = $2::text",
                &[&table.sql(), &constraint],
            )
            .ok()?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // A key column left to its default (`id default auth.uid()`) holds the default's
        // value, evaluated with the same claims.
        let all = columns(self.c, table).ok()?;
        let conds: Vec<String> = cols
            .iter()
            .map(|c| {
                values
                    .iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| format!("{} = {v}", q(c)))
                    .or_else(|| {
                        let d = all.iter().find(|k| &k.name == c)?.default.as_ref()?;
                        Some(format!("{} = ({d})", q(c)))
                    })
            })
            .collect::<Option<_>>()?;
        if conds.is_empty() {
            return None;
        }
        let sql = format!(
            "select {} from {} where {} limit 1",
            returning_sql(returning),
            table.sql(),
            conds.join(" and ")
        );
        match as_migrator(self.c, &sql) {
            Ok(Some(v)) => parse_returned(&v, returning.len()),
            _ => None,
        }
    }

    /// Insert a row into `table` for `tenant`; return the value of `returning` (as a SQL literal).
    fn insert(
        &mut self,
        table: &QualName,
        tenant: Option<&str>,
        returning: Option<&str>,
        depth: u32,
    ) -> Result<String, String> {
        let ret: Vec<String> = returning.into_iter().map(String::from).collect();
        let got = self.insert_row(table, tenant, &[], &ret, depth)?;
        Ok(got.into_iter().next().unwrap_or_else(|| "null".into()))
    }

    /// Insert a row into `table` for `tenant` with the `fixed` values; the `returning`
    /// columns of it, as SQL literals.
    fn insert_row(
        &mut self,
        table: &QualName,
        tenant: Option<&str>,
        fixed: &[(String, String)],
        returning: &[String],
        depth: u32,
    ) -> Result<Vec<String>, String> {
        // A user is made the way the app makes users (signup, with the metadata its
        // triggers read).
        if *table == QualName::new("auth", "users") && fixed.is_empty() && returning == ["id"] {
            return Ok(vec![lit(&new_user(self.c)?)]);
        }
        let values = self.values(table, tenant, fixed, depth)?;
        let sql = insert_sql_returning(table, &values, returning);
        let err = |e: postgres::Error| describe(&e).0;
        self.c
            .batch_execute("savepoint xtask_parent")
            .map_err(err)?;
        let v = match as_migrator(self.c, &sql) {
            Ok(v) => {
                self.c
                    .batch_execute("release savepoint xtask_parent")
                    .map_err(err)?;
                v.and_then(|v| parse_returned(&v, returning.len()))
                    .unwrap_or_else(|| vec!["null".into(); returning.len()])
            }
            Err(e) => {
                self.c
                    .batch_execute(
                        "rollback to savepoint xtask_parent; release savepoint xtask_parent",
                    )
                    .map_err(err)?;
                // A trigger made this row already (a profile on signup): use it.
                self.made_by_trigger(table, &values, returning, &e)
                    .ok_or_else(|| {
                        format!("cannot insert a row into {table}: {}", describe(&e).0)
                    })?
            }
        };
        Ok(v)
    }
}

/// The `returning` columns as one JSON array of texts.
fn returning_sql(returning: &[String]) -> String {
    if returning.is_empty() {
        return "'[]'".into();
    }
    let cols: Vec<String> = returning
        .iter()
        .map(|c| format!("{}::text", q(c)))
        .collect();
    format!("json_build_array({})::text", cols.join(", "))
}

/// The values of [`returning_sql`], as SQL literals.
fn parse_returned(json: &str, n: usize) -> Option<Vec<String>> {
    let v: Vec<Option<String>> = serde_json::from_str(json).ok()?;
    (v.len() == n).then(|| {
        v.into_iter()
            .map(|x| x.map_or("null".into(), |x| lit(&x)))
            .collect()
    })
}

fn insert_sql_returning(
    table: &QualName,
    values: &[(String, String)],
    returning: &[String],
) -> String {
    insert_returning(table, values, &returning_sql(returning))
}

fn insert_sql(table: &QualName, values: &[(String, String)], returning: Option<&str>) -> String {
    let ret = returning.map_or("1".to_string(), |c| format!("{}::text", q(c)));
    insert_returning(table, values, &ret)
}

/// `insert into <table> (<columns>) values (<values>) returning <ret>`, or `default values`
/// when no column is given.
fn insert_returning(table: &QualName, values: &[(String, String)], ret: &str) -> String {
    if values.is_empty() {
        return format!("insert into {} default values returning {ret}", table.sql());
    }
    let cols: Vec<String> = values.iter().map(|(c, _)| q(c)).collect();
    let vals: Vec<&str> = values.iter().map(|(_, v)| v.as_str()).collect();
    format!(
        "insert into {} ({}) values ({}) returning {ret}",
        table.sql(),
        cols.join(", "),
        vals.join(", ")
    )
}

/// The keys of `raw_user_meta_data` the database's functions read (signup triggers).
fn meta_keys(c: &mut Client) -> Vec<String> {
    if let Some(keys) = CACHE.with(|k| k.borrow().meta_keys.clone()) {
        return keys;
    }
    let keys = read_meta_keys(c);
    CACHE.with(|k| k.borrow_mut().meta_keys = Some(keys.clone()));
    keys
}

fn read_meta_keys(c: &mut Client) -> Vec<String> {
    c.query(
        "select distinct m[1] from pg_catalog.pg_proc p, \
           regexp_matches(p.prosrc, 'raw_user_meta_data\\s*->>?\\s*''([A-Za-z0-9_]+)''', 'g') m \
         where p.prolang <> 12 and p.prolang <> 13 order by 1",
        &[],
    )
    .map(|rows| rows.iter().map(|r| r.get(0)).collect())
    .unwrap_or_default()
}

/// A new signed-up user: an `auth.users` row with an email and, in `raw_user_meta_data`, a
/// value for every key the functions read (a handle, a name, an avatar URL), so signup
/// triggers run as they do for a real user. Its id. Best effort: a database without
/// `auth.users` (or whose trigger refuses it) still gets the id.
fn new_user(c: &mut Client) -> Result<String, String> {
    let meta: Vec<String> = meta_keys(c)
        .iter()
        .map(|k| {
            let v = if k.contains("email") {
                format!("{IDENT} || '@example.com'")
            } else if k.contains("url") || k.contains("avatar") || k.contains("picture") {
                "'https://example.com/' || substr(md5(random()::text), 1, 8)".to_string()
            } else {
                IDENT.to_string()
            };
            format!("{}, {v}", lit(k))
        })
        .collect();
    let insert = format!(
        "insert into auth.users (id, aud, role, email, raw_user_meta_data) \
         select u, 'authenticated', 'authenticated', 'xtask-' || u || '@example.com', jsonb_build_object({}) \
         from gen_random_uuid() u returning id::text",
        meta.join(", ")
    );
    // The savepoint and the insert in one round trip.
    let made = probe_batch(
        c,
        Some("savepoint xtask_user"),
        &[(Wrapper::QueryAsMigrator, &insert)],
        None,
    )
    .map(|mut v| v.pop().flatten());
    let user = match made {
        Ok(Some(user)) => {
            c.batch_execute("release savepoint xtask_user")
                .map_err(|e| describe(&e).0)?;
            user
        }
        _ => {
            c.batch_execute("rollback to savepoint xtask_user; release savepoint xtask_user")
                .map_err(|e| describe(&e).0)?;
            eval_text(c, "gen_random_uuid()")?
        }
    };
    Ok(user)
}

/// The session's JWT claims: user `user`, signed in, of `tenant` when given (a SQL literal),
/// with the configured tenant settings. Defaults such as `auth.uid()` then yield this user.
fn set_claims(
    c: &mut Client,
    user: &str,
    tenant: Option<&str>,
    settings: &[String],
) -> Result<(), String> {
    let sql = claims_sql(c, user, tenant, settings)?;
    run_claims(c, &sql)
}

/// Run the statement of [`claims_sql`].
fn run_claims(c: &mut Client, sql: &str) -> Result<(), String> {
    c.batch_execute(sql)
        .map_err(|e| format!("cannot set the probe's claims: {}", describe(&e).0))
}

/// The statement [`set_claims`] runs.
fn claims_sql(
    c: &mut Client,
    user: &str,
    tenant: Option<&str>,
    settings: &[String],
) -> Result<String, String> {
    let claims = match tenant {
        Some(t) => {
            let t = eval_text(c, t)?;
            format!(
                r#"{{"sub":"{user}","role":"authenticated","aud":"authenticated","tenant_id":"{t}","app_metadata":{{"tenant_id":"{t}"}}}}"#
            )
        }
        None => format!(r#"{{"sub":"{user}","role":"authenticated","aud":"authenticated"}}"#),
    };
    let mut sql = format!(
        "select set_config('request.jwt.claims', {}, true), set_config('request.jwt.claim.sub', {}, true), set_config('request.jwt.claim.role', 'authenticated', true)",
        lit(&claims),
        lit(user)
    );
    if let Some(t) = tenant {
        for s in settings {
            sql.push_str(&format!(
                ", set_config({}, ({t})::text, true)",
                lit(s.trim())
            ));
        }
    }
    Ok(sql)
}

/// Insert a tenant's row; when a trigger already made it (a profile created on signup, a
/// membership on team creation: a unique key is taken), use that row rather than fight it.
fn insert_or_reuse(
    c: &mut Client,
    table: &QualName,
    values: &[(String, String)],
    col: &str,
    tenant: &str,
    ty: &str,
) -> Result<(), String> {
    let err = |e: postgres::Error| describe(&e).0;
    // The savepoint, the insert and the release in one round trip; Postgres stops at an
    // error, the savepoint is then still there.
    let insert = insert_sql(table, values, None);
    match probe_batch(
        c,
        Some("savepoint xtask_row"),
        &[(Wrapper::QueryAsMigrator, &insert)],
        Some("release savepoint xtask_row"),
    ) {
        Ok(_) => Ok(()),
        Err(e) => {
            c.batch_execute("rollback to savepoint xtask_row; release savepoint xtask_row")
                .map_err(err)?;
            let made_by_trigger = e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
                && as_migrator(
                    c,
                    &format!(
                        "select count(*) from {} where {} = {tenant}::{ty}",
                        table.sql(),
                        q(col)
                    ),
                )
                .ok()
                .flatten()
                .and_then(|n| n.parse::<i64>().ok())
                .is_some_and(|n| n > 0);
            if made_by_trigger {
                Ok(())
            } else {
                Err(format!(
                    "cannot insert a row into {table}: {}",
                    describe(&e).0
                ))
            }
        }
    }
}

/// The self-join attack: as a signed-in member of tenant A, can the user write a membership
/// row for tenant B (insert one, or move their own)? The evidence, when Postgres lets them.
/// Leaves the transaction as it found it.
pub fn self_join(c: &mut Client, id: &Identity) -> Result<Option<String>, String> {
    if !id.become_tenant.trim().is_empty() {
        return Ok(None); // the configured way of becoming a tenant may not use the table
    }
    let members = QualName::from_config(&id.tenancy.membership_table);
    let exists = table_exists(c, &members)?;
    if !exists {
        return Ok(None);
    }
    c.batch_execute("savepoint xtask_join")
        .map_err(|e| describe(&e).0)?;
    let result = attempt_join(c, id, &members);
    let _ = c.batch_execute("rollback to savepoint xtask_join; release savepoint xtask_join");
    result
}

fn attempt_join(
    c: &mut Client,
    id: &Identity,
    members: &QualName,
) -> Result<Option<String>, String> {
    let fold = |s: &str| {
        crate::schema::split_config_name(s)
            .pop()
            .unwrap_or_default()
    };
    let (tcol, ucol) = (
        fold(&id.tenancy.membership_tenant_column),
        fold(&id.tenancy.membership_user_column),
    );
    let cols = columns(c, members)?;
    let Some(tenant_col) = cols.iter().find(|k| k.name == tcol) else {
        return Ok(None);
    };
    let mut maker = Maker::new(c, &tcol);
    let (a, b) = match &tenant_col.references {
        Some((parent, pcol)) => (
            maker.insert(parent, None, Some(pcol), 1)?,
            maker.insert(parent, None, Some(pcol), 1)?,
        ),
        None => {
            let v = made_up(tenant_col)
                .ok_or_else(|| format!("cannot make up a tenant of type {}", tenant_col.ty))?;
            (lit(&eval_text(maker.c, &v)?), lit(&eval_text(maker.c, &v)?))
        }
    };
    let ty = tenant_col.ty.clone();
    let user = new_user(c)?;
    become_tenant(c, id, &a, &user, None)?;
    let mut maker = Maker::new(c, &tcol);
    let mut values = maker.values(members, Some(&b), &[], 1)?;
    values.retain(|(k, _)| *k != ucol);
    values.push((ucol.clone(), format!("{}::uuid", lit(&user))));
    let joined = as_tenant(c, &insert_sql(members, &values, None), None, |r, _| {
        Ok(r.map_or(0, |_| 1))
    })
    .unwrap_or(0);
    if joined > 0 {
        return Ok(Some(format!(
            "live: a signed-in member of tenant A inserted a row of {members} for tenant B with their own user id"
        )));
    }
    let moved = as_tenant(
        c,
        &format!(
            "update {} set {} = {b}::{ty} where {} = {}::uuid",
            members.sql(),
            q(&tcol),
            q(&ucol),
            lit(&user)
        ),
        None,
        |r, _| Ok(r.unwrap_or(0)),
    )
    .unwrap_or(0);
    Ok((moved > 0).then(|| {
        format!("live: a signed-in member of tenant A moved their own row of {members} to tenant B")
    }))
}

/// Run the probe on one table. The caller holds the transaction; this function leaves it
/// as it found it (savepoint rolled back, role reset) whatever happens.
pub fn probe(c: &mut Client, table: &QualName, id: &Identity) -> Probe {
    probe_in(c, table, id, None).0
}

/// [`probe`], as one of the tables that share `shared` (made in the caller's transaction
/// by [`share`]; see [`shares`]) when given. With the probe, whether the transaction is as
/// the probe found it (its savepoint rolled back).
pub fn probe_in(
    c: &mut Client,
    table: &QualName,
    id: &Identity,
    shared: Option<&Shared>,
) -> (Probe, bool) {
    if let Err(e) = c.batch_execute("savepoint xtask_probe") {
        let why = format!("cannot start the probe: {}", describe(&e).0);
        return (Probe::Skipped(why), false);
    }
    let result = run(c, table, id, shared);
    let ended = c
        .batch_execute("rollback to savepoint xtask_probe; release savepoint xtask_probe")
        .is_ok();
    let p = match result {
        Ok(p) => p,
        Err(why) => Probe::Skipped(why),
    };
    (p, ended)
}

/// The identities of the probe made once for the probes of many tables on one connection
/// (`pool.rs`), in a transaction that holds each table's probe under a savepoint: the users
/// of tenants A and B, the two tenants (rows of the table the membership's tenant column
/// points at), and a member of A per membership role. A table's own probe would make the
/// same rows, per table; where those rows could change what a table's probe finds, the
/// table is probed as before, alone (see [`shares`]).
pub struct Shared {
    /// The tenants' table and the column the tenant is.
    parent: (QualName, String),
    user_a: String,
    user_b: String,
    /// The two tenants, as SQL literals.
    a: String,
    b: String,
    /// Per membership role (none without a role column): its member of A, or why the probe
    /// could not make one.
    members: Vec<(String, Result<String, String>)>,
    /// The tables the making of the identities wrote to (signup and creator triggers
    /// included), as Postgres counts them.
    touched: Vec<QualName>,
    /// Tables with a trigger whose function names one of `touched`.
    wary: Vec<QualName>,
}

/// Make the [`Shared`] identities, as a table's probe makes them, in the caller's
/// transaction: users A and B (without claims), tenant A made by A and B by B (each with its
/// claims), then, with B's claims as a table's probe has them there, a user per role made a
/// member of A. `None` when they cannot be shared (no membership table whose tenant column
/// points at a table, a configured `[live] become_tenant`) or made: the caller rolls back
/// and probes each table alone.
pub fn share(c: &mut Client, id: &Identity) -> Option<Shared> {
    if !id.become_tenant.trim().is_empty() {
        return None;
    }
    let (parent, pcol) = membership_parent(c, id).ok()??;
    // Which tables the identities' making wrote to is read from Postgres's counts: without
    // them, nothing is shared.
    let counted: bool = c
        .query_one(
            "select pg_catalog.current_setting('track_counts')::bool",
            &[],
        )
        .ok()?
        .get(0);
    if !counted {
        return None;
    }
    let settings = &id.tenancy.settings;
    let user_a = new_user(c).ok()?;
    let user_b = new_user(c).ok()?;
    let tcol = crate::schema::split_config_name(&id.tenancy.membership_tenant_column)
        .pop()
        .unwrap_or_default();
    let mut tenant = |user: &str| -> Option<String> {
        set_claims(c, user, None, settings).ok()?;
        Maker::new(c, &tcol)
            .insert(&parent, None, Some(&pcol), 1)
            .ok()
    };
    let a = tenant(&user_a)?;
    let b = tenant(&user_b)?;
    let mut members = Vec::new();
    if let Some((rc, rty, labels)) = roles(c, id).ok()? {
        for r in labels {
            set_claims(c, &user_b, Some(&b), settings).ok()?;
            c.batch_execute("savepoint xtask_member").ok()?;
            let value = format!("{}::{rty}", lit(&r));
            let made = new_user(c).and_then(|user| {
                become_tenant(c, id, &a, &user, Some((&rc, &value))).map(|_| user)
            });
            let end = if made.is_ok() {
                "release savepoint xtask_member"
            } else {
                "rollback to savepoint xtask_member; release savepoint xtask_member"
            };
            c.batch_execute(end).ok()?;
            members.push((r, made));
        }
    }
    let touched: Vec<QualName> = c
        .query(
            "select schemaname::text, relname::text from pg_catalog.pg_stat_xact_user_tables \
             where n_tup_ins + n_tup_upd + n_tup_del > 0",
            &[],
        )
        .ok()?
        .iter()
        .map(|r| QualName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    let names: Vec<String> = touched.iter().map(|t| t.name.to_lowercase()).collect();
    let wary = c
        .query(
            "select distinct n.nspname::text, r.relname::text, p.prosrc from pg_catalog.pg_trigger g \
             join pg_catalog.pg_class r on r.oid = g.tgrelid \
             join pg_catalog.pg_namespace n on n.oid = r.relnamespace \
             join pg_catalog.pg_proc p on p.oid = g.tgfoid where not g.tgisinternal",
            &[],
        )
        .ok()?
        .iter()
        .filter(|r| {
            let src = r.get::<_, String>(2).to_lowercase();
            names.iter().any(|n| names_word(&src, n))
        })
        .map(|r| QualName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    Some(Shared {
        parent: (parent, pcol),
        user_a,
        user_b,
        a,
        b,
        members,
        touched,
        wary,
    })
}

/// Does `text` name `word` (not as a part of a longer identifier)?
fn names_word(text: &str, word: &str) -> bool {
    let part = |ch: char| ch.is_alphanumeric() || ch == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(part)
            && !text[i + word.len()..].chars().next().is_some_and(part)
    })
}

/// May `table` be probed with the [`Shared`] identities, with the same outcome as alone?
/// Its tenant is a row of the shared tenants' table (not an owner column, not a user); the
/// making of the identities wrote no row of it nor of another table its foreign keys point
/// at (other than the tenants and `auth.users`, whose new rows the probe makes as it
/// makes its own); none of its triggers' functions names a table the making wrote to.
/// Otherwise (or when in doubt: a catalog read fails) it is probed alone.
pub fn shares(c: &mut Client, table: &QualName, id: &Identity, shared: &Shared) -> bool {
    let (col, owner) = tenancy_of(table, id);
    let Ok(cols) = columns(c, table) else {
        return false;
    };
    let Some(tenant_col) = cols.iter().find(|k| k.name == col) else {
        return false;
    };
    let users = QualName::new("auth", "users");
    let parent = match &tenant_col.references {
        Some(p) => p.clone(),
        None => shared.parent.clone(),
    };
    if owner || parent != shared.parent || parent.0 == users {
        return false;
    }
    if shared.touched.contains(table) || shared.wary.contains(table) {
        return false;
    }
    let Ok(keys) = multi_keys(c, table) else {
        return false;
    };
    let fine = |t: &QualName| *t == shared.parent.0 || *t == users || !shared.touched.contains(t);
    cols.iter()
        .filter_map(|k| k.references.as_ref())
        .all(|(t, _)| fine(t))
        && keys.iter().all(|k| fine(&k.parent))
}

/// The table's tenant column, and whether it is an owner column (`[[tenancy.tables]]`).
fn tenancy_of(table: &QualName, id: &Identity) -> (String, bool) {
    let fold = |s: &str| {
        crate::schema::split_config_name(s)
            .pop()
            .unwrap_or_default()
    };
    match crate::rules::tenant::table_tenancy(id.tenancy, table) {
        Some(t) if t.owner_column.is_some() => {
            (fold(t.owner_column.as_deref().unwrap_or("")), true)
        }
        Some(t) if t.column.is_some() => (fold(t.column.as_deref().unwrap_or("")), false),
        _ => (fold(&id.tenancy.column), false),
    }
}

fn public_read(table: &QualName, id: &Identity) -> bool {
    crate::rules::tenant::table_tenancy(id.tenancy, table).is_some_and(|t| t.public_read)
}

/// The membership table's role column and the roles it allows (enum labels, or the literals
/// of its CHECK: `role in ('owner', 'viewer')`); none when it has no such column or the
/// roles cannot be listed.
fn roles(c: &mut Client, id: &Identity) -> Result<Option<(String, String, Vec<String>)>, String> {
    let members = QualName::from_config(&id.tenancy.membership_table);
    let exists = table_exists(c, &members)?;
    if !exists {
        return Ok(None);
    }
    let cols = columns(c, &members)?;
    let Some(col) = cols
        .iter()
        .find(|k| k.name == "role")
        .or_else(|| cols.iter().find(|k| k.name.ends_with("_role")))
    else {
        return Ok(None);
    };
    let labels = if !col.enum_labels.is_empty() {
        col.enum_labels.clone()
    } else {
        let checks = col.all_checks();
        // The literals of a list (`role in ('owner', 'viewer')`), not a pattern's.
        literals(&checks)
            .into_iter()
            .filter(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '-' | ' '))
            })
            .collect()
    };
    Ok((!labels.is_empty()).then(|| (col.name.clone(), col.ty.clone(), labels)))
}

/// The table the membership's tenant column points at, and the column.
fn membership_parent(c: &mut Client, id: &Identity) -> Result<Option<(QualName, String)>, String> {
    let members = QualName::from_config(&id.tenancy.membership_table);
    let exists = table_exists(c, &members)?;
    if !exists || !id.become_tenant.trim().is_empty() {
        return Ok(None);
    }
    let tcol = crate::schema::split_config_name(&id.tenancy.membership_tenant_column)
        .pop()
        .unwrap_or_default();
    Ok(columns(c, &members)?
        .into_iter()
        .find(|k| k.name == tcol)
        .and_then(|k| k.references))
}

/// Who the probe acts as: the owner of A's row, a member of tenant A, or a member of tenant
/// A with one of the roles the membership allows.
enum Who {
    Owner,
    Member,
    Role(String),
}

impl Who {
    /// The name in `tables[].probe.identities`.
    fn name(&self) -> String {
        match self {
            Who::Owner => "owner of tenant A's row".into(),
            Who::Member => "member of tenant A".into(),
            Who::Role(r) => r.clone(),
        }
    }
}

/// The subject of a piece of evidence: "tenant A", or the roles that did it ("tenant A's
/// owner and viewer").
fn subject(by: &[&Who]) -> String {
    let roles: Vec<&str> = by
        .iter()
        .filter_map(|w| match w {
            Who::Role(r) => Some(r.as_str()),
            _ => None,
        })
        .collect();
    match roles.split_last() {
        None => "tenant A".into(),
        Some((last, [])) => format!("tenant A's {last}"),
        Some((last, rest)) => format!("tenant A's {} and {last}", rest.join(", ")),
    }
}

fn run(
    c: &mut Client,
    table: &QualName,
    id: &Identity,
    shared: Option<&Shared>,
) -> Result<Probe, String> {
    let (col, owner) = tenancy_of(table, id);
    let cols = columns(c, table)?;
    let Some(tenant_col) = cols.iter().find(|k| k.name == col) else {
        return Err(format!("{table} has no `{col}` column"));
    };
    let ty = tenant_col.ty.clone();
    let settings = &id.tenancy.settings;

    // The two tenants, each made by its own signed-in user (so defaults such as
    // `auth.uid()` and triggers that add the creator as a member see that user): rows of
    // the referenced table when the tenant column is a foreign key.
    let (user_a, user_b) = match shared {
        Some(sh) => (sh.user_a.clone(), sh.user_b.clone()),
        None => (new_user(c)?, new_user(c)?),
    };
    let tenant = |c: &mut Client, user: &str| -> Result<String, String> {
        set_claims(c, user, None, settings)?;
        let mut maker = Maker::new(c, &col);
        // No foreign key of its own: the tenant is a row of the table the membership's
        // tenant column points at, when there is one (the policies look the tenant up there).
        let parent = match &tenant_col.references {
            Some(p) => Some(p.clone()),
            None if !owner => membership_parent(maker.c, id)?,
            None => None,
        };
        match &parent {
            Some((parent, pcol)) => maker.insert(parent, None, Some(pcol), 1),
            None => {
                let v = made_up(tenant_col)
                    .ok_or_else(|| format!("cannot make up a tenant of type {}", tenant_col.ty))?;
                Ok(lit(&eval_text(maker.c, &v)?))
            }
        }
    };
    let (a, b) = match shared {
        Some(sh) => (sh.a.clone(), sh.b.clone()),
        None => (tenant(c, &user_a)?, tenant(c, &user_b)?),
    };
    set_claims(c, &user_a, Some(&a), settings)?;
    let a_row = Maker::new(c, &col).values(table, Some(&a), &[], 1)?;
    insert_or_reuse(c, table, &a_row, &col, &a, &ty)?;
    set_claims(c, &user_b, Some(&b), settings)?;
    let b_row = Maker::new(c, &col).values(table, Some(&b), &[], 1)?;
    insert_or_reuse(c, table, &b_row, &col, &b, &ty)?;
    // A second row for B, made the same way, for the INSERT attempt as A.
    let b_insert = Maker::new(c, &col).values(table, Some(&b), &[], 1)?;

    // A tenant that is a user (the tenant column points at auth.users): being tenant A is
    // being that user.
    let owner = owner
        || tenant_col
            .references
            .as_ref()
            .is_some_and(|(t, _)| *t == QualName::new("auth", "users"));
    // RLS on and no permissive policy a signed-in user falls under: Postgres denies every
    // row to every user, whoever the probe is, so the attempts prove it without A's own row.
    let closed = no_policy_admits(c, table)?;
    let whos: Vec<Who> = if owner {
        vec![Who::Owner]
    } else if !id.become_tenant.trim().is_empty() {
        vec![Who::Member]
    } else {
        match roles(c, id)? {
            Some((_, _, labels)) => labels.into_iter().map(Who::Role).collect(),
            None => vec![Who::Member],
        }
    };
    let role_col = if owner { None } else { roles(c, id)? };
    let mut leaks = Vec::new();
    let mut identities = Vec::new();
    let mut blind = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    // Per identity whose own read Postgres refused as a statement: why.
    let mut refusals: Vec<String> = Vec::new();
    let mut seen = None;
    for who in &whos {
        // Is `xtask_who` there to roll back? A shared member's attack may make it in its
        // first round trip (see [`attack`]).
        let mut open = !matches!(who, Who::Role(r) if shared.is_some_and(|sh| sh.members.iter().any(|(m, _)| m == r)));
        if open {
            c.batch_execute("savepoint xtask_who")
                .map_err(|e| describe(&e).0)?;
        }
        let found = attack(
            c,
            table,
            id,
            who,
            &Attack {
                col: &col,
                ty: &ty,
                a: &a,
                b: &b,
                user_a: &user_a,
                b_insert: &b_insert,
                role_col: role_col.as_ref().map(|(c, t, _)| (c.as_str(), t.as_str())),
                closed,
                shared,
            },
            &mut open,
            &mut seen,
        );
        if open {
            let _ = c.batch_execute("rollback to savepoint xtask_who; release savepoint xtask_who");
        }
        let found = match found {
            Ok(found) => found,
            // One role the probe cannot become (its membership row is refused) leaves the
            // others: said, not hidden.
            Err(e) if whos.len() > 1 => {
                errors.push(e.clone());
                blind.push(format!("{} ({e})", who.name()));
                continue;
            }
            Err(e) => return Err(e),
        };
        match found {
            Some((found, refused)) => {
                identities.push(who.name());
                refusals.extend(refused);
                for deed in found {
                    match leaks
                        .iter_mut()
                        .find(|(d, _): &&mut (String, Vec<&Who>)| *d == deed)
                    {
                        Some((_, by)) => by.push(who),
                        None => leaks.push((deed, vec![who])),
                    }
                }
            }
            None => blind.push(who.name()),
        }
    }
    if identities.is_empty() && errors.len() == whos.len() {
        return Err(errors.swap_remove(0));
    }
    if identities.is_empty() {
        let tried = if blind.len() > 1 {
            format!(" (as each role: {})", blind.join(", "))
        } else {
            String::new()
        };
        return Err(format!(
            "tenant A could not read its own row of {table}{tried}, so the probe's identity is not the one the policies expect and proves nothing; set `[live] become_tenant` in xtask.toml"
        ));
    }
    // One line per deed, naming every role that did it: "tenant A's owner and viewer read
    // 1 row(s) of tenant B".
    let leaks: Vec<String> = leaks
        .into_iter()
        .map(|(deed, by)| format!("{} {deed}", subject(&by)))
        .collect();
    let refused = (refusals.len() == identities.len())
        .then(|| refusals.into_iter().next())
        .flatten();
    Ok(if leaks.is_empty() {
        Probe::Isolated {
            identities,
            refused,
        }
    } else {
        Probe::Leaks { leaks, identities }
    })
}

/// What one identity's attack needs: the tenant column and its type, the two tenants (SQL
/// literals), A's creator, the values of a new row for B, the membership's role column.
struct Attack<'a> {
    col: &'a str,
    ty: &'a str,
    a: &'a str,
    b: &'a str,
    user_a: &'a str,
    b_insert: &'a [(String, String)],
    role_col: Option<(&'a str, &'a str)>,
    /// No policy admits any signed-in user (see [`no_policy_admits`]).
    closed: bool,
    /// The identities made once for many tables (the members of A per role), if any.
    shared: Option<&'a Shared>,
}

/// RLS is on and no permissive policy applies to `authenticated` (or to everyone): of the
/// relation `c`.
const CLOSED: &str = "c.relrowsecurity and not exists (select 1 from pg_catalog.pg_policy p \
   where p.polrelid = c.oid and p.polpermissive \
     and (0::oid = any(p.polroles) or (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') = any(p.polroles)))";

/// RLS is on and no permissive policy applies to `authenticated` (or to everyone).
fn no_policy_admits(c: &mut Client, table: &QualName) -> Result<bool, String> {
    per_table(
        |k| &mut k.closed,
        table,
        |key| {
            c.query_one(
                &format!(
                    "select {CLOSED} from pg_catalog.pg_class c where c.oid = $1::text::regclass"
                ),
                &[&key],
            )
            .map(|r| r.get(0))
            .map_err(|e| describe(&e).0)
        },
    )
}

/// What one identity did to B's rows, and why Postgres refused its reading its own row as a
/// statement, when it did.
type Deeds = (Vec<String>, Option<String>);

/// As `who`, try to read, change, delete and insert tenant B's rows. What it did to them
/// ("read 1 row(s) of tenant B"), or `None` when `who` could not read its own row (the probe
/// proves nothing as it). With the deeds, why Postgres refused A's reading its own row as a
/// statement, when it did.
///
/// `open`: whether the caller made the savepoint `xtask_who` that undoes the attack. When it
/// did not (a member of A made once, see [`Shared`]), the attack makes it in the same round
/// trip as the claims and the steps, and rolls it back there too when every step ran; `open`
/// then says whether it is still there for the caller to roll back.
///
/// `seen`: the ctids of B's rows a shared member's attack on this table saw first (the same
/// for the next shared member, whose attack changes nothing before it looks).
fn attack(
    c: &mut Client,
    table: &QualName,
    id: &Identity,
    who: &Who,
    at: &Attack,
    open: &mut bool,
    seen: &mut Option<Vec<String>>,
) -> Result<Option<Deeds>, String> {
    let Attack { col, ty, a, b, .. } = *at;
    // The claims of a shared member, to set in the first round trip of the steps.
    let mut claims: Option<String> = None;
    match who {
        // Scoped by its owner: the probe is user A, who owns A's row (no membership).
        Who::Owner => become_owner(c, a, &id.tenancy.settings)?,
        // The creator of tenant A (a trigger may have made them a member already).
        Who::Member => become_tenant(c, id, a, at.user_a, None)?,
        Who::Role(r) => match at
            .shared
            .and_then(|sh| sh.members.iter().find(|(m, _)| m == r))
        {
            // A member of A made once with this role: the session becomes them, as
            // `become_tenant` leaves it (or the reason it could not be made, as it was then).
            Some((_, made)) => {
                let user = made.clone()?;
                let sql = claims_sql(c, &user, Some(a), &id.tenancy.settings)?;
                if *open || step_by_step() || sql.contains(';') {
                    if !*open {
                        c.batch_execute("savepoint xtask_who")
                            .map_err(|e| describe(&e).0)?;
                        *open = true;
                    }
                    run_claims(c, &sql)?;
                } else {
                    claims = Some(sql);
                }
            }
            None => {
                let user = new_user(c)?;
                let role = at
                    .role_col
                    .map(|(col, ty)| (col, format!("{}::{ty}", lit(r))));
                become_tenant(
                    c,
                    id,
                    a,
                    &user,
                    role.as_ref().map(|(c, v)| (*c, v.as_str())),
                )?
            }
        },
    }
    let t = table.sql();
    let tc = q(col);
    let b_rows = format!("select ctid from {t} where {tc} = {b}::{ty}");
    let look = ctids_sql(&b_rows);
    let own_sql = format!("select count(*) from {t} where {tc} = {a}::{ty}");
    let b_sql = format!("select count(*) from {t} where {tc} = {b}::{ty}");
    // Both counts in one statement, for the batch: the same rows, policies and privileges.
    let reads_sql = format!(
        "select (count(*) filter (where {tc} = {a}::{ty}))::text || ' ' || \
         (count(*) filter (where {tc} = {b}::{ty}))::text from {t} where {tc} in ({a}::{ty}, {b}::{ty})"
    );
    let keep_sql = format!("update {t} set {tc} = {tc}");
    let delete_sql = format!("delete from {t}");
    let move_sql = format!("update {t} set {tc} = {b}::{ty}");
    let insert = insert_sql(table, at.b_insert, None);
    // The steps Postgres seldom refuses in one round trip, with the two it usually refuses
    // (each undone where Postgres refuses it); one by one when it refuses one of the former.
    let fast = if step_by_step() {
        None
    } else {
        // A shared member's attack starts from the same rows as the last one's on this table
        // (only claims differ): B's rows as it saw them.
        let known = claims.as_ref().and(seen.as_deref());
        seldom_refused(
            c,
            claims.as_deref(),
            &look,
            known,
            [&reads_sql, &keep_sql, &delete_sql, &move_sql, &insert],
        )?
    };
    if let (Some(f), Some(_)) = (&fast, &claims) {
        *seen = Some(f.b_before.clone());
    }
    if claims.is_some() {
        // Every step ran: `xtask_who` was rolled back in the batch. Or Postgres refused
        // one: back to `xtask_who`, whose claims are set again for the steps one by one.
        *open = fast.is_none();
        if let (Some(sql), true) = (&claims, *open) {
            run_claims(c, sql)?;
        }
    }
    let b_before = match &fast {
        Some(f) => f.b_before.clone(),
        None => ctids(c, &b_rows)?,
    };

    let own = match &fast {
        Some(f) => Some(f.own),
        None => as_tenant(c, &own_sql, None, |r, _| Ok(r))?,
    };
    // Refused as a statement (a privilege the policies need, checked for the role when the
    // statement starts), not filtered row by row: no user of the role reads a row. The
    // attempts on B's rows still run; what they reach is a leak all the same.
    let refused = match own {
        None => Some(refusal(c, &own_sql)?),
        Some(_) => None,
    };
    if own == Some(0) && !at.closed {
        return Ok(None);
    }
    let mut leaks = Vec::new();
    let n = match &fast {
        Some(f) => f.b_read,
        None => as_tenant(c, &b_sql, None, |r, _| Ok(r.unwrap_or(0)))?,
    };
    // Readable by every signed-in user by design (`public_read`): reading is no leak.
    if n > 0 && !public_read(table, id) {
        leaks.push(format!("read {n} row(s) of tenant B"));
    }
    // UPDATE and DELETE without a WHERE: a WHERE would need the SELECT policy too and could
    // hide an open UPDATE or DELETE policy. What happened to B's rows is then looked up as
    // the superuser: an updated row has a new ctid, a deleted one is gone.
    // The UPDATE reads no column either (`set tenant_id = tenant_id` would bring the SELECT
    // policy in as well, where an attacker writes `set body = 'x'`): it sets the tenant
    // column to B. B's rows keep their tenant (a new ctid: updated); A's rows that Postgres
    // lets move arrive in B (B has more rows). When that statement is refused as a whole (a
    // trigger that forbids moving a row, the WITH CHECK on A's moved rows), the reading form
    // is tried too.
    let moving = |now: Option<String>| {
        let now = ctid_list(now);
        let updated = b_before.iter().filter(|x| !now.contains(x)).count() as i64;
        (updated, now.len().saturating_sub(b_before.len()) as i64)
    };
    let (mut updated, moved) = match &fast {
        // Refused for another reason than a denial: nothing is counted, as below.
        Some(Fast {
            moved: Tried::Refused { code, context, .. },
            ..
        }) if !denied(code, Some(context)) => (0, 0),
        Some(f) => moving(f.after_move.clone()),
        None => as_tenant(c, &move_sql, Some(&look), |_, now| Ok(moving(now))).unwrap_or((0, 0)),
    };
    if updated == 0 {
        let changed = |now: Option<String>| {
            let now = ctid_list(now);
            Ok(now.iter().filter(|x| !b_before.contains(x)).count() as i64)
        };
        updated = match &fast {
            Some(f) => changed(f.after_keep.clone())?,
            None => as_tenant(c, &keep_sql, Some(&look), |_, now| changed(now))?,
        };
    }
    if updated > 0 {
        leaks.push(format!("updated {updated} row(s) of tenant B"));
    }
    if moved > 0 {
        leaks.push(format!("moved {moved} row(s) of its own into tenant B"));
    }
    let gone = |now: Option<String>| Ok(b_before.len().saturating_sub(ctid_list(now).len()) as i64);
    let n = match &fast {
        Some(f) => gone(f.after_delete.clone())?,
        None => as_tenant(c, &delete_sql, Some(&look), |_, now| gone(now))?,
    };
    if n > 0 {
        leaks.push(format!("deleted {n} row(s) of tenant B"));
    }
    let inserted = match &fast {
        Some(Fast {
            inserted: Tried::Ran(_),
            ..
        }) => Ok(1),
        Some(Fast {
            inserted: Tried::Refused { code, why, context },
            ..
        }) => {
            if denied(code, Some(context)) {
                Ok(0)
            } else {
                Err(why.clone())
            }
        }
        None => as_tenant(c, &insert, None, |r, _| Ok(r.map_or(0, |_| 1))),
    };
    match inserted {
        Ok(1) => leaks.push("inserted a row for tenant B".to_string()),
        Ok(_) => {}
        Err(e) => {
            return Err(format!(
                "the INSERT for tenant B failed for another reason than row level security: {e}"
            ))
        }
    }
    Ok(Some((leaks, refused)))
}

/// Why Postgres refuses `sql` as the signed-in user (its error), rolled back.
fn refusal(c: &mut Client, sql: &str) -> Result<String, String> {
    c.batch_execute("savepoint xtask_refusal")
        .map_err(|e| describe(&e).0)?;
    let why = match through(c, Wrapper::QueryAsTenant, sql) {
        Ok(_) => "refused".to_string(),
        Err(e) => describe(&e).0,
    };
    c.batch_execute("rollback to savepoint xtask_refusal; release savepoint xtask_refusal")
        .map_err(|e| describe(&e).0)?;
    Ok(why)
}

/// Run `sql` as the `authenticated` role under a savepoint (inside a SECURITY DEFINER
/// function of that role, so nothing it sets off can switch role); then, as the migration
/// role, `look` (when given) sees the database as the statement left it; then the savepoint
/// is rolled back. `check` gets `Some(count)` (the statement's first column or rows
/// affected; `None` when it was denied) and what `look` gave. Denied (no grant, or a row
/// level security violation) is not an error. One round trip when the statement runs (the
/// savepoint, the statement, the look and the rollback in one simple query), two when it is
/// denied.
fn as_tenant<T>(
    c: &mut Client,
    sql: &str,
    look: Option<&str>,
    check: impl FnOnce(Option<i64>, Option<String>) -> Result<T, String>,
) -> Result<T, String> {
    let w = if sql.starts_with("select") {
        Wrapper::QueryAsTenant
    } else {
        Wrapper::CountAsTenant
    };
    let mut calls = vec![(w, sql)];
    if let Some(l) = look {
        calls.push((Wrapper::QueryAsMigrator, l));
    }
    const UNDO: &str = "rollback to savepoint xtask_step; release savepoint xtask_step";
    let ran = probe_batch(c, Some("savepoint xtask_step"), &calls, Some(UNDO));
    let e = match ran {
        Ok(v) => {
            let mut v = v.into_iter();
            let n = v
                .next()
                .flatten()
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            return check(Some(n), v.next().flatten());
        }
        Err(e) => e,
    };
    // Postgres stopped at the error: the savepoint is still there.
    if !is_denied(&e) {
        c.batch_execute(UNDO).map_err(|e| describe(&e).0)?;
        return Err(describe(&e).0);
    }
    let calls: Vec<(Wrapper, &str)> = look
        .map(|l| (Wrapper::QueryAsMigrator, l))
        .into_iter()
        .collect();
    match probe_batch(
        c,
        Some("rollback to savepoint xtask_step"),
        &calls,
        Some(UNDO),
    ) {
        Ok(mut v) => check(None, v.pop().flatten()),
        Err(e) => {
            c.batch_execute(UNDO).map_err(|e| describe(&e).0)?;
            Err(describe(&e).0)
        }
    }
}

/// What the steps of an attack that Postgres seldom refuses gave (see [`seldom_refused`]).
struct Fast {
    /// The ctids of B's rows before any step.
    b_before: Vec<String>,
    /// A's own rows A reads, and B's.
    own: i64,
    b_read: i64,
    /// B's ctids after `update .. set tenant = tenant`, and after `delete` (each as tenant
    /// A, then rolled back).
    after_keep: Option<String>,
    after_delete: Option<String>,
    /// The UPDATE that moves rows to tenant B (undone where refused), and B's ctids after it.
    moved: Tried,
    after_move: Option<String>,
    /// The INSERT of a row for tenant B (undone where refused).
    inserted: Tried,
}

/// The look at B's rows (unless `known`), A's two counts (one statement, `reads`: the two
/// as `"own b"`), the UPDATE that keeps the tenant and the DELETE,
/// each step as [`as_tenant`] runs it (a savepoint, the statement, the look, the rollback),
/// then the UPDATE that moves rows to B (and the look) and the INSERT for B, which Postgres
/// usually refuses: each through [`Wrapper::TryAsTenant`], undone when refused, so the batch
/// goes on. All in one simple query. Each step is rolled back before the next, so each sees
/// the database as the one-by-one path does. `None` when Postgres refused any of the first
/// steps (denied, or another error): everything is then rolled back and the caller takes the
/// steps one by one, with their own handling of a refusal.
///
/// `claims`: the claims of a shared member of A, set first under a new savepoint
/// `xtask_who`, which ends the batch rolled back; when Postgres refuses a step, everything is
/// rolled back to `xtask_who`, which is left for the caller.
fn seldom_refused(
    c: &mut Client,
    claims: Option<&str>,
    look: &str,
    known: Option<&[String]>,
    [reads, keep, delete, moving, insert]: [&str; 5],
) -> Result<Option<Fast>, String> {
    use super::role::Item::{Call, Raw};
    const STEP: &str = "savepoint xtask_step";
    const UNDO: &str = "rollback to savepoint xtask_step; release savepoint xtask_step";
    const WHO: &str = "savepoint xtask_who";
    const WHO_UNDO: &str = "rollback to savepoint xtask_who; release savepoint xtask_who";
    let m = Wrapper::QueryAsMigrator;
    let mut items = Vec::new();
    if let Some(claims) = claims {
        items.extend([Raw(WHO), Raw(claims)]);
    }
    // Each step after the first look starts from the same savepoint: rolled back to, it
    // stays there for the next (as a new one at the same point would be), and is released
    // after the last.
    const BACK: &str = "rollback to savepoint xtask_step";
    if known.is_none() {
        items.extend([
            Raw(STEP),
            Call(m, look),
            Raw("release savepoint xtask_step"),
        ]);
    }
    items.extend([
        Raw(STEP),
        Call(Wrapper::QueryAsTenant, reads),
        Raw(BACK),
        Call(Wrapper::CountAsTenant, keep),
        Call(m, look),
        Raw(BACK),
        Call(Wrapper::CountAsTenant, delete),
        Call(m, look),
        Raw(BACK),
        Call(Wrapper::TryAsTenant, moving),
        Call(m, look),
        Raw(BACK),
        Call(Wrapper::TryAsTenant, insert),
        Raw(UNDO),
    ]);
    if claims.is_some() {
        items.push(Raw(WHO_UNDO));
    }
    match super::role::probe_items(c, &items) {
        Ok(v) => {
            let count = |v: &Option<String>| {
                v.as_deref()
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            let tried = |v: &Option<String>| {
                Tried::parse(v.as_deref())
                    .ok_or_else(|| format!("the probe's wrapper gave an unreadable result: {v:?}"))
            };
            let mut v = v.into_iter();
            let b_before = match known {
                Some(k) => k.to_vec(),
                None => ctid_list(v.next().flatten()),
            };
            let reads = v.next().flatten().unwrap_or_default();
            let mut reads = reads.split(' ').map(|n| Some(n.to_string()));
            let (own, b_read) = (reads.next().flatten(), reads.next().flatten());
            let [keep, after_keep, delete, after_delete, moved, after_move, inserted] =
                <[Option<String>; 7]>::try_from(v.collect::<Vec<_>>())
                    .map_err(|v| format!("the probe's batch gave {} values, not 7", v.len()))?;
            let _ = (keep, delete);
            Ok(Some(Fast {
                b_before,
                own: count(&own),
                b_read: count(&b_read),
                after_keep,
                after_delete,
                moved: tried(&moved)?,
                after_move,
                inserted: tried(&inserted)?,
            }))
        }
        Err(e) if e.is_closed() => Err(describe(&e).0),
        Err(_) if claims.is_some() => {
            // Postgres stopped after `xtask_who` was made (its first statement): back to it.
            c.batch_execute("rollback to savepoint xtask_who")
                .map_err(|e| describe(&e).0)?;
            Ok(None)
        }
        Err(_) => {
            // Postgres stopped inside one of the steps: its savepoint is the latest.
            c.batch_execute(UNDO).map_err(|e| describe(&e).0)?;
            Ok(None)
        }
    }
}

/// `insufficient_privilege`: no grant, or "new row violates row-level security policy".
fn is_denied(e: &postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| denied(db.code().code(), db.where_()))
}

/// [`is_denied`] of an error's SQLSTATE and context (`where`), however it was had.
fn denied(code: &str, context: Option<&str>) -> bool {
    code == postgres::error::SqlState::INSUFFICIENT_PRIVILEGE.code()
        || in_user_function(code, context)
}

/// An error of class 42 (an operator, a column or a table that does not exist, a type
/// mismatch: found when a statement is planned, not by the rows it reads) raised inside a
/// function of the history that the statement called through a policy, a default or a
/// trigger: Postgres refuses the statement whoever runs it, as it refuses one without the
/// privilege. Our own wrappers (`xtask_live`) and the probe's own SQL do not count: an error
/// there is the probe's, and stays one.
fn in_user_function(code: &str, context: Option<&str>) -> bool {
    code.starts_with("42")
        && context.is_some_and(|w| {
            w.lines().any(|l| {
                l.split_once("function ")
                    .is_some_and(|(_, f)| !f.trim_start().starts_with("xtask_live."))
            })
        })
}

/// Make the session user A, for a table scoped by its owner: A's JWT claims, `sub` = the
/// owner value of A's row.
fn become_owner(c: &mut Client, owner: &str, settings: &[String]) -> Result<(), String> {
    let user = eval_text(c, owner)?;
    set_claims(c, &user, None, settings)
}

/// Make the session `user`, a member of `tenant` (with `role`: the membership's role column
/// and its value as SQL) whose JWT claims name the tenant (plus any configured tenant
/// settings); or run the configured `[live] become_tenant`.
fn become_tenant(
    c: &mut Client,
    id: &Identity,
    tenant: &str,
    user: &str,
    role: Option<(&str, &str)>,
) -> Result<(), String> {
    let tenant_text = eval_text(c, tenant)?;
    if !id.become_tenant.trim().is_empty() {
        let sql = id
            .become_tenant
            .replace(":tenant", &lit(&tenant_text))
            .replace(":user", &lit(user));
        return through(c, Wrapper::CountAsMigrator, &sql)
            .map(|_| ())
            .map_err(|e| format!("`[live] become_tenant` failed: {}", describe(&e).0));
    }
    let members = QualName::from_config(&id.tenancy.membership_table);
    let exists = table_exists(c, &members)?;
    if exists {
        let tcol = crate::schema::split_config_name(&id.tenancy.membership_tenant_column)
            .pop()
            .unwrap_or_default();
        let ucol = crate::schema::split_config_name(&id.tenancy.membership_user_column)
            .pop()
            .unwrap_or_default();
        // The membership's user column may point at an app user table (`public.users`,
        // `profiles`) rather than auth.users: the probe's user gets a row there too (unless a
        // signup trigger already made it).
        let user_ref = columns(c, &members)?
            .into_iter()
            .find(|k| k.name == ucol)
            .and_then(|k| k.references);
        set_claims(c, user, Some(tenant), &id.tenancy.settings)?;
        if let Some((parent, pcol)) = user_ref {
            if parent != QualName::new("auth", "users") {
                let fixed = [(pcol.clone(), format!("{}::uuid", lit(user)))];
                let mut maker = Maker::new(c, &tcol);
                let pv = maker.values(&parent, None, &fixed, 2)?;
                let _ = insert_or_reuse(c, &parent, &pv, &pcol, &lit(user), "uuid");
            }
        }
        let mut fixed = vec![
            (tcol.clone(), tenant.to_string()),
            (ucol.clone(), format!("{}::uuid", lit(user))),
        ];
        if let Some((rc, rv)) = role {
            fixed.push((rc.to_string(), rv.to_string()));
        }
        let values = Maker::new(c, &tcol).values(&members, Some(tenant), &fixed, 1)?;
        // A trigger may have made this membership already (the creator of a team): reuse it.
        insert_or_reuse(c, &members, &values, &ucol, &lit(user), "uuid")
            .map_err(|e| format!("cannot make the probe's user a member of tenant A: {e}"))?;
    }
    set_claims(c, user, Some(tenant), &id.tenancy.settings)
}

// --- For the storage probe (`storage.rs`): the users, tenants and memberships made exactly as
// the table probe makes them, rather than a second copy of that machinery.

/// A new signed-up user (see [`new_user`]): its id.
pub(super) fn signed_up_user(c: &mut Client) -> Result<String, String> {
    new_user(c)
}

/// The session's JWT claims for `user` of `tenant` (a SQL expression), see [`set_claims`].
pub(super) fn claims(
    c: &mut Client,
    user: &str,
    tenant: Option<&str>,
    id: &Identity,
) -> Result<(), String> {
    set_claims(c, user, tenant, &id.tenancy.settings)
}

/// A new tenant made by `user` (its claims set, so creator triggers see them): a row of the
/// table the membership's tenant column points at, or a made-up id when there is none. A SQL
/// literal.
pub(super) fn new_tenant(c: &mut Client, id: &Identity, user: &str) -> Result<String, String> {
    set_claims(c, user, None, &id.tenancy.settings)?;
    let tcol = crate::schema::split_config_name(&id.tenancy.membership_tenant_column)
        .pop()
        .unwrap_or_default();
    match membership_parent(c, id)? {
        Some((parent, pcol)) => Maker::new(c, &tcol).insert(&parent, None, Some(&pcol), 1),
        None => Ok(lit(&eval_text(c, "gen_random_uuid()")?)),
    }
}

/// `user` made a member of `tenant` (a SQL literal), see [`become_tenant`].
pub(super) fn member_of(
    c: &mut Client,
    id: &Identity,
    tenant: &str,
    user: &str,
) -> Result<(), String> {
    become_tenant(c, id, tenant, user, None)
}

/// The value of a SQL expression, as text.
pub(super) fn text_of(c: &mut Client, expr: &str) -> Result<String, String> {
    eval_text(c, expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_drop_schema_and_modifiers() {
        assert_eq!(
            type_name("timestamp(3) with time zone"),
            "timestamp with time zone"
        );
        assert_eq!(type_name("extensions.vector(1536)"), "vector");
        assert_eq!(type_name("numeric(12,2)"), "numeric");
        assert_eq!(modifier("character varying(25)"), Some(25));
        assert_eq!(modifier("text"), None);
    }

    #[test]
    fn literals_and_numbers_of_a_check() {
        let check = "((char_length(username) >= 3) AND (status = ANY (ARRAY['it''s'::text, 'md5 10'::text])) AND (x < 2.5))";
        assert_eq!(literals(check), vec!["it's", "md5 10"]);
        assert_eq!(numbers(check), vec!["3", "2.5"]);
    }

    #[test]
    fn evidence_names_the_roles() {
        let (o, v) = (Who::Role("owner".into()), Who::Role("viewer".into()));
        let e = Who::Role("editor".into());
        assert_eq!(subject(&[&Who::Member]), "tenant A");
        assert_eq!(subject(&[&v]), "tenant A's viewer");
        assert_eq!(
            subject(&[&o, &e, &v]),
            "tenant A's owner, editor and viewer"
        );
    }
}
