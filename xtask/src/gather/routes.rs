//! Route and code checks over the change: every new or changed `route.ts` under the route
//! root and every `'use server'` file under the server-actions directory (auth, input
//! validation, rate limits), the secret scan over every changed file, and the new schemas
//! of the contracts package for the handover.
//!
//! Each file is parsed once (oxc, one arena reused between files) and every rule reads the
//! same tree. With `--all`, the route root, the server-actions directory and the contracts
//! package are walked instead of the change.

use crate::rules::catalog::Rule;
use std::path::Path;

use oxc_allocator::Allocator;

use super::Missing;
use crate::{
    config::Config,
    model::{ChangeStatus, Finding, RouteEvidence, Severity},
    repo::{to_slash, Changes},
    rules::{
        contracts, interpolation,
        routes::{self, Kind, Settings},
        secrets,
    },
    ts::{self, Source},
};

/// File names Next.js takes as route handlers.
const ROUTE_FILES: [&str; 5] = [
    "route.ts",
    "route.js",
    "route.tsx",
    "route.jsx",
    "route.mjs",
];
/// Directories never walked with `--all`.
const SKIP_DIRS: [&str; 5] = ["node_modules", ".next", "dist", "build", ".turbo"];

/// One file to check: the path shown, and the path whose contents are read (a link's target).
struct FileRef {
    path: String,
    content: String,
    /// Where the file was in the base, when it existed there (modified or renamed).
    base_path: Option<String>,
}

pub fn analyze(repo: &Path, config: &Config, changes: &Changes) -> Result<RouteEvidence, Missing> {
    // oxc and the rules' visitors recurse once per level of the tree: the files are read on
    // one thread whose stack holds as many levels as the deepest changed file can have (the
    // graph's module cache is not shared between threads); a file past that, imported ones
    // included, is refused by `ts::parse` as too deep.
    // Code files are read here once and handed on, not read again for the check.
    let mut files: Vec<(FileRef, Option<Vec<u8>>)> = files(repo, config, changes)
        .into_iter()
        .map(|f| {
            let bytes = ts::is_code(&f.path)
                .then(|| std::fs::read(repo.join(&f.content)).ok())
                .flatten();
            (f, bytes)
        })
        .collect();
    let deepest = files
        .iter()
        .filter_map(|(_, b)| b.as_deref())
        .max_by_key(|b| ts::nesting_chars(b))
        .unwrap_or_default()
        .to_vec();
    Ok(ts::with_stack_for(&deepest, || {
        analyze_files(repo, config, changes, std::mem::take(&mut files))
    }))
}

fn analyze_files(
    repo: &Path,
    config: &Config,
    changes: &Changes,
    files: Vec<(FileRef, Option<Vec<u8>>)>,
) -> RouteEvidence {
    let settings = Settings::new(config, package_name(repo, &config.contracts.package));
    // Imports of route files are followed into the repository's other files, each read once.
    let graph = routes::graph::Graph::new(repo, &settings);
    let mut ev = RouteEvidence::default();
    let mut alloc = Allocator::default();
    for (f, read) in files {
        let role = role(config, &f.path);
        let bytes = match read.map_or_else(|| std::fs::read(repo.join(&f.content)), Ok) {
            Ok(b) => b,
            Err(e) => {
                // A name that is not UTF-8 comes with U+FFFD in it (`repo::changes`): nothing
                // is found under that name, and that must not pass for "nothing to check".
                let why = if f.path.contains('\u{FFFD}') {
                    "its file name is not UTF-8 (shown with \u{FFFD}), so it cannot be read: rename it".to_string()
                } else {
                    format!("cannot be read ({e})")
                };
                if let Some((_, rel)) = role {
                    let place = routes::placement(&config.routes, rel);
                    let checked = routes::unverified_file(&f.path, 1, &why, &place);
                    ev.routes.push(checked.report);
                    ev.findings.extend(checked.findings);
                } else if f.path.contains('\u{FFFD}') {
                    ev.findings.push(
                        Finding::new(
                            secrets::SKIPPED_RULE,
                            Severity::Info,
                            format!("not scanned for secrets: {why}; review it by hand"),
                        )
                        .at(&f.path, None),
                    );
                }
                continue;
            }
        };
        let old_schemas = || match (&changes.base, &f.base_path) {
            (Some(base), Some(p)) => base_schemas(repo, base, p),
            _ => Vec::new(),
        };
        read_file(
            &mut ev,
            &mut alloc,
            &Reading {
                config,
                settings: &settings,
                graph: Some(&graph),
            },
            &f.path,
            &bytes,
            old_schemas,
        );
    }
    ev.routes.sort_by(|a, b| a.path.cmp(&b.path));
    // In file order, as a reviewer reads them (stable: same-line findings keep their order).
    ev.findings
        .sort_by(|a, b| (a.path.as_deref(), a.line).cmp(&(b.path.as_deref(), b.line)));
    ev
}

