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
    /// It runs on a Drizzle-style database handle (filtered with `.where(eq(...))`).
    pub handle: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Tenancy {
    /// RLS-bypassing clients the handler uses.
    pub admin: Vec<String>,
    /// Queries on an RLS-bypassing client not filtered on the auth context's tenant.
    pub unscoped: Vec<Query>,
    /// Queries whose tenant value comes from the request.
    pub from_request: Vec<Query>,
    /// In a helper (a function of another file a handler calls): queries on an
    /// RLS-bypassing client filtered on the tenant it is given as its parameter `.1`;
    /// scoped only when the caller passes the auth context's tenant.
    pub by_param: Vec<(Query, usize)>,
}

/// A query on an RLS-bypassing client inside a helper of another file, as the files that
/// call the helper see it.
#[derive(Debug, Clone)]
pub struct HelperQuery {
    /// The query, its file and line.
    pub snippet: String,
    pub path: String,
    pub line: u32,
    /// The client it runs on.
    pub client: String,
    /// Why it is not scoped inside the helper.
    pub why: String,
    /// Its tenant filter is the helper's parameter at this index: the caller decides.
    pub param: Option<usize>,
    /// It runs on a Drizzle-style database handle.
    pub handle: bool,
}

/// Chains on a Drizzle-style handle (`db.select().from(t).where(...)`,
/// `db.query.t.findMany(...)`, `db.execute(sql`...`)`) start with one of these calls.
const HANDLE_QUERIES: [&str; 9] = [
    "select",
    "selectDistinct",
    "selectDistinctOn",
    "insert",
    "update",
    "delete",
    "execute",
    "findMany",
    "findFirst",
];

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
        let r = &self.settings.routes;
        let listed = |n: &str| {
            r.admin_clients.iter().any(|a| a == n) || r.database_handles.iter().any(|a| a == n)
        };
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
                // A Drizzle handle connects as the database owner: RLS does not apply.
                if listed(name.name()) || name.name() == "drizzle" {
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
        self.scope_of(target, action, false)
    }

    /// The queries on RLS-bypassing clients of an exported helper that its callers must
    /// answer for: unscoped ones, and ones scoped by a tenant parameter.
    pub fn helper_queries(&self, target: &Target<'a>) -> Vec<HelperQuery> {
        let is_fn = match target {
            Target::Function(_) => true,
            Target::Expr(e) => matches!(
                e.get_inner_expression(),
                Expression::ArrowFunctionExpression(_) | Expression::FunctionExpression(_)
            ),
            Target::Local(n) => matches!(self.module.bindings.get(n), Some(Binding::Function(_))),
            _ => false,
        };
        if !is_fn {
            return Vec::new();
        }
        let t = self.scope_of(target, false, true);
        let helper = |q: Query, param: Option<usize>| HelperQuery {
            snippet: q.snippet,
            path: self.src.path.to_string(),
            line: self.line(q.offset),
            client: q.admin.unwrap_or_default(),
            why: q.why,
            param,
            handle: q.handle,
        };
        t.unscoped
            .into_iter()
            .map(|q| helper(q, None))
            .chain(t.by_param.into_iter().map(|(q, i)| helper(q, Some(i))))
            .collect()
    }

    fn scope_of(&self, target: &Target<'a>, action: bool, helper: bool) -> Tenancy {
        let mut t = Scope {
            ctx: self,
            action,
            helper,
            params: Vec::new(),
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
    /// A helper of another file: its parameters are what its callers give it.
    helper: bool,
    /// The helper's parameter names, with their index.
    params: Vec<(&'a str, usize)>,
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
        self.judge(outer, head_call.span.start, &values, &any, admin, false);
    }

    /// Judge one query: the tenant values it is filtered on (or writes), every value it is
    /// filtered on, and the RLS-bypassing client it runs on.
    fn judge<'b>(
        &mut self,
        outer: &CallExpression<'a>,
        offset: u32,
        values: &[&'b Expression<'a>],
        any: &[&'b Expression<'a>],
        admin: Option<String>,
        handle: bool,
    ) {
        let column = self.ctx.settings.tenant_column.as_str();
        let snippet = || self.ctx.src.snippet(outer.span, 80);
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
                handle,
            });
        }
        if let Some(client) = admin {
            if !self.out.admin.contains(&client) {
                self.out.admin.push(client.clone());
            }
            if !from_auth {
                // In a helper, a tenant filter given as a parameter: the caller decides.
                let param = values.iter().find_map(|v| self.param_of(v));
                if let (true, Some(i)) = (self.helper, param) {
                    self.out.by_param.push((
                        Query {
                            snippet: snippet(),
                            offset,
                            admin: Some(client),
                            why: format!("its {column} is the helper's parameter {}", i + 1),
                            handle,
                        },
                        i,
                    ));
                    return;
                }
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
                    handle,
                });
            }
        }
    }
}

