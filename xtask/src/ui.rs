//! Terminal niceties: colour (off with NO_COLOR or when not a terminal) and progress on
//! long steps (a spinner on a terminal, plain lines in CI or when piped; in GitHub Actions
//! each step is also a `::group::` of the log).

use std::{
    io::{IsTerminal, Write},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

/// Colour on stdout: a terminal, and NO_COLOR unset or empty.
pub fn color_stdout() -> bool {
    no_color_unset() && std::io::stdout().is_terminal()
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Are we in CI (`CI` set to anything but `false`/`0`)?
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Progress of one long step on stderr. On a terminal (and not in CI) a spinner with the
/// elapsed time; otherwise one line when it starts and one when it ends.
pub struct Progress {
    label: String,
    start: Instant,
    stop: Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>,
    /// In GitHub Actions: the phase is a foldable group of the log.
    group: Option<crate::actions::Group>,
}

impl Progress {
    pub fn start(label: &str) -> Progress {
        let group = Some(crate::actions::Group::start(label));
        let animated = std::io::stderr().is_terminal()
            && !in_ci()
            && std::env::var_os("XTASK_NO_SPINNER").is_none();
        let stop = if animated {
            let flag = Arc::new(AtomicBool::new(false));
            let f2 = flag.clone();
            let label2 = label.to_string();
            let start = Instant::now();
            let handle = thread::spawn(move || {
                const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                let mut i = 0;
                while !f2.load(Ordering::Relaxed) {
                    eprint!(
                        "\r\x1b[2K{} {label2} ({}s)",
                        FRAMES[i % FRAMES.len()],
                        start.elapsed().as_secs()
                    );
                    let _ = std::io::stderr().flush();
                    i += 1;
                    thread::sleep(Duration::from_millis(100));
                }
                eprint!("\r\x1b[2K");
            });
            Some((flag, handle))
        } else {
            eprintln!("xtask: {label} ...");
            None
        };
        Progress {
            label: label.to_string(),
            start: Instant::now(),
            stop,
            group,
        }
    }

    /// End the step with a one-line outcome.
    pub fn finish(mut self, outcome: &str) {
        self.halt();
        eprintln!(
            "xtask: {} {outcome} ({:.1}s)",
            self.label,
            self.start.elapsed().as_secs_f64()
        );
        self.group.take();
    }

    fn halt(&mut self) {
        if let Some((flag, handle)) = self.stop.take() {
            flag.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.halt();
    }
}
