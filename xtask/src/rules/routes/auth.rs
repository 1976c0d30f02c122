//! Is a handler guarded? Proof is structural, read from the syntax tree:
//!
//! - it *is* a configured wrapper call: `export const GET = withAuth(async (req, ctx) => ...)`;
//! - it *returns* one as its first statement (after declarations that do no work):
//!   `return withAuth(req, async (ctx) => ...)`, or the arrow body `(req) => withAuth(req, ...)`;
//! - it *begins* with a configured guard call, in a `try` block too:
//!   `await requireAuthContext(req)`, `const ctx = await requireAuthContext(req)`;
//! - it is made by a factory configured in `guarded_factories`.
//!
//! A guard anywhere else (after other work, after a `return`, inside `if (false)`) does not
//! count: code before it runs unauthenticated, or it never runs. A wrapper defined in the
//! route file itself proves nothing. Comments and strings are not in the tree at all.
//! What cannot be followed (a factory, a name imported from another file) is
//! `Unverified`, never `Guarded`.

use oxc_ast::ast::{ArrowFunctionBody, CallExpression, Expression, FunctionBody, Statement};
use oxc_span::GetSpan;

use super::{
    ctx::{
        does_work, first_call_named, is_noise, is_setup, member_path, strip_members, CallName, Ctx,
        Followed,
    },
    module::{Binding, Imported, LocalFn, Target},
};

/// Depth limit for following names and wrappers (cycles, pathological files).
const MAX_DEPTH: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// How: `withAuth`, `requireAuthContext`, `createHandler (guarded factory)`.
    Guarded(String),
    /// Why not, for the finding.
    Unguarded(String),
    /// What could not be followed.
    Unverified(String),
}

