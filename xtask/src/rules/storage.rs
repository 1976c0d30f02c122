//! Supabase Storage: every bucket the history creates keeps its objects to the tenant.
//!
//! A bucket's objects are rows of `storage.objects` with its `bucket_id`; the policies that
//! concern it are those that name it (`bucket_id = 'avatars'`) and those that name no bucket
//! at all (they apply to every bucket). For each command a client may run, each such
//! permissive policy must confine the objects: by the first folder of the path
//! (`(storage.foldername(name))[1]` compared with a tenant the user belongs to, or with the
//! user for per-user buckets) or by the object's owner (`owner = auth.uid()`, `owner_id`).
//! A bucket declared `public_read` in `[[storage.buckets]]` (with a reason) may be read by
//! anyone; its writes are still judged. Nothing here is a tenant table: the findings name
//! `storage.objects` and the bucket.

use std::{collections::BTreeMap, sync::OnceLock};

use regex::Regex;

use crate::{
    config::Storage,
    model::{Finding, Severity},
    schema::{Bucket, Command, Function, Policy, QualName, Table},
};

use super::{catalog::Rule, policy::Judge, tenant};

/// The name the judge reads `(storage.foldername(name))[1]` as: a column no SQL can spell.
const FOLDER: &str = "xtask_first_folder";

