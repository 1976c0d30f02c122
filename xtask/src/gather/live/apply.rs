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
}
