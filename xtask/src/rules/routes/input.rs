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
    AssignmentExpression, BindingPattern, CallExpression, Expression, FormalParameter, Function,
    IdentifierReference, PropertyKey, StaticMemberExpression, VariableDeclarator,
};
use oxc_ast_visit::{walk, Visit};
use oxc_syntax::scope::ScopeFlags;

use super::{
    ctx::Ctx,
    module::{Binding, Imported, LocalFn},
};

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
#[derive(Debug, Default)]
pub struct Inputs {
    /// `body`, `query`, `params`, `arguments`, with where first seen.
    pub reads: Vec<(&'static str, u32)>,
    pub schemas: Vec<SchemaUse>,
    /// Kinds of input that reach a schema's `.parse` argument, directly
    /// (`Schema.parse(await req.json())`) or through names (`const body = await req.json();
    /// Schema.parse(body)`).
    pub validated: HashSet<&'static str>,
}

impl<'a> Ctx<'a, '_> {
    /// Scan a handler (and the local functions it names).
    pub fn inputs_of(&self, f: LocalFn<'a>) -> Inputs {
        let mut scan = Scan {
            ctx: self,
            out: Inputs::default(),
            params: HashSet::new(),
            followed: HashSet::new(),
            flow: Vec::new(),
            carriers: HashMap::new(),
        };
        scan.visit_local(f);
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
    /// Parameter names of the functions scanned: the request objects.
    params: HashSet<&'a str>,
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

    fn visit_local(&mut self, f: LocalFn<'a>) {
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
    fn visit_formal_parameter(&mut self, p: &FormalParameter<'a>) {
        match &p.pattern {
            BindingPattern::BindingIdentifier(id) => {
                self.params.insert(id.name.as_str());
            }
            BindingPattern::ObjectPattern(o) => {
                // `{ params: { id } }`: the params are read without naming them.
                for prop in o.properties.iter() {
                    let key = match &prop.key {
                        PropertyKey::StaticIdentifier(k) => k.name.as_str(),
                        _ => continue,
                    };
                    let nested = !matches!(prop.value, BindingPattern::BindingIdentifier(_));
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
                    self.read("body", c.span.start);
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
                        self.out.validated.extend(reached);
                        return;
                    }
                }
                _ => {}
            }
        }
        walk::walk_call_expression(self, c);
    }

    fn visit_static_member_expression(&mut self, m: &StaticMemberExpression<'a>) {
        match m.property.name.as_str() {
            "searchParams" => self.read("query", m.span.start),
            "params" => self.read("params", m.span.start),
            _ => {}
        }
        walk::walk_static_member_expression(self, m);
    }

    fn visit_identifier_reference(&mut self, id: &IdentifierReference<'a>) {
        let name = id.name.as_str();
        match name {
            "searchParams" => self.read("query", id.span.start),
            "params" => self.read("params", id.span.start),
            _ => {
                if let Some(kinds) = self.carriers.get(name) {
                    let kinds = kinds.clone();
                    self.flow.extend(kinds);
                }
                if let Some(f) = self.ctx.module.local_function(name) {
                    self.visit_local(f);
                }
            }
        }
    }

    fn visit_variable_declarator(&mut self, d: &VariableDeclarator<'a>) {
        let start = self.flow.len();
        walk::walk_variable_declarator(self, d);
        let kinds: Vec<_> = self.flow[start..].to_vec();
        self.carry(&d.id, &kinds);
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
        walk::walk_function(self, f, flags);
    }
}
