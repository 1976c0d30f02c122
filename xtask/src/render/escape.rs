//! Text from the checked repository, Postgres, child processes and the agent, made safe for
//! each view: control characters shown escaped in terminal views (a table name holding
//! `\r\x1b[2K` cannot paint a fake line), and in markdown a code span that no backtick in
//! the text can close and `<`, `>`, `&` outside code spans as entities (no raw HTML reaches
//! the handover or the job summary). Secrets are masked on the whole output
//! ([`super::render`]), not here.

use std::fmt::Write as _;

/// A character a terminal or a markdown viewer would act on instead of showing: the C0 and
/// C1 controls (line breaks included: every field is one line) and the bidirectional
/// overrides and isolates that reorder what is shown.
fn is_hostile(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// For a terminal: control characters as `\r`, `\n`, `\t`, `\x1b`, `\u{202e}`; a backslash
/// stays as it is.
pub fn terminal(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_hostile) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && is_hostile(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_hostile(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.into()
}

/// For a workflow command's data (`escape_data` turns CR and LF into `%0D`, `%0A` after
/// this): every other control character escaped as [`terminal`] does.
pub fn controls_but_line_breaks(s: &str) -> String {
    s.split('\n')
        .map(|line| {
            line.split('\r')
                .map(|part| terminal(part).into_owned())
                .collect::<Vec<_>>()
                .join("\r")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line of markdown text that may hold its own code spans (finding messages do:
/// "add `alter table …`"): line feeds as spaces, `|` escaped (tables), control characters
/// escaped, and `<`, `>`, `&` as entities everywhere outside a code span. Code spans are
/// found as CommonMark finds them (a backtick run closes only at a run of the same length;
/// an unmatched run is literal text; a backslash escapes the character after it), so what
/// is left unescaped here is exactly what a viewer shows as code.
pub fn markdown(s: &str) -> String {
    let s = terminal(&s.replace('\n', " ")).replace('|', "\\|");
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() && b[i + 1].is_ascii_punctuation() => {
                // `\<` is a literal `<` already; `\&` too. Keep the pair but make the
                // escaped character an entity when it is one of ours, to be safe.
                out.push('\\');
                push_html(&mut out, b[i + 1] as char);
                i += 2;
            }
            b'`' => {
                let run = b[i..].iter().take_while(|&&c| c == b'`').count();
                match closing_run(b, i + run, run) {
                    Some(end) => {
                        out.push_str(&s[i..end + run]);
                        i = end + run;
                    }
                    None => {
                        out.push_str(&s[i..i + run]);
                        i += run;
                    }
                }
            }
            _ => {
                let c = s[i..].chars().next().expect("in bounds");
                push_html(&mut out, c);
                i += c.len_utf8();
            }
        }
    }
    out
}

fn push_html(out: &mut String, c: char) {
    match c {
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '&' => out.push_str("&amp;"),
        c => out.push(c),
    }
}

/// Where the next backtick run of exactly `len` starts, from `from` on.
fn closing_run(b: &[u8], from: usize, len: usize) -> Option<usize> {
    let mut j = from;
    while j < b.len() {
        if b[j] == b'`' {
            let run = b[j..].iter().take_while(|&&c| c == b'`').count();
            if run == len {
                return Some(j);
            }
            j += run;
        } else {
            j += 1;
        }
    }
    None
}

/// An inline code span holding `text` verbatim (one line, control characters escaped): its
/// fence is one backtick longer than the longest run in the text, padded with spaces when
/// the text starts or ends with a backtick.
pub fn code(text: &str) -> String {
    let t = terminal(&text.replace('\n', " ")).into_owned();
    let longest = t.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    if t.starts_with('`') || t.ends_with('`') || t.is_empty() {
        format!("{ticks} {t} {ticks}")
    } else {
        format!("{ticks}{t}{ticks}")
    }
}

/// [`code`] for a table cell: `|` escaped too (GitHub reads `\|` in a code span in a table
/// as the character).
pub fn code_cell(text: &str) -> String {
    code(text).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_shows_controls_escaped() {
        assert_eq!(
            terminal("public.t\r\x1b[2K✔ lint pass\n\u{202e}x"),
            "public.t\\r\\x1b[2K✔ lint pass\\n\\u{202e}x"
        );
        assert!(matches!(terminal("plain ✔"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn workflow_data_keeps_its_line_breaks_for_escape_data() {
        assert_eq!(
            controls_but_line_breaks("a\r\nb\x1b[2K\u{202e}"),
            "a\r\nb\\x1b[2K\\u{202e}"
        );
    }

    #[test]
    fn markdown_escapes_html_outside_code_spans_only() {
        assert_eq!(
            markdown("add `a <b> & c` then <img src=x onerror=alert(1)> & more"),
            "add `a <b> & c` then &lt;img src=x onerror=alert(1)&gt; &amp; more"
        );
        // An unmatched backtick is text: what follows it is escaped.
        assert_eq!(markdown("a ` <b>"), "a ` &lt;b&gt;");
        // A run closes only at a run of the same length.
        assert_eq!(markdown("``x ` <i>`` <i>"), "``x ` <i>`` &lt;i&gt;");
        assert_eq!(markdown("\\`<b>`"), "\\`&lt;b&gt;`");
        assert_eq!(markdown("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn code_spans_cannot_be_closed_from_inside() {
        assert_eq!(code("api/x`y/route.ts"), "``api/x`y/route.ts``");
        assert_eq!(code("`a``"), "``` `a`` ```");
        assert_eq!(code("a\nb\x1b"), "`a b\\x1b`");
        assert_eq!(code_cell("a|b"), "`a\\|b`");
    }
}
