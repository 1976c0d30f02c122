//! Resolving an import as the project does, for following handlers into other files.
//!
//! Relative paths; the nearest `tsconfig.json` (or `jsconfig.json`): `paths` (exact and
//! one-`*` patterns, longest prefix first, each target tried in order), `baseUrl`, and
//! `extends` of a relative file; workspace packages by their `package.json` name, through
//! their `exports` map (subpaths, `*` patterns, conditions `types`/`import`/`default`), else
//! `types`/`module`/`main`, else the path inside the package — whether `node_modules` is
//! installed or not. A file is found as written, with a code extension added (`.ts`,
//! `.tsx`, ...), with `.js` written for a `.ts` source, or as a directory's `index.*`.
//! Anything else (a package from the registry) is a library: `None`, not followed.
//!
//! Our own rather than `oxc_resolver`: that crate builds here (11.24.3) but turns on
//! `serde_json`'s `preserve_order` for the whole workspace, which changes the key order of
//! every JSON value the tool writes (the SARIF report among them) and rebuilds everything
//! that depends on serde_json; and it adds 20 crates. This is the part of it route
//! following needs.

use std::{
    cell::RefCell,
    collections::HashMap,
    path::{Component, Path, PathBuf},
};

use serde_json::Value;

const EXTENSIONS: [&str; 8] = ["ts", "tsx", "mts", "cts", "js", "jsx", "mjs", "cjs"];

/// The compiler options of one tsconfig that matter for resolution, `extends` applied.
#[derive(Debug, Clone, Default)]
struct TsConfig {
    /// Absolute `baseUrl`.
    base_url: Option<PathBuf>,
    /// `paths` patterns with their targets, and the directory the targets are relative to.
    paths: Vec<(String, Vec<String>)>,
    paths_base: PathBuf,
}

pub struct Resolver {
    repo: PathBuf,
    /// Workspace package name → its directory.
    packages: Vec<(String, PathBuf)>,
    /// Directory → the tsconfig that applies to its files.
    tsconfig_of: RefCell<HashMap<PathBuf, Option<PathBuf>>>,
    tsconfigs: RefCell<HashMap<PathBuf, TsConfig>>,
}

impl Resolver {
    pub fn new(repo: &Path) -> Resolver {
        Resolver {
            packages: workspace_packages(repo),
            repo: repo.to_path_buf(),
            tsconfig_of: RefCell::new(HashMap::new()),
            tsconfigs: RefCell::new(HashMap::new()),
        }
    }

    /// The file `source` names when imported by the file `from` (absolute), or `None` when
    /// it names no file of the repository.
    pub fn resolve(&self, from: &Path, source: &str) -> Option<PathBuf> {
        let dir = from.parent()?;
        if source.starts_with("./") || source.starts_with("../") || source == "." || source == ".."
        {
            return self.file_or_dir(&normalize(&dir.join(source)));
        }
        if source.starts_with('/') {
            return self.file_or_dir(Path::new(source));
        }
        if let Some(config) = self.tsconfig_for(dir) {
            if let Some(found) = self.through_paths(&config, source) {
                return Some(found);
            }
            if let Some(base) = &config.base_url {
                if let Some(found) = self.file_or_dir(&normalize(&base.join(source))) {
                    return Some(found);
                }
            }
        }
        self.workspace(source)
    }

    fn through_paths(&self, config: &TsConfig, source: &str) -> Option<PathBuf> {
        let mut best: Option<(usize, &str, &[String])> = None;
        for (pattern, targets) in &config.paths {
            let matched = match pattern.split_once('*') {
                None => (pattern == source).then_some((pattern.len() + 1, "")),
                Some((pre, post)) => source
                    .strip_prefix(pre)
                    .and_then(|r| r.strip_suffix(post))
                    .map(|mid| (pre.len(), mid)),
            };
            if let Some((weight, mid)) = matched {
                if best.is_none_or(|(w, _, _)| weight > w) {
                    best = Some((weight, mid, targets));
                }
            }
        }
        let (_, mid, targets) = best?;
        targets.iter().find_map(|t| {
            let t = t.replacen('*', mid, 1);
            self.file_or_dir(&normalize(&config.paths_base.join(t)))
        })
    }

    /// The tsconfig (or jsconfig) nearest above `dir`, inside the repository.
    fn tsconfig_for(&self, dir: &Path) -> Option<TsConfig> {
        let path = self.tsconfig_path(dir)?;
        if let Some(c) = self.tsconfigs.borrow().get(&path) {
            return Some(c.clone());
        }
        let config = read_tsconfig(&path, 0);
        self.tsconfigs.borrow_mut().insert(path, config.clone());
        Some(config)
    }

