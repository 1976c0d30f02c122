//! ESLint and Vitest configuration files at the base and now. JavaScript and TypeScript
//! configs are read with oxc (JSON ones too, as an expression); every object property is
//! taken with the path of keys above it (`test.coverage.thresholds.lines`). The properties
//! that decide what the checks prove are compared one by one; the rest of the file is
//! compared as text with those properties and the comments cut out, and a difference there
//! (a preset dropped, `files` globs changed) is a warning: it may weaken, it cannot be decided.

use std::collections::{BTreeMap, BTreeSet};

use oxc_allocator::Allocator;
use oxc_ast::ast::{ArrayExpressionElement, CallExpression, Expression, ObjectProperty};
use oxc_ast_visit::{walk, Visit};
use oxc_span::{GetSpan, Span};

use crate::{model::Finding, ts};

use super::{code, line_at, undecided, weakened};

/// Which kind of configuration a repository path is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Eslint,
    EslintIgnore,
    Vitest,
}

pub fn kind(path: &str) -> Option<Kind> {
    if path.split('/').any(|p| p == "node_modules") {
        return None;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == ".eslintignore" {
        Some(Kind::EslintIgnore)
    } else if name.starts_with("eslint.config.") || name.starts_with(".eslintrc") {
        Some(Kind::Eslint)
    } else if ["vitest.config.", "vitest.workspace.", "vite.config."]
        .iter()
        .any(|p| name.starts_with(p))
    {
        Some(Kind::Vitest)
    } else {
        None
    }
}

/// A value as the config states it.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Num(f64),
    Bool(bool),
    List(Vec<Val>),
    /// Anything else, by its source text.
    Other(String),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Str(s) | Val::Other(s) => s.clone(),
            Val::Num(n) => n.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::List(l) => format!(
                "[{}]",
                l.iter().map(Val::text).collect::<Vec<_>>().join(", ")
            ),
        }
    }
    fn items(&self) -> Vec<Val> {
        match self {
            Val::List(l) => l.clone(),
            v => vec![v.clone()],
        }
    }
}

#[derive(Debug, Clone)]
struct Prop {
    path: Vec<String>,
    value: Val,
    line: u32,
    span: Span,
}

/// What a config file says: its properties, and the text of everything else.
struct Facts {
    props: Vec<Prop>,
    /// The rest of the file: the watched properties and comments cut out.
    rest: String,
}

struct Collect<'t> {
    text: &'t str,
    stack: Vec<String>,
    props: Vec<Prop>,
}

impl Collect<'_> {
    fn val(&self, e: &Expression) -> Val {
        match e.get_inner_expression() {
            Expression::StringLiteral(s) => Val::Str(s.value.to_string()),
            Expression::TemplateLiteral(t) if t.single_quasi().is_some() => {
                Val::Str(t.single_quasi().map(|q| q.to_string()).unwrap_or_default())
            }
            Expression::NumericLiteral(n) => Val::Num(n.value),
            Expression::BooleanLiteral(b) => Val::Bool(b.value),
            Expression::ArrayExpression(a) => Val::List(
                a.elements
                    .iter()
                    .map(|el| match el {
                        ArrayExpressionElement::SpreadElement(_)
                        | ArrayExpressionElement::Elision(_) => Val::Other(self.src(el.span())),
                        _ => el
                            .as_expression()
                            .map(|x| self.val(x))
                            .unwrap_or_else(|| Val::Other(self.src(el.span()))),
                    })
                    .collect(),
            ),
            other => Val::Other(self.src(other.span())),
        }
    }
    fn src(&self, span: Span) -> String {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl<'a> Visit<'a> for Collect<'_> {
    fn visit_object_property(&mut self, p: &ObjectProperty<'a>) {
        let key = p
            .key
            .static_name()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "[computed]".into());
        self.stack.push(key);
        self.props.push(Prop {
            path: self.stack.clone(),
            value: self.val(&p.value),
            line: line_at(self.text, p.span.start as usize),
            span: p.span,
        });
        walk::walk_object_property(self, p);
        self.stack.pop();
    }

    fn visit_call_expression(&mut self, c: &CallExpression<'a>) {
        // `globalIgnores([...])` of eslint/config is `{ ignores: [...] }`.
        if c.callee_name() == Some("globalIgnores") {
            if let Some(arg) = c.arguments.first().and_then(|a| a.as_expression()) {
                self.props.push(Prop {
                    path: vec!["ignores".into()],
                    value: self.val(arg),
                    line: line_at(self.text, c.span.start as usize),
                    span: arg.span(),
                });
            }
        }
        walk::walk_call_expression(self, c);
    }
}

