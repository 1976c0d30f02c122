//! GitHub Actions workflow commands: escaping, `::group::` per phase, and the guard that
//! keeps untrusted output (the agent's, lint's, tests') from being read as commands.
//!
//! The runner reads every line of a step's stdout and stderr; a line that starts with `::`
//! (after leading blanks) is a command: `::error::x` makes an annotation, `::add-mask::`,
//! `::stop-commands::` and others change the run. A child could print such a line on
//! purpose or by accident (a test that logs user input). While the guard is up, the log
//! holds `::stop-commands::TOKEN` … `::TOKEN::` around that output, with a TOKEN nobody can
//! guess, so nothing in between is taken as a command.
//!
//! The guard is a process-wide switch ([`protect`]): `verify`, `backend-stage` and
//! `check-migrations` turn it on with `--format github`, and always inside GitHub Actions
//! (`GITHUB_ACTIONS=true`), whatever the format: `XTASK_GITHUB=0` only stops the github
//! format from being the default there, never the guard. Every child whose output is streamed live ([`crate::proc::run`] with a
//! sink) is then wrapped; lint and tests run side by side, so the block opens with the first
//! child and closes with the last.

use std::{
    io::{self, Read, Write},
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex, OnceLock,
    },
};

static PROTECT: AtomicBool = AtomicBool::new(false);

/// Turn the log guard (and the `::group::` lines) on for the rest of this process.
pub fn protect() {
    PROTECT.store(true, Ordering::SeqCst);
}

/// Is the log guard on?
pub fn protecting() -> bool {
    PROTECT.load(Ordering::SeqCst)
}

/// The guard is on and stdout goes to the log, not into a file (`> handover.md` must get
/// the plain view, without stop-commands lines).
pub fn stdout_is_guarded_log() -> bool {
    protecting() && !fd_is_regular_file(1)
}

fn fd_is_regular_file(fd: libc::c_int) -> bool {
    // SAFETY: fstat fills the zeroed struct it is given; no other memory is touched.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFREG
    }
}

/// Inside GitHub Actions (`GITHUB_ACTIONS=true`).
pub fn in_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Escape the data part of a command (after the second `::`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a property value (`file=`, `title=`): the data escapes plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A token no child can guess: 128 bits from the kernel, else std's randomly keyed hasher
/// over the time and the pid.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let from_kernel = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !from_kernel {
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            h.write_u32(std::process::id());
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The open stop-commands block on stderr: its token and how many children are inside.
struct Block {
    token: String,
    depth: usize,
}

fn block() -> &'static Mutex<Option<Block>> {
    static BLOCK: OnceLock<Mutex<Option<Block>>> = OnceLock::new();
    BLOCK.get_or_init(|| Mutex::new(None))
}

/// While an `Untrusted` lives (and the guard is on), workflow commands on stderr are off.
/// Nested and concurrent ones share one block: the first opens it, the last closes it.
pub struct Untrusted(bool);

impl Untrusted {
    pub fn begin() -> Untrusted {
        if !protecting() {
            return Untrusted(false);
        }
        let mut b = block().lock().unwrap_or_else(|e| e.into_inner());
        match b.as_mut() {
            Some(open) => open.depth += 1,
            None => {
                let token = random_token();
                let _ = writeln!(io::stderr(), "::stop-commands::{token}");
                *b = Some(Block { token, depth: 1 });
            }
        }
        Untrusted(true)
    }
}

impl Drop for Untrusted {
    fn drop(&mut self) {
        if !self.0 {
            return;
        }
        let mut b = block().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = b.as_mut() {
            open.depth -= 1;
            if open.depth == 0 {
                let _ = writeln!(io::stderr(), "::{}::", open.token);
                let _ = io::stderr().flush();
                *b = None;
            }
        }
    }
}

/// Write `text` (which may hold lines we did not write) so that no line of it is a command.
pub fn write_untrusted(out: &mut dyn Write, text: &str, token: &str) -> io::Result<()> {
    writeln!(out, "::stop-commands::{token}")?;
    out.write_all(text.as_bytes())?;
    if !text.is_empty() && !text.ends_with('\n') {
        writeln!(out)?;
    }
    writeln!(out, "::{token}::")
}

/// A foldable `::group::` in the log for one phase, when the guard is on. GitHub does not
/// nest groups: a group opened inside another is ignored (and so is its end).
pub struct Group(bool);

static IN_GROUP: AtomicBool = AtomicBool::new(false);

impl Group {
    pub fn start(title: &str) -> Group {
        if !protecting() || IN_GROUP.swap(true, Ordering::SeqCst) {
            return Group(false);
        }
        let _ = writeln!(io::stderr(), "::group::{}", escape_data(title));
        Group(true)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.0 {
            let _ = writeln!(io::stderr(), "::endgroup::");
            IN_GROUP.store(false, Ordering::SeqCst);
        }
    }
}

/// GitHub's limit for one step's summary file.
pub const SUMMARY_LIMIT: usize = 1 << 20;

/// Append `markdown` to the step summary file at `path`, cut (with a note saying so) to what
/// is left of the 1 MiB limit after what the step already wrote there.
pub fn append_summary(path: &std::path::Path, markdown: &str) -> io::Result<()> {
    let used = std::fs::metadata(path)
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    let text = fit_summary(markdown, SUMMARY_LIMIT.saturating_sub(used));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// `markdown` cut to at most `budget` bytes, at a line end when one is near, with a note.
pub fn fit_summary(markdown: &str, budget: usize) -> String {
    if markdown.len() <= budget {
        return markdown.to_string();
    }
    let note = |shown: usize| {
        format!(
            "\n\n> **Truncated:** the handover is {} bytes; the first {shown} are shown because \
             GitHub limits a step summary to 1 MiB. The full report: run with \
             `--format json --report FILE` and keep FILE as an artifact, or see the job log.\n",
            markdown.len()
        )
    };
    let room = budget.saturating_sub(note(markdown.len()).len());
    let mut cut = room.min(markdown.len());
    while !markdown.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Some(nl) = markdown[..cut].rfind('\n') {
        if cut - nl < 4096 {
            cut = nl + 1;
        }
    }
    let mut s = markdown[..cut].to_string();
    s.push_str(&note(cut));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_properties_are_escaped() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(
            escape_property("a:b,c%\nd"),
            "a%3Ab%2Cc%25%0Ad",
            "properties escape : and , too"
        );
        // `%` first, so an escape is never escaped twice.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn tokens_are_long_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn untrusted_text_is_wrapped() {
        let mut out = Vec::new();
        write_untrusted(&mut out, "::error::pwned", "T0K").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "::stop-commands::T0K\n::error::pwned\n::T0K::\n"
        );
    }

    #[test]
    fn a_long_summary_is_cut_at_the_limit_with_a_note() {
        let line = "| item | evidence ✔ |\n";
        let md = line.repeat(100_000);
        let cut = fit_summary(&md, SUMMARY_LIMIT);
        assert!(cut.len() <= SUMMARY_LIMIT, "{}", cut.len());
        assert!(cut.len() > SUMMARY_LIMIT - 8192);
        assert!(cut.contains("**Truncated:**"));
        assert!(cut.contains(&format!("the handover is {} bytes", md.len())));
        let body = cut.split("\n\n> **Truncated:**").next().unwrap();
        assert!(body.ends_with('\n'), "cut at a line end");
        // Room already used by the step counts.
        let small = fit_summary(&md, 10_000);
        assert!(small.len() <= 10_000);
        assert_eq!(fit_summary("short\n", 100), "short\n");
    }
}
