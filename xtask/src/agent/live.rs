//! The live view of a codex run on stderr.
//!
//! On a terminal (not in CI): one short line per event worth seeing (agent messages,
//! commands and their exit codes, files changed), under a status line that keeps ticking —
//! a model can think for minutes without an event, and a silent terminal looks hung. In CI
//! and pipes: plain `codex: ...` lines, nothing redrawn, so logs stay readable.

use std::{
    io::Write,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use super::events::{self, Event, Item};

/// How the live view looks: compact on a terminal, plain lines in CI and pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Compact,
    Plain,
}

impl View {
    pub fn detect() -> View {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() && !crate::ui::in_ci() {
            View::Compact
        } else {
            View::Plain
        }
    }
}

struct Screen {
    out: Box<dyn Write + Send>,
    view: View,
    color: bool,
    /// A status line is on screen (and must be cleared before the next line).
    status_shown: bool,
    start: Instant,
    commands: usize,
    files: usize,
    frame: usize,
}

impl Screen {
    fn clear_status(&mut self) {
        if self.status_shown {
            let _ = write!(self.out, "\r\x1b[2K");
            self.status_shown = false;
        }
    }

    fn draw_status(&mut self) {
        const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        self.frame += 1;
        let _ = write!(
            self.out,
            "\r\x1b[2K{} codex working · {}s · {} command(s) · {} file(s)",
            FRAMES[self.frame % FRAMES.len()],
            self.start.elapsed().as_secs(),
            self.commands,
            self.files
        );
        let _ = self.out.flush();
        self.status_shown = true;
    }

    fn line(&mut self, text: &str) {
        for l in text.lines() {
            let _ = if self.color {
                writeln!(self.out, "\x1b[2mcodex\x1b[0m {l}")
            } else {
                writeln!(self.out, "codex: {l}")
            };
        }
    }
}

/// The live view of one run. Dropping it stops the ticker and clears the status line.
pub struct Live {
    screen: Arc<Mutex<Screen>>,
    ticker: Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>,
}

impl Live {
    /// `animate`: keep a ticking status line (compact view only).
    pub fn start(view: View, out: Box<dyn Write + Send>, color: bool, animate: bool) -> Live {
        let screen = Arc::new(Mutex::new(Screen {
            out,
            view,
            color: color && view == View::Compact,
            status_shown: false,
            start: Instant::now(),
            commands: 0,
            files: 0,
            frame: 0,
        }));
        let ticker = (animate && view == View::Compact).then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (s, screen) = (stop.clone(), screen.clone());
            let handle = thread::spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    if let Ok(mut sc) = screen.lock() {
                        sc.draw_status();
                    }
                    thread::sleep(Duration::from_millis(150));
                }
            });
            (stop, handle)
        });
        Live { screen, ticker }
    }

    /// The view for this process: stderr, compact on a terminal (animated unless
    /// `XTASK_NO_SPINNER` is set), colour unless `NO_COLOR`.
    pub fn stderr() -> Live {
        let view = View::detect();
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let animate = std::env::var_os("XTASK_NO_SPINNER").is_none();
        Live::start(view, Box::new(std::io::stderr()), color, animate)
    }

    /// Show one event (if it is worth a line) and count what the status line counts.
    pub fn event(&self, ev: &Event) {
        let Ok(mut sc) = self.screen.lock() else {
            return;
        };
        match ev {
            Event::ItemCompleted(Item::Command { .. }) => sc.commands += 1,
            Event::ItemCompleted(Item::FileChange { changes, .. }) => sc.files += changes.len(),
            _ => {}
        }
        let Some(text) = events::live_line(ev, sc.view == View::Compact) else {
            return;
        };
        let redraw = sc.status_shown;
        sc.clear_status();
        sc.line(&text);
        if redraw {
            sc.draw_status();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.ticker.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = handle.join();
        }
        if let Ok(mut sc) = self.screen.lock() {
            sc.clear_status();
            let _ = sc.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn command_done(code: i32) -> Event {
        Event::ItemCompleted(Item::Command {
            id: "item_1".into(),
            command: "pnpm test".into(),
            exit_code: Some(code),
            status: "completed".into(),
            output: String::new(),
        })
    }

    #[test]
    fn plain_view_is_lines_only() {
        let buf = Buf::default();
        let live = Live::start(View::Plain, Box::new(buf.clone()), true, true);
        live.event(&Event::ItemCompleted(Item::AgentMessage("Done.".into())));
        live.event(&command_done(1));
        live.event(&Event::TurnStarted);
        drop(live);
        assert_eq!(buf.text(), "codex: agent: Done.\ncodex:   → exit 1\n");
    }

    #[test]
    fn compact_view_keeps_a_status_line_under_the_events() {
        let buf = Buf::default();
        let live = Live::start(View::Compact, Box::new(buf.clone()), false, true);
        thread::sleep(Duration::from_millis(200));
        live.event(&command_done(0));
        live.event(&Event::ItemCompleted(Item::FileChange {
            changes: vec![("/r/a.sql".into(), "add".into())],
            status: "completed".into(),
        }));
        thread::sleep(Duration::from_millis(200));
        drop(live);
        let text = buf.text();
        assert!(
            text.contains("\r\x1b[2K⠙ codex working · 0s · 0 command(s) · 0 file(s)"),
            "{text:?}"
        );
        assert!(
            text.contains("\r\x1b[2Kcodex:   → exit 0\n"),
            "the status line is cleared first: {text:?}"
        );
        assert!(text.contains("codex: add /r/a.sql\n"), "{text:?}");
        assert!(text.contains("· 1 command(s) · 1 file(s)"), "{text:?}");
        assert!(text.ends_with("\r\x1b[2K"), "cleared at the end: {text:?}");
    }
}