impl<'a> Ctx<'a, '_> {
    pub fn auth_of_target(&self, target: &Target<'a>) -> Auth {
        match target {
            Target::Function(f) => self.auth_of_fn(LocalFn::Function(f), 0),
            Target::Expr(e) => self.auth_of_expr(e, 0),
            Target::Local(name) => self.auth_of_name(name, 0),
            Target::ReExport(source, name) => {
                followed_auth(name, self.follow_source(source, &Imported::Named(name)))
            }
            Target::Opaque(what) => Auth::Unverified(format!(
                "the export is {what}; the checker cannot follow it"
            )),
        }
    }

    fn auth_of_name(&self, name: &str, depth: u32) -> Auth {
        match self.module.bindings.get(name) {
            Some(Binding::Import { .. }) => match self.follow(name) {
                Some(f) => followed_auth(name, f),
                None => Auth::Unverified(format!("`{name}` cannot be followed")),
            },
            Some(Binding::Function(f)) => self.auth_of_fn(LocalFn::Function(f), depth + 1),
            Some(Binding::Value(e)) => self.auth_of_expr(e, depth + 1),
            _ => Auth::Unverified(format!("`{name}` is not a function defined in this file")),
        }
    }

    pub fn auth_of_fn(&self, f: LocalFn<'a>, depth: u32) -> Auth {
        match f {
            LocalFn::Function(f) => match &f.body {
                Some(body) => self.auth_of_body(body, depth),
                None => Auth::Unverified("a function without a body".into()),
            },
            LocalFn::Expr(e) => self.auth_of_expr(e, depth),
        }
    }

    fn auth_of_expr(&self, e: &'a Expression<'a>, depth: u32) -> Auth {
        if depth > MAX_DEPTH {
            return Auth::Unverified("too many indirections to follow".into());
        }
        match e.get_inner_expression() {
            Expression::ArrowFunctionExpression(a) => match &a.body {
                ArrowFunctionBody::FunctionBody(body) => self.auth_of_body(body, depth),
                body => match body.as_expression() {
                    Some(value) => self.returns_guarded(value, depth).unwrap_or_else(|| {
                        Auth::Unguarded(format!(
                            "its arrow body returns {} without auth",
                            self.src.snippet(a.span, 60)
                        ))
                    }),
                    None => Auth::Unverified("an unusual arrow function".into()),
                },
            },
            Expression::FunctionExpression(f) => self.auth_of_fn(LocalFn::Function(f), depth),
            Expression::CallExpression(c) => self.auth_of_call(c, depth),
            Expression::Identifier(id) => self.auth_of_name(id.name.as_str(), depth),
            _ => Auth::Unverified(format!(
                "its value `{}` is not a function the checker can follow",
                self.src.snippet(e.span(), 60)
            )),
        }
    }

    /// `export const GET = something(...)`.
    fn auth_of_call(&self, c: &'a CallExpression<'a>, depth: u32) -> Auth {
        let s = &self.settings.routes;
        let name = self.call_name(&c.callee);
        let shown = name.map_or_else(
            || self.src.snippet(c.callee.span(), 40),
            |n| n.name().to_string(),
        );
        if let Some(n) = name {
            let listed = |l: &[String]| l.iter().any(|x| x == n.name());
            match n {
                CallName::Trusted(n) if listed(&s.auth_wrappers) => return Auth::Guarded(n.to_string()),
                CallName::Trusted(n) if listed(&s.guarded_factories) => {
                    return Auth::Guarded(format!("{n} (configured guarded factory)"))
                }
                CallName::Local(n) if listed(&s.auth_wrappers) || listed(&s.guarded_factories) => {
                    return Auth::Unverified(format!(
                        "`{n}` is defined in the route file itself, not imported: a local stand-in proves nothing; import the real one"
                    ))
                }
                _ => {}
            }
        }
        // A factory or wrapper defined in this repository: the function it returns.
        let made: Option<(Auth, String)> = match c.callee.get_inner_expression() {
            Expression::Identifier(id) => match self.module.bindings.get(id.name.as_str()) {
                Some(Binding::Import { .. }) => match self.follow(id.name.as_str()) {
                    Some(Followed::Facts(f)) => {
                        f.makes.clone().map(|m| (m, format!(" (in {})", f.path)))
                    }
                    Some(Followed::Stopped(why))
                        if c.arguments.iter().all(|a| self.function_arg(a).is_none()) =>
                    {
                        return Auth::Unverified(format!(
                            "built by `{shown}(...)`, which could not be followed: {why}"
                        ))
                    }
                    _ => None,
                },
                _ => self
                    .module
                    .local_function(id.name.as_str())
                    .and_then(|f| self.makes_of_fn(f, depth + 1))
                    .map(|m| (m, String::new())),
            },
            _ => None,
        };
        if let Some((Auth::Guarded(how), whence)) = &made {
            return Auth::Guarded(format!("{shown}{whence} → {how}"));
        }
        let wrapped: Vec<LocalFn> = c
            .arguments
            .iter()
            .filter_map(|a| self.function_arg(a))
            .collect();
        if wrapped.is_empty() {
            return match made {
                Some((Auth::Unguarded(why), whence)) => Auth::Unguarded(format!(
                    "`{shown}(...)`{whence} returns a handler that is not guarded: {why}"
                )),
                Some((Auth::Unverified(why), whence)) => {
                    Auth::Unverified(format!("`{shown}(...)`{whence}: {why}"))
                }
                _ => Auth::Unverified(format!(
                    "built by `{shown}(...)`, a factory the checker cannot see into: if it applies auth, list it in [routes] guarded_factories"
                )),
            };
        }
        let inner: Vec<Auth> = wrapped
            .into_iter()
            .map(|f| self.auth_of_fn(f, depth + 1))
            .collect();
        if let Some(Auth::Guarded(how)) = inner.iter().find(|a| matches!(a, Auth::Guarded(_))) {
            return Auth::Guarded(format!("{shown} → {how}"));
        }
        if let Some(u @ Auth::Unverified(_)) =
            inner.iter().find(|a| matches!(a, Auth::Unverified(_)))
        {
            return u.clone();
        }
        Auth::Unguarded(format!(
            "neither `{shown}(...)` nor the handler it wraps applies auth (if `{shown}` authenticates, list it in [routes] auth_wrappers)"
        ))
    }

    fn auth_of_body(&self, body: &'a FunctionBody<'a>, depth: u32) -> Auth {
        match self.auth_of_statements(&body.statements, depth) {
            Some(a) => a,
            None => match self.inline_token_check(&body.statements) {
                Some(why) => Auth::Unverified(why),
                None => Auth::Unguarded(self.why_unguarded(&body.statements)),
            },
        }
    }

    /// An inline check such as `getBearerToken(req)` + `supabase.auth.getUser(token)` at
    /// the start, not configured as a guard: why it is not verified.
    fn inline_token_check(&self, stmts: &'a [Statement<'a>]) -> Option<String> {
        let mut path = Vec::new();
        flatten_try(stmts, &mut path);
        for s in path.into_iter().filter(|s| !is_noise(s)).take(4) {
            let mut f = AuthCall(None);
            oxc_ast_visit::Visit::visit_statement(&mut f, s);
            if let Some((dotted, at)) = f.0 {
                return Some(format!(
                    "an inline token check (`{dotted}(...)` at line {}) is not a configured guard: if a failed check ends the request, add `{dotted}` to [routes] guard_calls",
                    self.line(at)
                ));
            }
        }
        None
    }

    /// `Some` when the statements begin with a guard (or a returned wrapper).
    fn auth_of_statements(&self, stmts: &'a [Statement<'a>], depth: u32) -> Option<Auth> {
        let first = stmts.iter().filter(|s| !is_noise(s)).find(|s| {
            // Declarations that do no work may come first: `const { id } = await params`;
            // so may those that only prepare the guard's arguments (a client, a token) or
            // read the request.
            !matches!(s, Statement::VariableDeclaration(_)) || (does_work(s) && !is_setup(s, true))
        })?;
        match first {
            Statement::TryStatement(t) => match self.auth_of_statements(&t.block.body, depth)? {
                Auth::Guarded(how) => Some(Auth::Guarded(format!("{how} (in try)"))),
                other => Some(other),
            },
            Statement::ReturnStatement(r) => self.returns_guarded(r.argument.as_ref()?, depth),
            Statement::ExpressionStatement(e) => self.guard_call(&e.expression, depth),
            Statement::VariableDeclaration(v) => v
                .declarations
                .iter()
                .filter_map(|d| d.init.as_ref())
                .find_map(|init| self.guard_call(init, depth)),
            _ => None,
        }
    }

    /// A configured guard call. It must be awaited: an async guard that is not awaited
    /// rejects after the handler has already run.
    fn guard_call(&self, e: &'a Expression<'a>, depth: u32) -> Option<Auth> {
        let found = self
            .guard(e, &self.settings.routes.guard_calls)
            .or_else(|| self.helper_guard(e, depth))?;
        let awaited = matches!(strip_members(e), Expression::AwaitExpression(_));
        match found {
            Auth::Guarded(n) if !awaited => Some(Auth::Unverified(format!(
                "`{n}(...)` is not awaited: if it is async, the handler runs on before it rejects; write `await {n}(...)`"
            ))),
            other => Some(other),
        }
    }

    /// A call to a helper (in this file or another) that itself begins with a guard:
    /// `await requireAdmin(req)` where `requireAdmin` begins with `requireAuthContext`.
    fn helper_guard(&self, e: &'a Expression<'a>, depth: u32) -> Option<Auth> {
        let inner = match strip_members(e) {
            Expression::AwaitExpression(a) => a.argument.get_inner_expression(),
            e => e,
        };
        let Expression::CallExpression(c) = inner else {
            return None;
        };
        let Expression::Identifier(id) = c.callee.get_inner_expression() else {
            return None;
        };
        let name = id.name.as_str();
        if depth > MAX_DEPTH {
            return None;
        }
        if let Some(f) = self.module.local_function(name) {
            return match self.auth_of_fn(f, depth + 1) {
                Auth::Guarded(how) => Some(Auth::Guarded(format!("{name} → {how}"))),
                _ => None,
            };
        }
        match self.follow(name)? {
            Followed::Facts(f) => match f.auth.clone() {
                Auth::Guarded(how) => {
                    Some(Auth::Guarded(format!("{name} → {how} (in {})", f.path)))
                }
                // The helper's own start could not be followed (too deep, a cycle, a
                // file that does not parse): whether it guards is unknown, not "no".
                Auth::Unverified(why) if is_stop(&why) => Some(Auth::Unverified(format!(
                    "`{name}` ({}) could not be followed: {why}",
                    f.path
                ))),
                _ => None,
            },
            Followed::Stopped(why) => Some(Auth::Unverified(format!(
                "`{name}` could not be followed: {why}"
            ))),
            Followed::Library(_) => None,
        }
    }

    fn guard(&self, e: &Expression<'a>, list: &[String]) -> Option<Auth> {
        match self.call_in(e, list)? {
            CallName::Trusted(n) => Some(Auth::Guarded(n.to_string())),
            CallName::Local(n) => Some(Auth::Unverified(format!(
                "`{n}` is defined in the route file itself, not imported: a local stand-in proves nothing; import the real one"
            ))),
        }
    }

    /// A returned value that proves auth: a wrapper call, or a call to a guarded local function.
    fn returns_guarded(&self, value: &'a Expression<'a>, depth: u32) -> Option<Auth> {
        if let Some(a) = self.guard(value, &self.settings.routes.auth_wrappers) {
            return Some(a);
        }
        // `return await requireAuthContext(req)`: the guard's promise is the result, so its
        // rejection is the handler's.
        if let Some(a) = self.guard(value, &self.settings.routes.guard_calls) {
            return Some(a);
        }
        let inner = match value.get_inner_expression() {
            Expression::AwaitExpression(a) => a.argument.get_inner_expression(),
            e => e,
        };
        let Expression::CallExpression(c) = inner else {
            return None;
        };
        let Expression::Identifier(id) = c.callee.get_inner_expression() else {
            return None;
        };
        if depth > MAX_DEPTH {
            return None;
        }
        let name = id.name.as_str();
        let auth = match self.module.bindings.get(name)? {
            // `return PATCH(req)` where `const PATCH = withAuth(...)`.
            Binding::Value(v)
                if matches!(v.get_inner_expression(), Expression::CallExpression(_)) =>
            {
                self.auth_of_expr(v, depth + 1)
            }
            Binding::Import { .. } => match self.follow(name)? {
                Followed::Facts(f) => match f.auth.clone() {
                    Auth::Guarded(how) => Auth::Guarded(format!("{how} (in {})", f.path)),
                    Auth::Unverified(why) if is_stop(&why) => {
                        return Some(Auth::Unverified(format!(
                            "`{name}` ({}) could not be followed: {why}",
                            f.path
                        )))
                    }
                    other => other,
                },
                Followed::Stopped(why) => {
                    return Some(Auth::Unverified(format!(
                        "`{name}` could not be followed: {why}"
                    )))
                }
                Followed::Library(_) => return None,
            },
            _ => self.auth_of_fn(self.module.local_function(name)?, depth + 1),
        };
        match auth {
            Auth::Guarded(how) => Some(Auth::Guarded(format!("{name} → {how}"))),
            _ => None,
        }
    }

    /// When `target` is a function that returns a function (a handler factory, a wrapper):
    /// that function's verdict.
    pub fn makes_of_target(&self, target: &Target<'a>) -> Option<Auth> {
        match target {
            Target::Function(f) => self.makes_of_fn(LocalFn::Function(f), 0),
            Target::Expr(e) => self.makes_of_fn(LocalFn::Expr(e), 0),
            Target::Local(n) => self.makes_of_fn(self.module.local_function(n)?, 0),
            _ => None,
        }
    }

    pub fn makes_of_fn(&self, f: LocalFn<'a>, depth: u32) -> Option<Auth> {
        if depth > MAX_DEPTH {
            return None;
        }
        let returned: &'a Expression<'a> = match f {
            LocalFn::Function(f) => returned_value(&f.body.as_ref()?.statements)?,
            LocalFn::Expr(e) => match e.get_inner_expression() {
                Expression::ArrowFunctionExpression(a) => match &a.body {
                    ArrowFunctionBody::FunctionBody(b) => returned_value(&b.statements)?,
                    body => body.as_expression()?,
                },
                Expression::FunctionExpression(f) => returned_value(&f.body.as_ref()?.statements)?,
                _ => return None,
            },
        };
        match returned.get_inner_expression() {
            Expression::ArrowFunctionExpression(_) => {
                Some(self.auth_of_fn(LocalFn::Expr(returned), depth + 1))
            }
            Expression::FunctionExpression(f) => {
                Some(self.auth_of_fn(LocalFn::Function(f), depth + 1))
            }
            _ => None,
        }
    }

    /// Calls after the guard that authorize (`assertAdminRole`, `hasPermission`), for notes.
    pub fn authorization_calls(&self, target: &Target<'a>) -> Vec<String> {
        let mut v = Authz {
            names: Vec::new(),
            skip: &self.settings.routes,
        };
        match target {
            Target::Function(f) => oxc_ast_visit::Visit::visit_function(
                &mut v,
                f,
                oxc_syntax::scope::ScopeFlags::Function,
            ),
            Target::Expr(e) => oxc_ast_visit::Visit::visit_expression(&mut v, e),
            Target::Local(n) => match self.module.bindings.get(n) {
                Some(Binding::Function(f)) => oxc_ast_visit::Visit::visit_function(
                    &mut v,
                    f,
                    oxc_syntax::scope::ScopeFlags::Function,
                ),
                Some(Binding::Value(e)) => oxc_ast_visit::Visit::visit_expression(&mut v, e),
                _ => {}
            },
            _ => {}
        }
        v.names
    }

    /// The message for a body that does not begin with a guard.
    fn why_unguarded(&self, stmts: &[Statement<'a>]) -> String {
        let s = &self.settings.routes;
        let names: Vec<String> = s
            .auth_wrappers
            .iter()
            .chain(&s.guard_calls)
            .cloned()
            .collect();
        for stmt in stmts {
            if let Some((name, at)) = first_call_named(stmt, &names) {
                return format!(
                    "`{name}` at line {} is not where a guard counts (the first statement, or a `try` at the start): code before it runs unauthenticated, or it never runs",
                    self.line(at)
                );
            }
        }
        match (s.auth_wrappers.is_empty(), s.guard_calls.is_empty()) {
            (false, false) => format!(
                "it neither returns {} nor begins with {}",
                one_of(&s.auth_wrappers),
                one_of(&s.guard_calls)
            ),
            (false, true) => format!("it does not return {}", one_of(&s.auth_wrappers)),
            (true, false) => format!("it does not begin with {}", one_of(&s.guard_calls)),
            (true, true) => {
                "no auth wrapper or guard call is configured ([routes] auth_wrappers, guard_calls)"
                    .into()
            }
        }
    }
}

