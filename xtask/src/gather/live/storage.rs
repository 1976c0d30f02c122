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

use crate::schema::{quote_literal as lit, split_config_name, QualName};

use super::{
    apply::describe,
    probe::{self, Identity, Probe},
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
pub fn probe(c: &mut Client, buckets: &[String], id: &Identity) -> Vec<(String, Probe)> {
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
    let out = match setup(c, id) {
        Ok(ids) => buckets
            .iter()
            .map(|b| {
                let p = one(c, b, &ids, id).unwrap_or_else(Probe::Skipped);
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

/// Users A and B, signed up, each a member of a tenant of its own: made by the table probe's
/// own machinery (`probe::new_tenant`, `probe::member_of`), so the rows a membership needs
/// (the tenant's parent row, an app user row, a role, the values its CHECKs accept) are
/// there as they are for the table probe. A personal account (the membership's tenant and
/// user columns are one) is the user; without a membership table the tenants are made-up
/// ids (the users' own folders still count).
fn setup(c: &mut Client, id: &Identity) -> Result<Ids, String> {
    let tenancy = id.tenancy;
    let fold = |s: &str| split_config_name(s).pop().unwrap_or_default();
    let personal = fold(&tenancy.membership_tenant_column) == fold(&tenancy.membership_user_column);
    let members = QualName::from_config(&tenancy.membership_table);
    let exists: bool = c
        .query_one("select to_regclass($1) is not null", &[&members.sql()])
        .map_err(|e| describe(&e).0)?
        .get(0);
    let one = |c: &mut Client| -> Result<(String, String), String> {
        let user = probe::signed_up_user(c)?;
        if personal && exists {
            // The account is the user's own row, made by the signup trigger.
            let ucol = fold(&tenancy.membership_user_column);
            let made: i64 = c
                .query_one(
                    &format!(
                        "select count(*) from {} where {}::text = $1",
                        members.sql(),
                        crate::schema::quote_ident(&ucol)
                    ),
                    &[&user],
                )
                .map_err(|e| describe(&e).0)?
                .get(0);
            if made == 0 {
                return Err(format!(
                    "signing up made no row of {members} for the user (the tenant is the user's own account there)"
                ));
            }
            return Ok((user.clone(), user));
        }
        if !exists {
            return Ok((probe::text_of(c, "gen_random_uuid()")?, user));
        }
        let tenant = probe::new_tenant(c, id, &user)?;
        probe::member_of(c, id, &tenant, &user)?;
        Ok((probe::text_of(c, &tenant)?, user))
    };
    let why = |e: String| format!("cannot make the probe's users members of tenants A and B: {e}");
    let (ta, ua) = one(c).map_err(why)?;
    let (tb, ub) = one(c).map_err(why)?;
    Ok(Ids { ta, tb, ua, ub })
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

fn one(c: &mut Client, bucket: &str, ids: &Ids, id: &Identity) -> Result<Probe, String> {
    c.batch_execute("savepoint xtask_storage_bucket")
        .map_err(|e| describe(&e).0)?;
    let result = run(c, bucket, ids, id);
    c.batch_execute(
        "rollback to savepoint xtask_storage_bucket; release savepoint xtask_storage_bucket",
    )
    .map_err(|e| describe(&e).0)?;
    result
}

fn run(c: &mut Client, bucket: &str, ids: &Ids, id: &Identity) -> Result<Probe, String> {
    let b = lit(bucket);
    // In the tenant's folder and in the user's (one folder for a personal account); each file
    // named by a fresh uuid, and one more named by its user (`<tenant>/<user>.png`: some
    // policies read the file name as the owner's id).
    let mut file = || -> Result<String, String> {
        c.query_one("select gen_random_uuid()::text", &[])
            .map(|r| r.get(0))
            .map_err(|e| describe(&e).0)
    };
    let a_names = [
        format!("{}/{}", ids.ta, file()?),
        format!("{}/{}", ids.ua, file()?),
        format!("{}/{}.png", ids.ta, ids.ua),
    ];
    let b_names = [
        format!("{}/{}", ids.tb, file()?),
        format!("{}/{}", ids.ub, file()?),
        format!("{}/{}.png", ids.tb, ids.ub),
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
    probe::claims(c, &ids.ua, Some(&lit(&ids.ta)), id)?;
    let list = |names: &[String]| names.iter().map(|n| lit(n)).collect::<Vec<_>>().join(", ");
    let own = attempt(
        c,
        Wrapper::QueryAsTenant,
        &format!(
            "select count(*) from storage.objects where bucket_id = {b} and name in ({})",
            list(&a_names)
        ),
    )?;
    // Not seeing its own objects, A's failing to reach B's proves nothing; reaching them
    // still proves a leak (an UPDATE or DELETE policy open to every user).
    let sees_own = own.unwrap_or(0) > 0;
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
            "select 3 - count(*) from storage.objects where bucket_id = {b} and name in ({theirs})"
        ),
    )?;
    if left > 0 {
        leaks.push(format!(
            "tenant A deleted {left} object(s) of tenant B in bucket `{bucket}`"
        ));
    }
    if leaks.is_empty() && !sees_own && !no_select_policy(c, bucket)? {
        return Ok(Probe::Skipped(format!(
            "user A cannot read its own objects in bucket `{bucket}` (in its tenant's or its own folder, or named by its user): the policies do not let the probe's user read, so not reaching B's proves nothing"
        )));
    }
    let identities = vec!["member".to_string()];
    Ok(if leaks.is_empty() {
        Probe::Isolated {
            identities,
            refused: None,
        }
    } else {
        Probe::Leaks { leaks, identities }
    })
}

/// No permissive SELECT policy on storage.objects that a signed-in user falls under concerns
/// the bucket (names it, or names no bucket): Postgres shows its objects to no client, so
/// A's not reading its own is the design, and what it failed to reach of B's is evidence.
fn no_select_policy(c: &mut Client, bucket: &str) -> Result<bool, String> {
    let rows = c
        .query(
            "select p.polname::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) \
             from pg_catalog.pg_policy p \
             where p.polrelid = 'storage.objects'::regclass and p.polpermissive and p.polcmd in ('r', '*') \
               and (0::oid = any(p.polroles) or (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') = any(p.polroles))",
            &[],
        )
        .map_err(|e| describe(&e).0)?;
    Ok(!rows.iter().any(|r| {
        let p = crate::schema::Policy {
            name: r.get(0),
            command: crate::schema::Command::Select,
            permissive: true,
            roles: vec!["authenticated".into()],
            using: r.get(1),
            with_check: r.get(2),
            origin: crate::schema::Origin::new("", 0),
            uses: None,
        };
        // No USING shows no row: it opens nothing.
        p.using.is_some() && crate::rules::storage::concerns(&p, bucket)
    }))
}
