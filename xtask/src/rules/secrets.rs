//! `hardcoded-secret`: credentials committed in any changed file.
//!
//! Looked for in every changed text file, not only code: keys end up in docs, fixtures and
//! YAML just as often. The value is never printed whole — only its first four characters
//! and `…` — because reports are pasted into pull requests and CI logs, which would leak
//! the secret a second time. An `.env` file added to the change is a finding by itself
//! (its variable values are not shown at all); `.env.example`-style templates are not.
//! Binary and very large files are not read; each gives an info finding
//! (`secret-scan-skipped`) so a reviewer knows what was not looked at.

use crate::rules::catalog::Rule;
use std::{borrow::Cow, sync::OnceLock};

use regex::Regex;

use crate::{
    model::{Finding, Severity},
    ts::Source,
};

pub const RULE: Rule = Rule::HardcodedSecret;
/// Info finding for a changed file the scan did not read (binary or too large).
pub const SKIPPED_RULE: Rule = Rule::SecretScanSkipped;
/// Files larger than this are not scanned (lock files and bundles; secrets hide in small files).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

/// The first four characters and `…`: enough to find the value, not enough to use it.
pub fn mask(value: &str) -> String {
    let head: String = value.chars().take(4).collect();
    format!("{head}…")
}

/// `.env`, `.env.local`, `apps/api/.env.production`: yes. `.env.example`, `.env.sample`,
/// `.env.template`: no (they are meant to be committed, with names only).
pub fn is_env_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == ".env" {
        return true;
    }
    match name.strip_prefix(".env.") {
        Some(rest) => !["example", "sample", "template", "dist", "defaults"]
            .iter()
            .any(|t| rest == *t || rest.ends_with(&format!(".{t}"))),
        None => false,
    }
}

/// Scan one changed file as read from disk.
pub fn scan_file(path: &str, bytes: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    if is_env_file(path) {
        let names = std::str::from_utf8(bytes)
            .map(env_names)
            .unwrap_or_default();
        let listed = if names.is_empty() {
            String::new()
        } else {
            format!(" (sets {})", names.join(", "))
        };
        out.push(
            Finding::new(
                RULE,
                Severity::Error,
                format!(
                    "env file added to the change{listed}: env files hold secrets — `git rm --cached {path}`, add it to .gitignore, and commit a `.env.example` with the names only"
                ),
            )
            .at(path, None),
        );
    }
    if bytes.len() > MAX_BYTES {
        out.push(skipped(
            path,
            &format!("larger than {} MiB", MAX_BYTES / (1024 * 1024)),
        ));
        return out;
    }
    let head = &bytes[..bytes.len().min(8192)];
    let text = match std::str::from_utf8(bytes) {
        Ok(t) if !head.contains(&0) => t,
        _ => {
            out.push(skipped(path, "binary file"));
            return out;
        }
    };
    out.extend(scan_text(path, text));
    out
}

fn skipped(path: &str, why: &str) -> Finding {
    Finding::new(
        SKIPPED_RULE,
        Severity::Info,
        format!("not scanned for secrets: {why}; review it by hand"),
    )
    .at(path, None)
}

/// Variable names of an env file, never their values.
fn env_names(text: &str) -> Vec<String> {
    const SHOWN: usize = 6;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            l.trim_start_matches("export ")
                .split_once('=')
                .map(|(k, _)| k.trim().to_string())
        })
        .filter(|k| !k.is_empty() && !k.contains(char::is_whitespace))
        .collect();
    let mut shown: Vec<String> = names.iter().take(SHOWN).cloned().collect();
    if names.len() > SHOWN {
        shown.push(format!("and {} more", names.len() - SHOWN));
    }
    shown
}

struct Pattern {
    kind: &'static str,
    re: Regex,
}

fn patterns() -> &'static [Pattern] {
    static P: OnceLock<Vec<Pattern>> = OnceLock::new();
    P.get_or_init(|| {
        let p = |kind, re: &str| Pattern {
            kind,
            re: Regex::new(re).expect("secret pattern"),
        };
        vec![
            p(
                "private key block",
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
            ),
            p(
                "JWT",
                r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            ),
            p("Supabase secret API key", r"\bsb_secret_[A-Za-z0-9_-]{16,}"),
            p(
                "secret API key",
                r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}",
            ),
            p("webhook signing secret", r"\bwhsec_[A-Za-z0-9]{20,}"),
            p("AWS access key id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
        ]
    })
}

/// What [`mask_text`] looks for in free text: the scan's patterns without the word boundary
/// in front (a value may follow an escape such as GitHub's `%0A`), the password of a URL
/// (`postgres://user:password@host`), and the body of a private key block.
fn free_text_patterns() -> &'static [Regex] {
    static P: OnceLock<Vec<Regex>> = OnceLock::new();
    P.get_or_init(|| {
        [
            r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            r"sb_secret_[A-Za-z0-9_-]{16,}",
            r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}",
            r"whsec_[A-Za-z0-9]{20,}",
            r"(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        ]
        .iter()
        .map(|re| Regex::new(re).expect("secret pattern"))
        .collect()
    })
}

