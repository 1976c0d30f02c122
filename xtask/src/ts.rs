//! Parsing TypeScript and JavaScript with oxc.
//!
//! oxc is pinned exactly (`=0.146.0`): its newer releases need a newer rustc than this
//! workspace's 1.95, and its AST API changes between releases. A regex reader gets route
//! checks wrong both ways (a wrapper named in a comment passes, an arrow-bodied export
//! fails; see `shared/reference/parsers.md`), so every check on code reads the syntax tree.
//!
//! A file with any syntax error is not judged at all: oxc recovers from some errors and
//! still gives a tree, and conclusions drawn from a partial tree could pass code that is
//! not there. Callers turn [`SyntaxError`] into an "unverified" verdict.

use oxc_allocator::Allocator;
use oxc_ast::ast::Program;
use oxc_parser::Parser;
use oxc_span::{SourceType, Span};

/// The extensions read as code.
pub const CODE_EXTENSIONS: [&str; 8] = ["ts", "tsx", "mts", "cts", "js", "jsx", "mjs", "cjs"];

/// Is this repository path a TypeScript/JavaScript source file (not a `.d.ts`)?
pub fn is_code(path: &str) -> bool {
    !path.ends_with(".d.ts")
        && path
            .rsplit_once('.')
            .is_some_and(|(_, ext)| CODE_EXTENSIONS.contains(&ext))
}

/// The text of one file with a line index, for `file:line` in findings.
pub struct Source<'s> {
    /// Repository path, `/`-separated.
    pub path: &'s str,
    pub text: &'s str,
    line_starts: Vec<u32>,
}

impl<'s> Source<'s> {
    pub fn new(path: &'s str, text: &'s str) -> Source<'s> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i as u32 + 1));
        Source {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: u32) -> u32 {
        self.line_starts.partition_point(|&start| start <= offset) as u32
    }

    /// The source text of a span, on one line and cut to `max` characters, for messages.
    pub fn snippet(&self, span: Span, max: usize) -> String {
        let raw = self
            .text
            .get(span.start as usize..span.end as usize)
            .unwrap_or("");
        let one_line = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > max {
            let cut: String = one_line.chars().take(max).collect();
            format!("{cut}…")
        } else {
            one_line
        }
    }
}

/// Why a file could not be read as code: the parser's first message and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub message: String,
}

/// Brackets (`(`, `[`, `{`, `${`) nested deeper than this are not parsed (see [`too_deep`]).
pub const MAX_BRACKETS: usize = 1_000;
/// Nor is code nested deeper than this, operators and keywords chained at one level included.
pub const MAX_NESTING: usize = 10_000;
/// Stack per nesting character (see [`nesting_chars`]) of the thread that parses and
/// judges code: the parser's and the visitors' recursion for one level, with room to spare,
/// in an unoptimised build.
pub const STACK_PER_LEVEL: usize = 8 * 1024;
/// The smallest stack of that thread (code at [`MAX_NESTING`] needs between 4 and 16 MiB in
/// an unoptimised build), and the largest: a file with more nesting characters than the
/// largest holds is not parsed. Reserved, not committed, until used.
pub const MIN_STACK: usize = 64 * 1024 * 1024;
pub const MAX_STACK: usize = 1024 * 1024 * 1024;

thread_local! {
    /// How many levels this thread's stack holds for the reader: set by [`with_stack_for`];
    /// elsewhere (tests, the main thread) what a 2 MiB stack holds.
    static BUDGET: std::cell::Cell<usize> = const { std::cell::Cell::new(2 * 1024 * 1024 / STACK_PER_LEVEL) };
}

/// Words that nest or chain like operators: prefix operators (`typeof typeof x`), binary
/// words, and statements that nest without a bracket (`if (a) if (b) …`, `else if`).
const WORD_OPERATORS: [&str; 22] = [
    "typeof",
    "void",
    "delete",
    "await",
    "new",
    "yield",
    "in",
    "instanceof",
    "of",
    "keyof",
    "infer",
    "extends",
    "as",
    "satisfies",
    "if",
    "else",
    "while",
    "for",
    "do",
    "with",
    "return",
    "throw",
];

