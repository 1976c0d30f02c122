//! Migrations that were applied: a file of a migration history that exists at the base
//! has run on databases (Supabase records it by its version and never runs it again), so
//! editing, renaming or deleting it changes nothing there — the fix is a new migration. A
//! new migration whose version sorts before the newest one at the base is applied out of
//! order, or refused by `supabase db push`: a warning.

use crate::model::{ChangeStatus, ChangedFile, Finding, Rule, Severity};

use super::{code, first_difference};

fn in_history(dirs: &[String], path: &str) -> bool {
    path.ends_with(".sql")
        && dirs.iter().any(|d| {
            path.strip_prefix(d.trim_end_matches('/'))
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|r| !r.contains('/'))
        })
}

/// The version of a migration file: the digits its name starts with.
pub fn version(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let end = name
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(name.len());
    (end > 0).then(|| &name[..end])
}

const FIX: &str =
    "databases that ran it never run it again: restore it and put the change in a new migration";

/// Judge the changed files. `before` gives a file's text at the base; `newest_at_base` the
/// newest version of a history directory at the base; `after` a file's text now.
pub fn judge(
    dirs: &[String],
    files: &[ChangedFile],
    before: &dyn Fn(&str) -> Option<String>,
    after: &dyn Fn(&str) -> Option<String>,
    newest_at_base: &dyn Fn(&str) -> Option<String>,
) -> Vec<Finding> {
    let edited = |path: &str, line: Option<u32>, what: String| {
        Finding::new(Rule::AppliedMigrationEdited, Severity::Error, what).at(path, line)
    };
    let mut out = Vec::new();
    for f in files {
        match f.status {
            ChangeStatus::Modified if in_history(dirs, &f.path) => {
                let line = match (before(&f.path), after(&f.path)) {
                    (Some(b), Some(a)) => first_difference(&b, &a),
                    _ => None,
                };
                out.push(edited(
                    &f.path,
                    line,
                    format!("migration that existed at the base was edited: {FIX}"),
                ));
            }
            ChangeStatus::Deleted if in_history(dirs, &f.path) => out.push(edited(
                &f.path,
                None,
                format!("migration that existed at the base was deleted: {FIX}"),
            )),
            ChangeStatus::Renamed
                if f.from.as_deref().is_some_and(|from| in_history(dirs, from)) =>
            {
                out.push(edited(
                    &f.path,
                    None,
                    format!(
                        "migration that existed at the base was renamed from {}: {FIX}",
                        code(f.from.as_deref().unwrap_or_default())
                    ),
                ))
            }
            ChangeStatus::Added | ChangeStatus::Renamed if in_history(dirs, &f.path) => {
                let dir = f.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                if let (Some(v), Some(newest)) = (version(&f.path), newest_at_base(dir)) {
                    if v < newest.as_str() {
                        out.push(
                            Finding::new(
                                Rule::AppliedMigrationEdited,
                                Severity::Warning,
                                format!(
                                    "new migration version {v} sorts before {newest}, the newest at the base: databases that are up to date apply it out of order (`supabase db push` refuses it without --include-all); give it a later timestamp"
                                ),
                            )
                            .at(&f.path, None),
                        );
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

    fn file(path: &str, status: ChangeStatus, from: Option<&str>) -> ChangedFile {
        ChangedFile {
            path: path.into(),
            status,
            from: from.map(str::to_string),
            target: None,
        }
    }

    fn run(files: &[ChangedFile]) -> Vec<String> {
        let dirs = vec!["supabase/migrations".to_string()];
        let before = |_: &str| Some("create table a (id int);\n".to_string());
        let after = |_: &str| {
            Some(
                "create table a (id int);\nalter table a disable row level security;\n".to_string(),
            )
        };
        let newest = |d: &str| (d == "supabase/migrations").then(|| "20250102000000".to_string());
        judge(&dirs, files, &before, &after, &newest)
            .iter()
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

    #[test]
    fn applied_migrations_edited_deleted_or_renamed_are_errors() {
        let m = run(&[
            file(
                "supabase/migrations/20250101000000_a.sql",
                ChangeStatus::Modified,
                None,
            ),
            file(
                "supabase/migrations/20250102000000_b.sql",
                ChangeStatus::Deleted,
                None,
            ),
            file(
                "supabase/migrations/20250103000000_c.sql",
                ChangeStatus::Renamed,
                Some("supabase/migrations/20250100000000_c.sql"),
            ),
        ]);
        assert_eq!(m.len(), 3, "{m:#?}");
        assert!(m[0].starts_with("error supabase/migrations/20250101000000_a.sql:2: migration that existed at the base was edited"), "{m:#?}");
        assert!(m[1].starts_with("error supabase/migrations/20250102000000_b.sql: migration that existed at the base was deleted"), "{m:#?}");
        assert!(
            m[2].contains("renamed from `supabase/migrations/20250100000000_c.sql`"),
            "{m:#?}"
        );
    }

    #[test]
    fn an_earlier_new_migration_warns_and_a_later_one_is_fine() {
        let m = run(&[
            file(
                "supabase/migrations/20250101120000_late.sql",
                ChangeStatus::Added,
                None,
            ),
            file(
                "supabase/migrations/20250105000000_new.sql",
                ChangeStatus::Added,
                None,
            ),
            file("supabase/seed.sql", ChangeStatus::Modified, None),
            file(
                "supabase/migrations/README.md",
                ChangeStatus::Modified,
                None,
            ),
        ]);
        assert_eq!(m.len(), 1, "{m:#?}");
        assert!(m[0].starts_with("warning supabase/migrations/20250101120000_late.sql: new migration version 20250101120000 sorts before 20250102000000"), "{m:#?}");
    }
}
