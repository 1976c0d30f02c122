//! Arbitrary bytes → the migration reader: decoding (a file that is not UTF-8 takes the
//! lossy path with a finding), parsing, replay into the schema model and the tenant rules
//! with the default config — `judge::static_contents`, the path of
//! `check-migrations --all` without the file system.
//!
//! When the first byte is odd, the rest is split on NUL bytes into up to 8 files of one
//! history, so that later files can undo earlier ones. Otherwise it is one file.
//!
//! Beyond "no panic, no hang", it checks what must hold for any input:
//! - every statement and finding line lies inside its file;
//! - a file that cannot be read whole (`sql-syntax-error`) never leaves a table it touched
//!   `protected` (checked on one-file histories, where every table is that file's).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtask::{
    config::Config,
    gather::migrations::read,
    judge::static_contents,
    model::Verdict,
    repo::Changes,
};

fn lines(bytes: &[u8]) -> u32 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u32 + 1
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let parts: Vec<&[u8]> = if mode & 1 == 1 {
        rest.splitn(8, |&b| b == 0).collect()
    } else {
        vec![rest]
    };
    let files: Vec<(String, Vec<u8>)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("supabase/migrations/{i:04}_m.sql"), p.to_vec()))
        .collect();

    // The reader alone, on the lossy text.
    for (_, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        let n = lines(text.as_bytes());
        let r = read::read(&text);
        for s in &r.stmts {
            assert!(
                (1..=n).contains(&s.line),
                "statement line {} of {n}",
                s.line
            );
        }
        for e in &r.errors {
            assert!((1..=n).contains(&e.line), "error line {} of {n}", e.line);
        }
    }

    // The whole path: decode, read, replay, judge.
    let ev = static_contents(&files, &Config::default(), &Changes::all());
    assert_eq!(ev.files_read, files.len());
    for f in &ev.findings {
        if let (Some(path), Some(line)) = (&f.path, f.line) {
            let (_, bytes) = files
                .iter()
                .find(|(p, _)| p == path)
                .unwrap_or_else(|| panic!("finding on an unknown file {path}"));
            let n = lines(bytes);
            assert!(
                (1..=n).contains(&line),
                "{} at line {line} of {n}: {}",
                f.rule,
                f.message
            );
        }
    }
    if files.len() == 1 && ev.findings.iter().any(|f| f.rule == "sql-syntax-error") {
        for t in &ev.tables {
            assert_ne!(
                t.verdict,
                Verdict::Protected,
                "{} is protected although its only file cannot be read whole",
                t.name
            );
        }
    }
});
