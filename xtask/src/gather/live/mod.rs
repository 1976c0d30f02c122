//! The live check: every migration history applied to a real Postgres, the catalog read into
//! the same schema model the static reader fills (the judge decides from it with the same
//! rules), and a cross-tenant probe on the tenant tables.
//!
//! The database is `--database-url` (or `XTASK_DATABASE_URL`), else a throwaway cluster
//! started from the Postgres binaries on this machine ([`cluster`]). On a server of our own
//! each history is applied in a scratch database, created and dropped, each file in a
//! transaction of its own as the Supabase CLI applies it (its own `commit`/`rollback`
//! honoured), and its tenant tables are probed concurrently ([`pool`]), each probe in a
//! transaction that is rolled back. Against `--database-url` everything runs in ONE
//! transaction that is rolled back, so the database is left exactly as it was found (we
//! never commit anything to a database we do not own): a history holding a statement that
//! cannot run inside a transaction (`create index concurrently`, ...) is not applied there,
//! and the report says what one transaction cannot do.
//!
//! The migrations (and the probe's statements) never run as the superuser: see [`role`]. A
//! statement that might hold several commands is prepared by Postgres first, which refuses a
//! text holding several ([`apply::one_command`]); a file's other statements go to Postgres
//! together ([`Session::run_batch`]); a [`watch`] cancels what runs at the deadline or on
//! Ctrl-C.

use crate::rules::catalog::Rule;
pub mod apply;
pub mod catalog;
pub mod cluster;
pub mod pool;
pub mod probe;
pub mod role;
pub mod standin;
pub mod storage;
pub mod watch;

use std::{
    collections::{BTreeMap, BTreeSet},
    str::FromStr,
    time::{Duration, Instant},
};

use postgres::{Client, NoTls};

use crate::{
    config::Config,
    gather::migrations::{files::MigrationFile, split::without_comments, History, Loaded},
    model::{Finding, Severity},
    repo::Changes,
    rules::tenant,
    schema::{Origin, QualName, Schema},
    sql::Lines,
};

use self::{
    apply::{describe, line_of, Kind, Piece},
    cluster::Cluster,
    probe::{Identity, Probe},
    role::Wrapper,
    watch::Watch,
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
    /// Applied in a scratch database (created, each statement committed, dropped), not in
    /// one transaction that is rolled back.
    pub scratch: bool,
    /// Start-up time of the throwaway cluster.
    pub startup: Option<Duration>,
    /// Time to apply, read and probe (without the start-up).
    pub check: Duration,
    /// Of which: applying the files, and probing the tables.
    pub apply: Duration,
    pub probe: Duration,
    /// The rest of the breakdown (the benchmark prints it).
    pub timings: Box<Timings>,
}

/// Where the rest of the live check's time went.
#[derive(Debug, Default)]
pub struct Timings {
    /// The Supabase shim and the migration role.
    pub setup: Duration,
    /// Reading the catalog after the migrations.
    pub catalog: Duration,
    /// The self-join and storage probes.
    pub probe_other: Duration,
    /// Ending each history: the rollback, or dropping the scratch database.
    pub teardown: Duration,
    /// Stopping the throwaway cluster (after `check`).
    pub stop: Duration,
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
    /// The self-join attack on the membership table: the evidence when Postgres let it.
    pub self_join: Option<String>,
    /// The storage probe of each bucket the history creates (`storage.rs`).
    pub storage: Vec<(String, Probe)>,
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
        throwaway: cluster.is_some(),
    };
    for (i, h) in histories.iter().enumerate() {
        if h.files.is_empty() {
            continue;
        }
        if crate::proc::interrupted() {
            return Err("interrupted".into());
        }
        one_history(&run, i, h, &mut ev)?;
    }
    ev.check = started.elapsed();
    let stopping = Instant::now();
    drop(cluster);
    ev.timings.stop = stopping.elapsed();
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
/// included. A [`Watch`] cancels what runs on it at the deadline or on Ctrl-C.
struct Session {
    /// Declared first: dropped (its thread stopped) before the connection goes.
    watch: Watch,
    c: Client,
    /// The admin connection and the scratch database's name.
    scratch: Option<(Client, String)>,
    /// What is running: "the Supabase shim", a migration's `file:line`, ...
    doing: String,
    /// In a scratch database: inside the transaction of the file being applied (each
    /// statement then has a savepoint of its own, as in the rolled-back transaction).
    file_tx: bool,
    /// The scratch database goes with the throwaway cluster: not dropped on its own.
    keep_scratch: bool,
    /// The savepoint `xtask_stmt` of [`Session::run_in_tx`] is set in this transaction.
    rolling: bool,
    /// Statements sent by [`Session::run_batch`] so far: their numbers.
    numbered: u64,
    /// The `begin` of the file's transaction is still to be sent ([`Session::begun`]).
    begin_pending: bool,
    /// [`catalog::TABLE_OID_LIST`], once prepared.
    oid_list: Option<postgres::Statement>,
}

/// A statement Postgres (or the check) refused: the message, and the character position in
/// the statement when Postgres gives one.
type Refusal = (String, Option<usize>);

