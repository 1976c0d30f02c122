//! Migration facts: every configured migration history read once, each file parsed once
//! (its statements for the reader, its pieces for the live applier), replayed into the
//! schema model. Judging is not done here: `judge::migrations` decides from these facts.
//!
//! Files are parsed on all cores (`read`) and replayed in file-name order (`replay`) as they
//! come: the replay of the first files runs while the parser threads read the next ones.

pub mod files;
pub mod plpgsql;
pub mod read;
pub mod replay;
pub mod split;

use std::{
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
};

use crate::{
    config::Config,
    model::{Finding, Severity},
    repo::Changes,
    rules::catalog::Rule,
    schema::Schema,
};

use self::{
    read::{FileRead, SyntaxProblem},
    replay::{Altered, Replay},
};

/// Files larger than this are not parsed: a syntax tree of them would take gigabytes, and no
/// hand-written migration is this big. Their tables are unverified.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Stack of a parser thread.
const PARSER_STACK: usize = 32 * 1024 * 1024;

/// One file, read and parsed once.
pub struct Loaded {
    pub read: FileRead,
    /// The text (lossy when not UTF-8); `None` when the file could not be read.
    pub text: Option<String>,
    /// Could not be read whole: the rule and the problems (line, message).
    pub broken: Option<(Rule, Vec<SyntaxProblem>)>,
    pub empty: bool,
    /// Why the file cannot be sent to Postgres as it is (line, reason): unreadable, not UTF-8.
    pub unsendable: Option<(u32, String)>,
}

impl Loaded {
    fn unreadable() -> Loaded {
        Loaded {
            read: FileRead::default(),
            text: None,
            broken: None,
            empty: false,
            unsendable: None,
        }
    }
}

/// One migration history as the static reader saw it: its files in replay order, read once,
/// and the schema they make. The live check applies the same pieces and points its findings
/// at the lines this schema remembers.
pub struct History {
    pub dir: String,
    pub files: Vec<(files::MigrationFile, Loaded)>,
    pub schema: Schema,
    /// What the reader found about the files: listing problems, syntax errors, unreadable
    /// or empty files, SQL it cannot follow.
    pub findings: Vec<Finding>,
    /// Human lines for the handover's "Migration impact" field (new files only).
    pub impact: Vec<String>,
    /// Policies altered by new files, for the judge to say which were loosened.
    pub altered: Vec<Altered>,
    /// Migration files that are new in this change (repository paths).
    pub new_files: Vec<String>,
}

/// Read every configured history.
pub fn read_all(repo: &Path, config: &Config, changes: &Changes) -> Vec<History> {
    read_dirs(repo, config, changes, threads(), Keep::Pieces)
}

/// Read every configured history for the static check alone (`check-migrations`): the same
/// statements, findings and schema as [`read_all`], without cutting the files into the
/// pieces only the live applier sends (`read.pieces` stays empty).
pub fn read_static(repo: &Path, config: &Config, changes: &Changes) -> Vec<History> {
    read_dirs(repo, config, changes, threads(), Keep::Statements)
}

/// What reading a file keeps besides its statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The pieces the live applier sends too.
    Pieces,
    /// The statements only.
    Statements,
}

/// `f` of every item, on the parser threads ([`threads`], with the parser's stack: `f` may
/// parse SQL); results in the items' order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let threads = threads().clamp(1, items.len().max(1));
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::Builder::new()
                    .stack_size(PARSER_STACK)
                    .spawn_scoped(s, || {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(item) = items.get(i) else { break };
                            out.push((i, f(item)));
                        }
                        out
                    })
                    .expect("spawn a worker thread")
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread panicked"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Parser threads: `XTASK_THREADS` when set to a positive number (the benchmark compares one
/// thread with all), else the available cores, at most 8.
fn threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads_from(std::env::var("XTASK_THREADS").ok().as_deref(), cores)
}

fn threads_from(var: Option<&str>, cores: usize) -> usize {
    var.and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(cores.min(8))
}

