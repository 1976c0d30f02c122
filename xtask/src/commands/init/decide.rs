//! The tables init settles from evidence, after the tenancy keys: each table the judge still
//! finds unprotected with the keys inferred so far is looked at once more, with the same
//! judge `verify` runs (static reading), and written as
//! - `service_only = true` when row level security is on and no policy gives `anon` or
//!   `authenticated` any command (Postgres lets only roles that bypass RLS reach it) and its
//!   rows belong to a tenant or a user (the tenant column, a user column);
//! - an exemption when such a closed table holds no tenant's or user's rows (a price list),
//!   or when clients may only read it and no client may write it (a catalogue: no tenant
//!   column, every client policy is a SELECT; or RLS off in a schema whose default
//!   privileges give clients SELECT alone);
//! - `public_read = true` when a SELECT policy opens reading to every tenant while every
//!   policy a client writes through is scoped (chatbot-ui's `sharing <> 'private'`, a public
//!   registry): the open read is a separate policy someone wrote on purpose, the writes are
//!   still judged.
//!
//! Each decision is written active with its evidence as the reason, so the first report is
//! the one a person reading the policies would get; the header says how to undo one. Any
//! other unprotected table stays a question: a tenant table whose reading is open and that
//! no client writes, a table with RLS off that clients may write, ... are not settled here.

use std::collections::BTreeSet;

use super::{bare, plural, q, qualified, write_section, Entry, Section, TableFacts, USER_COLUMNS};
use crate::{
    config::Config,
    gather::migrations::History,
    judge::{self, Live},
    model::{PolicyReport, TableReport, Verdict},
    repo::Changes,
    rules::catalog::Rule,
};

/// What the tenancy section knows when it settles the remaining tables.
pub(super) struct Facts<'a> {
    pub tables: &'a [TableFacts],
    pub histories: &'a [History],
    pub column: &'a str,
    pub root_name: Option<&'a str>,
    pub dirs: &'a [String],
    /// Every migration, lowercased.
    pub sql_text: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Decided {
    ServiceOnly,
    PublicRead,
    Exempt,
}

#[derive(Debug)]
struct Decision {
    /// Qualified.
    table: String,
    what: Decided,
    why: String,
}

