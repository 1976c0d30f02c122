//! Test files at the base and now, read from the syntax tree (oxc): each `describe`/`it`/
//! `test` call (and `xit`, `fdescribe`, `.skip`, `.only`, `.todo`, `.skipIf`, `.fails`,
//! `.each`) is a suite or a test, named by its suites and its title (`invoices > lists
//! rows`), with the number of assertions (`expect(...)`, `expect.*`, `assert(...)`,
//! `assert.*`) in its body. A test that is newly skipped, focused or inverted (`.fails`), or
//! that has fewer assertions than at the base, weakens the suite. A test that is gone under
//! its old name is not judged (it may have been renamed); a deleted test file is (see
//! `deleted`).

use std::collections::HashMap;

use oxc_allocator::Allocator;
use oxc_ast::ast::{Argument, CallExpression, Expression};
use oxc_ast_visit::{walk, Visit};
use oxc_span::GetSpan;

use crate::{model::Finding, ts};

use super::{code, undecided, weakened};

/// Is this repository path a test file: `*.test.ts`, `*.spec.ts` (any code extension), or
/// a code file under a `__tests__` folder?
pub fn is_test_file(path: &str) -> bool {
    if !ts::is_code(path) || path.split('/').any(|p| p == "node_modules") {
        return false;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    name.contains(".test.") || name.contains(".spec.") || path.split('/').any(|p| p == "__tests__")
}

/// A test file deleted, or renamed so that it is no longer one.
pub fn deleted(path: &str, renamed_to: Option<&str>) -> Finding {
    match renamed_to {
        Some(to) => weakened(
            to,
            None,
            format!(
                "test file {} renamed to {}, which the test runner does not pick up as a test file",
                code(path),
                code(to)
            ),
        ),
        None => weakened(
            path,
            None,
            "test file deleted: its tests no longer run".to_string(),
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Skip,
    Todo,
    Only,
    /// `it.fails`: passes when its assertions fail.
    Fails,
}

#[derive(Debug, Clone)]
struct Case {
    suite: bool,
    name: String,
    mode: Mode,
    /// How it is written: `it.skip`, `xit`, ...
    how: String,
    expects: usize,
    line: u32,
}

const TESTS: [&str; 6] = ["it", "test", "xit", "xtest", "fit", "ftest"];
const SUITES: [&str; 6] = [
    "describe",
    "suite",
    "context",
    "xdescribe",
    "fdescribe",
    "xcontext",
];

/// `it.skip.each` → ("it", ["skip", "each"], whether the callee is itself a call).
fn chain<'b>(e: &'b Expression<'_>) -> Option<(&'b str, Vec<&'b str>)> {
    match e {
        Expression::Identifier(id) => Some((id.name.as_str(), Vec::new())),
        Expression::StaticMemberExpression(m) => {
            let (root, mut props) = chain(&m.object)?;
            props.push(m.property.name.as_str());
            Some((root, props))
        }
        Expression::CallExpression(c) => chain(&c.callee),
        _ => None,
    }
}

struct Collect<'s, 'a> {
    src: &'s ts::Source<'a>,
    stack: Vec<String>,
    cases: Vec<Case>,
}

impl Collect<'_, '_> {
    fn title(&self, args: &[Argument]) -> String {
        match args.first().and_then(Argument::as_expression) {
            Some(Expression::StringLiteral(s)) => s.value.to_string(),
            Some(Expression::TemplateLiteral(t)) if t.single_quasi().is_some() => {
                t.single_quasi().map(|q| q.to_string()).unwrap_or_default()
            }
            Some(e) => self.src.snippet(e.span(), 80),
            None => "(untitled)".into(),
        }
    }
}

struct Assertions(usize);

impl<'a> Visit<'a> for Assertions {
    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        let root = match &c.callee {
            Expression::Identifier(id) => Some(id.name.as_str()),
            Expression::StaticMemberExpression(m) => match &m.object {
                Expression::Identifier(id) => Some(id.name.as_str()),
                _ => None,
            },
            _ => None,
        };
        if matches!(root, Some("expect" | "assert")) {
            self.0 += 1;
        }
        walk::walk_call_expression(self, c);
    }
}

impl<'a> Visit<'a> for Collect<'_, 'a> {
    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        let Some((root, props)) = chain(&c.callee) else {
            walk::walk_call_expression(self, c);
            return;
        };
        let suite = SUITES.contains(&root);
        if !suite && !TESTS.contains(&root) {
            walk::walk_call_expression(self, c);
            return;
        }
        // `it.each(table)` and `it.skipIf(cond)` return the function that registers the test.
        let factory = props
            .last()
            .is_some_and(|p| matches!(*p, "each" | "for" | "skipIf" | "runIf"));
        if factory && !matches!(c.callee, Expression::CallExpression(_)) {
            walk::walk_call_expression(self, c);
            return;
        }
        let mode = if root.starts_with('x')
            || props
                .iter()
                .any(|p| matches!(*p, "skip" | "skipIf" | "runIf"))
        {
            Mode::Skip
        } else if props.contains(&"todo") {
            Mode::Todo
        } else if root.starts_with('f') || props.contains(&"only") {
            Mode::Only
        } else if props.contains(&"fails") {
            Mode::Fails
        } else {
            Mode::Run
        };
        let title = self.title(&c.arguments);
        let name = self
            .stack
            .iter()
            .cloned()
            .chain([title.clone()])
            .collect::<Vec<_>>()
            .join(" > ");
        let how = std::iter::once(root)
            .chain(props.iter().copied())
            .collect::<Vec<_>>()
            .join(".");
        let line = self.src.line(c.span.start);
        if suite {
            self.cases.push(Case {
                suite,
                name,
                mode,
                how,
                expects: 0,
                line,
            });
            self.stack.push(title);
            for a in &c.arguments {
                self.visit_argument(a);
            }
            self.stack.pop();
        } else {
            let mut n = Assertions(0);
            for a in c.arguments.iter().skip(1) {
                n.visit_argument(a);
            }
            self.cases.push(Case {
                suite,
                name,
                mode,
                how,
                expects: n.0,
                line,
            });
        }
    }
}

