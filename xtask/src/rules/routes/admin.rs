//! Clients that bypass RLS, and where the tenant of a query comes from.
//!
//! A client bypasses RLS when it is created with the service-role key
//! (`createClient(url, process.env.SUPABASE_SERVICE_ROLE_KEY!)`, any `*SERVICE_ROLE*` env
//! name), or is named in `[routes] admin_clients` (a factory such as `createAdminClient()`
//! or a value such as `supabaseAdmin`), here or in a file the handler imports. Every query
//! on one (`.from(...)` chain, `.rpc(...)`) must filter on the tenant column with a value
//! from the auth context (the guard's result, the wrapper's context, the signed-in user):
//! otherwise `service-role-unscoped`, naming the query. A tenant value taken from the body,
//! query or params instead is `tenant-from-request` on any client: the caller picks the
//! tenant.

use std::collections::HashSet;

use oxc_ast::ast::{
    Argument, BindingPattern, CallExpression, Expression, FormalParameters, Function,
    ObjectPropertyKind, PropertyKey, Statement, VariableDeclarator,
};
use oxc_ast_visit::{walk, Visit};
use oxc_span::GetSpan;
use oxc_syntax::scope::ScopeFlags;

use super::{
    ctx::{member_path, Ctx, Followed},
    module::{Binding, LocalFn, Target},
};

const MAX_DEPTH: u32 = 6;
const BODY_READERS: [&str; 3] = ["json", "formData", "text"];

/// One query whose tenant is not the auth context's.
#[derive(Debug, Clone)]
pub struct Query {
    pub snippet: String,
    pub offset: u32,
    /// The admin client it runs on, when it bypasses RLS.
    pub admin: Option<String>,
    /// Why it is not scoped.
    pub why: String,
}

#[derive(Debug, Default, Clone)]
pub struct Tenancy {
    /// RLS-bypassing clients the handler uses.
    pub admin: Vec<String>,
    /// Queries on an RLS-bypassing client not filtered on the auth context's tenant.
    pub unscoped: Vec<Query>,
    /// Queries whose tenant value comes from the request.
    pub from_request: Vec<Query>,
}

