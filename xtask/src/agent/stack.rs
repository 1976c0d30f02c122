//! What the prompt says about the repository's stack and the shape of its tables, read from
//! the repository itself: the package manager from `packageManager` or the lock file, the
//! lint and test tools from the package.json scripts and dependencies, and the key column
//! and timestamps of the model table from its `create table`. What is not found is said to
//! be unknown, never filled in with ours.

use std::path::Path;

use regex::Regex;

/// The package.json files of the root and of the workspace packages one or two levels
/// down (`apps/web`, `packages/db`), without dependencies and build output.
fn package_jsons(repo: &Path) -> Vec<(String, serde_json::Value)> {
    let read = |rel: &str| -> Option<(String, serde_json::Value)> {
        let text = std::fs::read_to_string(repo.join(rel)).ok()?;
        Some((rel.to_string(), serde_json::from_str(&text).ok()?))
    };
    let skip = |n: &str| n.starts_with('.') || matches!(n, "node_modules" | "dist" | "build");
    let dirs = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !skip(n))
            .collect();
        v.sort();
        v
    };
    let mut out: Vec<_> = read("package.json").into_iter().collect();
    for top in dirs(repo) {
        out.extend(read(&format!("{top}/package.json")));
        for sub in dirs(&repo.join(&top)) {
            out.extend(read(&format!("{top}/{sub}/package.json")));
        }
    }
    out
}

fn has_dep(json: &serde_json::Value, name: &str) -> bool {
    ["dependencies", "devDependencies"]
        .iter()
        .any(|d| json.get(d).and_then(|v| v.get(name)).is_some())
}

/// The scripts whose name starts with `prefix` (`lint`, `lint:api`, `test:unit`), as
/// (package.json path, name, command).
fn scripts<'j>(
    jsons: &'j [(String, serde_json::Value)],
    prefix: &str,
) -> Vec<(&'j str, &'j str, &'j str)> {
    let mut v = Vec::new();
    for (path, json) in jsons {
        let Some(m) = json.get("scripts").and_then(|s| s.as_object()) else {
            continue;
        };
        for (name, cmd) in m {
            if name.starts_with(prefix) {
                if let Some(cmd) = cmd.as_str() {
                    v.push((path.as_str(), name.as_str(), cmd));
                }
            }
        }
    }
    v
}