impl<'a> Scope<'_, 'a, '_> {
    /// A local function followed from a call: its parameters are what the call gives
    /// them (the auth context's, the request's, or in a helper the helper's parameter).
    fn bind_args(&mut self, f: LocalFn<'a>, c: &CallExpression<'a>) {
        let params = match f {
            LocalFn::Function(f) => &f.params,
            LocalFn::Expr(e) => match e.get_inner_expression() {
                Expression::ArrowFunctionExpression(a) => &a.params,
                Expression::FunctionExpression(f) => &f.params,
                _ => return,
            },
        };
        for (p, arg) in params.items.iter().zip(c.arguments.iter()) {
            let Some(arg) = arg.as_expression() else {
                continue;
            };
            let names: Vec<&'a str> = p
                .pattern
                .get_binding_identifiers()
                .iter()
                .map(|id| id.name.as_str())
                .collect();
            let set = if self.is_request_value(arg) {
                &mut self.request_vars
            } else if self.is_auth_expr(arg) {
                &mut self.auth_vars
            } else if let Some(j) = self.param_of(arg) {
                self.params.extend(names.iter().map(|n| (*n, j)));
                continue;
            } else {
                continue;
            };
            set.extend(names);
        }
    }

    /// In a helper: the index of the parameter `e` reads, if it reads one.
    fn param_of(&self, e: &Expression<'a>) -> Option<usize> {
        if !self.helper {
            return None;
        }
        let r = reads(e);
        r.names
            .iter()
            .find_map(|n| self.params.iter().find(|(p, _)| p == n).map(|(_, i)| *i))
    }

    fn is_key(&self, k: &str) -> bool {
        let column = self.ctx.settings.tenant_column.as_str();
        let k = k.trim_matches('"');
        k == column
            || k == camel(column)
            || k.strip_suffix(column).is_some_and(|r| r.ends_with('_'))
    }

    /// A query on a Drizzle-style handle (connected as the database owner, so RLS does not
    /// apply): `db.select().from(t).where(eq(t.tenantId, x))`, `db.insert(t).values({...})`,
    /// `db.update(t).set({...}).where(...)`, `db.delete(t).where(...)`,
    /// `db.query.t.findMany({ where: ... })`, `db.execute(sql`... tenant_id = ${x}`)`.
    /// `false` when `outer` is no such chain.
    fn handle_query(&mut self, outer: &CallExpression<'a>) -> bool {
        let mut calls: Vec<(&str, &CallExpression<'a>)> = Vec::new();
        let mut call = outer;
        let root = 'chain: loop {
            let Some(m) = call.callee.get_member_expr() else {
                return false;
            };
            let Some(name) = m.static_property_name() else {
                return false;
            };
            calls.push((name, call));
            let mut obj = m.object().get_inner_expression();
            loop {
                match obj {
                    Expression::CallExpression(inner) => {
                        call = inner;
                        continue 'chain;
                    }
                    other => match other.get_member_expr() {
                        Some(mm) => obj = mm.object().get_inner_expression(),
                        None => break 'chain other,
                    },
                }
            }
        };
        let Some(&(head, _)) = calls.last() else {
            return false;
        };
        if !HANDLE_QUERIES.contains(&head) {
            return false;
        }
        let Expression::Identifier(id) = root else {
            return false;
        };
        let handle = id.name.as_str();
        if !self.admin_vars.contains(handle) && !self.ctx.is_admin(root, 0) {
            return false;
        }
        for (_, c) in &calls {
            self.handled.insert(c.span.start);
        }
        let mut values: Vec<&Expression<'a>> = Vec::new();
        let mut any: Vec<&Expression<'a>> = Vec::new();
        for (name, c) in &calls {
            let Some(arg) = c.arguments.first().and_then(|a| a.as_expression()) else {
                continue;
            };
            match *name {
                "where" => self.where_values(arg, true, &mut values, &mut any),
                "values" | "set" => {
                    object_values(arg, &|k| self.is_key(k), &mut values);
                    object_values(arg, &|_| true, &mut any);
                }
                "findMany" | "findFirst" => {
                    if let Expression::ObjectExpression(o) = arg.get_inner_expression() {
                        for p in o.properties.iter() {
                            if let ObjectPropertyKind::ObjectProperty(p) = p {
                                if matches!(&p.key, PropertyKey::StaticIdentifier(k) if k.name == "where")
                                {
                                    self.where_values(&p.value, true, &mut values, &mut any);
                                }
                            }
                        }
                    }
                }
                "execute" => self.sql_values(arg, &mut values, &mut any),
                _ => {}
            }
        }
        let offset = calls.last().map_or(outer.span.start, |(_, c)| c.span.start);
        self.judge(outer, offset, &values, &any, Some(handle.to_string()), true);
        true
    }