/// Write the `[[tenancy.tables]]` entries (those of `other_tables` and the decisions), the
/// exemptions, and the questions about what is left.
pub(super) fn finish(s: &mut Section, f: Facts<'_>, mut entries: Vec<Entry>) {
    let decisions = decide(s, &f, &entries);
    let mut exempt = Vec::new();
    for d in &decisions {
        match d.what {
            Decided::Exempt => exempt.push(format!(
                "{{ table = {}, reason = {} }}",
                q(&d.table),
                q(&d.why)
            )),
            Decided::PublicRead => match entries.iter_mut().find(|e| e.table == d.table) {
                Some(e) => {
                    e.keys.push(("public_read", "true".into()));
                    e.reasons.push(d.why.clone());
                }
                None => entries.push(Entry::new(
                    &d.table,
                    "public_read",
                    "true".into(),
                    d.why.clone(),
                )),
            },
            Decided::ServiceOnly => entries.push(Entry::new(
                &d.table,
                "service_only",
                "true".into(),
                d.why.clone(),
            )),
        }
    }
    if !exempt.is_empty() {
        s.key(
            "exempt_tables",
            format!("[\n  {},\n]", exempt.join(",\n  ")),
            format!(
                "{} that hold no tenant's rows, decided by init from their policies (each reason says how); delete an entry to have its table judged as a tenant table",
                plural(exempt.len(), "table")
            ),
        );
    }
    let decided: BTreeSet<&str> = decisions.iter().map(|d| d.table.as_str()).collect();
    let written: BTreeSet<String> = entries.iter().map(|e| e.table.clone()).collect();
    let column = f.column;
    let open: Vec<&str> = f
        .tables
        .iter()
        .filter(|t| {
            Some(t.name.as_str()) != f.root_name
                && !t.columns.iter().any(|(c, _)| c == column)
                && !written.contains(&qualified(&t.name))
                && !decided.contains(qualified(&t.name).as_str())
        })
        .map(|t| t.name.as_str())
        .collect();
    if !open.is_empty() {
        let shown: Vec<_> = open.iter().take(8).copied().collect();
        s.ask(
            "exempt_tables",
            format!("[{{ table = {}, reason = \"...\" }}]", q(&qualified(shown[0]))),
            format!(
                "{} without `{column}` and without a recognised owner policy ({}{}): which need no tenant isolation, and why?",
                plural(open.len(), "table"),
                shown.join(", "),
                if open.len() > shown.len() { ", ..." } else { "" }
            ),
        );
    }
    if !entries.is_empty() {
        let mut text = format!(
            "\n# {} whose tenancy differs from `{column}`: scoped otherwise by their policies, used by the service role only, or open to read by design (each reason says what init read; delete a block to have the table judged by `{column}`):\n",
            plural(entries.len(), "table"),
        );
        for e in &entries {
            text.push_str(&e.text());
        }
        s.raw(text);
    }
    // Closed tables init did not settle (none on the corpus): the blocks to uncomment.
    let closed: Vec<&str> = f
        .tables
        .iter()
        .filter(|t| {
            t.closed
                && Some(t.name.as_str()) != f.root_name
                && !decided.contains(qualified(&t.name).as_str())
        })
        .map(|t| t.name.as_str())
        .collect();
    if !closed.is_empty() {
        let mut text = format!(
            "\n# {} RLS enabled and no policy at all: signed-in users can do nothing with them.\n# If only the service role uses them by design, uncomment each block and give the reason:\n",
            if closed.len() == 1 { "1 table has".to_string() } else { format!("{} tables have", closed.len()) },
        );
        for t in closed.iter().take(40) {
            text.push_str(&format!(
                "# [[tenancy.tables]]\n# table = {}\n# service_only = true\n# reason = \"...\"\n",
                q(&qualified(t))
            ));
        }
        s.raw(text);
    }
}

