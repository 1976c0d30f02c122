//! PL/pgSQL bodies (`DO` blocks, functions) read narrowly, failing closed.
//!
//! squawk parses a `DO` or function body as one string literal. This module reads that string
//! with squawk's lexer: the block structure (`DECLARE`, `BEGIN ... EXCEPTION WHEN ... END`,
//! `IF`/`ELSIF`/`ELSE`, `CASE`, `LOOP`/`WHILE`/`FOR`/`FOREACH`) is followed by hand, and every
//! statement that is SQL is parsed again with squawk's `SourceFile::parse` and read by the
//! same code as a top-level statement ([`super::read`]). `EXECUTE` of a literal, or of
//! `format()`/`||`/`quote_ident()` over literals, is evaluated and read the same way.
//!
//! Whatever this reader does not understand is an error ([`read_block`] returns why) and the
//! caller keeps the old guess (every table the body names, or every table when it runs dynamic
//! SQL). Dynamic SQL whose text is only partly known is narrowed to what it could touch:
//! identifiers and literals from `%I`/`%L`/`quote_ident()`/`quote_literal()` cannot change the
//! kind of statement, so the statement is parsed with placeholders in their place.

use squawk_lexer::{LiteralKind as L, TokenKind as T};
use squawk_syntax::{SourceFile, SyntaxKind as K, SyntaxNode};

use super::read::{self, Op, Unverifiable};
use crate::{
    schema::QualName,
    sql::{self, Lines},
};

/// `DO` inside `EXECUTE` inside `DO`...: deeper than this is not read.
pub const MAX_DEPTH: usize = 8;
/// Blocks, branches and loops nested deeper than this are not read (the reader recurses).
const MAX_NESTING: usize = 64;
/// Statements in one body: more is not read (each branch replays on its own schema copy).
const MAX_STATEMENTS: usize = 5_000;

/// Stands for a part of dynamic SQL known only at run time (an identifier, or inside quotes
/// a literal). Lower case, so it survives folding and is found in whatever the reader keeps.
pub const HOLE: &str = "__xtask_hole__";

/// One statement of a PL/pgSQL body that may change the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Pl {
    /// SQL read like a top-level statement. `ensure`: it runs only when its object is missing
    /// (under an existence test, or with its duplicate error swallowed): an object of that
    /// name that exists already is kept.
    Sql { line: u32, op: Op, ensure: bool },
    /// Dynamic SQL whose text is not known: what it may touch.
    Dynamic { line: u32, guess: Unverifiable },
    /// Exactly one path runs: the branches of an IF or CASE, a loop run or not, an exception
    /// block's body or one of its handlers, a statement after a RETURN/EXIT or not. The first
    /// path is the code as written running through (the THEN branch, the loop body, the
    /// block without its handlers).
    Choice {
        line: u32,
        what: &'static str,
        paths: Vec<Vec<Pl>>,
    },
    /// Functions called (`perform f()`, `x := f()`): one the history defined runs its body.
    Call { line: u32, functions: Vec<QualName> },
}

/// The text of a string literal token (`'...'` or `$tag$...$tag$`) and the byte length of
/// its opening quote. Other kinds (`E'...'`, `U&'...'`) are not read.
pub fn literal_text(tok: &str) -> Option<(String, usize)> {
    if let Some(rest) = tok.strip_prefix('$') {
        let tag_len = rest.find('$')? + 2;
        let tag = tok.get(..tag_len)?;
        let inner = tok.get(tag_len..)?.strip_suffix(tag)?;
        if tok.len() < 2 * tag_len {
            return None;
        }
        return Some((inner.to_string(), tag_len));
    }
    let inner = tok.strip_prefix('\'')?.strip_suffix('\'')?;
    Some((inner.replace("''", "'"), 1))
}

/// The string literal of a `DO` or `AS` clause: its text and the line it starts on.
pub fn body_of(literal: &SyntaxNode, lines: &Lines) -> Option<(String, u32)> {
    let toks: Vec<_> = sql::tokens(literal).collect();
    let [tok] = toks.as_slice() else {
        return None; // continued strings, `E'...'` with a `UESCAPE`: not read
    };
    if !matches!(tok.kind(), K::STRING | K::DOLLAR_QUOTED_STRING) {
        return None;
    }
    let (text, open) = literal_text(tok.text())?;
    let line = lines.line(usize::from(tok.text_range().start()) + open);
    Some((text, line))
}

/// Read a PL/pgSQL body (a `DO` block's or a function's) into the statements that may change
/// the schema. `Err` says why it cannot be read; the caller then fails closed.
pub fn read_block(body: &str, first_line: u32, depth: usize) -> Result<Vec<Pl>, String> {
    let mut p = Parser::new(body, first_line, depth, false)?;
    p.top()
}

/// The tables a function body reads (`FROM` and `JOIN` relations), for `language sql` and
/// `language plpgsql`. A PL/pgSQL body this reader cannot follow is read as SQL anyway: what
/// squawk makes of it errs towards naming too many tables, never too few.
pub fn function_reads(language: &str, body: &str, first_line: u32) -> Vec<QualName> {
    read_function(language, body, first_line).1
}

/// A function body in one pass: what calling it runs (PL/pgSQL; `Err` when the body cannot
/// be read) and the tables it reads.
pub fn read_function(
    language: &str,
    body: &str,
    first_line: u32,
) -> (Result<Vec<Pl>, String>, Vec<QualName>) {
    if language == "plpgsql" {
        let read = Parser::new(body, first_line, 1, true).and_then(|mut p| {
            let pl = p.top()?;
            Ok((pl, std::mem::take(&mut p.reads)))
        });
        return match read {
            Ok((pl, reads)) => (Ok(pl), reads),
            Err(why) => (Err(why), sql_reads(body)),
        };
    }
    (Ok(Vec::new()), sql_reads(body))
}

/// The relations of `FROM` and `JOIN` clauses in SQL text (CTE names excepted).
pub fn sql_reads(text: &str) -> Vec<QualName> {
    let mut out = Vec::new();
    add_reads(&mut out, text);
    out
}

fn add_reads(out: &mut Vec<QualName>, text: &str) {
    if sql::too_deep(text).is_some() {
        return;
    }
    let parse = SourceFile::parse(text);
    sql::relations_read(&parse.syntax_node(), out);
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: T,
    start: usize,
    end: usize,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    i: usize,
    lines: Lines,
    depth: usize,
    nesting: usize,
    statements: usize,
    /// A RETURN, EXIT or CONTINUE was read: what follows may not run.
    left: bool,
    /// A RETURN was read (it leaves loops too).
    returned: bool,
    /// The statements being read raise an exception unconditionally.
    raised: bool,
    /// Collect the tables every statement and condition reads (for [`function_reads`]).
    collect: bool,
    reads: Vec<QualName>,
    /// Loop variables that hold the names of a Supabase platform schema's tables (`FOR t IN
    /// SELECT table_name FROM information_schema.tables WHERE table_schema = 'auth'`).
    catalog_names: Vec<String>,
}

type Res<T> = Result<T, String>;

