//! The storage probe: can tenant A reach tenant B's objects in a bucket?
//!
//! As the migration role, two tenants are made (rows of the tenant root table when it has an
//! `id`, best effort), user A a member of tenant A and user B of tenant B; in each bucket the
//! history created, A and B each get an object in their tenant's folder and one in their own
//! user folder (`<tenant>/…`, `<user>/…`, owned by their user). Then, as `authenticated`
//! with A's JWT claims, the probe reads, overwrites and deletes B's objects. Before that
//! counts, A must see one of its own objects: a probe the policies do not recognise proves
//! nothing and says so. Everything runs under a savepoint that is rolled back.

use postgres::Client;

use crate::{
    config::Tenancy,
    schema::{quote_literal as lit, split_config_name, QualName},
};

use super::{
    apply::describe,
    probe::Probe,
    role::{through, Wrapper},
};

/// Run `sql` (as `w`) under its own savepoint, rolled back afterwards: its count, `None`
/// when Postgres refused it (no grant, a policy violation).
fn attempt(c: &mut Client, w: Wrapper, sql: &str) -> Result<Option<i64>, String> {
    c.batch_execute("savepoint xtask_storage_step")
        .map_err(|e| describe(&e).0)?;
    let ran = through(c, w, sql);
    let out = match ran {
        Ok(v) => Ok(Some(
            v.and_then(|v| v.parse::<i64>().ok()).unwrap_or_default(),
        )),
        Err(e) if e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => Ok(None),
        Err(e) => Err(describe(&e).0),
    };
    c.batch_execute(
        "rollback to savepoint xtask_storage_step; release savepoint xtask_storage_step",
    )
    .map_err(|e| describe(&e).0)?;
    out
}

/// Run `sql` as `authenticated` under a savepoint; then, as the superuser, `check` counts
/// what it did to B's objects; then roll back. A refused statement did nothing.
fn blind(c: &mut Client, sql: &str, check: &str) -> Result<i64, String> {
    c.batch_execute("savepoint xtask_storage_step")
        .map_err(|e| describe(&e).0)?;
    let n = match through(c, Wrapper::CountAsTenant, sql) {
        Ok(_) => c
            .query_one(check, &[])
            .map(|r| r.get::<_, i64>(0))
            .map_err(|e| describe(&e).0),
        Err(e) if e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => Ok(0),
        Err(e) => Err(describe(&e).0),
    };
    c.batch_execute(
        "rollback to savepoint xtask_storage_step; release savepoint xtask_storage_step",
    )
    .map_err(|e| describe(&e).0)?;
    n
}

/// Probe each bucket; one result per bucket, in the order given.
pub fn probe(c: &mut Client, buckets: &[String], tenancy: &Tenancy) -> Vec<(String, Probe)> {
    if buckets.is_empty() {
        return Vec::new();
    }
    if let Err(e) = c.batch_execute("savepoint xtask_storage") {
        let why = describe(&e).0;
        return buckets
            .iter()
            .map(|b| (b.clone(), Probe::Skipped(why.clone())))
            .collect();
    }
    let out = match setup(c, tenancy) {
        Ok(ids) => buckets
            .iter()
            .map(|b| {
                let p = one(c, b, &ids, tenancy).unwrap_or_else(Probe::Skipped);
                (b.clone(), p)
            })
            .collect(),
        Err(why) => buckets
            .iter()
            .map(|b| (b.clone(), Probe::Skipped(why.clone())))
            .collect(),
    };
    let _ = c.batch_execute("rollback to savepoint xtask_storage; release savepoint xtask_storage");
    out
}

/// Tenant and user ids of A and B.
struct Ids {
    ta: String,
    tb: String,
    ua: String,
    ub: String,
}