/// Follow an import written as `export { x } from "source"`.
impl<'a> Ctx<'a, '_> {
    pub fn follow_source(&self, source: &str, imported: &Imported) -> Followed {
        let Some(graph) = self.graph else {
            return Followed::Library(source.to_string());
        };
        match graph.facts(self.src.path, source, imported) {
            Ok(Some(f)) => Followed::Facts(f),
            Ok(None) => Followed::Library(source.to_string()),
            Err(stop) => Followed::Stopped(stop),
        }
    }
}

/// Does an unverified verdict come from where following stopped (not from a factory)?
fn is_stop(why: &str) -> bool {
    why.contains("could not be followed")
        || why.contains("files deep")
        || why.contains("through a cycle")
        || why.contains("does not parse")
        || why.contains("does not resolve")
        || why.contains("was not read")
        || why.contains("cannot be read")
}

/// The auth verdict of a handler found in another file.
fn followed_auth(name: &str, f: Followed) -> Auth {
    match f {
        Followed::Facts(f) => match f.auth.clone() {
            Auth::Guarded(how) => Auth::Guarded(format!("{how} (in {})", f.path)),
            Auth::Unguarded(why) => Auth::Unguarded(format!("`{name}` in {}:{}: {why}", f.path, f.line)),
            Auth::Unverified(why) => Auth::Unverified(format!("`{name}` in {}: {why}", f.path)),
        },
        Followed::Library(source) => Auth::Unverified(format!(
            "`{name}` comes from `{source}`, a library the checker does not read: if it applies auth, list it in [routes] guarded_factories or auth_wrappers"
        )),
        Followed::Stopped(why) => Auth::Unverified(format!("`{name}` could not be followed: {why}")),
    }
}

