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

/// Parse `src` into `alloc`. Any diagnostic of error severity makes the whole file an error.
pub fn parse<'a>(alloc: &'a Allocator, src: &Source<'a>) -> Result<Program<'a>, SyntaxError> {
    let mut source_type = SourceType::from_path(src.path).unwrap_or_else(|_| SourceType::ts());
    if source_type.is_javascript() {
        // Next.js writes JSX in `.js` files; oxc reads `.js` without it by default.
        source_type = source_type.with_jsx(true);
    }
    let ret = Parser::new(alloc, src.text, source_type).parse();
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
    fn code_files_are_recognised() {
        assert!(is_code("apps/api/src/app/api/x/route.ts"));
        assert!(is_code("a/b.mjs"));
        assert!(!is_code("types/next-env.d.ts"));
        assert!(!is_code("README.md"));
        assert!(!is_code("Makefile"));
    }
}