/// Which tools the scripts run, else which the packages depend on.
fn find_tools(
    jsons: &[(String, serde_json::Value)],
    prefix: &str,
    known: &[(&'static str, &'static str, &'static str)],
) -> Option<(Vec<&'static str>, String)> {
    let mut found: Vec<&'static str> = Vec::new();
    let mut seen_in = Vec::new();
    for (path, name, cmd) in scripts(jsons, prefix) {
        for (tool, word, _) in known {
            let re = Regex::new(&format!(r"(?:^|[\s/&;|]){}(?:$|[\s])", regex::escape(word)))
                .expect("tool pattern");
            if re.is_match(cmd) && !found.contains(tool) {
                found.push(tool);
                seen_in.push(format!("`{name}` of {path}: `{cmd}`"));
            }
        }
    }
    if found.is_empty() {
        for (path, json) in jsons {
            for (tool, _, dep) in known {
                if has_dep(json, dep) && !found.contains(tool) {
                    found.push(tool);
                    seen_in.push(format!("`{dep}` in {path}"));
                }
            }
        }
    }
    if found.is_empty() {
        None
    } else {
        Some((
            found,
            seen_in.into_iter().take(2).collect::<Vec<_>>().join(", "),
        ))
    }
}

fn and(v: &[&str]) -> String {
    match v {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The stack line of the prompt: `pnpm workspaces (...); lint: ESLint (...); tests: Vitest
/// (...)`, each part with where it was read, or said to be unknown.
/// The root's package.json is read first, then the packages that hold a route root (the
/// API's own scripts), then the others.
pub fn stack_line(repo: &Path, route_roots: &[&str]) -> String {
    let mut jsons = package_jsons(repo);
    // The package of a route root may sit deeper (`apps/web/client/src/app/api`).
    for r in route_roots {
        let mut dir = r.to_string();
        while let Some((up, _)) = dir.rsplit_once('/') {
            dir = up.to_string();
            let rel = format!("{dir}/package.json");
            if jsons.iter().any(|(p, _)| *p == rel) {
                continue;
            }
            if let Some(json) = std::fs::read_to_string(repo.join(&rel))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
            {
                jsons.push((rel, json));
            }
        }
    }
    jsons.sort_by_key(|(path, _)| {
        let dir = path.strip_suffix("package.json").unwrap_or(path);
        if dir.is_empty() {
            0
        } else if route_roots.iter().any(|r| r.starts_with(dir)) {
            1
        } else {
            2
        }
    });
    let root = jsons
        .iter()
        .find(|(p, _)| p == "package.json")
        .map(|(_, j)| j);
    let field = root
        .and_then(|j| j.get("packageManager"))
        .and_then(|v| v.as_str());
    let lock = crate::repo::lock_file(repo);
    let workspaces = repo.join("pnpm-workspace.yaml").is_file()
        || root.and_then(|j| j.get("workspaces")).is_some();
    let pm = match (field, lock) {
        (Some(f), _) => Some((
            f.split('@').next().unwrap_or(f).to_string(),
            format!("`packageManager` is `{f}`"),
        )),
        (None, Some((file, pm))) => Some((pm.to_string(), format!("`{file}` at the root"))),
        (None, None) => None,
    };
    let pm_part = match pm {
        Some((pm, why)) => format!(
            "{pm}{} ({why})",
            if workspaces { " workspaces" } else { "" }
        ),
        None if root.is_some() => {
            "package manager unknown (no `packageManager` in package.json and no lock file at the root)"
                .to_string()
        }
        None => "package manager unknown (no package.json at the root)".to_string(),
    };
    const LINTERS: [(&str, &str, &str); 4] = [
        ("ESLint", "eslint", "eslint"),
        ("ESLint", "next lint", "eslint-config-next"),
        ("Biome", "biome", "@biomejs/biome"),
        ("oxlint", "oxlint", "oxlint"),
    ];
    const TESTERS: [(&str, &str, &str); 6] = [
        ("Vitest", "vitest", "vitest"),
        ("Jest", "jest", "jest"),
        ("bun test", "bun test", "\u{0}"),
        ("Playwright", "playwright", "@playwright/test"),
        ("Mocha", "mocha", "mocha"),
        ("node --test", "node --test", "\u{0}"),
    ];
    let describe = |prefix: &str,
                    what: &str,
                    label: &str,
                    known: &[(&'static str, &'static str, &'static str)]| {
        match find_tools(&jsons, prefix, known) {
            Some((t, why)) => format!("{label}: {} ({why})", and(&t)),
            None => match scripts(&jsons, prefix).first() {
                Some((path, name, cmd)) => format!(
                    "{what} unknown (`{name}` of {path} runs `{cmd}`, no {what} this prompt knows)"
                ),
                None => format!(
                    "{what} unknown (no {prefix} script and no known {what} among the dependencies of package.json)"
                ),
            },
        }
    };
    let lint = describe("lint", "lint tool", "lint", &LINTERS);
    let test = describe("test", "test runner", "tests", &TESTERS);
    format!("{pm_part}; {lint}; {test}.")
}

/// The columns a new table copies from the model table: its key column and its timestamps
/// (with a default), as written, and the tenant column's type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableShape {
    /// `id uuid primary key default gen_random_uuid()`, `id bigint generated always as
    /// identity primary key`; `None` for a composite or table-level key it cannot copy.
    pub key: Option<String>,
    pub tenant_type: Option<String>,
    pub timestamps: Vec<String>,
}

/// The top-level items of the `create table <table> (...)` in `sql`, comments dropped and
/// whitespace folded. `table` is the bare name (its schema is not compared).
fn create_table_items(sql: &str, table: &str) -> Option<Vec<String>> {
    let re = Regex::new(
        r#"(?i)create\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?(?:"?[\w$]+"?\s*\.\s*)?"?([\w$]+)"?\s*\("#,
    )
    .expect("create table pattern");
    let m = re
        .captures_iter(sql)
        .find(|c| c[1].eq_ignore_ascii_case(table))?;
    let start = m.get(0)?.end();
    let bytes = sql.as_bytes();
    let (mut depth, mut i, mut cur, mut items) = (1usize, start, String::new(), Vec::new());
    while i < bytes.len() {
        let ch = sql[i..].chars().next()?;
        match ch {
            '-' if sql[i..].starts_with("--") => {
                i += sql[i..].find('\n').unwrap_or(sql.len() - i);
                cur.push(' ');
                continue;
            }
            '\'' | '"' => {
                let end = sql[i + 1..].find(ch).map_or(sql.len(), |e| i + 1 + e + 1);
                cur.push_str(&sql[i..end]);
                i = end;
                continue;
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    items.push(cur);
                    break;
                }
            }
            ',' if depth == 1 => {
                items.push(std::mem::take(&mut cur));
                i += 1;
                continue;
            }
            _ => {}
        }
        cur.push(ch);
        i += ch.len_utf8();
    }
    if depth != 0 {
        return None;
    }
    Some(
        items
            .into_iter()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

const CONSTRAINT_WORDS: [&str; 8] = [
    "constraint",
    "primary",
    "unique",
    "check",
    "foreign",
    "exclude",
    "like",
    "period",
];

/// Read the model table's shape from the migration text that creates it.
pub fn table_shape(sql: &str, table: &str, tenant_column: &str) -> Option<TableShape> {
    let items = create_table_items(sql, table)?;
    let name_of = |item: &str| -> Option<String> {
        let first = item
            .split_whitespace()
            .next()?
            .trim_matches('"')
            .to_lowercase();
        (!CONSTRAINT_WORDS.contains(&first.as_str())).then_some(first)
    };
    let columns: Vec<(String, &String)> = items
        .iter()
        .filter_map(|i| name_of(i).map(|n| (n, i)))
        .collect();
    let lower = |s: &str| s.to_lowercase();
    let mut shape = TableShape::default();
    let inline: Vec<&(String, &String)> = columns
        .iter()
        .filter(|(_, i)| lower(i).contains("primary key"))
        .collect();
    if let [(_, item)] = inline.as_slice() {
        shape.key = Some((*item).clone());
    } else if inline.is_empty() {
        // `primary key (id)` as a table constraint: the column it names, with the key added.
        let pk = Regex::new(r"(?i)^(?:constraint\s+\S+\s+)?primary\s+key\s*\(\s*([\w$]+)\s*\)$")
            .expect("pk pattern");
        let col = items
            .iter()
            .find_map(|i| pk.captures(i).map(|c| c[1].to_lowercase()));
        if let Some((_, item)) = col.and_then(|c| columns.iter().find(|(n, _)| *n == c)) {
            shape.key = Some(format!("{item} primary key"));
        }
    }
    const STOP: [&str; 11] = [
        "not",
        "null",
        "references",
        "default",
        "primary",
        "unique",
        "check",
        "constraint",
        "generated",
        "collate",
        "on",
    ];
    if let Some((_, item)) = columns.iter().find(|(n, _)| n == tenant_column) {
        let ty: Vec<&str> = item
            .split_whitespace()
            .skip(1)
            .take_while(|w| !STOP.contains(&lower(w).as_str()))
            .collect();
        if !ty.is_empty() {
            shape.tenant_type = Some(ty.join(" "));
        }
    }
    for (name, item) in &columns {
        let l = lower(item);
        let ty = l.split_whitespace().nth(1).unwrap_or_default();
        if ty.starts_with("timestamp") && l.contains(" default ") && name != tenant_column {
            shape.timestamps.push((*item).clone());
        }
    }
    Some(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_of_a_table_is_its_key_tenant_type_and_timestamps() {
        let sql = "-- a table\ncreate table if not exists \"public\".\"things\" (\n  thing_id bigint generated always as identity, -- the key\n  org_id bigint not null references public.orgs (id),\n  label text default 'a, b' check (label <> ')'),\n  inserted_at timestamp with time zone not null default timezone('utc', now()),\n  updated_at timestamptz default now(),\n  deleted_at timestamptz,\n  primary key (thing_id)\n);\ncreate table other (id int primary key);";
        let s = table_shape(sql, "things", "org_id").unwrap();
        assert_eq!(
            s.key.as_deref(),
            Some("thing_id bigint generated always as identity primary key")
        );
        assert_eq!(s.tenant_type.as_deref(), Some("bigint"));
        assert_eq!(
            s.timestamps,
            [
                "inserted_at timestamp with time zone not null default timezone('utc', now())",
                "updated_at timestamptz default now()"
            ]
        );
        let o = table_shape(sql, "other", "org_id").unwrap();
        assert_eq!(o.key.as_deref(), Some("id int primary key"));
        assert!(o.timestamps.is_empty() && o.tenant_type.is_none());
        assert!(table_shape(sql, "missing", "org_id").is_none());
    }

    #[test]
    fn the_package_of_the_routes_comes_before_the_others() {
        let dir = std::env::temp_dir().join(format!("xtask-stack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let put = |rel: &str, text: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        put("package.json", r#"{"scripts":{"lint":"turbo lint"}}"#);
        put("bun.lock", "");
        put("aaa/package.json", r#"{"scripts":{"lint":"eslint ."}}"#);
        put(
            "apps/web/client/package.json",
            r#"{"scripts":{"lint":"oxlint src"}}"#,
        );
        let line = stack_line(&dir, &["apps/web/client/src/app/api"]);
        let without = stack_line(&dir, &[]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(line.starts_with("bun (`bun.lock` at the root); lint: oxlint and ESLint (`lint` of apps/web/client/package.json: `oxlint src`, `lint` of aaa/package.json"), "{line}");
        assert!(
            line.contains("test runner unknown (no test script"),
            "{line}"
        );
        assert!(
            without.contains("lint: ESLint (`lint` of aaa/package.json: `eslint .`);"),
            "{without}"
        );
    }

    #[test]
    fn a_composite_key_is_not_copied() {
        let sql = "create table m (a uuid, b uuid, primary key (a, b));";
        assert_eq!(table_shape(sql, "m", "a").unwrap().key, None);
    }
}
