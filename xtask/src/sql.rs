//! Small helpers over squawk-syntax's lossless tree, shared by the static migration reader
//! and the policy judge.
//!
//! squawk does not fold identifiers; Postgres does: unquoted names fold to lower case, quoted
//! ones stay as written (`"AuditTrail"` and `audittrail` are two tables). Every name that
//! leaves this module is folded.

use squawk_syntax::{SyntaxKind, SyntaxNode, SyntaxToken};

use crate::schema::QualName;

/// Fold one identifier token as Postgres does.
pub fn fold_ident(text: &str) -> String {
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        inner.replace("\"\"", "\"")
    } else if let Some(rest) = text.strip_prefix("U&").or_else(|| text.strip_prefix("u&")) {
        // Unicode-escaped quoted identifier: keep the body as written (escapes are rare in DDL).
        rest.trim_matches('"').to_string()
    } else {
        text.to_ascii_lowercase()
    }
}

pub fn is_trivia(kind: SyntaxKind) -> bool {
    matches!(kind, SyntaxKind::WHITESPACE | SyntaxKind::COMMENT)
}

/// The non-trivia tokens under a node, in order.
pub fn tokens(node: &SyntaxNode) -> impl Iterator<Item = SyntaxToken> {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !is_trivia(t.kind()))
}

/// A dotted name under a node (`public."AuditTrail"`), folded, in parts.
pub fn name_parts(node: &SyntaxNode) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur: Option<String> = None;
    for t in tokens(node) {
        match t.kind() {
            SyntaxKind::DOT => parts.extend(cur.take()),
            SyntaxKind::L_PAREN | SyntaxKind::R_PAREN | SyntaxKind::COMMA => break,
            _ => {
                // A name part is one token; anything else (an operator) ends the name.
                if cur.is_some() {
                    break;
                }
                cur = Some(fold_ident(t.text()));
            }
        }
    }
    parts.extend(cur);
    parts
}

/// A relation name: one part means the `public` schema (Supabase's search path), three parts
/// (`db.schema.table`) drop the database.
pub fn qual_name(node: &SyntaxNode) -> Option<QualName> {
    let parts = name_parts(node);
    match parts.as_slice() {
        [] => None,
        [name] => Some(QualName::new("public", name.clone())),
        [.., schema, name] => Some(QualName::new(schema.clone(), name.clone())),
    }
}

/// A single folded name (the last part of whatever the node holds).
pub fn simple_name(node: &SyntaxNode) -> Option<String> {
    name_parts(node).pop()
}

/// The `FROM`/`JOIN` relations under a node (also a function's SQL-standard body).
pub fn relations_read(root: &SyntaxNode, out: &mut Vec<QualName>) {
    if !has_node(root, SyntaxKind::RELATION_FROM_ITEM) {
        return;
    }
    let ctes: Vec<String> = root
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::WITH_TABLE)
        .filter_map(|n| child(&n, SyntaxKind::CTE_NAME).and_then(|n| simple_name(&n)))
        .collect();
    for item in root
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::RELATION_FROM_ITEM)
    {
        let Some(name) = child(&item, SyntaxKind::RELATION_NAME_REF) else {
            continue;
        };
        let parts = name_parts(&name);
        if parts.len() == 1 && ctes.contains(&parts[0]) {
            continue;
        }
        if let Some(q) = qual_name(&name) {
            if !out.contains(&q) {
                out.push(q);
            }
        }
    }
}

/// Is there a node of `kind` under `node` (or `node` itself)? Read from the green tree,
/// without the cursor allocated per node of `descendants()`: the common answer "none" (the
/// calls of a seed file's `INSERT`) costs one pass over the tree's shared nodes.
pub fn has_node(node: &SyntaxNode, kind: SyntaxKind) -> bool {
    let raw = u16::from(kind);
    let green = node.green();
    let mut stack = vec![&*green];
    while let Some(n) = stack.pop() {
        if n.kind().0 == raw {
            return true;
        }
        stack.extend(n.children().filter_map(|c| c.into_node()));
    }
    false
}