impl Session {
    fn open(
        base: &postgres::Config,
        scratch: Option<String>,
        deadline: Instant,
    ) -> Result<Session, String> {
        let (mut c, scratch) = match scratch {
            None => {
                let mut c = connect(base)?;
                c.batch_execute("begin").map_err(|e| describe(&e).0)?;
                (c, None)
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
                // From here on, the scratch database is removed whatever happens.
                match connect(&cfg) {
                    Ok(c) => (c, Some((admin, name))),
                    Err(e) => {
                        drop(Session::drop_scratch(&mut admin, &name));
                        return Err(e);
                    }
                }
            }
        };
        let watch = match Watch::start(&mut c, base, deadline) {
            Ok(w) => w,
            Err(e) => {
                let _ = c.batch_execute("rollback");
                drop(c);
                if let Some((mut admin, name)) = scratch {
                    drop(Session::drop_scratch(&mut admin, &name));
                }
                return Err(describe(&e).0);
            }
        };
        Ok(Session {
            watch,
            c,
            scratch,
            doing: "opening the session".into(),
            file_tx: false,
            keep_scratch: false,
            rolling: false,
            numbered: 0,
            begin_pending: false,
            oid_list: None,
        })
    }

    /// Drop the scratch database `name` (our own connections to it closed) from `admin`.
    ///
    /// `drop database ... with (force)` ends the backends still connected, but a backend it
    /// finds there (one ended, or one whose connection was just closed, still exiting) makes
    /// Postgres sleep 100 ms before it looks again. So the backends of our closed
    /// connections are first waited for, a millisecond at a time (250 ms at most: one that
    /// is not exiting is not worth waiting for; the drop still ends whatever is left).
    fn drop_scratch(admin: &mut Client, name: &str) -> Result<(), String> {
        let until = Instant::now() + Duration::from_millis(250);
        let others = format!(
            "select 1 from pg_catalog.pg_stat_activity where datname = '{name}' \
              and pid <> pg_catalog.pg_backend_pid() limit 1"
        );
        while Instant::now() < until {
            match admin.simple_query(&others) {
                Ok(m)
                    if m.iter()
                        .any(|m| matches!(m, postgres::SimpleQueryMessage::Row(_))) =>
                {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => break,
            }
        }
        admin
            .batch_execute(&format!("drop database if exists {name} with (force)"))
            .map_err(|e| format!("cannot drop the scratch database: {}", describe(&e).0))?;
        // The migration role was made for this database (a scratch database commits it).
        let _ = admin.batch_execute(&format!("drop role if exists {}", role::ROLE));
        Ok(())
    }

    /// Limits for every statement; and (Postgres 14+) a check every second that we are still
    /// there, so a killed run's transaction is rolled back at once, not at the statement's end.
    /// (A migration may lift the timeouts: the [`Watch`] does not depend on them.)
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

    /// Run one statement of a migration as the migration role; why, if it was refused. Inside
    /// the transaction each statement has a savepoint of its own, so a refused one is undone
    /// and the rest of the history still runs.
    fn run(&mut self, sql: &str) -> Result<Option<Refusal>, String> {
        if self.scratch.is_none() || self.file_tx {
            return self.run_in_tx(sql);
        }
        self.guarded(sql, true, |c| {
            role::through(c, Wrapper::Apply, sql).map(|_| ())
        })
    }

    /// [`Session::run`] inside a transaction, in two round trips: Postgres prepares the
    /// statement (it refuses a text holding several; not asked where it cannot find several,
    /// [`apply::one_command`]), then one simple query checks the
    /// wrapper, runs the statement through it, and moves the savepoint past it. The savepoint
    /// `xtask_stmt` is always the state before the next statement (`rolling`): a refused
    /// statement is rolled back to it, which keeps it.
    fn run_in_tx(&mut self, sql: &str) -> Result<Option<Refusal>, String> {
        self.begun()?;
        let sql_err = |e: postgres::Error| describe(&e).0;
        if !self.rolling {
            self.c
                .batch_execute("savepoint xtask_stmt")
                .map_err(sql_err)?;
            self.rolling = true;
        }
        // Asking Postgres is a round trip: not taken where it cannot find several commands.
        let asked = if apply::one_command(sql) {
            Ok(())
        } else {
            self.c.prepare(sql).map(|_| ())
        };
        if let Err(e) = asked {
            if e.is_closed() {
                return Err(format!("the connection to Postgres was lost: {e}"));
            }
            self.c
                .batch_execute("rollback to savepoint xtask_stmt")
                .map_err(sql_err)?;
            if e.as_db_error()
                .is_some_and(|d| d.message().contains("multiple commands"))
            {
                return Ok(Some(several()));
            }
        }
        let batch = format!(
            "{}; release savepoint xtask_stmt; savepoint xtask_stmt",
            role::checked_call(Wrapper::Apply, sql)
        );
        match self.c.batch_execute(&batch) {
            Ok(()) => Ok(None),
            Err(e) if e.is_closed() => Err(format!("the connection to Postgres was lost: {e}")),
            Err(e) => {
                self.c
                    .batch_execute("rollback to savepoint xtask_stmt")
                    .map_err(sql_err)?;
                Ok(Some(refusal(&e, sql)))
            }
        }
    }

    /// Statements [`Session::run_in_tx`] would run one by one, each one command
    /// ([`apply::one_command`]), in as few round trips as Postgres allows; why each was
    /// refused, if it was. One simple query holds, for each in turn, what `run_in_tx` sends
    /// (the wrapper's check, the statement through the wrapper, the savepoint moved past
    /// it), with the statement's number (counted over the session) put in the
    /// transaction-local setting `xtask_live.n` after it, before the savepoint moves (and the
    /// number before the first, before the first savepoint of the query). Postgres runs them
    /// in order and stops at the first error: rolled back to the savepoint (the state after
    /// the statement before it, as one by one), the setting holds the number of the last
    /// statement that succeeded (a statement's own change of the setting is overwritten
    /// after it, or undone with it), so the refused one is the next;
    /// it is reported as `run_in_tx` reports it, and the statements after it are sent again.
    /// The same statements run in the same order between the same savepoints: only the round
    /// trips change. `doing(i)` names statement `i` for the watch's message when it stops one.
    fn run_batch(
        &mut self,
        sqls: &[&str],
        doing: impl Fn(usize) -> String,
    ) -> Result<Vec<Option<Refusal>>, String> {
        let sql_err = |e: postgres::Error| describe(&e).0;
        let lost = |e: postgres::Error| format!("the connection to Postgres was lost: {e}");
        let mut out: Vec<Option<Refusal>> = Vec::with_capacity(sqls.len());
        while out.len() < sqls.len() {
            let from = out.len();
            // The statement numbers of this query are `first..first + sent`.
            let first = self.numbered + 1;
            let mut batch = String::new();
            if std::mem::take(&mut self.begin_pending) {
                batch.push_str("begin;\n");
            }
            // The setting starts at the number before this query's first statement, inside the
            // savepoint's state: a value the migrations set for the session cannot be read
            // in its place.
            batch.push_str(&format!(
                "select pg_catalog.set_config('xtask_live.n', '{}', true); ",
                first - 1
            ));
            batch.push_str(if self.rolling {
                "release savepoint xtask_stmt; savepoint xtask_stmt;\n"
            } else {
                "savepoint xtask_stmt;\n"
            });
            let mut sent = 0usize;
            for sql in &sqls[from..] {
                if sent == BATCH_STATEMENTS || (sent > 0 && batch.len() + sql.len() > BATCH_BYTES) {
                    break;
                }
                batch.push_str(&format!(
                    "{}; select pg_catalog.set_config('xtask_live.n', '{}', true); \
                     release savepoint xtask_stmt; savepoint xtask_stmt;\n",
                    role::checked_call(Wrapper::Apply, sql),
                    first + sent as u64
                ));
                sent += 1;
            }
            self.numbered += sent as u64;
            let sent_now = self.c.batch_execute(&batch);
            // The savepoint is set first in the query, whatever fails after it.
            self.rolling = true;
            let e = match sent_now {
                Ok(()) => {
                    out.extend(std::iter::repeat_n(None, sent));
                    continue;
                }
                Err(e) if e.is_closed() => return Err(lost(e)),
                Err(e) => e,
            };
            let done: u64 = self
                .c
                .simple_query(
                    "rollback to savepoint xtask_stmt; \
                     select pg_catalog.current_setting('xtask_live.n', true)",
                )
                .map_err(|e| if e.is_closed() { lost(e) } else { sql_err(e) })?
                .into_iter()
                .find_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
                    _ => None,
                })
                .ok_or("cannot tell which statement Postgres refused")?;
            // How many of this query's statements succeeded: the refused one is the next.
            let ok = done
                .checked_sub(first - 1)
                .map_or(usize::MAX, |n| n as usize);
            if ok >= sent {
                return Err("cannot tell which statement Postgres refused".into());
            }
            let failed = from + ok;
            out.extend(std::iter::repeat_n(None, ok));
            if self.watch.fired().is_some() {
                // Stopped, not refused: the caller says why, and this is where.
                self.doing = doing(failed);
                return Ok(out);
            }
            out.push(Some(refusal(&e, sqls[failed])));
        }
        Ok(out)
    }

    /// Does this Postgres ship the extension?
    fn available(&mut self, name: &str) -> Result<bool, String> {
        self.c
            .query_one(
                "select exists (select from pg_catalog.pg_available_extensions where name = $1)",
                &[&name],
            )
            .map(|r| r.get(0))
            .map_err(|e| describe(&e).0)
    }

    /// Run one statement as the superuser (an allowed extension, `create index
    /// concurrently`): only ever a statement whose kind our reader recognised and Postgres
    /// confirms is alone.
    fn run_as_superuser(&mut self, sql: &str) -> Result<Option<Refusal>, String> {
        self.begun()?;
        // Its strings read as our reader reads them, whatever the migrations set.
        let err = |e: postgres::Error| describe(&e).0;
        let scs: String = self
            .c
            .query_one(
                "select pg_catalog.current_setting('standard_conforming_strings')",
                &[],
            )
            .map_err(err)?
            .get(0);
        self.c
            .batch_execute("set standard_conforming_strings = on")
            .map_err(err)?;
        let refused = self.guarded(sql, false, |c| c.execute(sql, &[]).map(|_| ()))?;
        self.c
            .execute(
                "select pg_catalog.set_config('standard_conforming_strings', $1, false)",
                &[&scs],
            )
            .map_err(err)?;
        Ok(refused)
    }

    /// `wrapped`: the statement runs through the migration role's wrapper (in a scratch
    /// database, inside a transaction of its own); else as the superuser, on its own.
    fn guarded(
        &mut self,
        sql: &str,
        wrapped: bool,
        send: impl FnOnce(&mut Client) -> Result<(), postgres::Error>,
    ) -> Result<Option<Refusal>, String> {
        self.begun()?;
        let tx = self.scratch.is_none() || self.file_tx;
        let sql_err = |e: postgres::Error| describe(&e).0;
        if tx && self.rolling {
            // The savepoint of `run_in_tx` is the state before this statement: after it,
            // a new one is set (a statement refused later must not undo this one).
            self.c
                .batch_execute("release savepoint xtask_stmt")
                .map_err(sql_err)?;
            self.rolling = false;
        }
        if tx {
            self.c
                .batch_execute("savepoint xtask_stmt")
                .map_err(sql_err)?;
        }
        // One statement at a time: Postgres itself says whether the text holds more than one
        // (it refuses to prepare several). Any other error here is left for the run to report.
        if let Err(e) = self.c.prepare(sql) {
            if e.is_closed() {
                return Err(format!("the connection to Postgres was lost: {e}"));
            }
            if tx {
                self.c
                    .batch_execute("rollback to savepoint xtask_stmt")
                    .map_err(sql_err)?;
            }
            if e.as_db_error()
                .is_some_and(|d| d.message().contains("multiple commands"))
            {
                if tx {
                    self.c
                        .batch_execute("release savepoint xtask_stmt")
                        .map_err(sql_err)?;
                }
                return Ok(Some(several()));
            }
        }
        let failed = if tx || !wrapped {
            send(&mut self.c).err()
        } else {
            // Each statement in a transaction of its own, deferred constraints checked (and
            // their triggers fired) inside the wrapper, not at the commit.
            self.c.batch_execute("begin").map_err(sql_err)?;
            match send(&mut self.c).and_then(|()| {
                role::through(&mut self.c, Wrapper::Apply, "set constraints all immediate")
                    .map(|_| ())
            }) {
                Ok(()) => self.c.batch_execute("commit").err(),
                Err(e) => Some(e),
            }
        };
        match failed {
            None => {
                if tx {
                    self.c
                        .batch_execute("release savepoint xtask_stmt")
                        .map_err(sql_err)?;
                }
                Ok(None)
            }
            Some(e) if e.is_closed() => Err(format!("the connection to Postgres was lost: {e}")),
            Some(e) => {
                if tx {
                    self.c
                        .batch_execute(
                            "rollback to savepoint xtask_stmt; release savepoint xtask_stmt",
                        )
                        .map_err(sql_err)?;
                } else if wrapped {
                    self.c.batch_execute("rollback").map_err(sql_err)?;
                }
                Ok(Some(refusal(&e, sql)))
            }
        }
    }

    /// In a scratch database: begin the transaction a file (or a part of it between its own
    /// `commit`s) is applied in, as the Supabase CLI applies each file in one.
    /// The `begin` is sent with what the transaction runs first ([`Session::begun`], or the
    /// first query of [`Session::run_batch`]): one round trip less per file.
    fn begin_file(&mut self) -> Result<(), String> {
        self.file_tx = true;
        self.rolling = false;
        self.begin_pending = true;
        Ok(())
    }

    /// Send the `begin` of [`Session::begin_file`] if it is still to be sent: called first by
    /// each method that runs a statement in the file's transaction.
    fn begun(&mut self) -> Result<(), String> {
        if self.begin_pending {
            self.begin_pending = false;
            self.c.batch_execute("begin").map_err(|e| describe(&e).0)?;
        }
        Ok(())
    }

    /// End the file's transaction: its deferred constraints checked (and their triggers
    /// fired) as the migration role, then committed. Why Postgres refused, if it did: the
    /// transaction is then rolled back, as a migration whose commit fails is.
    fn end_file(&mut self) -> Result<Option<Refusal>, String> {
        if !self.file_tx {
            return Ok(None);
        }
        self.file_tx = false;
        self.rolling = false;
        if std::mem::take(&mut self.begin_pending) {
            // Nothing ran in it: nothing to check or commit.
            return Ok(None);
        }
        // One round trip: Postgres stops at the first error, so nothing is committed when
        // the wrapper's check or a constraint fails.
        let ended = self.c.batch_execute(&format!(
            "{}; commit",
            role::checked_call(Wrapper::Apply, "set constraints all immediate")
        ));
        match ended {
            Ok(()) => Ok(None),
            Err(e) if e.is_closed() => Err(format!("the connection to Postgres was lost: {e}")),
            Err(e) => {
                self.c
                    .batch_execute("rollback")
                    .map_err(|e| describe(&e).0)?;
                Ok(Some((
                    format!(
                        "Postgres rejects this file's transaction at its commit: {}; none of its statements since the transaction began are kept",
                        describe(&e).0
                    ),
                    None,
                )))
            }
        }
    }

    /// A `rollback` of the file's own: what it did since its transaction began is undone.
    fn rollback_file(&mut self) -> Result<(), String> {
        self.file_tx = false;
        self.rolling = false;
        if std::mem::take(&mut self.begin_pending) {
            return Ok(());
        }
        self.c.batch_execute("rollback").map_err(|e| describe(&e).0)
    }

    /// The tables now, by a query that names every operator and type with its schema
    /// ([`catalog::table_oids`]), so operators the migrations planted on their search path
    /// change nothing.
    fn tables(&mut self) -> Result<BTreeMap<u32, QualName>, String> {
        catalog::table_oids(&mut self.c).map_err(|e| describe(&e).0)
    }

    /// The oids of [`Session::tables`], in one round trip: [`catalog::TABLE_OID_LIST`] reads
    /// the same whatever search path the migrations set, so it is prepared once for the
    /// session (a protocol-level statement: no rollback undoes it) and run after each file.
    fn table_oids(&mut self) -> Result<BTreeSet<u32>, String> {
        let err = |e: postgres::Error| describe(&e).0;
        let list = match &self.oid_list {
            Some(q) => q.clone(),
            None => {
                let q = self.c.prepare(catalog::TABLE_OID_LIST).map_err(err)?;
                self.oid_list = Some(q.clone());
                q
            }
        };
        let list: Option<String> = self.c.query_one(&list, &[]).map_err(err)?.get(0);
        list.unwrap_or_default()
            .split(',')
            .filter(|o| !o.is_empty())
            .map(|o| {
                o.parse::<u32>()
                    .map_err(|e| format!("an oid of the catalog: {e}"))
            })
            .collect()
    }

    /// After the migrations: undo what they set for their session (search_path, timeouts),
    /// and make sure what follows (catalog, probe) runs in a transaction, with a search path
    /// that holds nothing of theirs (the probe's statements get the usual one in their
    /// wrappers).
    fn settle(&mut self, deadline: Instant) -> Result<(), String> {
        self.c
            .batch_execute("reset all; reset role; set search_path = pg_catalog, pg_temp")
            .map_err(|e| describe(&e).0)?;
        self.limit(deadline)?;
        if self.scratch.is_some() {
            self.c.batch_execute("begin").map_err(|e| describe(&e).0)?;
        }
        Ok(())
    }
}