impl<'a> Ctx<'a, '_> {
    /// Is this export an RLS-bypassing client, or a function that returns one?
    pub fn admin_of_target(&self, target: &Target<'a>) -> bool {
        match target {
            Target::Expr(e) => self.is_admin(e, 0) || self.returns_admin(LocalFn::Expr(e), 0),
            Target::Function(f) => self.returns_admin(LocalFn::Function(f), 0),
            Target::Local(n) => match self.module.bindings.get(n) {
                Some(Binding::Value(e)) => self.is_admin(e, 0),
                Some(Binding::Function(f)) => self.returns_admin(LocalFn::Function(f), 0),
                Some(Binding::Import { .. }) => {
                    matches!(self.follow(n), Some(Followed::Facts(f)) if f.admin)
                }
                _ => false,
            },
            _ => false,
        }
    }

    fn returns_admin(&self, f: LocalFn<'a>, depth: u32) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let stmts: &'a [Statement<'a>] = match f {
            LocalFn::Function(f) => match &f.body {
                Some(b) => &b.statements,
                None => return false,
            },
            LocalFn::Expr(e) => match e.get_inner_expression() {
                Expression::ArrowFunctionExpression(a) => match &a.body {
                    oxc_ast::ast::ArrowFunctionBody::FunctionBody(b) => &b.statements,
                    body => match body.as_expression() {
                        Some(v) => return self.is_admin(v, depth + 1),
                        None => return false,
                    },
                },
                Expression::FunctionExpression(f) => match &f.body {
                    Some(b) => &b.statements,
                    None => return false,
                },
                _ => return false,
            },
        };
        stmts.iter().any(|s| match s {
            Statement::ReturnStatement(r) => r
                .argument
                .as_ref()
                .is_some_and(|v| self.is_admin(v, depth + 1)),
            _ => false,
        })
    }

    /// Is this expression an RLS-bypassing client?
    pub fn is_admin(&self, e: &Expression<'a>, depth: u32) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let listed = |n: &str| self.settings.routes.admin_clients.iter().any(|a| a == n);
        match e.get_inner_expression() {
            Expression::AwaitExpression(a) => self.is_admin(&a.argument, depth + 1),
            Expression::Identifier(id) => {
                let n = id.name.as_str();
                if listed(n) {
                    return true;
                }
                match self.module.bindings.get(n) {
                    Some(Binding::Value(v)) => self.is_admin(v, depth + 1),
                    Some(Binding::Import { imported, .. }) => {
                        matches!(imported, super::module::Imported::Named(i) if listed(i))
                            || matches!(self.follow(n), Some(Followed::Facts(f)) if f.admin)
                    }
                    _ => false,
                }
            }
            Expression::CallExpression(c) => {
                if c.arguments.iter().any(|a| self.is_service_key(a)) {
                    return true;
                }
                let Some(name) = self.call_name(&c.callee) else {
                    return false;
                };
                if listed(name.name()) {
                    return true;
                }
                let Expression::Identifier(id) = c.callee.get_inner_expression() else {
                    return false;
                };
                match self.module.bindings.get(id.name.as_str()) {
                    Some(Binding::Import { .. }) => {
                        matches!(self.follow(id.name.as_str()), Some(Followed::Facts(f)) if f.admin)
                    }
                    _ => self
                        .module
                        .local_function(id.name.as_str())
                        .is_some_and(|f| self.returns_admin(f, depth + 1)),
                }
            }
            _ => false,
        }
    }

    /// `process.env.SUPABASE_SERVICE_ROLE_KEY` (any name with `SERVICE_ROLE`), directly or
    /// through a top-level const.
    fn is_service_key(&self, a: &Argument<'a>) -> bool {
        let Some(e) = a.as_expression() else {
            return false;
        };
        self.is_service_key_expr(e, 0)
    }

    fn is_service_key_expr(&self, e: &Expression<'a>, depth: u32) -> bool {
        if depth > 3 {
            return false;
        }
        match e.get_inner_expression() {
            Expression::Identifier(id) => match self.module.bindings.get(id.name.as_str()) {
                Some(Binding::Value(v)) => self.is_service_key_expr(v, depth + 1),
                _ => id.name.contains("SERVICE_ROLE") || id.name.contains("serviceRole"),
            },
            Expression::LogicalExpression(l) => {
                self.is_service_key_expr(&l.left, depth + 1) || self.is_service_key_expr(&l.right, depth + 1)
            }
            other => other.get_member_expr().is_some_and(|m| {
                m.static_property_name()
                    .is_some_and(|p| p.contains("SERVICE_ROLE") || p.contains("serviceRole"))
                    || matches!(m, oxc_ast::ast::MemberExpression::ComputedMemberExpression(c)
                        if matches!(&c.expression, Expression::StringLiteral(s) if s.value.contains("SERVICE_ROLE")))
            }),
        }
    }

    /// The queries of one handler (its callbacks and the local functions it calls).
    pub fn tenancy_of(&self, target: &Target<'a>, action: bool) -> Tenancy {
        let mut t = Scope {
            ctx: self,
            action,
            admin_vars: HashSet::new(),
            auth_vars: HashSet::new(),
            request_vars: HashSet::new(),
            followed: HashSet::new(),
            handled: HashSet::new(),
            out: Tenancy::default(),
            // A wrapper call's callbacks are callbacks from the start; a function target is
            // the handler itself (depth 1 inside it).
            depth: u32::from(
                matches!(target, Target::Expr(e) if matches!(e.get_inner_expression(), Expression::CallExpression(_))),
            ),
        };
        match target {
            Target::Function(f) => t.visit_function(f, ScopeFlags::Function),
            Target::Expr(e) => t.visit_expression(e),
            Target::Local(n) => match self.module.bindings.get(n) {
                Some(Binding::Function(f)) => t.visit_function(f, ScopeFlags::Function),
                Some(Binding::Value(e)) => t.visit_expression(e),
                _ => {}
            },
            _ => {}
        }
        t.out
    }
}

struct Scope<'c, 'a, 's> {
    ctx: &'c Ctx<'a, 's>,
    /// A server action: its arguments are the request.
    action: bool,
    admin_vars: HashSet<&'a str>,
    /// Names whose value comes from the auth context.
    auth_vars: HashSet<&'a str>,
    /// Names whose value comes from the request.
    request_vars: HashSet<&'a str>,
    followed: HashSet<u32>,
    /// Calls already judged as part of a longer chain.
    handled: HashSet<u32>,
    out: Tenancy,
    depth: u32,
}

