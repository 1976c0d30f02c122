//! Route handlers and server actions: auth guard (`route-unguarded`, `route-unverified`),
//! input validation (`input-not-validated`), rate limits on public routes
//! (`rate-limit-missing`), RLS-bypassing clients and the tenant of each query
//! (`service-role-unscoped`, `tenant-from-request`), from the syntax tree of the file and
//! of the files it imports (`graph.rs`, resolved by `resolve.rs`).
//!
//! Each exported handler gets a [`HandlerReport`]; anything the checker cannot follow is
//! `unverified` (the checklist item becomes `unknown`), never a pass. A file that does not
//! parse yields one handler `*` that is unverified in every respect.

use crate::rules::catalog::Rule;
mod admin;
mod auth;
mod ctx;
pub mod graph;
mod input;
mod limit;
mod module;
pub(crate) mod resolve;

use oxc_ast::ast::Program;

use self::{
    auth::Auth,
    ctx::Ctx,
    graph::Graph,
    input::{Inputs, Origin},
    limit::Limit,
    module::{LocalFn, Module, Target},
};
use crate::{
    config::{self, Config},
    model::{Finding, HandlerReport, RouteReport, Severity},
    ts::{Source, SyntaxError},
};

/// Read-only helper for the prompt's conventions (`agent::conventions`).
pub use self::ctx::first_call_named;

pub const HTTP_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The configured names, and where the contracts package is.
#[derive(Debug, Clone)]
pub struct Settings {
    pub routes: config::Routes,
    /// Repository path of the contracts package (`packages/contracts`).
    pub contracts_dir: String,
    /// Its package.json `name` (`@dashboard/contracts`), when it has one.
    pub contracts_name: Option<String>,
    /// The tenant column (`[tenancy] column`), for the tenant filters of admin queries.
    pub tenant_column: String,
}

impl Settings {
    pub fn new(config: &Config, contracts_name: Option<String>) -> Settings {
        Settings {
            routes: config.routes.clone(),
            contracts_dir: config.contracts.package.trim_end_matches('/').to_string(),
            contracts_name,
            tenant_column: config.tenancy.column.clone(),
        }
    }

    /// How a contracts schema is imported, for messages.
    pub fn contracts_import(&self) -> String {
        self.contracts_name
            .clone()
            .unwrap_or_else(|| self.contracts_dir.clone())
    }

    /// Does an import `source`, written in the file at repository path `from`, name the
    /// contracts package (by package name, or by a relative path into its directory)?
    pub fn is_contracts_source(&self, source: &str, from: &str) -> bool {
        if let Some(name) = &self.contracts_name {
            if source == name
                || source
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            {
                return true;
            }
        }
        if source.starts_with("./") || source.starts_with("../") {
            let dir = from.rsplit_once('/').map_or("", |(d, _)| d);
            let resolved = normalize(&format!("{dir}/{source}"));
            return resolved == self.contracts_dir
                || resolved.starts_with(&format!("{}/", self.contracts_dir));
        }
        false
    }
}

/// `a/b/../c/./d` → `a/c/d`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Glob over `/`-separated paths: `*` and `?` stay within a segment, `**` spans segments.
pub fn glob_match(glob: &str, path: &str) -> bool {
    fn seg(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => seg(&p[1..], s) || (!s.is_empty() && seg(p, &s[1..])),
            (Some(b'?'), Some(_)) => seg(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => seg(&p[1..], &s[1..]),
            _ => false,
        }
    }
    fn segs(g: &[&str], p: &[&str]) -> bool {
        match g.first() {
            None => p.is_empty(),
            Some(&"**") => segs(&g[1..], p) || (!p.is_empty() && segs(g, &p[1..])),
            Some(first) => {
                !p.is_empty() && seg(first.as_bytes(), p[0].as_bytes()) && segs(&g[1..], &p[1..])
            }
        }
    }
    let g: Vec<&str> = glob.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    segs(&g, &p)
}