/// At most this many statements, and this many bytes of them, in one simple query of
/// [`Session::run_batch`] (after a refused one, the rest is sent again).
const BATCH_STATEMENTS: usize = 64;
const BATCH_BYTES: usize = 1 << 20;

/// A text Postgres reads as several statements.
fn several() -> Refusal {
    (
        "Postgres reads more than one statement in this text where the static reader reads one (a quoting trick, `standard_conforming_strings`?): refused, none of it was run".into(),
        None,
    )
}

/// Why Postgres refused the statement `sql`: its message, and where in `sql`.
fn refusal(e: &postgres::Error, sql: &str) -> Refusal {
    let (mut msg, mut pos) = describe(e);
    // Through the wrapper, Postgres places the error in the text it ran (when it is not a
    // statement nested further down, in a DO block say).
    if let Some(postgres::error::ErrorPosition::Internal { position, query }) =
        e.as_db_error().and_then(|d| d.position())
    {
        if query == sql {
            pos = Some(*position as usize);
        }
    }
    if msg.contains("within security-definer function") {
        msg.push_str(&format!(
            "; migrations run as the role `{}`, which cannot change role or session authorization",
            role::ROLE
        ));
    }
    (format!("Postgres rejects this statement: {msg}"), pos)
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.c.batch_execute("rollback");
        if self.keep_scratch {
            return;
        }
        if let Some((admin, name)) = self.scratch.take() {
            // Our connection to the scratch database is closed before it is dropped (the
            // admin connection takes its place): see [`Session::drop_scratch`].
            let ours = std::mem::replace(&mut self.c, admin);
            let _ = ours.close();
            let _ = Session::drop_scratch(&mut self.c, &name);
        }
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
    /// The throwaway cluster of this run, removed with everything in it when the check
    /// ends: its scratch databases need not be dropped one by one.
    throwaway: bool,
}