fn setup(c: &mut Client, tenancy: &Tenancy) -> Result<Ids, String> {
    let mut id = || -> Result<String, String> {
        c.query_one("select gen_random_uuid()::text", &[])
            .map(|r| r.get(0))
            .map_err(|e| describe(&e).0)
    };
    let (ua, ub) = (id()?, id()?);
    let tcol = split_config_name(&tenancy.membership_tenant_column)
        .pop()
        .unwrap_or_default();
    let ucol = split_config_name(&tenancy.membership_user_column)
        .pop()
        .unwrap_or_default();
    // A personal account: the tenant is the user.
    let (ta, tb) = if tcol == ucol {
        (ua.clone(), ub.clone())
    } else {
        (id()?, id()?)
    };
    let ids = Ids { ta, tb, ua, ub };
    // Best effort: the users, and the tenants as rows of the root table.
    let _ = attempt_keep(
        c,
        &format!(
            "insert into auth.users (id) values ({}), ({}) on conflict do nothing",
            lit(&ids.ua),
            lit(&ids.ub)
        ),
    );
    let root = QualName::from_config(&tenancy.root_table);
    let members = QualName::from_config(&tenancy.membership_table);
    if root != members {
        let _ = insert_rows(
            c,
            &root,
            &[
                vec![("id".to_string(), format!("{}::uuid", lit(&ids.ta)))],
                vec![("id".to_string(), format!("{}::uuid", lit(&ids.tb)))],
            ],
        );
    }
    let exists: bool = c
        .query_one("select to_regclass($1) is not null", &[&members.sql()])
        .map_err(|e| describe(&e).0)?
        .get(0);
    if !exists {
        // No membership table: the users alone (their own folders, their own objects).
        return Ok(ids);
    }
    let row = |t: &str, u: &str| {
        let mut r = vec![(tcol.clone(), format!("{}::uuid", lit(t)))];
        if ucol != tcol {
            r.push((ucol.clone(), format!("{}::uuid", lit(u))));
        }
        r
    };
    insert_rows(c, &members, &[row(&ids.ta, &ids.ua), row(&ids.tb, &ids.ub)])
        .map_err(|e| format!("cannot make the probe's users members of tenants A and B: {e}"))?;
    Ok(ids)
}

/// Insert rows given some of their columns; the other NOT NULL columns without a default get
/// a made-up value of their type (an enum's first label, `owner` for a role, a short
/// random word for other text, 0, false, now(), `{}`). As the migration role, kept when it succeeds.
fn insert_rows(
    c: &mut Client,
    table: &QualName,
    rows: &[Vec<(String, String)>],
) -> Result<(), String> {
    let needed = c
        .query(
            "select a.attname::text, format_type(a.atttypid, a.atttypmod), \
               (select e.enumlabel::text from pg_catalog.pg_enum e where e.enumtypid = a.atttypid order by e.enumsortorder limit 1) \
             from pg_catalog.pg_attribute a \
             where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped \
               and a.attnotnull and not a.atthasdef and a.attidentity = '' and a.attgenerated = ''",
            &[&table.sql()],
        )
        .map_err(|e| describe(&e).0)?;
    let mut cols: Vec<String> = rows
        .first()
        .map(|r| r.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let mut extra = Vec::new();
    for r in &needed {
        let name: String = r.get(0);
        let ty: String = r.get(1);
        let label: Option<String> = r.get(2);
        if cols.contains(&name) {
            continue;
        }
        let value = if let Some(l) = label {
            format!("{}::{ty}", lit(&l))
        } else if ty.contains("char") || ty == "text" {
            if name.contains("role") {
                "'owner'".to_string()
            } else {
                "left('x' || replace(gen_random_uuid()::text, '-', ''), 12)".to_string()
            }
        } else if ty == "uuid" {
            "gen_random_uuid()".to_string()
        } else if ty == "boolean" {
            "false".to_string()
        } else if ty.starts_with("timestamp") || ty == "date" {
            "now()".to_string()
        } else if ty == "jsonb" || ty == "json" {
            format!("'{{}}'::{ty}")
        } else if [
            "integer",
            "bigint",
            "smallint",
            "numeric",
            "real",
            "double precision",
        ]
        .contains(&ty.as_str())
        {
            "0".to_string()
        } else {
            continue;
        };
        cols.push(name);
        extra.push(value);
    }
    let values: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut v: Vec<String> = r.iter().map(|(_, v)| v.clone()).collect();
            v.extend(extra.iter().cloned());
            format!("({})", v.join(", "))
        })
        .collect();
    let cols: Vec<String> = cols.iter().map(|c| crate::schema::quote_ident(c)).collect();
    attempt_keep(
        c,
        &format!(
            "insert into {} ({}) values {} on conflict do nothing",
            table.sql(),
            cols.join(", "),
            values.join(", ")
        ),
    )
}

/// Run as the migration role under a savepoint that is kept when it succeeds.
fn attempt_keep(c: &mut Client, sql: &str) -> Result<(), String> {
    c.batch_execute("savepoint xtask_storage_keep")
        .map_err(|e| describe(&e).0)?;
    match through(c, Wrapper::CountAsMigrator, sql) {
        Ok(_) => c
            .batch_execute("release savepoint xtask_storage_keep")
            .map_err(|e| describe(&e).0),
        Err(e) => {
            let why = describe(&e).0;
            let _ = c.batch_execute(
                "rollback to savepoint xtask_storage_keep; release savepoint xtask_storage_keep",
            );
            Err(why)
        }
    }
}

fn one(c: &mut Client, bucket: &str, ids: &Ids, tenancy: &Tenancy) -> Result<Probe, String> {
    c.batch_execute("savepoint xtask_storage_bucket")
        .map_err(|e| describe(&e).0)?;
    let result = run(c, bucket, ids, tenancy);
    c.batch_execute(
        "rollback to savepoint xtask_storage_bucket; release savepoint xtask_storage_bucket",
    )
    .map_err(|e| describe(&e).0)?;
    result
}

