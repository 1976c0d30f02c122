//! Running child processes.
//!
//! Every child gets an argv (never a shell, so quotes and `$(...)` in a task text are inert
//! bytes), its own process group, its stdin fed and closed, and its output read on threads:
//! each line goes to the caller's sink as it arrives (live view) and is kept for the report.
//! On timeout, on Ctrl-C / SIGTERM / SIGHUP, and after the child exits, the WHOLE group is
//! ended, so no grandchild survives the run. Nor does one survive this process being killed
//! (SIGKILL, a crash): each group has a watchdog (`sh`, in a group of its own, see
//! [`WATCHDOG`]) holding a pipe from us, which the kernel closes when we die; it then ends
//! the group. `PR_SET_PDEATHSIG` would reach only the direct child, not its group.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    os::unix::process::{CommandExt, ExitStatusExt},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, Once,
    },
    thread,
    time::{Duration, Instant},
};

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives each line (without its newline) as the child prints it.
pub type Sink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

pub struct Spec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// Extra environment variables (the rest is inherited).
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment.
    pub env_remove: Vec<String>,
    /// Bytes written to stdin, which is then closed. `None`: stdin is /dev/null.
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Live view of the output; `None`: quiet (the output is still kept).
    pub sink: Option<Sink>,
}

impl Spec {
    pub fn new(argv: Vec<String>, cwd: impl Into<PathBuf>, timeout: Duration) -> Spec {
        Spec {
            argv,
            cwd: cwd.into(),
            env: Vec::new(),
            env_remove: Vec::new(),
            stdin: None,
            timeout,
            sink: None,
        }
    }
}

/// A command built with xshell's `cmd!` (argv, directory, environment), to be run here
/// with a process group, a timeout and a live view, which xshell cannot do.
impl From<xshell::Cmd<'_>> for Spec {
    fn from(cmd: xshell::Cmd<'_>) -> Spec {
        let cmd: Command = cmd.into();
        let mut argv = vec![cmd.get_program().to_string_lossy().into_owned()];
        argv.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
        let cwd = cmd
            .get_current_dir()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut spec = Spec::new(argv, cwd, Duration::from_secs(600));
        for (k, v) in cmd.get_envs() {
            let k = k.to_string_lossy().into_owned();
            match v {
                Some(v) => spec.env.push((k, v.to_string_lossy().into_owned())),
                None => spec.env_remove.push(k),
            }
        }
        spec
    }
}

/// How a child ended, with everything it printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code; `None` when the child was ended by a signal.
    pub code: Option<i32>,
    /// The signal that ended the child, if any.
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Ctrl-C or SIGTERM reached this process while the child ran.
    pub interrupted: bool,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out && !self.interrupted
    }

    /// stdout then stderr, for parsers that do not care which stream a line used.
    pub fn combined(&self) -> String {
        let mut s = self.stdout.clone();
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&self.stderr);
        s
    }

    /// The last `n` lines of the combined output.
    pub fn tail(&self, n: usize) -> String {
        let all = self.combined();
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// "exit code 1", "timed out after 5s", "killed by signal 9", ...
    pub fn describe(&self, timeout: Duration) -> String {
        if self.interrupted {
            "interrupted".into()
        } else if self.timed_out {
            format!("timed out after {}s", timeout.as_secs())
        } else if let Some(c) = self.code {
            format!("exit code {c}")
        } else {
            format!("killed by signal {}", self.signal.unwrap_or(0))
        }
    }
}

