//! Does a handler read input, and does that input go through a schema's `.parse`?
//!
//! Input is the body (`req.json()`, `req.formData()`, `req.text()`), the query
//! (`searchParams`, `nextUrl.searchParams`) and the route params (`params`,
//! `context.params`); for a server action, its arguments. A schema is whatever `.parse`,
//! `.safeParse`, `.parseAsync` or `.safeParseAsync` is called on (`JSON.parse` and friends
//! excepted); it is a *contracts* schema only when it is imported from the contracts
//! package (by its package name or a relative path into its directory). Local helpers the
//! handler calls by name are read too, so `return handle(req)` is followed.

use std::collections::{HashMap, HashSet};

use oxc_ast::ast::{
    AssignmentExpression, BindingPattern, CallExpression, Expression, FormalParameter,
    FormalParameters, Function, IdentifierReference, PropertyKey, StaticMemberExpression,
    VariableDeclarator,
};
use oxc_ast_visit::{walk, Visit};
use oxc_syntax::scope::ScopeFlags;

use super::{
    ctx::{Ctx, Followed},
    module::{Binding, Imported, LocalFn, Target},
};

/// Calls whose result still is the input they are given (`searchParams.get("id")`,
/// `Object.fromEntries(form)`, `String(x).trim()`); any other call's result is not input
/// (a database row fetched by a request id is the database's value).
const PASSTHROUGH: [&str; 25] = [
    "catch",
    "then",
    "finally",
    "get",
    "getAll",
    "entries",
    "values",
    "fromEntries",
    "trim",
    "toString",
    "toLowerCase",
    "toUpperCase",
    "split",
    "slice",
    "at",
    "map",
    "filter",
    "clone",
    "String",
    "Number",
    "Boolean",
    "parseInt",
    "parseFloat",
    "decodeURIComponent",
    "structuredClone",
];

const BODY_READERS: [&str; 5] = ["json", "formData", "text", "arrayBuffer", "blob"];
const PARSERS: [&str; 4] = ["parse", "safeParse", "parseAsync", "safeParseAsync"];
/// Globals and well-known modules whose `.parse` is not schema validation.
const NOT_SCHEMAS: [&str; 9] = [
    "JSON",
    "Date",
    "Number",
    "URL",
    "BigInt",
    "path",
    "qs",
    "querystring",
    "JSON5",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Imported from the contracts package (the import source as written).
    Contracts(String),
    /// Defined in the route file (or built inline from another schema).
    Inline,
    /// Imported from a module outside the contracts package.
    Elsewhere(String),
}

#[derive(Debug, Clone)]
pub struct SchemaUse {
    pub name: String,
    pub origin: Origin,
    pub offset: u32,
}

/// What one handler reads and validates.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// `body`, `query`, `params`, `arguments`, with where first seen.
    pub reads: Vec<(&'static str, u32)>,
    pub schemas: Vec<SchemaUse>,
    /// Kinds of input that reach a schema's `.parse` argument, directly
    /// (`Schema.parse(await req.json())`) or through names (`const body = await req.json();
    /// Schema.parse(body)`).
    pub validated: HashSet<&'static str>,
    /// Functions the request itself is handed to that the checker does not read (a
    /// library's `service.exchangeCodeForSession(request)`): they may read it.
    pub passed: Vec<String>,
}