/// Check the bytes of one changed file, as [`analyze`] does (it reads them from disk): the
/// secret scan, and for code the parse, interpolated SQL, new contracts schemas and, for a
/// route or server-actions file, its handlers. `old_schemas` gives the schemas the file had
/// in the base. Run inside [`ts::with_stack_for`].
/// What reading one file needs besides the file: the config, the route settings, and the
/// module graph for following imports (none for a file read on its own).
struct Reading<'a> {
    config: &'a Config,
    settings: &'a Settings,
    graph: Option<&'a routes::graph::Graph>,
}

fn read_file(
    ev: &mut RouteEvidence,
    alloc: &mut Allocator,
    r: &Reading,
    path: &str,
    bytes: &[u8],
    old_schemas: impl FnOnce() -> Vec<String>,
) {
    let (config, settings, graph) = (r.config, r.settings, r.graph);
    let role = role(config, path);
    ev.findings.extend(secrets::scan_file(path, bytes));
    if !ts::is_code(path) {
        return;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    alloc.reset();
    let src = Source::new(path, text);
    let parsed = ts::parse(alloc, &src);
    if let Ok(program) = &parsed {
        ev.findings.extend(interpolation::scan(&src, program));
        if is_contracts_source(config, path) {
            let old = old_schemas();
            let new = contracts::schemas(program)
                .into_iter()
                .filter(|n| !old.contains(n));
            ev.new_schemas.extend(new.map(|n| format!("{path}: {n}")));
        }
    }
    if let Some((kind, rel)) = role {
        let place = routes::placement(&config.routes, rel);
        if let Some(checked) = routes::check(&src, parsed.as_ref(), settings, kind, &place, graph) {
            ev.routes.push(checked.report);
            ev.findings.extend(checked.findings);
        }
    } else if let Err(e) = &parsed {
        ev.findings.push(
            Finding::new(
                Rule::TsSyntaxError,
                Severity::Warning,
                format!(
                    "does not parse ({}): its SQL and filter strings could not be checked",
                    e.message
                ),
            )
            .at(path, Some(e.line)),
        );
    }
}

/// One file's bytes, without a repository: what [`analyze`] finds in it as a new file (no
/// base, the contracts package unnamed), on a thread with the reader's stack. The entry
/// point of the `route_reader` fuzz target and of the stress tests.
pub fn read_one(config: &Config, path: &str, bytes: &[u8]) -> RouteEvidence {
    ts::with_stack_for(bytes, || {
        let settings = Settings::new(config, None);
        let mut ev = RouteEvidence::default();
        let mut alloc = Allocator::default();
        read_file(
            &mut ev,
            &mut alloc,
            &Reading {
                config,
                settings: &settings,
                graph: None,
            },
            path,
            bytes,
            Vec::new,
        );
        ev
    })
}

/// Is this path a route handler or a server-actions file: its kind and its path relative
/// to the route root (for the exempt and public globs).
fn role<'p>(config: &Config, path: &'p str) -> Option<(Kind, &'p str)> {
    let under = |dir: &str| -> Option<&'p str> {
        let dir = dir.trim_end_matches('/');
        (!dir.is_empty())
            .then(|| path.strip_prefix(dir)?.strip_prefix('/'))
            .flatten()
    };
    if let Some(rel) = config.routes.under_root(path) {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if ROUTE_FILES.contains(&name) && !private(rel) {
            return Some((Kind::Route, rel));
        }
    }
    if let Some(rel) = under(&config.routes.server_actions_dir) {
        if ts::is_code(path) {
            return Some((Kind::ServerActions, rel));
        }
    }
    None
}

/// Is the route file under a private folder (`_lib/`, `_sentry-testing/api/`)? Next.js opts a
/// folder whose name starts with `_`, and everything under it, out of routing: no URL reaches
/// its `route.ts` (a URL segment that must start with `_` is written `%5F`).
pub(crate) fn private(rel: &str) -> bool {
    rel.split('/')
        .rev()
        .skip(1)
        .any(|segment| segment.starts_with('_'))
}

