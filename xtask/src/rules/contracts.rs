//! New Zod schemas in the contracts package, listed in the handover (`file: Name`).
//!
//! A schema is an exported `const` whose value is a chain rooted at zod (`z.object(...)`,
//! `z.string().uuid()`), or at another schema of the package (`Pagination.extend(...)`,
//! an earlier schema of the same file, or a name imported by a relative path, which stays
//! inside the package).

use std::collections::HashSet;

use oxc_ast::ast::{
    BindingPattern, Declaration, Expression, ImportDeclarationSpecifier, Program, Statement,
};

/// Names of the exported schemas of one file, in source order.
pub fn schemas(program: &Program) -> Vec<String> {
    let mut roots: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for stmt in program.body.iter() {
        match stmt {
            Statement::ImportDeclaration(d) => {
                let source = d.source.value.as_str();
                let zod = source == "zod" || source.starts_with("zod/");
                if zod || source.starts_with('.') {
                    for s in d.specifiers.iter().flat_map(|s| s.iter()) {
                        let local = match s {
                            ImportDeclarationSpecifier::ImportSpecifier(s) => s.local.name.as_str(),
                            ImportDeclarationSpecifier::ImportDefaultSpecifier(s) => {
                                s.local.name.as_str()
                            }
                            ImportDeclarationSpecifier::ImportNamespaceSpecifier(s) => {
                                s.local.name.as_str()
                            }
                        };
                        roots.insert(local);
                    }
                }
            }
            Statement::VariableDeclaration(v) => {
                for d in v.declarations.iter() {
                    if let (BindingPattern::BindingIdentifier(id), Some(init)) = (&d.id, &d.init) {
                        if rooted_in(init, &roots) {
                            roots.insert(id.name.as_str());
                        }
                    }
                }
            }
            Statement::ExportDeclaration(e) => {
                if let Declaration::VariableDeclaration(v) = &e.declaration {
                    for d in v.declarations.iter() {
                        if let (BindingPattern::BindingIdentifier(id), Some(init)) =
                            (&d.id, &d.init)
                        {
                            if rooted_in(init, &roots) {
                                roots.insert(id.name.as_str());
                                out.push(id.name.to_string());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Is the innermost object of this call/member chain one of `roots`?
fn rooted_in(e: &Expression, roots: &HashSet<&str>) -> bool {
    let mut e = e.get_inner_expression();
    loop {
        e = match e {
            Expression::Identifier(id) => return roots.contains(id.name.as_str()),
            Expression::CallExpression(c) => c.callee.get_inner_expression(),
            other => match other.get_member_expr() {
                Some(m) => m.object().get_inner_expression(),
                None => return false,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use oxc_allocator::Allocator;

    use super::*;
    use crate::ts::{self, Source};

    #[test]
    fn exported_zod_chains_are_schemas() {
        let code = r#"
import { z } from "zod";
import { Pagination, Uuid } from "./common";
import { something } from "@other/lib";
export const ProjectStatus = z.enum(["active", "archived"]);
export type ProjectStatus = z.infer<typeof ProjectStatus>;
const ProjectName = z.string().trim().min(1);
export const CreateProjectInput = z.object({ name: ProjectName }).strict();
export const ListProjectsQuery = Pagination.extend({ status: ProjectStatus.optional() });
export const ById = Uuid;
export const Named = ProjectName.max(10);
export const LIMIT = 100;
export const helper = something.build();
export function notASchema() { return 1; }
"#;
        let alloc = Allocator::default();
        let src = Source::new("packages/contracts/src/projects.ts", code);
        let program = ts::parse(&alloc, &src).unwrap();
        assert_eq!(
            schemas(&program),
            [
                "ProjectStatus",
                "CreateProjectInput",
                "ListProjectsQuery",
                "ById",
                "Named"
            ]
        );
    }
}