/// Where config places a route: `rel` is its path relative to the route root
/// (`public/health/route.ts`); globs match the file or its directory (`public/health`).
pub fn placement(routes: &config::Routes, rel: &str) -> Placement {
    let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
    let hit = |g: &str| glob_match(g, rel) || (!dir.is_empty() && glob_match(g, dir));
    Placement {
        exempt: routes
            .exempt
            .iter()
            .find(|e| !e.name.contains('#') && hit(&e.name))
            .map(|e| e.reason.clone()),
        // `utils/auth-helpers/server.ts#signIn*`: some exports of a file (server actions
        // that are public by design beside guarded ones).
        exports_exempt: routes
            .exempt
            .iter()
            .filter_map(|e| {
                let (file, export) = e.name.split_once('#')?;
                hit(file).then(|| (export.to_string(), e.reason.clone()))
            })
            .collect(),
        public: routes.public.iter().any(|g| hit(g)),
    }
}

/// What kind of file is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Next.js `route.ts`: its exported HTTP method handlers.
    Route,
    /// A `'use server'` file: every exported function is an action.
    ServerActions,
}

/// How config places one file.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// Exempt from auth: the configured reason.
    pub exempt: Option<String>,
    /// Exports exempt from auth (`file#export` globs): (export glob, reason).
    pub exports_exempt: Vec<(String, String)>,
    /// Matches a `public` glob: must be rate limited, need not be guarded.
    pub public: bool,
}

pub struct Checked {
    pub report: RouteReport,
    pub findings: Vec<Finding>,
}

/// Check one parsed file. `None` for a server-actions candidate without `'use server'`.
/// With a `graph`, names imported from other files of the repository are followed.
pub fn check(
    src: &Source,
    parsed: Result<&Program, &SyntaxError>,
    settings: &Settings,
    kind: Kind,
    place: &Placement,
    graph: Option<&Graph>,
) -> Option<Checked> {
    let program = match parsed {
        Ok(p) => p,
        Err(e) => return Some(unparsable(src, e, place)),
    };
    let module = Module::read(program);
    if kind == Kind::ServerActions && !module.use_server {
        return None;
    }
    let ctx = Ctx {
        src,
        module: &module,
        settings,
        graph,
    };
    let mut findings = Vec::new();
    let mut handlers = Vec::new();
    for export in &module.exports {
        let wanted = match kind {
            Kind::Route => HTTP_METHODS.contains(&export.name),
            Kind::ServerActions => true,
        };
        if wanted {
            let line = src.line(export.offset);
            handlers.push(check_handler(
                &ctx,
                kind,
                place,
                export.name,
                line,
                &export.target,
                &mut findings,
            ));
        }
    }
    for (source, offset) in &module.star_exports {
        let line = src.line(*offset);
        // `export * from "./handlers"`: the methods that file exports, when it can be read.
        let found: Vec<&str> = match graph.map(|g| g.exported_names(src.path, source)) {
            Some(Ok(names)) => HTTP_METHODS
                .iter()
                .copied()
                .filter(|m| kind == Kind::Route && names.iter().any(|n| n == m))
                .collect(),
            _ => Vec::new(),
        };
        if found.is_empty() {
            let target = Target::Opaque("everything re-exported from another file (`export *`)");
            handlers.push(check_handler(
                &ctx,
                kind,
                place,
                "*",
                line,
                &target,
                &mut findings,
            ));
        }
        for m in found {
            let target = Target::ReExport(source, m);
            handlers.push(check_handler(
                &ctx,
                kind,
                place,
                m,
                line,
                &target,
                &mut findings,
            ));
        }
    }
    let rate_limited = if place.public {
        route_limited(&handlers)
    } else {
        None
    };
    Some(Checked {
        report: RouteReport {
            path: src.path.to_string(),
            handlers: handlers.into_iter().map(|(h, _)| h).collect(),
            public: place.public,
            exempt: place.exempt.clone(),
            rate_limited,
        },
        findings,
    })
}