pub fn child(node: &SyntaxNode, kind: SyntaxKind) -> Option<SyntaxNode> {
    node.children().find(|c| c.kind() == kind)
}

pub fn children(node: &SyntaxNode, kind: SyntaxKind) -> impl Iterator<Item = SyntaxNode> {
    node.children().filter(move |c| c.kind() == kind)
}

pub fn has_token(node: &SyntaxNode, kind: SyntaxKind) -> bool {
    node.children_with_tokens().any(|e| e.kind() == kind)
}

pub fn first_token_kind(node: &SyntaxNode) -> Option<SyntaxKind> {
    tokens(node).next().map(|t| t.kind())
}

/// The source text between the first `(` and the last `)` directly under `node`: the
/// expression of a `USING (...)` or `WITH CHECK (...)` clause, comments included.
pub fn paren_body(node: &SyntaxNode, source: &str) -> Option<String> {
    let toks: Vec<SyntaxToken> = node
        .children_with_tokens()
        .filter_map(|e| e.into_token())
        .collect();
    let open = toks.iter().find(|t| t.kind() == SyntaxKind::L_PAREN)?;
    let close = toks
        .iter()
        .rev()
        .find(|t| t.kind() == SyntaxKind::R_PAREN)?;
    let (a, b) = (
        usize::from(open.text_range().end()),
        usize::from(close.text_range().start()),
    );
    let body = source.get(a..b)?.trim();
    Some(body.to_string())
}

/// Brackets nested deeper than this are not parsed (see [`too_deep`]).
pub const MAX_BRACKETS: usize = 1_000;
/// Nor is a syntax tree deeper than this, operators chained at one level included.
pub const MAX_NESTING: usize = 10_000;

/// Words that chain expressions like operators do (`a OR b OR c`, `x UNION y UNION z`).
const WORD_OPERATORS: [&str; 16] = [
    "and",
    "or",
    "not",
    "is",
    "in",
    "like",
    "ilike",
    "similar",
    "between",
    "overlaps",
    "collate",
    "at",
    "case",
    "union",
    "intersect",
    "except",
];

/// Is `w` one of [`WORD_OPERATORS`] (any case)? Every keyword and name of a file comes
/// through here: most are told apart by their first letter and length alone (the pairs of
/// the list; its test checks every word passes).
fn is_word_operator(w: &str) -> bool {
    let Some(&first) = w.as_bytes().first() else {
        return false;
    };
    matches!(
        (first | 0x20, w.len()),
        (b'a', 2 | 3)
            | (b'i', 2 | 5 | 9)
            | (b'o', 2 | 8)
            | (b'n', 3)
            | (b'c', 4 | 7)
            | (b'l', 4)
            | (b'u', 5)
            | (b'e', 6)
            | (b'b', 7)
            | (b's', 7)
    ) && WORD_OPERATORS.iter().any(|o| o.eq_ignore_ascii_case(w))
}

