//! The package.json scripts behind the configured lint and test commands, and what changed
//! in them. `pnpm --filter api lint` is the `lint` script of the package named `api`;
//! `pnpm test:api` is the root's `test:api`, which usually calls pnpm again
//! (`pnpm --filter api test`): that script is followed too.

use serde_json::Value;

use crate::model::Finding;

use super::{code, weakened};

/// One script: the package.json that holds it (repository path) and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRef {
    pub manifest: String,
    pub name: String,
}

/// A workspace package: its directory (repository path) and its package.json `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub dir: String,
    pub name: String,
}

/// Which package.json a command runs a script of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    Root,
    /// `--filter api`, `npm -w api`.
    Name(String),
    /// `--filter ./apps/api`, `--dir apps/api`.
    Dir(String),
    /// `pnpm -r`: every workspace package that has the script.
    Recursive,
}

/// How deep root scripts calling pnpm again are followed.
const DEPTH: usize = 4;

/// The scripts `argv` runs, followed through scripts that call pnpm (or npm) again.
/// `packages` are the workspace's packages; `manifest` gives the text of a package.json by
/// repository path.
pub fn resolve(
    argv: &[String],
    packages: &[Package],
    manifest: &dyn Fn(&str) -> Option<String>,
) -> Vec<ScriptRef> {
    let mut out = Vec::new();
    follow(argv, packages, manifest, 0, &mut out);
    out
}

fn follow(
    argv: &[String],
    packages: &[Package],
    manifest: &dyn Fn(&str) -> Option<String>,
    depth: usize,
    out: &mut Vec<ScriptRef>,
) {
    let Some((select, script)) = script_of(argv) else {
        return;
    };
    let dirs: Vec<String> = match select {
        Select::Root => vec![String::new()],
        // A glob is not followed: the output checks decide.
        Select::Dir(d) if d.contains('*') => return,
        Select::Dir(d) => vec![d],
        Select::Name(n) => packages
            .iter()
            .filter(|p| p.name == n)
            .map(|p| p.dir.clone())
            .take(1)
            .collect(),
        Select::Recursive => packages.iter().map(|p| p.dir.clone()).collect(),
    };
    for dir in dirs {
        let path = if dir.is_empty() {
            "package.json".to_string()
        } else {
            format!("{}/package.json", dir.trim_end_matches('/'))
        };
        let Some(body) = manifest(&path).and_then(|t| script_body(&t, &script)) else {
            if !matches!(script_of(argv), Some((Select::Recursive, _))) {
                // The script is missing: still the one the command names.
                push(out, &path, &script);
            }
            continue;
        };
        if !push(out, &path, &script) || depth >= DEPTH {
            continue;
        }
        for part in body.split(['&', ';', '|']) {
            let words = crate::config::CommandLine::words(part).0;
            if !words.is_empty() {
                follow(&words, packages, manifest, depth + 1, out);
            }
        }
    }
}

/// Add a script once; `false` when it was already there.
fn push(out: &mut Vec<ScriptRef>, manifest: &str, name: &str) -> bool {
    let r = ScriptRef {
        manifest: manifest.to_string(),
        name: name.to_string(),
    };
    if out.contains(&r) {
        return false;
    }
    out.push(r);
    true
}