    /// The values a Drizzle filter compares with: `eq(t.tenantId, x)` (the tenant's when
    /// the column is the tenant column), through `and(...)`; under `or(...)` or `not(...)`
    /// no comparison restricts the rows.
    fn where_values<'b>(
        &self,
        e: &'b Expression<'a>,
        restricts: bool,
        values: &mut Vec<&'b Expression<'a>>,
        any: &mut Vec<&'b Expression<'a>>,
    ) {
        match e.get_inner_expression() {
            Expression::CallExpression(c) => {
                let name = match c.callee.get_inner_expression() {
                    Expression::Identifier(id) => id.name.as_str(),
                    other => other
                        .get_member_expr()
                        .and_then(|m| m.static_property_name())
                        .unwrap_or(""),
                };
                let args: Vec<&'b Expression<'a>> = c
                    .arguments
                    .iter()
                    .filter_map(|a| a.as_expression())
                    .collect();
                match name {
                    "and" => args
                        .iter()
                        .for_each(|a| self.where_values(a, restricts, values, any)),
                    // Rows of any tenant may match a branch of `or(...)` or a `not(...)`:
                    // nothing under them restricts the query.
                    "or" | "not" => {}
                    "eq" | "inArray" => {
                        if let [col, v, ..] = args[..] {
                            any.push(v);
                            let key = col
                                .get_inner_expression()
                                .get_member_expr()
                                .and_then(|m| m.static_property_name());
                            if restricts && key.is_some_and(|k| self.is_key(k)) {
                                values.push(v);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Expression::TaggedTemplateExpression(_) if restricts => self.sql_values(e, values, any),
            _ => {}
        }
    }

    /// The values of `sql`...`` next to `tenant_id =`: the tenant's; every value: a filter.
    fn sql_values<'b>(
        &self,
        e: &'b Expression<'a>,
        values: &mut Vec<&'b Expression<'a>>,
        any: &mut Vec<&'b Expression<'a>>,
    ) {
        let Expression::TaggedTemplateExpression(t) = e.get_inner_expression() else {
            return;
        };
        for (i, v) in t.quasi.expressions.iter().enumerate() {
            any.push(v);
            let before = t.quasi.quasis.get(i).map_or("", |q| q.value.raw.as_str());
            let Some(lhs) = before.trim_end().strip_suffix('=') else {
                continue;
            };
            let column = lhs
                .trim_end()
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_' || c == '"'))
                .next()
                .unwrap_or("");
            if self.is_key(column) {
                values.push(v);
            }
        }
    }

    /// A call of a helper of another file that runs queries on an RLS-bypassing client:
    /// each is this handler's query, scoped only when the helper filters on the tenant it
    /// is given and the handler gives it the auth context's.
    fn helper_call(&mut self, c: &CallExpression<'a>) {
        let Expression::Identifier(id) = c.callee.get_inner_expression() else {
            return;
        };
        let name = id.name.as_str();
        if !matches!(
            self.ctx.module.bindings.get(name),
            Some(Binding::Import { .. })
        ) {
            return;
        }
        let Some(Followed::Facts(f)) = self.ctx.follow(name) else {
            return;
        };
        let column = self.ctx.settings.tenant_column.clone();
        for q in &f.queries {
            let client = format!("{} (in {})", q.client, q.path);
            if !self.out.admin.contains(&client) {
                self.out.admin.push(client.clone());
            }
            let query = |why: String| Query {
                snippet: format!("{name}(…) → {} ({}:{})", q.snippet, q.path, q.line),
                offset: c.span.start,
                admin: Some(client.clone()),
                why,
                handle: q.handle,
            };
            let Some(i) = q.param else {
                self.out.unscoped.push(query(q.why.clone()));
                continue;
            };
            let Some(arg) = c.arguments.get(i).and_then(|a| a.as_expression()) else {
                self.out.unscoped.push(query(format!(
                    "the helper filters on the {column} it is given, and none is given"
                )));
                continue;
            };
            let request = self.is_request_value(arg);
            if self.is_auth_expr(arg) && !request {
                continue;
            }
            if request {
                self.out
                    .from_request
                    .push(query(format!("its {column} comes from the request")));
                self.out.unscoped.push(query(format!(
                    "its {column} comes from the request, not the auth context"
                )));
            } else if let (true, Some(j)) = (self.helper, self.param_of(arg)) {
                self.out.by_param.push((
                    query(format!("its {column} is the helper's parameter {}", j + 1)),
                    j,
                ));
            } else {
                self.out.unscoped.push(query(format!(
                    "the {column} it is given (`{}`) does not come from the auth context",
                    self.ctx.src.snippet(arg.span(), 40)
                )));
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

pub(super) fn camel(snake: &str) -> String {
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
            if self.helper {
                if self.depth == 1 {
                    for id in p.pattern.get_binding_identifiers() {
                        self.params.push((id.name.as_str(), i));
                    }
                }
            } else if self.action {
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
        if !self.action && !self.helper && self.depth > 1 {
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
        if !self.handled.contains(&c.span.start) && !self.handle_query(c) {
            self.query(c);
        }
        self.helper_call(c);
        if let Expression::Identifier(id) = c.callee.get_inner_expression() {
            if let Some(f) = self.ctx.module.local_function(id.name.as_str()) {
                let start = match f {
                    LocalFn::Function(f) => f.span.start,
                    LocalFn::Expr(e) => e.span().start,
                };
                if self.followed.insert(start) {
                    self.bind_args(f, c);
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
