//! Arbitrary bytes → the PL/pgSQL reader (`gather::migrations::plpgsql`): the text is read
//! as a body by `read_block` and `function_reads`, then wrapped in a `DO` block after a
//! protected table and taken through the whole path (`judge::static_contents`).
//!
//! Beyond "no panic, no hang" (the reader bounds nesting, statements and EXECUTE depth):
//! - every line the reader gives a statement of the body lies inside the body;
//! - every finding line lies inside its file;
//! - when the body cannot be read, the DO block is the old fail-closed guess: if the body
//!   names `docs` or runs EXECUTE (as words: `tabdocsle` names no table), `docs` is not
//!   `protected`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtask::{
    config::Config,
    gather::migrations::plpgsql::{self, Pl},
    judge::static_contents,
    model::Verdict,
    repo::Changes,
};

const PROTECTED: &str = "create table docs (id uuid primary key, tenant_id uuid not null);\n\
create index on docs (tenant_id);\n\
alter table docs enable row level security;\n\
create policy p on docs for all using (tenant_id = get_current_tenant_id());\n";

fn lines_in(body: &[Pl], n: u32) {
    for s in body {
        match s {
            Pl::Sql { line, .. } | Pl::Dynamic { line, .. } | Pl::Call { line, .. } => {
                assert!((1..=n).contains(line), "line {line} of {n}")
            }
            Pl::Choice { line, paths, .. } => {
                assert!((1..=n).contains(line), "line {line} of {n}");
                for p in paths {
                    lines_in(p, n);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let n = body.lines().count() as u32 + 1;
    let read = plpgsql::read_block(&body, 1, 0);
    if let Ok(stmts) = &read {
        lines_in(stmts, n);
    }
    let _ = plpgsql::function_reads("plpgsql", &body, 1);
    let _ = plpgsql::function_reads("sql", &body, 1);

    if body.contains("$fz$") {
        return;
    }
    let file = format!("do $fz$\n{body}\n$fz$;\n");
    let files = vec![
        ("supabase/migrations/0001.sql".to_string(), PROTECTED.as_bytes().to_vec()),
        ("supabase/migrations/0002.sql".to_string(), file.clone().into_bytes()),
    ];
    let ev = static_contents(&files, &Config::default(), &Changes::all());
    let file_lines = file.lines().count() as u32 + 1;
    for f in &ev.findings {
        if let (Some(path), Some(line)) = (&f.path, f.line) {
            let max = if path.ends_with("0002.sql") { file_lines } else { 5 };
            assert!((1..=max).contains(&line), "{} at {path}:{line}", f.rule);
        }
    }
    let words = xtask::sql::words(&body);
    if read.is_err()
        && (words.contains("docs") || words.contains("execute"))
        && ev.findings.iter().all(|f| f.rule != "sql-syntax-error")
    {
        let docs = ev.tables.iter().find(|t| t.name == "public.docs");
        assert!(
            docs.is_none_or(|t| t.verdict != Verdict::Protected),
            "an unreadable body naming docs left it protected"
        );
    }
});
