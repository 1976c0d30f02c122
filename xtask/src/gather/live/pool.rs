//! The isolation probes of one history, run concurrently: a few connections of their own to
//! the scratch database the history was applied to (committed there, so every connection
//! sees it), each table's probe in a transaction of its own that is rolled back. A probe
//! starts from the database as the history left it, as it does on the one connection of the
//! rolled-back transaction (where each probe's savepoint is rolled back before the next), so
//! the results are the same; the database is left as found.
//!
//! Each connection has a [`Watch`] of its own (deadline, Ctrl-C), its statements run with the
//! same limits and search path as the history's session after the migrations. A table whose
//! probe lost a lock wait to another probe (`deadlock detected`, a lock timeout) is given
//! back to the caller to probe again on its own connection, so two probes never decide each
//! other's result.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex, OnceLock,
    },
    time::Instant,
};

use postgres::{Client, NoTls};

use crate::schema::QualName;

use super::{
    probe::{self, Identity, Probe},
    watch::Watch,
};

/// Connections for the probes: a few, not more than the tables (each is a Postgres backend;
/// the throwaway cluster allows 20).
pub const SIZE: usize = 4;

/// The outcome of the pool: each table's probe (in the order given), `None` for a table to
/// probe again alone; or why the pool stopped (the watch fired: deadline or interrupt).
pub struct Probed {
    pub probes: Vec<Option<Probe>>,
    pub stopped: Option<&'static str>,
}

/// Probe `tables` on up to [`SIZE`] connections made from `db` (the scratch database); `admin`
/// is how a watch ends a backend. `None` when no connection could be set up (the caller
/// probes on its own connection).
pub fn probe_all(
    db: &postgres::Config,
    admin: &postgres::Config,
    tables: &[QualName],
    id: &Identity,
    deadline: Instant,
) -> Option<Probed> {
    let n = SIZE.min(tables.len());
    if n < 2 {
        return None;
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Probe>>> = Mutex::new(vec![None; tables.len()]);
    let stopped: Mutex<Option<&'static str>> = Mutex::new(None);
    let working = AtomicUsize::new(0);
    // The catalog facts of every table, read once by the first connection, for all.
    let facts: OnceLock<Option<probe::Facts>> = OnceLock::new();
    std::thread::scope(|scope| {
        for _ in 0..n {
            scope.spawn(|| {
                let Some((mut c, watch)) = open(db, admin, deadline) else {
                    return;
                };
                working.fetch_add(1, Ordering::SeqCst);
                probe::forget();
                if let Some(f) = facts.get_or_init(|| probe::read_facts(&mut c, tables, id)) {
                    probe::seed(f);
                }
                // The identities made once, in a transaction that holds every table's probe
                // (under its savepoint) that may share them; the others after it, alone.
                let mut shared = share(&mut c, id);
                let mut alone = Vec::new();
                let mut queue = (0..).map(|_| next.fetch_add(1, Ordering::SeqCst));
                loop {
                    if stopped.lock().map(|s| s.is_some()).unwrap_or(true)
                        || crate::proc::interrupted()
                        || Instant::now() >= deadline
                    {
                        break;
                    }
                    let i = match &shared {
                        Some(_) => queue.next(),
                        None if !alone.is_empty() => Some(alone.remove(0)),
                        None => queue.next(),
                    };
                    let Some(i) = i else { break };
                    let Some(table) = tables.get(i) else {
                        // The queue is done: the tables set aside are probed alone.
                        if shared.take().is_some() && c.batch_execute("rollback").is_err() {
                            break;
                        }
                        if alone.is_empty() {
                            break;
                        }
                        continue;
                    };
                    let found = match &shared {
                        Some(sh) if probe::shares(&mut c, table, id, sh) => {
                            let (p, ended) = probe::probe_in(&mut c, table, id, Some(sh));
                            if !ended {
                                // The transaction is not as the probe found it: this table
                                // and the rest are probed alone.
                                shared = None;
                                let _ = c.batch_execute("rollback");
                                alone.push(i);
                                continue;
                            }
                            (!matches!(&p, Probe::Skipped(why) if contended(why))).then_some(p)
                        }
                        Some(_) => {
                            alone.push(i);
                            continue;
                        }
                        None => one(&mut c, table, id),
                    };
                    if let Some(why) = watch.fired() {
                        if let Ok(mut s) = stopped.lock() {
                            *s = Some(why);
                        }
                        break;
                    }
                    if let (Some(p), Ok(mut r)) = (found, results.lock()) {
                        r[i] = Some(p);
                    }
                    if c.is_closed() {
                        break;
                    }
                }
                probe::forget();
                drop(watch);
            });
        }
    });
    if working.load(Ordering::SeqCst) == 0 {
        return None;
    }
    Some(Probed {
        probes: results.into_inner().unwrap_or_else(|e| e.into_inner()),
        stopped: stopped.into_inner().unwrap_or_else(|e| e.into_inner()),
    })
}

/// A connection for the probes, set up as the history's session is after the migrations:
/// the search path that holds nothing of theirs, the statement and lock limits, the check
/// that we are still there; and its watch.
fn open(
    db: &postgres::Config,
    admin: &postgres::Config,
    deadline: Instant,
) -> Option<(Client, Watch)> {
    let mut c = db.connect(NoTls).ok()?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    let ms = left.as_millis().max(1);
    c.batch_execute(&format!(
        "set search_path = pg_catalog, pg_temp; set statement_timeout = {ms}; set lock_timeout = {ms}; \
         select set_config(name, '1000', false) from pg_catalog.pg_settings \
          where name = 'client_connection_check_interval'"
    ))
    .ok()?;
    let watch = Watch::start(&mut c, admin, deadline).ok()?;
    Some((c, watch))
}

/// The transaction of the shared identities ([`probe::share`]), begun and with them made;
/// `None` (and no transaction) when they cannot be made, or for the tests' step by step.
fn share(c: &mut Client, id: &Identity) -> Option<probe::Shared> {
    if probe::STEP_BY_STEP.load(Ordering::SeqCst) {
        return None;
    }
    c.batch_execute("begin").ok()?;
    let shared = probe::share(c, id);
    if shared.is_none() {
        let _ = c.batch_execute("rollback");
    }
    shared
}

/// One table's probe in a transaction of its own, rolled back. `None` when it must be run
/// again alone: it lost a lock wait to another probe, or the transaction could not be had.
fn one(c: &mut Client, table: &QualName, id: &Identity) -> Option<Probe> {
    c.batch_execute("begin").ok()?;
    let p = probe::probe(c, table, id);
    let ended = c.batch_execute("rollback");
    if ended.is_err() {
        return None;
    }
    match &p {
        Probe::Skipped(why) if contended(why) => None,
        _ => Some(p),
    }
}

/// A probe error that comes from another probe running at the same time, not from the table.
fn contended(why: &str) -> bool {
    why.contains("deadlock detected")
        || why.contains("canceling statement due to lock timeout")
        || why.contains("could not serialize access")
}
