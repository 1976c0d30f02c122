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
    ctx::{does_work, first_call_named, is_noise, CallName, Ctx},
    module::{Binding, LocalFn, Target},
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
            Target::ReExport(source) => Auth::Unverified(format!(
                "re-exported from `{source}`: the checker reads one file at a time and cannot see its guard; define the handler in the route file"
            )),
            Target::Opaque(what) => Auth::Unverified(format!("the export is {what}; the checker cannot follow it")),
        }
    }

    fn auth_of_name(&self, name: &str, depth: u32) -> Auth {
        match self.module.bindings.get(name) {
            Some(Binding::Import { source, .. }) => Auth::Unverified(format!(
                "`{name}` is imported from `{source}`: the checker reads one file at a time and cannot see its guard; define the handler in the route file"
            )),
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
        let wrapped: Vec<LocalFn> = c
            .arguments
            .iter()
            .filter_map(|a| self.function_arg(a))
            .collect();
        if wrapped.is_empty() {
            return Auth::Unverified(format!(
                "built by `{shown}(...)`, a factory the checker cannot see into: if it applies auth, list it in [routes] guarded_factories"
            ));
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
            None => Auth::Unguarded(self.why_unguarded(&body.statements)),
        }
    }

    /// `Some` when the statements begin with a guard (or a returned wrapper).
    fn auth_of_statements(&self, stmts: &'a [Statement<'a>], depth: u32) -> Option<Auth> {
        let first = stmts.iter().filter(|s| !is_noise(s)).find(|s| {
            // Declarations that do no work may come first: `const { id } = await params`.
            !matches!(s, Statement::VariableDeclaration(_)) || does_work(s)
        })?;
        match first {
            Statement::TryStatement(t) => match self.auth_of_statements(&t.block.body, depth)? {
                Auth::Guarded(how) => Some(Auth::Guarded(format!("{how} (in try)"))),
                other => Some(other),
            },
            Statement::ReturnStatement(r) => self.returns_guarded(r.argument.as_ref()?, depth),
            Statement::ExpressionStatement(e) => self.guard_call(&e.expression),
            Statement::VariableDeclaration(v) => v
                .declarations
                .iter()
                .filter_map(|d| d.init.as_ref())
                .find_map(|init| self.guard_call(init)),
            _ => None,
        }
    }

    /// A configured guard call. It must be awaited: an async guard that is not awaited
    /// rejects after the handler has already run.
    fn guard_call(&self, e: &Expression<'a>) -> Option<Auth> {
        let found = self.guard(e, &self.settings.routes.guard_calls)?;
        let awaited = matches!(e.get_inner_expression(), Expression::AwaitExpression(_));
        match found {
            Auth::Guarded(n) if !awaited => Some(Auth::Unverified(format!(
                "`{n}(...)` is not awaited: if it is async, the handler runs on before it rejects; write `await {n}(...)`"
            ))),
            other => Some(other),
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
        let f = self.module.local_function(id.name.as_str())?;
        if depth > MAX_DEPTH {
            return None;
        }
        match self.auth_of_fn(f, depth + 1) {
            Auth::Guarded(how) => Some(Auth::Guarded(format!("{} → {how}", id.name))),
            _ => None,
        }
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
