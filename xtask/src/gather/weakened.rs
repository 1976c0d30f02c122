//! What the change did to the checks themselves (issue 16): every file of the compared range
//! (base → work tree) is read at the base (`git show`) and now, and the judges of
//! `rules::weakened` name what was weakened. Also decides which `xtask.toml` the run is
//! judged with: a loosened one is not trusted unless `--trust-config` says it was reviewed.

use std::path::Path;

use crate::{
    config::{self, Config},
    model::{ChangeStatus, Finding, Rule, Severity},
    repo::{self, Changes},
    rules::weakened::{self as rules, jsconfig, migrations, scripts, suppress, tests},
};

/// What the change weakened (a loosened `xtask.toml` included: an error, or info when
/// trusted, so the handover lists it either way).
#[derive(Debug, Clone, Default)]
pub struct Weakened {
    pub findings: Vec<Finding>,
}

/// The configuration the run is judged with, and the findings about `xtask.toml`.
pub struct ConfigJudgement {
    pub config: Config,
    pub findings: Vec<Finding>,
    /// Each loosening, `key: what`.
    pub loosened: Vec<String>,
    /// The base's configuration replaced the changed one.
    pub with_base: bool,
}

/// Compare `xtask.toml` at the base with the configuration the run was started with
/// (`loaded`; for `backend-stage`: before the agent ran). A work-tree file that differs from
/// `loaded` was changed during the run (by the agent): an error that `--trust-config` does
/// not cover, and never the configuration the run is judged with.
pub fn config(root: &Path, changes: &Changes, loaded: &Config, trust: bool) -> ConfigJudgement {
    let mut j = ConfigJudgement {
        config: loaded.clone(),
        findings: Vec::new(),
        loosened: Vec::new(),
        with_base: false,
    };
    let path = config::FILE_NAME;
    let now_text = std::fs::read_to_string(root.join(path)).ok();
    let now = match now_text.as_deref().map(Config::parse) {
        None => Ok(Config::default()),
        Some(r) => r,
    };
    // Changed since the run loaded it: by the agent (verify loads it right before this).
    let during_run = now.as_ref() != Ok(loaded);
    if during_run {
        let what = match &now {
            Ok(n) => {
                let l = rules::config::loosened(loaded, n);
                if l.is_empty() {
                    "changed".to_string()
                } else {
                    l.iter()
                        .map(|l| format!("{}: {}", l.key, l.what))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            }
            Err(why) => format!("changed and no longer parses ({why})"),
        };
        j.findings.push(rules::weakened(
            path,
            None,
            format!("{path} was changed during the run ({what}); the checks ran with the configuration as it was before, and the change must be reverted"),
        ));
    }
    let Some(base) = changes.base.as_deref().filter(|_| !changes.all) else {
        return j;
    };
    let base_text =
        repo::show_at(root, base, path).map(|b| String::from_utf8_lossy(&b).into_owned());
    let base_cfg = match base_text.as_deref().map(Config::parse) {
        None => Config::default(),
        Some(Ok(c)) => c,
        Some(Err(why)) => {
            j.findings.push(rules::undecided(
                path,
                None,
                format!("{path} at the base does not parse ({why}), so what the change loosened is not known; judged with the current one"),
            ));
            return j;
        }
    };
    // What the configuration the run started with loosens (the agent's change aside).
    let text = now_text.filter(|_| !during_run).unwrap_or_default();
    for l in rules::config::loosened(&base_cfg, loaded) {
        let line = rules::config::line(&text, &l).filter(|_| !during_run);
        let shown = format!("{}: {}", l.key, l.what);
        j.loosened.push(shown.clone());
        j.findings.push(if trust {
            Finding::new(
                Rule::ChecksWeakened,
                Severity::Info,
                format!("{shown} — trusted (--trust-config): the run is judged with it"),
            )
            .at(path, line)
        } else {
            rules::weakened(
                path,
                line,
                format!("{shown} — loosens the checks, so the run is judged with the base's {path}; pass --trust-config once the change is reviewed"),
            )
        });
    }
    if !trust && !j.loosened.is_empty() {
        j.config = base_cfg;
        j.with_base = true;
    }
    j
}

/// The workspace's packages: each folder of `apps/`, `packages/` and the `dir/*` globs of
/// pnpm-workspace.yaml (the folders `gather::commands` looks in) whose package.json has a
/// name. `list` gives a folder's entries (sub-folders end in `/`), `read` a file's text.
fn workspace(
    list: &dyn Fn(&str) -> Vec<String>,
    read: &dyn Fn(&str) -> Option<String>,
) -> Vec<scripts::Package> {
    let mut roots = vec!["apps".to_string(), "packages".to_string()];
    for line in read("pnpm-workspace.yaml").unwrap_or_default().lines() {
        let item = line
            .trim()
            .trim_start_matches('-')
            .trim()
            .trim_matches(['\'', '"']);
        if let Some(dir) = item.strip_suffix("/*").or_else(|| item.strip_suffix("/**")) {
            if !dir.starts_with('!') && !roots.iter().any(|r| r == dir) {
                roots.push(dir.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for root in roots {
        let mut entries = list(&root);
        entries.sort();
        for entry in entries.iter().filter(|e| e.ends_with('/')) {
            let dir = format!("{root}/{}", entry.trim_end_matches('/'));
            let json: Option<serde_json::Value> =
                read(&format!("{dir}/package.json")).and_then(|t| serde_json::from_str(&t).ok());
            if let Some(name) = json.as_ref().and_then(|j| j.get("name")?.as_str()) {
                out.push(scripts::Package {
                    dir,
                    name: name.to_string(),
                });
            }
        }
    }
    out
}

/// Files larger than this are not read for tests and suppressions.
const MAX_BYTES: usize = 2 * 1024 * 1024;

/// Read a file of the work tree as text.
fn now(root: &Path, path: &str) -> Option<String> {
    std::fs::read(root.join(path))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Everything else the change weakened: scripts, eslint and vitest configs, tests,
/// suppressions, applied migrations. `agent_run`: the change is the agent's, so even an
/// `xtask-allow` with a reason is not its to add.
pub fn gather(root: &Path, changes: &Changes, config: &Config, agent_run: bool) -> Vec<Finding> {
    let Some(base) = changes.base.as_deref().filter(|_| !changes.all) else {
        return Vec::new();
    };
    let then = |path: &str| {
        repo::show_at(root, base, path).map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let mut out = Vec::new();

    // 1. The scripts the configured lint and test commands run, as resolved now and at the base.
    // At the base the packages are found at the base: a package renamed away and another
    // given its name would otherwise hide the script that really ran.
    let list_now = |dir: &str| -> Vec<String> {
        std::fs::read_dir(root.join(dir))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| format!("{}/", e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let list_then = |dir: &str| -> Vec<String> {
        then(&format!("{dir}/"))
            .map(|l| l.lines().skip(1).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let packages_now = workspace(&list_now, &|p| now(root, p));
    let packages_then = workspace(&list_then, &then);
    let mut refs = Vec::new();
    for (id, line) in [
        ("lint", &config.commands.lint),
        ("test", &config.commands.test),
    ] {
        let is = scripts::resolve(&line.0, &packages_now, &|p| now(root, p));
        let was = scripts::resolve(&line.0, &packages_then, &then);
        out.extend(scripts::moved(id, &line.to_string(), &was, &is));
        for r in is.into_iter().chain(was) {
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }
    for r in &refs {
        let changed = changes.files.iter().any(|f| f.path == r.manifest);
        if changed {
            out.extend(scripts::compare(
                r,
                then(&r.manifest).as_deref(),
                now(root, &r.manifest).as_deref(),
            ));
        }
    }

    for f in &changes.files {
        let from = f.from.as_deref().unwrap_or(&f.path);
        match f.status {
            ChangeStatus::Deleted => {
                if tests::is_test_file(&f.path) {
                    out.push(tests::deleted(&f.path, None));
                } else if jsconfig::kind(&f.path).is_some() {
                    out.push(rules::undecided(&f.path, None, "a lint or test configuration was deleted: review what the checks now run with"));
                }
                continue;
            }
            ChangeStatus::Renamed if tests::is_test_file(from) && !tests::is_test_file(&f.path) => {
                out.push(tests::deleted(from, Some(&f.path)));
                continue;
            }
            _ => {}
        }
        let is_test = tests::is_test_file(&f.path);
        let is_config = jsconfig::kind(&f.path).is_some();
        if !is_test && !is_config && !suppress::is_read(&f.path) {
            continue;
        }
        // Added files were not at the base (copies aside); renamed ones are read at their old path.
        let before = match f.status {
            ChangeStatus::Added => None,
            _ => then(from),
        };
        let Some(after) = now(root, &f.path) else {
            continue;
        };
        if after.len() > MAX_BYTES {
            continue; // generated or vendored: not where a check is weakened by hand
        }
        // 2. Tests.
        if let Some(b) = &before {
            if is_test {
                out.extend(tests::compare(&f.path, b, &after));
            }
            if is_config {
                out.extend(jsconfig::judge(&f.path, b, &after));
            }
        } else if is_config {
            out.push(rules::undecided(
                &f.path,
                None,
                "a new lint or test configuration: eslint and vitest take the first config file they find by name, so a new one can replace what the checks ran with; review it",
            ));
        } else if is_test {
            // A new test file that is focused skips every other file's tests.
            out.extend(
                tests::compare(&f.path, "", &after)
                    .into_iter()
                    .filter(|x| x.message.contains("focused")),
            );
        }
        // 3. Suppressions added.
        if suppress::is_read(&f.path) {
            out.extend(suppress::added(
                &f.path,
                before.as_deref(),
                &after,
                agent_run,
            ));
        }
    }

    // 5. Applied migrations.
    let newest = |dir: &str| -> Option<String> {
        let listing = then(&format!("{dir}/"))?;
        listing
            .lines()
            .skip(1)
            .filter(|n| n.ends_with(".sql"))
            .filter_map(|n| migrations::version(n).map(str::to_string))
            .max()
    };
    out.extend(migrations::judge(
        &config.migrations.dirs,
        &changes.files,
        &then,
        &|p| now(root, p),
        &newest,
    ));
    out
}