fn one_history(run: &Run, i: usize, h: &History, ev: &mut LiveEvidence) -> Result<(), String> {
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
            Kind::NoTransaction(what) if superuser_may_run(what) => {
                Some(format!("{what} at {}:{}", f.path, p.line))
            }
            _ => None,
        })
    });
    let scratch = match (&no_tx, run.own_cluster) {
        // Our own server: a scratch database, each file in a transaction of its own as the
        // Supabase CLI applies it (an enum value added in one file is usable in the next).
        (None, true) => Some(format!("xtask_scratch_{}_{i}", std::process::id())),
        (None, false) => None,
        (Some(what), true) => {
            ev.notes.push(format!(
                "history `{}` has {what}, which cannot run in a transaction: applied in a scratch database of the throwaway cluster, dropped afterwards",
                h.dir
            ));
            Some(format!("xtask_scratch_{}_{i}", std::process::id()))
        }
        (Some(what), false) => {
            return Err(format!(
                "history `{}` has {what}, which cannot run inside the transaction the check rolls back; without --database-url the check uses a throwaway cluster where it can",
                h.dir
            ))
        }
    };

    ev.scratch |= scratch.is_some();
    let mut s = Session::open(run.base, scratch, run.deadline)?;
    s.keep_scratch = run.throwaway;
    let result = prepare_apply_judge(&mut s, run, h, &files, ev);
    // Stopped by the watch: say so, and what was running, whatever error the cancelled
    // statement gave.
    let result = match (result, s.watch.fired()) {
        (_, Some(why)) => Err(format!("{why} while running {}", s.doing)),
        (result, None) => result,
    };
    let ending = Instant::now();
    drop(s);
    ev.timings.teardown += ending.elapsed();
    result
}