/// Read a config: its properties and the text of the rest (the watched properties and
/// comments cut out, whitespace and commas dropped).
/// [`read_here`] on a thread with the code reader's stack for this text.
fn read(
    path: &str,
    text: &str,
    watched: &(dyn Fn(&[String]) -> bool + Sync),
) -> Result<Facts, String> {
    ts::with_stack_for(text.as_bytes(), || read_here(path, text, watched))
}

fn read_here(
    path: &str,
    text: &str,
    watched: &(dyn Fn(&[String]) -> bool + Sync),
) -> Result<Facts, String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let json = name == ".eslintrc" || name.ends_with(".json");
    // JSON is read as a JavaScript expression; the prefix keeps lines where they are.
    let (src_path, src_text) = if json {
        ("config.js".to_string(), format!("({text})"))
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        return Err("a YAML config is not read".into());
    } else {
        (path.to_string(), text.to_string())
    };
    let alloc = Allocator::default();
    let src = ts::Source::new(&src_path, &src_text);
    let program = ts::parse(&alloc, &src).map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let mut c = Collect {
        text: &src_text,
        stack: Vec::new(),
        props: Vec::new(),
    };
    c.visit_program(&program);
    let mut cuts: Vec<Span> = program.comments.iter().map(|c| c.span).collect();
    cuts.extend(c.props.iter().filter(|p| watched(&p.path)).map(|p| p.span));
    cuts.sort_by_key(|s| s.start);
    let mut rest = String::new();
    let mut at = 0usize;
    for s in cuts {
        let (a, b) = (s.start as usize, s.end as usize);
        if a > at {
            rest.push_str(&src_text[at..a]);
        }
        at = at.max(b);
    }
    rest.push_str(&src_text[at.min(src_text.len())..]);
    rest.retain(|ch| !ch.is_whitespace() && ch != ',');
    Ok(Facts {
        props: c.props,
        rest,
    })
}

/// Judge a changed config file: its text at the base and now.
pub fn judge(path: &str, before: &str, after: &str) -> Vec<Finding> {
    match kind(path) {
        Some(Kind::EslintIgnore) => ignore_file(path, before, after),
        Some(Kind::Eslint) => eslint(path, before, after),
        Some(Kind::Vitest) => vitest(path, before, after),
        None => Vec::new(),
    }
}

fn ignore_file(path: &str, before: &str, after: &str) -> Vec<Finding> {
    let old: BTreeSet<&str> = before.lines().map(str::trim).collect();
    after
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#') && !old.contains(l)
        })
        .map(|(n, l)| {
            weakened(
                path,
                Some(n as u32 + 1),
                format!("eslint now ignores {}", code(l.trim())),
            )
        })
        .collect()
}

/// Both sides read, or a warning that the change could not be judged.
fn both(
    path: &str,
    before: &str,
    after: &str,
    watched: &(dyn Fn(&[String]) -> bool + Sync),
) -> Result<(Facts, Facts), Vec<Finding>> {
    match (read(path, before, watched), read(path, after, watched)) {
        (Ok(b), Ok(a)) => Ok((b, a)),
        (Err(why), _) | (_, Err(why)) => Err(vec![undecided(
            path,
            None,
            format!("this check configuration changed and could not be read ({why}): review whether it weakens lint or tests"),
        )]),
    }
}

fn rest_changed(path: &str, before: &str, after: &str, what: &str) -> Option<Finding> {
    (before != after).then(|| {
        undecided(
            path,
            None,
            format!("{what} changed in a way that cannot be judged (presets, plugins, `files` or `include` globs): review whether it weakens the check"),
        )
    })
}

/// `off`/`warn`/`error` (or 0/1/2, or the first item of an array) as 0..=2.
fn level(v: &Val) -> Option<u8> {
    match v {
        Val::Str(s) => match s.as_str() {
            "off" => Some(0),
            "warn" => Some(1),
            "error" => Some(2),
            _ => None,
        },
        Val::Num(n) if (0.0..=2.0).contains(n) && n.fract() == 0.0 => Some(*n as u8),
        Val::List(l) => l.first().and_then(level),
        _ => None,
    }
}

const LEVELS: [&str; 3] = ["off", "warn", "error"];

fn is_rule(path: &[String]) -> bool {
    path.len() >= 2 && path[path.len() - 2] == "rules"
}

fn is_ignores(path: &[String]) -> bool {
    path.last()
        .is_some_and(|k| k == "ignores" || k == "ignorePatterns")
}

