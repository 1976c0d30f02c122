//! What every check on one file needs: its module table, the configured names, and small
//! syntax helpers shared by the auth, input and rate-limit checks.

use std::rc::Rc;

use oxc_ast::ast::{Argument, Expression, Function, Statement};
use oxc_ast_visit::{walk, Visit};
use oxc_syntax::scope::ScopeFlags;

use super::{
    graph::{Facts, Graph, Stop},
    module::{Binding, Imported, LocalFn, Module},
    Settings,
};
use crate::ts::Source;

pub struct Ctx<'a, 's> {
    pub src: &'s Source<'a>,
    pub module: &'s Module<'a>,
    pub settings: &'s Settings,
    /// The import graph, to follow names into other files (`None`: this file alone).
    pub graph: Option<&'s Graph>,
}

/// What a name imported from another file turned out to be.
pub enum Followed {
    /// A file of this repository, read.
    Facts(Rc<Facts>),
    /// A library (or no graph): not followed.
    Library(String),
    /// Could not be followed: why.
    Stopped(Stop),
}

/// How a callee's name is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallName<'a> {
    /// Imported (under its exported name), a global, or a method (`auth.withAuth`).
    Trusted(&'a str),
    /// A function or value defined in this very file: a local `withAuth` proves nothing.
    Local(&'a str),
}

impl<'a> CallName<'a> {
    pub fn name(self) -> &'a str {
        match self {
            CallName::Trusted(n) | CallName::Local(n) => n,
        }
    }
}

impl<'a> Ctx<'a, '_> {
    pub fn line(&self, offset: u32) -> u32 {
        self.src.line(offset)
    }

    /// Follow a top-level name bound to an import into the file that defines it. `None`
    /// when the name is not an import.
    pub fn follow(&self, local: &str) -> Option<Followed> {
        let Some(Binding::Import { source, imported }) = self.module.bindings.get(local) else {
            return None;
        };
        let Some(graph) = self.graph else {
            return Some(Followed::Library(source.to_string()));
        };
        Some(match graph.facts(self.src.path, source, imported) {
            Ok(Some(f)) => Followed::Facts(f),
            Ok(None) => Followed::Library(source.to_string()),
            Err(stop) => Followed::Stopped(stop),
        })
    }

    /// The facts of a callee imported from a file of this repository.
    pub fn callee_facts(&self, callee: &Expression<'a>) -> Option<Rc<Facts>> {
        let Expression::Identifier(id) = callee.get_inner_expression() else {
            return None;
        };
        match self.follow(id.name.as_str())? {
            Followed::Facts(f) => Some(f),
            _ => None,
        }
    }

    /// The name a call is made under, resolved through this file's imports.
    pub fn call_name(&self, callee: &Expression<'a>) -> Option<CallName<'a>> {
        match callee.get_inner_expression() {
            Expression::Identifier(id) => {
                let local = id.name.as_str();
                Some(match self.module.bindings.get(local) {
                    Some(Binding::Import {
                        imported: Imported::Named(n),
                        ..
                    }) => CallName::Trusted(n),
                    Some(Binding::Import { .. }) | None => CallName::Trusted(local),
                    Some(_) => CallName::Local(local),
                })
            }
            other => other
                .get_member_expr()
                .and_then(|m| m.static_property_name())
                .map(CallName::Trusted),
        }
    }

    /// `name(...)` or `await name(...)` where `name` is in `list`: the call's name.
    pub fn call_in<'l>(&self, e: &Expression<'a>, list: &'l [String]) -> Option<CallName<'a>> {
        let e = match strip_members(e) {
            Expression::AwaitExpression(a) => a.argument.get_inner_expression(),
            e => e,
        };
        let Expression::CallExpression(c) = e else {
            return None;
        };
        self.call_listed(c, list)
    }

    /// A call whose name (or dotted path, for a configured `auth.getUser`) is in `list`.
    pub fn call_listed(
        &self,
        c: &oxc_ast::ast::CallExpression<'a>,
        list: &[String],
    ) -> Option<CallName<'a>> {
        let name = self.call_name(&c.callee)?;
        if list.iter().any(|l| l == name.name()) {
            return Some(name);
        }
        let dotted = member_path(&c.callee)?;
        list.iter()
            .any(|l| l.contains('.') && (dotted == *l || dotted.ends_with(&format!(".{l}"))))
            .then_some(name)
    }

    /// A function passed as an argument, written inline or named from this file.
    pub fn function_arg(&self, arg: &'a Argument<'a>) -> Option<LocalFn<'a>> {
        let e = arg.as_expression()?;
        match e.get_inner_expression() {
            Expression::ArrowFunctionExpression(_) => Some(LocalFn::Expr(e)),
            Expression::FunctionExpression(f) => Some(LocalFn::Function(f)),
            Expression::Identifier(id) => self.module.local_function(id.name.as_str()),
            _ => None,
        }
    }
}

/// `(await getUser()).data.user` → `await getUser()`: the value a property is read from.
pub fn strip_members<'e, 'a>(e: &'e Expression<'a>) -> &'e Expression<'a> {
    let mut e = e.get_inner_expression();
    while let Some(m) = e.get_member_expr() {
        e = m.object().get_inner_expression();
    }
    e
}