/// Where SQL text nests deeper than the reader builds a syntax tree for: the byte offset and
/// why. squawk's parser and rowan recurse once per level of the tree, so deeper text would
/// overflow the stack: an abort of the whole run instead of a finding. Judged from the
/// tokens, an upper bound: each bracket opens a level, and each operator chained at one level
/// adds one (`a + b + c` is a tree two levels deep); a comma or `;` ends the chain. No
/// hand-written migration comes near; Postgres stops at its `max_stack_depth` first.
pub fn too_deep(text: &str) -> Option<(usize, String)> {
    use squawk_lexer::TokenKind as T;
    // Each level is at least one byte of its own (a bracket, an operator, a word), and a
    // bracket level a `(` or `[`: text shorter than the limits, or with fewer brackets in
    // all, cannot reach them, and most files are told so without being lexed.
    if text.len() < MAX_NESTING
        && memchr::memchr2_iter(b'(', b'[', text.as_bytes())
            .take(MAX_BRACKETS)
            .count()
            < MAX_BRACKETS
    {
        return None;
    }
    // Operators chained at each open bracket level; `depth` is their sum plus the levels.
    let mut levels: Vec<usize> = vec![0];
    let mut depth = 1usize;
    let mut at = 0usize;
    for tok in squawk_lexer::tokenize(text) {
        let len = tok.len as usize;
        let chains = match tok.kind {
            T::OpenParen | T::OpenBracket => {
                levels.push(0);
                depth += 1;
                if levels.len() > MAX_BRACKETS {
                    return Some((
                        at,
                        format!("brackets nested more than {MAX_BRACKETS} deep: the reader does not parse this file (split the expression)"),
                    ));
                }
                false
            }
            T::CloseParen | T::CloseBracket => {
                if levels.len() > 1 {
                    depth -= levels.pop().unwrap_or_default() + 1;
                }
                false
            }
            T::Comma | T::Semi => {
                if let Some(top) = levels.last_mut() {
                    depth -= *top;
                    *top = 0;
                }
                false
            }
            T::Ident => text.get(at..at + len).is_some_and(is_word_operator),
            T::Whitespace
            | T::LineComment
            | T::BlockComment { .. }
            | T::Literal { .. }
            | T::QuotedIdent { .. }
            | T::PositionalParam { .. }
            | T::Eof => false,
            _ => true, // operators, `.`, `::` and the unknown
        };
        if chains {
            if let Some(top) = levels.last_mut() {
                *top += 1;
            }
            depth += 1;
            if depth > MAX_NESTING {
                return Some((
                    at,
                    format!("an expression nested or chained more than {MAX_NESTING} deep: the reader does not parse this file (split the expression)"),
                ));
            }
        }
        at += len;
    }
    None
}

/// 1-based line numbers from byte offsets.
pub struct Lines {
    starts: Vec<usize>,
    /// Lines before the text (SQL read out of a string literal further down the file).
    before: u32,
}

impl Lines {
    pub fn new(text: &str) -> Lines {
        Lines::starting_at(text, 1)
    }

    /// The lines of text whose first line is line `first` of its file (a function or DO
    /// body, a statement inside one).
    pub fn starting_at(text: &str, first: u32) -> Lines {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Lines {
            starts,
            before: first.saturating_sub(1),
        }
    }

    pub fn line(&self, offset: usize) -> u32 {
        let idx = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(idx.max(1))
            .unwrap_or(u32::MAX)
            .saturating_add(self.before)
    }

    /// The line of a node's first non-trivia token (leading comments are not the statement).
    pub fn of_node(&self, node: &SyntaxNode) -> u32 {
        let start = tokens(node)
            .next()
            .map(|t| t.text_range().start())
            .unwrap_or(node.text_range().start());
        self.line(usize::from(start))
    }
}

/// Every word of SQL text that could name a table, for the fail-closed guesses about what an
/// unreadable statement might touch: unquoted words lower-cased, the body of every `"quoted"`
/// run as Postgres reads the name. Comments and strings count too, and a quote never hides
/// what follows it (a lone `"` in a comment must not swallow the statements after it): a word
/// too many only costs trust, a word too few would vouch for a table.
pub fn words(text: &str) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            let end = quoted_end(&text[i..], '"') + i;
            let inner = text.get(i + 1..end).unwrap_or_default();
            let inner = inner.strip_suffix('"').unwrap_or(inner);
            out.insert(inner.replace("\"\"", "\""));
            i += 1; // and read the words inside too
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            if let Some(w) = text.get(start..i) {
                out.insert(w.to_ascii_lowercase());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The identifiers of expression text as Postgres reads them (which columns a policy reads):
/// comments and string literals skipped, quoted names unquoted, other words lower-cased.
pub fn idents(text: &str) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let len = if rest.starts_with("--") {
            rest.find('\n').unwrap_or(rest.len())
        } else if let Some(body) = rest.strip_prefix("/*") {
            body.find("*/").map_or(rest.len(), |i| i + 4)
        } else if c == '\'' || c == '"' {
            let end = quoted_end(rest, c);
            if c == '"' {
                let inner = &rest[1..end];
                let inner = inner.strip_suffix('"').unwrap_or(inner);
                out.insert(inner.replace("\"\"", "\""));
            }
            end
        } else if c.is_alphanumeric() || c == '_' {
            let end = rest
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '$'))
                .unwrap_or(rest.len());
            out.insert(rest[..end].to_ascii_lowercase());
            end
        } else {
            c.len_utf8()
        };
        rest = &rest[len..];
    }
    out
}