/// [`WORD_OPERATORS`] of one length (a test holds them equal to the constant).
const fn word_operators_of_len(len: usize) -> &'static [&'static [u8]] {
    match len {
        2 => &[b"in", b"of", b"as", b"if", b"do"],
        3 => &[b"new", b"for"],
        4 => &[b"void", b"else", b"with"],
        5 => &[b"await", b"yield", b"keyof", b"infer", b"while", b"throw"],
        6 => &[b"typeof", b"delete", b"return"],
        7 => &[b"extends"],
        9 => &[b"satisfies"],
        10 => &[b"instanceof"],
        _ => &[],
    }
}

// As many words by length as in the constant (the unit test checks they are the same).
const _: () = {
    let (mut n, mut len) = (0, 0);
    while len <= 16 {
        n += word_operators_of_len(len).len();
        len += 1;
    }
    assert!(n == WORD_OPERATORS.len());
};

/// One of [`WORD_OPERATORS`], looked up among the few of the word's length: this runs on
/// every word of every file, unoptimised.
fn is_word_operator(word: &[u8]) -> bool {
    let Some(&first) = word.first() else {
        return false;
    };
    word_operators_of_len(word.len())
        .iter()
        .any(|c| c[0] == first && *c == word)
}

/// Byte classes of the pre-scans, as a table: one lookup per byte instead of calls (the
/// reader is built unoptimised in `cargo xtask`). A letter; a letter, digit or `_`; the
/// start of a JavaScript word (a letter, `_`, `$`); a character of one (and digits).
const ALPHA: u8 = 1;
const WORD: u8 = 2;
const WORD_START_JS: u8 = 4;
const WORD_JS: u8 = 8;
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let (alpha, digit) = (b.is_ascii_alphabetic(), b.is_ascii_digit());
        t[c] = if alpha {
            ALPHA | WORD | WORD_START_JS | WORD_JS
        } else {
            0
        } | if digit { WORD | WORD_JS } else { 0 }
            | if b == b'_' {
                WORD | WORD_START_JS | WORD_JS
            } else {
                0
            }
            | if b == b'$' {
                WORD_START_JS | WORD_JS
            } else {
                0
            };
        c += 1;
    }
    t
};

/// The characters [`nesting_chars`] counts, as a table (a lookup per byte, not a search).
const NESTING_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let chars = b"([{`+-*/%&|^!~?:<>=.@#";
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = true;
        i += 1;
    }
    t
};

