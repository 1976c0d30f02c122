//! Following a handler into the files it imports.
//!
//! Imports are resolved as the project resolves them (`resolve.rs`): relative paths,
//! `index.ts`, the nearest `tsconfig.json` (`paths` such as `@/*`, `baseUrl`, `extends`),
//! and workspace packages by their `package.json` name (their `exports` map,
//! `main`/`types`, or the path inside the package) even when `node_modules` is not
//! installed. What names no file of the repository is a library: it is not followed (a
//! configured name still counts as configured).
//!
//! Each module is parsed once and summarised into owned [`Facts`] per exported name: its
//! verdicts as a handler (auth, input, rate limit), what a function it returns would be
//! (a handler factory), whether it is an RLS-bypassing client. Following is depth-limited
//! ([`MAX_FILES_DEEP`]) and guarded against cycles; where it stops, the reason names the
//! file and the import, and the verdict is `unverified`.

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, HashSet},
    hash::{BuildHasherDefault, Hasher},
    path::{Path, PathBuf},
    rc::Rc,
};

use oxc_allocator::Allocator;

use super::{
    auth::Auth,
    ctx::Ctx,
    input::Inputs,
    limit::Limit,
    module::{Imported, Module, Target},
    resolve::Resolver,
    Settings,
};
use crate::ts::{self, Source};

/// How many files deep an import chain is followed from the route file.
pub const MAX_FILES_DEEP: u32 = 4;
/// Larger files are not followed into.
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// What one exported name of another module is.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Repository path of the file that defines it, and the line.
    pub path: String,
    pub line: u32,
    /// Its verdict when it is used as a handler (or called as a guard helper: a function
    /// that begins with a guard is `Guarded`).
    pub auth: Auth,
    /// When it is a function that returns a function (a handler factory, a wrapper): that
    /// function's verdict.
    pub makes: Option<Auth>,
    /// What it reads and validates of a request passed to it.
    pub inputs: Option<Inputs>,
    /// As a handler: is it rate limited first?
    pub limit: Limit,
    /// It is a configured rate limiter, or a function that begins with one.
    pub limiter: Option<String>,
    /// It is, or returns, a client that bypasses RLS.
    pub admin: bool,
    /// As a helper: the queries on RLS-bypassing clients it runs that its callers answer
    /// for.
    pub queries: Vec<super::admin::HelperQuery>,
}

/// Why something could not be followed.
pub type Stop = String;

/// What an imported name is: its facts, a library (`None`), or why it was not followed.
pub type FollowedFacts = Result<Option<Rc<Facts>>, Stop>;

/// A file of the repository, a library (`None`), or why the import does not resolve.
type Resolved = Result<Option<PathBuf>, Stop>;

struct Parsed {
    exports: HashMap<String, Rc<Facts>>,
    /// `export * from "x"`: the sources, resolved lazily.
    stars: Vec<String>,
    path: String,
    error: Option<String>,
}

pub struct Graph {
    repo: PathBuf,
    resolver: Resolver,
    settings: Settings,
    modules: RefCell<FxMap<PathBuf, Rc<Parsed>>>,
    /// Repository directory → the nearest directory above it (itself included) with a
    /// package.json.
    package_roots: RefCell<FxMap<String, Option<String>>>,
    /// Bare specifiers (`@/lib/x`, `next/server`) resolve the same in every file of one
    /// package (one tsconfig, one node_modules chain): `root\0specifier` → result.
    bare: RefCell<FxMap<String, Resolved>>,
    /// Relative specifiers resolve the same in every file of one directory:
    /// `directory\0specifier` → result.
    relative: RefCell<FxMap<String, Resolved>>,
    /// `directory\0specifier\0imported name` → what it is: each name a file imports is
    /// looked up once per directory, however many checks ask.
    followed: RefCell<FxMap<String, FollowedFacts>>,
    in_progress: RefCell<HashSet<PathBuf>>,
    depth: Cell<u32>,
}