/// Names an expression reads (functions inside excepted), and whether it reads the request
/// directly (`req.json()`, `searchParams`, `context.params`).
struct Reads<'a> {
    names: Vec<&'a str>,
    request: bool,
    auth: bool,
}

impl<'a> Visit<'a> for Reads<'a> {
    fn visit_identifier_reference(&mut self, id: &oxc_ast::ast::IdentifierReference<'a>) {
        if id.name == "searchParams" {
            self.request = true;
        }
        self.names.push(id.name.as_str());
    }
    fn visit_static_member_expression(&mut self, m: &oxc_ast::ast::StaticMemberExpression<'a>) {
        if matches!(m.property.name.as_str(), "searchParams" | "params") {
            self.request = true;
        }
        walk::walk_static_member_expression(self, m);
    }
    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        if let Some(p) = member_path(&c.callee) {
            if BODY_READERS.iter().any(|b| member_ends(&p, b)) && c.arguments.is_empty() {
                self.request = true;
            }
            if ["auth.getUser", "auth.getClaims", "auth.getSession"]
                .iter()
                .any(|t| p == *t || member_ends(&p, t))
            {
                self.auth = true;
            }
        }
        walk::walk_call_expression(self, c);
    }
    fn visit_function(&mut self, _: &Function<'a>, _: ScopeFlags) {}
    fn visit_arrow_function_expression(&mut self, _: &oxc_ast::ast::ArrowFunctionExpression<'a>) {}
}

/// `a.b.name` ends with the member `name` (`.name`), without building the suffix.
fn member_ends(path: &str, name: &str) -> bool {
    path.strip_suffix(name).is_some_and(|r| r.ends_with('.'))
}

fn reads<'a>(e: &Expression<'a>) -> Reads<'a> {
    let mut r = Reads {
        names: Vec::new(),
        request: false,
        auth: false,
    };
    r.visit_expression(e);
    r
}

impl<'a> Scope<'_, 'a, '_> {
    fn bind(set: &mut HashSet<&'a str>, p: &BindingPattern<'a>) {
        for id in p.get_binding_identifiers() {
            set.insert(id.name.as_str());
        }
    }

    /// Does `init` make its names auth-context values (a guard's result, the user)?
    fn is_auth_value(&self, init: &Expression<'a>) -> bool {
        let r = reads(init);
        if r.auth || r.names.iter().any(|n| self.auth_vars.contains(n)) {
            return true;
        }
        let inner = match init.get_inner_expression() {
            Expression::AwaitExpression(a) => a.argument.get_inner_expression(),
            e => e,
        };
        let Expression::CallExpression(c) = inner else {
            return false;
        };
        let routes = &self.ctx.settings.routes;
        if self.ctx.call_listed(c, &routes.guard_calls).is_some() {
            return true;
        }
        // A helper that begins with a guard (`getServerProfile()`, `requireAdmin(req)`).
        let Expression::Identifier(id) = c.callee.get_inner_expression() else {
            return false;
        };
        let name = id.name.as_str();
        if let Some(f) = self.ctx.module.local_function(name) {
            return matches!(self.ctx.auth_of_fn(f, 3), super::auth::Auth::Guarded(_));
        }
        matches!(self.ctx.follow(name), Some(Followed::Facts(f)) if matches!(f.auth, super::auth::Auth::Guarded(_)))
    }

    fn is_request_value(&self, e: &Expression<'a>) -> bool {
        let r = reads(e);
        r.request || r.names.iter().any(|n| self.request_vars.contains(n))
    }

    fn is_auth_expr(&self, e: &Expression<'a>) -> bool {
        let r = reads(e);
        r.auth || r.names.iter().any(|n| self.auth_vars.contains(n))
    }

    /// The client a query chain runs on, when it bypasses RLS.
    fn admin_root(&self, e: &Expression<'a>) -> Option<String> {
        match e.get_inner_expression() {
            Expression::Identifier(id) if self.admin_vars.contains(id.name.as_str()) => {
                Some(id.name.to_string())
            }
            other if self.ctx.is_admin(other, 0) => Some(self.ctx.src.snippet(other.span(), 40)),
            _ => None,
        }
    }