/// The value of the first `return` on a body's straight path.
fn returned_value<'a>(stmts: &'a [Statement<'a>]) -> Option<&'a Expression<'a>> {
    stmts.iter().find_map(|s| match s {
        Statement::ReturnStatement(r) => r.argument.as_ref(),
        _ => None,
    })
}

fn flatten_try<'a>(stmts: &'a [Statement<'a>], out: &mut Vec<&'a Statement<'a>>) {
    for s in stmts {
        match s {
            Statement::TryStatement(t) => flatten_try(&t.block.body, out),
            s => out.push(s),
        }
    }
}

/// The first `x.auth.getUser(...)`-like call (`getUser`, `getClaims`, `getSession` on `auth`).
struct AuthCall(Option<(String, u32)>);

impl<'a> oxc_ast_visit::Visit<'a> for AuthCall {
    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        if self.0.is_none() {
            if let Some(p) = member_path(&c.callee) {
                if ["auth.getUser", "auth.getClaims", "auth.getSession"]
                    .iter()
                    .any(|t| p == *t || p.ends_with(&format!(".{t}")))
                {
                    self.0 = Some((p, c.span.start));
                    return;
                }
            }
        }
        oxc_ast_visit::walk::walk_call_expression(self, c);
    }
}

/// Calls named like authorization checks (`assertAdminRole`, `hasPermission`, `canEdit`).
struct Authz<'r> {
    names: Vec<String>,
    skip: &'r crate::config::Routes,
}

impl<'a> oxc_ast_visit::Visit<'a> for Authz<'_> {
    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        if let Some(n) = c.callee_name() {
            let authz = [
                "assert",
                "ensure",
                "has",
                "can",
                "check",
                "verify",
                "require",
                "authorize",
            ]
            .iter()
            .any(|p| {
                n.strip_prefix(p)
                    .is_some_and(|r| r.starts_with(|ch: char| ch.is_ascii_uppercase()))
            });
            let configured = self
                .skip
                .guard_calls
                .iter()
                .chain(&self.skip.auth_wrappers)
                .chain(&self.skip.rate_limiters)
                .any(|g| g == n);
            if authz && !configured && !self.names.iter().any(|x| x == n) {
                self.names.push(n.to_string());
            }
        }
        oxc_ast_visit::walk::walk_call_expression(self, c);
    }
}

fn one_of(names: &[String]) -> String {
    match names {
        [] => "a configured call (none configured)".into(),
        [one] => format!("`{one}(...)`"),
        many => format!(
            "one of {}",
            many.iter()
                .map(|n| format!("`{n}(...)`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