/// A public route is rate limited when every handler is; unknown when any could not be read.
fn route_limited(handlers: &[(HandlerReport, Limit)]) -> Option<bool> {
    if handlers.iter().any(|(_, l)| matches!(l, Limit::No(_))) {
        Some(false)
    } else if handlers
        .iter()
        .any(|(_, l)| matches!(l, Limit::Unverified(_)))
    {
        None
    } else {
        Some(true)
    }
}

fn unparsable(src: &Source, e: &SyntaxError, place: &Placement) -> Checked {
    unverified_file(
        src.path,
        e.line,
        &format!(
            "does not parse ({} at line {}): none of its handlers can be checked until it parses",
            e.message, e.line
        ),
        place,
    )
}

/// A file none of whose handlers can be checked (unparsable, unreadable): one handler `*`,
/// unverified in every respect.
pub fn unverified_file(path: &str, line: u32, why: &str, place: &Placement) -> Checked {
    Checked {
        report: RouteReport {
            path: path.to_string(),
            handlers: vec![HandlerReport {
                method: "*".into(),
                line,
                auth: "unverified".into(),
                validation: "unverified".into(),
                note: format!("file {why}"),
            }],
            public: place.public,
            exempt: place.exempt.clone(),
            rate_limited: None,
        },
        findings: vec![Finding::new(
            Rule::RouteUnverified,
            Severity::Warning,
            format!("the file {why}"),
        )
        .at(path, Some(line))],
    }
}

