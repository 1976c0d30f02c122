//! Support for the end-to-end tests of `backend-stage`: the REAL codex CLI (installed once
//! from npm into `target/xtask-cache`), a scripted model server on 127.0.0.1 that speaks the
//! streaming Responses API (`../shared/reference/codex-exec.md`), a codex home pointing at it,
//! and a temp git copy of the example monorepo.
//!
//! Without npm or the registry the tests are skipped with the reason printed; with `CI=true`
//! they fail instead, so CI can never go green by skipping them. Temp directories, git and
//! the cross-process lock come from `common`.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::common::{copy_tree, git, lock, unavailable, workspace, TempDir};

pub const CODEX_VERSION: &str = "0.169.0";

/// The codex binary, installed with npm into `target/xtask-cache/codex-<version>` on first
/// use (under a cross-process lock, so parallel tests install it once).
pub fn codex() -> Option<PathBuf> {
    static INSTALL: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);
    let mut guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let _lock = lock("codex-install");
        *guard = Some(install_codex());
    }
    match guard.as_ref().unwrap() {
        Ok(p) => Some(p.clone()),
        Err(why) => unavailable(why),
    }
}

fn install_codex() -> Result<PathBuf, String> {
    let dir = workspace()
        .join("target/xtask-cache")
        .join(format!("codex-{CODEX_VERSION}"));
    let bin = dir.join("node_modules/.bin/codex");
    let works = |bin: &Path| {
        Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CODEX_VERSION))
    };
    if works(&bin) {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("@openai/codex@{CODEX_VERSION}"))
        .output()
        .map_err(|e| format!("npm is not available ({e}); install Node.js and npm"))?;
    if !out.status.success() {
        return Err(format!(
            "`npm install @openai/codex@{CODEX_VERSION}` failed (no registry?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if works(&bin) {
        Ok(bin)
    } else {
        Err(format!("{} does not run after npm install", bin.display()))
    }
}

/// A git copy of the example monorepo (without node_modules), one commit on `main`.
pub fn example_repo(name: &str) -> Option<TempDir> {
    let src = workspace().join("examples/dashboard");
    if !src.join("CLAUDE.md").is_file() {
        return unavailable(&format!(
            "the example monorepo is missing: {}",
            src.display()
        ));
    }
    let t = TempDir::new(name);
    copy_tree(&src, t.path());
    git(t.path(), &["init", "-q", "-b", "main"]);
    git(t.path(), &["add", "-A"]);
    git(t.path(), &["commit", "-q", "-m", "example"]);
    Some(t)
}

// ---------------------------------------------------------------------------------------
// The scripted model server.

/// What the server answers to the n-th `POST /v1/responses`.
#[derive(Debug, Clone)]
pub enum Reply {
    /// One model turn: these output items, then `response.completed` with usage.
    Turn(Vec<Value>),
    /// An HTTP error status with this body.
    Status(u16, String),
    /// Accept, read the request, never answer (until the server stops).
    Hang,
}

/// A tool call that makes codex run a shell command.
pub fn shell(call_id: &str, cmd: &str) -> Value {
    json!({"type": "function_call", "call_id": call_id, "name": "exec_command",
           "arguments": json!({"cmd": cmd}).to_string()})
}

/// The model's final answer.
pub fn message(text: &str) -> Value {
    json!({"type": "message", "role": "assistant", "id": "msg_1",
           "content": [{"type": "output_text", "text": text}]})
}

pub struct ModelServer {
    pub port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl ModelServer {
    /// Serve `script` on 127.0.0.1 (a free port). The server stops when dropped, and by
    /// itself after `lifetime` in any case.
    pub fn start(script: Vec<Reply>, lifetime: Duration) -> ModelServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + lifetime;
        let script = Arc::new(script);
        let counter = Arc::new(AtomicUsize::new(0));
        let accept = {
            let (requests, stop) = (requests.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let (requests, stop, script, counter) = (
                                requests.clone(),
                                stop.clone(),
                                script.clone(),
                                counter.clone(),
                            );
                            thread::spawn(move || {
                                let _ = serve(conn, &requests, &stop, deadline, &script, &counter);
                            });
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        ModelServer {
            port,
            requests,
            stop,
            accept: Some(accept),
        }
    }

    /// The JSON bodies of every `POST /v1/responses`, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    requests: &Mutex<Vec<Value>>,
    stop: &AtomicBool,
    deadline: Instant,
    script: &[Reply],
    counter: &AtomicUsize,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    // Request line and headers.
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let request_line = line.trim().to_string();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let body = if chunked {
        read_chunked(&mut reader)?
    } else {
        let mut b = vec![0; length];
        reader.read_exact(&mut b)?;
        b
    };
    if !request_line.starts_with("POST ") || !request_line.contains("/responses") {
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
    }
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    requests.lock().unwrap().push(json);
    let reply = script.get(n).cloned().unwrap_or_else(|| {
        Reply::Status(
            500,
            format!("the test script has no reply for request {}", n + 1),
        )
    });
    match reply {
        Reply::Status(code, text) => {
            let head = format!(
                "HTTP/1.1 {code} Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                text.len()
            );
            out.write_all(head.as_bytes())?;
            out.write_all(text.as_bytes())?;
        }
        Reply::Hang => {
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
        }
        Reply::Turn(items) => {
            out.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
            )?;
            let id = format!("resp_{}", n + 1);
            let mut events = vec![json!({"type": "response.created", "response": {"id": id}})];
            for item in items {
                events.push(json!({"type": "response.output_item.done", "item": item}));
            }
            events.push(json!({"type": "response.completed", "response": {"id": id,
                "usage": {"input_tokens": 100 + n, "input_tokens_details": {"cached_tokens": 10},
                          "output_tokens": 20, "output_tokens_details": null, "total_tokens": 120 + n}}}));
            for ev in events {
                let kind = ev["type"].as_str().unwrap().to_string();
                out.write_all(format!("event: {kind}\ndata: {ev}\n\n").as_bytes())?;
            }
        }
    }
    out.flush()
}

fn read_chunked(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size)?;
        let n =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk)?;
        if n == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

/// The texts of the user messages of one request, in order.
pub fn user_texts(request: &Value) -> Vec<String> {
    request["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "message" && i["role"] == "user")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Running backend-stage against it.

/// A codex home whose config points at the model server.
pub fn codex_home(port: u16) -> TempDir {
    let home = TempDir::new("codex-home");
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            r#"model = "mock-model"
model_provider = "mock"

[model_providers.mock]
name = "Mock"
base_url = "http://127.0.0.1:{port}/v1"
env_key = "MOCK_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"#
        ),
    )
    .unwrap();
    home
}

/// `xtask backend-stage` with codex on PATH and the codex home set.
pub fn backend_stage(codex: &Path, home: &Path, repo: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![codex.parent().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    cmd.current_dir(repo)
        .arg("backend-stage")
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("PATH", std::env::join_paths(dirs).unwrap())
        .env("CODEX_HOME", home)
        .env("MOCK_API_KEY", "test-key")
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("XTASK_DATABASE_URL")
        .env_remove("CODEX_API_KEY")
        .env_remove("OPENAI_API_KEY");
    cmd
}

/// Run with a hard limit, so a hung child fails the test instead of hanging the suite.
pub fn run_with_stdin(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> (Output, Duration) {
    use std::process::Stdio;
    let start = Instant::now();
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("xtask binary runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let pid = child.id();
    let watchdog = thread::spawn(move || {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        // SIGTERM lets xtask end codex's process group before it goes.
        // SAFETY: signalling a child we started; at worst the pid is already gone.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    });
    let out = child.wait_with_output().unwrap();
    let _ = watchdog.join();
    (out, start.elapsed())
}

/// Processes still alive whose environment carries `CODEX_HOME=<home>`: codex, or anything
/// it started, left behind by the run.
pub fn leftovers(home: &Path) -> Vec<String> {
    let needle = format!("CODEX_HOME={}", home.display()).into_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !env.split(|&b| b == 0).any(|kv| kv == needle.as_slice()) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
        {
            continue; // a zombie runs nothing
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        found.push(format!(
            "{pid}: {}",
            String::from_utf8_lossy(&cmdline).replace('\0', " ")
        ));
    }
    found
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
