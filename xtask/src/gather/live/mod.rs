//! The live check: every migration history applied to a real Postgres, the catalog read into
//! the same schema model the static reader fills (the judge decides from it with the same
//! rules), and a cross-tenant probe on the tenant tables — all in one transaction that is
//! rolled back, so the database is left exactly as it was found.
//!
//! The database is `--database-url` (or `XTASK_DATABASE_URL`), else a throwaway cluster
//! started from the Postgres binaries on this machine ([`cluster`]). A history holding a
//! statement that cannot run inside a transaction (`create index concurrently`, ...) is
//! applied in a scratch database of the throwaway cluster instead, created and dropped, and
//! the report says so; against `--database-url` such a history is not applied (we never
//! commit anything to a database we do not own).

use crate::rules::catalog::Rule;
pub mod apply;
pub mod catalog;
pub mod cluster;
pub mod probe;

use std::{
    collections::{BTreeMap, BTreeSet},
    str::FromStr,
    time::{Duration, Instant},
};

use postgres::{Client, NoTls};

use crate::{
    config::Config,
    gather::migrations::{files::MigrationFile, History, Loaded},
    model::{Finding, Severity},
    repo::Changes,
    rules::tenant,
    schema::{Origin, QualName, Schema},
    sql::Lines,
};

use self::{
    apply::{describe, line_of, Kind},
    cluster::Cluster,
    probe::{Identity, Probe},
};

/// The shim that gives a plain Postgres what Supabase migrations expect.
pub const SHIM: &str = include_str!("../../../../templates/supabase-shim.sql");

/// Where the live database comes from.
pub enum Database {
    /// A connection string (`postgres://...` or `host=... dbname=...`).
    Url(String),
    /// A throwaway cluster started for this run.
    Throwaway,
    /// A server of our own that is thrown away afterwards (a test's or a benchmark's): like
    /// `Url`, but scratch databases may be created in it.
    Disposable(String),
}

/// What the live check measured: facts, judged by `judge::migrations`.
#[derive(Debug, Default)]
pub struct LiveEvidence {
    /// Per history applied: the catalog of its judged tables and the probe of each.
    pub histories: Vec<LiveHistory>,
    /// `migration-apply-failed`: statements Postgres rejected.
    pub findings: Vec<Finding>,
    /// What the report should say about how the check ran (scratch databases, skipped
    /// transaction control, probes that were skipped, timings).
    pub notes: Vec<String>,
    /// "throwaway Postgres 15.18", "the database of --database-url".
    pub database: String,
    pub statements: usize,
    pub apply_failures: usize,
    /// Start-up time of the throwaway cluster.
    pub startup: Option<Duration>,
    /// Time to apply, read and probe (without the start-up).
    pub check: Duration,
    /// Of which: applying the files, and probing the tables.
    pub apply: Duration,
    pub probe: Duration,
}

/// One history as Postgres left it.
#[derive(Debug, Default)]
pub struct LiveHistory {
    pub dir: String,
    /// The tables to judge (created by new files, or every table with `--all`), read from
    /// the catalog, pointed at the lines the static reader remembers.
    pub schema: Schema,
    /// The isolation probe of each tenant table.
    pub probes: Vec<(QualName, Probe)>,
}

/// Is there anything for the live check to do? (No migration files, or nothing new: no.)
pub fn wanted(histories: &[History], changes: &Changes) -> bool {
    histories.iter().any(|h| {
        !h.files.is_empty() && (changes.all || h.files.iter().any(|(f, _)| changes.is_new(&f.path)))
    })
}

/// Run the live check. `Err` is the reason it could not run at all (no Postgres, cannot
/// connect, timed out).
pub fn check(
    config: &Config,
    changes: &Changes,
    histories: &[History],
    db: &Database,
) -> Result<LiveEvidence, String> {
    let timeout = Duration::from_secs(config.live.timeout_secs.max(1));
    let deadline = Instant::now() + timeout;
    let _busy = crate::proc::Busy::new();
    let mut ev = LiveEvidence::default();
    let (base, cluster) = match db {
        Database::Url(url) | Database::Disposable(url) => {
            let mut c = postgres::Config::from_str(url)
                .map_err(|e| format!("--database-url is not a Postgres connection string: {e}"))?;
            if c.get_connect_timeout().is_none() {
                c.connect_timeout(Duration::from_secs(10));
            }
            ev.database = "the database of --database-url".into();
            (c, None)
        }
        Database::Throwaway => {
            let cluster = Cluster::start(timeout)?;
            ev.startup = Some(cluster.startup);
            let version: String = connect(&cluster.config())?
                .query_one("show server_version", &[])
                .map(|r| r.get(0))
                .unwrap_or_default();
            let version = version.split_whitespace().next().unwrap_or("").to_string();
            ev.database = format!("throwaway Postgres {version}");
            (cluster.config(), Some(cluster))
        }
    };
    let started = Instant::now();
    let run = Run {
        config,
        changes,
        deadline,
        base: &base,
        own_cluster: cluster.is_some() || matches!(db, Database::Disposable(_)),
    };
    for h in histories {
        if h.files.is_empty() {
            continue;
        }
        if crate::proc::interrupted() {
            return Err("interrupted".into());
        }
        one_history(&run, h, &mut ev)?;
    }
    ev.check = started.elapsed();
    drop(cluster);
    Ok(ev)
}

