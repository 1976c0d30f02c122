//! Migration analysis: read every configured migration history, replay it into the schema
//! model, and judge tenant isolation of the new or changed tables.
//!
//! Files are parsed on all cores (`read`), then replayed one history at a time in file-name
//! order (`replay`), then judged (`rules::tenant`). Static only: a later live check can
//! confirm or overrule it, never the other way round.

pub mod files;
pub mod read;
pub mod replay;

use std::{
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
};

use crate::{
    config::Config,
    model::{Finding, MigrationEvidence, Severity, Source},
    repo::Changes,
    rules::{policy::Judge, tenant},
    schema::Schema,
};

use self::{
    read::{FileRead, SyntaxProblem},
    replay::Replay,
};

use super::Missing;

/// Files larger than this are not parsed: a syntax tree of them would take gigabytes, and no
/// hand-written migration is this big. Their tables are unverified.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Stack of a parser thread.
const PARSER_STACK: usize = 32 * 1024 * 1024;

/// One file, read and parsed.
struct Loaded {
    read: FileRead,
    /// The text, when it is needed again (to find the tables a broken file names).
    text: Option<String>,
    /// Could not be read whole: the rule and the problems (line, message).
    broken: Option<(&'static str, Vec<SyntaxProblem>)>,
    empty: bool,
}

pub fn analyze(
    repo: &Path,
    config: &Config,
    changes: &Changes,
) -> Result<MigrationEvidence, Missing> {
    Ok(analyze_with(repo, config, changes, threads()))
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

/// `analyze` with a chosen number of parser threads (the benchmark compares them).
pub fn analyze_with(
    repo: &Path,
    config: &Config,
    changes: &Changes,
    threads: usize,
) -> MigrationEvidence {
    analyze_histories(repo, config, changes, threads).0
}

/// One migration history as the static reader saw it: its files in replay order and the
/// schema they make. The live check applies the same files and points its findings at the
/// lines this schema remembers.
pub struct History {
    pub dir: String,
    pub files: Vec<files::MigrationFile>,
    pub schema: Schema,
}

/// The static analysis, and each history it replayed.
pub fn analyze_full(
    repo: &Path,
    config: &Config,
    changes: &Changes,
) -> (MigrationEvidence, Vec<History>) {
    analyze_histories(repo, config, changes, threads())
}

fn analyze_histories(
    repo: &Path,
    config: &Config,
    changes: &Changes,
    threads: usize,
) -> (MigrationEvidence, Vec<History>) {
    let judge = Judge::new(&config.tenancy);
    let mut ev = MigrationEvidence::default();
    let mut histories = Vec::new();
    for dir in &config.migrations.dirs {
        let (list, list_findings) = files::list(repo, dir);
        ev.findings.extend(list_findings);
        let loaded = load_all(&list, threads);
        let history = list
            .iter()
            .zip(&loaded)
            .map(|(f, l)| (f.path.as_str(), f.unreadable.as_deref(), l));
        let schema = replay_history(&mut ev, history, config, &judge, changes);
        histories.push(History {
            dir: dir.clone(),
            files: list,
            schema,
        });
    }
    (ev, histories)
}

/// One history given as (repository path, contents) in the order it applies: the same
/// decoding, parsing, replay and judgement as [`analyze`], without the file system. The
/// fuzz target (`fuzz/`) drives the reader through it.
pub fn analyze_contents(
    files: &[(String, Vec<u8>)],
    config: &Config,
    changes: &Changes,
) -> MigrationEvidence {
    let judge = Judge::new(&config.tenancy);
    let mut ev = MigrationEvidence::default();
    let loaded: Vec<Loaded> = files.iter().map(|(_, b)| decode(b.clone())).collect();
    let history = files
        .iter()
        .zip(&loaded)
        .map(|((path, _), l)| (path.as_str(), None, l));
    replay_history(&mut ev, history, config, &judge, changes);
    ev
}

/// Replay one history's loaded files (path, why it is unreadable, what was read) in order,
/// then judge its new or changed tables into `ev`. Returns the schema the history makes.
fn replay_history<'f>(
    ev: &mut MigrationEvidence,
    history: impl Iterator<Item = (&'f str, Option<&'f str>, &'f Loaded)>,
    config: &Config,
    judge: &Judge,
    changes: &Changes,
) -> Schema {
    let mut replay = Replay::new(judge);
    for (path, unreadable, loaded) in history {
        ev.files_read += 1;
        let new = changes.is_new(path);
        if new {
            ev.new_files.push(path.to_string());
        }
        replay.file(path, new);
        if let Some(why) = unreadable {
            replay.distrust_all(&format!("{path} {why}"));
            continue;
        }
        for stmt in &loaded.read.stmts {
            replay.apply(stmt);
        }
        if let Some((rule, problems)) = &loaded.broken {
            replay.distrust_file(loaded.text.as_deref(), problems, rule);
        }
        if loaded.empty && new {
            ev.findings.push(
                Finding::new(
                    "migration-empty",
                    Severity::Info,
                    "empty migration: nothing to apply",
                )
                .at(path.to_string(), None),
            );
        }
    }
    let judged = replay
        .schema
        .tables
        .values()
        .filter(|t| changes.all || t.touched_by.iter().any(|p| changes.is_new(p)));
    let out = tenant::judge(judged, &config.tenancy, judge, Source::Static);
    ev.findings.extend(replay.findings);
    let new_functions = replay
        .schema
        .functions
        .values()
        .filter(|f| changes.is_new(&f.origin.path));
    ev.findings.extend(tenant::functions(new_functions));
    ev.findings.extend(out.findings);
    ev.tables.extend(out.tables);
    ev.impact.extend(replay.impact);
    replay.schema
}

/// Read and parse every file, on `threads` threads; results in list order.
fn load_all(list: &[files::MigrationFile], threads: usize) -> Vec<Loaded> {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, list.len().max(1));
    let mut done: Vec<(usize, Loaded)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                // The parser recurses once per level of nesting, which `sql::too_deep` bounds;
                // the stack leaves room for that bound in an unoptimised build.
                std::thread::Builder::new()
                    .stack_size(PARSER_STACK)
                    .spawn_scoped(s, || {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(f) = list.get(i) else { break };
                            let loaded = match f.unreadable {
                                Some(_) => Loaded {
                                    read: FileRead::default(),
                                    text: None,
                                    broken: None,
                                    empty: false,
                                },
                                None => load(&f.full),
                            };
                            out.push((i, loaded));
                        }
                        out
                    })
                    .expect("spawn a parser thread")
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("parser thread panicked"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, l)| l).collect()
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

fn load(path: &Path) -> Loaded {
    let problem = |message: String| Loaded {
        read: FileRead::default(),
        text: None,
        broken: Some(("sql-syntax-error", vec![SyntaxProblem { line: 1, message }])),
        empty: false,
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
        Ok(bytes) => decode(bytes),
        Err(e) => problem(format!("cannot read the file: {e}")),
    }
}

/// A file's bytes → its statements and problems: not UTF-8 is a problem at its line, and
/// the text is read as lossy UTF-8 so the rest of the file still counts.
fn decode(bytes: Vec<u8>) -> Loaded {
    let (text, encoding) = match decode_text(bytes) {
        Ok(t) => (t, None),
        Err((lossy, problem)) => (lossy, Some(problem)),
    };
    let read = read::read(&text);
    let empty = read.stmts.is_empty() && read.errors.is_empty() && is_blank(&text);
    let mut problems: Vec<SyntaxProblem> = encoding.into_iter().collect();
    problems.extend(read.errors.iter().cloned());
    if problems.is_empty() {
        return Loaded {
            read,
            text: None,
            broken: None,
            empty,
        };
    }
    Loaded {
        read,
        text: Some(text),
        broken: Some(("sql-syntax-error", problems)),
        empty,
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
