//! A live database's catalog → the same schema model the static reader fills.
//!
//! Tables with `relrowsecurity`/`relforcerowsecurity`, columns with NOT NULL and foreign keys,
//! indexes (with their key columns, uniqueness and predicate), policies with their expression
//! text from `pg_get_expr` — exactly what `pg_dump` would print — and, from `pg_depend`, the
//! columns of its own table each policy reads. Functions with SECURITY DEFINER and a fixed
//! `search_path`. Views with their query (`pg_get_viewdef`). The rules judge this model
//! exactly as they judge the static one.

use std::collections::{BTreeMap, HashMap};

use postgres::Client;

use crate::schema::{
    Column, Command, Function, Index, Origin, Policy, PolicyUses, QualName, Schema, Switch, Table,
    View,
};

/// Schemas that are Postgres's own.
const SYSTEM: &str = "n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and n.nspname not like 'pg_temp_%' and n.nspname not like 'pg_toast_temp_%'";

/// The ordinary and partitioned tables outside Postgres's own schemas (`SYSTEM`'s filter),
/// read the same whatever search path the migrations set: every operator and type is named
/// with its schema.
macro_rules! user_tables {
    () => {
        "from pg_catalog.pg_class c join pg_catalog.pg_namespace n \
           on n.oid OPERATOR(pg_catalog.=) c.relnamespace \
         where c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.\"char\"[]) \
           and n.nspname OPERATOR(pg_catalog.<>) ALL \
             ('{pg_catalog,information_schema,pg_toast}'::pg_catalog.name[]) \
           and n.nspname OPERATOR(pg_catalog.!~~) 'pg_temp_%' \
           and n.nspname OPERATOR(pg_catalog.!~~) 'pg_toast_temp_%'"
    };
}

/// The oids of [`table_oids`] as one text (comma-separated; null for none), so it can be
/// prepared once for a session and run after each migration file.
pub const TABLE_OID_LIST: &str = concat!(
    "select pg_catalog.string_agg(c.oid::pg_catalog.text, ',') ",
    user_tables!()
);

/// The ordinary and partitioned tables, by oid (whatever search path is set).
pub fn table_oids(client: &mut Client) -> Result<BTreeMap<u32, QualName>, postgres::Error> {
    let rows = client.query(
        concat!(
            "select c.oid, n.nspname::pg_catalog.text, c.relname::pg_catalog.text ",
            user_tables!()
        ),
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, u32>(0),
                QualName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
            )
        })
        .collect())
}