fn connect(config: &postgres::Config) -> Result<Client, String> {
    config
        .connect(NoTls)
        .map_err(|e| format!("cannot connect to Postgres: {}", describe(&e).0))
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("the live check timed out (`[live] timeout_secs`)".into())
    } else {
        Ok(left)
    }
}

/// The connection for one history: inside the transaction that is rolled back, or in a
/// scratch database that is dropped. Either happens when the session ends, early returns
/// included.
struct Session {
    c: Client,
    /// The admin connection and the scratch database's name.
    scratch: Option<(Client, String)>,
}

impl Session {
    fn open(base: &postgres::Config, scratch: Option<String>) -> Result<Session, String> {
        match scratch {
            None => {
                let mut c = connect(base)?;
                c.batch_execute("begin").map_err(|e| describe(&e).0)?;
                Ok(Session { c, scratch: None })
            }
            Some(name) => {
                let mut admin = connect(base)?;
                admin
                    .batch_execute(&format!("create database {name}"))
                    .map_err(|e| {
                        format!("cannot create the scratch database: {}", describe(&e).0)
                    })?;
                let mut cfg = base.clone();
                cfg.dbname(&name);
                let scratch = Some((admin, name));
                // From here on, Drop removes the scratch database whatever happens.
                let c = match connect(&cfg) {
                    Ok(c) => c,
                    Err(e) => {
                        drop(Session::drop_scratch(scratch));
                        return Err(e);
                    }
                };
                Ok(Session { c, scratch })
            }
        }
    }

    fn drop_scratch(scratch: Option<(Client, String)>) -> Result<(), String> {
        if let Some((mut admin, name)) = scratch {
            admin
                .batch_execute(&format!("drop database if exists {name} with (force)"))
                .map_err(|e| format!("cannot drop the scratch database: {}", describe(&e).0))?;
        }
        Ok(())
    }

    /// Limits for every statement; and (Postgres 14+) a check every second that we are still
    /// there, so a killed run's transaction is rolled back at once, not at the statement's end.
    fn limit(&mut self, deadline: Instant) -> Result<(), String> {
        let ms = remaining(deadline)?.as_millis().max(1);
        self.c
            .batch_execute(&format!(
                "set statement_timeout = {ms}; set lock_timeout = {ms}; \
                 select set_config(name, '1000', false) from pg_catalog.pg_settings \
                  where name = 'client_connection_check_interval'"
            ))
            .map_err(|e| describe(&e).0)
    }

    /// Run one statement of a migration; its error, if Postgres rejects it. Inside the
    /// transaction the savepoint is sent alone first (Postgres parses a whole multi-statement
    /// string before running any of it, so a syntax error would take a savepoint sent with it
    /// down too); the statement and the release then share one round trip, the statement
    /// ending on a line of its own so that a trailing comment cannot swallow the release.
    fn run(&mut self, sql: &str) -> Result<Option<postgres::Error>, String> {
        if self.scratch.is_some() {
            return Ok(self.c.batch_execute(sql).err());
        }
        self.c
            .batch_execute("savepoint xtask_stmt")
            .map_err(|e| describe(&e).0)?;
        let failed = self
            .c
            .batch_execute(&format!("{sql}\n;release savepoint xtask_stmt"))
            .err();
        if failed.as_ref().is_some_and(|e| !e.is_closed()) {
            self.c
                .batch_execute("rollback to savepoint xtask_stmt; release savepoint xtask_stmt")
                .map_err(|e| describe(&e).0)?;
        }
        Ok(failed)
    }

