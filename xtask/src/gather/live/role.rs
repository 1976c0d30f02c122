//! The migration role: migrations run with the powers a Supabase project's migrations have,
//! and no more.
//!
//! The check's own connection is the superuser's (it needs that for the shim, for creating
//! allowed extensions and for reading the catalog). `SET ROLE` or `SET SESSION
//! AUTHORIZATION` would not contain a migration on such a connection: code in a `DO` block can
//! `RESET ROLE` (or `RESET SESSION AUTHORIZATION`, `set_config('role', ...)`) and be the
//! superuser again. So every statement of a migration runs inside a SECURITY DEFINER function
//! owned by the role `xtask_migrator`: for as long as such a function runs, Postgres refuses
//! any change of role or session authorization ("cannot set parameter ... within
//! security-definer function"), however deeply nested. The probe's statements (which fire the
//! migrations' triggers, defaults and policy functions) run the same way, as
//! `xtask_migrator` or as `authenticated`.
//!
//! `xtask_migrator` is what Supabase's `postgres` role is: not a superuser, CREATEDB,
//! BYPASSRLS, the owner of what it creates; it may create schemas, tables, functions,
//! policies, triggers on `auth.users`, policies on `storage.objects`. It is not a member of
//! `pg_execute_server_program`, `pg_read_server_files` or `pg_write_server_files`, so
//! `COPY ... PROGRAM`, `COPY ... TO/FROM 'file'` and `pg_read_file` are refused by Postgres.
//! CREATEROLE only from Postgres 16 on: before 16, CREATEROLE may grant itself any
//! non-superuser role, `pg_execute_server_program` included, which is a shell.
//!
//! The wrappers live in a schema of the superuser (`xtask_live`) where no one else may
//! create anything; the owner of a wrapper could still make it SECURITY INVOKER or give it
//! away, so each call is preceded by a check of the wrapper's catalog row. Everything here is
//! created inside the check's transaction (or scratch database) and goes with it.

use crate::config::Live;

/// The role migrations run as.
pub const ROLE: &str = "xtask_migrator";

/// Extensions a migration may create (the superuser creates them on its behalf): what a
/// Supabase project offers, without those that reach outside the database (`dblink`,
/// `postgres_fdw`, `file_fdw`, `adminpack`, untrusted languages, `pageinspect`).
pub const EXTENSIONS: &[&str] = &[
    "amcheck",
    "autoinc",
    "btree_gin",
    "btree_gist",
    "citext",
    "cube",
    "dict_int",
    "dict_xsyn",
    "earthdistance",
    "fuzzystrmatch",
    "hstore",
    "http",
    "hypopg",
    "index_advisor",
    "insert_username",
    "intarray",
    "isn",
    "lo",
    "ltree",
    "moddatetime",
    "pg_graphql",
    "pg_hashids",
    "pg_jsonschema",
    "pg_net",
    "pg_stat_statements",
    "pg_trgm",
    "pgcrypto",
    "pgjwt",
    "pgrowlocks",
    "pgstattuple",
    "pgtap",
    "plpgsql",
    "plpgsql_check",
    "postgis",
    "postgis_topology",
    "refint",
    "rum",
    "seg",
    "tablefunc",
    "tcn",
    "tsm_system_rows",
    "tsm_system_time",
    "unaccent",
    "uuid-ossp",
    "vector",
];

/// May a migration create this extension? (The defaults, plus `[live] allow_extensions`.)
pub fn extension_allowed(name: &str, live: &Live) -> bool {
    EXTENSIONS.contains(&name) || live.allow_extensions.iter().any(|e| e == name)
}

/// The search path the probe's statements run with: a Supabase session's (the database's
/// `"$user", public, extensions`), so defaults such as `gen_random_bytes(..)` resolve as in production.
const PROBE_PATH: &str = r#""$user", public, extensions"#;