impl<'a> Ctx<'a, '_> {
    /// What an export reads and validates: `None` when it cannot be followed.
    pub fn inputs_of_target(&self, target: &Target<'a>) -> Option<Inputs> {
        let followed = |f: Followed| match f {
            Followed::Facts(f) => f.inputs.clone(),
            _ => None,
        };
        match target {
            Target::Function(f) => Some(self.inputs_of(LocalFn::Function(f))),
            // `export const GET = handler`: what `handler` is.
            Target::Expr(e) if matches!(e.get_inner_expression(), Expression::Identifier(_)) => {
                let Expression::Identifier(id) = e.get_inner_expression() else {
                    return None;
                };
                return self.inputs_of_target(&Target::Local(id.name.as_str()));
            }
            Target::Expr(e) => Some(self.inputs_of_expr(e)),
            Target::Local(n) => match self.module.bindings.get(n) {
                Some(Binding::Function(f)) => Some(self.inputs_of(LocalFn::Function(f))),
                Some(Binding::Value(e)) => Some(self.inputs_of_expr(e)),
                Some(Binding::Import { .. }) => followed(self.follow(n)?),
                _ => None,
            },
            Target::ReExport(source, name) => {
                followed(self.follow_source(source, &Imported::Named(name)))
            }
            Target::Opaque(_) => None,
        }
        .map(|mut i| {
            if self.graph.is_some() && !matches!(target, Target::Function(_) | Target::Expr(_)) {
                // Offsets of another file mean nothing here.
                if matches!(target, Target::ReExport(..)) || matches!(target, Target::Local(n) if matches!(self.module.bindings.get(n), Some(Binding::Import { .. }))) {
                    i.reads.iter_mut().for_each(|r| r.1 = 0);
                    i.schemas.iter_mut().for_each(|s| s.offset = 0);
                }
            }
            i
        })
    }

    /// Scan a handler (and the local functions it names).
    pub fn inputs_of(&self, f: LocalFn<'a>) -> Inputs {
        let mut scan = Scan {
            ctx: self,
            out: Inputs::default(),
            params: HashSet::new(),
            root_requests: HashSet::new(),
            checked_calls: HashSet::new(),
            pending_safe: None,
            safe_results: HashMap::new(),
            safe_checked: HashSet::new(),
            safe_unchecked_use: HashSet::new(),
            contexts: HashSet::new(),
            route_params: HashSet::new(),
            urls: HashSet::new(),
            handler_fns: HashSet::new(),
            fn_stack: Vec::new(),
            followed: HashSet::new(),
            flow: Vec::new(),
            carriers: HashMap::new(),
        };
        scan.handler_fns.insert(fn_start(f));
        scan.visit_local(f);
        for (name, kinds) in &scan.safe_results {
            if scan.safe_checked.contains(name) || !scan.safe_unchecked_use.contains(name) {
                scan.out.validated.extend(kinds.iter().copied());
            }
        }
        scan.out
    }

    /// An expression (a wrapper call with its callbacks) as a handler.
    pub fn inputs_of_expr(&self, e: &'a Expression<'a>) -> Inputs {
        self.inputs_of(LocalFn::Expr(e))
    }
}

struct Scan<'c, 'a, 's> {
    ctx: &'c Ctx<'a, 's>,
    out: Inputs,
    /// First-parameter names of the functions scanned: the request objects.
    params: HashSet<&'a str>,
    /// The handler's own request (first parameter of the outermost function).
    root_requests: HashSet<&'a str>,
    /// `.safeParse` calls whose `.success`/`.error` is read (by start offset).
    checked_calls: HashSet<u32>,
    /// The last unchecked `.safeParse` call and what reached it, for its declarator.
    pending_safe: Option<(u32, Vec<&'static str>)>,
    /// `const r = S.safeParse(x)`: r → what reached it. Validated unless `r.data` is used
    /// before `r.success` (or `r.error`) is read.
    safe_results: HashMap<&'a str, Vec<&'static str>>,
    safe_checked: HashSet<&'a str>,
    safe_unchecked_use: HashSet<&'a str>,
    /// Later parameters (`context` of `(req, context)`): their `.params` are route params.
    contexts: HashSet<&'a str>,
    /// Names bound to the route params by destructuring a parameter (`{ params }`).
    route_params: HashSet<&'a str>,
    /// Names bound to the request's URL (`const url = new URL(req.url)`, `req.nextUrl`).
    urls: HashSet<&'a str>,
    /// Functions whose parameters are the request and its context (by start offset): the
    /// handler, the local helpers it calls, callbacks given to a named wrapper; not a
    /// `.then((res) => res.json())` callback.
    handler_fns: HashSet<u32>,
    fn_stack: Vec<bool>,
    /// Local functions already scanned (by start offset).
    followed: HashSet<u32>,
    /// Every read or use of input, in visiting order: what flows into the expression
    /// being visited.
    flow: Vec<&'static str>,
    /// Names bound to values that carry input: name → kinds.
    carriers: HashMap<&'a str, Vec<&'static str>>,
}