fn eslint(path: &str, before: &str, after: &str) -> Vec<Finding> {
    let watched = |p: &[String]| is_rule(p) || is_ignores(p);
    let (old, new) = match both(path, before, after, &watched) {
        Ok(x) => x,
        Err(f) => return f,
    };
    let rules = |f: &Facts| -> BTreeMap<String, Prop> {
        f.props
            .iter()
            .filter(|p| is_rule(&p.path))
            .map(|p| (p.path.last().cloned().unwrap_or_default(), p.clone()))
            .collect()
    };
    let (old_rules, new_rules) = (rules(&old), rules(&new));
    let mut out = Vec::new();
    for (name, n) in &new_rules {
        if old_rules.get(name).is_some_and(|o| o.value == n.value) {
            continue;
        }
        let now = level(&n.value);
        match (old_rules.get(name), now) {
            (Some(o), Some(now)) => match level(&o.value) {
                Some(was) if now < was => out.push(weakened(
                    path,
                    Some(n.line),
                    format!(
                        "eslint rule {} lowered from {} to {}",
                        code(name),
                        LEVELS[was as usize],
                        LEVELS[now as usize]
                    ),
                )),
                Some(was) if now == was && o.value != n.value => out.push(undecided(
                    path,
                    Some(n.line),
                    format!(
                        "eslint rule {}: options changed from {} to {}; review whether it is looser",
                        code(name),
                        code(&o.value.text()),
                        code(&n.value.text())
                    ),
                )),
                _ => {}
            },
            (None, Some(now)) if now < 2 => out.push(weakened(
                path,
                Some(n.line),
                format!(
                    "eslint rule {} set to {} (a preset may have it at error)",
                    code(name),
                    LEVELS[now as usize]
                ),
            )),
            (_, None) => out.push(undecided(
                path,
                Some(n.line),
                format!(
                    "eslint rule {} set to {}, which is not a level this check can read",
                    code(name),
                    code(&n.value.text())
                ),
            )),
            _ => {}
        }
    }
    for (name, o) in &old_rules {
        if !new_rules.contains_key(name) && level(&o.value).is_some_and(|l| l > 0) {
            out.push(weakened(
                path,
                None,
                format!(
                    "eslint rule {} removed (it was {})",
                    code(name),
                    code(&o.value.text())
                ),
            ));
        }
    }
    let ignores = |f: &Facts| -> Vec<(Val, u32)> {
        f.props
            .iter()
            .filter(|p| is_ignores(&p.path))
            .flat_map(|p| p.value.items().into_iter().map(move |v| (v, p.line)))
            .collect()
    };
    let old_ignores: Vec<Val> = ignores(&old).into_iter().map(|(v, _)| v).collect();
    for (v, line) in ignores(&new) {
        if !old_ignores.contains(&v) {
            out.push(weakened(
                path,
                Some(line),
                format!("eslint now ignores {}", code(&v.text())),
            ));
        }
    }
    out.extend(rest_changed(
        path,
        &old.rest,
        &new.rest,
        "the eslint config",
    ));
    by_line(out)
}

/// Findings in the order of the file; those without a line last.
fn by_line(mut out: Vec<Finding>) -> Vec<Finding> {
    out.sort_by_key(|f| f.line.unwrap_or(u32::MAX));
    out
}

const THRESHOLDS: [&str; 4] = ["lines", "functions", "branches", "statements"];

fn is_threshold(path: &[String]) -> bool {
    let last = path.last().map(String::as_str).unwrap_or("");
    path.iter().any(|k| k == "thresholds")
        || (THRESHOLDS.contains(&last) && path.iter().any(|k| k == "coverage"))
}

