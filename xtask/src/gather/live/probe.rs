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

use postgres::Client;

use crate::{config::Tenancy, schema::QualName};

use super::{
    apply::describe,
    role::{through, Wrapper},
};

/// What the probe found on one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Tenant A saw its own row and nothing of B's.
    Isolated,
    /// Tenant A reached B's rows: each line is one piece of evidence.
    Leaks(Vec<String>),
    /// The probe could not be run or proves nothing: why.
    Skipped(String),
}

/// How the probe becomes a tenant.
pub struct Identity<'a> {
    pub tenancy: &'a Tenancy,
    /// `[live] become_tenant`: SQL with `:tenant` and `:user`; empty = membership + claims.
    pub become_tenant: &'a str,
}

/// A column as the probe needs it.
struct Col {
    name: String,
    /// `format_type` of the column's type.
    ty: String,
    not_null: bool,
    has_default: bool,
    identity: bool,
    generated: bool,
    /// Single-column foreign key: referenced table and column.
    references: Option<(QualName, String)>,
    /// First label of an enum type.
    enum_label: Option<String>,
}

/// The value of a SQL expression, as text (evaluated as the migration role: see [`as_migrator`]).
fn eval_text(c: &mut Client, expr: &str) -> Result<String, String> {
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
    let all = as_migrator(
        c,
        &format!("select string_agg(ctid::text, ' ') from ({b_rows}) r"),
    )
    .map_err(|e| describe(&e).0)?;
    Ok(all
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect())
}

fn q(s: &str) -> String {
    crate::schema::quote_ident(s)
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn columns(c: &mut Client, table: &QualName) -> Result<Vec<Col>, String> {
    let rows = c
        .query(
            "select a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
               a.atthasdef, a.attidentity <> '', a.attgenerated <> '', \
               (select fn.nspname::text || '.' || fc.relname::text || '.' || fa.attname::text \
                  from pg_catalog.pg_constraint f \
                  join pg_catalog.pg_class fc on fc.oid = f.confrelid \
                  join pg_catalog.pg_namespace fn on fn.oid = fc.relnamespace \
                  join pg_catalog.pg_attribute fa on fa.attrelid = f.confrelid and fa.attnum = f.confkey[1] \
                 where f.conrelid = a.attrelid and f.contype = 'f' and f.conkey = array[a.attnum] limit 1), \
               (select e.enumlabel::text from pg_catalog.pg_enum e where e.enumtypid = a.atttypid \
                 order by e.enumsortorder limit 1) \
             from pg_catalog.pg_attribute a \
             where a.attrelid = $1::text::regclass and a.attnum > 0 and not a.attisdropped \
             order by a.attnum",
            &[&table.sql()],
        )
        .map_err(|e| describe(&e).0)?;
    Ok(rows
        .iter()
        .map(|r| {
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
                enum_label: r.get(7),
            }
        })
        .collect())
}

/// A made-up value of a type, as SQL.
fn made_up(col: &Col) -> Option<String> {
    if let Some(label) = &col.enum_label {
        return Some(format!("{}::{}", lit(label), col.ty));
    }
    let ty = col.ty.as_str();
    let base = ty.split('(').next().unwrap_or(ty).trim();
    let v = match base {
        "uuid" => "gen_random_uuid()".to_string(),
        "text" | "character varying" | "character" | "citext" | "name" => {
            format!(
                "left('xtask-probe-' || gen_random_uuid()::text, {})",
                char_limit(ty)
            )
        }
        "smallint" => "(random() * 30000)::int2".into(),
        "integer" => "(random() * 2000000000)::int4".into(),
        "bigint" => "(random() * 9000000000000000)::int8".into(),
        "numeric" | "real" | "double precision" => format!("1::{ty}"),
        "boolean" => "false".into(),
        "date" => "current_date".into(),
        "timestamp with time zone" | "timestamp without time zone" => format!("now()::{ty}"),
        "time without time zone" | "time with time zone" => format!("now()::{ty}"),
        "interval" => "interval '1 day'".into(),
        "jsonb" | "json" => format!("'{{}}'::{ty}"),
        "bytea" => "'\\x00'::bytea".into(),
        "inet" => "'127.0.0.1'::inet".into(),
        _ if ty.ends_with("[]") => format!("'{{}}'::{ty}"),
        _ => return None,
    };
    Some(v)
}