impl<'a> Scan<'_, 'a, '_> {
    fn read(&mut self, what: &'static str, offset: u32) {
        if !self.out.reads.iter().any(|(w, _)| *w == what) {
            self.out.reads.push((what, offset));
        }
        self.flow.push(what);
    }

    fn carry(&mut self, pattern: &BindingPattern<'a>, kinds: &[&'static str]) {
        if kinds.is_empty() {
            return;
        }
        for id in pattern.get_binding_identifiers() {
            self.carriers
                .entry(id.name.as_str())
                .or_default()
                .extend_from_slice(kinds);
        }
    }

    /// Is `obj` the request's URL, whose `.searchParams` is the query?
    fn is_request_url(&self, obj: &Expression<'a>) -> bool {
        match obj.get_inner_expression() {
            Expression::Identifier(id) => self.urls.contains(id.name.as_str()),
            Expression::NewExpression(n) => n
                .arguments
                .first()
                .and_then(|a| a.as_expression())
                .is_some_and(|a| {
                    a.get_member_expr().is_some_and(|m| {
                        m.static_property_name() == Some("url") && self.is_request(m.object())
                    })
                }),
            other => other.get_member_expr().is_some_and(|m| {
                m.static_property_name() == Some("nextUrl") && self.is_request(m.object())
            }),
        }
    }

    /// The request handed whole to a function the checker does not read.
    fn note_passed(&mut self, c: &CallExpression<'a>) {
        if !c.arguments.iter().any(|a| {
            matches!(a.as_expression().map(|e| e.get_inner_expression()),
                Some(Expression::Identifier(id)) if self.root_requests.contains(id.name.as_str()))
        }) {
            return;
        }
        let r = &self.ctx.settings.routes;
        let configured = [
            &r.guard_calls,
            &r.auth_wrappers,
            &r.rate_limiters,
            &r.guarded_factories,
        ]
        .iter()
        .any(|l| self.ctx.call_listed(c, l).is_some());
        let local = matches!(c.callee.get_inner_expression(), Expression::Identifier(id)
            if self.ctx.module.local_function(id.name.as_str()).is_some()
                || matches!(self.ctx.module.bindings.get(id.name.as_str()), Some(Binding::Value(_))));
        if configured || local || self.ctx.callee_facts(&c.callee).is_some() {
            return;
        }
        let name = self.ctx.src.snippet(oxc_span::GetSpan::span(&c.callee), 50);
        if !self.out.passed.contains(&name) {
            self.out.passed.push(name);
        }
    }

    fn visit_local(&mut self, f: LocalFn<'a>) {
        self.handler_fns.insert(fn_start(f));
        match f {
            LocalFn::Function(f) => {
                if self.followed.insert(f.span.start) {
                    self.visit_function(f, ScopeFlags::Function);
                }
            }
            LocalFn::Expr(e) => {
                if self.followed.insert(oxc_span::GetSpan::span(e).start) {
                    self.visit_expression(e);
                }
            }
        }
    }

    fn is_request(&self, e: &Expression<'a>) -> bool {
        match e.get_inner_expression() {
            Expression::Identifier(id) => {
                let n = id.name.as_str();
                n == "req" || n == "request" || self.params.contains(n)
            }
            Expression::CallExpression(c) => {
                // `req.clone().json()`
                c.callee.get_member_expr().is_some_and(|m| {
                    m.static_property_name() == Some("clone") && self.is_request(m.object())
                })
            }
            other => other
                .get_member_expr()
                .and_then(|m| m.static_property_name())
                .is_some_and(|p| p == "req" || p == "request"),
        }
    }

    fn classify(&self, schema: &Expression<'a>) -> Option<(String, Origin)> {
        let settings = self.ctx.settings;
        let path = self.ctx.src.path;
        match schema.get_inner_expression() {
            Expression::Identifier(id) => {
                let name = id.name.as_str();
                match self.ctx.module.bindings.get(name) {
                    Some(Binding::Import { source, imported }) => {
                        let shown = match imported {
                            Imported::Named(n) => n.to_string(),
                            _ => name.to_string(),
                        };
                        Some(if settings.is_contracts_source(source, path) {
                            (shown, Origin::Contracts(source.to_string()))
                        } else {
                            (shown, Origin::Elsewhere(source.to_string()))
                        })
                    }
                    Some(_) => Some((name.to_string(), Origin::Inline)),
                    None if NOT_SCHEMAS.contains(&name) => None,
                    None => Some((name.to_string(), Origin::Inline)),
                }
            }
            other => {
                let shown = self.ctx.src.snippet(oxc_span::GetSpan::span(other), 50);
                let Some(m) = other.get_member_expr() else {
                    // `z.object({...}).parse(...)`, `Base.extend({...}).parse(...)`
                    return Some((shown, Origin::Inline));
                };
                let prop = m.static_property_name().unwrap_or("?");
                // `contracts.CreateProjectInput` with `import * as contracts from "@dashboard/contracts"`.
                if let Expression::Identifier(ns) = m.object().get_inner_expression() {
                    if let Some(Binding::Import {
                        source,
                        imported: Imported::Namespace | Imported::Default,
                    }) = self.ctx.module.bindings.get(ns.name.as_str())
                    {
                        return Some(if settings.is_contracts_source(source, path) {
                            (prop.to_string(), Origin::Contracts(source.to_string()))
                        } else {
                            (prop.to_string(), Origin::Elsewhere(source.to_string()))
                        });
                    }
                }
                Some((
                    self.ctx.src.snippet(oxc_span::GetSpan::span(other), 50),
                    Origin::Inline,
                ))
            }
        }
    }
}