fn check_handler(
    ctx: &Ctx,
    kind: Kind,
    place: &Placement,
    name: &str,
    line: u32,
    target: &Target,
    findings: &mut Vec<Finding>,
) -> (HandlerReport, Limit) {
    let path = ctx.src.path;
    let what = match kind {
        Kind::Route => format!("{name} handler"),
        Kind::ServerActions => format!("server action `{name}`"),
    };
    let mut notes = Vec::new();

    // Auth. A server action that is itself a configured guard is trusted as configured.
    let auth = if kind == Kind::ServerActions
        && ctx.settings.routes.guard_calls.iter().any(|g| g == name)
    {
        Auth::Guarded(format!("is the configured guard `{name}`"))
    } else {
        ctx.auth_of_target(target)
    };
    let exempt = place.exempt.clone().or_else(|| {
        place
            .exports_exempt
            .iter()
            .find(|(g, _)| glob_match(g, name))
            .map(|(_, r)| r.clone())
    });
    let auth_state = match (&auth, &exempt) {
        (_, Some(reason)) => {
            notes.push(format!("exempt from auth: {reason}"));
            "exempt"
        }
        (Auth::Guarded(how), None) => {
            notes.push(how.clone());
            let authz = ctx.authorization_calls(target);
            if !authz.is_empty() {
                notes.push(format!(
                    "then authorizes with {}",
                    authz
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            "guarded"
        }
        (_, None) if place.public => {
            notes.push("public route: no auth, rate limited instead".into());
            "exempt"
        }
        (Auth::Unguarded(why), None) => {
            notes.push("no auth guard".into());
            findings.push(
                Finding::new(
                    Rule::RouteUnguarded,
                    Severity::Error,
                    format!(
                        "{what} is not guarded: {why}. Fix: {}",
                        guard_fix(&ctx.settings.routes)
                    ),
                )
                .at(path, Some(line)),
            );
            "unguarded"
        }
        (Auth::Unverified(why), None) => {
            notes.push(format!("auth not verified: {why}"));
            findings.push(
                Finding::new(
                    Rule::RouteUnverified,
                    Severity::Warning,
                    format!("{what}: auth could not be verified: {why}"),
                )
                .at(path, Some(line)),
            );
            "unverified"
        }
    };

    // Input validation.
    let inputs: Option<Inputs> = ctx.inputs_of_target(target);
    let validation = match inputs {
        None => {
            notes.push("input validation not verified".into());
            "unverified"
        }
        Some(mut inputs) => {
            if kind == Kind::ServerActions
                && inputs.reads.is_empty()
                && takes_arguments(ctx, target)
            {
                inputs.reads.push(("arguments", 0));
            }
            validation(ctx, &what, line, &inputs, &mut notes, findings)
        }
    };

    // Clients that bypass RLS, and where each query's tenant comes from.
    let tenancy = ctx.tenancy_of(target, kind == Kind::ServerActions);
    if !tenancy.admin.is_empty() {
        notes.push(format!(
            "uses an RLS-bypassing client ({})",
            tenancy
                .admin
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let column = &ctx.settings.tenant_column;
    for q in &tenancy.unscoped {
        findings.push(
            Finding::new(
                Rule::ServiceRoleUnscoped,
                Severity::Error,
                if q.handle {
                    format!(
                        "{what} runs `{}` on `{}`, a database handle that connects as the owner (RLS does not apply), and {}: filter it with `.where(eq(<table>.{}, <tenant of the auth context>))`",
                        q.snippet,
                        q.admin.as_deref().unwrap_or("?"),
                        q.why,
                        admin::camel(column)
                    )
                } else {
                    format!(
                        "{what} runs `{}` on `{}`, a client that bypasses RLS, and {}: filter it with `.eq(\"{column}\", <tenant of the auth context>)` or use the user's client",
                        q.snippet,
                        q.admin.as_deref().unwrap_or("?"),
                        q.why
                    )
                },
            )
            .at(path, Some(ctx.line(q.offset))),
        );
    }
    for q in &tenancy.from_request {
        findings.push(
            Finding::new(
                Rule::TenantFromRequest,
                Severity::Error,
                format!(
                    "{what} runs `{}` with a {column} taken from the request: a caller can name another tenant; take it from the auth context",
                    q.snippet
                ),
            )
            .at(path, Some(ctx.line(q.offset))),
        );
    }

    // Rate limit.
    let limit = if place.public {
        ctx.limit_of_target(target)
    } else {
        Limit::Unverified(String::new())
    };
    if place.public {
        match &limit {
            Limit::Yes(name) => notes.push(name.clone()),
            Limit::No(why) => {
                notes.push("no rate limit".into());
                findings.push(
                    Finding::new(
                        Rule::RateLimitMissing,
                        Severity::Error,
                        format!(
                            "{what} of a public route is not rate limited: {why}. Fix: call `await {}(req)` first and return 429 when it refuses",
                            first_or(&ctx.settings.routes.rate_limiters, "rateLimit")
                        ),
                    )
                    .at(path, Some(line)),
                );
            }
            Limit::Unverified(why) => notes.push(format!("rate limit not verified: {why}")),
        }
    }

    let report = HandlerReport {
        method: name.to_string(),
        line,
        auth: auth_state.into(),
        validation: validation.into(),
        note: notes.join("; "),
    };
    (report, limit)
}

/// How to guard a handler with what this repository configured.
fn guard_fix(routes: &config::Routes) -> String {
    let mut ways = Vec::new();
    if let Some(w) = routes.auth_wrappers.first() {
        ways.push(format!(
            "`return {w}(req, async (ctx) => ...)` as its first statement"
        ));
    }
    if let Some(g) = routes.guard_calls.first() {
        ways.push(format!("`await {g}(req)` as its first statement"));
    }
    ways.push("list the route in [routes] exempt with a reason".into());
    ways.join(", or ")
}

fn first_or<'l>(list: &'l [String], default: &'l str) -> &'l str {
    list.first().map_or(default, String::as_str)
}

/// Does a server action take arguments (its input)?
fn takes_arguments(ctx: &Ctx, target: &Target) -> bool {
    use oxc_ast::ast::Expression;
    let arity = |f: LocalFn| match f {
        LocalFn::Function(f) => f.params.items.len() + usize::from(f.params.rest.is_some()),
        LocalFn::Expr(e) => match e.get_inner_expression() {
            Expression::ArrowFunctionExpression(a) => {
                a.params.items.len() + usize::from(a.params.rest.is_some())
            }
            Expression::FunctionExpression(f) => f.params.items.len(),
            // `cache(async () => ...)`: the function it wraps.
            Expression::CallExpression(c) => c
                .arguments
                .iter()
                .find_map(
                    |a| match a.as_expression().map(|e| e.get_inner_expression()) {
                        Some(Expression::ArrowFunctionExpression(a)) => {
                            Some(a.params.items.len() + usize::from(a.params.rest.is_some()))
                        }
                        Some(Expression::FunctionExpression(f)) => Some(f.params.items.len()),
                        _ => None,
                    },
                )
                .unwrap_or(1),
            _ => 1,
        },
    };
    match target {
        Target::Function(f) => arity(LocalFn::Function(f)) > 0,
        Target::Expr(e) => arity(LocalFn::Expr(e)) > 0,
        Target::Local(n) => ctx.module.local_function(n).is_none_or(|f| arity(f) > 0),
        _ => true,
    }
}

fn validation(
    ctx: &Ctx,
    what: &str,
    line: u32,
    inputs: &Inputs,
    notes: &mut Vec<String>,
    findings: &mut Vec<Finding>,
) -> &'static str {
    let path = ctx.src.path;
    let contracts = ctx.settings.contracts_import();
    if inputs.reads.is_empty() && !inputs.passed.is_empty() {
        notes.push(format!(
            "input not verified: the request is handed to {}, which the checker does not read",
            inputs
                .passed
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return "unverified";
    }
    if inputs.reads.is_empty() {
        notes.push("no input".into());
        return "no_input";
    }
    let read: Vec<String> = inputs
        .reads
        .iter()
        .map(|(w, at)| {
            if *at > 0 {
                format!("{w} (line {})", ctx.line(*at))
            } else {
                w.to_string()
            }
        })
        .collect();
    let read = read.join(", ");
    if inputs.schemas.is_empty() {
        notes.push(format!("reads {read} without validation"));
        findings.push(
            Finding::new(
                Rule::InputNotValidated,
                Severity::Error,
                format!(
                    "{what} reads {read} but never passes it through a schema's .parse/.safeParse: validate it with a schema from {contracts}"
                ),
            )
            .at(path, Some(line)),
        );
        return "none";
    }
    // Each kind of input must reach a `.parse` argument; a schema used on something else
    // does not validate the body it never sees.
    let unvalidated: Vec<String> = inputs
        .reads
        .iter()
        .filter(|(w, _)| *w != "arguments" && !inputs.validated.contains(w))
        .map(|(w, at)| format!("{w} (line {})", ctx.line(*at)))
        .collect();
    if !unvalidated.is_empty() {
        let unvalidated = unvalidated.join(", ");
        notes.push(format!("reads {unvalidated} without validation"));
        findings.push(
            Finding::new(
                Rule::InputNotValidated,
                Severity::Error,
                format!(
                    "{what} reads {unvalidated} but it never reaches a schema's .parse/.safeParse: validate it with a schema from {contracts}"
                ),
            )
            .at(path, Some(line)),
        );
        return "none";
    }
    let mut outside = Vec::new();
    for s in &inputs.schemas {
        match &s.origin {
            Origin::Contracts(source) => notes.push(format!("schema {} from {source}", s.name)),
            Origin::Inline => {
                notes.push(format!("schema {} defined in the route", s.name));
                outside.push((s, "defined in this file".to_string()));
            }
            Origin::Elsewhere(source) => {
                notes.push(format!(
                    "schema {} from {source} (not the contracts package)",
                    s.name
                ));
                outside.push((s, format!("imported from `{source}`")));
            }
        }
    }
    if outside.is_empty() {
        return "contracts";
    }
    for (s, whence) in outside {
        findings.push(
            Finding::new(
                Rule::InputNotValidated,
                Severity::Warning,
                format!(
                    "{what} validates with schema `{}` {whence}: define it in {} and import it from {contracts}",
                    s.name, ctx.settings.contracts_dir
                ),
            )
            .at(path, Some(ctx.line(s.offset))),
        );
    }
    "inline"
}

#[cfg(test)]
mod tests;