    /// Judge one query chain, outermost call first: `admin.from("t").select().eq(...)`.
    fn query<'b>(&mut self, outer: &'b CallExpression<'a>) {
        // The calls of the chain, outermost first.
        let mut calls: Vec<(&'b str, &'b CallExpression<'a>)> = Vec::new();
        let mut cur: &'b CallExpression<'a> = outer;
        let root: &'b Expression<'a>;
        loop {
            let Some(m) = cur.callee.get_member_expr() else {
                return;
            };
            let Some(name) = m.static_property_name() else {
                return;
            };
            calls.push((name, cur));
            let obj = m.object().get_inner_expression();
            match obj {
                Expression::CallExpression(inner) if inner.callee.get_member_expr().is_some() => {
                    if matches!(name, "from" | "rpc") {
                        root = m.object();
                        break;
                    }
                    cur = inner;
                }
                _ => {
                    root = m.object();
                    break;
                }
            }
        }
        let Some(&(head, head_call)) = calls.last() else {
            return;
        };
        if !matches!(head, "from" | "rpc") {
            return;
        }
        for (_, c) in &calls {
            self.handled.insert(c.span.start);
        }
        let column = self.ctx.settings.tenant_column.as_str();
        let camel = camel(column);
        let is_key = |k: &str| {
            k == column || k == camel || k.strip_suffix(column).is_some_and(|r| r.ends_with('_'))
        };
        // The tenant values the chain is filtered on (or writes).
        let mut values: Vec<&'b Expression<'a>> = Vec::new();
        // Every value it is filtered on or writes, whatever the column: a query keyed by the
        // signed-in user (`.eq("id", user.id)`) is scoped to the auth context too.
        let mut any: Vec<&'b Expression<'a>> = Vec::new();
        for (name, c) in &calls {
            let args: Vec<&'b Expression<'a>> = c
                .arguments
                .iter()
                .filter_map(|a| a.as_expression())
                .collect();
            match *name {
                "eq" | "in" | "contains" => {
                    any.extend(args.get(1));
                    if let (Some(Expression::StringLiteral(k)), Some(v)) =
                        (args.first().map(|a| a.get_inner_expression()), args.get(1))
                    {
                        if is_key(k.value.as_str()) {
                            values.push(v);
                        }
                    }
                }
                "filter" => {
                    any.extend(args.get(2));
                    if let (Some(Expression::StringLiteral(k)), Some(v)) =
                        (args.first().map(|a| a.get_inner_expression()), args.get(2))
                    {
                        if is_key(k.value.as_str()) {
                            values.push(v);
                        }
                    }
                }
                "match" | "insert" | "upsert" => {
                    if let Some(a) = args.first() {
                        object_values(a, &is_key, &mut values);
                        object_values(a, &|_| true, &mut any);
                    }
                }
                "rpc" => {
                    if let Some(a) = args.get(1) {
                        object_values(a, &is_key, &mut values);
                        object_values(a, &|_| true, &mut any);
                    }
                }
                _ => {}
            }
        }
        let admin = self.admin_root(root);
        let snippet = || self.ctx.src.snippet(outer.span, 80);
        let offset = head_call.span.start;
        let from_request = values.iter().any(|v| self.is_request_value(v));
        let from_auth = any
            .iter()
            .any(|v| self.is_auth_expr(v) && !self.is_request_value(v));
        if from_request {
            self.out.from_request.push(Query {
                snippet: snippet(),
                offset,
                admin: admin.clone(),
                why: format!("its {column} comes from the request"),
            });
        }
        if let Some(client) = admin {
            if !self.out.admin.contains(&client) {
                self.out.admin.push(client.clone());
            }
            if !from_auth {
                let why = if any.is_empty() {
                    format!("it is not filtered at all, let alone on {column}")
                } else if values.is_empty() {
                    format!("it is not filtered on {column} (nor on any value of the auth context)")
                } else if from_request {
                    format!("its {column} comes from the request, not the auth context")
                } else {
                    format!("its {column} value does not come from the auth context")
                };
                self.out.unscoped.push(Query {
                    snippet: snippet(),
                    offset,
                    admin: Some(client),
                    why,
                });
            }
        }
    }
}