/// [`read_all`] with a chosen number of parser threads (the benchmark compares them).
pub fn read_with(repo: &Path, config: &Config, changes: &Changes, threads: usize) -> Vec<History> {
    read_dirs(repo, config, changes, threads, Keep::Pieces)
}

fn read_dirs(
    repo: &Path,
    config: &Config,
    changes: &Changes,
    threads: usize,
    keep: Keep,
) -> Vec<History> {
    config
        .migrations
        .dirs
        .iter()
        .map(|dir| {
            let (list, list_findings) = files::list(repo, dir);
            let mut h = load_and_replay(dir, list, changes, threads, keep);
            h.findings.splice(0..0, list_findings);
            h
        })
        .collect()
}

/// One history given as (repository path, contents) in the order it applies: the same
/// decoding, parsing and replay as [`read_all`], without the file system. The fuzz target
/// (`fuzz/`) drives the reader through it.
pub fn read_contents(files: &[(String, Vec<u8>)], changes: &Changes) -> History {
    let files = files
        .iter()
        .map(|(path, bytes)| {
            let f = files::MigrationFile {
                path: path.clone(),
                full: path.into(),
                unreadable: None,
            };
            (f, decode(bytes.clone(), Keep::Pieces))
        })
        .collect();
    replay_history("", files, changes)
}

/// Replay one history's loaded files in order. Returns the history with the schema it makes.
fn replay_history(
    dir: &str,
    files: Vec<(files::MigrationFile, Loaded)>,
    changes: &Changes,
) -> History {
    let mut r = HistoryReplay::new(changes);
    for (f, loaded) in &files {
        r.file(f, loaded);
    }
    r.finish(dir, files)
}

/// The replay of one history, a file at a time in the order they apply.
struct HistoryReplay<'c> {
    changes: &'c Changes,
    replay: Replay,
    findings: Vec<Finding>,
    new_files: Vec<String>,
}

impl<'c> HistoryReplay<'c> {
    fn new(changes: &'c Changes) -> HistoryReplay<'c> {
        HistoryReplay {
            changes,
            replay: Replay::new(),
            findings: Vec::new(),
            new_files: Vec::new(),
        }
    }

    /// The next file of the history.
    fn file(&mut self, f: &files::MigrationFile, loaded: &Loaded) {
        let replay = &mut self.replay;
        let path = f.path.as_str();
        let new = self.changes.is_new(path);
        if new {
            self.new_files.push(path.to_string());
        }
        replay.file(path, new);
        if let Some(why) = &f.unreadable {
            replay.distrust_all(&format!("{path} {why}"));
            return;
        }
        for stmt in &loaded.read.stmts {
            replay.apply(stmt);
        }
        if let Some((rule, problems)) = &loaded.broken {
            replay.distrust_file(loaded.text.as_deref(), problems, *rule);
        }
        if loaded.empty && new {
            self.findings.push(
                Finding::new(
                    Rule::MigrationEmpty,
                    Severity::Info,
                    "empty migration: nothing to apply",
                )
                .at(path.to_string(), None),
            );
        }
    }

    fn finish(self, dir: &str, files: Vec<(files::MigrationFile, Loaded)>) -> History {
        let mut findings = self.findings;
        findings.extend(self.replay.findings);
        History {
            dir: dir.to_string(),
            files,
            schema: self.replay.schema,
            findings,
            impact: self.replay.impact,
            altered: self.replay.altered,
            new_files: self.new_files,
        }
    }
}

/// Read and parse every file on `threads` threads, and replay each on this thread as soon as
/// it and the files before it are read (the replay goes in list order; the parsing does not
/// wait for it).
fn load_and_replay(
    dir: &str,
    list: Vec<files::MigrationFile>,
    changes: &Changes,
    threads: usize,
    keep: Keep,
) -> History {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, list.len().max(1));
    let mut slots: Vec<Option<Loaded>> = Vec::new();
    slots.resize_with(list.len(), || None);
    let mut r = HistoryReplay::new(changes);
    std::thread::scope(|s| {
        let list = &list[..];
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Loaded)>();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let tx = tx.clone();
                let next = &next;
                // The parser recurses once per level of nesting, which `sql::too_deep` bounds;
                // the stack leaves room for that bound in an unoptimised build.
                std::thread::Builder::new()
                    .stack_size(PARSER_STACK)
                    .spawn_scoped(s, move || loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = list.get(i) else { break };
                        let loaded = match f.unreadable {
                            Some(_) => Loaded::unreadable(),
                            None => load(&f.full, keep),
                        };
                        if tx.send((i, loaded)).is_err() {
                            break;
                        }
                    })
                    .expect("spawn a parser thread")
            })
            .collect();
        drop(tx);
        let mut replayed = 0;
        for (i, loaded) in rx {
            slots[i] = Some(loaded);
            while let Some(Some(loaded)) = slots.get(replayed) {
                r.file(&list[replayed], loaded);
                replayed += 1;
            }
        }
        for h in handles {
            h.join().expect("parser thread panicked");
        }
    });
    let files = list
        .into_iter()
        .zip(slots)
        .map(|(f, l)| (f, l.expect("every file was read")))
        .collect();
    r.finish(dir, files)
}

