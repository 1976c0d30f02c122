//! `raw-sql-interpolation`: variables carried into SQL text or PostgREST filter strings.
//!
//! Looked for in every changed code file, from the syntax tree:
//! - SQL built with a template literal or `+` and passed to `query(` / `execute(` / `raw(`
//!   (the text must look like SQL), or any non-constant text given to `unsafe(`,
//!   `$queryRawUnsafe(`, `$executeRawUnsafe(`, or a `sql.unsafe`/`sql.raw` tagged template
//!   with substitutions;
//! - `.rpc(` with a function name built from variables;
//! - `.or(` / `.filter(` with a filter string built from variables: PostgREST parses that
//!   string, so a `,` or `)` in the value adds conditions of the caller's choosing.
//!
//! A name bound to such a string (`const q = \`SELECT ... ${id}\`; client.query(q)`) is
//! followed within the file. Parameterised forms (`query('... $1', [id])`, the `sql`
//! tag of postgres.js / Prisma / drizzle, `.eq(col, value)`) are what the fix asks for.

use crate::rules::catalog::Rule;
use std::{collections::HashMap, sync::OnceLock};

use oxc_ast::ast::{
    Argument, BinaryOperator, BindingPattern, CallExpression, Expression, Program,
    TaggedTemplateExpression, VariableDeclarator,
};
use oxc_ast_visit::{walk, Visit};
use oxc_span::GetSpan;
use regex::Regex;

use crate::{
    model::{Finding, Severity},
    ts::Source,
};

pub const RULE: Rule = Rule::RawSqlInterpolation;

const QUERY_CALLS: [&str; 4] = ["query", "execute", "raw", "queryRaw"];
const UNSAFE_CALLS: [&str; 4] = [
    "unsafe",
    "$queryRawUnsafe",
    "$executeRawUnsafe",
    "queryRawUnsafe",
];
const FILTER_CALLS: [&str; 2] = ["or", "filter"];

pub fn scan(src: &Source, program: &Program) -> Vec<Finding> {
    let mut names = Names {
        built: HashMap::new(),
    };
    names.visit_program(program);
    let mut s = Scan {
        src,
        built: names.built,
        findings: Vec::new(),
    };
    s.visit_program(program);
    s.findings
}

fn sql_words() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"(?i)\b(select|insert\s+into|update|delete\s+from|where|values|order\s+by|group\s+by|join|create|drop|alter|truncate|grant)\b")
            .expect("sql words")
    })
}

/// The literal text of a string expression (what would look like SQL), and whether any
/// part of it comes from a variable.
fn string_parts(e: &Expression, text: &mut String) -> Option<bool> {
    match e.get_inner_expression() {
        Expression::StringLiteral(s) => {
            text.push_str(s.value.as_str());
            Some(false)
        }
        Expression::TemplateLiteral(t) => {
            for q in t.quasis.iter() {
                text.push_str(q.value.raw.as_str());
                text.push(' ');
            }
            Some(!t.expressions.is_empty())
        }
        Expression::BinaryExpression(b) if b.operator == BinaryOperator::Addition => {
            let l = string_parts(&b.left, text);
            let r = string_parts(&b.right, text);
            match (l, r) {
                (None, None) => None,
                (l, r) => Some(l.unwrap_or(true) || r.unwrap_or(true)),
            }
        }
        _ => None,
    }
}

/// Built from variables: a template with substitutions, or a concatenation with a non-literal.
fn interpolated(e: &Expression, built: &HashMap<String, String>) -> Option<String> {
    if let Expression::Identifier(id) = e.get_inner_expression() {
        return built.get(id.name.as_str()).cloned();
    }
    let mut text = String::new();
    (string_parts(e, &mut text)?).then_some(text)
}

/// Names bound to interpolated strings anywhere in the file: name → their literal text.
struct Names {
    built: HashMap<String, String>,
}

impl<'a> Visit<'a> for Names {
    fn visit_variable_declarator(&mut self, d: &VariableDeclarator<'a>) {
        if let (BindingPattern::BindingIdentifier(id), Some(init)) = (&d.id, &d.init) {
            if let Some(text) = interpolated(init, &self.built) {
                self.built.insert(id.name.to_string(), text);
            }
        }
        walk::walk_variable_declarator(self, d);
    }
}

struct Scan<'s, 'a> {
    src: &'s Source<'a>,
    built: HashMap<String, String>,
    findings: Vec<Finding>,
}

impl Scan<'_, '_> {
    fn report(&mut self, at: &dyn GetSpan, shown: &dyn GetSpan, what: &str, fix: &str) {
        let expr = self.src.snippet(shown.span(), 120);
        self.findings.push(
            Finding::new(
                RULE,
                Severity::Error,
                format!("{what}: {} — {fix}", code(&expr)),
            )
            .at(self.src.path, Some(self.src.line(at.span().start))),
        );
    }
}

/// Inline code that may itself hold backticks (template literals), as markdown writes it.
fn code(s: &str) -> String {
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

fn first_expr<'b, 'a>(args: &'b [Argument<'a>]) -> Option<&'b Expression<'a>> {
    args.first().and_then(Argument::as_expression)
}

