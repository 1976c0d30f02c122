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
//!
//! Start-up is mostly `initdb` (its bootstrap is CPU work, ~1 s). The first run keeps what
//! `initdb` made, never started, as a template under the build's `target/` directory
//! (`target/xtask-pg-template/<key>`, the key naming the `initdb` binary, its version, the
//! account and the options); later runs copy it into their own fresh directory instead of
//! running `initdb` again. The copy is a cluster no server has run on: as fresh as a new
//! `initdb`. Any doubt (no `target/`, an incomplete template, a failed copy) falls back to
//! `initdb`. The directory goes on `/dev/shm` when `TMPDIR` is not set and it is a tmpfs with
//! room (a migration history creates thousands of files: on disk that is most of applying
//! it), else in the temporary directory.

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
        let template = Template::find(&initdb, &account);
        let copied = template
            .as_ref()
            .is_some_and(|t| t.copy_to(&account, &data));
        if !copied {
            initdb_into(&account, &initdb, &dir, &data)?;
            if let Some(t) = &template {
                t.keep(&account, &data);
            }
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
                // A template no server starts from is not kept for the next run.
                if let Some(t) = template.as_ref().filter(|_| copied) {
                    let _ = fs::remove_dir_all(&t.dir);
                }
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

/// The options of every `initdb` of ours (the template's key includes them).
const INITDB_OPTIONS: [&str; 9] = [
    "-U",
    "postgres",
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
    "--no-instructions",
];

/// `initdb` into `data`; its output in `dir/initdb.log`.
fn initdb_into(account: &Account, initdb: &Path, dir: &Path, data: &Path) -> Result<(), String> {
    let log = dir.join("initdb.log");
    let out = fs::File::create(&log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let status = account
        .command(initdb)
        .args(["-D"])
        .arg(data)
        .args(INITDB_OPTIONS)
        .current_dir(dir)
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
    Ok(())
}

/// An `initdb` output kept under `target/` (see the module's comment).
struct Template {
    /// `target/xtask-pg-template`.
    root: PathBuf,
    /// `root/<key>`: complete when it exists (made elsewhere, then renamed into place).
    dir: PathBuf,
}

impl Template {
    /// The template for this `initdb` and account, when there is a `target/` to keep it in
    /// (it need not exist yet).
    fn find(initdb: &Path, account: &Account) -> Option<Template> {
        let exe = std::env::current_exe().ok()?;
        let target = exe
            .ancestors()
            .find(|d| d.file_name().is_some_and(|n| n == "target"))?
            .to_path_buf();
        let version = Command::new(initdb)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())?
            .stdout;
        let meta = fs::metadata(initdb).ok()?;
        let key = format!(
            "{}\n{}\n{:?}\n{:?}\n{}",
            initdb.display(),
            String::from_utf8_lossy(&version).trim(),
            meta.modified().ok(),
            account.ids,
            INITDB_OPTIONS.join(" ")
        );
        let root = target.join("xtask-pg-template");
        let dir = root.join(format!("{:016x}", fnv(key.as_bytes())));
        Some(Template { root, dir })
    }

    /// Copy the template into `data` (which does not exist yet), as the server's account.
    fn copy_to(&self, account: &Account, data: &Path) -> bool {
        let src = self.dir.join("data");
        if !src.join("PG_VERSION").is_file() || src.join("postmaster.pid").exists() {
            return false;
        }
        let Some(cp) = find_cp() else { return false };
        let ok = account
            .command(&cp)
            .arg("-a")
            .arg(&src)
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = fs::remove_dir_all(data);
        }
        ok
    }

    /// Keep a copy of a fresh `initdb` output (not yet started) as the template; best effort.
    fn keep(&self, account: &Account, data: &Path) {
        if self.dir.exists() || fs::create_dir_all(&self.root).is_err() {
            return;
        }
        let Ok(tmp) = make_dir_in(&self.root, ".tmp-") else {
            return;
        };
        let made = account.hand_over(&tmp).is_ok()
            && find_cp().is_some_and(|cp| {
                account
                    .command(&cp)
                    .arg("-a")
                    .arg(data)
                    .arg(tmp.join("data"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
        // Into place in one step: a template is complete or absent (another run may have
        // put one there first: ours goes).
        if !made || fs::rename(&tmp, &self.dir).is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
    }
}

fn find_cp() -> Option<PathBuf> {
    ["/bin/cp", "/usr/bin/cp"]
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))
}

/// FNV-1a: a short, stable name for the template's key.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Where the cluster's directory goes: `TMPDIR` when set; else `/dev/shm` when it is a
/// directory with at least 1 GiB free (a tmpfs: creating the relation files of a history
/// costs no disk); else the system's temporary directory.
fn temp_base() -> PathBuf {
    if std::env::var_os("TMPDIR").is_some() {
        return std::env::temp_dir();
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && free_bytes(shm).is_some_and(|n| n >= 1 << 30) {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value for the out parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

fn make_temp_dir() -> Result<PathBuf, String> {
    make_dir_in(&temp_base(), &format!("xtask-pg-{}-", std::process::id()))
}

/// A new directory `<base>/<prefix><unique>`, only ours (0700).
fn make_dir_in(base: &Path, prefix: &str) -> Result<PathBuf, String> {
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("{prefix}{nanos:x}{attempt}"));
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
