//! The top level of one module: what each name is bound to, and what the file exports.
//!
//! Handlers are followed through this table: `export { handler as GET }` finds the local
//! `handler`; a name imported from another file is followed through the import graph
//! (`graph.rs`), and what cannot be followed is "unverified", never a pass.

use std::collections::HashMap;

use oxc_ast::ast::{
    BindingPattern, Declaration, ExportDefaultDeclarationKind, Expression, Function,
    ImportDeclarationSpecifier, ImportOrExportKind, ModuleExportName, Program, Statement,
};

/// What a top-level name is.
pub enum Binding<'a> {
    Import {
        source: &'a str,
        imported: Imported<'a>,
    },
    Function(&'a Function<'a>),
    /// `const x = <init>` (or `let`/`var`).
    Value(&'a Expression<'a>),
    /// A class, a destructured name, a declaration without initialiser.
    Other,
}

pub enum Imported<'a> {
    Named(&'a str),
    Default,
    Namespace,
}

/// What an exported name is bound to.
pub enum Target<'a> {
    Function(&'a Function<'a>),
    Expr(&'a Expression<'a>),
    /// `export { handler as GET }`: a top-level name of this file.
    Local(&'a str),
    /// `export { GET } from "./x"`: defined in another file (source, its name there).
    ReExport(&'a str, &'a str),
    /// Anything the checker does not follow (destructuring, a class, ...): why.
    Opaque(&'static str),
}

pub struct Export<'a> {
    pub name: &'a str,
    /// Byte offset of the export, for its line.
    pub offset: u32,
    pub target: Target<'a>,
}

pub struct Module<'a> {
    pub bindings: HashMap<&'a str, Binding<'a>>,
    pub exports: Vec<Export<'a>>,
    /// `export * from "./x"`: (source, offset).
    pub star_exports: Vec<(&'a str, u32)>,
    /// The file starts with the `'use server'` directive.
    pub use_server: bool,
}

fn export_name<'a>(n: &ModuleExportName<'a>) -> &'a str {
    n.name().as_str()
}