/// Read the given tables (and every user function) into a schema model. `origin` says where
/// each table's facts should point a reader (the file that made it, as far as is known).
pub fn read(
    client: &mut Client,
    tables: &BTreeMap<u32, QualName>,
    origin: &dyn Fn(&QualName) -> Origin,
) -> Result<Schema, postgres::Error> {
    let oids: Vec<u32> = tables.keys().copied().collect();
    let mut by_oid: HashMap<u32, Table> = HashMap::new();
    // Exposure: can a client role reach the table at all (after the history's REVOKEs)?
    let rows = client.query(
        "select c.oid, c.relrowsecurity, c.relforcerowsecurity, \
           coalesce((select bool_or(has_table_privilege(r.oid, c.oid, 'select,insert,update,delete')) \
                     from pg_catalog.pg_roles r where r.rolname in ('anon', 'authenticated')), true) \
         from pg_catalog.pg_class c where c.oid = any($1)",
        &[&oids],
    )?;
    for r in rows {
        let oid: u32 = r.get(0);
        let name = tables[&oid].clone();
        let o = origin(&name);
        let mut t = Table::new(name, o.clone());
        t.rls = Switch {
            on: r.get(1),
            origin: Some(o.clone()),
        };
        t.rls_forced = Switch {
            on: r.get(2),
            origin: Some(o.clone()),
        };
        t.touch(&o.path);
        t.exposed = Some(r.get(3));
        by_oid.insert(oid, t);
    }

    // Columns; a single-column foreign key gives the column's reference.
    let rows = client.query(
        "select a.attrelid, a.attnum, a.attname::text, a.attnotnull, \
           (select fn.nspname::text || '.' || fc.relname::text \
              from pg_catalog.pg_constraint f \
              join pg_catalog.pg_class fc on fc.oid = f.confrelid \
              join pg_catalog.pg_namespace fn on fn.oid = fc.relnamespace \
             where f.conrelid = a.attrelid and f.contype = 'f' and f.conkey = array[a.attnum] \
             limit 1) \
         from pg_catalog.pg_attribute a \
         where a.attrelid = any($1) and a.attnum > 0 and not a.attisdropped \
         order by a.attrelid, a.attnum",
        &[&oids],
    )?;
    let mut attnames: HashMap<(u32, i16), String> = HashMap::new();
    for r in rows {
        let oid: u32 = r.get(0);
        let attnum: i16 = r.get(1);
        let name: String = r.get(2);
        attnames.insert((oid, attnum), name.clone());
        if let Some(t) = by_oid.get_mut(&oid) {
            let reference: Option<String> = r.get(4);
            t.columns.push(Column {
                name,
                not_null: r.get(3),
                references: reference.map(|s| {
                    let (schema, name) = s.split_once('.').unwrap_or(("public", &s));
                    QualName::new(schema, name)
                }),
                origin: t.origin.clone(),
                null_origin: t.origin.clone(),
            });
        }
    }

    let rows = client.query(
        "select i.indrelid, ic.relname::text, i.indkey::int2[], i.indisunique, i.indpred is not null \
         from pg_catalog.pg_index i join pg_catalog.pg_class ic on ic.oid = i.indexrelid \
         where i.indrelid = any($1) order by ic.relname",
        &[&oids],
    )?;
    for r in rows {
        let oid: u32 = r.get(0);
        let keys: Vec<i16> = r.get(2);
        if let Some(t) = by_oid.get_mut(&oid) {
            let columns = keys
                .iter()
                .map(|k| attnames.get(&(oid, *k)).cloned())
                .collect();
            t.indexes.push(Index {
                name: Some(r.get(1)),
                columns,
                unique: r.get(3),
                partial: r.get(4),
                origin: t.origin.clone(),
            });
        }
    }

    // Policies, with the columns of their own table that pg_depend says they read.
    let rows = client.query(
        "select p.polrelid, p.oid, p.polname::text, p.polcmd::text, p.polpermissive, \
           case when p.polroles = '{0}' then array['public'] \
                else array(select r.rolname::text from pg_catalog.pg_roles r where r.oid = any(p.polroles) order by r.rolname) end, \
           pg_catalog.pg_get_expr(p.polqual, p.polrelid), \
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), \
           array(select distinct a.attname::text from pg_catalog.pg_depend d \
                   join pg_catalog.pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid \
                  where d.classid = 'pg_catalog.pg_policy'::regclass and d.objid = p.oid \
                    and d.refclassid = 'pg_catalog.pg_class'::regclass and d.refobjid = p.polrelid \
                    and d.refobjsubid > 0 order by 1), \
           array(select distinct n.nspname::text || '.' || f.proname::text from pg_catalog.pg_depend d \
                   join pg_catalog.pg_proc f on f.oid = d.refobjid \
                   join pg_catalog.pg_namespace n on n.oid = f.pronamespace \
                  where d.classid = 'pg_catalog.pg_policy'::regclass and d.objid = p.oid \
                    and d.refclassid = 'pg_catalog.pg_proc'::regclass order by 1), \
           array(select distinct n.nspname::text || '.' || c.relname::text from pg_catalog.pg_depend d \
                   join pg_catalog.pg_class c on c.oid = d.refobjid \
                   join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
                  where d.classid = 'pg_catalog.pg_policy'::regclass and d.objid = p.oid \
                    and d.refclassid = 'pg_catalog.pg_class'::regclass and d.refobjid <> p.polrelid order by 1) \
         from pg_catalog.pg_policy p where p.polrelid = any($1) order by p.polrelid, p.polname",
        &[&oids],
    )?;
    for r in rows {
        let oid: u32 = r.get(0);
        if let Some(t) = by_oid.get_mut(&oid) {
            let cmd: String = r.get(3);
            let command = match cmd.as_str() {
                "r" => Command::Select,
                "a" => Command::Insert,
                "w" => Command::Update,
                "d" => Command::Delete,
                _ => Command::All,
            };
            t.policies.push(Policy {
                name: r.get(2),
                command,
                permissive: r.get(4),
                roles: r.get(5),
                using: r.get(6),
                with_check: r.get(7),
                origin: t.origin.clone(),
                uses: Some(PolicyUses {
                    columns: r.get(8),
                    functions: r.get(9),
                    relations: r.get(10),
                }),
            });
        }
    }

    let mut schema = Schema::default();
    for t in by_oid.into_values() {
        schema.tables.insert(t.name.clone(), t);
    }

    let rows = client.query(
        &format!(
            "select n.nspname::text, p.proname::text, p.prosecdef, \
               coalesce(exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%'), false), \
               l.lanname::text, coalesce(p.prosrc, ''), \
               case when p.proargnames is null then '{{}}'::text[] else \
                 coalesce((select array_agg(coalesce(a.name, '') order by a.i) \
                   from unnest(p.proargnames, p.proargmodes::text[]) with ordinality a(name, mode, i) \
                   where coalesce(a.mode, 'i') in ('i', 'b', 'v')), '{{}}'::text[]) end \
             from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace \
             join pg_catalog.pg_language l on l.oid = p.prolang \
             where {SYSTEM} and n.nspname not in ('auth', 'storage', 'extensions')"
        ),
        &[],
    )?;
    for r in rows {
        let name = QualName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        let o = origin(&name);
        let language: String = r.get(4);
        let body: String = r.get(5);
        // What the body reads, as the static reader reads it (`prosrc` is the same text).
        let (reads, words, writes) = if language == "sql" || language == "plpgsql" {
            (
                crate::gather::migrations::plpgsql::function_reads(&language, &body, 1),
                crate::schema::body_words(&body),
                crate::gather::migrations::read::body_writes(&body),
            )
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        schema.functions.insert(
            name.clone(),
            Function {
                name,
                security_definer: r.get(2),
                fixed_search_path: r.get(3),
                origin: o,
                reads,
                params: r.get(6),
                words,
                writes,
            },
        );
    }
    // Views: their query as Postgres prints it (a policy may read the membership table through
    // one), `security_invoker`, and whether a client role can write rows through it or read from it.
    let rows = client.query(
        &format!(
            "select n.nspname::text, c.relname::text, pg_catalog.pg_get_viewdef(c.oid), \
               coalesce((select o.option_value::bool from pg_catalog.pg_options_to_table(c.reloptions) o \
                          where o.option_name = 'security_invoker'), false), \
               (pg_catalog.pg_relation_is_updatable(c.oid, false) & 12) <> 0 \
                 and coalesce((select bool_or(has_table_privilege(r.oid, c.oid, 'insert,update')) \
                     from pg_catalog.pg_roles r where r.rolname in ('anon', 'authenticated')), true), \
               coalesce((select bool_or(has_table_privilege(r.oid, c.oid, 'select')) \
                   from pg_catalog.pg_roles r where r.rolname in ('anon', 'authenticated')), true) \
             from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
             where c.relkind = 'v' and {SYSTEM} and n.nspname not in ('auth', 'storage', 'extensions')"
        ),
        &[],
    )?;
    for r in rows {
        let name = QualName::new(r.get::<_, String>(0), r.get::<_, String>(1));
        let query: String = r.get(2);
        schema.views.insert(
            name.clone(),
            View {
                origin: origin(&name),
                name,
                query: query.trim().trim_end_matches(';').trim().to_string(),
                columns: Vec::new(),
                security_invoker: r.get(3),
                client_writable: Some(r.get(4)),
                client_readable: Some(r.get(5)),
                client_roles: Vec::new(),
                doubt: None,
            },
        );
    }
    // Roles that ignore policies: their policies say nothing about tenant isolation.
    let rows = client.query(
        "select rolname::text from pg_catalog.pg_roles where rolbypassrls or rolsuper order by 1",
        &[],
    )?;
    schema.bypass_roles = rows.iter().map(|r| r.get(0)).collect();
    Ok(schema)
}