/// The files of the change (not deleted), or with `--all` the files of the checked directories.
fn files(repo: &Path, config: &Config, changes: &Changes) -> Vec<FileRef> {
    let mut out: Vec<FileRef> = changes
        .files
        .iter()
        .filter(|f| f.status != ChangeStatus::Deleted)
        .map(|f| FileRef {
            path: f.path.clone(),
            content: f.content_path().to_string(),
            base_path: match f.status {
                ChangeStatus::Modified => Some(f.path.clone()),
                ChangeStatus::Renamed => f.from.clone(),
                _ => None,
            },
        })
        .collect();
    if changes.all {
        let roots = config.routes.all_roots().flat_map(|r| expand_root(repo, r));
        let dirs: Vec<String> = roots
            .chain([
                config.routes.server_actions_dir.clone(),
                config.contracts.package.clone(),
            ])
            .collect();
        for dir in &dirs {
            if dir.is_empty() {
                continue;
            }
            let walker = walkdir::WalkDir::new(repo.join(dir))
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| !SKIP_DIRS.contains(&e.file_name().to_string_lossy().as_ref()));
            for entry in walker.flatten().filter(|e| e.file_type().is_file()) {
                let Ok(rel) = entry.path().strip_prefix(repo) else {
                    continue;
                };
                let path = to_slash(rel);
                if !out.iter().any(|f| f.path == path) {
                    out.push(FileRef {
                        content: path.clone(),
                        path,
                        base_path: None,
                    });
                }
            }
        }
    }
    out
}

