//! A memory budget for one piece of work on one thread.
//!
//! oxc's parser reads some hostile inputs speculatively, again and again: a 1 KB file of
//! `a < (` chains grows its arena exponentially until the machine runs out of memory. oxc
//! has no limit of its own, so the process's allocator keeps one: while [`within`] runs a
//! job on a thread, every allocation on that thread is counted, and once the job's budget
//! is spent a large request (an arena chunk; never the small ones the standard library
//! cannot do without) is refused. oxc's arena turns a refused chunk into a panic, which
//! [`within`] catches and reports as [`Exhausted`]. Other threads, and this thread outside
//! [`within`], are only passed through to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests smaller than this are always served, so code that cannot handle a refusal (a
/// `Vec` growing, a `String` being formatted) never aborts the process: only arena-sized
/// chunks are refused.
const REFUSE_FROM: usize = 256 * 1024;

/// After a first refusal, requests from this size on are refused too: oxc's arena retries a
/// refused chunk at half the size down to 16 KiB, its smallest.
const RETRY_FLOOR: usize = 16 * 1024;

/// No budget on this thread.
const UNLIMITED: usize = usize::MAX;

thread_local! {
    /// Bytes the running job may still allocate ([`UNLIMITED`] outside [`within`]).
    static LEFT: Cell<usize> = const { Cell::new(UNLIMITED) };
    /// Set when a request was refused, so the job's panic is ours to report.
    static REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// The process's allocator: the system's, with the per-thread budget of [`within`].
pub struct Budgeted;

#[global_allocator]
static ALLOCATOR: Budgeted = Budgeted;

/// Jobs running in [`within`] on any thread. While there is none (`check-migrations`, every
/// thread outside the code reader), an allocation is passed through after this one load,
/// without the thread-local look-ups: every allocation of the process comes through here.
static BUDGETED_JOBS: AtomicUsize = AtomicUsize::new(0);

/// Whether `bytes` more may be allocated on this thread; counts them if so.
#[inline(always)]
fn take(bytes: usize) -> bool {
    // A job counts itself before its budget is set, on its own thread: that thread never
    // misses it. Other threads have no budget to keep.
    if BUDGETED_JOBS.load(Ordering::Relaxed) == 0 {
        return true;
    }
    take_budgeted(bytes)
}

fn take_budgeted(bytes: usize) -> bool {
    LEFT.try_with(|left| {
        let now = left.get();
        // A panic (ours or another) is being reported: its hook may need large buffers (a
        // backtrace's debug info) and must not meet a refusal, which would abort.
        if now == UNLIMITED || std::thread::panicking() {
            return true;
        }
        let refused_before = REFUSED.try_with(|r| r.get()).unwrap_or(false);
        // Once refused, the arena asks again for half as much, down to its smallest chunk:
        // those are refused too, so it gives up instead of going on in small chunks.
        let floor = if refused_before {
            RETRY_FLOOR
        } else {
            REFUSE_FROM
        };
        if bytes > now && bytes >= floor {
            let _ = REFUSED.try_with(|r| r.set(true));
            return false;
        }
        left.set(now.saturating_sub(bytes));
        true
    })
    .unwrap_or(true)
}

// SAFETY: every method forwards to `System` with the caller's layout unchanged; refusing
// (returning null) is allowed by `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for Budgeted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !take(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !take(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !take(new_size.saturating_sub(layout.size())) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The job allocated more than its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    pub budget: usize,
}

/// Run `job` on this thread with at most `budget` bytes of allocations (counted as
/// requested, not net of what it frees). A job whose large request is refused ends in
/// `Err(Exhausted)`; any other panic goes on unwinding.
pub fn within<T>(budget: usize, job: impl FnOnce() -> T) -> Result<T, Exhausted> {
    silence_refusals();
    BUDGETED_JOBS.fetch_add(1, Ordering::SeqCst);
    let outer = LEFT.with(|l| l.replace(budget.min(UNLIMITED - 1)));
    let outer_refused = REFUSED.with(|r| r.replace(false));
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    let refused = REFUSED.with(|r| r.replace(outer_refused));
    LEFT.with(|l| l.set(outer));
    BUDGETED_JOBS.fetch_sub(1, Ordering::SeqCst);
    match ran {
        Ok(out) => Ok(out),
        Err(_) if refused => Err(Exhausted { budget }),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The panic a refusal causes is expected and reported as [`Exhausted`]: keep the default
/// hook from printing it; every other panic is printed as before.
fn silence_refusals() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if REFUSED.try_with(|r| r.get()).unwrap_or(false) {
                return;
            }
            previous(info)
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_within_its_budget_runs() {
        let out = within(1 << 20, || vec![0u8; 1000].len());
        assert_eq!(out, Ok(1000));
    }

    #[test]
    fn a_large_request_past_the_budget_is_refused_and_reported() {
        let out = within(1 << 20, || {
            let mut chunks = Vec::new();
            for _ in 0..64 {
                let mut v: Vec<u8> = Vec::new();
                if v.try_reserve_exact(REFUSE_FROM * 2).is_err() {
                    panic!("out of memory");
                }
                chunks.push(v);
            }
            chunks.len()
        });
        assert_eq!(out, Err(Exhausted { budget: 1 << 20 }));
        // The thread is unlimited again afterwards.
        let mut v: Vec<u8> = Vec::new();
        assert!(v.try_reserve_exact(8 << 20).is_ok());
    }

    #[test]
    fn small_requests_are_never_refused() {
        let out = within(1024, || {
            (0..1000).map(|i| i.to_string()).collect::<Vec<_>>().len()
        });
        assert_eq!(out, Ok(1000));
    }

    #[test]
    fn other_panics_keep_unwinding() {
        let caught = std::panic::catch_unwind(|| within(1 << 20, || panic!("not ours")));
        assert!(caught.is_err());
    }
}
