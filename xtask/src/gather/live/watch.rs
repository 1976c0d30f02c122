//! Deadlines and interrupts reach the server.
//!
//! `statement_timeout` is the migration's to change (`set statement_timeout = 0`), and a
//! limit checked between statements does nothing while one runs. So a thread watches each
//! connection of the check: at the deadline, or when Ctrl-C / SIGTERM arrives, it sends
//! Postgres a cancel request for the running statement; a backend still busy a second later
//! is ended with `pg_terminate_backend` from a connection of its own.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use postgres::{Client, NoTls};

/// Why the watch stopped the statement.
pub const TIMED_OUT: &str = "the live check timed out (`[live] timeout_secs`)";
pub const INTERRUPTED: &str = "interrupted";

/// How often the watch looks, and how long a cancelled statement gets before its backend is
/// ended.
const TICK: Duration = Duration::from_millis(20);
const GRACE: Duration = Duration::from_secs(1);

pub struct Watch {
    stop: Arc<AtomicBool>,
    fired: Arc<Mutex<Option<&'static str>>>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// Watch `c` until dropped; `admin` is how to connect to end its backend.
    pub fn start(
        c: &mut Client,
        admin: &postgres::Config,
        deadline: Instant,
    ) -> Result<Watch, postgres::Error> {
        let pid: i32 = c
            .query_one("select pg_catalog.pg_backend_pid()", &[])?
            .get(0);
        let token = c.cancel_token();
        let stop = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(Mutex::new(None));
        let admin = admin.clone();
        let thread = {
            let (stop, fired) = (stop.clone(), fired.clone());
            thread::spawn(move || {
                let why = loop {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if crate::proc::interrupted() {
                        break INTERRUPTED;
                    }
                    if Instant::now() >= deadline {
                        break TIMED_OUT;
                    }
                    // Woken early when the watch is dropped (see `Drop`).
                    thread::park_timeout(TICK);
                };
                *fired.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                let _ = token.cancel_query(NoTls);
                let until = Instant::now() + GRACE;
                while Instant::now() < until {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    thread::park_timeout(TICK);
                }
                let mut admin = admin;
                admin.connect_timeout(Duration::from_secs(2));
                if let Ok(mut a) = admin.connect(NoTls) {
                    let _ = a.execute("select pg_catalog.pg_terminate_backend($1)", &[&pid]);
                }
            })
        };
        Ok(Watch {
            stop,
            fired,
            thread: Some(thread),
        })
    }

    /// Has the watch stopped the statement, and why?
    pub fn fired(&self) -> Option<&'static str> {
        *self.fired.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // At once, not at its next tick: a session's end waits for this join.
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
