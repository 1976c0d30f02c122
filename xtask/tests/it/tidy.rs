//! Repository rules, checked by `cargo test` (rust-analyzer's tidy habit): the rule
//! catalogue is the one source of rule ids, the README's rule table is generated from it, the
//! contract's rule ids are all in it, and the README's layout names the folders that exist.
//!
//! A generated section that is out of date fails with how to regenerate it:
//! `UPDATE_EXPECT=1 cargo test --test it tidy` rewrites it in place.

use std::path::{Path, PathBuf};

use xtask::rules::catalog::{self, Rule};

use crate::common::workspace;

const START: &str = "<!-- rules:start (generated from xtask/src/rules/catalog.rs) -->\n";
const END: &str = "<!-- rules:end -->";

/// Replace the text between the markers of `file`; with `UPDATE_EXPECT=1`, write it.
fn ensure_section(file: &Path, generated: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    let (Some(a), Some(b)) = (text.find(START), text.find(END)) else {
        panic!(
            "{}: the markers {START:?} and {END:?} are missing",
            file.display()
        );
    };
    let current = &text[a + START.len()..b];
    if current == generated {
        return;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let new = format!("{}{START}{generated}{}", &text[..a], &text[b..]);
        std::fs::write(file, new).unwrap();
        return;
    }
    panic!(
        "{} is out of date with the rule catalogue: run `UPDATE_EXPECT=1 cargo test --test it tidy` and commit the result",
        file.display()
    );
}

#[test]
fn readme_rule_table_is_the_catalogue() {
    ensure_section(&workspace().join("README.md"), &catalog::markdown_table());
}

/// The contract's rule ids (`../shared/contract.md`, beside the checkout) are all in the
/// catalogue. Without the contract (a checkout on its own) the test says so and passes,
/// except in CI, where the contract is always laid beside the checkout.
#[test]
fn every_contract_rule_id_is_in_the_catalogue() {
    let contract = workspace().join("../shared/contract.md");
    let Ok(text) = std::fs::read_to_string(&contract) else {
        assert!(
            std::env::var("CI").is_err(),
            "{} is missing in CI",
            contract.display()
        );
        eprintln!("skipped: {} not found", contract.display());
        return;
    };
    let section = text
        .split("## Rule ids")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the contract has a `## Rule ids` section");
    let ids: Vec<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.len() > 3 && w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && w.contains('-')
                || *w == "suppressed"
        })
        .collect();
    assert!(ids.len() >= 20, "too few ids read: {ids:?}");
    let missing: Vec<&&str> = ids
        .iter()
        .filter(|id| id.parse::<Rule>().is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "contract rule ids missing from the catalogue: {missing:?}"
    );
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.into_path())
        .collect()
}

/// A rule is reported only through the catalogue: no rule id is spelled as a string in the
/// code (where a typo would report a rule that does not exist, or miss the live merge).
#[test]
fn no_rule_id_is_spelled_outside_the_catalogue() {
    let src = workspace().join("xtask/src");
    let mut offenders = Vec::new();
    for file in rust_files(&src) {
        if file.ends_with("rules/catalog.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for r in Rule::ALL {
                if line.contains(&format!("\"{}\"", r.id())) {
                    offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use `Rule::...` from rules/catalog.rs instead of the id as text:\n{}",
        offenders.join("\n")
    );
}

/// The README's "Layout" block names only paths that exist, and every module folder of
/// `xtask/src` is in it.
#[test]
fn readme_layout_matches_the_folders() {
    let root = workspace();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split("## Layout")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("README has a Layout code block");
    let mut named = Vec::new();
    for line in block.lines() {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        for path in first.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            assert!(
                root.join(path).exists(),
                "README Layout names `{path}`, which does not exist"
            );
            named.push(path.trim_end_matches('/').to_string());
        }
    }
    for e in std::fs::read_dir(root.join("xtask/src")).unwrap().flatten() {
        if e.path().is_dir() {
            let p = format!("xtask/src/{}", e.file_name().to_string_lossy());
            assert!(
                named.contains(&p),
                "README Layout does not name the folder `{p}/`"
            );
        }
    }
}

/// git is started only through `repo::git_command`, which removes `GIT_DIR`, `GIT_WORK_TREE`
/// and the other variables that would point it at another repository than `--repo`. Test
/// modules (after `#[cfg(test)]`) may set up repositories as they like.
#[test]
fn git_is_started_only_through_repo_rs() {
    let src = workspace().join("xtask/src");
    let mut offenders = Vec::new();
    for file in rust_files(&src) {
        if file.ends_with("repo.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            if line.contains("Command::new(\"git\")") || line.contains("cmd!(sh, \"git") {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "start git with `repo::git_command(dir)`:\n{}",
        offenders.join("\n")
    );
}