fn prepare_apply_judge(
    s: &mut Session,
    run: &Run,
    h: &History,
    files: &[&(MigrationFile, Loaded)],
    ev: &mut LiveEvidence,
) -> Result<(), String> {
    s.limit(run.deadline)?;
    let (user, superuser): (String, bool) =
        s.c.query_one(
            "select rolname::text, rolsuper from pg_catalog.pg_roles where rolname = current_user",
            &[],
        )
        .map(|r| (r.get(0), r.get(1)))
        .map_err(|e| describe(&e).0)?;
    if !superuser {
        return Err(format!(
            "the database connection's role `{user}` is not a superuser: the live check needs one to set up the migration role `{}` it applies the migrations as (they never run as the superuser)",
            role::ROLE
        ));
    }
    let setting_up = Instant::now();
    s.doing = "the Supabase shim".into();
    s.c.batch_execute(SHIM)
        .map_err(|e| format!("the Supabase shim does not apply: {}", describe(&e).0))?;
    s.doing = "the set-up of the migration role".into();
    s.c.batch_execute(&role::setup_sql()).map_err(|e| {
        format!(
            "cannot set up the migration role `{}`: {}",
            role::ROLE,
            describe(&e).0
        )
    })?;
    ev.timings.setup += setting_up.elapsed();
    let applying = Instant::now();
    let applied = apply_files(s, run, h, files, ev)?;
    ev.apply += applying.elapsed();
    s.doing = "reading the catalog".into();
    s.settle(run.deadline)?;
    judge_and_probe(s, run, h, &applied, ev)
}