/// Rename an identifier in expression text (after `RENAME COLUMN`, Postgres shows the new
/// name in a policy; so must the stored text). String literals, comments and other words are
/// kept; an unterminated quote or comment runs to the end of the text.
pub fn replace_ident(text: &str, from: &str, to: &str) -> String {
    let quoted_to = if to
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        to.to_string()
    } else {
        format!("\"{}\"", to.replace('"', "\"\""))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let comment = if rest.starts_with("--") {
            Some(rest.find('\n').unwrap_or(rest.len()))
        } else {
            rest.strip_prefix("/*")
                .map(|body| body.find("*/").map_or(rest.len(), |i| i + 4))
        };
        let len = if let Some(end) = comment {
            out.push_str(&rest[..end]);
            end
        } else if c == '\'' || c == '"' {
            let end = quoted_end(rest, c);
            let tok = &rest[..end];
            let name = (c == '"')
                .then(|| tok[1..].strip_suffix('"'))
                .flatten()
                .map(|inner| inner.replace("\"\"", "\""));
            if name.as_deref() == Some(from) {
                out.push_str(&quoted_to);
            } else {
                out.push_str(tok);
            }
            end
        } else if c.is_alphanumeric() || c == '_' {
            let end = rest
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '$'))
                .unwrap_or(rest.len());
            let tok = &rest[..end];
            if tok.to_ascii_lowercase() == from {
                out.push_str(&quoted_to);
            } else {
                out.push_str(tok);
            }
            end
        } else {
            out.push(c);
            c.len_utf8()
        };
        rest = &rest[len..];
    }
    out
}

