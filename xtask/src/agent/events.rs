//! Reading `codex exec --json` output: one JSON event per line
//! (`../shared/reference/codex-exec.md` § JSONL events).
//!
//! Events are read as loose JSON, not as a derived struct, so a field codex adds or an event
//! type we do not know never breaks a run: unknown things are skipped, and the full log is
//! kept on disk anyway.

use std::path::Path;

use serde_json::Value;

use crate::model::{AgentCommand, ClaimedFile, TokenUsage};

/// The events we act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ThreadStarted(String),
    TurnStarted,
    TurnCompleted(TokenUsage),
    /// Fatal: the turn ended with this message.
    TurnFailed(String),
    /// A top-level `error` event: non-fatal (retries, "Reconnecting... 2/5").
    Error(String),
    ItemStarted(Item),
    ItemCompleted(Item),
    /// Anything else (`item.updated`, event types added later).
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    AgentMessage(String),
    Reasoning,
    Command {
        id: String,
        command: String,
        exit_code: Option<i32>,
        status: String,
        output: String,
    },
    FileChange {
        changes: Vec<(String, String)>,
        status: String,
    },
    Error(String),
    Other(String),
}

/// Parse one line of stdout; `None` for a line that is not a JSON object with a `type`.
pub fn parse(line: &str) -> Option<Event> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some(match v.get("type")?.as_str()? {
        "thread.started" => Event::ThreadStarted(s(&v, "thread_id")),
        "turn.started" => Event::TurnStarted,
        "turn.completed" => Event::TurnCompleted(usage(v.get("usage"))),
        "turn.failed" => Event::TurnFailed(
            v.get("error")
                .map(|e| s(e, "message"))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "the turn failed (no message)".into()),
        ),
        "error" => Event::Error(s(&v, "message")),
        "item.started" => Event::ItemStarted(item(v.get("item")?)),
        "item.completed" => Event::ItemCompleted(item(v.get("item")?)),
        _ => Event::Other,
    })
}

fn usage(v: Option<&Value>) -> TokenUsage {
    let n = |k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    TokenUsage {
        input_tokens: n("input_tokens"),
        cached_input_tokens: n("cached_input_tokens"),
        output_tokens: n("output_tokens"),
        reasoning_output_tokens: n("reasoning_output_tokens"),
    }
}