fn vitest(path: &str, before: &str, after: &str) -> Vec<Finding> {
    let key = |p: &[String], k: &str| p.last().is_some_and(|l| l == k);
    let watched = |p: &[String]| key(p, "exclude") || key(p, "passWithNoTests") || is_threshold(p);
    let (old, new) = match both(path, before, after, &watched) {
        Ok(x) => x,
        Err(f) => return f,
    };
    let mut out = Vec::new();
    let find = |f: &Facts, path: &[String]| f.props.iter().find(|p| p.path == path).cloned();
    for p in &new.props {
        let dotted = p.path.join(".");
        if key(&p.path, "exclude") {
            let was = find(&old, &p.path)
                .map(|o| o.value.items())
                .unwrap_or_default();
            for v in p.value.items() {
                if !was.contains(&v) {
                    out.push(weakened(
                        path,
                        Some(p.line),
                        format!(
                            "{} gained {}: {}",
                            code(&dotted),
                            code(&v.text()),
                            if p.path.iter().any(|k| k == "coverage") {
                                "those files no longer count for coverage"
                            } else {
                                "those files are no longer tested"
                            }
                        ),
                    ));
                }
            }
        } else if key(&p.path, "passWithNoTests") {
            let was = find(&old, &p.path).map(|o| o.value);
            if p.value != Val::Bool(false) && was != Some(p.value.clone()) {
                out.push(weakened(
                    path,
                    Some(p.line),
                    format!(
                        "{} set to {}: a run where no test ran now passes",
                        code(&dotted),
                        code(&p.value.text())
                    ),
                ));
            }
        } else if is_threshold(&p.path) {
            if let (
                Some(Prop {
                    value: Val::Num(was),
                    ..
                }),
                Val::Num(now),
            ) = (find(&old, &p.path), &p.value)
            {
                if now < &was {
                    out.push(weakened(
                        path,
                        Some(p.line),
                        format!(
                            "coverage threshold {} lowered from {was} to {now}",
                            code(&dotted)
                        ),
                    ));
                }
            }
        }
    }
    for o in &old.props {
        let gone = !new.props.iter().any(|p| p.path == o.path);
        if gone && is_threshold(&o.path) && matches!(o.value, Val::Num(_)) {
            out.push(weakened(
                path,
                None,
                format!(
                    "coverage threshold {} removed (it was {})",
                    code(&o.path.join(".")),
                    o.value.text()
                ),
            ));
        }
    }
    out.extend(rest_changed(
        path,
        &old.rest,
        &new.rest,
        "the vitest config",
    ));
    by_line(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn msgs(f: &[Finding]) -> Vec<String> {
        f.iter()
            .map(|f| {
                format!(
                    "{} {}: {}",
                    f.severity.as_str(),
                    f.location().unwrap_or_default(),
                    f.message
                )
            })
            .collect()
    }

    const FLAT: &str = "import js from '@eslint/js';\nexport default [\n  js.configs.recommended,\n  {\n    ignores: ['dist/**'],\n  },\n  {\n    rules: {\n      'no-console': 'error',\n      eqeqeq: ['error', 'always'],\n      'no-debugger': 'warn',\n    },\n  },\n];\n";

    #[test]
    fn eslint_rules_turned_down_or_off_and_new_ignores_are_named() {
        let after = FLAT
            .replace("'no-console': 'error'", "'no-console': 'off'")
            .replace("eqeqeq: ['error', 'always']", "eqeqeq: [1, 'always']")
            .replace("['dist/**']", "['dist/**', 'src/legacy/**']");
        expect_test::expect![[r#"
            [
                "error eslint.config.mjs:5: eslint now ignores `src/legacy/**`",
                "error eslint.config.mjs:9: eslint rule `no-console` lowered from error to off",
                "error eslint.config.mjs:10: eslint rule `eqeqeq` lowered from error to warn",
            ]
        "#]]
        .assert_debug_eq(&msgs(&judge("eslint.config.mjs", FLAT, &after)));
    }

    #[test]
    fn eslint_rules_removed_added_off_and_global_ignores() {
        let after = FLAT
            .replace(
                "      'no-console': 'error',\n",
                "      '@typescript-eslint/no-explicit-any': 'off',\n",
            )
            .replace(
                "  {\n    ignores: ['dist/**'],\n  },\n",
                "  globalIgnores(['dist/**', 'apps/api/**']),\n",
            );
        let m = msgs(&judge("eslint.config.mjs", FLAT, &after));
        assert!(m.contains(&"error eslint.config.mjs:7: eslint rule `@typescript-eslint/no-explicit-any` set to off (a preset may have it at error)".to_string()), "{m:#?}");
        assert!(
            m.contains(
                &"error eslint.config.mjs: eslint rule `no-console` removed (it was `error`)"
                    .to_string()
            ),
            "{m:#?}"
        );
        assert!(
            m.iter()
                .any(|m| m.contains("eslint now ignores `apps/api/**`")),
            "{m:#?}"
        );
        assert!(!m.iter().any(|m| m.contains("`dist/**`")), "{m:#?}");
        // An object of ignores rewritten as a call is more than the facts: said, not judged.
        assert!(m.last().unwrap().starts_with("warning"), "{m:#?}");
    }

    #[test]
    fn a_stricter_eslint_config_is_no_finding() {
        let after = FLAT
            .replace("'no-debugger': 'warn'", "'no-debugger': 'error'")
            .replace(
                "    },\n  },\n];",
                "      'no-var': 'error',\n    },\n  },\n];",
            )
            .replace("// nothing", "");
        assert_eq!(
            msgs(&judge("eslint.config.mjs", FLAT, &after)),
            Vec::<String>::new()
        );
        // A level this reader cannot evaluate, unchanged, is no finding either.
        let constant = FLAT.replace("'no-debugger': 'warn'", "'no-debugger': WARN");
        assert!(judge(
            "eslint.config.mjs",
            &constant,
            &constant.replace("\n];", "\n];\n")
        )
        .is_empty());
        let commented = FLAT.replace("export default [", "// the lint rules\nexport default [");
        assert_eq!(
            msgs(&judge("eslint.config.mjs", FLAT, &commented)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_dropped_preset_or_unreadable_config_is_a_warning() {
        let after = FLAT.replace("  js.configs.recommended,\n", "");
        expect_test::expect![[r#"
            [
                "warning eslint.config.mjs: the eslint config changed in a way that cannot be judged (presets, plugins, `files` or `include` globs): review whether it weakens the check",
            ]
        "#]]
        .assert_debug_eq(&msgs(&judge("eslint.config.mjs", FLAT, &after)));
        let broken = judge("eslint.config.mjs", FLAT, "export default [");
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].severity, crate::model::Severity::Warning);
    }

    #[test]
    fn eslintrc_json_and_eslintignore() {
        let before = "{\n  \"extends\": [\"next\"],\n  \"rules\": {\n    \"no-console\": 2\n  },\n  \"ignorePatterns\": [\"dist\"]\n}\n";
        let after = before
            .replace("\"no-console\": 2", "\"no-console\": 0")
            .replace("[\"dist\"]", "[\"dist\", \"src\"]");
        let m = msgs(&judge("apps/api/.eslintrc.json", before, &after));
        assert_eq!(m, [
            "error apps/api/.eslintrc.json:4: eslint rule `no-console` lowered from error to off",
            "error apps/api/.eslintrc.json:6: eslint now ignores `src`",
        ]);
        let m = msgs(&judge(
            ".eslintignore",
            "dist\n",
            "dist\n# generated\nsrc/app/\n",
        ));
        assert_eq!(m, ["error .eslintignore:3: eslint now ignores `src/app/`"]);
    }

    const VITEST: &str = "import { defineConfig } from 'vitest/config';\nexport default defineConfig({\n  test: {\n    include: ['src/**/*.test.ts'],\n    exclude: ['node_modules/**'],\n    coverage: {\n      thresholds: { lines: 80, branches: 70 },\n    },\n  },\n});\n";

    #[test]
    fn vitest_excludes_pass_with_no_tests_and_lowered_thresholds_are_named() {
        let after = VITEST
            .replace(
                "['node_modules/**']",
                "['node_modules/**', 'src/billing/**']",
            )
            .replace("lines: 80", "lines: 10")
            .replace("    include:", "    passWithNoTests: true,\n    include:");
        expect_test::expect![[r#"
            [
                "error apps/api/vitest.config.ts:4: `test.passWithNoTests` set to `true`: a run where no test ran now passes",
                "error apps/api/vitest.config.ts:6: `test.exclude` gained `src/billing/**`: those files are no longer tested",
                "error apps/api/vitest.config.ts:8: coverage threshold `test.coverage.thresholds.lines` lowered from 80 to 10",
            ]
        "#]]
        .assert_debug_eq(&msgs(&judge("apps/api/vitest.config.ts", VITEST, &after)));
    }

    #[test]
    fn a_stricter_vitest_config_is_no_finding_and_include_changes_warn() {
        let after = VITEST.replace("lines: 80", "lines: 90");
        assert!(judge("vitest.config.ts", VITEST, &after).is_empty());
        let narrowed = VITEST.replace("src/**/*.test.ts", "src/a.test.ts");
        let f = judge("vitest.config.ts", VITEST, &narrowed);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, crate::model::Severity::Warning);
    }

    #[test]
    fn config_files_are_recognised() {
        assert_eq!(kind("apps/api/eslint.config.mjs"), Some(Kind::Eslint));
        assert_eq!(kind(".eslintrc.cjs"), Some(Kind::Eslint));
        assert_eq!(kind("apps/api/vitest.config.ts"), Some(Kind::Vitest));
        assert_eq!(kind("node_modules/x/eslint.config.js"), None);
        assert_eq!(kind("src/eslint.ts"), None);
    }
}