impl<'a> Visit<'a> for Scan<'_, 'a> {
    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        let name = c.callee_name().unwrap_or("");
        let is_method = c.callee.get_member_expr().is_some();
        if QUERY_CALLS.contains(&name) {
            if let Some(arg) = first_expr(&c.arguments) {
                if interpolated(arg, &self.built).is_some_and(|t| sql_words().is_match(&t)) {
                    self.report(c, arg, &format!("SQL built from variables passed to {name}()"),
                        "pass the values as parameters (`query('... WHERE id = $1', [id])`) or use the parameterising sql`...` tag");
                }
            }
        } else if UNSAFE_CALLS.contains(&name) {
            if let Some(arg) = first_expr(&c.arguments) {
                let constant = matches!(arg.get_inner_expression(), Expression::StringLiteral(_))
                    || matches!(arg.get_inner_expression(), Expression::TemplateLiteral(t) if t.expressions.is_empty());
                if !constant {
                    self.report(c, arg, &format!("non-constant SQL passed to {name}()"),
                        "use the parameterising sql`...` tag; keep unsafe/raw calls for constant text only");
                }
            }
        } else if name == "rpc" && is_method {
            if let Some(arg) = first_expr(&c.arguments) {
                if interpolated(arg, &self.built).is_some() {
                    self.report(c, arg, "database function name built from variables in .rpc()",
                        "call a fixed function name (`.rpc('name', args)`); if it must vary, choose among constants");
                }
            }
        } else if FILTER_CALLS.contains(&name) && is_method {
            for arg in c.arguments.iter().filter_map(Argument::as_expression) {
                if interpolated(arg, &self.built).is_some() {
                    self.report(c, arg, &format!("PostgREST filter string built from variables in .{name}()"),
                        "PostgREST parses the string, so a `,` or `)` in the value adds conditions: use .eq()/.ilike()/.in() with the value as an argument");
                    break;
                }
            }
        }
        walk::walk_call_expression(self, c);
    }

    fn visit_tagged_template_expression(&mut self, t: &TaggedTemplateExpression<'a>) {
        let raw_tag = t
            .tag
            .get_member_expr()
            .and_then(|m| m.static_property_name())
            .is_some_and(|p| p == "unsafe" || p == "raw");
        if raw_tag && !t.quasi.expressions.is_empty() {
            self.report(t, t, "raw SQL tag with substitutions",
                "use the parameterising sql`...` tag; raw/unsafe tags paste values into the SQL text");
        }
        walk::walk_tagged_template_expression(self, t);
    }
}

#[cfg(test)]
mod tests {
    use oxc_allocator::Allocator;

    use super::*;
    use crate::ts;

    fn findings(code: &str) -> Vec<Finding> {
        let alloc = Allocator::default();
        let src = Source::new("apps/api/src/server/db.ts", code);
        let program = ts::parse(&alloc, &src).expect("test code parses");
        scan(&src, &program)
    }

    fn flagged(code: &str) -> Finding {
        let f = findings(code);
        assert_eq!(f.len(), 1, "{code}: {f:?}");
        assert_eq!((f[0].rule, f[0].severity), (RULE, Severity::Error));
        f.into_iter().next().unwrap()
    }

    #[test]
    fn interpolated_sql_in_query_is_flagged_with_the_expression() {
        let f = flagged("export async function q(client, id) {\n  return client.query(`SELECT * FROM projects WHERE id = '${id}'`);\n}\n");
        assert_eq!(f.line, Some(2));
        assert!(
            f.message
                .contains("`SELECT * FROM projects WHERE id = '${id}'`"),
            "{}",
            f.message
        );
        flagged("await pool.query('DELETE FROM t WHERE tenant_id = ' + tenantId);\n");
        flagged(
            "const text = `UPDATE t SET name = '${name}' WHERE id = 1`;\nawait db.execute(text);\n",
        );
    }

    #[test]
    fn parameterized_sql_is_not_flagged() {
        assert!(
            findings("await client.query('SELECT * FROM projects WHERE id = $1', [id]);\n")
                .is_empty()
        );
        assert!(findings("await sql`SELECT * FROM projects WHERE id = ${id}`;\n").is_empty());
        assert!(findings("await prisma.$queryRaw`SELECT * FROM t WHERE id = ${id}`;\n").is_empty());
        assert!(findings("const q = 'SELECT 1';\nawait client.query(q);\n").is_empty());
        // Not SQL: a URL built for some other `query`.
        assert!(findings("router.query(`/projects/${id}`);\n").is_empty());
    }

    #[test]
    fn unsafe_calls_and_raw_tags() {
        flagged("await sql.unsafe(`SELECT * FROM ${table}`);\n");
        flagged("await sql.unsafe(table);\n");
        flagged("await prisma.$queryRawUnsafe('SELECT * FROM t WHERE id = ' + id);\n");
        flagged("await db.execute(sql.raw`SELECT * FROM ${table}`);\n");
        assert!(findings("await sql.unsafe('SELECT 1');\n").is_empty());
    }

    #[test]
    fn rpc_names_built_from_variables() {
        let f = flagged("await supabase.rpc(`refresh_${kind}_stats`, { tenant_id });\n");
        assert!(f.message.contains(".rpc()"), "{}", f.message);
        assert!(findings("await supabase.rpc('refresh_stats', { tenant_id, kind });\n").is_empty());
    }

    #[test]
    fn postgrest_filter_strings() {
        let f = flagged("const { data } = await supabase.from('projects').select().or(`name.ilike.%${q}%,description.ilike.%${q}%`);\n");
        assert!(f.message.contains("name.ilike.%${q}%"), "{}", f.message);
        flagged(
            "await supabase.from('t').select().filter('id', 'in', '(' + ids.join(',') + ')');\n",
        );
        assert!(findings("await supabase.from('projects').select().ilike('name', `%${q}%`).eq('tenant_id', t);\n").is_empty());
        assert!(findings(
            "await supabase.from('t').select().or('status.eq.active,status.eq.draft');\n"
        )
        .is_empty());
        assert!(findings(
            "const xs = rows.filter((r) => r.id === id);\nconst s = z.string().or(z.number());\n"
        )
        .is_empty());
    }
}