fn item(v: &Value) -> Item {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match v.get("type").and_then(Value::as_str).unwrap_or("") {
        "agent_message" => Item::AgentMessage(s("text")),
        "reasoning" => Item::Reasoning,
        "command_execution" => Item::Command {
            id: s("id"),
            command: s("command"),
            exit_code: v.get("exit_code").and_then(Value::as_i64).map(|c| c as i32),
            status: s("status"),
            output: s("aggregated_output"),
        },
        "file_change" => Item::FileChange {
            changes: v
                .get("changes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|c| {
                            let f = |k| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                            (f("path"), f("kind"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            status: s("status"),
        },
        "error" => Item::Error(s("message")),
        other => Item::Other(other.to_string()),
    }
}

/// What one run's events add up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub thread_id: Option<String>,
    pub messages: Vec<String>,
    pub commands: Vec<AgentCommand>,
    /// (absolute path as codex gave it, kind), completed changes only, first report wins.
    pub files: Vec<(String, String)>,
    pub usage: Option<TokenUsage>,
    pub errors: Vec<String>,
    pub turn_failed: Option<String>,
    /// The item id of each entry of `commands`.
    command_ids: Vec<String>,
}

impl Transcript {
    pub fn push(&mut self, ev: &Event) {
        match ev {
            Event::ThreadStarted(id) if !id.is_empty() => self.thread_id = Some(id.clone()),
            Event::TurnCompleted(u) => self.usage = Some(*u),
            Event::TurnFailed(m) => {
                self.turn_failed = Some(m.clone());
                self.errors.push(m.clone());
            }
            Event::Error(m) => self.errors.push(m.clone()),
            Event::ItemStarted(Item::Command { id, command, .. }) => {
                // Kept as `in_progress` until its completion arrives: a command cut off by a
                // timeout still shows.
                self.pending_command(id, command);
            }
            Event::ItemCompleted(item) => match item {
                Item::AgentMessage(t) => self.messages.push(t.clone()),
                Item::Command {
                    id,
                    command,
                    exit_code,
                    status,
                    ..
                } => {
                    let i = self.pending_command(id, command);
                    self.commands[i].exit_code = *exit_code;
                    self.commands[i].status = status.clone();
                }
                Item::FileChange { changes, status } if status != "failed" => {
                    for (path, kind) in changes {
                        if !self.files.iter().any(|(p, _)| p == path) {
                            self.files.push((path.clone(), kind.clone()));
                        }
                    }
                }
                Item::Error(m) => self.errors.push(m.clone()),
                _ => {}
            },
            _ => {}
        }
    }

    fn pending_command(&mut self, id: &str, command: &str) -> usize {
        // Ids are per run (`item_1`), so they identify a command within one transcript.
        if let Some(i) = self.command_ids.iter().position(|c| c == id) {
            return i;
        }
        self.command_ids.push(id.to_string());
        self.commands.push(AgentCommand {
            command: command.to_string(),
            exit_code: None,
            status: "in_progress".into(),
        });
        self.commands.len() - 1
    }

    /// The files it reported, relative to `repo` when inside it.
    pub fn claimed_files(&self, repo: &Path) -> Vec<ClaimedFile> {
        let root = std::fs::canonicalize(repo).unwrap_or_else(|_| repo.to_path_buf());
        self.files
            .iter()
            .map(|(p, kind)| ClaimedFile {
                path: relative(&root, repo, p),
                kind: kind.clone(),
            })
            .collect()
    }
}

/// A path as the report shows it: relative to the repository when inside it.
fn relative(root: &Path, repo: &Path, p: &str) -> String {
    let path = Path::new(p);
    // The file may be deleted: canonicalize its parent instead.
    let canonical = std::fs::canonicalize(path).ok().or_else(|| {
        let parent = std::fs::canonicalize(path.parent()?).ok()?;
        Some(parent.join(path.file_name()?))
    });
    for base in [Some(root), Some(repo)].into_iter().flatten() {
        for cand in [canonical.as_deref(), Some(path)].into_iter().flatten() {
            if let Ok(rel) = cand.strip_prefix(base) {
                return crate::repo::to_slash(rel);
            }
        }
    }
    p.to_string()
}

/// Read a whole JSONL log (lines that are not events are skipped).
pub fn read(jsonl: &str) -> Transcript {
    let mut t = Transcript::default();
    for ev in jsonl.lines().filter_map(parse) {
        t.push(&ev);
    }
    t
}

/// One line of the live view for an event, or `None` for events not worth a line.
/// `compact` (a terminal): long text is cut to one line; plain (CI, pipes): full first line.
pub fn live_line(ev: &Event, compact: bool) -> Option<String> {
    let cut = |s: &str| {
        let first = s
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let more = s.trim().lines().count() > 1;
        let limit = if compact { 100 } else { 400 };
        if first.chars().count() > limit {
            format!("{}…", first.chars().take(limit).collect::<String>())
        } else if more && compact {
            format!("{first} …")
        } else {
            first.to_string()
        }
    };
    match ev {
        Event::ThreadStarted(id) => Some(format!("thread {id}")),
        Event::TurnFailed(m) => Some(format!("turn failed: {}", cut(m))),
        Event::Error(m) => Some(format!("error: {}", cut(m))),
        Event::TurnCompleted(u) => Some(format!(
            "turn completed: {} input tokens ({} cached), {} output",
            u.input_tokens, u.cached_input_tokens, u.output_tokens
        )),
        Event::ItemStarted(Item::Command { command, .. }) => Some(format!("$ {}", cut(command))),
        Event::ItemCompleted(item) => match item {
            Item::AgentMessage(t) => Some(format!("agent: {}", cut(t))),
            Item::Command {
                exit_code, status, ..
            } => Some(match exit_code {
                Some(c) => format!("  → exit {c}"),
                None => format!("  → {status}"),
            }),
            Item::FileChange { changes, status } => Some(
                changes
                    .iter()
                    .map(|(p, k)| {
                        format!(
                            "{k} {p}{}",
                            if status == "failed" { " (failed)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Item::Error(m) => Some(format!("warning: {}", cut(m))),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"type":"thread.started","thread_id":"01a2-b3"}
{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `mock-model` not found."}}
{"type":"turn.started"}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc \"mkdir -p x\"","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc \"mkdir -p x\"","aggregated_output":"","exit_code":0,"status":"completed"}}
{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":"pnpm test","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_3","type":"file_change","changes":[{"path":"/r/a.sql","kind":"add"},{"path":"/r/b.ts","kind":"update"}],"status":"completed"}}
{"type":"item.completed","item":{"id":"item_4","type":"agent_message","text":"Created a.sql.\n\nDone."}}
not json at all
{"type":"turn.completed","usage":{"input_tokens":22,"cached_input_tokens":6,"output_tokens":14,"reasoning_output_tokens":2}}
"#;

    #[test]
    fn a_run_adds_up() {
        let t = read(SAMPLE);
        assert_eq!(t.thread_id.as_deref(), Some("01a2-b3"));
        assert_eq!(t.messages, ["Created a.sql.\n\nDone."]);
        assert_eq!(t.commands.len(), 2);
        assert_eq!(t.commands[0].exit_code, Some(0));
        assert_eq!(t.commands[0].status, "completed");
        assert_eq!(t.commands[1].command, "pnpm test");
        assert_eq!(t.commands[1].status, "in_progress", "cut off, still shown");
        assert_eq!(
            t.files,
            [
                ("/r/a.sql".to_string(), "add".to_string()),
                ("/r/b.ts".to_string(), "update".to_string())
            ]
        );
        let u = t.usage.unwrap();
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (22, 6, 14)
        );
        assert_eq!(t.errors, ["Model metadata for `mock-model` not found."]);
        assert_eq!(t.turn_failed, None);
    }

    #[test]
    fn a_failed_turn_carries_its_message() {
        let t = read(r#"{"type":"turn.failed","error":{"message":"unexpected status 500"}}"#);
        assert_eq!(t.turn_failed.as_deref(), Some("unexpected status 500"));
        let t = read(r#"{"type":"turn.failed"}"#);
        assert_eq!(
            t.turn_failed.as_deref(),
            Some("the turn failed (no message)")
        );
    }

    #[test]
    fn live_lines_are_short_on_a_terminal() {
        let long = format!("{}\nsecond line", "x".repeat(300));
        let ev = Event::ItemCompleted(Item::AgentMessage(long));
        let compact = live_line(&ev, true).unwrap();
        assert!(compact.chars().count() < 120, "{compact}");
        let plain = live_line(&ev, false).unwrap();
        assert!(plain.len() > 300, "plain keeps the first line whole");
        assert_eq!(
            live_line(&parse(r#"{"type":"item.completed","item":{"id":"i","type":"command_execution","command":"ls","exit_code":2,"status":"failed"}}"#).unwrap(), true),
            Some("  → exit 2".into())
        );
        assert_eq!(live_line(&Event::Other, true), None);
    }

    #[test]
    fn claimed_paths_become_relative() {
        let dir = std::env::temp_dir().join(format!("xtask-ev-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let mut t = Transcript::default();
        t.files
            .push((dir.join("sub/a.sql").display().to_string(), "add".into()));
        t.files.push(("/elsewhere/b".into(), "update".into()));
        let c = t.claimed_files(&dir);
        assert_eq!(c[0].path, "sub/a.sql");
        assert_eq!(c[1].path, "/elsewhere/b");
        let _ = std::fs::remove_dir_all(dir);
    }
}