/// The directories of the repository a route root names (`apps/*/app/api`: each app's).
fn expand_root(repo: &Path, root: &str) -> Vec<String> {
    let mut found = vec![String::new()];
    for seg in root.split('/').filter(|s| !s.is_empty()) {
        let literal = !seg.contains(['*', '?']);
        found = found
            .into_iter()
            .flat_map(|dir| {
                let join = |name: &str| match dir.as_str() {
                    "" => name.to_string(),
                    d => format!("{d}/{name}"),
                };
                if literal {
                    return vec![join(seg)];
                }
                let Ok(entries) = std::fs::read_dir(repo.join(&dir)) else {
                    return Vec::new();
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .filter(|n| !SKIP_DIRS.contains(&n.as_str()) && routes::glob_match(seg, n))
                    .collect();
                names.sort();
                names.iter().map(|n| join(n)).collect()
            })
            .collect();
    }
    found
}

/// A source file of the contracts package (its tests excepted).
fn is_contracts_source(config: &Config, path: &str) -> bool {
    let dir = config.contracts.package.trim_end_matches('/');
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
        && !path.contains("/test/")
        && !path.contains("/tests/")
        && !path.contains("/__tests__/")
        && !path.contains(".test.")
        && !path.contains(".spec.")
}

/// The schemas a contracts file already had in the base, so only new ones are listed.
fn base_schemas(repo: &Path, base: &str, path: &str) -> Vec<String> {
    let out = crate::repo::git_command(repo)
        .args(["show", &format!("{base}:{path}")])
        .output();
    let Ok(out) = out else { return Vec::new() };
    let Ok(text) = String::from_utf8(out.stdout) else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    let alloc = Allocator::default();
    let src = Source::new(path, &text);
    ts::parse(&alloc, &src)
        .map(|p| contracts::schemas(&p))
        .unwrap_or_default()
}

/// The contracts package's `name` from its package.json, if it has one.
pub fn package_name(repo: &Path, package: &str) -> Option<String> {
    let text = std::fs::read_to_string(repo.join(package).join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("name")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangedFile;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-routes-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn changed(paths: &[&str]) -> Changes {
        Changes {
            base: None,
            all: false,
            files: paths
                .iter()
                .map(|p| ChangedFile {
                    path: p.to_string(),
                    status: ChangeStatus::Added,
                    from: None,
                    target: None,
                })
                .collect(),
        }
    }

    #[test]
    fn route_files_under_private_folders_are_no_routes() {
        let config = Config::default();
        let root = config.routes.root.trim_end_matches('/').to_string();
        let at = |rel: &str| role(&config, &format!("{root}/{rel}")).map(|(k, _)| k);
        assert_eq!(at("projects/route.ts"), Some(Kind::Route));
        assert_eq!(at("_sentry-testing/api/test1/route.ts"), None);
        assert_eq!(at("admin/_lib/route.ts"), None);
        assert_eq!(at("%5Fescaped/route.ts"), Some(Kind::Route));
        assert_eq!(at("under_score/route.ts"), Some(Kind::Route));
    }

    #[test]
    fn analyzes_changed_routes_and_scans_every_changed_file() {
        let repo = scratch("changed");
        write(
            &repo,
            "packages/contracts/package.json",
            r#"{ "name": "@dashboard/contracts" }"#,
        );
        write(
            &repo,
            "apps/api/src/app/api/projects/route.ts",
            "import { CreateProjectInput } from '@dashboard/contracts';\nimport { withAuth } from '@/server/middleware/auth';\nexport const POST = withAuth(async (req: Request) => Response.json(CreateProjectInput.parse(await req.json())));\n",
        );
        write(
            &repo,
            "apps/api/src/app/api/open/route.ts",
            "export async function GET() { return Response.json({}); }\n",
        );
        write(
            &repo,
            "apps/api/src/app/api/untouched/route.ts",
            "export async function GET() { return Response.json({}); }\n",
        );
        write(
            &repo,
            "apps/api/.env.local",
            "SUPABASE_SERVICE_ROLE_KEY=x\n",
        );
        write(&repo, "apps/api/src/lib/broken.ts", "export const = ;\n");
        let changes = changed(&[
            "apps/api/src/app/api/projects/route.ts",
            "apps/api/src/app/api/open/route.ts",
            "apps/api/.env.local",
            "apps/api/src/lib/broken.ts",
        ]);
        let ev = analyze(&repo, &Config::default(), &changes).unwrap();
        let routes: Vec<_> = ev
            .routes
            .iter()
            .map(|r| (r.path.as_str(), r.handlers[0].auth.as_str()))
            .collect();
        assert_eq!(
            routes,
            [
                ("apps/api/src/app/api/open/route.ts", "unguarded"),
                ("apps/api/src/app/api/projects/route.ts", "guarded")
            ]
        );
        assert_eq!(ev.routes[1].handlers[0].validation, "contracts");
        let mut rules: Vec<_> = ev
            .findings
            .iter()
            .map(|f| (f.rule, f.path.as_deref().unwrap_or("")))
            .collect();
        rules.sort();
        assert_eq!(
            rules,
            [
                (Rule::HardcodedSecret, "apps/api/.env.local"),
                (Rule::RouteUnguarded, "apps/api/src/app/api/open/route.ts"),
                (Rule::TsSyntaxError, "apps/api/src/lib/broken.ts"),
            ]
        );
        let _ = std::fs::remove_dir_all(&repo);
    }

    #[test]
    fn all_walks_the_route_root() {
        let repo = scratch("all");
        write(
            &repo,
            "apps/api/src/app/api/a/route.ts",
            "export const GET = withAuth(async () => new Response('a'));\n",
        );
        write(
            &repo,
            "apps/api/src/app/api/public/b/route.ts",
            "export async function GET() { return new Response('b'); }\n",
        );
        write(
            &repo,
            "apps/api/src/app/api/node_modules/x/route.ts",
            "export async function GET() {}\n",
        );
        let ev = analyze(&repo, &Config::default(), &Changes::all()).unwrap();
        let paths: Vec<_> = ev.routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "apps/api/src/app/api/a/route.ts",
                "apps/api/src/app/api/public/b/route.ts"
            ]
        );
        assert_eq!(ev.routes[1].rate_limited, Some(false));
        let _ = std::fs::remove_dir_all(&repo);
    }

    #[test]
    fn new_schemas_of_the_contracts_package_exclude_those_in_the_base() {
        let repo = scratch("schemas");
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        let file = "packages/contracts/src/projects.ts";
        write(
            &repo,
            file,
            "import { z } from 'zod';\nexport const Project = z.object({ id: z.string() });\n",
        );
        git(&["add", "."]);
        git(&["commit", "-qm", "base"]);
        write(
            &repo,
            file,
            "import { z } from 'zod';\nexport const Project = z.object({ id: z.string() });\nexport const CreateProjectInput = z.object({ name: z.string() });\n",
        );
        write(
            &repo,
            "packages/contracts/src/documents.ts",
            "import { z } from 'zod';\nexport const Document = z.object({});\n",
        );
        write(
            &repo,
            "packages/contracts/test/schemas.test.ts",
            "export const Fixture = z.object({});\n",
        );
        let changes = crate::repo::changes(&repo, Some("HEAD")).unwrap();
        let ev = analyze(&repo, &Config::default(), &changes).unwrap();
        assert_eq!(
            ev.new_schemas,
            [
                "packages/contracts/src/documents.ts: Document",
                "packages/contracts/src/projects.ts: CreateProjectInput",
            ]
        );
        let _ = std::fs::remove_dir_all(&repo);
    }

    #[test]
    fn links_are_read_through_their_target_and_deleted_files_are_skipped() {
        let repo = scratch("links");
        write(
            &repo,
            "apps/api/src/shared/open.ts",
            "export async function GET() { return Response.json({}); }\n",
        );
        let mut changes = changed(&[
            "apps/api/src/app/api/linked/route.ts",
            "apps/api/src/app/api/gone/route.ts",
        ]);
        changes.files[0].target = Some("apps/api/src/shared/open.ts".into());
        changes.files[1].status = ChangeStatus::Deleted;
        let ev = analyze(&repo, &Config::default(), &changes).unwrap();
        assert_eq!(ev.routes.len(), 1);
        assert_eq!(ev.routes[0].path, "apps/api/src/app/api/linked/route.ts");
        assert_eq!(ev.routes[0].handlers[0].auth, "unguarded");
        let f: Vec<_> = ev
            .findings
            .iter()
            .map(|f| (f.rule, f.location().unwrap()))
            .collect();
        assert_eq!(
            f,
            [(
                Rule::RouteUnguarded,
                "apps/api/src/app/api/linked/route.ts:1".to_string()
            )]
        );
        let _ = std::fs::remove_dir_all(&repo);
    }

    #[test]
    fn an_unreadable_route_is_unverified() {
        let repo = scratch("unreadable");
        let ev = analyze(
            &repo,
            &Config::default(),
            &changed(&["apps/api/src/app/api/missing/route.ts"]),
        )
        .unwrap();
        assert_eq!(ev.routes[0].handlers[0].auth, "unverified");
        assert_eq!(ev.findings[0].rule, Rule::RouteUnverified);
        assert!(
            ev.findings[0].message.contains("cannot be read"),
            "{}",
            ev.findings[0].message
        );
        let _ = std::fs::remove_dir_all(&repo);
    }

    /// Issue 15: handlers followed into the files they import (`tests/fixtures/routes/crossfile`,
    /// written for the tests): each pattern of `docs/corpus/routes/patterns.md` with the
    /// verdict its truth table gives.
    #[test]
    fn handlers_are_followed_across_files() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/routes/crossfile");
        let config = Config::load(&repo).unwrap();
        let ev = analyze(&repo, &config, &Changes::all()).unwrap();
        let got: Vec<String> = ev
            .routes
            .iter()
            .flat_map(|r| {
                r.handlers.iter().map(move |h| {
                    let path = r
                        .path
                        .trim_start_matches("apps/api/src/app/api/")
                        .trim_start_matches("apps/api/src/");
                    format!("{} {path} {} {}", h.method, h.auth, h.validation)
                })
            })
            .collect();
        let expected = [
            "archiveItem actions/items.ts guarded none",
            "GET admin-helper/route.ts guarded no_input",
            "POST admin-in-helper-body/route.ts guarded none",
            "GET admin-in-helper/route.ts guarded no_input",
            "DELETE admin-in-helper/route.ts guarded no_input",
            "GET admin-scoped/route.ts guarded no_input",
            "DELETE admin-unscoped/route.ts guarded none",
            "GET bearer/route.ts guarded no_input",
            "GET deep/route.ts unverified no_input",
            "GET drizzle-named/route.ts guarded no_input",
            "GET drizzle/route.ts guarded no_input",
            "POST drizzle/route.ts guarded no_input",
            "GET factory-open/route.ts unguarded no_input",
            "GET factory/route.ts guarded no_input",
            "GET items/[id]/route.ts guarded none",
            "POST local-params/route.ts guarded no_input",
            "POST parse-json-validated/route.ts guarded contracts",
            "POST parse-json/route.ts guarded none",
            "PATCH patch/route.ts guarded none",
            "PUT patch/route.ts guarded none",
            "POST public/late/route.ts exempt none",
            "POST public/limited/route.ts exempt no_input",
            "GET reexport/route.ts guarded no_input",
            "POST reexport/route.ts unguarded no_input",
            "GET response-schema/route.ts guarded none",
            "GET star/route.ts guarded no_input",
            "POST star/route.ts unguarded no_input",
            "POST tenant-from-body/route.ts guarded none",
            "GET unresolved/route.ts unverified unverified",
        ];
        assert_eq!(got, expected, "{:#?}", ev.findings);
        let limited: Vec<_> = ev
            .routes
            .iter()
            .filter(|r| r.public)
            .map(|r| (r.path.rsplit('/').nth(1).unwrap(), r.rate_limited))
            .collect();
        assert_eq!(limited, [("late", Some(false)), ("limited", Some(true))]);
        let findings: Vec<String> = ev
            .findings
            .iter()
            .filter(|f| {
                matches!(
                    f.rule,
                    Rule::ServiceRoleUnscoped | Rule::TenantFromRequest | Rule::RouteUnguarded
                )
            })
            .map(|f| {
                format!(
                    "{:?} {}",
                    f.rule,
                    f.location()
                        .unwrap()
                        .trim_start_matches("apps/api/src/app/api/")
                )
            })
            .collect();
        assert_eq!(
            findings,
            [
                "ServiceRoleUnscoped admin-helper/route.ts:6",
                // The helper's query runs with the tenant the body names.
                "ServiceRoleUnscoped admin-in-helper-body/route.ts:7",
                "TenantFromRequest admin-in-helper-body/route.ts:7",
                // An unfiltered helper, and one filtered only by an id (lines 6-7 pass the
                // auth context's tenant to helpers that filter on it, through a chain).
                "ServiceRoleUnscoped admin-in-helper/route.ts:8",
                "ServiceRoleUnscoped admin-in-helper/route.ts:14",
                "ServiceRoleUnscoped admin-unscoped/route.ts:8",
                // A configured handle name, unfiltered.
                "ServiceRoleUnscoped drizzle-named/route.ts:9",
                // `or(...)` widens the tenant filter; a filter on another column only.
                "ServiceRoleUnscoped drizzle/route.ts:10",
                "ServiceRoleUnscoped drizzle/route.ts:11",
                "RouteUnguarded factory-open/route.ts:3",
                "RouteUnguarded reexport/route.ts:1",
                "RouteUnguarded star/route.ts:1",
                "TenantFromRequest tenant-from-body/route.ts:8",
            ]
        );
        let note = |m: &str, p: &str| {
            ev.routes
                .iter()
                .find(|r| r.path.ends_with(p))
                .and_then(|r| r.handlers.iter().find(|h| h.method == m))
                .map(|h| h.note.clone())
                .unwrap()
        };
        assert!(
            note("GET", "factory/route.ts")
                .contains("createHandler (in apps/api/src/lib/handler.ts) → requireAuthContext"),
            "{}",
            note("GET", "factory/route.ts")
        );
        assert!(
            note("archiveItem", "actions/items.ts")
                .contains("requireMember → requireAdmin → requireAuthContext"),
            "{}",
            note("archiveItem", "actions/items.ts")
        );
        assert!(note("GET", "bearer/route.ts").contains("assertAdminRole"));
        // Where following stopped is named: the file and why.
        let deep = note("GET", "deep/route.ts");
        assert!(
            deep.contains("l5.ts") && deep.contains("more than 4 files deep"),
            "{deep}"
        );
        let missing = note("GET", "unresolved/route.ts");
        assert!(
            missing.contains("`../../../lib/missing`") && missing.contains("does not resolve"),
            "{missing}"
        );
        assert!(note("GET", "admin-scoped/route.ts").contains("RLS-bypassing"));
        let helper = note("GET", "admin-in-helper/route.ts");
        assert!(
            helper.contains("`admin (in apps/api/src/lib/documents.ts)`"),
            "{helper}"
        );
        let message = |p: &str, line: u32| {
            ev.findings
                .iter()
                .find(|f| f.path.as_deref().is_some_and(|x| x.ends_with(p)) && f.line == Some(line))
                .map(|f| f.message.clone())
                .unwrap()
        };
        // The finding names the helper's query, its file and line.
        let m = message("admin-in-helper/route.ts", 8);
        assert!(
            m.contains("listAllDocuments(…) → admin.from(\"documents\").select(\"*\") (apps/api/src/lib/documents.ts:12)"),
            "{m}"
        );
    }

    /// Several route roots (`tests/fixtures/routes/multiroot`): `root` with a `*` for the
    /// apps that keep handlers at `apps/<app>/app/api`, and `roots` for one under `src/`.
    /// The exempt and public globs are relative to the root a route is under; a `route.ts`
    /// under no root is not a handler.
    #[test]
    fn several_route_roots_are_checked() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/routes/multiroot");
        let config = Config::load(&repo).unwrap();
        let summary = |ev: &RouteEvidence| -> Vec<String> {
            ev.routes
                .iter()
                .flat_map(|r| {
                    r.handlers.iter().map(move |h| {
                        format!("{} {} {} {:?}", h.method, r.path, h.auth, r.rate_limited)
                    })
                })
                .collect()
        };
        let ev = analyze(&repo, &config, &Changes::all()).unwrap();
        assert_eq!(
            summary(&ev),
            [
                "GET apps/admin/src/app/api/public/ping/route.ts exempt Some(false)",
                "POST apps/admin/src/app/api/users/route.ts unguarded None",
                "DELETE apps/shop/app/api/orders/route.ts unguarded None",
                "GET apps/web/app/api/items/route.ts guarded None",
            ]
        );
        // A change: each file is placed by the root it lies under.
        let changed = |path: &str| crate::model::ChangedFile {
            path: path.into(),
            status: ChangeStatus::Added,
            from: None,
            target: None,
        };
        let changes = Changes {
            base: None,
            all: false,
            files: vec![
                changed("apps/admin/src/app/api/public/ping/route.ts"),
                changed("apps/shop/app/api/orders/route.ts"),
                changed("packages/ui/app/api/stray/route.ts"),
            ],
        };
        let ev = analyze(&repo, &config, &changes).unwrap();
        assert_eq!(
            summary(&ev),
            [
                "GET apps/admin/src/app/api/public/ping/route.ts exempt Some(false)",
                "DELETE apps/shop/app/api/orders/route.ts unguarded None",
            ]
        );
    }

    /// A copy of the routes of `examples/dashboard` (the product's reference monorepo):
    /// every handler must pass as written there.
    #[test]
    fn the_example_dashboard_passes() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/routes/dashboard");
        let config = Config::load(&repo).unwrap();
        let ev = analyze(&repo, &config, &Changes::all()).unwrap();
        let got: Vec<String> = ev
            .routes
            .iter()
            .flat_map(|r| {
                r.handlers.iter().map(move |h| {
                    let path = r.path.trim_start_matches("apps/api/src/app/api/");
                    format!(
                        "{} {path} {} {} [{}]",
                        h.method, h.auth, h.validation, h.note
                    )
                })
            })
            .collect();
        let expected = [
            "GET documents/route.ts guarded contracts [withAuth; schema ListDocumentsQuery from @dashboard/contracts]",
            "POST documents/route.ts guarded contracts [withAuth; schema CreateDocumentInput from @dashboard/contracts]",
            "GET projects/[id]/route.ts guarded contracts [withAuth; schema ProjectIdParams from @dashboard/contracts]",
            "PATCH projects/[id]/route.ts guarded contracts [withAuth; schema ProjectIdParams from @dashboard/contracts; schema UpdateProjectInput from @dashboard/contracts]",
            "DELETE projects/[id]/route.ts guarded contracts [withAuth; then authorizes with `canManage`; schema ProjectIdParams from @dashboard/contracts]",
            "GET projects/route.ts guarded contracts [withAuth; schema ListProjectsQuery from @dashboard/contracts]",
            "POST projects/route.ts guarded contracts [withAuth; schema CreateProjectInput from @dashboard/contracts]",
            "GET public/status/route.ts exempt no_input [public route: no auth, rate limited instead; no input; rateLimit]",
        ];
        assert_eq!(got, expected);
        assert_eq!(
            ev.routes
                .iter()
                .find(|r| r.public)
                .and_then(|r| r.rate_limited),
            Some(true)
        );
        assert!(ev.findings.is_empty(), "{:#?}", ev.findings);
        assert!(ev
            .new_schemas
            .contains(&"packages/contracts/src/projects.ts: CreateProjectInput".to_string()));
    }

    /// Realistic route shapes for the benchmark, `{i}` replaced by the route number.
    const BENCH_SHAPES: [&str; 4] = [
        r#"import { NextRequest, NextResponse } from "next/server";
import { CreateProjectInput, ListProjectsQuery } from "@dashboard/contracts";
import { withAuth } from "@/server/middleware/auth";

export const dynamic = "force-dynamic";

/** List the tenant's projects, paginated. */
export async function GET(req: NextRequest) {
  return withAuth(req, async (ctx) => {
    const query = ListProjectsQuery.parse(Object.fromEntries(req.nextUrl.searchParams));
    const { data, error, count } = await ctx.supabase
      .from("projects_{i}")
      .select("*", { count: "exact" })
      .eq("tenant_id", ctx.tenantId)
      .range(query.offset, query.offset + query.limit - 1);
    if (error) return NextResponse.json({ error: { code: "db", message: error.message } }, { status: 500 });
    return NextResponse.json({ data, pagination: { limit: query.limit, offset: query.offset, total: count } });
  });
}

export async function POST(req: NextRequest) {
  return withAuth(req, async (ctx) => {
    const input = CreateProjectInput.parse(await req.json());
    const { data, error } = await ctx.supabase
      .from("projects_{i}")
      .insert({ ...input, tenant_id: ctx.tenantId })
      .select()
      .single();
    if (error) return NextResponse.json({ error: { code: "db", message: error.message } }, { status: 500 });
    return NextResponse.json({ data }, { status: 201 });
  });
}
"#,
        r#"import { NextResponse } from "next/server";
import { ProjectIdParams, UpdateProjectInput } from "@dashboard/contracts";
import { requireAuthContext } from "@/server/auth";

type Ctx = { params: Promise<{ id: string }> };

export async function PATCH(req: Request, context: Ctx) {
  try {
    const auth = await requireAuthContext(req);
    const { id } = ProjectIdParams.parse(await context.params);
    const patch = UpdateProjectInput.parse(await req.json());
    const { data, error } = await auth.supabase.from("items_{i}").update(patch).eq("id", id).select().single();
    if (error) throw error;
    return NextResponse.json({ data });
  } catch (e) {
    return NextResponse.json({ error: { code: "bad_request", message: String(e) } }, { status: 400 });
  }
}

export const DELETE = (req: Request, context: Ctx) =>
  withAuth(req, async (ctx) => {
    const { id } = ProjectIdParams.parse(await context.params);
    await ctx.supabase.from("items_{i}").delete().eq("id", id);
    return new NextResponse(null, { status: 204 });
  });

import { withAuth } from "@/server/middleware/auth";
"#,
        r#"import { NextRequest, NextResponse } from "next/server";
import { rateLimit } from "@/server/rate-limit";

/** Public health probe {i}. */
export async function GET(req: NextRequest) {
  const limited = await rateLimit(req, { key: "health-{i}", limit: 60, windowSeconds: 60 });
  if (limited) return limited;
  return NextResponse.json({ ok: true, at: new Date().toISOString() });
}
"#,
        r#"import { withErrorHandling } from "@/server/errors";
import { requireAuthContext } from "@/server/auth";
import { DocumentQuery } from "@dashboard/contracts";

async function handler(req: Request) {
  const ctx = await requireAuthContext(req);
  const url = new URL(req.url);
  const q = DocumentQuery.parse({ search: url.searchParams.get("q") ?? "" });
  const { data } = await ctx.supabase.from("documents_{i}").select().ilike("title", `%${q.search}%`);
  return Response.json({ data });
}

export const GET = withErrorHandling(handler);
export { handler as HEAD };
"#,
    ];

    /// `cargo test -p xtask --lib -- --ignored --nocapture bench_1000_routes`
    #[test]
    #[ignore = "benchmark: run by hand"]
    fn bench_1000_routes() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/route-bench");
        let _ = std::fs::remove_dir_all(&repo);
        write(
            &repo,
            "packages/contracts/package.json",
            r#"{ "name": "@dashboard/contracts" }"#,
        );
        let toml = "[routes]\nguard_calls = [\"requireAuthContext\"]\n";
        let config = Config::parse(toml).unwrap();
        let mut bytes = 0;
        for i in 0..1000 {
            let shape = BENCH_SHAPES[i % BENCH_SHAPES.len()].replace("{i}", &i.to_string());
            let dir = if i % BENCH_SHAPES.len() == 2 {
                format!("public/r{i}")
            } else {
                format!("r{i}/[id]")
            };
            bytes += shape.len();
            write(
                &repo,
                &format!("apps/api/src/app/api/{dir}/route.ts"),
                &shape,
            );
        }
        let started = std::time::Instant::now();
        let ev = analyze(&repo, &config, &Changes::all()).unwrap();
        let elapsed = started.elapsed();
        let handlers: usize = ev.routes.iter().map(|r| r.handlers.len()).sum();
        println!(
            "checked {} route files ({} KiB, {handlers} handlers, {} findings) in {:.0} ms",
            ev.routes.len(),
            bytes / 1024,
            ev.findings.len(),
            elapsed.as_secs_f64() * 1000.0
        );
        assert_eq!(ev.routes.len(), 1000);
        assert!(ev
            .routes
            .iter()
            .flat_map(|r| &r.handlers)
            .all(|h| h.auth == "guarded" || h.auth == "exempt"));
        assert!(
            ev.findings.is_empty(),
            "{:?}",
            &ev.findings[..ev.findings.len().min(5)]
        );
    }
}
