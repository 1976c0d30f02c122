//! Changes that weaken the checks themselves (issue 16): each judge here compares a file as
//! it was at the base with the file as it is in the work tree, and names what was weakened
//! at its file and line. The texts are read by `gather::weakened`; nothing here touches git
//! or the disk.
//!
//! - `scripts`: the lint and test scripts the configured commands run, followed through
//!   pnpm's `--filter` and the root package.json.
//! - `jsconfig`: eslint and vitest configs (rules turned off or down, ignores and excludes
//!   added, `passWithNoTests`, coverage thresholds lowered); a change it cannot decide is a
//!   warning naming the file.
//! - `tests`: skipped, focused and deleted tests, and tests with fewer assertions.
//! - `suppress`: disable comments added in the change.
//! - `config`: `xtask.toml` loosened.
//! - `migrations`: migrations that existed at the base edited, renamed or deleted, and new
//!   ones that sort before the newest applied one.

pub mod config;
pub mod jsconfig;
pub mod migrations;
pub mod scripts;
pub mod suppress;
pub mod tests;

use crate::model::{Finding, Rule, Severity};

/// A `checks-weakened` error at `path:line`.
pub fn weakened(path: &str, line: Option<u32>, message: impl Into<String>) -> Finding {
    Finding::new(Rule::ChecksWeakened, Severity::Error, message).at(path, line)
}

/// A change that may weaken a check but cannot be decided: a warning naming the file.
pub fn undecided(path: &str, line: Option<u32>, message: impl Into<String>) -> Finding {
    Finding::new(Rule::ChecksWeakened, Severity::Warning, message).at(path, line)
}

/// The 1-based line of byte offset `at` in `text`.
pub fn line_at(text: &str, at: usize) -> u32 {
    text[..at.min(text.len())].matches('\n').count() as u32 + 1
}

/// The first line (1-based) that differs between two texts; `None` when one is a prefix of
/// the other line for line and they have as many lines.
pub fn first_difference(before: &str, after: &str) -> Option<u32> {
    let mut a = before.lines();
    let mut b = after.lines();
    let mut n = 0u32;
    loop {
        n += 1;
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (_, None) => return Some(n.saturating_sub(1).max(1)),
            _ => return Some(n),
        }
    }
}

/// Inline code for a message (values from the repository may hold backticks).
pub fn code(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one_line.chars().take(120).collect();
    let cut = if cut.len() < one_line.len() {
        format!("{cut}…")
    } else {
        cut
    };
    if cut.contains('`') {
        format!("`` {cut} ``")
    } else {
        format!("`{cut}`")
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn first_difference_is_the_first_changed_line() {
        assert_eq!(first_difference("a\nb\nc\n", "a\nb\nc\n"), None);
        assert_eq!(first_difference("a\nb\nc\n", "a\nx\nc\n"), Some(2));
        assert_eq!(first_difference("a\nb\n", "a\nb\nc\n"), Some(3));
        assert_eq!(first_difference("a\nb\nc\n", "a\nb\n"), Some(2));
    }
}