/// `(which package, script)` of a pnpm or npm command line: `pnpm --filter api lint` →
/// `(Name("api"), "lint")`, `pnpm test:api` → `(Root, "test:api")`, `npm run lint`,
/// `pnpm -r lint` → `(Recursive, "lint")`.
pub fn script_of(argv: &[String]) -> Option<(Select, String)> {
    let tool = argv.first()?.rsplit('/').next()?;
    if !matches!(tool, "pnpm" | "npm" | "yarn") {
        return None;
    }
    let selector = |s: &str| {
        if s.starts_with("./") {
            Select::Dir(s.trim_start_matches("./").trim_end_matches('/').to_string())
        } else {
            Select::Name(s.to_string())
        }
    };
    let mut select = Select::Root;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        // pnpm's `-w` is `--workspace-root`; npm's names a workspace.
        let names = match tool {
            "pnpm" => matches!(a, "--filter" | "-F"),
            "npm" => matches!(a, "--workspace" | "-w"),
            _ => false,
        };
        if names {
            select = selector(argv.get(i + 1)?);
            i += 2;
            continue;
        }
        if matches!(a, "--dir" | "-C" | "--prefix") {
            let d = argv.get(i + 1)?;
            select = Select::Dir(d.trim_start_matches("./").trim_end_matches('/').to_string());
            i += 2;
            continue;
        }
        if let Some(f) = a
            .strip_prefix("--filter=")
            .or_else(|| a.strip_prefix("--workspace="))
        {
            select = selector(f);
        } else if tool == "pnpm" && matches!(a, "-r" | "--recursive") {
            select = Select::Recursive;
        } else if a == "run" || a == "run-script" {
            // `pnpm run SCRIPT`
        } else if !a.starts_with('-') {
            if matches!(a, "install" | "i" | "add" | "exec" | "dlx" | "x" | "ci") {
                return None;
            }
            return Some((select, a.to_string()));
        }
        i += 1;
    }
    None
}

/// The scripts a command runs now differ from those it ran at the base (another package
/// took the filtered name, a root script now calls another one): a finding at the first
/// package.json it runs now.
pub fn moved(id: &str, command: &str, was: &[ScriptRef], is: &[ScriptRef]) -> Option<Finding> {
    if was.is_empty() || was == is {
        return None;
    }
    let show = |refs: &[ScriptRef]| {
        if refs.is_empty() {
            "nothing".to_string()
        } else {
            refs.iter()
                .map(|r| format!("{} of {}", code(&r.name), code(&r.manifest)))
                .collect::<Vec<_>>()
                .join(" → ")
        }
    };
    let at = is
        .first()
        .map(|r| r.manifest.as_str())
        .unwrap_or("package.json");
    Some(weakened(
        at,
        None,
        format!(
            "the {id} command {} now runs {} (at the base: {})",
            code(command),
            show(is),
            show(was)
        ),
    ))
}

/// The text of script `name` in a package.json, if it has one.
pub fn script_body(manifest: &str, name: &str) -> Option<String> {
    let json: Value = serde_json::from_str(manifest).ok()?;
    json.get("scripts")?.get(name)?.as_str().map(str::to_string)
}

/// The script as it was at the base and as it is now: a finding when it changed.
pub fn compare(r: &ScriptRef, before: Option<&str>, after: Option<&str>) -> Option<Finding> {
    let before = before.and_then(|t| script_body(t, &r.name));
    let after_text = after.unwrap_or("");
    let now = after.and_then(|t| script_body(t, &r.name));
    let line = key_line(after_text, &r.name);
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    match (before, now) {
        (Some(b), Some(a)) if b != a => Some(weakened(
            &r.manifest,
            line,
            format!(
                "the {} script the checks run changed: {} → {}",
                code(&r.name),
                code(&format!("{}: {}", q(&r.name), q(&b))),
                code(&q(&a))
            ),
        )),
        (Some(b), None) => Some(weakened(
            &r.manifest,
            None,
            format!(
                "the {} script the checks run was removed (it was {})",
                code(&r.name),
                code(&q(&b))
            ),
        )),
        _ => None,
    }
}