fn run(c: &mut Client, bucket: &str, ids: &Ids, tenancy: &Tenancy) -> Result<Probe, String> {
    let b = lit(bucket);
    // In the tenant's folder and in the user's (one folder for a personal account); each file
    // named by a fresh uuid (some policies read the file name as one).
    let mut file = || -> Result<String, String> {
        c.query_one("select gen_random_uuid()::text", &[])
            .map(|r| r.get(0))
            .map_err(|e| describe(&e).0)
    };
    let a_names = [
        format!("{}/{}", ids.ta, file()?),
        format!("{}/{}", ids.ua, file()?),
    ];
    let b_names = [
        format!("{}/{}", ids.tb, file()?),
        format!("{}/{}", ids.ub, file()?),
    ];
    let row = |name: &str, user: &str| {
        format!("({b}, {}, {}::uuid, {})", lit(name), lit(user), lit(user))
    };
    let rows: Vec<String> = a_names
        .iter()
        .map(|n| row(n, &ids.ua))
        .chain(b_names.iter().map(|n| row(n, &ids.ub)))
        .collect();
    if let Err(e) = attempt_keep(
        c,
        &format!(
            "insert into storage.objects (bucket_id, name, owner, owner_id) values {}",
            rows.join(", ")
        ),
    ) {
        return Ok(Probe::Skipped(format!(
            "cannot put the probe's objects in bucket `{bucket}`: {e}"
        )));
    }
    // Become user A of tenant A.
    let claims = format!(
        r#"{{"sub":"{}","role":"authenticated","aud":"authenticated","tenant_id":"{}","app_metadata":{{"tenant_id":"{}"}}}}"#,
        ids.ua, ids.ta, ids.ta
    );
    let mut sql = format!(
        "select set_config('request.jwt.claims', {}, true), set_config('request.jwt.claim.sub', {}, true), set_config('request.jwt.claim.role', 'authenticated', true)",
        lit(&claims),
        lit(&ids.ua)
    );
    for s in &tenancy.settings {
        sql.push_str(&format!(
            ", set_config({}, {}, true)",
            lit(s.trim()),
            lit(&ids.ta)
        ));
    }
    c.batch_execute(&sql)
        .map_err(|e| format!("cannot set the probe's claims: {}", describe(&e).0))?;
    let list = |names: &[String]| names.iter().map(|n| lit(n)).collect::<Vec<_>>().join(", ");
    let own = attempt(
        c,
        Wrapper::QueryAsTenant,
        &format!(
            "select count(*) from storage.objects where bucket_id = {b} and name in ({})",
            list(&a_names)
        ),
    )?;
    if own.unwrap_or(0) == 0 {
        return Ok(Probe::Skipped(format!(
            "user A cannot read its own objects in bucket `{bucket}` (in its tenant's or its own folder): the policies do not let the probe's user read, so not reading B's proves nothing"
        )));
    }
    let theirs = list(&b_names);
    let mut leaks = Vec::new();
    let read = attempt(
        c,
        Wrapper::QueryAsTenant,
        &format!(
            "select count(*) from storage.objects where bucket_id = {b} and name in ({theirs})"
        ),
    )?;
    if let Some(n) = read.filter(|n| *n > 0) {
        leaks.push(format!(
            "tenant A read {n} object(s) of tenant B in bucket `{bucket}`"
        ));
    }
    // Overwrite and delete without a WHERE clause: Postgres applies the SELECT policies to
    // an UPDATE or DELETE only when it reads columns (a WHERE, a RETURNING), so a blind
    // statement reaches every row the UPDATE or DELETE policy alone lets through.
    let changed = blind(
        c,
        "update storage.objects set metadata = '{\"xtask\":\"overwritten\"}'",
        &format!(
            "select count(*) from storage.objects where bucket_id = {b} and name in ({theirs}) and metadata->>'xtask' = 'overwritten'"
        ),
    )?;
    if changed > 0 {
        leaks.push(format!(
            "tenant A overwrote {changed} object(s) of tenant B in bucket `{bucket}`"
        ));
    }
    let left = blind(
        c,
        "delete from storage.objects",
        &format!(
            "select 2 - count(*) from storage.objects where bucket_id = {b} and name in ({theirs})"
        ),
    )?;
    if left > 0 {
        leaks.push(format!(
            "tenant A deleted {left} object(s) of tenant B in bucket `{bucket}`"
        ));
    }
    let identities = vec!["member".to_string()];
    Ok(if leaks.is_empty() {
        Probe::Isolated { identities }
    } else {
        Probe::Leaks { leaks, identities }
    })
}