/// Run by the superuser after the shim: the role, its grants, and the wrappers.
pub fn setup_sql() -> String {
    format!(
        r#"
do $xtask$
begin
  -- Left by a run killed half-way through a scratch database (the only time it is
  -- committed): made what it must be again.
  if not exists (select from pg_catalog.pg_roles where rolname = '{ROLE}') then
    create role {ROLE};
  end if;
  alter role {ROLE} nologin nosuperuser nocreaterole createdb bypassrls noreplication;
  revoke pg_execute_server_program, pg_read_server_files, pg_write_server_files from {ROLE};
  if current_setting('server_version_num')::int >= 160000 then
    alter role {ROLE} createrole;
  end if;
  execute format('grant create, temporary on database %I to {ROLE}', current_database());
end
$xtask$;
grant usage, create on schema public, extensions to {ROLE};
grant usage on schema auth, storage to {ROLE};
grant select, insert, update, delete, references, trigger on all tables in schema auth to {ROLE};
grant execute on all functions in schema auth to {ROLE};
alter table storage.buckets owner to {ROLE};
-- On Supabase, postgres owns schema public (comments on it, grants on it), and may alter
-- the services' tables (drop a trigger on auth.users, add a policy on realtime.messages):
-- their owners' roles are granted to it. None of them has any power beyond those tables.
alter schema public owner to {ROLE};
do $own$
declare r record;
begin
  for r in select c.oid::regclass as t, n.nspname from pg_catalog.pg_class c
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
           where c.relkind in ('r', 'p', 'v') and n.nspname in ('auth', 'realtime') loop
    execute format('alter table %s owner to %I', r.t,
      case r.nspname when 'auth' then 'supabase_auth_admin' else 'supabase_realtime_admin' end);
  end loop;
end
$own$;
grant supabase_auth_admin, supabase_realtime_admin to {ROLE};
alter table storage.objects owner to {ROLE};
-- Supabase's postgres role uses the services' schemas: schedules jobs, queues requests,
-- stores secrets, broadcasts, installs webhooks (all stand-ins here, see the shim).
grant usage, create on schema realtime, vault, graphql, graphql_public, cron, net, supabase_functions, pgsodium to {ROLE};
grant select, insert, update, delete, references, trigger on all tables in schema realtime, vault, cron, net, supabase_functions to {ROLE};
grant usage on all sequences in schema realtime, vault, cron, net, supabase_functions to {ROLE};
grant execute on all functions in schema realtime, vault, cron, net, supabase_functions, storage to {ROLE};
grant select on vault.decrypted_secrets to {ROLE};
alter publication supabase_realtime owner to {ROLE};
alter default privileges for role {ROLE} in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role {ROLE} in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role {ROLE} in schema public grant all on functions to anon, authenticated, service_role;

create schema xtask_live;
create function xtask_live.apply(sql text) returns void language plpgsql security definer
  as $f$ begin execute sql; end $f$;
create function xtask_live.q_m(sql text) returns text language plpgsql security definer
  set search_path = {PROBE_PATH}
  as $f$ declare r text; begin execute sql into r; return r; end $f$;
create function xtask_live.n_m(sql text) returns bigint language plpgsql security definer
  set search_path = {PROBE_PATH}
  as $f$ declare n bigint; begin execute sql; get diagnostics n = row_count; return n; end $f$;
create function xtask_live.q_a(sql text) returns text language plpgsql security definer
  set search_path = {PROBE_PATH}
  as $f$ declare r text; begin execute sql into r; return r; end $f$;
create function xtask_live.n_a(sql text) returns bigint language plpgsql security definer
  set search_path = {PROBE_PATH}
  as $f$ declare n bigint; begin execute sql; get diagnostics n = row_count; return n; end $f$;
-- The probe's steps Postgres usually refuses (the moving UPDATE, the INSERT for tenant B), run
-- in the same round trip as the others: the statement in a subtransaction (the exception
-- block), undone when Postgres refuses it, which says what happened instead of breaking the
-- batch. Rows affected, or the error as a JSON array: code, message, detail, hint, context.
-- A cancel (statement timeout, the watch) is not caught.
create function xtask_live.t_a(sql text) returns text language plpgsql security definer
  set search_path = {PROBE_PATH}
  as $f$
  declare n bigint; st text; msg text; det text; hin text; ctx text;
  begin
    execute sql; get diagnostics n = row_count; return n::text;
  exception when others then
    get stacked diagnostics st = returned_sqlstate, msg = message_text, det = pg_exception_detail,
      hin = pg_exception_hint, ctx = pg_exception_context;
    return pg_catalog.json_build_array(st, msg, det, hin, ctx)::text;
  end $f$;
alter function xtask_live.apply(text) owner to {ROLE};
alter function xtask_live.q_m(text) owner to {ROLE};
alter function xtask_live.n_m(text) owner to {ROLE};
alter function xtask_live.q_a(text) owner to authenticated;
alter function xtask_live.n_a(text) owner to authenticated;
alter function xtask_live.t_a(text) owner to authenticated;

-- What the wrappers are: any change (SECURITY INVOKER, another owner, other settings) is
-- seen before the next call.
create table xtask_live.wrappers as
  select p.oid as fn, p.proowner as owner, p.proconfig as config from pg_catalog.pg_proc p
   where p.pronamespace = 'xtask_live'::regnamespace and p.prosecdef;
create function xtask_live.intact(f text) returns void
  language plpgsql stable set search_path = pg_catalog, pg_temp
  as $f$
  begin
    if not exists (select from pg_catalog.pg_proc p join xtask_live.wrappers w on w.fn = p.oid
                    where p.oid = pg_catalog.to_regprocedure(f) and p.prosecdef
                      and p.proowner = w.owner and p.proconfig is not distinct from w.config) then
      raise exception 'a migration changed %, the function the check runs statements through: refused', f;
    end if;
  end
  $f$;
"#
    )
}

