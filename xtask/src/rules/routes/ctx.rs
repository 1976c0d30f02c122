//! What every check on one file needs: its module table, the configured names, and small
//! syntax helpers shared by the auth, input and rate-limit checks.

use oxc_ast::ast::{Argument, Expression, Function, Statement};
use oxc_ast_visit::{walk, Visit};
use oxc_syntax::scope::ScopeFlags;

use super::{
    module::{Binding, Imported, LocalFn, Module},
    Settings,
};
use crate::ts::Source;

pub struct Ctx<'a, 's> {
    pub src: &'s Source<'a>,
    pub module: &'s Module<'a>,
    pub settings: &'s Settings,
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
        let e = match e.get_inner_expression() {
            Expression::AwaitExpression(a) => a.argument.get_inner_expression(),
            e => e,
        };
        let Expression::CallExpression(c) = e else {
            return None;
        };
        let name = self.call_name(&c.callee)?;
        list.iter().any(|l| l == name.name()).then_some(name)
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