    fn tsconfig_path(&self, dir: &Path) -> Option<PathBuf> {
        if let Some(hit) = self.tsconfig_of.borrow().get(dir) {
            return hit.clone();
        }
        let found = ["tsconfig.json", "jsconfig.json"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .or_else(|| match dir.parent() {
                Some(up) if dir != self.repo && up.starts_with(&self.repo) => {
                    self.tsconfig_path(up)
                }
                _ => None,
            });
        self.tsconfig_of
            .borrow_mut()
            .insert(dir.to_path_buf(), found.clone());
        found
    }

    /// A bare name that is a workspace package.
    fn workspace(&self, source: &str) -> Option<PathBuf> {
        let (name, dir) = self
            .packages
            .iter()
            .filter(|(n, _)| {
                source == n
                    || source
                        .strip_prefix(n.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
            .max_by_key(|(n, _)| n.len())?;
        let key = format!(".{}", &source[name.len()..]);
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("package.json")).ok()?).ok()?;
        let target = match manifest.get("exports") {
            Some(Value::String(s)) if key == "." => Some(s.clone()),
            Some(Value::Object(map)) if map.keys().any(|k| k.starts_with('.')) => {
                map.get(&key).and_then(export_target).or_else(|| {
                    map.iter().find_map(|(k, v)| {
                        let (pre, post) = k.split_once('*')?;
                        let mid = key.strip_prefix(pre)?.strip_suffix(post)?;
                        Some(export_target(v)?.replace('*', mid))
                    })
                })
            }
            Some(conditions @ Value::Object(_)) if key == "." => export_target(conditions),
            _ => None,
        };
        let target = target.unwrap_or_else(|| {
            if key == "." {
                ["types", "module", "main"]
                    .iter()
                    .find_map(|f| manifest.get(*f).and_then(|v| v.as_str()).map(String::from))
                    .unwrap_or_else(|| ".".into())
            } else {
                key.clone()
            }
        });
        self.file_or_dir(&normalize(&dir.join(target)))
    }

    /// `p` as a code file: as written, with an extension, `.js` standing for `.ts`, or a
    /// directory's `index.*`.
    fn file_or_dir(&self, p: &Path) -> Option<PathBuf> {
        if p.is_file() {
            return Some(p.to_path_buf());
        }
        let s = p.to_string_lossy();
        for ext in EXTENSIONS {
            let f = PathBuf::from(format!("{s}.{ext}"));
            if f.is_file() {
                return Some(f);
            }
        }
        for (js, ts) in [
            (".js", [".ts", ".tsx"]),
            (".mjs", [".mts", ".mts"]),
            (".jsx", [".tsx", ".tsx"]),
        ] {
            if let Some(stem) = s.strip_suffix(js) {
                for t in ts {
                    let f = PathBuf::from(format!("{stem}{t}"));
                    if f.is_file() {
                        return Some(f);
                    }
                }
            }
        }
        if p.is_dir() {
            if let Some(main) = std::fs::read_to_string(p.join("package.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|m| {
                    ["types", "module", "main"]
                        .iter()
                        .find_map(|f| m.get(*f).and_then(|v| v.as_str()).map(String::from))
                })
            {
                if let Some(f) = self
                    .file_or_dir(&normalize(&p.join(main)))
                    .filter(|f| f != p)
                {
                    return Some(f);
                }
            }
            for ext in EXTENSIONS {
                let f = p.join(format!("index.{ext}"));
                if f.is_file() {
                    return Some(f);
                }
            }
        }
        None
    }
}

/// Read a tsconfig and the relative files it `extends` (at most 5 deep).
fn read_tsconfig(path: &Path, depth: u32) -> TsConfig {
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let json = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&jsonc(&t)).ok())
        .unwrap_or(Value::Null);
    let mut config = TsConfig {
        paths_base: dir.clone(),
        ..TsConfig::default()
    };
    if depth < 5 {
        let parents: Vec<&str> = match json.get("extends") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        for parent in parents.into_iter().filter(|p| p.starts_with('.')) {
            let mut p = normalize(&dir.join(parent));
            if p.extension().is_none() {
                p.set_extension("json");
            }
            let inherited = read_tsconfig(&p, depth + 1);
            config.base_url = inherited.base_url.or(config.base_url);
            if !inherited.paths.is_empty() {
                config.paths = inherited.paths;
                config.paths_base = inherited.paths_base;
            }
        }
    }
    let options = json.get("compilerOptions");
    if let Some(base) = options
        .and_then(|o| o.get("baseUrl"))
        .and_then(|b| b.as_str())
    {
        config.base_url = Some(normalize(&dir.join(base)));
    }
    if let Some(Value::Object(paths)) = options.and_then(|o| o.get("paths")) {
        config.paths = paths
            .iter()
            .map(|(k, v)| {
                let targets = match v {
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect(),
                    Value::String(s) => vec![s.clone()],
                    _ => Vec::new(),
                };
                (k.clone(), targets)
            })
            .collect();
        // Targets are relative to `baseUrl` when set, else to this file's directory.
        config.paths_base = config.base_url.clone().unwrap_or(dir);
    }
    config
}