/// The functions statements run through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapper {
    /// A migration statement, as the migration role.
    Apply,
    /// A probe statement as the migration role: its first value as text.
    QueryAsMigrator,
    /// A probe statement as the migration role: rows affected.
    CountAsMigrator,
    /// A probe statement as `authenticated`: its first value as text.
    QueryAsTenant,
    /// A probe statement as `authenticated`: rows affected.
    CountAsTenant,
    /// A probe statement as `authenticated`, undone when Postgres refuses it: rows affected,
    /// or the refusal (see [`Tried`]).
    TryAsTenant,
}

impl Wrapper {
    fn name(self) -> &'static str {
        match self {
            Wrapper::Apply => "apply",
            Wrapper::QueryAsMigrator => "q_m",
            Wrapper::CountAsMigrator => "n_m",
            Wrapper::QueryAsTenant => "q_a",
            Wrapper::CountAsTenant => "n_a",
            Wrapper::TryAsTenant => "t_a",
        }
    }
}

/// Run `sql` through a wrapper after checking it; the wrapper's text result, if any.
pub fn through(
    c: &mut postgres::Client,
    w: Wrapper,
    sql: &str,
) -> Result<Option<String>, postgres::Error> {
    if w != Wrapper::Apply {
        return probe_through(c, w, sql);
    }
    intact(c, w)?;
    c.query_one(&format!("select xtask_live.{}($1)", w.name()), &[&sql])?;
    Ok(None)
}

/// A probe statement in one round trip: the wrapper's check, the call, and the superuser's
/// search path back (the probe's statements run the migrations' code, which may set one for
/// the session), as three statements of one simple query. Postgres stops at the first error,
/// so the call never runs when the check fails. The statement goes as an `E''` literal,
/// which reads the same whatever `standard_conforming_strings` says.
fn probe_through(
    c: &mut postgres::Client,
    w: Wrapper,
    sql: &str,
) -> Result<Option<String>, postgres::Error> {
    Ok(probe_batch(c, None, &[(w, sql)], None)?.pop().flatten())
}

/// Several probe statements in one round trip, each as [`probe_through`] sends it, between
/// `before` and `after` (our own statements: a savepoint, its rollback; no `;` in them
/// but between statements). Postgres stops at
/// the first error, so nothing after a failed statement runs (the caller rolls back to its
/// savepoint). The value of each call, as `through` gives it.
pub fn probe_batch(
    c: &mut postgres::Client,
    before: Option<&str>,
    calls: &[(Wrapper, &str)],
    after: Option<&str>,
) -> Result<Vec<Option<String>>, postgres::Error> {
    let mut items: Vec<Item> = Vec::new();
    items.extend(before.map(Item::Raw));
    items.extend(calls.iter().map(|(w, sql)| Item::Call(*w, sql)));
    items.extend(after.map(Item::Raw));
    probe_items(c, &items)
}