/// `a.b.c` of a callee written as a chain of names (`supabase.auth.getUser`), `this` and
/// calls in between dropped (`(await createClient()).auth.getUser` → `auth.getUser`).
pub fn member_path(e: &Expression) -> Option<String> {
    match e.get_inner_expression() {
        Expression::Identifier(id) => Some(id.name.to_string()),
        Expression::StaticMemberExpression(m) => {
            let prop = m.property.name.as_str();
            Some(match member_path(&m.object) {
                Some(obj) => format!("{obj}.{prop}"),
                None => prop.to_string(),
            })
        }
        Expression::AwaitExpression(a) => member_path(&a.argument),
        _ => None,
    }
}

/// Statements that do nothing at run time (types, empty statements).
pub fn is_noise(s: &Statement) -> bool {
    matches!(
        s,
        Statement::EmptyStatement(_)
            | Statement::TSTypeAliasDeclaration(_)
            | Statement::TSInterfaceDeclaration(_)
            | Statement::TSEnumDeclaration(_)
    )
}

/// Does this code (functions inside it excepted) call, construct or tag anything? Reading
/// values and awaiting a value (`await params`) is not work; a call may be.
pub fn does_work(s: &Statement) -> bool {
    let mut w = Work(false);
    w.visit_statement(s);
    w.0
}

struct Work(bool);

impl<'a> Visit<'a> for Work {
    fn visit_call_expression(&mut self, _: &oxc_ast::ast::CallExpression<'a>) {
        self.0 = true;
    }
    fn visit_new_expression(&mut self, _: &oxc_ast::ast::NewExpression<'a>) {
        self.0 = true;
    }
    fn visit_tagged_template_expression(&mut self, _: &oxc_ast::ast::TaggedTemplateExpression<'a>) {
        self.0 = true;
    }
    fn visit_function(&mut self, _: &Function<'a>, _: ScopeFlags) {}
    fn visit_arrow_function_expression(&mut self, _: &oxc_ast::ast::ArrowFunctionExpression<'a>) {}
}

/// Calls that only prepare: create a client, read a cookie, a header or the URL, take a
/// token or the client's address, hash it, trim a string. Before a guard (and with
/// `request_reads`, reading the body too) or before a rate limiter they are not work.
const SETUP_CALLS: [&str; 30] = [
    "cookies",
    "headers",
    "get",
    "getAll",
    "has",
    "createClient",
    "createServerClient",
    "createBrowserClient",
    "createRouteHandlerClient",
    "createServerComponentClient",
    "getBearerToken",
    "getToken",
    "getClientIp",
    "getIp",
    "ipAddress",
    "createHash",
    "update",
    "digest",
    "hash",
    "sha256",
    "split",
    "trim",
    "at",
    "slice",
    "toLowerCase",
    "replace",
    "String",
    "fromEnv",
    "slidingWindow",
    "fixedWindow",
];
const REQUEST_READS: [&str; 5] = ["json", "formData", "text", "fromEntries", "entries"];

/// Does this statement call only [`SETUP_CALLS`] (functions inside excepted)? With
/// `request_reads`, reading the request body counts as preparation too.
pub fn is_setup(s: &Statement, request_reads: bool) -> bool {
    let mut v = Setup {
        ok: true,
        request_reads,
    };
    v.visit_statement(s);
    v.ok
}

struct Setup {
    ok: bool,
    request_reads: bool,
}

impl<'a> Visit<'a> for Setup {
    fn visit_call_expression(&mut self, c: &oxc_ast::ast::CallExpression<'a>) {
        let name = match c.callee.get_inner_expression() {
            Expression::Identifier(id) => Some(id.name.as_str()),
            other => other
                .get_member_expr()
                .and_then(|m| m.static_property_name()),
        };
        let ok = name.is_some_and(|n| {
            SETUP_CALLS.contains(&n)
                || (n.starts_with("create") && n.ends_with("Client"))
                || (n.starts_with("get") && n.ends_with("Token"))
                || (self.request_reads && REQUEST_READS.contains(&n))
        });
        if !ok {
            self.ok = false;
        }
        walk::walk_call_expression(self, c);
    }
    fn visit_new_expression(&mut self, n: &oxc_ast::ast::NewExpression<'a>) {
        let ok = matches!(n.callee.get_inner_expression(), Expression::Identifier(id)
            if ["URL", "URLSearchParams", "Ratelimit", "Redis", "Headers", "Set", "Map"].contains(&id.name.as_str()));
        if !ok {
            self.ok = false;
        }
        walk::walk_new_expression(self, n);
    }
    fn visit_tagged_template_expression(&mut self, _: &oxc_ast::ast::TaggedTemplateExpression<'a>) {
        self.ok = false;
    }
    fn visit_function(&mut self, _: &Function<'a>, _: ScopeFlags) {}
    fn visit_arrow_function_expression(&mut self, _: &oxc_ast::ast::ArrowFunctionExpression<'a>) {}
}

/// The first call (functions inside excepted) whose plain callee name is in `names`, in
/// source order: `(name, offset)`. Aliases are not followed; used for messages only.
pub fn first_call_named<'n>(s: &Statement, names: &'n [String]) -> Option<(&'n str, u32)> {
    let mut f = FirstCall { names, found: None };
    f.visit_statement(s);
    f.found
}

struct FirstCall<'n> {
    names: &'n [String],
    found: Option<(&'n str, u32)>,
}

impl<'a> Visit<'a> for FirstCall<'_> {
    fn visit_call_expression(&mut self, c: &oxc_ast::ast::CallExpression<'a>) {
        if self.found.is_none() {
            if let Some(n) = c
                .callee_name()
                .and_then(|n| self.names.iter().find(|x| *x == n))
            {
                self.found = Some((n.as_str(), c.span.start));
                return;
            }
        }
        walk::walk_call_expression(self, c);
    }
}