fn char_limit(ty: &str) -> usize {
    ty.split_once('(')
        .and_then(|(_, r)| r.trim_end_matches(')').parse().ok())
        .unwrap_or(64)
}

/// Builds rows for the probe, creating parent rows for foreign keys as it goes.
struct Maker<'c> {
    c: &'c mut Client,
    tenant_col: String,
}

impl Maker<'_> {
    /// The SQL values for a new row of `table` owned by `tenant` (a SQL literal), keyed by
    /// column. Columns left out take their defaults.
    fn values(
        &mut self,
        table: &QualName,
        tenant: Option<&str>,
        depth: u32,
    ) -> Result<Vec<(String, String)>, String> {
        if depth > 4 {
            return Err(format!("foreign keys nest too deep at {table}"));
        }
        let cols = columns(self.c, table)?;
        let mut out = Vec::new();
        for col in &cols {
            if col.generated || col.identity {
                continue;
            }
            if col.name == self.tenant_col {
                if let Some(t) = tenant {
                    out.push((col.name.clone(), format!("{t}::{}", col.ty)));
                    continue;
                }
            }
            if !col.not_null || col.has_default {
                continue;
            }
            if let Some((parent, pcol)) = &col.references {
                let id = self.insert(parent, tenant, Some(pcol), depth + 1)?;
                out.push((col.name.clone(), id));
                continue;
            }
            match made_up(col) {
                Some(v) => out.push((col.name.clone(), v)),
                None => {
                    return Err(format!(
                        "cannot make up a value for {table}.{} of type {}",
                        col.name, col.ty
                    ))
                }
            }
        }
        Ok(out)
    }

    /// After a unique violation: the row that holds the violated key with our values, made
    /// by a trigger of an earlier insert; `returning` of it.
    fn made_by_trigger(
        &mut self,
        table: &QualName,
        values: &[(String, String)],
        returning: Option<&str>,
        e: &postgres::Error,
    ) -> Option<Option<String>> {
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
        let conds: Vec<String> = cols
            .iter()
            .map(|c| {
                values
                    .iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| format!("{} = {v}", q(c)))
            })
            .collect::<Option<_>>()?;
        if conds.is_empty() {
            return None;
        }
        let ret = returning.map_or("1".to_string(), |c| format!("{}::text", q(c)));
        let sql = format!(
            "select {ret} from {} where {} limit 1",
            table.sql(),
            conds.join(" and ")
        );
        match as_migrator(self.c, &sql) {
            Ok(Some(v)) => Some(Some(v)),
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
        let values = self.values(table, tenant, depth)?;
        let sql = insert_sql(table, &values, returning);
        let err = |e: postgres::Error| describe(&e).0;
        self.c
            .batch_execute("savepoint xtask_parent")
            .map_err(err)?;
        let v = match as_migrator(self.c, &sql) {
            Ok(v) => {
                self.c
                    .batch_execute("release savepoint xtask_parent")
                    .map_err(err)?;
                v
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
        Ok(match returning {
            Some(_) => v.map_or("null".into(), |v| lit(&v)),
            None => "null".into(),
        })
    }
}

fn insert_sql(table: &QualName, values: &[(String, String)], returning: Option<&str>) -> String {
    let ret = returning.map_or("1".to_string(), |c| format!("{}::text", q(c)));
    if values.is_empty() {
        format!("insert into {} default values returning {ret}", table.sql())
    } else {
        let cols: Vec<String> = values.iter().map(|(c, _)| q(c)).collect();
        let vals: Vec<&str> = values.iter().map(|(_, v)| v.as_str()).collect();
        format!(
            "insert into {} ({}) values ({}) returning {ret}",
            table.sql(),
            cols.join(", "),
            vals.join(", ")
        )
    }
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
    c.batch_execute("savepoint xtask_row").map_err(err)?;
    match as_migrator(c, &insert_sql(table, values, None)) {
        Ok(_) => c.batch_execute("release savepoint xtask_row").map_err(err),
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
    let exists: bool = c
        .query_one("select to_regclass($1) is not null", &[&members.sql()])
        .map_err(|e| describe(&e).0)?
        .get(0);
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
    let mut maker = Maker {
        c,
        tenant_col: tcol.clone(),
    };
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
    become_tenant(c, id, &a)?;
    let user = eval_text(c, "current_setting('request.jwt.claim.sub', true)")?;
    let mut maker = Maker {
        c,
        tenant_col: tcol.clone(),
    };
    let mut values = maker.values(members, Some(&b), 1)?;
    values.retain(|(k, _)| *k != ucol);
    values.push((ucol.clone(), format!("{}::uuid", lit(&user))));
    let joined = as_tenant(c, &insert_sql(members, &values, None), |_, r| {
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
        |_, r| Ok(r.unwrap_or(0)),
    )
    .unwrap_or(0);
    Ok((moved > 0).then(|| {
        format!("live: a signed-in member of tenant A moved their own row of {members} to tenant B")
    }))
}

/// Run the probe on one table. The caller holds the transaction; this function leaves it
/// as it found it (savepoint rolled back, role reset) whatever happens.
pub fn probe(c: &mut Client, table: &QualName, id: &Identity) -> Probe {
    if let Err(e) = c.batch_execute("savepoint xtask_probe") {
        return Probe::Skipped(format!("cannot start the probe: {}", describe(&e).0));
    }
    let result = run(c, table, id);
    let _ = c.batch_execute("rollback to savepoint xtask_probe; release savepoint xtask_probe");
    match result {
        Ok(p) => p,
        Err(why) => Probe::Skipped(why),
    }
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

fn run(c: &mut Client, table: &QualName, id: &Identity) -> Result<Probe, String> {
    let (col, owner) = tenancy_of(table, id);
    let cols = columns(c, table)?;
    let Some(tenant_col) = cols.iter().find(|k| k.name == col) else {
        return Err(format!("{table} has no `{col}` column"));
    };

    // The two tenants: rows of the referenced table when the tenant column is a foreign key.
    let mut maker = Maker {
        c,
        tenant_col: col.clone(),
    };
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
    let a_row = maker.values(table, Some(&a), 1)?;
    insert_or_reuse(maker.c, table, &a_row, &col, &a, &tenant_col.ty)?;
    let b_row = maker.values(table, Some(&b), 1)?;
    insert_or_reuse(maker.c, table, &b_row, &col, &b, &tenant_col.ty)?;
    // A second row for B, made the same way, for the INSERT attempt as A.
    let b_insert = maker.values(table, Some(&b), 1)?;

    if owner {
        // Scoped by its owner: the probe is user A, who owns A's row (no membership).
        become_owner(c, &a)?;
    } else {
        become_tenant(c, id, &a)?;
    }

    let t = table.sql();
    let tc = q(&col);
    let ty = &tenant_col.ty;
    let b_rows = format!("select ctid from {t} where {tc} = {b}::{ty}");
    let b_before = ctids(c, &b_rows)?;

    let own = as_tenant(
        c,
        &format!("select count(*) from {t} where {tc} = {a}::{ty}"),
        |_, r| Ok(r.unwrap_or(0)),
    )?;
    if own == 0 {
        return Err(format!(
            "tenant A could not read its own row of {table}, so the probe's identity is not the one the policies expect and proves nothing; set `[live] become_tenant` in xtask.toml"
        ));
    }
    let mut leaks = Vec::new();
    let n = as_tenant(
        c,
        &format!("select count(*) from {t} where {tc} = {b}::{ty}"),
        |_, r| Ok(r.unwrap_or(0)),
    )?;
    // Readable by every signed-in user by design (`public_read`): reading is no leak.
    if n > 0 && !public_read(table, id) {
        leaks.push(format!("tenant A read {n} row(s) of tenant B"));
    }
    // UPDATE and DELETE without a WHERE: a WHERE would need the SELECT policy too and could
    // hide an open UPDATE or DELETE policy. What happened to B's rows is then looked up as
    // the superuser: an updated row has a new ctid, a deleted one is gone.
    let n = as_tenant(c, &format!("update {t} set {tc} = {tc}"), |c, _| {
        let now = ctids(c, &b_rows)?;
        Ok(now.iter().filter(|x| !b_before.contains(x)).count() as i64)
    })?;
    if n > 0 {
        leaks.push(format!("tenant A updated {n} row(s) of tenant B"));
    }
    let n = as_tenant(c, &format!("delete from {t}"), |c, _| {
        let left = ctids(c, &b_rows)?.len();
        Ok(b_before.len().saturating_sub(left) as i64)
    })?;
    if n > 0 {
        leaks.push(format!("tenant A deleted {n} row(s) of tenant B"));
    }
    let insert = insert_sql(table, &b_insert, None);
    let inserted = as_tenant(c, &insert, |_, r| Ok(r.map_or(0, |_| 1)));
    match inserted {
        Ok(1) => leaks.push("tenant A inserted a row for tenant B".into()),
        Ok(_) => {}
        Err(e) => {
            return Err(format!(
                "the INSERT for tenant B failed for another reason than row level security: {e}"
            ))
        }
    }
    Ok(if leaks.is_empty() {
        Probe::Isolated
    } else {
        Probe::Leaks(leaks)
    })
}

/// Run `sql` as the `authenticated` role under a savepoint (inside a SECURITY DEFINER
/// function of that role, so nothing it sets off can switch role); then, as the migration
/// role, `check` sees the database as the statement left it (`Some(count)` from the
/// statement's first column or rows affected, `None` when it was denied); then the savepoint
/// is rolled back. Denied (no grant, or a row level security violation) is not an error.
fn as_tenant(
    c: &mut Client,
    sql: &str,
    check: impl FnOnce(&mut Client, Option<i64>) -> Result<i64, String>,
) -> Result<i64, String> {
    c.batch_execute("savepoint xtask_step")
        .map_err(|e| describe(&e).0)?;
    let ran = if sql.starts_with("select") {
        through(c, Wrapper::QueryAsTenant, sql)
            .map(|v| v.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
    } else {
        through(c, Wrapper::CountAsTenant, sql)
            .map(|v| v.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
    };
    let result = match ran {
        Ok(n) => check(c, Some(n)),
        Err(e) if is_denied(&e) => {
            let _ = c.batch_execute("rollback to savepoint xtask_step");
            check(c, None)
        }
        Err(e) => Err(describe(&e).0),
    };
    c.batch_execute("rollback to savepoint xtask_step; release savepoint xtask_step")
        .map_err(|e| describe(&e).0)?;
    result
}

/// `insufficient_privilege`: no grant, or "new row violates row-level security policy".
fn is_denied(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
}

/// Make the session user A, for a table scoped by its owner: A's JWT claims, `sub` = the
/// owner value of A's row.
fn become_owner(c: &mut Client, owner: &str) -> Result<(), String> {
    let user = eval_text(c, owner)?;
    let claims = format!(r#"{{"sub":"{user}","role":"authenticated","aud":"authenticated"}}"#);
    c.batch_execute(&format!(
        "select set_config('request.jwt.claims', {}, true), set_config('request.jwt.claim.sub', {}, true), set_config('request.jwt.claim.role', 'authenticated', true)",
        lit(&claims),
        lit(&user)
    ))
    .map_err(|e| format!("cannot set the probe's claims: {}", describe(&e).0))
}

/// Make the session tenant A: configured SQL, or a user who is a member of A and whose JWT
/// claims name A (plus any configured tenant settings).
fn become_tenant(c: &mut Client, id: &Identity, tenant: &str) -> Result<(), String> {
    let user = eval_text(c, "gen_random_uuid()")?;
    let tenant_text = eval_text(c, tenant)?;
    if !id.become_tenant.trim().is_empty() {
        let sql = id
            .become_tenant
            .replace(":tenant", &lit(&tenant_text))
            .replace(":user", &lit(&user));
        return through(c, Wrapper::CountAsMigrator, &sql)
            .map(|_| ())
            .map_err(|e| format!("`[live] become_tenant` failed: {}", describe(&e).0));
    }
    // Best effort (a real auth.users may want more): under a savepoint, so a failure does
    // not abort the transaction.
    c.batch_execute("savepoint xtask_user")
        .map_err(|e| describe(&e).0)?;
    let undo = match through(
        c,
        Wrapper::CountAsMigrator,
        &format!(
            "insert into auth.users (id) values ({}) on conflict do nothing",
            lit(&user)
        ),
    ) {
        Ok(_) => "release savepoint xtask_user",
        Err(_) => "rollback to savepoint xtask_user; release savepoint xtask_user",
    };
    c.batch_execute(undo).map_err(|e| describe(&e).0)?;
    let members = QualName::from_config(&id.tenancy.membership_table);
    let exists: bool = c
        .query_one("select to_regclass($1) is not null", &[&members.sql()])
        .map_err(|e| describe(&e).0)?
        .get(0);
    if exists {
        let tcol = crate::schema::split_config_name(&id.tenancy.membership_tenant_column)
            .pop()
            .unwrap_or_default();
        let ucol = crate::schema::split_config_name(&id.tenancy.membership_user_column)
            .pop()
            .unwrap_or_default();
        let mut maker = Maker {
            c,
            tenant_col: tcol.clone(),
        };
        // The membership's user column may point at an app user table (`public.users`,
        // `profiles`) rather than auth.users: the probe's user gets a row there too (unless a
        // signup trigger already made it).
        let user_ref = columns(maker.c, &members)?
            .into_iter()
            .find(|k| k.name == ucol)
            .and_then(|k| k.references);
        if let Some((parent, pcol)) = user_ref {
            if parent != QualName::new("auth", "users") {
                let mut pv = maker.values(&parent, None, 2)?;
                pv.retain(|(k, _)| *k != pcol);
                pv.push((pcol.clone(), format!("{}::uuid", lit(&user))));
                let _ = insert_or_reuse(maker.c, &parent, &pv, &pcol, &lit(&user), "uuid");
            }
        }
        let mut values = maker.values(&members, Some(tenant), 1)?;
        values.retain(|(k, _)| *k != ucol);
        values.push((ucol, format!("{}::uuid", lit(&user))));
        let sql = insert_sql(&members, &values, None);
        as_migrator(c, &sql).map_err(|e| {
            format!(
                "cannot make the probe's user a member of tenant A: {}",
                describe(&e).0
            )
        })?;
    }
    let claims = format!(
        r#"{{"sub":"{user}","role":"authenticated","aud":"authenticated","tenant_id":"{tenant_text}","app_metadata":{{"tenant_id":"{tenant_text}"}}}}"#
    );
    let mut sql = format!(
        "select set_config('request.jwt.claims', {}, true), set_config('request.jwt.claim.sub', {}, true), set_config('request.jwt.claim.role', 'authenticated', true)",
        lit(&claims),
        lit(&user)
    );
    for s in &id.tenancy.settings {
        sql.push_str(&format!(
            ", set_config({}, {}, true)",
            lit(s.trim()),
            lit(&tenant_text)
        ));
    }
    c.batch_execute(&sql)
        .map_err(|e| format!("cannot set the probe's claims: {}", describe(&e).0))
}