impl<'a> Parser<'a> {
    fn new(src: &'a str, first_line: u32, depth: usize, collect: bool) -> Res<Parser<'a>> {
        if depth > MAX_DEPTH {
            return Err(format!("dynamic SQL nested more than {MAX_DEPTH} deep"));
        }
        let mut toks = Vec::new();
        let mut at = 0usize;
        for t in squawk_lexer::tokenize(src) {
            let start = at;
            at += t.len as usize;
            let bad = match t.kind {
                T::Whitespace | T::LineComment | T::Eof => continue,
                T::BlockComment { terminated } => {
                    if terminated {
                        continue;
                    }
                    true
                }
                T::Literal { kind } => matches!(
                    kind,
                    L::Str { terminated: false }
                        | L::DollarQuotedString { terminated: false }
                        | L::EscStr { terminated: false }
                        | L::NationalStr { terminated: false }
                        | L::ByteStr { terminated: false }
                        | L::BitStr { terminated: false }
                        | L::UnicodeEscStr { terminated: false }
                ),
                T::QuotedIdent { terminated, .. } => !terminated,
                T::Unknown => true,
                _ => false,
            };
            if bad {
                return Err("an unterminated string, name or comment".into());
            }
            toks.push(Tok {
                kind: t.kind,
                start,
                end: at,
            });
        }
        Ok(Parser {
            src,
            toks,
            i: 0,
            lines: Lines::starting_at(src, first_line),
            depth,
            nesting: 0,
            statements: 0,
            left: false,
            returned: false,
            raised: false,
            collect,
            reads: Vec::new(),
            catalog_names: Vec::new(),
        })
    }

    fn text(&self, t: &Tok) -> &'a str {
        self.src.get(t.start..t.end).unwrap_or_default()
    }

    /// The lower-cased word at `i`, if an unquoted identifier or keyword.
    fn word_at(&self, i: usize) -> Option<String> {
        let t = self.toks.get(i)?;
        (t.kind == T::Ident).then(|| self.text(t).to_ascii_lowercase())
    }

    fn word(&self) -> Option<String> {
        self.word_at(self.i)
    }