/// The byte after the closing `quote` of the quoted token at the start of `s` (a doubled quote
/// is one quote inside it), or the end of `s` when it is not closed.
fn quoted_end(s: &str, quote: char) -> usize {
    let b = s.as_bytes();
    let q = quote as u8;
    let mut i = 1;
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(fold_ident("Invoices"), "invoices");
        assert_eq!(fold_ident("\"AuditTrail\""), "AuditTrail");
        assert_eq!(fold_ident("\"a\"\"b\""), "a\"b");
    }

    #[test]
    fn nesting_limits() {
        let parens = |n: usize| format!("select {}1{};", "(".repeat(n), ")".repeat(n));
        assert_eq!(too_deep(&parens(MAX_BRACKETS - 1)), None);
        let (at, why) = too_deep(&parens(MAX_BRACKETS)).unwrap();
        assert_eq!(at, "select ".len() + MAX_BRACKETS - 1);
        assert!(why.contains("brackets"), "{why}");
        assert!(too_deep(&format!("select {}1;", "array[".repeat(MAX_BRACKETS))).is_some());
        let chain = |n: usize, op: &str| format!("select 1{};", format!(" {op} 1").repeat(n));
        assert_eq!(too_deep(&chain(MAX_NESTING - 2, "+")), None);
        assert!(too_deep(&chain(MAX_NESTING, "+")).is_some());
        assert!(too_deep(&chain(MAX_NESTING, "OR")).is_some());
        // Lists and statements are not chains; strings, comments and dollar bodies are no tokens.
        let list = format!("select {};", vec!["-1 + 1"; 3 * MAX_NESTING].join(", "));
        assert_eq!(too_deep(&list), None);
        let statements = "select 1 + 1;\n".repeat(MAX_NESTING);
        assert_eq!(too_deep(&statements), None);
        // Short text is judged without lexing it, with the same answers.
        let short = format!(
            "select {}1{};",
            "(".repeat(MAX_BRACKETS),
            ")".repeat(MAX_BRACKETS)
        );
        assert!(short.len() < MAX_NESTING && too_deep(&short).is_some());
        let brackets_in_strings = format!("select '{}';", "(".repeat(MAX_BRACKETS));
        assert_eq!(too_deep(&brackets_in_strings), None);
        let quoted = format!(
            "select '{0}' -- {0}\n, $${0}$$;",
            "((((+".repeat(MAX_NESTING)
        );
        assert_eq!(too_deep(&quoted), None);
    }

    #[test]
    fn has_node_finds_a_kind_at_any_depth() {
        let parse = squawk_syntax::SourceFile::parse(
            "insert into t values (1, 'a'), (2, lower('B'));\ninsert into t values (3, 'c');",
        );
        let stmts: Vec<SyntaxNode> = parse.syntax_node().children().collect();
        assert!(has_node(&stmts[0], SyntaxKind::CALL_EXPR));
        assert!(!has_node(&stmts[1], SyntaxKind::CALL_EXPR));
        assert!(
            has_node(&stmts[1], SyntaxKind::INSERT),
            "the node itself counts"
        );
        // The same answer as walking the cursor tree, for every kind under the file.
        let root = parse.syntax_node();
        for n in root.descendants() {
            assert!(has_node(&root, n.kind()));
        }
    }

    #[test]
    fn word_operators_in_any_case_and_nothing_else() {
        for w in WORD_OPERATORS {
            assert!(is_word_operator(w), "{w}");
            assert!(is_word_operator(&w.to_ascii_uppercase()), "{w}");
        }
        for w in [
            "", "a", "andx", "insert", "Between_", "x", "ORDER", "notnull", "é",
        ] {
            assert!(!is_word_operator(w), "{w}");
        }
    }

    #[test]
    fn lines_are_one_based() {
        let l = Lines::new("a\nbc\n\nd");
        assert_eq!(l.line(0), 1);
        assert_eq!(l.line(2), 2);
        assert_eq!(l.line(5), 3);
        assert_eq!(l.line(6), 4);
    }

    #[test]
    fn rename_ident_in_text() {
        assert_eq!(
            replace_ident(
                "org_id = get('org_id') and t.Org_Id = \"org_id\"",
                "org_id",
                "tenant_id"
            ),
            "tenant_id = get('org_id') and t.tenant_id = tenant_id"
        );
    }

    /// Found by review while writing the fuzz target: a lone `"` (in a comment) ran to the
    /// end of the text, and the slice that dropped its closing quote cut a multi-byte
    /// character in two: a panic on `RENAME COLUMN` of a table with such a policy.
    #[test]
    fn rename_ident_survives_unbalanced_quotes_and_keeps_comments() {
        assert_eq!(
            replace_ident(
                "org_id = get() /* 5\" screen */ or é",
                "org_id",
                "tenant_id"
            ),
            "tenant_id = get() /* 5\" screen */ or é"
        );
        assert_eq!(replace_ident("org_id = \"é", "org_id", "x"), "x = \"é");
        assert_eq!(
            replace_ident("org_id = 1 -- org_id \"é\norg_id", "org_id", "x"),
            "x = 1 -- org_id \"é\nx"
        );
        // A doubled quote is one quote inside a quoted name.
        assert_eq!(
            replace_ident("\"a\"\"b\" = \"a\"", "a\"b", "c"),
            "c = \"a\""
        );
    }

    #[test]
    fn words_fold_and_keep_quotes() {
        let w = words("ALTER TABLE \"AuditTrail\" x.Foo_bar -- c");
        assert!(w.contains("AuditTrail") && w.contains("foo_bar") && w.contains("alter"));
        // A doubled quote is one quote of the name, as Postgres folds it.
        let w = words("drop table \"a\"\"b\", \"unterminated");
        assert!(w.contains("a\"b") && w.contains("unterminated"), "{w:?}");
        // A lone quote in a comment does not hide the statement after it.
        let w = words("-- the 27\" screen\nalter table Docs x; -- \"end\"");
        assert!(w.contains("docs") && w.contains("end"), "{w:?}");
    }

    #[test]
    fn idents_skip_comments_and_strings() {
        let i = idents("true -- legacy: x\nand y = 'z' /* w */ and \"Q\"\"r\" = é");
        let mut got: Vec<_> = i.into_iter().collect();
        got.sort();
        assert_eq!(got, ["Q\"r", "and", "true", "y", "é"]);
    }
}