impl<'a> Module<'a> {
    pub fn read(program: &'a Program<'a>) -> Module<'a> {
        let mut m = Module {
            bindings: HashMap::new(),
            exports: Vec::new(),
            star_exports: Vec::new(),
            use_server: program
                .directives
                .iter()
                .any(|d| d.directive.as_str() == "use server"),
        };
        for stmt in program.body.iter() {
            match stmt {
                Statement::ImportDeclaration(d) if d.import_kind != ImportOrExportKind::Type => {
                    for spec in d.specifiers.iter().flat_map(|s| s.iter()) {
                        let (local, imported) = match spec {
                            ImportDeclarationSpecifier::ImportSpecifier(s) => {
                                if s.import_kind == ImportOrExportKind::Type {
                                    continue;
                                }
                                (
                                    s.local.name.as_str(),
                                    Imported::Named(export_name(&s.imported)),
                                )
                            }
                            ImportDeclarationSpecifier::ImportDefaultSpecifier(s) => {
                                (s.local.name.as_str(), Imported::Default)
                            }
                            ImportDeclarationSpecifier::ImportNamespaceSpecifier(s) => {
                                (s.local.name.as_str(), Imported::Namespace)
                            }
                        };
                        m.bindings.insert(
                            local,
                            Binding::Import {
                                source: d.source.value.as_str(),
                                imported,
                            },
                        );
                    }
                }
                Statement::FunctionDeclaration(f) => m.bind_function(f),
                Statement::VariableDeclaration(v) => {
                    for d in v.declarations.iter() {
                        m.bind_pattern(&d.id, d.init.as_ref(), None);
                    }
                }
                Statement::ClassDeclaration(c) => {
                    if let Some(id) = &c.id {
                        m.bindings.insert(id.name.as_str(), Binding::Other);
                    }
                }
                Statement::ExportDeclaration(e) => match &e.declaration {
                    Declaration::FunctionDeclaration(f) => {
                        m.bind_function(f);
                        if let Some(name) = f.name() {
                            m.exports.push(Export {
                                name: name.as_str(),
                                offset: e.span.start,
                                target: Target::Function(f),
                            });
                        }
                    }
                    Declaration::VariableDeclaration(v) => {
                        for d in v.declarations.iter() {
                            m.bind_pattern(&d.id, d.init.as_ref(), Some(e.span.start));
                        }
                    }
                    Declaration::ClassDeclaration(c) => {
                        if let Some(id) = &c.id {
                            m.bindings.insert(id.name.as_str(), Binding::Other);
                            m.exports.push(Export {
                                name: id.name.as_str(),
                                offset: e.span.start,
                                target: Target::Opaque("a class"),
                            });
                        }
                    }
                    _ => {}
                },
                Statement::ExportNamedDeclaration(e)
                    if e.export_kind != ImportOrExportKind::Type =>
                {
                    for s in e
                        .specifiers
                        .iter()
                        .filter(|s| s.export_kind != ImportOrExportKind::Type)
                    {
                        m.exports.push(Export {
                            name: export_name(&s.exported),
                            offset: s.span.start,
                            target: Target::Local(export_name(&s.local)),
                        });
                    }
                }
                Statement::ExportFromDeclaration(e)
                    if e.export_kind != ImportOrExportKind::Type =>
                {
                    for s in e
                        .specifiers
                        .iter()
                        .filter(|s| s.export_kind != ImportOrExportKind::Type)
                    {
                        m.exports.push(Export {
                            name: export_name(&s.exported),
                            offset: s.span.start,
                            target: Target::ReExport(
                                e.source.value.as_str(),
                                export_name(&s.local),
                            ),
                        });
                    }
                }
                Statement::ExportAllDeclaration(e) if e.export_kind != ImportOrExportKind::Type => {
                    match &e.exported {
                        Some(name) => m.exports.push(Export {
                            name: export_name(name),
                            offset: e.span.start,
                            target: Target::Opaque("a namespace re-exported from another file"),
                        }),
                        None => m.star_exports.push((e.source.value.as_str(), e.span.start)),
                    }
                }
                Statement::ExportDefaultDeclaration(e) => {
                    let target = match &e.declaration {
                        ExportDefaultDeclarationKind::FunctionDeclaration(f) => {
                            m.bind_function(f);
                            Target::Function(f)
                        }
                        ExportDefaultDeclarationKind::ClassDeclaration(_) => {
                            Target::Opaque("a class")
                        }
                        ExportDefaultDeclarationKind::TSInterfaceDeclaration(_) => continue,
                        other => match other.as_expression() {
                            Some(expr) => Target::Expr(expr),
                            None => Target::Opaque("an unusual default export"),
                        },
                    };
                    m.exports.push(Export {
                        name: "default",
                        offset: e.span.start,
                        target,
                    });
                }
                _ => {}
            }
        }
        m
    }

    fn bind_function(&mut self, f: &'a Function<'a>) {
        if let Some(name) = f.name() {
            self.bindings.insert(name.as_str(), Binding::Function(f));
        }
    }

    /// Bind the names of `pattern = init`; with `export_at`, also export them.
    fn bind_pattern(
        &mut self,
        pattern: &'a BindingPattern<'a>,
        init: Option<&'a Expression<'a>>,
        export_at: Option<u32>,
    ) {
        if let BindingPattern::BindingIdentifier(id) = pattern {
            let name = id.name.as_str();
            self.bindings
                .insert(name, init.map_or(Binding::Other, Binding::Value));
            if let Some(offset) = export_at {
                let target = init.map_or(Target::Opaque("declared without a value"), Target::Expr);
                self.exports.push(Export {
                    name,
                    offset,
                    target,
                });
            }
            return;
        }
        for id in pattern.get_binding_identifiers() {
            let name = id.name.as_str();
            self.bindings.insert(name, Binding::Other);
            if let Some(offset) = export_at {
                self.exports.push(Export {
                    name,
                    offset,
                    target: Target::Opaque("destructured from another value"),
                });
            }
        }
    }

    /// The function a name is bound to in this file, following `const f = async () => ...`.
    pub fn local_function(&self, name: &str) -> Option<LocalFn<'a>> {
        match self.bindings.get(name)? {
            Binding::Function(f) => Some(LocalFn::Function(f)),
            Binding::Value(e) => match e.get_inner_expression() {
                Expression::FunctionExpression(f) => Some(LocalFn::Function(f)),
                Expression::ArrowFunctionExpression(_) => Some(LocalFn::Expr(e)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A function defined in this file.
#[derive(Clone, Copy)]
pub enum LocalFn<'a> {
    Function(&'a Function<'a>),
    /// An arrow function (as the expression that holds it).
    Expr(&'a Expression<'a>),
}