    /// Is the token at `i` the word `w` (lower case)?
    fn is_at(&self, i: usize, w: &str) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.kind == T::Ident && self.text(t).eq_ignore_ascii_case(w))
    }

    fn is(&self, w: &str) -> bool {
        self.is_at(self.i, w)
    }

    fn line(&self) -> u32 {
        self.toks.get(self.i).map_or_else(
            || self.lines.line(self.src.len()),
            |t| self.lines.line(t.start),
        )
    }

    fn expect(&mut self, w: &str) -> Res<()> {
        if self.is(w) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected {} at line {}",
                w.to_uppercase(),
                self.line()
            ))
        }
    }

    fn semi(&mut self) -> Res<()> {
        match self.toks.get(self.i) {
            Some(t) if t.kind == T::Semi => {
                self.i += 1;
                Ok(())
            }
            _ => Err(format!("expected `;` at line {}", self.line())),
        }
    }

    /// The whole body: one block, optionally followed by `;`.
    fn top(&mut self) -> Res<Vec<Pl>> {
        let out = self.block()?;
        if self.toks.get(self.i).is_some_and(|t| t.kind == T::Semi) {
            self.i += 1;
        }
        if self.i < self.toks.len() {
            return Err(format!(
                "text after the block's END at line {}",
                self.line()
            ));
        }
        Ok(out)
    }

    /// `<<label>>`: skipped.
    fn label(&mut self) {
        let k = |i: usize| self.toks.get(i).map(|t| t.kind);
        if k(self.i) == Some(T::Lt)
            && k(self.i + 1) == Some(T::Lt)
            && k(self.i + 2) == Some(T::Ident)
            && k(self.i + 3) == Some(T::Gt)
            && k(self.i + 4) == Some(T::Gt)
        {
            self.i += 5;
        }
    }

    fn nest(&mut self) -> Res<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(format!("blocks nested more than {MAX_NESTING} deep"));
        }
        Ok(())
    }

    /// `[<<label>>] [DECLARE ...] BEGIN stmts [EXCEPTION WHEN ... THEN stmts ...] END [label]`
    /// (the `;` after it is the caller's).
    fn block(&mut self) -> Res<Vec<Pl>> {
        self.nest()?;
        self.label();
        let line = self.line();
        if self.is("declare") {
            // Declarations end at the block's BEGIN; a cursor's query holds no BEGIN.
            while !self.is("begin") {
                if self.i >= self.toks.len() {
                    return Err("DECLARE without BEGIN".into());
                }
                self.i += 1;
            }
        }
        self.expect("begin")?;
        let (body, body_raises) = self.path()?;
        let mut handlers: Vec<(Vec<String>, Vec<Pl>, bool)> = Vec::new();
        if self.is("exception") {
            self.i += 1;
            while self.is("when") {
                self.i += 1;
                let cond = self.until(&["then"])?;
                let conds: Vec<String> = cond
                    .iter()
                    .filter(|t| t.kind == T::Ident)
                    .map(|t| self.text(t).to_ascii_lowercase())
                    .filter(|w| w != "or")
                    .collect();
                self.i += 1;
                let left = self.left;
                let (h, aborts) = self.path()?;
                self.left = left;
                handlers.push((conds, h, aborts));
            }
            if handlers.is_empty() {
                return Err(format!("EXCEPTION without WHEN at line {}", self.line()));
            }
        }
        self.expect("end")?;
        if self.word().is_some_and(|w| !is_reserved(&w)) {
            self.i += 1; // END label
        }
        self.nesting -= 1;
        if handlers.is_empty() {
            self.raised |= body_raises;
            return Ok(body);
        }
        // A handler that only swallows "already exists"/"does not exist" around one statement
        // makes that statement "create it when missing".
        let swallow = handlers.iter().all(|(conds, h, aborts)| {
            !aborts && h.is_empty() && conds.iter().all(|c| is_existence_error(c))
        });
        if swallow {
            if let [Pl::Sql { line, op, .. }] = body.as_slice() {
                return Ok(vec![Pl::Sql {
                    line: *line,
                    op: op.clone(),
                    ensure: true,
                }]);
            }
        }
        let mut paths = if body_raises { Vec::new() } else { vec![body] };
        paths.extend(
            handlers
                .into_iter()
                .filter(|(_, _, aborts)| !aborts)
                .map(|(_, h, _)| h),
        );
        Ok(choice(line, "exception block", paths))
    }

    /// Statements of a branch, and whether the branch always raises (then it is no path: the
    /// migration fails there).
    fn path(&mut self) -> Res<(Vec<Pl>, bool)> {
        let saved = self.raised;
        self.raised = false;
        let stmts = self.stmts()?;
        let aborts = self.raised;
        self.raised = saved;
        Ok((stmts, aborts))
    }

    /// Tokens up to (not including) one of `stops` at bracket depth 0 outside CASE ... END
    /// expressions; the parser is left on the stop word.
    fn until(&mut self, stops: &[&str]) -> Res<Vec<Tok>> {
        let start = self.i;
        let mut depth = 0i32;
        let mut cases = 0i32;
        while let Some(t) = self.toks.get(self.i) {
            match t.kind {
                T::OpenParen | T::OpenBracket => depth += 1,
                T::CloseParen | T::CloseBracket => depth -= 1,
                T::Semi if depth <= 0 => break,
                T::Ident if depth == 0 => {
                    let w = self.text(t);
                    if w.eq_ignore_ascii_case("case") {
                        cases += 1;
                    } else if w.eq_ignore_ascii_case("end") && cases > 0 {
                        cases -= 1;
                    } else if cases == 0 && stops.iter().any(|s| w.eq_ignore_ascii_case(s)) {
                        return Ok(self.toks[start..self.i].to_vec());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err(format!(
            "expected {} at line {}",
            stops.join(" or ").to_uppercase(),
            self.line()
        ))
    }

    /// Source text of a token range.
    fn span(&self, toks: &[Tok]) -> &'a str {
        match (toks.first(), toks.last()) {
            (Some(a), Some(b)) => self.src.get(a.start..b.end).unwrap_or_default(),
            _ => "",
        }
    }

    /// The tables SQL of the body that is not DDL (a query, a condition) reads, when
    /// collecting them: parsed only when it has a FROM or JOIN.
    fn chunk(&mut self, sql: &str) {
        if !self.collect
            || !(has_word(sql, "from") || has_word(sql, "join"))
            || sql::too_deep(sql).is_some()
        {
            return;
        }
        let parse = SourceFile::parse(sql);
        sql::relations_read(&parse.syntax_node(), &mut self.reads);
    }

    /// The functions called in a statement (a name, maybe qualified, before `(`): they may
    /// run DDL the replay follows. Words such as `values (` or `in (` name no function the
    /// history defines, and calls of those are ignored.
    fn calls(&self, toks: &[Tok], line: u32) -> Vec<Pl> {
        let name = |t: &Tok| match t.kind {
            T::Ident | T::QuotedIdent { .. } => Some(sql::fold_ident(self.text(t))),
            _ => None,
        };
        let mut functions: Vec<QualName> = Vec::new();
        for (k, w) in toks.windows(2).enumerate() {
            if w[1].kind != T::OpenParen {
                continue;
            }
            let Some(f) = name(&w[0]) else { continue };
            let schema = match (
                k.checked_sub(2).map(|j| &toks[j]),
                k.checked_sub(1).map(|j| &toks[j]),
            ) {
                (Some(s), Some(d)) if d.kind == T::Dot => name(s),
                _ => None,
            };
            let q = QualName::new(schema.unwrap_or_else(|| "public".into()), f);
            if !functions.contains(&q) {
                functions.push(q);
            }
        }
        if functions.is_empty() {
            return Vec::new();
        }
        vec![Pl::Call { line, functions }]
    }

    /// A condition or expression, read as `SELECT expr` for the tables it reads.
    fn cond_chunk(&mut self, toks: &[Tok]) {
        if self.collect && !toks.is_empty() {
            let s = format!("select {}", self.span(toks));
            self.chunk(&s);
        }
    }

    /// Statements until END, ELSIF, ELSE, EXCEPTION or WHEN (left for the caller).
    fn stmts(&mut self) -> Res<Vec<Pl>> {
        let mut out = Vec::new();
        loop {
            self.statements += 1;
            if self.statements > MAX_STATEMENTS {
                return Err(format!("more than {MAX_STATEMENTS} statements"));
            }
            self.label();
            let Some(t) = self.toks.get(self.i).copied() else {
                return Ok(out);
            };
            if t.kind == T::Semi {
                self.i += 1;
                continue;
            }
            let w = self.word();
            let before = out.len();
            let was_left = self.left;
            match w.as_deref() {
                Some("end" | "elsif" | "elseif" | "else" | "exception" | "when") => return Ok(out),
                Some("if") => out.extend(self.if_stmt()?),
                Some("case") => out.extend(self.case_stmt()?),
                Some("loop" | "while" | "for" | "foreach") => out.extend(self.loop_stmt()?),
                Some("declare" | "begin") => {
                    out.extend(self.block()?);
                    self.semi()?;
                }
                _ => out.extend(self.simple()?),
            }
            if was_left {
                // What follows a RETURN/EXIT/CONTINUE may not run: each statement is a path.
                let tail: Vec<Pl> = out.drain(before..).collect();
                for s in tail {
                    let line = pl_line(&s);
                    out.push(Pl::Choice {
                        line,
                        what: "statement after a RETURN, EXIT or CONTINUE",
                        paths: vec![vec![s], Vec::new()],
                    });
                }
            }
        }
    }

    fn if_stmt(&mut self) -> Res<Vec<Pl>> {
        self.nest()?;
        let line = self.line();
        self.expect("if")?;
        let mut branches: Vec<(Vec<Tok>, Vec<Pl>, bool)> = Vec::new();
        let mut has_else = false;
        let left = self.left;
        let mut any_left = false;
        let cond = self.until(&["then"])?;
        self.cond_chunk(&cond);
        self.i += 1;
        let (body, aborts) = self.path()?;
        any_left |= self.left;
        self.left = left;
        branches.push((cond, body, aborts));
        loop {
            match self.word().as_deref() {
                Some("elsif" | "elseif") => {
                    self.i += 1;
                    let cond = self.until(&["then"])?;
                    self.cond_chunk(&cond);
                    self.i += 1;
                    let (body, aborts) = self.path()?;
                    any_left |= self.left;
                    self.left = left;
                    branches.push((cond, body, aborts));
                }
                Some("else") => {
                    self.i += 1;
                    let (body, aborts) = self.path()?;
                    any_left |= self.left;
                    self.left = left;
                    branches.push((Vec::new(), body, aborts));
                    has_else = true;
                }
                _ => break,
            }
        }
        self.expect("end")?;
        self.expect("if")?;
        self.semi()?;
        self.left = left || any_left;
        self.nesting -= 1;
        // `IF NOT EXISTS (SELECT ... FROM pg_policies WHERE policyname = 'p') THEN CREATE
        // POLICY p ... END IF`: make sure it exists. Read as applied, creating only what is
        // missing, when the test names what each statement makes.
        let guard = match branches.as_slice() {
            [(cond, body, false)] if !has_else => self.missing_test(cond).is_some_and(|names| {
                // Filling the new column (`UPDATE t SET slug = ...`) changes no schema.
                body.iter().any(|s| guarded_by(s, &names))
                    && body
                        .iter()
                        .all(|s| guarded_by(s, &names) || changes_no_schema(s))
            }),
            _ => false,
        };
        if guard {
            let (_, body, _) = branches.pop().expect("one branch");
            return Ok(body
                .into_iter()
                .map(|s| match s {
                    Pl::Sql { line, op, .. } => Pl::Sql {
                        line,
                        op,
                        ensure: true,
                    },
                    other => other,
                })
                .collect());
        }
        let mut paths: Vec<Vec<Pl>> = branches
            .into_iter()
            .filter(|(_, _, aborts)| !aborts)
            .map(|(_, b, _)| b)
            .collect();
        if !has_else {
            paths.push(Vec::new());
        }
        Ok(choice(line, "IF", paths))
    }

    /// `NOT EXISTS (SELECT ... FROM <catalog> ...)` or `to_regclass('...') IS NULL`: "when it is
    /// missing". The names its string literals hold, lower-cased (`None`: not such a test).
    /// `EXISTS` / `IS NOT NULL` tests are ordinary branches: what they guard may not run.
    fn missing_test(&self, cond: &[Tok]) -> Option<Vec<String>> {
        let words: Vec<String> = cond
            .iter()
            .filter(|t| t.kind == T::Ident)
            .map(|t| self.text(t).to_ascii_lowercase())
            .collect();
        let test = match words.as_slice() {
            [not, exists, ..] if not == "not" && exists == "exists" => {
                // The whole condition is the one NOT EXISTS (...): nothing after its `)`.
                let open = cond.iter().position(|t| t.kind == T::OpenParen);
                open.is_some_and(|o| close_of(cond, o) == Some(cond.len() - 1))
                    && words
                        .iter()
                        .zip(words.iter().skip(1))
                        .any(|(a, b)| a == "from" && is_catalog(b))
            }
            [f, is, null] if f.starts_with("to_reg") && is == "is" && null == "null" => {
                cond.get(1).map(|t| t.kind) == Some(T::OpenParen)
                    && close_of(cond, 1) == Some(cond.len() - 3)
            }
            _ => false,
        };
        test.then(|| {
            cond.iter()
                .filter_map(|t| match t.kind {
                    T::Literal {
                        kind: L::Str { .. } | L::DollarQuotedString { .. },
                    } => literal_text(self.text(t)).map(|(s, _)| s.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
    }

    /// `CASE [expr] WHEN ... THEN stmts ... [ELSE stmts] END CASE;`
    fn case_stmt(&mut self) -> Res<Vec<Pl>> {
        self.nest()?;
        let line = self.line();
        self.expect("case")?;
        let subject = self.until(&["when"])?;
        self.cond_chunk(&subject);
        let left = self.left;
        let mut any_left = false;
        let mut paths = Vec::new();
        while self.is("when") {
            self.i += 1;
            let cond = self.until(&["then"])?;
            self.cond_chunk(&cond);
            self.i += 1;
            let (body, aborts) = self.path()?;
            any_left |= self.left;
            self.left = left;
            if !aborts {
                paths.push(body);
            }
        }
        if self.is("else") {
            self.i += 1;
            let (body, aborts) = self.path()?;
            any_left |= self.left;
            self.left = left;
            if !aborts {
                paths.push(body);
            }
        }
        // Without ELSE, no match raises CASE_NOT_FOUND: no path of its own.
        self.expect("end")?;
        self.expect("case")?;
        self.semi()?;
        self.left = left || any_left;
        self.nesting -= 1;
        Ok(choice(line, "CASE", paths))
    }

    /// `[WHILE cond | FOR ... IN ... | FOREACH ...] LOOP stmts END LOOP [label];`: the body
    /// runs or it does not.
    fn loop_stmt(&mut self) -> Res<Vec<Pl>> {
        self.nest()?;
        let line = self.line();
        let head = self.word();
        let mut names_var = None;
        if head.as_deref() != Some("loop") {
            self.i += 1;
            let header = self.until(&["loop"])?;
            if head.as_deref() == Some("for") {
                names_var = self.platform_table_names(&header);
            }
            if self.collect {
                if head.as_deref() == Some("while") {
                    self.cond_chunk(&header);
                } else if let Some(at) = header
                    .iter()
                    .position(|t| t.kind == T::Ident && self.text(t).eq_ignore_ascii_case("in"))
                {
                    let q = &header[at + 1..];
                    if q.first().is_some_and(|t| {
                        matches!(
                            self.text(t).to_ascii_lowercase().as_str(),
                            "select" | "with" | "values"
                        )
                    }) {
                        let s = self.span(q);
                        self.chunk(s);
                    }
                }
            }
        }
        self.expect("loop")?;
        let left = self.left;
        let known_names = self.catalog_names.len();
        self.catalog_names.extend(names_var);
        let body = self.path();
        self.catalog_names.truncate(known_names);
        let (body, _) = body?;
        // EXIT and CONTINUE inside leave only this loop; RETURN leaves everything.
        self.left = left || self.returned;
        self.expect("end")?;
        self.expect("loop")?;
        if self.word().is_some_and(|w| !is_reserved(&w)) {
            self.i += 1;
        }
        self.semi()?;
        self.nesting -= 1;
        Ok(choice(line, "loop", vec![body, Vec::new()]))
    }

    /// `FOR v IN [(] SELECT table_name FROM information_schema.tables WHERE table_schema =
    /// 'auth' [AND ...] [)]` (or `tablename FROM pg_tables WHERE schemaname = ...`) over a
    /// Supabase platform schema: `v` (lower-cased). Its values are the names of Supabase's own
    /// tables there, plain identifiers, so pasted unquoted into dynamic SQL (`'GRANT SELECT ON
    /// auth.' || v`) each is one name of that schema, not any SQL.
    fn platform_table_names(&self, header: &[Tok]) -> Option<String> {
        let words: Vec<String> = header
            .iter()
            .filter(|t| t.kind != T::OpenParen && t.kind != T::CloseParen)
            .map(|t| self.text(t).to_ascii_lowercase())
            .collect();
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let (var, schema) = match w.as_slice() {
            [var, "in", "select", "table_name", "from", "information_schema", ".", "tables", "where", "table_schema", "=", lit, ..]
            | [var, "in", "select", "tablename", "from", "pg_tables", "where", "schemaname", "=", lit, ..]
            | [var, "in", "select", "tablename", "from", "pg_catalog", ".", "pg_tables", "where", "schemaname", "=", lit, ..] => {
                (var, literal_text(lit)?.0)
            }
            _ => return None,
        };
        // Anything after the schema test may only narrow the rows: `AND ...`, then the end.
        let after = w.iter().position(|x| x.starts_with('\''))? + 1;
        if !(after == w.len() || w[after] == "and") {
            return None;
        }
        crate::rules::tenant::PLATFORM_SCHEMAS
            .contains(&schema.to_ascii_lowercase().as_str())
            .then(|| var.to_string())
    }

    /// A statement up to its `;`.
    fn simple(&mut self) -> Res<Vec<Pl>> {
        let line = self.line();
        let start = self.i;
        let mut depth = 0i32;
        while let Some(t) = self.toks.get(self.i) {
            match t.kind {
                T::OpenParen | T::OpenBracket => depth += 1,
                T::CloseParen | T::CloseBracket => depth -= 1,
                T::Semi if depth <= 0 => break,
                _ => {}
            }
            self.i += 1;
        }
        if self.i >= self.toks.len() {
            return Err(format!("a statement without `;` at line {line}"));
        }
        let toks = self.toks[start..self.i].to_vec();
        self.i += 1; // the `;`
        let text = self.span(&toks).to_string();
        let first = self.word_at(start).unwrap_or_default();
        if let Some(at) = assignment(&toks) {
            self.cond_chunk(&toks[at..]);
            return Ok(self.calls(&toks[at..], line));
        }
        match first.as_str() {
            "return" | "exit" | "continue" => {
                if first == "return" && self.collect {
                    let rest = &toks[1..];
                    if self.word_at(start + 1).as_deref() == Some("query") {
                        let q = &toks[2..];
                        if self.word_at(start + 2).as_deref() == Some("execute") {
                            return Ok(Vec::new());
                        }
                        let s = self.span(q);
                        self.chunk(s);
                    } else if self.word_at(start + 1).as_deref() != Some("next") {
                        self.cond_chunk(rest);
                    }
                }
                self.left = true;
                self.returned |= first == "return";
                Ok(Vec::new())
            }
            "raise" => {
                let level = self.word_at(start + 1);
                if !matches!(
                    level.as_deref(),
                    Some("debug" | "log" | "info" | "notice" | "warning")
                ) {
                    self.raised = true;
                }
                Ok(Vec::new())
            }
            "perform" => {
                self.cond_chunk(&toks[1..]);
                Ok(self.calls(&toks[1..], line))
            }
            "select" | "insert" | "update" | "delete" | "with" | "merge" | "values" => {
                self.chunk(&text);
                Ok(self.calls(&toks, line))
            }
            "null" | "assert" | "get" | "open" | "fetch" | "move" | "close" | "notify"
            | "listen" | "unlisten" | "analyze" | "vacuum" | "set" | "reset" | "lock"
            | "discard" | "show" | "comment" | "grant" | "revoke" | "refresh" => Ok(Vec::new()),
            "execute" => Ok(self.execute(&toks[1..], line)),
            _ => Ok(self.sql(&text, line)),
        }
    }

    /// Static SQL inside the body: read like a top-level statement.
    fn sql(&mut self, text: &str, line: u32) -> Vec<Pl> {
        if sql::too_deep(text).is_some() {
            return vec![dynamic_fallback(
                "a statement nested too deep to read in a PL/pgSQL body",
                text,
                line,
            )];
        }
        let parse = SourceFile::parse(text);
        if !parse.errors().is_empty() {
            return vec![dynamic_fallback(
                "a statement the reader cannot parse in a PL/pgSQL body",
                text,
                line,
            )];
        }
        let lines = Lines::starting_at(text, line);
        if self.collect {
            sql::relations_read(&parse.syntax_node(), &mut self.reads);
        }
        parse
            .syntax_node()
            .children()
            .filter_map(|node| {
                let line = lines.of_node(&node);
                read::statement_in(&node, text, &lines, self.depth + 1).map(|op| Pl::Sql {
                    line,
                    op,
                    ensure: false,
                })
            })
            .collect()
    }

    /// `EXECUTE expr [INTO ...] [USING ...]`.
    fn execute(&mut self, toks: &[Tok], line: u32) -> Vec<Pl> {
        let end =
            top_level_word(toks, |i| self.text(&toks[i]), &["into", "using"]).unwrap_or(toks.len());
        let frags = self.eval(&toks[..end]);
        let mut text = String::new();
        let mut raw = false;
        let mut holes = false;
        for f in &frags {
            match f {
                Frag::Text(s) => text.push_str(s),
                Frag::Hole(Hole::Ident) => {
                    holes = true;
                    text.push_str(HOLE);
                }
                Frag::Hole(Hole::Literal) => {
                    holes = true;
                    text.push('\'');
                    text.push_str(HOLE);
                    text.push('\'');
                }
                Frag::Hole(Hole::Raw) => raw = true,
            }
        }
        if raw {
            return vec![Pl::Dynamic {
                line,
                guess: anything("EXECUTE of SQL text known only at run time", None),
            }];
        }
        self.dynamic_text(&text, holes, line)
    }

    /// Dynamic SQL whose text is known, up to identifiers and literals ([`HOLE`]).
    fn dynamic_text(&mut self, text: &str, holes: bool, line: u32) -> Vec<Pl> {
        let what = if holes {
            "EXECUTE of SQL with names or values known only at run time"
        } else {
            "EXECUTE"
        };
        if sql::too_deep(text).is_some() {
            return vec![Pl::Dynamic {
                line,
                guess: anything(what, None),
            }];
        }
        let parse = SourceFile::parse(text);
        if !parse.errors().is_empty() {
            return vec![Pl::Dynamic {
                line,
                guess: anything(&format!("{what} (its SQL does not parse)"), None),
            }];
        }
        // Lines of dynamic SQL are the EXECUTE's.
        let lines = Lines::starting_at("", line);
        let mut out = Vec::new();
        for node in parse.syntax_node().children() {
            let Some(op) = read::statement_in(&node, text, &lines, self.depth + 1) else {
                continue;
            };
            if !holes || !format!("{op:?}").contains(HOLE) {
                out.push(Pl::Sql {
                    line,
                    op,
                    ensure: false,
                });
                continue;
            }
            let guess = narrowed(what, &op);
            // Known to touch nothing the judge reads (privileges of roles that are not
            // clients'): as if no statement ran.
            if matches!(op, Op::Privileges { .. })
                && guess.targets.is_empty()
                && !guess.anything
                && !guess.creates_only
            {
                continue;
            }
            out.push(Pl::Dynamic { line, guess });
        }
        out
    }

    /// The value of an expression as text fragments.
    fn eval(&self, toks: &[Tok]) -> Vec<Frag> {
        let mut out = Vec::new();
        for term in split_concat(toks) {
            out.extend(self.term(term));
        }
        out
    }

    fn term(&self, toks: &[Tok]) -> Vec<Frag> {
        let raw = vec![Frag::Hole(Hole::Raw)];
        let mut toks = toks;
        // `expr::text`
        if let [rest @ .., a, b, c] = toks {
            if a.kind == T::Colon && b.kind == T::Colon && c.kind == T::Ident {
                toks = rest;
            }
        }
        match toks {
            [] => raw,
            [t] => match t.kind {
                T::Literal {
                    kind: L::Str { .. } | L::DollarQuotedString { .. },
                } => match literal_text(self.text(t)) {
                    Some((s, _)) => vec![Frag::Text(s)],
                    None => raw,
                },
                T::Literal {
                    kind: L::Int { .. } | L::Numeric { .. },
                } => vec![Frag::Text(self.text(t).to_string())],
                T::Ident
                    if self
                        .catalog_names
                        .contains(&self.text(t).to_ascii_lowercase()) =>
                {
                    vec![Frag::Hole(Hole::Ident)]
                }
                _ => raw,
            },
            [open, inner @ .., close]
                if open.kind == T::OpenParen && close_of(toks, 0) == Some(toks.len() - 1) =>
            {
                let _ = close;
                self.eval(inner)
            }
            _ => {
                // name(args), name possibly qualified with pg_catalog.
                let (name, rest) = match toks {
                    [s, d, n, rest @ ..]
                        if s.kind == T::Ident
                            && d.kind == T::Dot
                            && self.text(s).eq_ignore_ascii_case("pg_catalog") =>
                    {
                        (n, rest)
                    }
                    [n, rest @ ..] => (n, rest),
                    [] => return raw,
                };
                if name.kind != T::Ident
                    || rest.first().map(|t| t.kind) != Some(T::OpenParen)
                    || close_of(rest, 0) != Some(rest.len() - 1)
                {
                    return raw;
                }
                let args: Vec<Vec<Frag>> = split_commas(&rest[1..rest.len() - 1])
                    .into_iter()
                    .map(|a| self.eval(a))
                    .collect();
                match self.text(name).to_ascii_lowercase().as_str() {
                    "format" => format_sql(&args).unwrap_or(raw),
                    "quote_ident" => match args.as_slice() {
                        [a] => match known(a) {
                            Some(s) => vec![Frag::Text(quote_ident(&s))],
                            None => vec![Frag::Hole(Hole::Ident)],
                        },
                        _ => raw,
                    },
                    "quote_literal" | "quote_nullable" => match args.as_slice() {
                        [a] => match known(a) {
                            Some(s) => vec![Frag::Text(quote_literal(&s))],
                            None => vec![Frag::Hole(Hole::Literal)],
                        },
                        _ => raw,
                    },
                    "concat" => args.into_iter().flatten().collect(),
                    _ => raw,
                }
            }
        }
    }
}

/// `target := expr` / `target = expr`: where the expression starts. The target is a variable,
/// a field or an array element: names, dots and subscripts only.
fn assignment(toks: &[Tok]) -> Option<usize> {
    if !matches!(toks.first()?.kind, T::Ident | T::QuotedIdent { .. }) {
        return None;
    }
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate().skip(1) {
        match t.kind {
            T::OpenBracket => depth += 1,
            T::CloseBracket => depth -= 1,
            _ if depth > 0 => {}
            T::Ident | T::QuotedIdent { .. } | T::Dot => {}
            _ if k > 5 => return None,
            T::Eq => return Some(k + 1),
            T::Colon if toks.get(k + 1).is_some_and(|n| n.kind == T::Eq) => return Some(k + 2),
            _ => return None,
        }
    }
    None
}

/// Does `text` hold `word` (lower case) as a word of its own, in any case?
fn has_word(text: &str, word: &str) -> bool {
    let b = text.as_bytes();
    let w = word.as_bytes();
    let n = w.len();
    let Some(&first) = w.first() else {
        return false;
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    // Only where the word's first letter is (in either case): every statement and condition
    // of a function body is asked for `from` and `join`.
    memchr::memchr2_iter(first.to_ascii_lowercase(), first.to_ascii_uppercase(), b).any(|i| {
        b.get(i..i + n).is_some_and(|s| s.eq_ignore_ascii_case(w))
            && (i == 0 || !ident(b[i - 1]))
            && b.get(i + n).is_none_or(|&c| !ident(c))
    })
}

/// Words that end a block, loop or branch: never an END label.
fn is_reserved(w: &str) -> bool {
    matches!(
        w,
        "if" | "loop" | "case" | "end" | "else" | "elsif" | "elseif" | "when" | "exception"
    )
}

/// SQLSTATE condition names raised when an object exists already or does not exist.
fn is_existence_error(c: &str) -> bool {
    c.starts_with("duplicate_") || c.starts_with("undefined_")
}

/// Does the existence test (the names in its literals) name what the statement makes?
fn guarded_by(s: &Pl, names: &[String]) -> bool {
    let named = |n: &str| {
        let n = n.to_ascii_lowercase();
        names
            .iter()
            .any(|x| *x == n || x.rsplit('.').next() == Some(n.as_str()))
    };
    let Pl::Sql { op, .. } = s else {
        return false;
    };
    match op {
        Op::CreatePolicy { policy, .. } => named(&policy.name),
        Op::CreateTable(c) => named(&c.name.name),
        Op::CreateIndex { index, table, .. } => {
            index.name.as_deref().is_some_and(named) || named(&table.name)
        }
        Op::AlterTable { table, actions, .. } => actions.iter().all(|a| match a {
            read::Action::AddColumn { column, .. } => named(&column.name),
            _ => named(&table.name),
        }),
        Op::CreateFunction { name, .. } => named(&name.name),
        _ => false,
    }
}

/// Data statements: kept only for the migration impact (`UPDATE` or `DELETE` without WHERE,
/// `TRUNCATE`), or DML that calls only built-in value functions (`SET slug =
/// gen_random_uuid()::text`): no table, column, policy or index changes.
fn changes_no_schema(s: &Pl) -> bool {
    const VALUE_FUNCTIONS: [&str; 16] = [
        "gen_random_uuid",
        "uuid_generate_v4",
        "now",
        "md5",
        "random",
        "lower",
        "upper",
        "coalesce",
        "concat",
        "substr",
        "replace",
        "trim",
        "left",
        "length",
        "to_char",
        "encode",
    ];
    match s {
        Pl::Sql {
            op: Op::Destructive { .. },
            ..
        } => true,
        Pl::Call { functions, .. } => functions
            .iter()
            .all(|f| VALUE_FUNCTIONS.contains(&f.name.as_str())),
        _ => false,
    }
}

/// Catalog relations an existence test reads.
fn is_catalog(name: &str) -> bool {
    let name = name.trim_matches('"');
    name.starts_with("pg_") || name == "information_schema" || name == "pg_catalog"
}

fn pl_line(p: &Pl) -> u32 {
    match p {
        Pl::Sql { line, .. }
        | Pl::Dynamic { line, .. }
        | Pl::Choice { line, .. }
        | Pl::Call { line, .. } => *line,
    }
}

/// A choice between paths; nothing when no path changes anything, the one path when only one
/// can run.
fn choice(line: u32, what: &'static str, mut paths: Vec<Vec<Pl>>) -> Vec<Pl> {
    if paths.iter().all(Vec::is_empty) {
        return Vec::new();
    }
    if paths.len() == 1 {
        return paths.pop().unwrap_or_default();
    }
    vec![Pl::Choice { line, what, paths }]
}

/// Index of the bracket closing the one at `open`.
fn close_of(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            T::OpenParen | T::OpenBracket => depth += 1,
            T::CloseParen | T::CloseBracket => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Position of the first of `words` at bracket depth 0.
fn top_level_word<'t>(
    toks: &[Tok],
    text: impl Fn(usize) -> &'t str,
    words: &[&str],
) -> Option<usize> {
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate() {
        match t.kind {
            T::OpenParen | T::OpenBracket => depth += 1,
            T::CloseParen | T::CloseBracket => depth -= 1,
            T::Ident if depth == 0 => {
                let w = text(k);
                if words.iter().any(|x| x.eq_ignore_ascii_case(w)) {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Split on `||` at bracket depth 0.
fn split_concat(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut k = 0;
    while k < toks.len() {
        match toks[k].kind {
            T::OpenParen | T::OpenBracket => depth += 1,
            T::CloseParen | T::CloseBracket => depth -= 1,
            T::Or
                if depth == 0
                    && toks
                        .get(k + 1)
                        .is_some_and(|n| n.kind == T::Or && n.start == toks[k].end) =>
            {
                out.push(&toks[start..k]);
                k += 2;
                start = k;
                continue;
            }
            _ => {}
        }
        k += 1;
    }
    out.push(&toks[start..]);
    out
}

/// Split on `,` at bracket depth 0.
fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (k, t) in toks.iter().enumerate() {
        match t.kind {
            T::OpenParen | T::OpenBracket => depth += 1,
            T::CloseParen | T::CloseBracket => depth -= 1,
            T::Comma if depth == 0 => {
                out.push(&toks[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    if start < toks.len() || !out.is_empty() {
        out.push(&toks[start..]);
    }
    out
}

/// A part of dynamic SQL text.
#[derive(Debug, Clone, PartialEq)]
enum Frag {
    Text(String),
    Hole(Hole),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Hole {
    /// Quoted as an identifier (`%I`, `quote_ident`): one name, whatever its value.
    Ident,
    /// Quoted as a literal (`%L`, `quote_literal`).
    Literal,
    /// Unquoted text: could be any SQL.
    Raw,
}

fn known(frags: &[Frag]) -> Option<String> {
    let mut s = String::new();
    for f in frags {
        match f {
            Frag::Text(t) => s.push_str(t),
            Frag::Hole(_) => return None,
        }
    }
    Some(s)
}

/// `format(fmt, args...)` as Postgres computes it (`%s`, `%I`, `%L`, `%%`, `%n$`); `None`
/// when the format is not a known literal or uses what is not read (widths, flags).
fn format_sql(args: &[Vec<Frag>]) -> Option<Vec<Frag>> {
    let fmt = known(args.first()?)?;
    let mut out = Vec::new();
    let mut text = String::new();
    let mut next = 1usize;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '$' || d == '-' || d == '*' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let kind = chars.next()?;
        if kind == '%' && spec.is_empty() {
            text.push('%');
            continue;
        }
        let idx = match spec.strip_suffix('$') {
            Some(n) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                let n: usize = n.parse().ok()?;
                next = n + 1;
                n
            }
            None if spec.is_empty() => {
                next += 1;
                next - 1
            }
            _ => return None,
        };
        let arg = args.get(idx)?;
        let piece: Vec<Frag> = match (kind, known(arg)) {
            ('s', _) => arg.clone(),
            ('I', Some(s)) => vec![Frag::Text(quote_ident(&s))],
            ('I', None) => vec![Frag::Hole(Hole::Ident)],
            ('L', Some(s)) => vec![Frag::Text(quote_literal(&s))],
            ('L', None) => vec![Frag::Hole(Hole::Literal)],
            _ => return None,
        };
        out.push(Frag::Text(std::mem::take(&mut text)));
        out.extend(piece);
    }
    out.push(Frag::Text(text));
    Some(out)
}

/// Always quoted: a quoted name is the same object as the unquoted lower-case one.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    let body = s.replace('\'', "''");
    if s.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

fn anything(what: &str, within: Option<String>) -> Unverifiable {
    Unverifiable {
        what: what.to_string(),
        targets: Vec::new(),
        words: Default::default(),
        anything: true,
        within,
        creates_only: false,
    }
}

/// The old guess over a statement's text (its DDL targets, its words), for SQL in a body
/// that does not parse.
fn dynamic_fallback(what: &str, text: &str, line: u32) -> Pl {
    Pl::Dynamic {
        line,
        guess: read::unverifiable(what, text, true),
    }
}

/// What a statement with run-time names or values may touch: its tables when they are known;
/// nothing that exists when it creates a table of an unknown name; else any table (of its
/// schema when that is known).
fn narrowed(what: &str, op: &Op) -> Unverifiable {
    let has_hole = |q: &QualName| q.name.contains(HOLE) || q.schema.contains(HOLE);
    let targets: Option<Vec<QualName>> = match op {
        Op::CreateTable(c) if has_hole(&c.name) => {
            return Unverifiable {
                what: "EXECUTE of CREATE TABLE with a name known only at run time".into(),
                targets: Vec::new(),
                words: Default::default(),
                anything: false,
                within: None,
                creates_only: true,
            }
        }
        Op::CreateTable(c) => Some(vec![c.name.clone()]),
        Op::AlterTable { table, .. }
        | Op::CreatePolicy { table, .. }
        | Op::AlterPolicy { table, .. }
        | Op::DropPolicy { table, .. }
        | Op::CreateIndex { table, .. } => Some(vec![table.clone()]),
        Op::DropTable { tables, .. } => Some(tables.clone()),
        Op::CreateFunction { .. } | Op::Destructive { .. } => Some(Vec::new()),
        // Privileges of roles that are not clients' decide nothing the judge reads.
        Op::Privileges { roles, .. } if crate::schema::clients_named(roles, true).is_empty() => {
            Some(Vec::new())
        }
        Op::Privileges {
            tables, schemas, ..
        } => match schemas.as_slice() {
            [] => Some(tables.clone()),
            [one] if !one.contains(HOLE) => return anything(what, Some(one.clone())),
            _ => None,
        },
        _ => None,
    };
    let Some(targets) = targets else {
        return anything(what, None);
    };
    let unknown: Vec<&QualName> = targets.iter().filter(|q| has_hole(q)).collect();
    if unknown.is_empty() {
        return Unverifiable {
            what: what.to_string(),
            targets,
            words: Default::default(),
            anything: false,
            within: None,
            creates_only: false,
        };
    }
    let schemas: Vec<&str> = unknown.iter().map(|q| q.schema.as_str()).collect();
    let within = (!schemas.iter().any(|s| s.contains(HOLE))
        && schemas.windows(2).all(|w| w[0] == w[1]))
    .then(|| schemas[0].to_string());
    anything(what, within)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::migrations::read::Action;

    fn read(body: &str) -> Vec<Pl> {
        read_block(body, 1, 0).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    #[test]
    fn literal_bodies() {
        assert_eq!(literal_text("$$ x $$"), Some((" x ".into(), 2)));
        assert_eq!(literal_text("$a$x$$y$a$"), Some(("x$$y".into(), 3)));
        assert_eq!(literal_text("'it''s'"), Some(("it's".into(), 1)));
        assert_eq!(literal_text("$a$"), None);
    }

    #[test]
    fn dml_only_changes_nothing() {
        let b: Vec<Pl> = read_block(
            "declare n int; begin\n  insert into t values (1);\n  update t set a = 1 where b;\n  select count(*) into n from t;\n  perform f();\n  n := n + 1;\n  raise notice 'x %', n;\n  for r in select * from t loop update t set a = r.a; end loop;\n  if n > 1 then delete from t where a = 1; else null; end if;\nend",
            1,
            0,
        )
        .unwrap()
        .into_iter()
        .filter(|s| !matches!(s, Pl::Call { .. }))
        .collect();
        assert_eq!(b, []);
    }

    #[test]
    fn static_ddl_is_read_at_its_line() {
        let b = read("begin\n  alter table docs enable row level security;\nend;");
        let [Pl::Sql {
            line: 2,
            op: Op::AlterTable { table, actions, .. },
            ensure: false,
        }] = b.as_slice()
        else {
            panic!("{b:?}")
        };
        assert_eq!(table, &QualName::new("public", "docs"));
        assert_eq!(actions, &[Action::Rls(true)]);
    }

    #[test]
    fn execute_of_literals_and_format_is_read() {
        for e in [
            "execute 'alter table docs disable row level security';",
            "execute $q$alter table docs disable row level security$q$;",
            "execute format('alter table %I disable row level security', 'docs');",
            "execute format('alter table %s.%I %s', 'public', 'docs', 'disable row level security');",
            "execute 'alter table ' || quote_ident('docs') || ' disable row level security';",
        ] {
            let b = read(&format!("begin {e} end"));
            let [Pl::Sql { op: Op::AlterTable { table, actions, .. }, .. }] = b.as_slice() else {
                panic!("{e}: {b:?}")
            };
            assert_eq!(table.name, "docs", "{e}");
            assert_eq!(actions, &[Action::Rls(false)], "{e}");
        }
    }

    #[test]
    fn dynamic_sql_is_narrowed() {
        let guess = |body: &str| match read(body).as_slice() {
            [Pl::Dynamic { guess, .. }] => guess.clone(),
            other => panic!("{body}: {other:?}"),
        };
        let g = guess("begin execute format('create table public.%I (id int)', n); end");
        assert!(!g.anything && g.targets.is_empty(), "{g:?}");
        let g = guess(
            "begin execute 'alter table ' || quote_ident(t) || ' disable row level security'; end",
        );
        assert!(g.anything, "{g:?}");
        assert_eq!(g.within.as_deref(), Some("public"));
        let g =
            guess("begin execute format('create policy p on docs using (tenant_id = %L)', v); end");
        assert!(!g.anything);
        assert_eq!(g.targets, [QualName::new("public", "docs")]);
        let g = guess("begin execute 'alter table docs ' || action; end");
        assert!(g.anything && g.within.is_none());
        let g = guess("begin execute stmt; end");
        assert!(g.anything);
    }

    #[test]
    fn branches_loops_and_handlers_are_paths() {
        let b = read("begin if x then alter table a enable row level security; elsif y then null; end if; end");
        let [Pl::Choice {
            what: "IF", paths, ..
        }] = b.as_slice()
        else {
            panic!("{b:?}")
        };
        assert_eq!(paths.len(), 3, "then, elsif and the missing else");
        let b = read("begin loop alter table a enable row level security; exit; end loop; end");
        assert!(
            matches!(b.as_slice(), [Pl::Choice { what: "loop", .. }]),
            "{b:?}"
        );
        let b = read("begin begin alter table a enable row level security; alter table b enable row level security; exception when others then null; end; end");
        let [Pl::Choice {
            what: "exception block",
            paths,
            ..
        }] = b.as_slice()
        else {
            panic!("{b:?}")
        };
        assert_eq!(paths[0].len(), 2);
        assert!(paths[1].is_empty());
    }

    #[test]
    fn a_loop_over_a_platform_schemas_table_names_is_read_as_names() {
        // The names of auth's tables pasted into a GRANT: a statement on auth's tables, which
        // touches no tenant table.
        for header in [
            "for tt in (select table_name from information_schema.tables where table_schema = 'auth')",
            "for tt in select tablename from pg_catalog.pg_tables where schemaname = 'auth' and tablename <> 'x'",
        ] {
            let body = format!("declare tt text; begin {header} loop execute 'GRANT SELECT ON auth.' || tt || ' TO service_role'; end loop; end");
            let b = read(&body);
            assert!(
                !format!("{b:?}").contains("Dynamic"),
                "{body}: {b:?}"
            );
        }
        // Any other schema's names, another query, or the variable used outside the loop:
        // text known only at run time, as before.
        for body in [
            "declare tt text; begin for tt in (select table_name from information_schema.tables where table_schema = 'public') loop execute 'ALTER TABLE public.' || tt || ' DISABLE ROW LEVEL SECURITY'; end loop; end",
            "declare tt text; begin for tt in (select name from my_list where table_schema = 'auth') loop execute 'GRANT SELECT ON auth.' || tt || ' TO service_role'; end loop; end",
            "declare tt text; begin for tt in (select table_name from information_schema.tables where table_schema = 'auth' or true) loop execute 'GRANT SELECT ON auth.' || tt; end loop; end",
            "declare tt text; begin for tt in (select table_name from information_schema.tables where table_schema = 'auth') loop null; end loop; execute 'GRANT SELECT ON auth.' || tt; end",
        ] {
            let b = read(body);
            assert!(format!("{b:?}").contains("anything: true"), "{body}: {b:?}");
        }
    }

    #[test]
    fn existence_guards_and_swallowed_duplicates_ensure() {
        for body in [
            "begin if not exists (select 1 from pg_policies where policyname = 'p') then create policy p on docs using (true); end if; end",
            "begin if not exists (select from pg_catalog.pg_policy where polname = 'p') then create policy p on docs using (true); end if; end",
            "begin create policy p on docs using (true); exception when duplicate_object then null; end",
        ] {
            let b = read(body);
            assert!(
                matches!(b.as_slice(), [Pl::Sql { ensure: true, op: Op::CreatePolicy { .. }, .. }]),
                "{body}: {b:?}"
            );
        }
        let b = read("begin if to_regclass('public.docs') is null then create table docs (id int); end if; end");
        assert!(
            matches!(
                b.as_slice(),
                [Pl::Sql {
                    ensure: true,
                    op: Op::CreateTable(_),
                    ..
                }]
            ),
            "{b:?}"
        );
        // The new column filled in under the same guard: still "make sure it exists".
        let b = read("begin if not exists (select 1 from information_schema.columns where table_name = 'docs' and column_name = 'slug') then alter table docs add column slug text; update docs set slug = gen_random_uuid()::text; end if; end");
        assert!(
            matches!(
                b.as_slice(),
                [
                    Pl::Sql {
                        ensure: true,
                        op: Op::AlterTable { .. },
                        ..
                    },
                    Pl::Call { .. }
                ]
            ),
            "{b:?}"
        );
        // Beside the column, a table dropped, or a function of the history called: real
        // branches.
        for body in [
            "begin if not exists (select 1 from information_schema.columns where column_name = 'slug') then alter table docs add column slug text; drop table docs; end if; end",
            "begin if not exists (select 1 from information_schema.columns where column_name = 'slug') then alter table docs add column slug text; update docs set slug = make_slug(id); end if; end",
        ] {
            let b = read(body);
            assert!(matches!(b.as_slice(), [Pl::Choice { .. }]), "{body}: {b:?}");
        }
        // A condition on data, a test that something exists, a test that names something
        // else: real branches.
        for body in [
            "begin if exists (select 1 from docs) then alter table docs disable row level security; end if; end",
            "begin if exists (select 1 from pg_roles where rolname = 'x') then create policy p on docs using (true); end if; end",
            "begin if not exists (select 1 from pg_policies where policyname = 'q') then create policy p on docs using (true); end if; end",
            "begin if not exists (select 1 from pg_policies where policyname = 'p') or x then create policy p on docs using (true); end if; end",
        ] {
            let b = read(body);
            assert!(matches!(b.as_slice(), [Pl::Choice { .. }]), "{body}: {b:?}");
        }
    }

    #[test]
    fn a_raising_branch_is_no_path_and_statements_after_return_may_not_run() {
        let b = read("begin if x then raise exception 'no'; end if; alter table a enable row level security; end");
        assert!(matches!(b.as_slice(), [Pl::Sql { .. }]), "{b:?}");
        let b =
            read("begin if x then return; end if; alter table a enable row level security; end");
        assert!(
            matches!(b.as_slice(), [Pl::Choice { what, .. }] if what.contains("RETURN")),
            "{b:?}"
        );
    }

    #[test]
    fn what_is_not_understood_is_an_error() {
        for body in [
            "begin if x then null; end",
            "begin alter table a enable row level security",
            "select 1",
            "begin end; extra",
            "begin execute 'x",
        ] {
            assert!(read_block(body, 1, 0).is_err(), "{body}");
        }
        let deep = format!("{}{}", "begin ".repeat(200), "end; ".repeat(200));
        assert!(read_block(&deep, 1, 0).is_err());
    }

    #[test]
    fn words_are_whole_words_in_any_case() {
        assert!(has_word("select 1 FROM t", "from"));
        assert!(has_word("from", "from"));
        assert!(has_word("x\nJoin y", "join"));
        assert!(!has_word("select fromage", "from"));
        assert!(!has_word("select t_from", "from"));
        assert!(!has_word("select $from", "from"));
        assert!(!has_word("fro", "from"));
        assert!(!has_word("", "from"));
        assert!(has_word("é from", "from") && !has_word("éfrom", "from"));
    }

    #[test]
    fn reads_of_function_bodies() {
        let r = function_reads(
            "sql",
            "select tenant_id from tenant_members m join public.tenants t on t.id = m.tenant_id where user_id = auth.uid()",
            1,
        );
        assert_eq!(
            r,
            [
                QualName::new("public", "tenant_members"),
                QualName::new("public", "tenants")
            ]
        );
        let r = function_reads(
            "plpgsql",
            "declare ok boolean; begin\n if exists (select 1 from private.members where uid = auth.uid()) then return true; end if;\n select true into ok from grants g; for r in with x as (select 1) select * from x, audit loop end loop; perform 1 from logs; return coalesce(ok, false); end",
            1,
        );
        assert_eq!(
            r,
            [
                QualName::new("private", "members"),
                QualName::new("public", "grants"),
                QualName::new("public", "audit"),
                QualName::new("public", "logs"),
            ]
        );
    }
}