    /// After the migrations: undo what they set for their session (search_path, role,
    /// timeouts), and make sure what follows (catalog, probe) runs in a transaction.
    fn settle(&mut self, deadline: Instant) -> Result<(), String> {
        self.c
            .batch_execute("reset all; reset role")
            .map_err(|e| describe(&e).0)?;
        self.limit(deadline)?;
        if self.scratch.is_some() {
            self.c.batch_execute("begin").map_err(|e| describe(&e).0)?;
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.c.batch_execute("rollback");
        let _ = Session::drop_scratch(self.scratch.take());
    }
}

/// Tables as the history left them, and which new file created which.
struct Applied {
    /// Tables that existed before the first migration (the shim's, a non-empty database's).
    before: BTreeMap<u32, QualName>,
    created_by: BTreeMap<u32, String>,
}

/// What every history of one run shares.
struct Run<'a> {
    config: &'a Config,
    changes: &'a Changes,
    deadline: Instant,
    base: &'a postgres::Config,
    /// A server of our own: scratch databases may be created in it.
    own_cluster: bool,
}

fn one_history(run: &Run, h: &History, ev: &mut LiveEvidence) -> Result<(), String> {
    // The files as the static reader read and cut them; an unreadable link was reported by
    // it and has nothing to send. What cannot run in a transaction decides the mode.
    let files: Vec<&(MigrationFile, Loaded)> = h
        .files
        .iter()
        .filter(|(f, _)| f.unreadable.is_none())
        .collect();
    let no_tx = files.iter().find_map(|(f, l)| {
        if l.unsendable.is_some() {
            return None;
        }
        l.read.pieces.iter().find_map(|p| match p.kind {
            Kind::NoTransaction(what) => Some(format!("{what} at {}:{}", f.path, p.line)),
            _ => None,
        })
    });
    let scratch = match (&no_tx, run.own_cluster) {
        (None, _) => None,
        (Some(what), true) => {
            ev.notes.push(format!(
                "history `{}` has {what}, which cannot run in a transaction: applied in a scratch database of the throwaway cluster, dropped afterwards",
                h.dir
            ));
            Some(format!("xtask_scratch_{}", std::process::id()))
        }
        (Some(what), false) => {
            return Err(format!(
                "history `{}` has {what}, which cannot run inside the transaction the check rolls back; without --database-url the check uses a throwaway cluster where it can",
                h.dir
            ))
        }
    };

    let mut s = Session::open(run.base, scratch)?;
    s.limit(run.deadline)?;
    s.c.batch_execute(SHIM)
        .map_err(|e| format!("the Supabase shim does not apply: {}", describe(&e).0))?;
    let applying = Instant::now();
    let applied = apply_files(&mut s, run, h, &files, ev)?;
    ev.apply += applying.elapsed();
    s.settle(run.deadline)?;
    judge_and_probe(&mut s.c, run, h, &applied, ev)
}

/// Apply the files in order, each statement on its own; rejected statements become findings.
fn apply_files(
    s: &mut Session,
    run: &Run,
    h: &History,
    files: &[&(MigrationFile, Loaded)],
    ev: &mut LiveEvidence,
) -> Result<Applied, String> {
    let (changes, deadline) = (run.changes, run.deadline);
    let before = catalog::table_oids(&mut s.c).map_err(|e| describe(&e).0)?;
    let present: Vec<String> = before
        .values()
        .filter(|n| !["auth", "storage", "extensions"].contains(&n.schema.as_str()))
        .map(|n| n.to_string())
        .collect();
    if !present.is_empty() {
        ev.notes.push(format!(
            "the database was not empty before history `{}` was applied ({} table(s), e.g. {}): migrations that create them again fail; point --database-url at an empty database",
            h.dir,
            present.len(),
            present[0]
        ));
    }
    let mut created_by: BTreeMap<u32, String> = BTreeMap::new();
    // The tables as they were before the current file; `None` after a file of the base
    // (read again, only when a new file follows: what the history made before it is
    // context, not what the new file created).
    let mut known = Some(before.clone());
    let mut skipped_tx = 0usize;
    for (f, loaded) in files {
        let (text, pieces) = match (&loaded.unsendable, &loaded.text) {
            (None, Some(text)) => (text, &loaded.read.pieces),
            (why, _) => {
                let (line, msg) = why
                    .clone()
                    .unwrap_or_else(|| (1, "the file could not be read".into()));
                ev.apply_failures += 1;
                ev.findings.push(
                    Finding::new(Rule::MigrationApplyFailed, Severity::Error, msg)
                        .at(f.path.clone(), Some(line)),
                );
                continue;
            }
        };
        let is_new = changes.is_new(&f.path);
        if is_new && known.is_none() {
            known = Some(catalog::table_oids(&mut s.c).map_err(|e| describe(&e).0)?);
        }
        let lines = Lines::new(text);
        for p in pieces {
            if p.kind == Kind::TransactionControl {
                skipped_tx += 1;
                continue;
            }
            remaining(deadline)?;
            if crate::proc::interrupted() {
                return Err("interrupted".into());
            }
            ev.statements += 1;
            if let Some(e) = s.run(&p.text)? {
                if e.is_closed() {
                    return Err(format!("the connection to Postgres was lost: {e}"));
                }
                let (msg, pos) = describe(&e);
                ev.apply_failures += 1;
                ev.findings.push(
                    Finding::new(
                        Rule::MigrationApplyFailed,
                        Severity::Error,
                        format!("Postgres rejects this statement: {msg}"),
                    )
                    .at(f.path.clone(), Some(line_of(p, &lines, pos))),
                );
            }
        }
        if is_new {
            let now = catalog::table_oids(&mut s.c).map_err(|e| describe(&e).0)?;
            let was = known.take().unwrap_or_default();
            for oid in now.keys() {
                if !was.contains_key(oid) {
                    created_by.insert(*oid, f.path.clone());
                }
            }
            known = Some(now);
        } else {
            known = None;
        }
    }
    if skipped_tx > 0 {
        ev.notes.push(format!(
            "history `{}`: {skipped_tx} transaction-control statement(s) (begin/commit/...) not sent: the check runs the whole history in one transaction and rolls it back",
            h.dir
        ));
    }
    Ok(Applied { before, created_by })
}