/// One part of a batch of [`probe_items`].
#[derive(Clone, Copy)]
pub enum Item<'a> {
    /// Statements of ours (savepoints and their rollbacks): no `;` in them but between
    /// statements.
    Raw(&'a str),
    /// A probe statement through a wrapper, as [`probe_through`] sends it.
    Call(Wrapper, &'a str),
}

/// The items in one simple query, in order; the value of each call, as `through` gives it.
/// Postgres stops at the first error: nothing after it runs, and no value is given.
pub fn probe_items(
    c: &mut postgres::Client,
    items: &[Item],
) -> Result<Vec<Option<String>>, postgres::Error> {
    let mut batch = String::new();
    // The statement (counted from 0) whose row is each call's value.
    let mut value_at = Vec::new();
    let mut counts = Vec::new();
    let mut k = 0;
    for item in items {
        match item {
            Item::Raw(sql) => {
                batch.push_str(sql);
                batch.push_str("; ");
                k += sql.split(';').filter(|s| !s.trim().is_empty()).count();
            }
            Item::Call(w, sql) => {
                batch.push_str(&format!(
                    "{}::text; set search_path = pg_catalog, pg_temp; ",
                    checked_call(*w, sql)
                ));
                value_at.push(k + 1);
                counts.push(matches!(
                    w,
                    Wrapper::CountAsMigrator | Wrapper::CountAsTenant
                ));
                k += 3;
            }
        }
    }
    let mut done = 0;
    let mut values: Vec<Option<String>> = vec![None; value_at.len()];
    for m in c.simple_query(&batch)? {
        match m {
            postgres::SimpleQueryMessage::Row(r) => {
                if let Some(i) = value_at.iter().position(|&at| at == done) {
                    values[i] = r.get(0).map(String::from);
                }
            }
            postgres::SimpleQueryMessage::CommandComplete(_) => done += 1,
            _ => {}
        }
    }
    Ok(values
        .into_iter()
        .zip(counts)
        .map(|(value, count)| {
            if count {
                Some(value.unwrap_or_else(|| "0".into()))
            } else {
                value
            }
        })
        .collect())
}

/// Fail unless the wrapper is still SECURITY DEFINER, owned by its role, with its settings.
/// The wrapper's check and the call of `sql` through it, as two statements of a simple query
/// (no `;` after the call, so a cast can follow): `select xtask_live.intact('xtask_live.w(text)');
/// select xtask_live.w(E'...')`. Postgres stops at the first error, so the call never runs
/// when the check fails. The statement goes as an `E''` literal, which reads the same
/// whatever `standard_conforming_strings` says.
pub fn checked_call(w: Wrapper, sql: &str) -> String {
    format!(
        "select xtask_live.intact('xtask_live.{n}(text)'); select xtask_live.{n}(E'{}')",
        sql.replace('\\', "\\\\").replace('\'', "\\'"),
        n = w.name()
    )
}

pub fn intact(c: &mut postgres::Client, w: Wrapper) -> Result<(), postgres::Error> {
    let f = format!("xtask_live.{}(text)", w.name());
    c.query_one("select xtask_live.intact($1)", &[&f])
        .map(|_| ())
}

/// What a statement run through [`Wrapper::TryAsTenant`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tried {
    /// It ran: the rows it affected.
    Ran(i64),
    /// Postgres refused it (and it was undone): its SQLSTATE, the error as
    /// [`super::apply::describe`] words a client's, and the error's context (`where`).
    Refused {
        code: String,
        why: String,
        context: String,
    },
}

impl Tried {
    /// The value `t_a` returned: a row count, or the JSON array of a refusal.
    pub fn parse(v: Option<&str>) -> Option<Tried> {
        let v = v?;
        if let Ok(n) = v.parse::<i64>() {
            return Some(Tried::Ran(n));
        }
        let parts: Vec<String> = serde_json::from_str::<Vec<Option<String>>>(v)
            .ok()?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let [code, message, detail, hint, context] = <[String; 5]>::try_from(parts).ok()?;
        let mut why = format!("{message} ({code})");
        if !detail.is_empty() {
            why.push_str(&format!("; {detail}"));
        }
        if !hint.is_empty() {
            why.push_str(&format!("; hint: {hint}"));
        }
        Some(Tried::Refused { code, why, context })
    }
}

#[cfg(test)]
mod tests {
    use super::Tried;

    #[test]
    fn a_tried_statement_reads_as_a_count_or_as_the_refusal() {
        assert_eq!(Tried::parse(Some("3")), Some(Tried::Ran(3)));
        assert_eq!(
            Tried::parse(Some(
                r#"["42501", "new row violates row-level security policy for table \"t\"", "", "", "PL/pgSQL function xtask_live.t_a(text) line 4 at EXECUTE"]"#
            )),
            Some(Tried::Refused {
                code: "42501".into(),
                why: "new row violates row-level security policy for table \"t\" (42501)".into(),
                context: "PL/pgSQL function xtask_live.t_a(text) line 4 at EXECUTE".into(),
            })
        );
        let Some(Tried::Refused { why, .. }) =
            Tried::parse(Some(r#"["P0001", "no", "a route does", "call it", null]"#))
        else {
            panic!("a refusal")
        };
        assert_eq!(why, "no (P0001); a route does; hint: call it");
        assert_eq!(Tried::parse(Some("[1, 2]")), None);
        assert_eq!(Tried::parse(None), None);
    }
}
