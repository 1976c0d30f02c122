//! Does a public handler call a configured rate limiter before doing work?
//!
//! The limiter counts when it is on the handler's straight path — a statement of its body
//! (an `if` condition included: `if (!(await rateLimit(req)).ok) return ...`), or a `try` at
//! its start — and no statement before it does work (calls, `new`, tagged templates; a guard
//! call is allowed first). A limiter inside a branch, a callback or dead code does not
//! count. `export const GET = rateLimit(handler)` counts too, and so does a limiter at the
//! start of a callback the handler returns (`return withAuth(req, async () => { await rateLimit(...) })`).

use oxc_ast::ast::{ArrowFunctionBody, CallExpression, Expression, Function, Statement};
use oxc_ast_visit::{walk, Visit};
use oxc_syntax::scope::ScopeFlags;

use super::{
    ctx::{does_work, first_call_named, is_noise, is_setup, Ctx, Followed},
    module::{Binding, Imported, LocalFn, Target},
};

const MAX_DEPTH: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// The limiter's name.
    Yes(String),
    /// Why not.
    No(String),
    Unverified(String),
}

impl<'a> Ctx<'a, '_> {
    pub fn limit_of_target(&self, target: &Target<'a>) -> Limit {
        match target {
            Target::Function(f) => self.limit_of_fn(LocalFn::Function(f), 0),
            Target::Expr(e) => self.limit_of_expr(e, 0),
            Target::Local(name) => self.limit_of_name(name, 0),
            Target::ReExport(source, name) => {
                match self.follow_source(source, &Imported::Named(name)) {
                    Followed::Facts(f) => f.limit.clone(),
                    Followed::Library(_) => {
                        Limit::Unverified(format!("re-exported from the library `{source}`"))
                    }
                    Followed::Stopped(why) => Limit::Unverified(why),
                }
            }
            Target::Opaque(what) => Limit::Unverified(format!("the export is {what}")),
        }
    }

    fn limit_of_name(&self, name: &str, depth: u32) -> Limit {
        match self.module.bindings.get(name) {
            Some(Binding::Import { .. }) => match self.follow(name) {
                Some(Followed::Facts(f)) => f.limit.clone(),
                Some(Followed::Stopped(why)) => Limit::Unverified(why),
                _ => Limit::Unverified(format!("`{name}` comes from a library")),
            },
            Some(Binding::Function(f)) => self.limit_of_fn(LocalFn::Function(f), depth + 1),
            Some(Binding::Value(e)) => self.limit_of_expr(e, depth + 1),
            _ => Limit::Unverified(format!("`{name}` is not a function defined in this file")),
        }
    }

    fn limit_of_fn(&self, f: LocalFn<'a>, depth: u32) -> Limit {
        match f {
            LocalFn::Function(f) => match &f.body {
                Some(b) => self.limit_of_statements(&b.statements, depth),
                None => Limit::Unverified("a function without a body".into()),
            },
            LocalFn::Expr(e) => self.limit_of_expr(e, depth),
        }
    }

    fn limit_of_expr(&self, e: &'a Expression<'a>, depth: u32) -> Limit {
        if depth > MAX_DEPTH {
            return Limit::Unverified("too many indirections to follow".into());
        }
        match e.get_inner_expression() {
            Expression::ArrowFunctionExpression(a) => match &a.body {
                ArrowFunctionBody::FunctionBody(b) => {
                    self.limit_of_statements(&b.statements, depth)
                }
                body => match body.as_expression() {
                    Some(v) => self
                        .limit_of_returned(v, depth)
                        .unwrap_or_else(|| self.no_limiter()),
                    None => Limit::Unverified("an unusual arrow function".into()),
                },
            },
            Expression::FunctionExpression(f) => self.limit_of_fn(LocalFn::Function(f), depth),
            Expression::CallExpression(c) => self.limit_of_call(c, depth),
            Expression::Identifier(id) => self.limit_of_name(id.name.as_str(), depth),
            _ => Limit::Unverified("a value the checker cannot follow".into()),
        }
    }

    fn limit_of_call(&self, c: &'a CallExpression<'a>, depth: u32) -> Limit {
        if let Some(n) = self.call_listed(c, &self.settings.routes.rate_limiters) {
            return Limit::Yes(n.name().to_string());
        }
        let wrapped: Vec<LocalFn> = c
            .arguments
            .iter()
            .filter_map(|a| self.function_arg(a))
            .collect();
        if wrapped.is_empty() {
            return Limit::Unverified("built by a factory the checker cannot see into".into());
        }
        let inner: Vec<Limit> = wrapped
            .into_iter()
            .map(|f| self.limit_of_fn(f, depth + 1))
            .collect();
        inner
            .iter()
            .find(|l| matches!(l, Limit::Yes(_)))
            .or_else(|| inner.iter().find(|l| matches!(l, Limit::Unverified(_))))
            .or_else(|| inner.first())
            .cloned()
            .unwrap_or_else(|| self.no_limiter())
    }

    /// A returned call that is a limiter, or that wraps a limited callback.
    fn limit_of_returned(&self, v: &'a Expression<'a>, depth: u32) -> Option<Limit> {
        let inner = match v.get_inner_expression() {
            Expression::AwaitExpression(a) => a.argument.get_inner_expression(),
            e => e,
        };
        let Expression::CallExpression(c) = inner else {
            return None;
        };
        match self.limit_of_call(c, depth + 1) {
            y @ Limit::Yes(_) => Some(y),
            _ => None,
        }
    }

    fn limit_of_statements(&self, stmts: &'a [Statement<'a>], depth: u32) -> Limit {
        let guards = &self.settings.routes.guard_calls;
        let mut work_at: Option<u32> = None;
        let mut path: Vec<&'a Statement<'a>> = Vec::new();
        flatten_leading_try(stmts, &mut path);
        for stmt in path {
            if is_noise(stmt) {
                continue;
            }
            if let Some(name) = self.limiter_on_path(stmt) {
                return match work_at {
                    None => Limit::Yes(name),
                    Some(w) => Limit::No(format!(
                        "`{name}` is called at line {}, after work at line {}: call it first",
                        self.line(stmt_start(stmt)),
                        self.line(w)
                    )),
                };
            }
            if let Statement::ReturnStatement(r) = stmt {
                if let Some(Limit::Yes(name)) = r
                    .argument
                    .as_ref()
                    .and_then(|v| self.limit_of_returned(v, depth))
                {
                    if work_at.is_none() {
                        return Limit::Yes(name);
                    }
                }
            }
            let is_guard = match stmt {
                Statement::ExpressionStatement(e) => self.call_in(&e.expression, guards).is_some(),
                Statement::VariableDeclaration(v) => v
                    .declarations
                    .iter()
                    .filter_map(|d| d.init.as_ref())
                    .any(|i| self.call_in(i, guards).is_some()),
                _ => false,
            };
            // Computing the limiter's own arguments (the client's address, its hash, the
            // limiter's client) is not work.
            if !is_guard && work_at.is_none() && does_work(stmt) && !is_setup(stmt, false) {
                work_at = Some(stmt_start(stmt));
            }
        }
        for stmt in stmts {
            if let Some((name, at)) = first_call_named(stmt, &self.settings.routes.rate_limiters) {
                return Limit::No(format!(
                    "`{name}` at line {} is not on the handler's straight path (it is in a branch, a callback or dead code): call it at the start",
                    self.line(at)
                ));
            }
        }
        self.no_limiter()
    }

    /// It is a configured limiter, or a function that begins with one: the limiter's name.
    pub fn limiter_of_target(&self, target: &Target<'a>) -> Option<String> {
        match target {
            Target::ReExport(..) | Target::Opaque(_) => None,
            t => match self.limit_of_target(t) {
                Limit::Yes(n) => Some(n),
                _ => None,
            },
        }
    }

    /// A call to a configured limiter, or to a helper (here or in another file) that begins
    /// with one.
    pub fn is_limiter_call(&self, c: &CallExpression<'a>) -> Option<String> {
        if let Some(n) = self.call_listed(c, &self.settings.routes.rate_limiters) {
            return Some(n.name().to_string());
        }
        let Expression::Identifier(id) = c.callee.get_inner_expression() else {
            return None;
        };
        let name = id.name.as_str();
        if let Some(f) = self.module.local_function(name) {
            return match self.limit_of_fn(f, MAX_DEPTH) {
                Limit::Yes(n) => Some(format!("{name} → {n}")),
                _ => None,
            };
        }
        match self.follow(name)? {
            Followed::Facts(f) => f
                .limiter
                .as_ref()
                .map(|n| format!("{name} → {n} (in {})", f.path)),
            _ => None,
        }
    }

    fn no_limiter(&self) -> Limit {
        let names = &self.settings.routes.rate_limiters;
        Limit::No(if names.is_empty() {
            "no rate limiter is configured ([routes] rate_limiters)".into()
        } else {
            format!(
                "it never calls {}",
                names
                    .iter()
                    .map(|n| format!("`{n}(...)`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        })
    }

    /// A configured limiter called in the statement's own expressions (not in nested
    /// blocks or callbacks).
    fn limiter_on_path(&self, stmt: &Statement<'a>) -> Option<String> {
        let mut f = FindLimiter {
            ctx: self,
            found: None,
        };
        match stmt {
            Statement::ExpressionStatement(e) => f.visit_expression(&e.expression),
            Statement::VariableDeclaration(v) => {
                for init in v.declarations.iter().filter_map(|d| d.init.as_ref()) {
                    f.visit_expression(init);
                }
            }
            Statement::ReturnStatement(r) => {
                if let Some(a) = &r.argument {
                    f.visit_expression(a);
                }
            }
            Statement::IfStatement(i) => f.visit_expression(&i.test),
            _ => {}
        }
        f.found
    }
}

/// The statements of a body, with a `try` block's statements taking the try's place.
fn flatten_leading_try<'a>(stmts: &'a [Statement<'a>], out: &mut Vec<&'a Statement<'a>>) {
    for s in stmts {
        match s {
            Statement::TryStatement(t) => flatten_leading_try(&t.block.body, out),
            s => out.push(s),
        }
    }
}

fn stmt_start(s: &Statement) -> u32 {
    oxc_span::GetSpan::span(s).start
}

struct FindLimiter<'c, 'a, 's> {
    ctx: &'c Ctx<'a, 's>,
    found: Option<String>,
}

impl<'a> Visit<'a> for FindLimiter<'_, 'a, '_> {
    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        if self.found.is_none() {
            if let Some(n) = self.ctx.is_limiter_call(c) {
                self.found = Some(n);
                return;
            }
        }
        walk::walk_call_expression(self, c);
    }
    fn visit_function(&mut self, _: &Function<'a>, _: ScopeFlags) {}
    fn visit_arrow_function_expression(&mut self, _: &oxc_ast::ast::ArrowFunctionExpression<'a>) {}
    fn visit_conditional_expression(&mut self, c: &oxc_ast::ast::ConditionalExpression<'a>) {
        // Only the condition always runs.
        self.visit_expression(&c.test);
    }
}