/// Read the tables to judge from the catalog and probe each tenant table (one with the
/// tenant column that config does not exempt).
fn judge_and_probe(
    c: &mut Client,
    run: &Run,
    h: &History,
    applied: &Applied,
    ev: &mut LiveEvidence,
) -> Result<(), String> {
    let (config, changes) = (run.config, run.changes);
    let all = catalog::table_oids(c).map_err(|e| describe(&e).0)?;
    let static_judged: BTreeSet<&QualName> = h
        .schema
        .tables
        .values()
        .filter(|t| changes.all || t.touched_by.iter().any(|p| changes.is_new(p)))
        .map(|t| &t.name)
        .collect();
    let judged: BTreeMap<u32, QualName> = all
        .into_iter()
        .filter(|(oid, name)| {
            (changes.all && !applied.before.contains_key(oid))
                || applied.created_by.contains_key(oid)
                || static_judged.contains(name)
        })
        .collect();
    let origin = |name: &QualName| -> Origin {
        if let Some(t) = h.schema.tables.get(name) {
            return t.origin.clone();
        }
        if let Some(f) = h.schema.functions.get(name) {
            return f.origin.clone();
        }
        let file = judged
            .iter()
            .find(|(_, n)| *n == name)
            .and_then(|(oid, _)| applied.created_by.get(oid));
        Origin::new(file.cloned().unwrap_or_else(|| h.dir.clone()), 1)
    };
    let mut schema = catalog::read(c, &judged, &origin).map_err(|e| describe(&e).0)?;
    point_at_static(&mut schema, &h.schema);

    let probing = Instant::now();
    let id = Identity {
        tenancy: &config.tenancy,
        become_tenant: &config.live.become_tenant,
    };
    let column = crate::rules::policy::tenant_column(&config.tenancy);
    let mut probes = Vec::new();
    for (name, t) in &schema.tables {
        if tenant::exemption(name, &config.tenancy).is_some() || t.column(&column).is_none() {
            continue;
        }
        remaining(run.deadline)?;
        probes.push((name.clone(), probe::probe(c, name, &id)));
    }
    ev.probe += probing.elapsed();
    ev.histories.push(LiveHistory {
        dir: h.dir.clone(),
        schema,
        probes,
    });
    Ok(())
}

/// Point the live facts at the lines the static reader remembers for the same objects, so a
/// live finding names the file and line to fix.
fn point_at_static(live: &mut Schema, stat: &Schema) {
    for (name, t) in live.tables.iter_mut() {
        let Some(s) = stat.tables.get(name) else {
            continue;
        };
        t.rls.origin = s.rls.origin.clone().or_else(|| Some(s.origin.clone()));
        for col in &mut t.columns {
            if let Some(sc) = s.column(&col.name) {
                col.origin = sc.origin.clone();
                col.null_origin = sc.null_origin.clone();
            }
        }
        for p in &mut t.policies {
            if let Some(sp) = s.policies.iter().find(|sp| sp.name == p.name) {
                p.origin = sp.origin.clone();
            }
        }
        for file in &s.touched_by {
            t.touch(file);
        }
    }
}