/// How deep code nests, judged cheaply from the bytes before oxc sees them: oxc and the
/// rules' visitors recurse once per level of the tree, so deeper code would overflow the
/// stack (an abort of the whole run, no report) instead of giving a finding. An upper
/// bound, failing closed: each bracket opens a level (in regular expressions too), and each
/// operator character, operator word, call, index or template chained at one level adds
/// one (`a + b + c` is two deep; JSX tags count as operators); `,` and `;` end the chain. Strings, template
/// text and comments are skipped. `Some((offset, deepest, limit))` when a limit is passed:
/// where it was first passed, the deepest nesting seen by its measure, and the limit.
pub fn too_deep(text: &str) -> Option<(usize, usize, usize)> {
    #[derive(PartialEq)]
    enum Open {
        Bracket,
        /// `${` of a template literal: its `}` goes back into the template's text.
        TemplateExpr,
    }
    let b = text.as_bytes();
    // Operators chained at each open level; `depth` is their sum plus the levels.
    let mut levels: Vec<(Open, usize)> = vec![(Open::Bracket, 0)];
    let mut depth = 1usize;
    let mut over: Option<(usize, bool)> = None;
    let (mut deepest, mut deepest_brackets) = (1usize, 0usize);
    let mut i = 0usize;
    let mut in_template = false;
    while i < b.len() {
        if in_template {
            // Template text up to its closing backtick or a `${`.
            match b[i] {
                b'\\' => i += 2,
                b'`' => {
                    in_template = false;
                    i += 1;
                }
                b'$' if b.get(i + 1) == Some(&b'{') => {
                    in_template = false;
                    levels.push((Open::TemplateExpr, 0));
                    depth += 1;
                    i += 2;
                }
                _ => i += 1,
            }
        } else {
            let c = b[i];
            let mut chains = false;
            match c {
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                    continue;
                }
                b'\'' | b'"' => {
                    // To the closing quote; a string never spans a line.
                    i += 1;
                    while i < b.len() && b[i] != c && b[i] != b'\n' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                    continue;
                }
                b'`' => {
                    // A link too: tagged templates chain (`` f`a``b` ``).
                    in_template = true;
                    chains = true;
                }
                b'(' | b'[' | b'{' => {
                    // A call or an index is also a link at the outer level: `f()()()` and
                    // `a[0][0]` nest as deep as they are long.
                    if c != b'{' {
                        if let Some((_, top)) = levels.last_mut() {
                            *top += 1;
                        }
                        depth += 1;
                    }
                    levels.push((Open::Bracket, 0));
                    depth += 1;
                }
                b')' | b']' | b'}' if levels.len() > 1 => {
                    let (open, chained) = levels.pop().unwrap_or((Open::Bracket, 0));
                    depth -= chained + 1;
                    in_template = c == b'}' && open == Open::TemplateExpr;
                }
                b',' | b';' => {
                    if let Some((_, top)) = levels.last_mut() {
                        depth -= *top;
                        *top = 0;
                    }
                }
                // Each character is a link: `!!!!x` nests four deep.
                b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^' | b'!' | b'~' | b'?'
                | b':' | b'<' | b'>' | b'=' | b'.' | b'@' | b'#' => chains = true,
                c if CLASS[usize::from(c)] & WORD_START_JS != 0 => {
                    let start = i;
                    while i + 1 < b.len() && CLASS[usize::from(b[i + 1])] & WORD_JS != 0 {
                        i += 1;
                    }
                    chains = is_word_operator(&b[start..=i]);
                }
                _ => {}
            }
            if chains {
                if let Some((_, top)) = levels.last_mut() {
                    *top += 1;
                }
                depth += 1;
            }
            i += 1;
        }
        // Plain comparisons: this runs for every byte, unoptimised.
        let brackets = levels.len() - 1;
        if depth > deepest {
            deepest = depth;
        }
        if brackets > deepest_brackets {
            deepest_brackets = brackets;
        }
        if over.is_none() && (brackets > MAX_BRACKETS || depth > MAX_NESTING) {
            let at = i.min(b.len()).saturating_sub(1);
            over = Some((at, brackets > MAX_BRACKETS));
        }
    }
    over.map(|(at, brackets)| match brackets {
        true => (at, deepest_brackets, MAX_BRACKETS),
        false => (at, deepest, MAX_NESTING),
    })
}

/// A bound on how deep the tree of `text` can be that no reading of the text can beat:
/// every bracket opener, operator character, backtick and operator word, wherever it is
/// (strings, comments, regular expressions and JSX text included, since telling them apart
/// is the parser's job). Each level of a tree needs at least one of them. [`too_deep`]
/// judges what real code does; this is what makes a text that fools it harmless.
pub fn nesting_chars(text: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if CLASS[usize::from(c)] & ALPHA != 0 {
            let start = i;
            while i < text.len() && CLASS[usize::from(text[i])] & WORD != 0 {
                i += 1;
            }
            n += usize::from(is_word_operator(&text[start..i]));
            continue;
        }
        n += usize::from(NESTING_CHAR[usize::from(c)]);
        i += 1;
    }
    n
}