impl<'a> Visit<'a> for Scan<'_, 'a, '_> {
    fn visit_formal_parameters(&mut self, ps: &FormalParameters<'a>) {
        if !self.fn_stack.last().copied().unwrap_or(true) {
            // A callback such as `.then((res) => res.json())`: its parameters are not the request.
            return;
        }
        for (i, p) in ps.items.iter().enumerate() {
            if let BindingPattern::BindingIdentifier(id) = &p.pattern {
                if i == 0 {
                    self.params.insert(id.name.as_str());
                    if self.fn_stack.len() <= 1 {
                        self.root_requests.insert(id.name.as_str());
                    }
                } else {
                    self.contexts.insert(id.name.as_str());
                }
            }
            self.visit_formal_parameter(p);
        }
        if let Some(rest) = &ps.rest {
            self.visit_binding_rest_element(&rest.rest);
        }
    }

    fn visit_formal_parameter(&mut self, p: &FormalParameter<'a>) {
        match &p.pattern {
            BindingPattern::BindingIdentifier(_) => {}
            BindingPattern::ObjectPattern(o) => {
                // `{ params: { id } }`: the params are read without naming them.
                for prop in o.properties.iter() {
                    let key = match &prop.key {
                        PropertyKey::StaticIdentifier(k) => k.name.as_str(),
                        _ => continue,
                    };
                    let nested = !matches!(prop.value, BindingPattern::BindingIdentifier(_));
                    if let BindingPattern::BindingIdentifier(id) = &prop.value {
                        // `{ params }`: reading `params` later reads the route params.
                        match key {
                            "params" => {
                                self.route_params.insert(id.name.as_str());
                            }
                            "searchParams" => {}
                            _ => {}
                        }
                    }
                    let kind = match key {
                        "params" if nested => "params",
                        "searchParams" if nested => "query",
                        _ => continue,
                    };
                    self.read(kind, prop.span.start);
                    self.carry(&prop.value, &[kind]);
                }
            }
            _ => {}
        }
        walk::walk_formal_parameter(self, p);
    }

    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        if let Some(m) = c.callee.get_member_expr() {
            match m.static_property_name() {
                Some(p)
                    if BODY_READERS.contains(&p)
                        && c.arguments.is_empty()
                        && self.is_request(m.object()) =>
                {
                    walk::walk_call_expression(self, c);
                    self.read("body", c.span.start);
                    return;
                }
                Some(p) if PARSERS.contains(&p) => {
                    if let Some((name, origin)) = self.classify(m.object()) {
                        self.out.schemas.push(SchemaUse {
                            name,
                            origin,
                            offset: c.span.start,
                        });
                        // What flows into the arguments is validated.
                        self.visit_expression(&c.callee);
                        let start = self.flow.len();
                        for arg in c.arguments.iter() {
                            self.visit_argument(arg);
                        }
                        let reached: Vec<_> = self.flow[start..].to_vec();
                        // A `safeParse` validates only when its result is tested
                        // (`.success`, `.error`); `S.safeParse(x).data` alone lets anything through.
                        if p.starts_with("safe") && !self.checked_calls.contains(&c.span.start) {
                            self.pending_safe = Some((c.span.start, reached));
                        } else {
                            self.out.validated.extend(reached);
                        }
                        return;
                    }
                }
                _ => {}
            }
        }
        if self.ctx.settings.routes.headers_are_input {
            if let Expression::Identifier(id) = c.callee.get_inner_expression() {
                if matches!(id.name.as_str(), "headers" | "cookies")
                    && self.ctx.module.bindings.contains_key(id.name.as_str())
                {
                    self.read("headers", c.span.start);
                }
            }
        }
        // A helper in another file that reads the request it is given (`parseJson(req)`).
        if let Some(f) = self.ctx.callee_facts(&c.callee) {
            if let Some(inner) = f.inputs.as_ref().filter(|i| !i.reads.is_empty()) {
                if c.arguments
                    .iter()
                    .any(|a| a.as_expression().is_some_and(|e| self.is_request(e)))
                {
                    let start = self.flow.len();
                    walk::walk_call_expression(self, c);
                    self.flow.truncate(start);
                    for (kind, _) in &inner.reads {
                        if *kind != "arguments" {
                            self.read(kind, c.span.start);
                        }
                    }
                    for s in &inner.schemas {
                        self.out.schemas.push(SchemaUse {
                            offset: c.span.start,
                            ..s.clone()
                        });
                    }
                    if !inner.schemas.is_empty() {
                        // Validated inside: its result is the parsed value.
                        self.out.validated.extend(inner.validated.iter().copied());
                        self.flow.truncate(start);
                    }
                    return;
                }
            }
        }
        if matches!(c.callee.get_inner_expression(), Expression::Identifier(_)) {
            // Callbacks given to a named function (a wrapper) receive the request.
            for a in c.arguments.iter() {
                match a.as_expression().map(|e| e.get_inner_expression()) {
                    Some(Expression::ArrowFunctionExpression(f)) => {
                        self.handler_fns.insert(f.span.start);
                    }
                    Some(Expression::FunctionExpression(f)) => {
                        self.handler_fns.insert(f.span.start);
                    }
                    _ => {}
                }
            }
        }
        self.note_passed(c);
        let start = self.flow.len();
        walk::walk_call_expression(self, c);
        let keeps = match c.callee.get_inner_expression() {
            Expression::Identifier(id) => {
                PASSTHROUGH.contains(&id.name.as_str())
                    || self.ctx.module.local_function(id.name.as_str()).is_some()
            }
            other => other
                .get_member_expr()
                .and_then(|m| m.static_property_name())
                .is_some_and(|p| PASSTHROUGH.contains(&p) || p == "parse"),
        };
        if !keeps {
            // What a call returns is its own value, not the input it was given.
            self.flow.truncate(start);
        }
    }

    fn visit_static_member_expression(&mut self, m: &StaticMemberExpression<'a>) {
        if let Expression::Identifier(id) = m.object.get_inner_expression() {
            let name = id.name.as_str();
            if self.safe_results.contains_key(name) {
                match m.property.name.as_str() {
                    "success" | "error" => {
                        self.safe_checked.insert(name);
                    }
                    "data" if !self.safe_checked.contains(name) => {
                        self.safe_unchecked_use.insert(name);
                    }
                    _ => {}
                }
            }
        }
        if matches!(m.property.name.as_str(), "success" | "error") {
            match m.object.get_inner_expression() {
                Expression::AwaitExpression(a) => {
                    if let Expression::CallExpression(c) = a.argument.get_inner_expression() {
                        self.checked_calls.insert(c.span.start);
                    }
                }
                Expression::CallExpression(c) => {
                    self.checked_calls.insert(c.span.start);
                }
                _ => {}
            }
        }
        match m.property.name.as_str() {
            // The request's URL only: `url.searchParams.append(...)` of an outgoing URL is not input.
            "searchParams" if self.is_request_url(&m.object) => self.read("query", m.span.start),
            // `context.params` of the handler's second argument, never `foo.params`.
            "params" => {
                if let Expression::Identifier(id) = m.object.get_inner_expression() {
                    if self.contexts.contains(id.name.as_str()) {
                        self.read("params", m.span.start);
                    }
                }
            }
            "headers" | "cookies"
                if self.ctx.settings.routes.headers_are_input && self.is_request(&m.object) =>
            {
                self.read("headers", m.span.start)
            }
            _ => {}
        }
        walk::walk_static_member_expression(self, m);
    }

    fn visit_identifier_reference(&mut self, id: &IdentifierReference<'a>) {
        let name = id.name.as_str();
        match name {
            "searchParams" => self.read("query", id.span.start),
            n if self.route_params.contains(n) => self.read("params", id.span.start),
            _ => {
                if let Some(kinds) = self.carriers.get(name) {
                    let kinds = kinds.clone();
                    self.flow.extend(kinds);
                }
                if let Some(f) = self.ctx.module.local_function(name) {
                    self.visit_local(f);
                } else if let Some(Binding::Value(v)) = self.ctx.module.bindings.get(name) {
                    // `return PATCH(req)` where `const PATCH = withAuth(async (req) => ...)`.
                    if matches!(v.get_inner_expression(), Expression::CallExpression(_)) {
                        self.visit_local(LocalFn::Expr(v));
                    }
                }
            }
        }
    }

    fn visit_variable_declarator(&mut self, d: &VariableDeclarator<'a>) {
        if let Some(init) = &d.init {
            let inner = match init.get_inner_expression() {
                Expression::AwaitExpression(a) => &a.argument,
                _ => init,
            };
            if self.is_request_url(inner) {
                for id in d.id.get_binding_identifiers() {
                    self.urls.insert(id.name.as_str());
                }
            }
        }
        let start = self.flow.len();
        walk::walk_variable_declarator(self, d);
        let kinds: Vec<_> = self.flow[start..].to_vec();
        self.carry(&d.id, &kinds);
        if let Some((at, reached)) = self.pending_safe.take() {
            let inner = d.init.as_ref().map(|i| match i.get_inner_expression() {
                Expression::AwaitExpression(a) => a.argument.get_inner_expression(),
                e => e,
            });
            if matches!(inner, Some(Expression::CallExpression(c)) if c.span.start == at) {
                match &d.id {
                    BindingPattern::BindingIdentifier(id) => {
                        self.safe_results.insert(id.name.as_str(), reached);
                    }
                    BindingPattern::ObjectPattern(o)
                        if o.properties.iter().any(|p| {
                            matches!(p.key.static_name().as_deref(), Some("success" | "error"))
                        }) =>
                    {
                        self.out.validated.extend(reached);
                    }
                    _ => {}
                }
            }
        }
    }

    fn visit_assignment_expression(&mut self, a: &AssignmentExpression<'a>) {
        let start = self.flow.len();
        walk::walk_assignment_expression(self, a);
        if let Some(name) = a.left.get_identifier_name() {
            let kinds: Vec<_> = self.flow[start..].to_vec();
            if !kinds.is_empty() {
                self.carriers.entry(name).or_default().extend(kinds);
            }
        }
    }

    fn visit_function(&mut self, f: &Function<'a>, flags: ScopeFlags) {
        self.followed.insert(f.span.start);
        self.fn_stack.push(self.handler_fns.contains(&f.span.start));
        walk::walk_function(self, f, flags);
        self.fn_stack.pop();
    }

    fn visit_arrow_function_expression(&mut self, a: &oxc_ast::ast::ArrowFunctionExpression<'a>) {
        self.fn_stack.push(self.handler_fns.contains(&a.span.start));
        walk::walk_arrow_function_expression(self, a);
        self.fn_stack.pop();
    }
}

/// Where a function starts (the key of `handler_fns` and `followed`).
fn fn_start(f: LocalFn) -> u32 {
    match f {
        LocalFn::Function(f) => f.span.start,
        LocalFn::Expr(e) => oxc_span::GetSpan::span(e.get_inner_expression()).start,
    }
}