/// The decisions, from the judge's reading with the keys written so far.
fn decide(s: &Section, f: &Facts<'_>, entries: &[Entry]) -> Vec<Decision> {
    // The configuration as it stands: the tenancy keys, the entries, the migrations.
    let mut text = String::new();
    write_section(&mut text, "tenancy", s.clone());
    for e in entries {
        text.push_str(&e.text());
    }
    text.push_str(&format!(
        "\n[migrations]\ndirs = [{}]\n",
        f.dirs.iter().map(|d| q(d)).collect::<Vec<_>>().join(", ")
    ));
    let Ok(config) = Config::parse(&text) else {
        return Vec::new();
    };
    let judged = judge::migrations(f.histories, Live::NotRun, &config, &Changes::all());
    let closed: BTreeSet<&str> = judged
        .findings
        .iter()
        .filter(|x| x.rule == Rule::PolicyMissing)
        .filter_map(|x| x.table.as_deref())
        .collect();
    let owners = super::owner_by_id(f.tables);
    let read_only = ReadOnly::read(f.sql_text);
    let broadcast = broadcasts(f.histories);
    let mut out = Vec::new();
    for r in &judged.tables {
        if r.verdict != Verdict::Unprotected || Some(bare(&r.name).as_str()) == f.root_name {
            continue;
        }
        let Some(t) = f.tables.iter().find(|t| qualified(&t.name) == r.name) else {
            continue;
        };
        // Rows that belong to a user: a user-like column, or one referencing auth.users or a
        // table whose rows are users.
        let user_column = t.columns.iter().find(|(c, refs)| {
            USER_COLUMNS.contains(&c.as_str())
                || refs
                    .as_deref()
                    .is_some_and(|r| r == "auth.users" || owners.contains(&bare(r)))
        });
        // A child of a tenant's rows: a `*_id` column referencing (or named after) a table
        // that carries the tenant column (`documents.file_id` → `files.team_id`).
        let tenant_parent = t.columns.iter().find_map(|(c, refs)| {
            let parent = parent_of(c, refs, f.tables)?;
            f.tables
                .iter()
                .find(|p| p.name == parent && p.name != t.name)
                .filter(|p| p.columns.iter().any(|(pc, _)| pc == f.column))
                .map(|_| (c.clone(), parent))
        });
        let decision = if closed.contains(r.name.as_str()) && r.rls_enabled {
            if broadcast.contains(&r.name) {
                // Its rows reach clients all the same, through Realtime: not service-only.
                None
            } else if r.tenant_column || user_column.is_some() || tenant_parent.is_some() {
                let whose = if r.tenant_column {
                    format!("its rows carry `{}`", f.column)
                } else if let Some((c, _)) = user_column {
                    format!("its rows belong to users (`{c}`)")
                } else {
                    let (c, p) = tenant_parent.clone().unwrap_or_default();
                    format!("its rows belong to a tenant's `{p}` (`{c}`)")
                };
                Some((
                    Decided::ServiceOnly,
                    format!("inferred by init: row level security is on and no policy lets anon or authenticated run any command, so only the service role (which bypasses RLS) reaches it; {whose}"),
                ))
            } else {
                Some((
                    Decided::Exempt,
                    format!("inferred by init: no `{}`, no user column and no reference to a tenant's table, and no policy lets anon or authenticated run any command (RLS on): a global table only the service role uses", f.column),
                ))
            }
        } else if r.rls_enabled {
            read_open(r, t, f)
        } else {
            let schema = r.name.split('.').next().unwrap_or("public");
            // A list of its own: no tenant or user column, and no reference to another table
            // (a download log of packages is the packages' owners' data).
            let standalone = !t
                .columns
                .iter()
                .any(|(c, refs)| parent_of(c, refs, f.tables).is_some());
            (!r.tenant_column && user_column.is_none() && standalone && read_only.only_read(&r.name)).then(|| {
                (
                    Decided::Exempt,
                    format!("inferred by init: no `{}`, no user column and no reference to another table; row level security is off, but the default privileges of schema `{schema}` give anon and authenticated SELECT alone: a global list clients may only read", f.column),
                )
            })
        };
        if let Some((what, why)) = decision {
            out.push(Decision {
                table: r.name.clone(),
                what,
                why,
            });
        }
    }
    out
}

/// The table a column points at (bare name): its foreign key's, else for a `*_id` column the
/// history's table named after it (`file_id` → `files`, no foreign key).
fn parent_of(column: &str, refs: &Option<String>, tables: &[TableFacts]) -> Option<String> {
    refs.as_deref().map(bare).or_else(|| {
        (column != "id" && column.ends_with("_id"))
            .then(|| super::named_after(tables, column))
            .flatten()
    })
}

/// Does this USING read only the row's own columns, or its parents' rows through the row's
/// references (`fk in (select parent.id from parent where ...)`)?
fn by_row_or_parent(using: &str, t: &TableFacts, tables: &[TableFacts]) -> bool {
    let text = using.to_lowercase().replace('"', "");
    let selects = regex::Regex::new(r"\bselect\b")
        .unwrap()
        .find_iter(&text)
        .count();
    let parent = regex::Regex::new(
        r"\(?\s*(?:\w+\.)?(\w+)\s+in\s*\(\s*select\s+(?:(\w+(?:\.\w+)?)\.)?id\s+from\s+(\w+(?:\.\w+)?)\b",
    )
    .unwrap();
    let mut by_parent = 0;
    for c in parent.captures_iter(&text) {
        let (col, rel) = (&c[1], bare(&c[3]));
        let refers = t.columns.iter().any(|(name, refs)| {
            name == col
                && col != "id"
                && (refs.as_deref().map(bare).as_deref() == Some(rel.as_str())
                    || super::named_after(tables, col).as_deref() == Some(rel.as_str()))
        });
        if !refers {
            return false;
        }
        by_parent += 1;
    }
    by_parent == selects
}