/// The values of `{ tenant_id: v }` (or an array of such objects).
fn object_values<'b, 'a>(
    e: &'b Expression<'a>,
    is_key: &dyn Fn(&str) -> bool,
    out: &mut Vec<&'b Expression<'a>>,
) {
    match e.get_inner_expression() {
        Expression::ObjectExpression(o) => {
            for p in o.properties.iter() {
                match p {
                    ObjectPropertyKind::ObjectProperty(p) => {
                        let key = match &p.key {
                            PropertyKey::StaticIdentifier(k) => k.name.as_str(),
                            PropertyKey::StringLiteral(s) => s.value.as_str(),
                            _ => continue,
                        };
                        if is_key(key) {
                            out.push(&p.value);
                        }
                    }
                    // `{ ...input }`: what it holds is not known to be the tenant.
                    ObjectPropertyKind::SpreadProperty(_) => {}
                }
            }
        }
        Expression::ArrayExpression(a) => {
            for el in a.elements.iter() {
                if let Some(e) = el.as_expression() {
                    object_values(e, is_key, out);
                }
            }
        }
        _ => {}
    }
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for ch in snake.chars() {
        if ch == '_' {
            up = true;
        } else if up {
            out.extend(ch.to_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
    }
    out
}

impl<'a> Visit<'a> for Scope<'_, 'a, '_> {
    fn visit_formal_parameters(&mut self, ps: &FormalParameters<'a>) {
        for (i, p) in ps.items.iter().enumerate() {
            if self.action {
                Self::bind(&mut self.request_vars, &p.pattern);
            } else if i > 0 && self.depth > 1 {
                // The context a wrapper gives its callback (`withAuth(req, async (ctx) => ...)`
                // gives it first; `(req, ctx)` second).
                Self::bind(&mut self.auth_vars, &p.pattern);
            } else if i > 0 {
                // The handler's own second argument: `{ params }`.
                Self::bind(&mut self.request_vars, &p.pattern);
            }
        }
        walk::walk_formal_parameters(self, ps);
    }

    fn visit_arrow_function_expression(&mut self, a: &oxc_ast::ast::ArrowFunctionExpression<'a>) {
        self.depth += 1;
        // A callback's only parameter, when it is not the request, is the wrapper's context.
        if !self.action && self.depth > 1 {
            if let Some(p) = a.params.items.first() {
                match &p.pattern {
                    BindingPattern::BindingIdentifier(id) => {
                        if !matches!(id.name.as_str(), "req" | "request" | "r" | "_req") {
                            self.auth_vars.insert(id.name.as_str());
                        }
                    }
                    other => Self::bind(&mut self.auth_vars, other),
                }
            }
        }
        walk::walk_arrow_function_expression(self, a);
        self.depth -= 1;
    }

    fn visit_function(&mut self, f: &Function<'a>, flags: ScopeFlags) {
        self.depth += 1;
        walk::walk_function(self, f, flags);
        self.depth -= 1;
    }

    fn visit_variable_declarator(&mut self, d: &VariableDeclarator<'a>) {
        if let Some(init) = &d.init {
            if self.ctx.is_admin(init, 0) {
                Self::bind(&mut self.admin_vars, &d.id);
            } else if self.is_request_value(init) {
                Self::bind(&mut self.request_vars, &d.id);
            } else if self.is_auth_value(init) {
                Self::bind(&mut self.auth_vars, &d.id);
            }
        }
        walk::walk_variable_declarator(self, d);
    }

    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        if !self.handled.contains(&c.span.start) {
            self.query(c);
        }
        if let Expression::Identifier(id) = c.callee.get_inner_expression() {
            if let Some(f) = self.ctx.module.local_function(id.name.as_str()) {
                let start = match f {
                    LocalFn::Function(f) => f.span.start,
                    LocalFn::Expr(e) => e.span().start,
                };
                if self.followed.insert(start) {
                    match f {
                        LocalFn::Function(f) => self.visit_function(f, ScopeFlags::Function),
                        LocalFn::Expr(e) => self.visit_expression(e),
                    }
                }
            }
        }
        walk::walk_call_expression(self, c);
    }
}