/// A transaction-control statement of a file applied in its own transaction: `Some(true)`
/// for one that commits (`commit`, `end`), `Some(false)` for one that rolls back (`rollback`,
/// `abort`, not `rollback to savepoint`); `None` for the others (`begin` and `start
/// transaction`: the file is in one already; savepoints, `prepare transaction`: not sent).
fn tx_end(text: &str) -> Option<bool> {
    let t = without_comments(text).to_ascii_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        ["commit" | "end", rest @ ..] if rest.first() != Some(&"prepared") => Some(true),
        ["rollback" | "abort", rest @ ..]
            if !rest.contains(&"to") && rest.first() != Some(&"prepared") =>
        {
            Some(false)
        }
        _ => None,
    }
}

/// Statements that cannot run in a transaction and that the superuser runs for a migration
/// (in a scratch database): they run no code of the migration's with the superuser's powers
/// (index expressions run as the table's owner, restricted). The others (`ALTER SYSTEM`,
/// `CREATE DATABASE`, ...) are refused: a Supabase migration cannot run them either.
fn superuser_may_run(what: &str) -> bool {
    matches!(
        what,
        "CREATE INDEX CONCURRENTLY" | "DROP INDEX CONCURRENTLY" | "REINDEX CONCURRENTLY" | "VACUUM"
    )
}

