//! A throwaway Postgres cluster: `initdb` into a temporary directory, `postgres` listening
//! only on a unix socket in that directory, everything removed afterwards.
//!
//! Removal does not depend on this process ending well. Before anything is created, a small
//! reaper (`sh`, in its own process group so Ctrl-C does not reach it) starts with a pipe
//! from us as its stdin. It waits for that pipe to close — we drop it when done, and the
//! kernel closes it when we exit in any way, SIGKILL included — then stops the server and
//! removes the directory. Normal shutdown goes through the same path.
//!
//! Postgres refuses to run as root: as root, `initdb` and `postgres` run as the `postgres`
//! account (the directory is handed to it), which Debian's packages create.

use std::{
    ffi::CString,
    fs,
    io::Read,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

/// The reaper: wait for stdin to close, stop the server whose pid is in `postmaster.pid`
/// (SIGQUIT: immediate shutdown, then SIGKILL), remove the directory, say so on stdout.
const REAPER: &str = r#"trap '' INT HUP TERM
dir="$1"
cat >/dev/null
pidfile="$dir/data/postmaster.pid"
if [ -f "$pidfile" ]; then
  pid=$(head -n 1 "$pidfile")
  if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    kill -KILL "$pid" 2>/dev/null
  fi
fi
rm -rf "$dir"
echo reaped
"#;

const PORT: u16 = 5432;

pub struct Cluster {
    /// The temporary directory: `data/` (the cluster) and the socket.
    pub dir: PathBuf,
    server: Option<Child>,
    /// Closing it tells the reaper to clean up.
    reaper_stdin: Option<ChildStdin>,
    reaper: Option<Child>,
    /// How long `initdb` + start took.
    pub startup: Duration,
}

/// Where a Postgres program is: PATH, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if is_executable(&p) {
                return Some(p);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let p = e.path().join("bin").join(name);
            is_executable(&p).then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The account to run the server as: ourselves, or `postgres` when we are root.
struct Account {
    ids: Option<(u32, u32)>,
}

fn account() -> Result<Account, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(Account { ids: None });
    }
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer into static storage or NULL; read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err("running as root and there is no `postgres` account to run a throwaway Postgres as (Postgres refuses to run as root): create one (`useradd --system postgres`), run as an ordinary user, or pass --database-url".into());
    }
    // SAFETY: pw is non-null and points to a valid passwd struct.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Account {
        ids: Some((uid, gid)),
    })
}

impl Account {
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.ids {
            // std drops root's supplementary groups when it changes the user id.
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn hand_over(&self, path: &Path) -> Result<(), String> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
                format!(
                    "cannot hand {} to the postgres account: {e}",
                    path.display()
                )
            })?;
        }
        Ok(())
    }
}

impl Cluster {
    /// Start a throwaway cluster, or say why one cannot be had.
    pub fn start(timeout: Duration) -> Result<Cluster, String> {
        let started = Instant::now();
        let initdb = find_program("initdb").ok_or(
            "no Postgres to be had: `initdb` is neither on PATH nor under /usr/lib/postgresql/*/bin (install the `postgresql` package, or pass --database-url)",
        )?;
        let postgres = initdb.with_file_name("postgres");
        let postgres = if is_executable(&postgres) {
            postgres
        } else {
            find_program("postgres").ok_or("`initdb` was found but `postgres` was not")?
        };
        let account = account()?;

        let dir = make_temp_dir()?;
        let mut cluster = Cluster {
            dir: dir.clone(),
            server: None,
            reaper_stdin: None,
            reaper: None,
            startup: Duration::ZERO,
        };
        // The reaper first: from here on, the directory goes whatever happens to us.
        let mut reaper = Command::new("sh")
            .arg("-c")
            .arg(REAPER)
            .arg("xtask-reaper")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                let _ = fs::remove_dir_all(&dir);
                format!("cannot start `sh` to guard the throwaway cluster: {e}")
            })?;
        cluster.reaper_stdin = reaper.stdin.take();
        cluster.reaper = Some(reaper);

        account.hand_over(&dir)?;
        let data = dir.join("data");
        let log = dir.join("initdb.log");
        let out =
            fs::File::create(&log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
        let status = account
            .command(&initdb)
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", initdb.display()))?;
        if !status.success() {
            return Err(format!(
                "initdb failed ({status}): {}",
                last_lines(&fs::read_to_string(&log).unwrap_or_default(), 5)
            ));
        }

        let server_log = dir.join("server.log");
        let out = fs::File::create(&server_log)
            .map_err(|e| format!("cannot write {}: {e}", server_log.display()))?;
        account.hand_over(&server_log)?;
        let server = account
            .command(&postgres)
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .args(["-p", &PORT.to_string()])
            .args(["-c", "listen_addresses="])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=20"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", postgres.display()))?;
        cluster.server = Some(server);

        // Ready when a connection is accepted.
        let deadline = Instant::now() + timeout.min(Duration::from_secs(30));
        loop {
            if let Some(status) = cluster
                .server
                .as_mut()
                .and_then(|s| s.try_wait().ok().flatten())
            {
                return Err(format!(
                    "the throwaway Postgres exited at start-up ({status}): {}",
                    last_lines(&fs::read_to_string(&server_log).unwrap_or_default(), 5)
                ));
            }
            if cluster.config().connect(postgres::NoTls).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the throwaway Postgres did not accept connections within {}s: {}",
                    timeout.min(Duration::from_secs(30)).as_secs(),
                    last_lines(&fs::read_to_string(&server_log).unwrap_or_default(), 5)
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        cluster.startup = started.elapsed();
        Ok(cluster)
    }

    /// How to connect as the superuser.
    pub fn config(&self) -> postgres::Config {
        let mut c = postgres::Config::new();
        c.host_path(&self.dir)
            .port(PORT)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(5));
        c
    }

    /// The same connection as a `--database-url` value (key=value form).
    pub fn url(&self) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname=postgres",
            self.dir.display()
        )
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(|s| s.id())
    }

    /// Stop the server and remove the directory; wait until both are done.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // Immediate shutdown, and reap it here: until it is waited for, the reaper's
            // `kill -0` would see it alive.
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe { libc::kill(server.id() as i32, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(server.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = server.kill();
            let _ = server.wait();
        }
        drop(self.reaper_stdin.take());
        if let Some(mut reaper) = self.reaper.take() {
            let mut said = String::new();
            if let Some(mut out) = reaper.stdout.take() {
                let _ = out.read_to_string(&mut said);
            }
            let _ = reaper.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn make_temp_dir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "xtask-pg-{}-{:x}{attempt}",
            std::process::id(),
            nanos
        ));
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| format!("cannot set permissions on {}: {e}", dir.display()))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(format!(
                    "cannot create a directory in {}: {e}",
                    base.display()
                ))
            }
        }
    }
    Err(format!("cannot create a directory in {}", base.display()))
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