/// Why a child could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// The program is not on PATH (or the path does not exist).
    NotFound(String),
    Other(String, io::Error),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::NotFound(p) => write!(f, "`{p}` not found"),
            SpawnError::Other(p, e) => write!(f, "cannot run `{p}`: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {}

/// The watchdog of one child's group (`$1`): wait on stdin; `done` means we ended the group
/// ourselves; end of input without it means we died, so end the group: SIGTERM, then
/// SIGKILL to what is left after the grace period. It ignores the signals of a terminal or
/// a CI runner stopping us, so it outlives us for its one job.
const WATCHDOG: &str = r#"trap '' INT HUP TERM
IFS= read -r word || word=
[ "$word" = done ] && exit 0
kill -s TERM -- "-$1" 2>/dev/null || exit 0
i=0
while kill -s 0 -- "-$1" 2>/dev/null && [ "$i" -lt 40 ]; do sleep 0.05; i=$((i+1)); done
kill -s KILL -- "-$1" 2>/dev/null
exit 0
"#;

/// A running watchdog: say `done` and let it go.
struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// `None` when `sh` cannot be started: the run goes on, guarded as before (signals).
    fn start(pgid: i32) -> Option<Watchdog> {
        Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("xtask-watchdog")
            .arg(pgid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()
            .map(|child| Watchdog { child })
    }

    /// The group is ended: tell the watchdog to leave it (the pgid may be reused) and reap it.
    fn release(mut self) {
        if let Some(mut pipe) = self.child.stdin.take() {
            let _ = pipe.write_all(b"done\n");
        }
        let _ = self.child.wait();
    }
}

/// Each kept stream is capped; beyond it the oldest output is dropped (a marker says so).
const KEEP_BYTES: usize = 8 << 20;
/// How long a group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();
/// How many children (or other cleanups, see [`Busy`]) are in progress.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe work here. With children running, their wait loops see the flag
    // and end their groups; with nothing to clean up, exit at once as the default would.
    INTERRUPTED.store(true, Ordering::SeqCst);
    if ACTIVE.load(Ordering::SeqCst) == 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// While a `Busy` lives, Ctrl-C sets the interrupted flag instead of exiting, so the holder
/// can clean up (end a process group, stop a throwaway database) and then report.
pub struct Busy(());

impl Busy {
    pub fn new() -> Busy {
        install_interrupt_handler();
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        Busy(())
    }
}

impl Default for Busy {
    fn default() -> Self {
        Busy::new()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Catch SIGINT, SIGTERM and SIGHUP so running groups can be ended before this process exits.
pub fn install_interrupt_handler() {
    HANDLER.call_once(|| unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
        // A closed terminal or SSH session: stop like SIGTERM, ending the groups first.
        libc::signal(libc::SIGHUP, handler);
    });
}

/// Has Ctrl-C, SIGTERM or SIGHUP arrived?
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Start the child and wait for it, streaming and keeping its output.
pub fn run(spec: Spec) -> Result<Output, SpawnError> {
    let _busy = Busy::new();
    let program = spec.argv.first().cloned().unwrap_or_default();
    if program.is_empty() {
        return Err(SpawnError::NotFound("(empty command)".into()));
    }
    let mut cmd = Command::new(&program);
    cmd.args(&spec.argv[1..])
        .current_dir(&spec.cwd)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // Our caller's `GIT_DIR`/`GIT_WORK_TREE` would point a child's git at another
    // repository than the one it runs in (hooks run us with them set).
    for k in crate::repo::GIT_LOCAL_ENV {
        cmd.env_remove(k);
    }
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    // Output streamed to the log is the child's, not ours: in GitHub Actions it must not be
    // read as workflow commands (see `actions`). Closed after the readers are done.
    let _untrusted = spec.sink.is_some().then(crate::actions::Untrusted::begin);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SpawnError::NotFound(program.clone()),
        _ => SpawnError::Other(program.clone(), e),
    })?;
    let pgid = child.id() as i32;
    let watchdog = Watchdog::start(pgid);

    let stdin_thread = spec.stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        thread::spawn(move || {
            // A child that exits without reading gives EPIPE: not our failure.
            let _ = pipe.write_all(&bytes);
            drop(pipe);
        })
    });
    let out_thread = reader(
        child.stdout.take().expect("piped"),
        Stream::Stdout,
        spec.sink.clone(),
    );
    let err_thread = reader(
        child.stderr.take().expect("piped"),
        Stream::Stderr,
        spec.sink.clone(),
    );

    let (status, timed_out, was_interrupted) = wait(&mut child, pgid, spec.timeout);
    // The direct child is gone; whatever it left in its group goes too, so the pipes close.
    end_group(pgid);
    if let Some(w) = watchdog {
        w.release();
    }

    if let Some(t) = stdin_thread {
        let _ = t.join();
    }
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(Output {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        interrupted: was_interrupted,
        stdout,
        stderr,
        duration: start.elapsed(),
    })
}