fn url_password() -> &'static Regex {
    static P: OnceLock<Regex> = OnceLock::new();
    // scheme://user:PASSWORD@ — the password group only.
    P.get_or_init(|| {
        Regex::new(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:([^\s@/]+)@").expect("url pattern")
    })
}

fn key_body() -> &'static Regex {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| {
        Regex::new(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----([A-Za-z0-9+/=\r\n]{16,})",
        )
        .expect("key pattern")
    })
}

/// Every secret-looking value in free text (a Postgres error, a command's output, an
/// agent's message) replaced by its first four characters and `…`, as the
/// `hardcoded-secret` findings show them. Borrowed when there is nothing to hide. The
/// renderers pass everything they write through this.
pub fn mask_text(text: &str) -> Cow<'_, str> {
    // Spans to replace (start, end), found on the original text.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for re in free_text_patterns() {
        for m in re.find_iter(text) {
            if !is_placeholder(m.as_str()) || m.as_str().starts_with("eyJ") {
                spans.push((m.start(), m.end()));
            }
        }
    }
    for re in [url_password(), key_body()] {
        for c in re.captures_iter(text) {
            if let Some(g) = c.get(1) {
                spans.push((g.start(), g.end()));
            }
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        if end <= at {
            continue;
        }
        let start = start.max(at);
        out.push_str(&text[at..start]);
        out.push_str(&mask(&text[start..end]));
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Scan text; each match is one finding at its line.
pub fn scan_text(path: &str, text: &str) -> Vec<Finding> {
    let src = Source::new(path, text);
    let mut out = Vec::new();
    for p in patterns() {
        for m in p.re.find_iter(text) {
            let value = m.as_str();
            if p.kind != "private key block" && p.kind != "JWT" && is_placeholder(value) {
                continue;
            }
            let (kind, shown) = match p.kind {
                "private key block" => (p.kind.to_string(), value.to_string()),
                "JWT" => (jwt_kind(value), mask(value)),
                _ => (p.kind.to_string(), mask(value)),
            };
            out.push(
                Finding::new(
                    RULE,
                    Severity::Error,
                    format!(
                        "{kind} `{shown}` written in the file: read it from the environment (process.env / the deploy's secret store) and rotate it — it is in the git history now"
                    ),
                )
                .at(path, Some(src.line(m.start() as u32))),
            );
        }
    }
    out.sort_by_key(|f| f.line);
    out
}

/// Documentation placeholders (`AKIAIOSFODNN7EXAMPLE`, `sk_test_xxxxxxxxxxxx`) are not keys.
fn is_placeholder(value: &str) -> bool {
    let upper = value.to_ascii_uppercase();
    if upper.contains("EXAMPLE") || upper.contains("XXXXXX") || upper.contains("PLACEHOLDER") {
        return true;
    }
    // After the prefix, one character repeated (`sk_live_0000000000`).
    let tail = value.rsplit('_').next().unwrap_or(value);
    let mut chars = tail.chars();
    chars.next().is_some_and(|c| chars.all(|d| d == c))
}

/// A Supabase key is a JWT whose payload says its role: name the dangerous one.
fn jwt_kind(token: &str) -> String {
    let payload = token.split('.').nth(1).and_then(base64url_decode);
    let role = payload
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
        .and_then(|v| v.get("role").and_then(|r| r.as_str()).map(str::to_string));
    match role.as_deref() {
        Some("service_role") => {
            "Supabase service-role key (JWT, role service_role: bypasses RLS)".into()
        }
        Some(role) => format!("JWT (role {role})"),
        None => "JWT".into(),
    }
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// base64url without padding, for building test tokens.
    fn b64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"HS256","typ":"JWT"}"#),
            b64(payload.as_bytes()),
            "c2lnbmF0dXJlLXNpZ25hdHVyZQ"
        )
    }

    /// The finding's message and every field must not hold the whole value.
    fn assert_masked(f: &Finding, value: &str) {
        let shown = format!("{f:?}");
        assert!(!shown.contains(value), "value leaked: {shown}");
        assert!(f.message.contains(&mask(value)), "{}", f.message);
    }

    #[test]
    fn service_role_key_is_named_and_masked() {
        let key = jwt(
            r#"{"iss":"supabase","ref":"abcdefghijklmnop","role":"service_role","iat":1700000000}"#,
        );
        let text = format!("const url = 'x';\nconst admin = createClient(url, \"{key}\");\n");
        let found = scan_text("apps/api/src/server/admin.ts", &text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, RULE);
        assert_eq!(found[0].severity, Severity::Error);
        assert_eq!(found[0].line, Some(2));
        assert!(
            found[0].message.contains("service-role"),
            "{}",
            found[0].message
        );
        assert!(found[0].message.contains("`eyJh…`"), "{}", found[0].message);
        assert_masked(&found[0], &key);
    }

    #[test]
    fn any_jwt_is_a_finding() {
        let token = jwt(r#"{"sub":"1234567890","role":"anon"}"#);
        let found = scan_text("a.md", &format!("token: {token}\n"));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.starts_with("JWT (role anon)"),
            "{}",
            found[0].message
        );
        assert_masked(&found[0], &token);
    }

    #[test]
    fn api_keys_of_each_kind() {
        let cases = [
            ("sk_live_51HxQzA2bC3dE4fG5hI6jK7lM", "secret API key"),
            ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "secret API key"),
            ("rk_live_0aB1cD2eF3gH4iJ5kL6m", "secret API key"),
            (
                "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz",
                "Supabase secret API key",
            ),
            ("AKIAZ3MHALF2QWERTY7P", "AWS access key id"),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "webhook signing secret",
            ),
        ];
        for (value, kind) in cases {
            let found = scan_text(
                "src/config.ts",
                &format!("export const KEY = \"{value}\";\n"),
            );
            assert_eq!(found.len(), 1, "{value}: {found:?}");
            assert!(
                found[0].message.starts_with(kind),
                "{value}: {}",
                found[0].message
            );
            assert_masked(&found[0], value);
        }
    }

    #[test]
    fn mask_text_hides_values_in_free_text() {
        let token = jwt(r#"{"sub":"1","role":"service_role"}"#);
        let key = "sk_live_abcdefghijklmnopqrstuvwx";
        let text = format!(
            "invalid input syntax for type integer: \"{key}\"\n%0A{key} {token}\n\
             could not connect to postgres://app:hunter2secret@db.example.com:5432/x\n\
             -----BEGIN PRIVATE KEY-----\nMIIEowIBAAKCAQEAabcdef\n-----END PRIVATE KEY-----"
        );
        let masked = mask_text(&text);
        for value in [
            key,
            token.as_str(),
            "hunter2secret",
            "MIIEowIBAAKCAQEAabcdef",
        ] {
            assert!(!masked.contains(value), "{value} leaked: {masked}");
        }
        assert!(masked.contains("\"sk_l…\""), "{masked}");
        assert!(masked.contains("%0Ask_l…"), "{masked}");
        assert!(masked.contains("eyJh…"), "{masked}");
        assert!(
            masked.contains("postgres://app:hunt…@db.example.com"),
            "{masked}"
        );
        // Nothing to hide: the text itself, borrowed; a masked value stays as it is.
        let plain = "RLS is not enabled on public.documents: `sk_l…` pk_live_51HxQzA2bC3dE4fG5hI6";
        assert!(matches!(mask_text(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn private_key_block() {
        let text =
            "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";
        let found = scan_text("deploy/key.pem", text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, Some(2));
        assert!(
            found[0].message.starts_with("private key block"),
            "{}",
            found[0].message
        );
        assert!(!found[0].message.contains("MIIEowIBAAKCAQEA"));
        assert_eq!(
            scan_text("k", "-----BEGIN OPENSSH PRIVATE KEY-----\n").len(),
            1
        );
        assert_eq!(scan_text("k", "-----BEGIN PRIVATE KEY-----\n").len(), 1);
        assert!(scan_text("k", "-----BEGIN PUBLIC KEY-----\n").is_empty());
    }

    #[test]
    fn placeholders_and_public_values_are_not_secrets() {
        let text = "AKIAIOSFODNN7EXAMPLE\nsk_test_xxxxxxxxxxxxxxxx\nsk_live_0000000000000\npk_live_51HxQzA2bC3dE4fG5hI6jK7lM\nprocess.env.SUPABASE_SERVICE_ROLE_KEY\nask_live_questions\n";
        assert!(
            scan_text("README.md", text).is_empty(),
            "{:?}",
            scan_text("README.md", text)
        );
    }

    #[test]
    fn env_files_added_to_the_change() {
        assert!(is_env_file(".env"));
        assert!(is_env_file("apps/api/.env.local"));
        assert!(is_env_file("apps/api/.env.production"));
        assert!(!is_env_file("apps/api/.env.example"));
        assert!(!is_env_file(".env.local.example"));
        assert!(!is_env_file("src/env.ts"));
        let found = scan_file(
            "apps/api/.env.local",
            b"# local\nSUPABASE_URL=http://localhost\nexport DB_PASSWORD=hunter2-very-secret\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, RULE);
        assert!(
            found[0].message.contains("SUPABASE_URL, DB_PASSWORD"),
            "{}",
            found[0].message
        );
        assert!(
            !found[0].message.contains("hunter2"),
            "{}",
            found[0].message
        );
        assert!(scan_file("apps/api/.env.example", b"SUPABASE_URL=\n").is_empty());
    }

    #[test]
    fn binary_and_huge_files_are_skipped_with_a_note() {
        let found = scan_file("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].rule, found[0].severity),
            (SKIPPED_RULE, Severity::Info)
        );
        assert!(found[0].message.contains("binary"));
        let big = vec![b'a'; MAX_BYTES + 1];
        let found = scan_file("dist/bundle.js", &big);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("larger than"),
            "{}",
            found[0].message
        );
    }
}