/// Tables (qualified) a trigger of which sends their rows through Supabase Realtime
/// (`realtime.broadcast_changes`, `realtime.send`): clients subscribed to the topic receive
/// them whatever the table's policies.
fn broadcasts(histories: &[History]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for h in histories {
        for tr in &h.schema.triggers {
            let Some(func) = h.schema.functions.get(&tr.function) else {
                continue;
            };
            let sends = func.has_word("broadcast_changes")
                || func.has_word("realtime.broadcast_changes")
                || func.has_word("realtime.send")
                || (func.has_word("realtime") && func.has_word("send"));
            if sends {
                out.insert(tr.table.to_string());
            }
        }
    }
    out
}

fn is_client(p: &PolicyReport) -> bool {
    p.permissive
        && (p.roles.is_empty()
            || p.roles
                .iter()
                .any(|r| matches!(r.as_str(), "public" | "anon" | "authenticated")))
}

/// A SELECT policy open to every tenant while each policy clients write through is scoped:
/// `public_read`; with no client write at all and no tenant column: a catalogue, exempt.
fn read_open(r: &TableReport, t: &TableFacts, f: &Facts<'_>) -> Option<(Decided, String)> {
    let column = f.column;
    let client: Vec<&PolicyReport> = r.policies.iter().filter(|p| is_client(p)).collect();
    let writes: Vec<&&PolicyReport> = client.iter().filter(|p| p.command != "select").collect();
    let open: Vec<&&PolicyReport> = client
        .iter()
        .filter(|p| p.command == "select" && !p.tenant_scoped)
        .collect();
    if open.is_empty() || writes.iter().any(|p| !p.tenant_scoped) {
        return None;
    }
    // What the open reading rests on must be the row itself: `using (true)` (which makes any
    // other open policy moot), or each open policy reads the row's own columns or its
    // parent's through the row's reference (`chat_id in (select chats.id from chats where
    // chats.sharing <> 'private')`). A row published by rows that point at it (`id in
    // (select file_id from collection_files ...)`) is published by whoever may write those:
    // not settled here.
    let first = match open.iter().find(|p| {
        p.using
            .as_deref()
            .map(|u| {
                u.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .trim()
            })
            .is_some_and(|u| u.eq_ignore_ascii_case("true"))
    }) {
        Some(p) => p,
        None => {
            if !open
                .iter()
                .all(|p| by_row_or_parent(p.using.as_deref().unwrap_or(""), t, f.tables))
            {
                return None;
            }
            open.first()?
        }
    };
    let using = first
        .using
        .as_deref()
        .map(|u| {
            let u = u.split_whitespace().collect::<Vec<_>>().join(" ");
            if u.chars().count() > 80 {
                format!("{}...", u.chars().take(80).collect::<String>())
            } else {
                u
            }
        })
        .unwrap_or_default();
    if writes.is_empty() {
        return (!r.tenant_column).then(|| {
            (
                Decided::Exempt,
                format!("inferred by init: no `{column}`; policy \"{}\" lets every client read it (USING {using}) and no policy lets a client write it: a global catalogue", first.name),
            )
        });
    }
    Some((
        Decided::PublicRead,
        format!(
            "inferred by init: policy \"{}\" opens SELECT to every tenant (USING {using}) while the {} clients write through {} scoped: reading is open by design, writes are still judged",
            first.name,
            plural(writes.len(), "polic"),
            if writes.len() == 1 { "is" } else { "are all" }
        ),
    ))
}

/// Which tables clients may only read by privilege: those of a schema whose default
/// privileges give `anon` and `authenticated` SELECT alone on new tables (`alter default
/// privileges in schema app grant select on tables to anon, authenticated`), that no GRANT
/// of another privilege to a client names (the table, or all tables of its schema).
/// Supabase grants every privilege on `public`'s tables to both, so `public` never is.
struct ReadOnly {
    schemas: BTreeSet<String>,
    /// `schema.table` granted more than SELECT.
    tables: BTreeSet<String>,
}