/// Poll the child until it exits, the deadline passes, or an interrupt arrives.
fn wait(
    child: &mut Child,
    pgid: i32,
    timeout: Duration,
) -> (Option<std::process::ExitStatus>, bool, bool) {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (Some(status), false, false),
            Ok(None) => {}
            Err(_) => return (None, false, false),
        }
        let (timed_out, was_interrupted) = (Instant::now() >= deadline, interrupted());
        if timed_out || was_interrupted {
            end_group(pgid);
            return (child.wait().ok(), timed_out, was_interrupted);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// SIGTERM to the whole group, then SIGKILL to what is left after the grace period.
fn end_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
    let alive = |sig| unsafe { libc::kill(-pgid, sig) == 0 };
    if !alive(libc::SIGTERM) {
        return; // no process left in the group
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        if !alive(0) {
            return;
        }
    }
    alive(libc::SIGKILL);
}

fn reader<R: Read + Send + 'static>(
    pipe: R,
    stream: Stream,
    sink: Option<Sink>,
) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut kept = Kept::default();
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if let Some(sink) = &sink {
                        sink(stream, line);
                    }
                    kept.push(line);
                }
            }
        }
        kept.finish()
    })
}

/// Output kept in memory, capped at [`KEEP_BYTES`] by dropping the oldest lines.
#[derive(Default)]
struct Kept {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
    dropped: usize,
}

impl Kept {
    fn push(&mut self, line: &str) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line.to_string());
        while self.bytes > KEEP_BYTES && self.lines.len() > 1 {
            let old = self.lines.pop_front().expect("non-empty");
            self.bytes -= old.len() + 1;
            self.dropped += 1;
        }
    }
    fn finish(self) -> String {
        let mut s = String::with_capacity(self.bytes + 64);
        if self.dropped > 0 {
            s.push_str(&format!(
                "[... {} earlier lines dropped ...]\n",
                self.dropped
            ));
        }
        for l in self.lines {
            s.push_str(&l);
            s.push('\n');
        }
        s
    }
}

/// A sink that prints each line to stderr with a prefix, holding a lock so that the lines
/// of concurrent children do not tear. Secret-looking values are masked as in the report
/// (the log of a CI run is as public as the report).
pub fn prefixed_stderr(prefix: &str) -> Sink {
    static LOCK: Mutex<()> = Mutex::new(());
    let prefix = prefix.to_string();
    Arc::new(move |_, line| {
        let line = crate::rules::secrets::mask_text(line);
        let _guard = LOCK.lock();
        let _ = writeln!(io::stderr(), "{prefix}{line}");
    })
}