/// The `create extension` the superuser runs for a migration: rebuilt from the names our
/// reader found, so nothing else of the migration's text runs with its powers.
fn extension_sql(name: &str, if_not_exists: bool, schema: Option<&str>) -> String {
    let q = crate::schema::quote_ident;
    format!(
        "create extension {}{}{}",
        if if_not_exists { "if not exists " } else { "" },
        q(name),
        schema.map_or(String::new(), |s| format!(" with schema {}", q(s)))
    )
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
    let before = s.tables()?;
    let present: Vec<String> = before
        .values()
        .filter(|n| !tenant::is_platform(n) && n.schema != "xtask_live")
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
    let mut known: Option<BTreeSet<u32>> = Some(before.keys().copied().collect());
    let mut skipped_tx = 0usize;
    let mut as_admin = 0usize;
    let mut vector_indexes = 0usize;
    let mut standins: std::collections::BTreeSet<String> = Default::default();
    for (f, loaded) in files {
        let (text, pieces) = match (&loaded.unsendable, &loaded.text) {
            (None, Some(text)) => (text, &loaded.read.pieces),
            (why, _) => {
                let (line, msg) = why
                    .clone()
                    .unwrap_or_else(|| (1, "the file could not be read".into()));
                refused_at(ev, &f.path, line, msg);
                continue;
            }
        };
        let is_new = changes.is_new(&f.path);
        if is_new && known.is_none() {
            known = Some(s.table_oids()?);
        }
        let lines = Lines::new(text);
        // In a scratch database each file is applied in a transaction of its own, its own
        // `commit`/`rollback` honoured (see [`tx_end`]).
        let file_tx = s.scratch.is_some();
        if file_tx {
            s.begin_file()?;
        }
        let mut last_line: u32 = 1;
        let refused_at_end = |ev: &mut LiveEvidence, refused: Option<Refusal>, line: u32| {
            if let Some((msg, _)) = refused {
                refused_at(ev, &f.path, line, msg);
            }
        };
        // Consecutive plain statements, sent together ([`Session::run_batch`]) before the
        // next statement of another kind, or at the end of the file.
        let mut plain: Vec<&Piece> = Vec::new();
        for p in pieces {
            if p.kind == Kind::TransactionControl && !file_tx {
                skipped_tx += 1;
                continue;
            }
            if let Kind::ActsAsAdmin(_) = p.kind {
                as_admin += 1;
                continue;
            }
            let batched = match p.kind {
                Kind::Run => true,
                Kind::VectorIndex => !standins.contains("vector"),
                _ => false,
            };
            // A NUL cannot be sent at all (the client refuses the whole query before sending
            // it): such a statement goes alone, and is refused alone.
            if batched
                && (s.scratch.is_none() || s.file_tx)
                && apply::one_command(&p.text)
                && !p.text.contains('\0')
            {
                plain.push(p);
                continue;
            }
            apply_plain(s, f, &lines, &mut plain, &mut last_line, ev, deadline)?;
            if p.kind == Kind::TransactionControl {
                s.doing = format!("{}:{}", f.path, p.line);
                match tx_end(&p.text) {
                    Some(true) => {
                        let refused = s.end_file()?;
                        refused_at_end(ev, refused, p.line);
                        s.begin_file()?;
                    }
                    Some(false) => {
                        s.rollback_file()?;
                        s.begin_file()?;
                    }
                    None => {}
                }
                continue;
            }
            about_to_run(s, &f.path, p.line, deadline)?;
            ev.statements += 1;
            let refused = match &p.kind {
                Kind::CreateExtension {
                    name,
                    if_not_exists,
                    schema,
                } if !s.available(name)? && standin::sql(name).is_some() => {
                    // Where Postgres would put it: the named schema, else the first of the
                    // search_path (public, as on Supabase).
                    let schema = schema.clone().unwrap_or_else(|| "public".into());
                    let sql = standin::for_schema(standin::sql(name).unwrap_or_default(), &schema);
                    let refused = s.run_as_superuser(&sql)?;
                    if refused.is_none() && standins.insert(name.clone()) {
                        ev.notes.push(format!(
                            "`create extension {name}` ({}:{}): this Postgres has no `{name}`; a stand-in was installed in schema `{schema}` (templates/extensions): its types and functions exist, it never acts",
                            f.path, p.line
                        ));
                    }
                    refused
                }
                Kind::VectorIndex if standins.contains("vector") => {
                    vector_indexes += 1;
                    None
                }
                Kind::CreateExtension {
                    name,
                    if_not_exists,
                    schema,
                } => {
                    if role::extension_allowed(name, &run.config.live) {
                        s.run_as_superuser(&extension_sql(name, *if_not_exists, schema.as_deref()))?
                    } else {
                        Some((
                            format!(
                                "the extension `{name}` is not one a migration may create (it reaches outside the database, or Supabase does not offer it); `[live] allow_extensions` in xtask.toml allows it: refused"
                            ),
                            None,
                        ))
                    }
                }
                Kind::NoTransaction(what) if superuser_may_run(what) => {
                    // Outside the file's transaction, as it must be.
                    let ended = s.end_file()?;
                    refused_at_end(ev, ended, p.line);
                    let refused = s.run_as_superuser(&without_comments(&p.text))?;
                    if file_tx {
                        s.begin_file()?;
                    }
                    refused
                }
                Kind::NoTransaction(what) => Some((
                    format!("{what} needs a superuser, which a Supabase migration is not: refused"),
                    None,
                )),
                _ => s.run(&p.text)?,
            };
            if s.watch.fired().is_some() {
                // Cancelled, not refused: the caller says why and where.
                return Err("stopped".into());
            }
            last_line = p.line;
            if let Some((msg, pos)) = refused {
                refused_at(ev, &f.path, line_of(p, &lines, pos), msg);
            }
        }
        apply_plain(s, f, &lines, &mut plain, &mut last_line, ev, deadline)?;
        if file_tx {
            s.doing = format!("{}: the end of its transaction", f.path);
            let refused = s.end_file()?;
            if s.watch.fired().is_some() {
                return Err("stopped".into());
            }
            refused_at_end(ev, refused, last_line);
        }
        if is_new {
            let now = s.table_oids()?;
            let was = known.take().unwrap_or_default();
            for oid in &now {
                if !was.contains(oid) {
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
    // What one rolled-back transaction cannot do as a replay does: an enum value added in
    // one file cannot be used before a commit.
    let adds_enum_value = s.scratch.is_none()
        && files.iter().any(|(_, l)| {
            l.read.pieces.iter().any(|p| {
                let t = p.text.to_ascii_lowercase();
                t.contains("alter type") && t.contains("add value")
            })
        });
    if adds_enum_value {
        ev.notes.push(format!(
            "history `{}` adds enum values (`alter type ... add value`): against --database-url the whole history runs in ONE transaction, where Postgres refuses to use a new enum value before a commit (a later file using it is rejected here, not in a real replay, which commits each file), and `set_config(..., true)` / `set local` last to the end of the history instead of their file; the throwaway cluster applies each file in its own transaction",
            h.dir
        ));
    }
    if vector_indexes > 0 {
        ev.notes.push(format!(
            "history `{}`: {vector_indexes} `hnsw`/`ivfflat` index(es) not built: pgvector is a stand-in here, and an embedding index says nothing about tenants",
            h.dir
        ));
    }
    if as_admin > 0 {
        ev.notes.push(format!(
            "history `{}`: {as_admin} statement(s) acting as Supabase's `postgres` role (`owner to postgres`, `alter default privileges for role postgres`) not sent: the migration role stands for `postgres` and owns what the migrations create",
            h.dir
        ));
    }
    Ok(Applied { before, created_by })
}

/// Send the plain statements of `f` gathered so far ([`Session::run_batch`]), and take
/// them out of `plain`; a refused one becomes a finding at its line, as one sent alone.
fn apply_plain(
    s: &mut Session,
    f: &MigrationFile,
    lines: &Lines,
    plain: &mut Vec<&Piece>,
    last_line: &mut u32,
    ev: &mut LiveEvidence,
    deadline: Instant,
) -> Result<(), String> {
    let Some(first) = plain.first() else {
        return Ok(());
    };
    about_to_run(s, &f.path, first.line, deadline)?;
    ev.statements += plain.len();
    let sqls: Vec<&str> = plain.iter().map(|p| p.text.as_str()).collect();
    let refused = s.run_batch(&sqls, |i| format!("{}:{}", f.path, plain[i].line))?;
    if s.watch.fired().is_some() {
        // Cancelled, not refused: the caller says why and where.
        return Err("stopped".into());
    }
    for (p, refused) in plain.iter().zip(refused) {
        *last_line = p.line;
        if let Some((msg, pos)) = refused {
            refused_at(ev, &f.path, line_of(p, lines, pos), msg);
        }
    }
    plain.clear();
    Ok(())
}

/// Before a statement (or a batch from it) is sent: the watch's message names it; the
/// deadline and Ctrl-C stop the check here.
fn about_to_run(s: &mut Session, path: &str, line: u32, deadline: Instant) -> Result<(), String> {
    s.doing = format!("{path}:{line}");
    remaining(deadline)?;
    if crate::proc::interrupted() {
        return Err("interrupted".into());
    }
    Ok(())
}

/// A statement Postgres (or the check) refused, as a finding at its file and line.
fn refused_at(ev: &mut LiveEvidence, path: &str, line: u32, msg: String) {
    ev.apply_failures += 1;
    ev.findings
        .push(Finding::new(Rule::MigrationApplyFailed, Severity::Error, msg).at(path, Some(line)));
}

/// Read the tables to judge from the catalog and probe each tenant table (one with the
/// tenant column that config does not exempt).
fn judge_and_probe(
    s: &mut Session,
    run: &Run,
    h: &History,
    applied: &Applied,
    ev: &mut LiveEvidence,
) -> Result<(), String> {
    let (config, changes) = (run.config, run.changes);
    let reading = Instant::now();
    let c = &mut s.c;
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
        if let Some(v) = h.schema.views.get(name) {
            return v.origin.clone();
        }
        let file = judged
            .iter()
            .find(|(_, n)| *n == name)
            .and_then(|(oid, _)| applied.created_by.get(oid));
        Origin::new(file.cloned().unwrap_or_else(|| h.dir.clone()), 1)
    };
    let mut schema = catalog::read(c, &judged, &origin).map_err(|e| describe(&e).0)?;
    point_at_static(&mut schema, &h.schema);
    ev.timings.catalog += reading.elapsed();

    let probing = Instant::now();
    let id = Identity {
        tenancy: &config.tenancy,
        become_tenant: &config.live.become_tenant,
    };
    // Each table's own tenant (or owner) column, as the judge reads it.
    let judge = crate::rules::policy::Judge::new(&config.tenancy);
    let service_only = |name: &QualName| {
        tenant::table_tenancy(&config.tenancy, name).is_some_and(|t| t.service_only)
    };
    let tenant_tables: Vec<QualName> = schema
        .tables
        .iter()
        .filter(|(name, t)| {
            let (column, _) = judge.column_for(std::slice::from_ref(*name));
            tenant::exemption(name, &config.tenancy).is_none()
                && !service_only(name)
                && t.column(column).is_some()
        })
        .map(|(name, _)| name.clone())
        .collect();
    // In a scratch database the history is committed: the tables are probed on a pool of
    // connections of their own (`pool.rs`); what it gives back is probed here, in order.
    let mut pooled: Vec<Option<Probe>> = vec![None; tenant_tables.len()];
    if let Some((_, name)) = &s.scratch {
        let mut db = run.base.clone();
        db.dbname(name);
        s.doing = "the isolation probes".into();
        remaining(run.deadline)?;
        if let Some(done) = pool::probe_all(&db, run.base, &tenant_tables, &id, run.deadline) {
            if let Some(why) = done.stopped {
                return Err(format!("{why} while running the isolation probes"));
            }
            pooled = done.probes;
        }
    }
    let mut probes = Vec::new();
    // The probe keeps what it reads of the catalog for this history only.
    probe::forget();
    for (name, done) in tenant_tables.into_iter().zip(pooled) {
        let p = match done {
            Some(p) => p,
            None => {
                remaining(run.deadline)?;
                s.doing = format!("the isolation probe on {name}");
                probe::probe(&mut s.c, &name, &id)
            }
        };
        probes.push((name, p));
    }
    ev.probe += probing.elapsed();
    let others = Instant::now();
    s.doing = "the self-join attempt on the membership table".into();
    // An attempt that cannot be set up (no way to make a membership row) proves nothing
    // either way: said in the notes, never an error of the check.
    let self_join = match probe::self_join(&mut s.c, &id) {
        Ok(found) => found,
        Err(why) => {
            ev.notes.push(format!(
                "history `{}`: the self-join attempt on the membership table could not be set up: {why}",
                h.dir
            ));
            None
        }
    };
    s.doing = "the storage probe of the buckets".into();
    let buckets: Vec<String> = h.schema.buckets.keys().cloned().collect();
    let storage = storage::probe(&mut s.c, &buckets, &id);
    probe::forget();
    ev.timings.probe_other += others.elapsed();
    ev.histories.push(LiveHistory {
        dir: h.dir.clone(),
        schema,
        probes,
        self_join,
        storage,
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

#[cfg(test)]
mod tests {
    use super::tx_end;

    #[test]
    fn a_files_own_transaction_control_is_told_apart() {
        assert_eq!(tx_end("commit;"), Some(true));
        assert_eq!(tx_end("END TRANSACTION;"), Some(true));
        assert_eq!(tx_end("-- done\ncommit work"), Some(true));
        assert_eq!(tx_end("rollback;"), Some(false));
        assert_eq!(tx_end("ABORT"), Some(false));
        assert_eq!(tx_end("rollback to savepoint a;"), None);
        assert_eq!(tx_end("commit prepared 'x';"), None);
        assert_eq!(tx_end("begin;"), None);
        assert_eq!(
            tx_end("start transaction isolation level serializable;"),
            None
        );
        assert_eq!(tx_end("savepoint a;"), None);
    }
}