/// [`read_here`] on a thread with the code reader's stack for this text.
fn read(path: &str, text: &str) -> Result<Vec<Case>, String> {
    ts::with_stack_for(text.as_bytes(), || read_here(path, text))
}

fn read_here(path: &str, text: &str) -> Result<Vec<Case>, String> {
    let alloc = Allocator::default();
    let src = ts::Source::new(path, text);
    let program = ts::parse(&alloc, &src).map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let mut c = Collect {
        src: &src,
        stack: Vec::new(),
        cases: Vec::new(),
    };
    c.visit_program(&program);
    Ok(c.cases)
}

/// Judge a test file that exists at the base (as `before`) and now (as `after`, at `path`).
pub fn compare(path: &str, before: &str, after: &str) -> Vec<Finding> {
    let (old, new) = match (read(path, before), read(path, after)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(why), _) | (_, Err(why)) => {
            return vec![undecided(
                path,
                None,
                format!("test file changed and could not be parsed ({why}): whether tests were skipped or assertions removed is not known"),
            )]
        }
    };
    // Same name more than once: matched in order.
    let key = |cases: &[Case]| -> HashMap<(bool, String, usize), Case> {
        let mut seen: HashMap<(bool, String), usize> = HashMap::new();
        cases
            .iter()
            .map(|c| {
                let n = seen.entry((c.suite, c.name.clone())).or_default();
                *n += 1;
                ((c.suite, c.name.clone(), *n), c.clone())
            })
            .collect()
    };
    let count = |cases: &[Case]| cases.iter().filter(|c| !c.suite).count();
    let (old_tests, new_tests) = (count(&old), count(&new));
    let old = key(&old);
    let new = key(&new);
    let mut out = Vec::new();
    if new_tests < old_tests {
        // Renamed tests keep the count; fewer tests means some are gone.
        let mut gone: Vec<&Case> = old
            .iter()
            .filter(|(k, c)| !c.suite && !new.contains_key(*k))
            .map(|(_, c)| c)
            .collect();
        gone.sort_by_key(|c| c.line);
        let names: Vec<String> = gone.iter().take(5).map(|c| code(&c.name)).collect();
        out.push(undecided(
            path,
            None,
            format!(
                "{} test(s) at the base, {new_tests} now: {} no longer found; if they were removed, that weakens the suite",
                old_tests,
                names.join(", ")
            ),
        ));
    }
    let mut new: Vec<_> = new.into_iter().collect();
    new.sort_by_key(|(_, c)| c.line);
    for (k, c) in new {
        let what = if c.suite { "suite" } else { "test" };
        let was = old.get(&k);
        match c.mode {
            Mode::Only if was.is_none_or(|w| w.mode != Mode::Only) => out.push(weakened(
                path,
                Some(c.line),
                format!(
                    "{what} {} focused with {}: every other test in the file is skipped",
                    code(&c.name),
                    code(&c.how)
                ),
            )),
            Mode::Skip | Mode::Todo
                if was.is_some_and(|w| matches!(w.mode, Mode::Run | Mode::Only)) =>
            {
                out.push(weakened(
                    path,
                    Some(c.line),
                    format!(
                        "{what} {} newly skipped with {}",
                        code(&c.name),
                        code(&c.how)
                    ),
                ))
            }
            Mode::Fails if was.is_some_and(|w| w.mode != Mode::Fails) => out.push(weakened(
                path,
                Some(c.line),
                format!(
                    "{what} {} now written with {}: it passes when its assertions fail",
                    code(&c.name),
                    code(&c.how)
                ),
            )),
            Mode::Run => {
                if let Some(w) = was.filter(|w| w.mode == Mode::Run && !c.suite) {
                    if c.expects < w.expects {
                        out.push(weakened(
                            path,
                            Some(c.line),
                            format!(
                                "test {} has {} assertion(s), {} at the base",
                                code(&c.name),
                                c.expects,
                                w.expects
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    const BASE: &str = r#"import { describe, it, expect } from 'vitest';

describe('invoices', () => {
  it('lists rows', async () => {
    const rows = await list();
    expect(rows).toHaveLength(2);
    expect(rows[0].tenant_id).toBe('a');
  });
  it('rejects other tenants', () => {
    expect(() => read('b')).toThrow();
  });
  it.each([1, 2])('pages %i', (n) => {
    expect(page(n)).toBeDefined();
  });
});

test('health', () => {
  assert.ok(true);
});
"#;

    fn msgs(after: &str) -> Vec<String> {
        compare("apps/api/src/invoices.test.ts", BASE, after)
            .iter()
            .map(|f| format!("{}: {}", f.location().unwrap_or_default(), f.message))
            .collect()
    }

    #[test]
    fn skipped_focused_and_emptied_tests_are_named() {
        let after = BASE
            .replace(
                "it('rejects other tenants'",
                "it.skip('rejects other tenants'",
            )
            .replace("test('health'", "test.only('health'")
            .replace("    expect(rows[0].tenant_id).toBe('a');\n", "");
        expect_test::expect![[r#"
            [
                "apps/api/src/invoices.test.ts:4: test `invoices > lists rows` has 1 assertion(s), 2 at the base",
                "apps/api/src/invoices.test.ts:8: test `invoices > rejects other tenants` newly skipped with `it.skip`",
                "apps/api/src/invoices.test.ts:16: test `health` focused with `test.only`: every other test in the file is skipped",
            ]
        "#]]
        .assert_debug_eq(&msgs(&after));
    }

    #[test]
    fn xit_todo_skipif_and_suites() {
        let after = BASE
            .replace("describe('invoices'", "describe.skip('invoices'")
            .replace(
                "test('health', () => {\n  assert.ok(true);\n});",
                "test.todo('health');",
            );
        let m = msgs(&after);
        assert_eq!(m.len(), 2, "{m:#?}");
        assert!(
            m[0].contains("suite `invoices` newly skipped with `describe.skip`"),
            "{m:#?}"
        );
        assert!(
            m[1].contains("test `health` newly skipped with `test.todo`"),
            "{m:#?}"
        );
        let fails = BASE.replace(
            "it('rejects other tenants'",
            "it.fails('rejects other tenants'",
        );
        let m = msgs(&fails);
        assert_eq!(m.len(), 1, "{m:#?}");
        assert!(m[0].contains("now written with `it.fails`"), "{m:#?}");
        let after = BASE
            .replace("it('lists rows'", "xit('lists rows'")
            .replace("it.each([1, 2])", "it.skipIf(process.env.CI).each([1, 2])");
        let m = msgs(&after);
        assert_eq!(m.len(), 2, "{m:#?}");
        assert!(m[0].contains("`xit`"), "{m:#?}");
        assert!(
            m[1].contains("`invoices > pages %i` newly skipped with `it.skipIf.each`"),
            "{m:#?}"
        );
    }

    #[test]
    fn a_renamed_or_added_or_stronger_test_is_no_finding() {
        let after = BASE
            .replace("it('lists rows'", "it('lists the tenant rows'")
            .replace(
                "test('health'",
                "test('new', () => { expect(1).toBe(1); });\ntest.skip('later', () => {});\ntest('health'",
            )
            .replace("expect(() => read('b')).toThrow();", "expect(() => read('b')).toThrow();\n    expect.assertions(1);");
        assert_eq!(msgs(&after), Vec::<String>::new());
        // Fewer tests: a warning naming those gone.
        let fewer = BASE.replace("  it('rejects other tenants', () => {\n    expect(() => read('b')).toThrow();\n  });\n", "");
        let m = msgs(&fewer);
        assert_eq!(m.len(), 1, "{m:#?}");
        assert!(
            m[0].contains(
                "4 test(s) at the base, 3 now: `invoices > rejects other tenants` no longer found"
            ),
            "{m:#?}"
        );
        // A comment or a string that says `.skip` is no skip.
        let after = BASE.replace("test('health'", "// it.skip('health')\ntest('health'");
        assert_eq!(msgs(&after), Vec::<String>::new());
    }

    #[test]
    fn test_files_are_recognised() {
        assert!(is_test_file("apps/api/src/a.test.ts"));
        assert!(is_test_file("apps/api/src/a.spec.tsx"));
        assert!(is_test_file("apps/api/src/__tests__/a.ts"));
        assert!(!is_test_file("apps/api/src/testing.ts"));
        assert!(!is_test_file("apps/api/src/a.test.md"));
        assert!(!is_test_file("node_modules/x/a.test.js"));
    }
}
