//! Applying one migration file to a live database, statement by statement.
//!
//! Each statement runs under a savepoint: one that fails is rolled back to it and reported
//! at its file and line with Postgres's own message, and the rest of the history still runs,
//! so the report says everything it can. Transaction control in a file (`begin`, `commit`,
//! ...) is not sent: the whole history lives in one transaction that is rolled back at the
//! end, and a `commit` inside it would make the check's changes permanent.
//!
//! The statements are the pieces the static reader cut the file into
//! ([`split`](crate::gather::migrations::split)): every byte of the file is sent, so
//! Postgres, not our reader, decides what is valid.

use crate::sql::Lines;

pub use crate::gather::migrations::split::{Kind, Piece};

/// A statement Postgres rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub line: u32,
    /// Postgres's message, with its detail and hint.
    pub message: String,
}

/// Postgres's error as one line, with SQLSTATE, detail and hint; and the 1-based character
/// position in the statement when Postgres gives one.
pub fn describe(e: &postgres::Error) -> (String, Option<usize>) {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            let pos = match db.position() {
                Some(postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
                _ => None,
            };
            (s, pos)
        }
        None => (e.to_string(), None),
    }
}

/// The file line of a character position (1-based) inside a piece.
pub fn line_of(piece: &Piece, file_lines: &Lines, char_pos: Option<usize>) -> u32 {
    let Some(pos) = char_pos else {
        return piece.line;
    };
    let byte = piece
        .text
        .char_indices()
        .nth(pos.saturating_sub(1))
        .map_or(piece.text.len(), |(b, _)| b);
    file_lines.line(piece.offset + byte)
}

/// Can Postgres read `text` as one command at most, without being asked? Then the live
/// check need not prepare it first (Postgres refuses to prepare a text holding several).
///
/// The argument, from Postgres's grammar (`stmtmulti: stmtmulti ';' toplevel_stmt |
/// toplevel_stmt`): a text holds several commands only if its lexer produces a `;` token
/// with a command after it, and a `;` token is a `;` character outside every string, quoted
/// identifier, dollar quote and comment. So a text with no `;` character holds one command
/// at most. A text with exactly one `;` character followed only by whitespace and `--`
/// comments does too: if that `;` is a token, the lexer is outside any quote right after it
/// and reads nothing but whitespace and comments to the end (an empty command is no
/// command); if it is not a token (inside a string, a comment, ...), the text has no `;`
/// token at all. Conservative on purpose: any other `;` (a second one, one inside a string
/// or a comment before the end, one followed by a block comment) keeps the prepare.
pub fn one_command(text: &str) -> bool {
    let mut semis = text.match_indices(';');
    let Some((at, _)) = semis.next() else {
        return true;
    };
    if semis.next().is_some() {
        return false;
    }
    let mut rest = &text[at + 1..];
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
        if rest.is_empty() {
            return true;
        }
        let Some(comment) = rest.strip_prefix("--") else {
            return false;
        };
        // A `--` comment runs to the end of the line (`\n` or `\r`, as Postgres's lexer reads it).
        rest = comment.find(['\n', '\r']).map_or("", |end| &comment[end..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::migrations::split::split;

    #[test]
    fn error_positions_map_to_file_lines() {
        let sql = "select 1;\n\ncreate table t (\n  a int,\n  b nosuchtype\n);\n";
        let lines = Lines::new(sql);
        let p = split(sql);
        let piece = &p[1];
        assert_eq!(piece.line, 3);
        let pos = piece.text.find("nosuchtype").unwrap() + 1;
        assert_eq!(line_of(piece, &lines, Some(pos)), 5);
        assert_eq!(line_of(piece, &lines, None), 3);
    }

    #[test]
    fn a_text_is_one_command_only_when_no_semicolon_could_start_another() {
        // No `;`, or one at the end followed by whitespace and line comments: one command.
        assert!(one_command("select 1"));
        assert!(one_command("create table t (a int);"));
        assert!(one_command("create table t (a int);  \n\t\r\n"));
        assert!(one_command("select 1; -- done\n-- really\n"));
        assert!(one_command("select 1;--x\r"));
        assert!(one_command("-- a comment\ncreate table t (a int) ;\n"));
        // Whitespace as Postgres's lexer reads it: a vertical tab is not (before 16).
        assert!(!one_command("select 1;\x0b"));
        // Anything else after the only `;`, or a second `;` anywhere: Postgres is asked.
        assert!(!one_command("select 1; select 2"));
        assert!(!one_command("select 1;;"));
        assert!(!one_command("select 1; /* block */"));
        assert!(!one_command("select ';';"));
        assert!(!one_command("select 1 -- ;\n;"));
        assert!(!one_command("select $$a;b$$;"));
        assert!(!one_command("select 'a\\';commit;select 'x'"));
        assert!(!one_command("select 1; -- x\nselect 2"));
    }
}