/// The line of `"key":` in a JSON text.
pub fn key_line(text: &str, key: &str) -> Option<u32> {
    let needle = serde_json::to_string(key).ok()?;
    text.lines().enumerate().find_map(|(n, l)| {
        let at = l.find(&needle)?;
        l[at + needle.len()..]
            .trim_start()
            .starts_with(':')
            .then_some(n as u32 + 1)
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        crate::config::CommandLine::words(s).0
    }

    const ROOT: &str = r#"{"scripts":{"test:api":"pnpm --filter api test","lint":"eslint ."}}"#;
    const API: &str = "{\n  \"name\": \"api\",\n  \"scripts\": {\n    \"lint\": \"eslint .\",\n    \"test\": \"vitest run\"\n  }\n}\n";

    fn resolve_here(cmd: &str) -> Vec<ScriptRef> {
        let packages = [
            Package {
                dir: "apps/api".into(),
                name: "api".into(),
            },
            Package {
                dir: "packages/contracts".into(),
                name: "@dashboard/contracts".into(),
            },
        ];
        let manifests = |p: &str| match p {
            "package.json" => Some(ROOT.to_string()),
            "apps/api/package.json" => Some(API.to_string()),
            "packages/contracts/package.json" => {
                Some(r#"{"scripts":{"test":"vitest run"}}"#.to_string())
            }
            _ => None,
        };
        resolve(&argv(cmd), &packages, &manifests)
    }

    fn sr(m: &str, n: &str) -> ScriptRef {
        ScriptRef {
            manifest: m.into(),
            name: n.into(),
        }
    }

    #[test]
    fn commands_resolve_through_filters_and_root_scripts() {
        assert_eq!(
            resolve_here("pnpm --filter api lint"),
            [sr("apps/api/package.json", "lint")]
        );
        assert_eq!(
            resolve_here("pnpm test:api"),
            [
                sr("package.json", "test:api"),
                sr("apps/api/package.json", "test")
            ]
        );
        assert_eq!(resolve_here("npm run lint"), [sr("package.json", "lint")]);
        assert_eq!(
            resolve_here("pnpm --filter ./apps/api lint"),
            [sr("apps/api/package.json", "lint")]
        );
        assert_eq!(
            resolve_here("pnpm -C apps/api lint"),
            [sr("apps/api/package.json", "lint")]
        );
        assert!(resolve_here("pnpm --filter ./apps/* lint").is_empty());
        assert_eq!(resolve_here("pnpm -w lint"), [sr("package.json", "lint")]);
        assert_eq!(
            resolve_here("pnpm -r lint"),
            [sr("apps/api/package.json", "lint")],
            "only the packages that have the script"
        );
        assert_eq!(
            resolve_here("pnpm -r test"),
            [
                sr("apps/api/package.json", "test"),
                sr("packages/contracts/package.json", "test")
            ]
        );
        assert_eq!(
            resolve_here("npm -w api run lint"),
            [sr("apps/api/package.json", "lint")]
        );
        assert!(resolve_here("node --test").is_empty());
        assert!(resolve_here("pnpm --filter nope lint").is_empty());
    }

    #[test]
    fn a_changed_script_is_named_with_before_and_after() {
        let r = sr("apps/api/package.json", "lint");
        let after = API.replace("\"lint\": \"eslint .\"", "\"lint\": \"true\"");
        let f = compare(&r, Some(API), Some(&after)).unwrap();
        assert_eq!(f.location().as_deref(), Some("apps/api/package.json:4"));
        assert_eq!(
            f.message,
            "the `lint` script the checks run changed: `\"lint\": \"eslint .\"` → `\"true\"`"
        );
        let gone = API.replace("    \"lint\": \"eslint .\",\n", "");
        assert!(compare(&r, Some(API), Some(&gone))
            .unwrap()
            .message
            .contains("was removed"));
    }

    #[test]
    fn a_command_that_now_runs_another_package_is_named() {
        let was = [sr("apps/api/package.json", "lint")];
        let is = [sr("packages/fake/package.json", "lint")];
        let f = moved("lint", "pnpm --filter api lint", &was, &is).unwrap();
        assert_eq!(f.location().as_deref(), Some("packages/fake/package.json"));
        assert_eq!(
            f.message,
            "the lint command `pnpm --filter api lint` now runs `lint` of `packages/fake/package.json` (at the base: `lint` of `apps/api/package.json`)"
        );
        assert_eq!(moved("lint", "x", &was, &was), None);
        assert_eq!(
            moved("lint", "x", &[], &is),
            None,
            "nothing ran at the base"
        );
    }

    #[test]
    fn an_unchanged_or_new_script_is_no_finding() {
        let r = sr("apps/api/package.json", "lint");
        assert_eq!(compare(&r, Some(API), Some(API)), None);
        let reformatted: Value = serde_json::from_str(API).unwrap();
        assert_eq!(compare(&r, Some(API), Some(&reformatted.to_string())), None);
        assert_eq!(compare(&r, None, Some(API)), None);
    }
}