impl ReadOnly {
    fn read(sql: &str) -> ReadOnly {
        let to_client = |to: &str| {
            ["anon", "authenticated", "public"].iter().any(|r| {
                to.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|w| w == *r)
            })
        };
        let default = regex::Regex::new(
            r"alter\s+default\s+privileges\s+(?:for\s+(?:role|user)\s+\w+\s+)?in\s+schema\s+(\w+)\s+grant\s+([\w\s,]+?)\s+on\s+tables\s+to\s+([\w\s,]+)",
        )
        .unwrap();
        let mut only_select = BTreeSet::new();
        let mut more = BTreeSet::new();
        for c in default.captures_iter(sql) {
            if !to_client(&c[3]) {
                continue;
            }
            let privileges: Vec<&str> = c[2].split(',').map(str::trim).collect();
            if privileges == ["select"] {
                only_select.insert(c[1].to_string());
            } else {
                more.insert(c[1].to_string());
            }
        }
        // A grant of more than SELECT (column lists included) to a client role, on one table
        // or on all tables of a schema.
        let grant = regex::Regex::new(
            r"\bgrant\s+([\w\s,()]+?)\s+on\s+(?:(all\s+tables\s+in\s+schema)\s+(\w+)|(?:table\s+)?(\w+)\.(\w+))\s+to\s+([\w\s,]+)",
        )
        .unwrap();
        let columns = regex::Regex::new(r"\([^)]*\)").unwrap();
        let mut tables = BTreeSet::new();
        for c in grant.captures_iter(sql) {
            if !to_client(&c[6]) {
                continue;
            }
            let privileges = columns.replace_all(&c[1], "");
            if privileges.split(',').all(|p| p.trim() == "select") {
                continue;
            }
            match (c.get(3), c.get(4), c.get(5)) {
                (Some(schema), _, _) => {
                    more.insert(schema.as_str().to_string());
                }
                (None, Some(schema), Some(table)) => {
                    tables.insert(format!("{}.{}", schema.as_str(), table.as_str()));
                }
                _ => {}
            }
        }
        ReadOnly {
            schemas: only_select
                .into_iter()
                .filter(|s| s != "public" && !more.contains(s))
                .collect(),
            tables,
        }
    }

    /// `name` qualified.
    fn only_read(&self, name: &str) -> bool {
        let schema = name.split('.').next().unwrap_or("public");
        self.schemas.contains(schema) && !self.tables.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_privileges_of_select_alone_make_a_schemas_tables_read_only() {
        let sql = "grant usage on schema app to authenticated, anon;\nalter default privileges in schema app grant select on tables to authenticated, anon;";
        let ro = ReadOnly::read(sql);
        assert!(ro.only_read("app.things"));
        assert!(!ro.only_read("public.things"));
        // A write privilege granted to a client on one table (column lists too) undoes it
        // for that table alone.
        let more =
            format!("{sql}\ngrant insert (name, handle)\n  on app.things\n  to authenticated;");
        let ro = ReadOnly::read(&more);
        assert!(!ro.only_read("app.things"));
        assert!(ro.only_read("app.others"));
        // A grant to a role that is no client's changes nothing.
        assert!(
            ReadOnly::read(&format!("{sql}\ngrant all on app.things to service_role;"))
                .only_read("app.things")
        );
        // On all tables of the schema, or by default privileges: none is read-only.
        assert!(!ReadOnly::read(&format!(
            "{sql}\ngrant update on all tables in schema app to anon;"
        ))
        .only_read("app.x"));
        let all = "alter default privileges in schema app grant all on tables to anon;";
        assert!(!ReadOnly::read(all).only_read("app.x"));
        // public is Supabase's: every privilege, whatever a migration adds.
        let public = "alter default privileges in schema public grant select on tables to anon;";
        assert!(!ReadOnly::read(public).only_read("public.x"));
    }
}