/// A migration file's text; or, when it is not UTF-8 (which Postgres rejects), the text with
/// the bad bytes replaced and the line and message of the first one.
pub fn decode_text(bytes: Vec<u8>) -> Result<String, (String, SyntaxProblem)> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        let message =
            format!("not valid UTF-8 (byte {at}): Postgres rejects the file; save it as UTF-8");
        (
            String::from_utf8_lossy(&bytes).into_owned(),
            SyntaxProblem { line, message },
        )
    })
}

fn load(path: &Path, keep: Keep) -> Loaded {
    let problem = |message: String| Loaded {
        read: FileRead::default(),
        text: None,
        broken: Some((
            Rule::SqlSyntaxError,
            vec![SyntaxProblem {
                line: 1,
                message: message.clone(),
            }],
        )),
        empty: false,
        unsendable: Some((1, message)),
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            return problem(format!(
                "file is {} MB, over the {} MB the static reader parses: split it into smaller migrations",
                m.len() / (1024 * 1024),
                MAX_FILE_BYTES / (1024 * 1024)
            ))
        }
        _ => {}
    }
    match std::fs::read(path) {
        Ok(bytes) => decode(bytes, keep),
        Err(e) => problem(format!("cannot read the file: {e}")),
    }
}

/// A file's bytes → its statements and problems: not UTF-8 is a problem at its line, and
/// the text is read as lossy UTF-8 so the rest of the file still counts.
fn decode(bytes: Vec<u8>, keep: Keep) -> Loaded {
    let (text, encoding) = match decode_text(bytes) {
        Ok(t) => (t, None),
        Err((lossy, problem)) => (lossy, Some(problem)),
    };
    let unsendable = encoding.as_ref().map(|p| (p.line, p.message.clone()));
    let read = read::read_keeping(&text, keep);
    let empty = read.stmts.is_empty() && read.errors.is_empty() && is_blank(&text);
    let mut problems: Vec<SyntaxProblem> = encoding.into_iter().collect();
    problems.extend(read.errors.iter().cloned());
    if problems.is_empty() {
        return Loaded {
            read,
            text: Some(text),
            broken: None,
            empty,
            unsendable,
        };
    }
    Loaded {
        read,
        text: Some(text),
        broken: Some((Rule::SqlSyntaxError, problems)),
        empty,
        unsendable,
    }
}

/// Only whitespace and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with("--")
    })
}

#[cfg(test)]
mod tests {
    use super::threads_from;

    #[test]
    fn xtask_threads_overrides_the_cores() {
        assert_eq!(threads_from(None, 2), 2);
        assert_eq!(threads_from(None, 64), 8);
        assert_eq!(threads_from(Some("1"), 2), 1);
        assert_eq!(threads_from(Some(" 3 "), 2), 3);
        assert_eq!(threads_from(Some("0"), 2), 2);
        assert_eq!(threads_from(Some("many"), 2), 2);
    }
}