/// What was found: the findings, and a line per bucket for the handover.
#[derive(Debug, Default)]
pub struct Judged {
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

/// `storage.objects`.
pub fn objects_name() -> QualName {
    QualName::new("storage", "objects")
}

/// Judge the buckets (`judged`: the ones this change creates, or whose policies it changes)
/// against the policies of `storage.objects`.
pub fn judge(
    buckets: &BTreeMap<String, Bucket>,
    objects: Option<&Table>,
    config: &Storage,
    judge: &Judge,
    bypass: &[String],
    functions: &BTreeMap<QualName, Function>,
    judged: impl Fn(&Bucket, &[&Policy]) -> bool,
) -> Judged {
    let keys = name_keys(functions.values(), judge);
    let mut out = Judged::default();
    let empty = Vec::new();
    let policies = objects.map_or(&empty, |t| &t.policies);
    for b in buckets.values() {
        let public_read = config
            .buckets
            .iter()
            .find(|c| c.name == b.id)
            .filter(|c| c.public_read);
        let concerning: Vec<&Policy> = policies
            .iter()
            .filter(|p| p.permissive && !tenant::for_bypass_roles_only(p, bypass))
            .filter(|p| concerns(p, &b.id))
            .collect();
        if !judged(b, &concerning) {
            continue;
        }
        let mut confined = Vec::new();
        let mut denied = Vec::new();
        let mut open = Vec::new();
        // Per policy that leaks: the commands it opens and why (one finding each).
        let mut leaks: Vec<(&Policy, Vec<&str>, Vec<String>)> = Vec::new();
        for cmd in Command::EACH {
            let granting: Vec<&&Policy> = concerning
                .iter()
                .filter(|p| p.command.covers(cmd) && tenant::grants(p, cmd))
                .collect();
            if granting.is_empty() {
                denied.push(cmd.as_str());
                continue;
            }
            if cmd == Command::Select && public_read.is_some() {
                open.push(cmd.as_str());
                continue;
            }
            let mut ok = true;
            for p in granting {
                let why = p
                    .exprs_for(cmd)
                    .into_iter()
                    .find_map(|(clause, e)| match e {
                        None => Some(format!("{clause}: no expression, every object passes")),
                        Some(e) => confines(e, judge, &keys)
                            .err()
                            .map(|w| format!("{clause} {w}")),
                    });
                if let Some(why) = why {
                    ok = false;
                    match leaks.iter_mut().find(|(q, _, _)| std::ptr::eq(*q, *p)) {
                        Some((_, cmds, whys)) => {
                            cmds.push(cmd.as_str());
                            if !whys.contains(&why) {
                                whys.push(why);
                            }
                        }
                        None => leaks.push((p, vec![cmd.as_str()], vec![why])),
                    }
                }
            }
            if ok {
                confined.push(cmd.as_str());
            }
        }
        let mut not_confined: Vec<&str> = Vec::new();
        for (_, cmds, _) in &leaks {
            for c in cmds {
                if !not_confined.contains(c) {
                    not_confined.push(c);
                }
            }
        }
        for (p, cmds, whys) in leaks {
            out.findings.push(
                Finding::new(
                    Rule::PolicyNotTenantScoped,
                    Severity::Error,
                    format!(
                        "storage bucket `{}`{}: policy \"{}\" on storage.objects (for {}, to {}) lets {} reach every tenant's objects: {}; confine it by the path's first folder (`(storage.foldername(name))[1]::uuid in (select {} from {} where {} = auth.uid())`) or by `owner = auth.uid()`, or declare the bucket in xtask.toml `[[storage.buckets]]` with `public_read = true` and a reason",
                        b.id,
                        match b.public {
                            Some(true) => " (created public)",
                            _ => " (private)",
                        },
                        p.name,
                        p.command.as_str(),
                        p.roles.join(", "),
                        cmds.join(", ").to_uppercase(),
                        whys.join("; "),
                        judge_member_tenant(judge),
                        judge.membership(),
                        judge_member_user(judge),
                    ),
                )
                .at(p.origin.path.clone(), Some(p.origin.line))
                .on_table(objects_name().to_string()),
            );
        }
        let mut parts = Vec::new();
        if !confined.is_empty() {
            parts.push(format!("{} confined to the tenant", confined.join(", ")));
        }
        if !not_confined.is_empty() {
            parts.push(format!(
                "{} not confined (policy-not-tenant-scoped)",
                not_confined.join(", ")
            ));
        }
        if !open.is_empty() {
            parts.push(format!(
                "{} open by design ({})",
                open.join(", "),
                public_read.map_or("", |c| c.reason.as_str())
            ));
        }
        if !denied.is_empty() {
            parts.push(format!("{} denied to clients", denied.join(", ")));
        }
        out.notes.push(format!(
            "storage bucket `{}` ({}, {}:{}): {}",
            b.id,
            if public_read.is_some() {
                "public read by config"
            } else if b.public == Some(true) {
                "created public, not declared in xtask.toml"
            } else {
                "private"
            },
            b.origin.path,
            b.origin.line,
            parts.join("; ")
        ));
    }
    out
}

fn judge_member_tenant(j: &Judge) -> String {
    j.member_columns().0.to_string()
}

fn judge_member_user(j: &Judge) -> String {
    j.member_columns().1.to_string()
}

/// Does the policy concern the bucket? It names it in a conjunct of its own
/// (`bucket_id = 'x' and ...`, `bucket_id in ('x', ...)`), or names no bucket that way (then
/// it applies to every bucket). An OR at the top of the expression, or around the bucket's
/// comparison, concerns every bucket (it may reach past the bucket's conjunct).
pub fn concerns(p: &Policy, bucket: &str) -> bool {
    [p.using.as_deref(), p.with_check.as_deref()]
        .into_iter()
        .flatten()
        .any(|t| match named_buckets(t) {
            Some(named) => named.iter().any(|n| n == bucket),
            None => true,
        })
}

/// The buckets an expression keeps to by a top-level conjunct; `None` when it is not kept to
/// any (every bucket).
fn named_buckets(text: &str) -> Option<Vec<String>> {
    let t = unwrap(text);
    if split_top(t, "or").len() > 1 {
        return None;
    }
    let named: Vec<String> = split_top(t, "and")
        .into_iter()
        .map(unwrap)
        .filter(|c| !crate::sql::idents(c).contains("or"))
        .flat_map(bucket_names)
        .collect();
    (!named.is_empty()).then_some(named)
}

/// Outer parentheses that hold the whole text, removed.
fn unwrap(mut s: &str) -> &str {
    loop {
        let t = s.trim();
        if !(t.starts_with('(') && t.ends_with(')')) {
            return t;
        }
        // The first parenthesis must close at the very end.
        let mut depth = 0i32;
        let mut quote = false;
        let mut closes_at_end = true;
        for (i, c) in t.char_indices() {
            match c {
                '\'' => quote = !quote,
                '(' if !quote => depth += 1,
                ')' if !quote => {
                    depth -= 1;
                    if depth == 0 && i != t.len() - 1 {
                        closes_at_end = false;
                        break;
                    }
                }
                _ => {}
            }
        }
        if !closes_at_end {
            return t;
        }
        s = &t[1..t.len() - 1];
    }
}

/// A byte of an identifier: a letter, digit or `_`, or any byte of a non-ASCII character
/// (Postgres lets identifiers hold those).
fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Split on a keyword (`and`, `or`) outside parentheses and quotes.
fn split_top<'s>(s: &'s str, kw: &str) -> Vec<&'s str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote = false;
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => quote = !quote,
            b'(' if !quote => depth += 1,
            b')' if !quote => depth -= 1,
            _ if !quote && depth == 0 => {
                let end = i + kw.len();
                let word = end <= b.len()
                    && b[i..end].eq_ignore_ascii_case(kw.as_bytes())
                    && (i == 0 || !word_byte(b[i - 1]))
                    && (end == b.len() || !word_byte(b[end]));
                if word {
                    out.push(&s[start..i]);
                    start = end;
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

/// The bucket ids an expression compares `bucket_id` with.
fn bucket_names(text: &str) -> Vec<String> {
    static EQ: OnceLock<Regex> = OnceLock::new();
    static IN: OnceLock<Regex> = OnceLock::new();
    let eq = EQ.get_or_init(|| {
        Regex::new(r#"(?i)(?:\bbucket_id\s*\)?\s*=\s*'((?:[^']|'')*)'|'((?:[^']|'')*)'(?:::text)?\s*=\s*\(?\s*(?:objects\s*\.\s*)?bucket_id\b)"#)
            .expect("bucket pattern")
    });
    let inp = IN.get_or_init(|| {
        Regex::new(r#"(?i)\bbucket_id\s*\)?\s*(?:in\s*\(|=\s*any\s*\(\s*array\s*\[)([^)\]]*)"#)
            .expect("bucket list pattern")
    });
    let mut out: Vec<String> = eq
        .captures_iter(text)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str().replace("''", "'"))
        .collect();
    for c in inp.captures_iter(text) {
        for part in c[1].split(',') {
            let part = part.trim().split("::").next().unwrap_or("").trim();
            if let Some(s) = part.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                out.push(s.replace("''", "'"));
            }
        }
    }
    out
}

/// The functions of the history that key an object by its name alone
/// (`kit.get_storage_filename_as_uuid(name)`): one parameter, a body that is known, reads no
/// table, names neither the current user nor a setting, and calls no other function of the
/// history (which could read them). Such a function gives each object one value, so
/// `f(name) = auth.uid()` admits each object for one user at most, exactly as the first
/// folder does.
pub fn name_keys<'f>(
    functions: impl IntoIterator<Item = &'f Function> + Clone,
    judge: &Judge,
) -> Vec<QualName> {
    let names: Vec<&QualName> = functions.clone().into_iter().map(|f| &f.name).collect();
    const SESSION: [&str; 6] = [
        "current_setting",
        "current_user",
        "session_user",
        "current_role",
        "set_config",
        "auth",
    ];
    functions
        .into_iter()
        .filter(|f| {
            f.params.len() == 1
                && !f.words.is_empty()
                && f.reads.is_empty()
                && f.writes.is_empty()
                && !SESSION.iter().any(|w| f.has_word(w))
                && !judge.user_function_names().any(|w| f.has_word(w))
                && !names.iter().any(|n| **n != f.name && f.has_word(&n.name))
        })
        .map(|f| f.name.clone())
        .collect()
}

/// Does the expression confine objects to the tenant (the path's first folder compared with
/// a tenant the user belongs to, or with the user) or to their owner? `Err` says why not.
/// The first folder is `(storage.foldername(name))[1]`, or `(string_to_array(name, '/'))[1]`
/// (the first segment of the path); a function of `keys` applied to the name keys the object
/// the same way.
pub fn confines(expr: &str, judge: &Judge, keys: &[QualName]) -> Result<(), String> {
    static FOLDER_RE: OnceLock<Regex> = OnceLock::new();
    let re = FOLDER_RE.get_or_init(|| {
        Regex::new(
            r#"(?i)\(\s*(?:(?:"?storage"?\s*\.\s*)?"?foldername"?\s*\(\s*(?:(?:"?storage"?\s*\.\s*)?"?objects"?\s*\.\s*)?"?name"?\s*\)|"?string_to_array"?\s*\(\s*(?:(?:"?storage"?\s*\.\s*)?"?objects"?\s*\.\s*)?"?name"?\s*,\s*'/'(?:\s*::\s*text)?\s*\))\s*\)\s*\[\s*1\s*\]"#,
        )
        .expect("folder pattern")
    });
    let mut text = re.replace_all(expr, FOLDER).into_owned();
    for k in keys {
        let schema = if k.schema == "public" {
            format!(r#"(?:"?{}"?\s*\.\s*)?"#, regex::escape(&k.schema))
        } else {
            format!(r#""?{}"?\s*\.\s*"#, regex::escape(&k.schema))
        };
        let call = Regex::new(&format!(
            r#"(?i)(?:^|[^\w."]){schema}"?{}"?\s*\(\s*(?:(?:"?storage"?\s*\.\s*)?"?objects"?\s*\.\s*)?"?name"?\s*\)"#,
            regex::escape(&k.name)
        ))
        .expect("key function pattern");
        text = call
            .replace_all(&text, |c: &regex::Captures| {
                // Keep the character before the call (the pattern's guard).
                let whole = &c[0];
                let lead: String = whole
                    .chars()
                    .next()
                    .filter(|ch| !ch.is_alphanumeric() && *ch != '"' && *ch != '_' && *ch != '.')
                    .map(String::from)
                    .unwrap_or_default();
                format!("{lead}{FOLDER}")
            })
            .into_owned();
    }
    let names = [objects_name()];
    let tries = [
        (FOLDER, false),
        (FOLDER, true),
        ("owner", true),
        ("owner_id", true),
    ];
    let mut first = None;
    for (column, owner) in tries {
        match judge.scoped_as(&text, &names, column, owner) {
            Ok(()) => return Ok(()),
            Err(why) if first.is_none() => first = Some(why),
            Err(_) => {}
        }
    }
    Err(first
        .unwrap_or_default()
        .replace(FOLDER, "(storage.foldername(name))[1]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tenancy;

    fn j() -> Judge {
        Judge::new(&Tenancy::default())
    }

    #[test]
    fn confined_by_folder_or_owner() {
        let j = j();
        let ok = |e: &str| confines(e, &j, &[]).is_ok();
        assert!(ok("bucket_id = 'docs' and (storage.foldername(name))[1]::uuid in (select tenant_id from tenant_members where user_id = auth.uid())"));
        assert!(ok("((bucket_id = 'docs'::text) AND (((storage.foldername(name))[1])::uuid IN ( SELECT tenant_members.tenant_id FROM tenant_members WHERE (tenant_members.user_id = auth.uid()))))"));
        assert!(ok(
            "bucket_id = 'avatars' and (storage.foldername(name))[1] = auth.uid()::text"
        ));
        assert!(ok(
            "bucket_id = 'avatars' and (select auth.uid()::text) = (storage.foldername(name))[1]"
        ));
        assert!(ok("bucket_id = 'x' and owner = auth.uid()"));
        assert!(ok("owner_id = (select auth.uid())::text"));
        assert!(ok(
            "(storage.foldername(name))[1] = get_current_tenant_id()::text"
        ));
        assert!(!ok("true"));
        assert!(!ok("bucket_id = 'docs'"));
        assert!(!ok("bucket_id = 'docs' and auth.role() = 'authenticated'"));
        assert!(!ok("(storage.foldername(name))[2] = auth.uid()::text"));
        assert!(!ok("(storage.foldername(name))[1] = 'public'"));
        assert!(!ok(
            "(storage.foldername(name))[1] = auth.uid()::text or true"
        ));
        assert!(!ok(
            "(storage.foldername(name))[1]::uuid in (select tenant_id from tenant_members)"
        ));
    }

    fn function(name: &str, params: &[&str], body: &str, reads: &[&str]) -> Function {
        Function {
            name: QualName::from_config(name),
            security_definer: false,
            fixed_search_path: true,
            origin: crate::schema::Origin::new("x.sql", 1),
            reads: reads.iter().map(|r| QualName::from_config(r)).collect(),
            params: params.iter().map(|p| p.to_string()).collect(),
            words: crate::schema::body_words(body),
            writes: Vec::new(),
        }
    }

    #[test]
    fn the_first_path_segment_and_keys_of_the_name() {
        let j = j();
        let ok = |e: &str, keys: &[QualName]| confines(e, &j, keys).is_ok();
        // `string_to_array(name, '/')[1]` is the path's first segment, as `foldername` is.
        assert!(ok("((string_to_array(name, '/'::text))[1])::uuid in (select tenant_id from tenant_members where user_id = auth.uid())", &[]));
        assert!(ok(
            "(string_to_array(name, '/'))[1] = auth.uid()::text",
            &[]
        ));
        assert!(!ok(
            "(string_to_array(name, '-'::text))[1] = auth.uid()::text",
            &[]
        ));
        assert!(!ok(
            "(string_to_array(name, '/'))[2] = auth.uid()::text",
            &[]
        ));
        assert!(!ok(
            "(string_to_array(bucket_id, '/'))[1] = auth.uid()::text",
            &[]
        ));

        // A function of the name alone keys each object for one user at most.
        let stem = function(
            "kit.filename_as_uuid",
            &["name"],
            "begin return replace(storage.filename(name), concat('.', storage.extension(name)), '')::uuid; end;",
            &[],
        );
        let session = function(
            "kit.mine",
            &["name"],
            "select coalesce(auth.uid(), $1::uuid)",
            &[],
        );
        let lookup = function(
            "kit.owner_of",
            &["name"],
            "select owner from public.paths where path = $1",
            &["public.paths"],
        );
        let two = function("kit.pick", &["name", "other"], "select $1::uuid", &[]);
        // Calls a function of the history, which could read the current user.
        let indirect = function(
            "kit.via",
            &["name"],
            "select coalesce(public.current_user_id(), $1::uuid)",
            &[],
        );
        let me = function("public.current_user_id", &[], "select auth.uid()", &[]);
        let keys = name_keys([&stem, &session, &lookup, &two, &indirect, &me], &j);
        assert_eq!(keys, [QualName::new("kit", "filename_as_uuid")]);
        assert!(ok(
            "bucket_id = 'account_image' and kit.filename_as_uuid(name) = auth.uid()",
            &keys
        ));
        assert!(ok("(bucket_id = 'account_image'::text) AND (kit.filename_as_uuid(name) = ( SELECT auth.uid() AS uid))", &keys));
        assert!(!ok("kit.filename_as_uuid(name) = auth.uid()", &[]));
        assert!(!ok("kit.filename_as_uuid(bucket_id) = auth.uid()", &keys));
        assert!(!ok("other.filename_as_uuid(name) = auth.uid()", &keys));
        assert!(!ok(
            "kit.filename_as_uuid(name) = auth.uid() or true",
            &keys
        ));
        assert!(!ok("kit.filename_as_uuid(name) is not null", &keys));
    }

    #[test]
    fn keywords_are_found_between_multibyte_characters() {
        // Found by fuzzing: `split_top` compared a keyword's length of text starting inside
        // a multi-byte character (a panic on a char boundary).
        assert_eq!(
            split_top("a \u{fffd}\u{fffd} or b", "and"),
            vec!["a \u{fffd}\u{fffd} or b"]
        );
        assert_eq!(
            split_top("\u{e9}\u{e9}x and y", "and"),
            vec!["\u{e9}\u{e9}x ", " y"]
        );
        assert_eq!(split_top("a\u{fffd}or b", "or"), vec!["a\u{fffd}or b"]);
    }

    #[test]
    fn which_buckets_a_policy_concerns() {
        let p = |using: &str| Policy {
            name: "p".into(),
            command: Command::Select,
            permissive: true,
            roles: vec!["authenticated".into()],
            using: Some(using.into()),
            with_check: None,
            origin: crate::schema::Origin::new("x.sql", 1),
            uses: None,
        };
        assert!(concerns(&p("bucket_id = 'a' and true"), "a"));
        assert!(!concerns(&p("bucket_id = 'a' and true"), "b"));
        assert!(concerns(&p("(bucket_id = 'a'::text)"), "a"));
        assert!(concerns(&p("'b' = bucket_id"), "b"));
        assert!(concerns(&p("bucket_id in ('a', 'b')"), "b"));
        assert!(!concerns(&p("bucket_id in ('a', 'b')"), "c"));
        assert!(concerns(
            &p("bucket_id = ANY (ARRAY['a'::text, 'c'::text])"),
            "c"
        ));
        // No bucket named: every bucket.
        assert!(concerns(&p("true"), "z"));
        // An OR may reach past the bucket's conjunct; one inside another conjunct does not.
        assert!(concerns(&p("bucket_id = 'a' or true"), "z"));
        assert!(concerns(
            &p("(bucket_id = 'a' or bucket_id = 'b') and true"),
            "z"
        ));
        assert!(!concerns(
            &p("bucket_id = 'a' AND ((storage.foldername(name))[1] = auth.uid()::text OR (exists (select 1 from t where x = 'or')))"),
            "z"
        ));
        assert!(!concerns(
            &p("((bucket_id = 'a'::text) AND (((storage.foldername(name))[1] = (auth.uid())::text) OR true))"),
            "z"
        ));
        assert!(concerns(&p("(bucket_id = 'a') or (bucket_id = 'b')"), "z"));
    }
}