impl Graph {
    pub fn new(repo: &Path, settings: &Settings) -> Graph {
        let repo = std::fs::canonicalize(repo).unwrap_or_else(|_| repo.to_path_buf());
        Graph {
            resolver: Resolver::new(&repo),
            repo,
            settings: settings.clone(),
            modules: RefCell::default(),
            package_roots: RefCell::default(),
            bare: RefCell::default(),
            relative: RefCell::default(),
            followed: RefCell::default(),
            in_progress: RefCell::new(HashSet::new()),
            depth: Cell::new(0),
        }
    }

    /// Repository path of an absolute path.
    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.repo)
            .map(crate::repo::to_slash)
            .unwrap_or_else(|_| p.display().to_string())
    }

    /// Resolve `source` imported by the file at repository path `from`: `Ok(None)` for a
    /// library (outside the repository, in `node_modules`, or a bare name that is no
    /// workspace package).
    pub fn resolve(&self, from: &str, source: &str) -> Result<Option<PathBuf>, Stop> {
        let dir = parent_dir(from);
        let (cache, key) = if source.starts_with('.') || source.starts_with('/') {
            (&self.relative, key(&[dir, source]))
        } else {
            let root = self.package_root(dir);
            // `\u{1}`: no package root (a directory name is never that).
            (
                &self.bare,
                key(&[root.as_deref().unwrap_or("\u{1}"), source]),
            )
        };
        if let Some(hit) = cache.borrow().get(&key) {
            return hit.clone();
        }
        let found = self.resolve_uncached(from, source);
        cache.borrow_mut().insert(key, found.clone());
        found
    }

    /// The nearest repository directory at or above `dir` (a repository path, `""` for the
    /// root) with a package.json.
    fn package_root(&self, dir: &str) -> Option<String> {
        if let Some(hit) = self.package_roots.borrow().get(dir) {
            return hit.clone();
        }
        let found = if self.repo.join(dir).join("package.json").is_file() {
            Some(dir.to_string())
        } else if dir.is_empty() {
            None
        } else {
            self.package_root(parent_dir(dir))
        };
        self.package_roots
            .borrow_mut()
            .insert(dir.to_string(), found.clone());
        found
    }

    fn resolve_uncached(&self, from: &str, source: &str) -> Result<Option<PathBuf>, Stop> {
        let relative = source.starts_with('.') || source.starts_with('/');
        match self.resolver.resolve(&self.repo.join(from), source) {
            Some(p)
                if p.starts_with(&self.repo)
                    && !p.components().any(|c| c.as_os_str() == "node_modules") =>
            {
                Ok(Some(p))
            }
            Some(_) => Ok(None),
            // Cached per directory: the message names the directory, not one file of it.
            None if relative => Err(format!(
                "`{source}` (imported in {}/) does not resolve to a file",
                parent_dir(from)
            )),
            None => Ok(None),
        }
    }

    /// The facts of `imported` from `source`, imported by the file `from`. `Ok(None)`: a
    /// library, not followed.
    pub fn facts(&self, from: &str, source: &str, imported: &Imported) -> FollowedFacts {
        let name = match imported {
            Imported::Named(n) => *n,
            Imported::Default => "default",
            Imported::Namespace => {
                return Err(format!("`{source}` is imported as a namespace in {from}; the checker follows named imports"))
            }
        };
        let key = key(&[parent_dir(from), source, name]);
        if let Some(hit) = self.followed.borrow().get(&key) {
            return hit.clone();
        }
        let found = match self.resolve(from, source) {
            Ok(Some(path)) => self.export_of(&path, name, 0).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.followed.borrow_mut().insert(key, found.clone());
        found
    }

    /// The names a module exports (for `export * from`).
    pub fn exported_names(&self, from: &str, source: &str) -> Result<Vec<String>, Stop> {
        let path = self
            .resolve(from, source)?
            .ok_or_else(|| format!("`{source}` is a library"))?;
        let parsed = self.module(&path)?;
        if let Some(e) = &parsed.error {
            return Err(e.clone());
        }
        Ok(parsed.exports.keys().cloned().collect())
    }

    fn export_of(&self, path: &Path, name: &str, hops: u32) -> Result<Rc<Facts>, Stop> {
        let parsed = self.module(path)?;
        if let Some(e) = &parsed.error {
            return Err(e.clone());
        }
        if let Some(f) = parsed.exports.get(name) {
            return Ok(f.clone());
        }
        if hops < MAX_FILES_DEEP {
            for star in &parsed.stars {
                if let Ok(Some(p)) = self.resolve(&parsed.path, star) {
                    if let Ok(f) = self.export_of(&p, name, hops + 1) {
                        return Ok(f);
                    }
                }
            }
        }
        Err(format!(
            "{} has no export `{name}` the checker can read",
            parsed.path
        ))
    }

    /// Parse and summarise one module, once.
    fn module(&self, path: &Path) -> Result<Rc<Parsed>, Stop> {
        if let Some(m) = self.modules.borrow().get(path) {
            return Ok(m.clone());
        }
        let rel = self.rel(path);
        if self.in_progress.borrow().contains(path) {
            return Err(format!("{rel} imports itself through a cycle"));
        }
        if self.depth.get() >= MAX_FILES_DEEP {
            return Err(format!(
                "stopped at {rel}: more than {MAX_FILES_DEEP} files deep"
            ));
        }
        self.in_progress.borrow_mut().insert(path.to_path_buf());
        self.depth.set(self.depth.get() + 1);
        let parsed = Rc::new(self.summarise(path, rel));
        self.depth.set(self.depth.get() - 1);
        self.in_progress.borrow_mut().remove(path);
        self.modules
            .borrow_mut()
            .insert(path.to_path_buf(), parsed.clone());
        Ok(parsed)
    }

    fn summarise(&self, path: &Path, rel: String) -> Parsed {
        let mut out = Parsed {
            exports: HashMap::new(),
            stars: Vec::new(),
            path: rel.clone(),
            error: None,
        };
        // A generated file (database types, a bundle) is no handler's helper worth reading.
        if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_FILE_BYTES) {
            out.error = Some(format!("{rel} is larger than 2 MiB and was not read"));
            return out;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                out.error = Some(format!("{rel} cannot be read ({e})"));
                return out;
            }
        };
        let alloc = Allocator::default();
        let src = Source::new(&rel, &text);
        let program = match ts::parse(&alloc, &src) {
            Ok(p) => p,
            Err(e) => {
                out.error = Some(format!(
                    "{rel} does not parse ({} at line {})",
                    e.message, e.line
                ));
                return out;
            }
        };
        let module = Module::read(&program);
        let ctx = Ctx {
            src: &src,
            module: &module,
            settings: &self.settings,
            graph: Some(self),
        };
        out.stars = module
            .star_exports
            .iter()
            .map(|(s, _)| s.to_string())
            .collect();
        for export in &module.exports {
            let facts = ctx.facts_of(&export.target, src.line(export.offset));
            out.exports.insert(export.name.to_string(), Rc::new(facts));
        }
        out
    }
}

/// Parts joined with NUL (no path, specifier or name holds one): one key, one allocation.
fn key(parts: &[&str]) -> String {
    parts.join("\0")
}

/// A `HashMap` with [`Fx`] hashing: the graph's lookups run for every import of every file.
type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// The multiply-rotate hash of rustc's `FxHasher`: a few operations per 8 bytes, where the
/// standard SipHash costs many times that (unoptimised, as `cargo xtask` is built). The
/// keys are the repository's own paths and import specifiers: nothing to defend against.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// The directory of a repository path (`""` for the root): `a/b/c.ts` → `a/b`.
fn parent_dir(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

impl<'a> Ctx<'a, '_> {
    /// Summarise one export of this module for the files that import it.
    fn facts_of(&self, target: &Target<'a>, line: u32) -> Facts {
        Facts {
            path: self.src.path.to_string(),
            line,
            auth: self.auth_of_target(target),
            makes: self.makes_of_target(target),
            inputs: self.inputs_of_target(target),
            limit: self.limit_of_target(target),
            limiter: self.limiter_of_target(target),
            admin: self.admin_of_target(target),
            queries: self.helper_queries(target),
        }
    }
}