/// JSON with comments and trailing commas (tsconfig) → JSON.
fn jsonc(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            out.push(c as char);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_string = false;
            }
            i += 1;
        } else if c == b'"' {
            in_string = true;
            out.push('"');
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b',' {
            // A trailing comma: the next significant character closes the object or array.
            let mut j = i + 1;
            while j < b.len() && (b[j] as char).is_whitespace() {
                j += 1;
            }
            if !matches!(b.get(j), Some(b'}') | Some(b']')) {
                out.push(',');
            }
            i += 1;
        } else {
            // Non-ASCII bytes outside strings do not occur in valid JSON; keep them as text.
            let ch_len = utf8_len(c);
            out.push_str(&text[i..(i + ch_len).min(text.len())]);
            i += ch_len;
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// `a/b/../c/./d` → `a/c/d`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn export_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => ["types", "import", "default", "require", "node"]
            .iter()
            .find_map(|c| m.get(*c).and_then(export_target))
            .or_else(|| m.values().find_map(export_target)),
        Value::Array(a) => a.iter().find_map(export_target),
        _ => None,
    }
}

/// Every `package.json` with a `name` in the repository (not under `node_modules`, at most
/// four directories deep): the workspace packages.
fn workspace_packages(repo: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(repo)
        .max_depth(5)
        .into_iter()
        .filter_entry(|e| {
            let n = e.file_name().to_string_lossy();
            !(e.file_type().is_dir()
                && e.depth() > 0
                && (n == "node_modules" || n.starts_with('.') || n == "dist" || n == "build"))
        });
    for entry in walker.flatten() {
        if entry.file_name() != "package.json" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if let (Some(name), Some(dir)) = (
            v.get("name").and_then(|n| n.as_str()),
            entry.path().parent(),
        ) {
            out.push((name.to_string(), dir.to_path_buf()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsconfig_with_comments_and_trailing_commas_reads() {
        let j = jsonc("{\n // c\n \"a\": \"x//y\", /* b */ \"c\": [1, 2,],\n}\n");
        let v: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["a"], "x//y");
        assert_eq!(v["c"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn paths_exports_and_index_resolve() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/routes/crossfile");
        let r = Resolver::new(&repo);
        let from = repo.join("apps/api/src/app/api/factory/route.ts");
        let rel = |p: Option<PathBuf>| {
            p.map(|p| {
                p.strip_prefix(&repo)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
        };
        assert_eq!(
            rel(r.resolve(&from, "@/lib/handler")).as_deref(),
            Some("apps/api/src/lib/handler.ts")
        );
        assert_eq!(
            rel(r.resolve(&from, "@/lib")).as_deref(),
            Some("apps/api/src/lib/index.ts")
        );
        assert_eq!(
            rel(r.resolve(&from, "../../../lib/http.js")).as_deref(),
            Some("apps/api/src/lib/http.ts")
        );
        assert_eq!(
            rel(r.resolve(&from, "@cf/auth/guard")).as_deref(),
            Some("packages/auth/src/guard.ts")
        );
        assert_eq!(
            rel(r.resolve(&from, "@cf/contracts")).as_deref(),
            Some("packages/contracts/src/index.ts")
        );
        // baseUrl: `src/lib/db` from apps/api.
        assert_eq!(
            rel(r.resolve(&from, "src/lib/db")).as_deref(),
            Some("apps/api/src/lib/db.ts")
        );
        assert_eq!(r.resolve(&from, "next/server"), None);
        assert_eq!(r.resolve(&from, "./missing"), None);
    }
}