/// Find a program on PATH (or accept a path that exists).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> Spec {
        Spec::new(
            vec!["sh".into(), "-c".into(), script.into()],
            std::env::temp_dir(),
            timeout,
        )
    }

    fn alive(pid: i32) -> bool {
        // A zombie is dead for our purposes: it runs nothing and holds no pipe.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    #[test]
    fn arguments_reach_the_child_unchanged() {
        let nasty = "it's \"quoted\" `ls` $(rm -rf ~) ; echo pwned | cat && $HOME\n*";
        let out = run(Spec::new(
            vec!["printf".into(), "%s".into(), nasty.into()],
            std::env::temp_dir(),
            Duration::from_secs(10),
        ))
        .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, format!("{nasty}\n"));
    }

    #[test]
    fn stdin_is_fed_and_closed() {
        let mut spec = Spec::new(
            vec!["wc".into(), "-c".into()],
            std::env::temp_dir(),
            Duration::from_secs(10),
        );
        let big = vec![b'x'; 1 << 20];
        spec.stdin = Some(big);
        let out = run(spec).unwrap();
        assert_eq!(out.stdout.trim(), (1 << 20).to_string());
    }

    #[test]
    fn exit_code_and_both_streams_are_kept() {
        let out = run(sh(
            "echo out; echo err >&2; exit 7",
            Duration::from_secs(10),
        ))
        .unwrap();
        assert_eq!(out.code, Some(7));
        assert!(!out.success());
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.describe(Duration::from_secs(1)), "exit code 7");
    }

    #[test]
    fn lines_stream_to_the_sink_as_they_come() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let mut spec = sh("echo one; sleep 0.2; echo two >&2", Duration::from_secs(10));
        spec.sink = Some(Arc::new(move |stream, line| {
            s2.lock().unwrap().push((stream, line.to_string()))
        }));
        run(spec).unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (Stream::Stdout, "one".to_string()),
                (Stream::Stderr, "two".to_string())
            ]
        );
    }

    #[test]
    fn timeout_ends_the_whole_group_including_grandchildren() {
        // The grandchild ignores SIGTERM, so only the SIGKILL after the grace period ends it.
        let script = "trap '' TERM; (trap '' TERM; sleep 300) & echo $!; sleep 300";
        let start = Instant::now();
        let out = run(sh(script, Duration::from_millis(500))).unwrap();
        assert!(out.timed_out);
        assert!(!out.success());
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "took {:?}",
            start.elapsed()
        );
        let grandchild: i32 = out.stdout.trim().parse().expect("pid printed");
        thread::sleep(Duration::from_millis(100));
        assert!(
            !alive(grandchild),
            "grandchild {grandchild} survived the timeout"
        );
    }

    #[test]
    fn a_grandchild_left_behind_after_exit_is_ended_too() {
        // The child exits at once but its grandchild would hold the pipe open for 300 s.
        let start = Instant::now();
        let out = run(sh("sleep 300 & echo $!", Duration::from_secs(60))).unwrap();
        assert_eq!(out.code, Some(0));
        let grandchild: i32 = out.stdout.trim().parse().unwrap();
        assert!(start.elapsed() < Duration::from_secs(10));
        thread::sleep(Duration::from_millis(100));
        assert!(!alive(grandchild));
    }

    #[test]
    fn a_command_built_with_xshell_keeps_its_argv_dir_and_env() {
        let sh = xshell::Shell::new().unwrap();
        sh.change_dir(std::env::temp_dir());
        let odd = "two words $(x)";
        let script = r#"printf '%s|%s' "$1" "$XT""#;
        let spec: Spec = xshell::cmd!(sh, "sh -c {script} _ {odd}")
            .env("XT", "v")
            .into();
        assert_eq!(spec.argv[3..], ["_".to_string(), odd.to_string()]);
        let out = run(spec).unwrap();
        assert_eq!(out.stdout, format!("{odd}|v\n"));
    }

    #[test]
    fn the_watchdog_ends_the_group_when_we_vanish_and_only_then() {
        // Released: it leaves the group alone (the group is ours to end, its id may be reused).
        let mut kept = Command::new("sh")
            .args(["-c", "sleep 300"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = kept.id() as i32;
        Watchdog::start(pgid).unwrap().release();
        thread::sleep(Duration::from_millis(100));
        assert!(alive(pgid), "a released watchdog ended the group");
        end_group(pgid);
        let _ = kept.wait();
        // Its pipe closed without `done` (what our death looks like): the group goes, a
        // grandchild that ignores SIGTERM included.
        let mut doomed = Command::new("sh")
            .args(["-c", "(trap '' TERM; sleep 300) & echo $!; sleep 300"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(doomed.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        let pgid = doomed.id() as i32;
        let mut w = Watchdog::start(pgid).unwrap();
        drop(w.child.stdin.take());
        let _ = w.child.wait();
        let _ = doomed.wait();
        // SIGKILL is delivered after kill(2) returns: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        while alive(grandchild) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pgid), "the child survived");
        assert!(!alive(grandchild), "the grandchild survived");
    }

    #[test]
    fn missing_program_is_named() {
        let err = run(Spec::new(
            vec!["no-such-tool-xyz".into()],
            std::env::temp_dir(),
            Duration::from_secs(1),
        ))
        .unwrap_err();
        assert!(
            matches!(err, SpawnError::NotFound(ref p) if p == "no-such-tool-xyz"),
            "{err}"
        );
    }

    #[test]
    fn non_utf8_output_does_not_break_reading() {
        let out = run(sh("printf 'a\\377b\\n'", Duration::from_secs(5))).unwrap();
        assert_eq!(out.stdout, "a\u{fffd}b\n");
    }

    #[test]
    fn kept_output_is_capped() {
        let mut k = Kept::default();
        let line = "y".repeat(1 << 20);
        for _ in 0..20 {
            k.push(&line);
        }
        let s = k.finish();
        assert!(s.len() <= KEEP_BYTES + 100);
        assert!(s.starts_with("[... "), "{}", &s[..40]);
    }
}