/// Run `f` (which parses `text` and visits its tree) on a thread whose stack holds
/// [`nesting_chars`] levels of the reader, at least [`MIN_STACK`] and at most [`MAX_STACK`]
/// (reserved, not committed, until used); [`parse`] refuses what it cannot hold.
pub fn with_stack_for<T: Send>(text: &[u8], f: impl FnOnce() -> T + Send) -> T {
    let wanted = nesting_chars(text).saturating_mul(STACK_PER_LEVEL);
    let stack = wanted.clamp(MIN_STACK, MAX_STACK);
    let job = std::sync::Mutex::new(Some(f));
    std::thread::scope(|s| {
        // A system that will not reserve a large stack gets the smallest (and `parse`
        // refuses what that cannot hold).
        for size in [stack, MIN_STACK] {
            let job = &job;
            let spawned = std::thread::Builder::new()
                .name("ts-reader".into())
                .stack_size(size)
                .spawn_scoped(s, move || {
                    BUDGET.with(|b| b.set(size / STACK_PER_LEVEL));
                    let f = job.lock().ok().and_then(|mut j| j.take());
                    f.map(|f| f())
                });
            if let Ok(handle) = spawned {
                match handle.join() {
                    Ok(Some(out)) => return out,
                    Ok(None) => unreachable!("the reader's job runs once"),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        }
        panic!("cannot start a thread for the code reader")
    })
}

/// Memory a parse may take whatever the file's size (real files take about 7 bytes of
/// arena per byte of text) ...
const PARSE_BUDGET_BASE: usize = 16 << 20;
/// ... and per byte of text.
const PARSE_BUDGET_PER_BYTE: usize = 32;

/// Parse `src` into `alloc`. Any diagnostic of error severity makes the whole file an error,
/// and so does code nested deeper than the reader goes ([`too_deep`]) or than this thread's
/// stack holds ([`nesting_chars`]): run this (and the visitors over its tree) inside
/// [`with_stack_for`].
pub fn parse<'a>(alloc: &'a Allocator, src: &Source<'a>) -> Result<Program<'a>, SyntaxError> {
    if let Some((at, deepest, limit)) = too_deep(src.text) {
        let line = src.line(at as u32);
        return Err(SyntaxError {
            line,
            message: format!(
                "nested {deepest} levels deep at line {line}; the reader stops at {limit} (split the expression)"
            ),
        });
    }
    let (chars, budget) = (nesting_chars(src.text.as_bytes()), BUDGET.with(|b| b.get()));
    if chars > budget {
        return Err(SyntaxError {
            line: 1,
            message: format!(
                "{chars} brackets, operators and keywords: more than the reader's stack holds ({budget}), so its nesting cannot be bounded"
            ),
        });
    }
    let mut source_type = SourceType::from_path(src.path).unwrap_or_else(|_| SourceType::ts());
    if source_type.is_javascript() {
        // Next.js writes JSX in `.js` files; oxc reads `.js` without it by default.
        source_type = source_type.with_jsx(true);
    }
    // Some inputs make oxc's speculative parsing allocate exponentially (`a < (` chains):
    // the parse gets a memory budget far above what any real file needs.
    let budget =
        PARSE_BUDGET_BASE.saturating_add(src.text.len().saturating_mul(PARSE_BUDGET_PER_BYTE));
    let ret = match crate::memory::within(budget, || {
        Parser::new(alloc, src.text, source_type).parse()
    }) {
        Ok(ret) => ret,
        Err(spent) => {
            return Err(SyntaxError {
                line: 1,
                message: format!(
                    "the reader needed more than {} MiB of memory for this {}-byte file (an expression the parser reads speculatively again and again); simplify it",
                    spent.budget >> 20,
                    src.text.len()
                ),
            });
        }
    };
    if ret.panicked || ret.diagnostics.has_errors() {
        let first = ret.diagnostics.errors().next();
        let line = first
            .and_then(|d| d.labels.first())
            .map(|l| src.line(l.offset()))
            .unwrap_or(1);
        let message = first
            .map(|d| d.message.to_string())
            .unwrap_or_else(|| "the parser gave up".into());
        return Err(SyntaxError { line, message });
    }
    Ok(ret.program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_operators_and_nesting_chars_are_told_by_their_shortcuts() {
        for w in WORD_OPERATORS {
            assert!(is_word_operator(w.as_bytes()), "{w}");
        }
        for w in [
            "x", "data", "Typeof", "returns", "_in", "$do", "ix", "void_",
        ] {
            assert!(!is_word_operator(w.as_bytes()), "{w}");
        }
        // The lists by length hold exactly the constant's words.
        let listed: Vec<&str> = (0..=16)
            .flat_map(word_operators_of_len)
            .map(|w| std::str::from_utf8(w).unwrap())
            .collect();
        assert_eq!(listed.len(), WORD_OPERATORS.len());
        assert!(
            listed.iter().all(|w| WORD_OPERATORS.contains(w)),
            "{listed:?}"
        );
        let chars = b"([{`+-*/%&|^!~?:<>=.@#";
        for c in 0..=255u8 {
            assert_eq!(NESTING_CHAR[usize::from(c)], chars.contains(&c), "{c}");
        }
        // `typeof`, `.` and `(`; `returns` is a word, not an operator.
        assert_eq!(nesting_chars(b"typeof a.b(c) returns x"), 3);
        for c in 0..=255u8 {
            let class = CLASS[usize::from(c)];
            assert_eq!(class & ALPHA != 0, c.is_ascii_alphabetic(), "{c}");
            assert_eq!(
                class & WORD != 0,
                c.is_ascii_alphanumeric() || c == b'_',
                "{c}"
            );
            assert_eq!(
                class & WORD_START_JS != 0,
                c.is_ascii_alphabetic() || c == b'_' || c == b'$',
                "{c}"
            );
            assert_eq!(
                class & WORD_JS != 0,
                c.is_ascii_alphanumeric() || c == b'_' || c == b'$',
                "{c}"
            );
        }
    }

    #[test]
    fn lines_are_one_based() {
        let src = Source::new("a.ts", "a\nbc\n\nd");
        assert_eq!(src.line(0), 1);
        assert_eq!(src.line(2), 2);
        assert_eq!(src.line(3), 2);
        assert_eq!(src.line(5), 3);
        assert_eq!(src.line(6), 4);
    }

    #[test]
    fn a_syntax_error_is_reported_with_its_line() {
        let alloc = Allocator::default();
        let src = Source::new(
            "route.ts",
            "export async function GET() {\n  return withAuth(\n}\n",
        );
        let err = parse(&alloc, &src).unwrap_err();
        assert_eq!(err.line, 3, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn typescript_and_jsx_parse() {
        let alloc = Allocator::default();
        let ts = Source::new(
            "route.ts",
            "export const GET = async (req: Request): Promise<Response> => new Response(null);\n",
        );
        assert_eq!(parse(&alloc, &ts).unwrap().body.len(), 1);
        let tsx = Source::new(
            "page.tsx",
            "export default function P() { return <div a={1} />; }\n",
        );
        assert!(parse(&alloc, &tsx).is_ok());
        let js = Source::new(
            "pages/index.js",
            "export default function P() { return <div />; }\n",
        );
        assert!(parse(&alloc, &js).is_ok());
    }

    #[test]
    fn a_large_ordinary_file_is_within_the_memory_budget() {
        // The budget stops runaway speculative parsing (see `memory`), never real code: a large file
        // of generics, arrow functions, comparisons and JSX parse (512 KiB: the bracket bound of
        // `with_stack_for` refuses larger files of this density on its own).
        let chunk = "export const f{i} = async <T extends {{ id: string }}>(req: Request, ctx: {{ params: Promise<{{ id: string }}> }}): Promise<Response> => {\n  const a = (x: number) => x < 3 && (x > 1 || x <= 2);\n  const rows: Array<Map<string, T[]>> = [];\n  return Response.json({{ ok: a(1), rows }});\n};\nexport function C{i}() {{ return <div className=\"x\">{{[1, 2].map((n) => <span key={{n}}>{{n < 2 ? 'a' : 'b'}}</span>)}}</div>; }}\n";
        let mut text = String::new();
        let mut i = 0;
        while text.len() < 512 << 10 {
            text.push_str(
                &chunk
                    .replace("{i}", &i.to_string())
                    .replace("{{", "{")
                    .replace("}}", "}"),
            );
            i += 1;
        }
        with_stack_for(text.as_bytes(), || {
            let alloc = Allocator::default();
            let src = Source::new("big.tsx", &text);
            let program = parse(&alloc, &src).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(program.body.len(), 2 * i);
        });
    }

    #[test]
    fn code_files_are_recognised() {
        assert!(is_code("apps/api/src/app/api/x/route.ts"));
        assert!(is_code("a/b.mjs"));
        assert!(!is_code("types/next-env.d.ts"));
        assert!(!is_code("README.md"));
        assert!(!is_code("Makefile"));
    }
}
