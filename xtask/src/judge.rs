//! The one judge step: facts in, verdicts and findings out.
//!
//! The gatherers only measure: each migration history as the static reader replayed it
//! (`gather::migrations`), the same history as Postgres left it with the isolation probe of
//! each tenant table (`gather::live`). Here, per history, the live schema replaces the static
//! one table by table *before* anything is judged, so nothing is ever retracted afterwards;
//! then one set of rules (`rules::tenant`) judges every table, whichever reader filled it.

use std::collections::BTreeSet;

use crate::{
    config::Config,
    gather::{
        live::{probe::Probe, LiveEvidence},
        migrations::History,
    },
    model::{Finding, LiveOutcome, MigrationEvidence, ProbeReport, Severity, Source, Verdict},
    repo::Changes,
    rules::{catalog::Rule, policy::Judge, storage, tenant, trust, views},
    schema::Table,
};

/// What became of the live check.
pub enum Live {
    /// Not part of this run (`--live off`, nothing new, `check-migrations`).
    NotRun,
    /// Wanted, but it could not run: why.
    Unavailable(String),
    Ran(LiveEvidence),
}

/// Judge the migration histories: the static facts, replaced per table by the live ones
/// where the live check ran.
pub fn migrations(
    histories: &[History],
    live: Live,
    config: &Config,
    changes: &Changes,
) -> MigrationEvidence {
    let mut ev = MigrationEvidence::default();
    let ran = match live {
        Live::Ran(l) => Some(l),
        Live::NotRun => None,
        Live::Unavailable(why) => {
            ev.live = LiveOutcome::Unavailable(why);
            None
        }
    };
    for h in histories {
        let live = ran
            .as_ref()
            .and_then(|l| l.histories.iter().find(|lh| lh.dir == h.dir));
        // The history's functions as Postgres has them where the live check ran (their
        // bodies read from `prosrc`), else as the static reader read them.
        let mut functions = h.schema.functions.clone();
        if let Some(l) = live {
            functions.extend(l.schema.functions.clone());
        }
        // Its views likewise (live: their query from `pg_get_viewdef`).
        let mut views = h.schema.views.clone();
        if let Some(l) = live {
            views.extend(l.schema.views.clone());
        }
        let judge = Judge::new(&config.tenancy)
            .with_functions(functions.values())
            .with_views(views.values());
        ev.files_read += h.files.len();
        ev.new_files.extend(h.new_files.iter().cloned());
        ev.findings.extend(h.findings.iter().cloned());
        ev.impact.extend(impact(h, &judge));

        let live_names: BTreeSet<_> = live
            .map(|l| l.schema.tables.keys().collect())
            .unwrap_or_default();
        let static_tables = h
            .schema
            .tables
            .values()
            .filter(|t| changes.all || t.touched_by.iter().any(|p| changes.is_new(p)))
            .filter(|t| !live_names.contains(&t.name))
            .filter(|t| !tenant::is_platform(&t.name))
            .map(|t| (t, Source::Static));
        let live_tables = live
            .into_iter()
            .flat_map(|l| l.schema.tables.values())
            .filter(|t| !tenant::is_platform(&t.name))
            .map(|t: &Table| (t, Source::Live));
        let bypass: &[String] = live.map_or(&[], |l| l.schema.bypass_roles.as_slice());
        let mut out = tenant::judge(
            static_tables.chain(live_tables),
            &config.tenancy,
            &judge,
            bypass,
        );

        // The trust chain, over the history's tables as the live catalog (else the static
        // reader) knows them.
        let lookup = |name: &str| {
            live.and_then(|l| {
                l.schema
                    .tables
                    .values()
                    .find(|t| t.name.to_string() == name)
            })
            .or_else(|| {
                h.schema
                    .tables
                    .values()
                    .find(|t| t.name.to_string() == name)
            })
        };
        // Storage buckets: the policies of storage.objects as Postgres has them where the
        // live check read them, else as the static reader replayed them.
        let objects_name = storage::objects_name();
        let objects = live
            .and_then(|l| l.schema.tables.get(&objects_name))
            .or_else(|| h.schema.tables.get(&objects_name));
        let buckets = storage::judge(
            &h.schema.buckets,
            objects,
            &config.storage,
            &judge,
            bypass,
            &functions,
            |b, policies| {
                changes.all
                    || changes.is_new(&b.origin.path)
                    || policies.iter().any(|p| changes.is_new(&p.origin.path))
            },
        );
        out.findings.extend(buckets.findings);
        ev.impact.extend(buckets.notes);
        // Views that show a tenant table with their owner's rights.
        out.findings.extend(views::judge(
            &views,
            |name| lookup(&name.to_string()),
            &config.tenancy,
            &judge,
            |v| changes.all || changes.is_new(&v.origin.path),
        ));
        // The storage probe: what Postgres let tenant A do to tenant B's objects.
        for (bucket, probe) in live.map_or(&[][..], |l| l.storage.as_slice()) {
            let public_read = config
                .storage
                .buckets
                .iter()
                .any(|b| b.name == *bucket && b.public_read);
            let origin = h.schema.buckets.get(bucket).map(|b| b.origin.clone());
            let at = |f: Finding| match &origin {
                Some(o) => f
                    .at(o.path.clone(), Some(o.line))
                    .on_table(objects_name.to_string()),
                None => f.on_table(objects_name.to_string()),
            };
            match probe {
                Probe::Leaks { leaks, .. } => {
                    // Reading a bucket declared public is its design.
                    let leaks: Vec<&String> = leaks
                        .iter()
                        .filter(|l| !(public_read && l.starts_with("tenant A read")))
                        .collect();
                    if !leaks.is_empty() {
                        out.findings.push(at(Finding::new(
                            Rule::PolicyNotTenantScoped,
                            Severity::Error,
                            format!(
                                "storage bucket `{bucket}`: live probe: {}; the policies of storage.objects let one tenant reach another's objects",
                                leaks.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        )));
                    }
                }
                Probe::Skipped(why) => out.findings.push(at(Finding::new(
                    Rule::LiveProbeSkipped,
                    Severity::Info,
                    format!("storage bucket `{bucket}`: live probe skipped: {why}"),
                ))),
                Probe::Isolated { .. } => ev.impact.push(format!(
                    "storage bucket `{bucket}`: probed live, tenant A could not read, overwrite or delete tenant B's objects"
                )),
            }
        }

        let self_join = live.and_then(|l| l.self_join.as_deref());
        let writers = trust::Writers {
            triggers: &h.schema.triggers,
            functions: &functions,
            root: crate::schema::QualName::from_config(&config.tenancy.root_table),
            views: &views,
        };
        trust::apply(
            &mut out.tables,
            &mut out.findings,
            lookup,
            &judge,
            bypass,
            self_join,
            &writers,
        );

        if let Some(l) = live {
            for report in out.tables.iter_mut().filter(|r| r.source == Source::Live) {
                // The tenant root is judged by its policies; the probe (tenant A reaching B's
                // rows of a table) is not run on it.
                let root = crate::schema::QualName::from_config(&config.tenancy.root_table);
                if report.verdict == Verdict::Exempt
                    || !report.tenant_column
                    || report.service_only
                    || report.name == root.to_string()
                {
                    continue;
                }
                let probe = l
                    .probes
                    .iter()
                    .find(|(n, _)| n.to_string() == report.name)
                    .map(|(_, p)| p);
                let (name, t) = match l
                    .schema
                    .tables
                    .iter()
                    .find(|(n, _)| n.to_string() == report.name)
                {
                    Some(found) => found,
                    None => continue,
                };
                let at = |f: Finding| {
                    f.at(t.origin.path.clone(), Some(t.origin.line))
                        .on_table(name.to_string())
                };
                report.probe = Some(match probe {
                    Some(Probe::Isolated {
                        identities,
                        refused: None,
                    }) => ProbeReport {
                        status: "probed",
                        reason: String::new(),
                        identities: identities.clone(),
                    },
                    // Postgres refuses every statement of a signed-in user on the table: what
                    // it allows is nothing, whatever the policies' text would let through.
                    // Only policy findings yield to that (they are kept as warnings: a latent
                    // hole once the error is fixed); any other error stands.
                    Some(Probe::Isolated {
                        identities,
                        refused: Some(why),
                    }) => {
                        let note = format!(
                            "live: Postgres refuses every statement of a signed-in user on {name} (reading its own row: {why}); tenant A reached none of tenant B's rows"
                        );
                        let other_errors = out.findings.iter().any(|f| {
                            f.table.as_deref() == Some(report.name.as_str())
                                && f.severity == Severity::Error
                                && f.rule != Rule::PolicyNotTenantScoped
                        });
                        if report.verdict == Verdict::Unprotected && !other_errors {
                            report.verdict = Verdict::Protected;
                            for f in out.findings.iter_mut().filter(|f| {
                                f.table.as_deref() == Some(report.name.as_str())
                                    && f.rule == Rule::PolicyNotTenantScoped
                            }) {
                                f.severity = Severity::Warning;
                                f.message.push_str(&format!(
                                    "; today Postgres refuses every statement of a signed-in user on this table ({why}), so nothing leaks, but fixing that error opens this policy"
                                ));
                            }
                        }
                        report.reason = Some(match report.reason.take() {
                            Some(r) => format!("{r}; {note}"),
                            None => note,
                        });
                        ProbeReport {
                            status: "probed",
                            reason: format!("refused: {why}"),
                            identities: identities.clone(),
                        }
                    }
                    Some(Probe::Leaks { leaks, identities }) => {
                        report.verdict = Verdict::Unprotected;
                        out.findings.push(at(Finding::new(
                            Rule::PolicyNotTenantScoped,
                            Severity::Error,
                            format!(
                                "live probe on {name}: {}; the policies let one tenant reach another's rows",
                                leaks.join(", ")
                            ),
                        )));
                        ProbeReport {
                            status: "probed",
                            reason: leaks.join(", "),
                            identities: identities.clone(),
                        }
                    }
                    Some(Probe::Skipped(why)) => {
                        let note = format!("live probe skipped: {why}");
                        report.reason = Some(match report.reason.take() {
                            Some(r) => format!("{r}; {note}"),
                            None => note.clone(),
                        });
                        out.findings.push(at(Finding::new(
                            Rule::LiveProbeSkipped,
                            Severity::Info,
                            format!("{name}: {note}"),
                        )));
                        ProbeReport {
                            status: "skipped",
                            reason: why.clone(),
                            identities: Vec::new(),
                        }
                    }
                    None => ProbeReport {
                        status: "not_run",
                        reason: "the live check did not reach this table".into(),
                        identities: Vec::new(),
                    },
                });
            }
        }
        ev.tables.extend(out.tables);
        ev.findings.extend(out.findings);
        let new_functions = h
            .schema
            .functions
            .values()
            .filter(|f| changes.is_new(&f.origin.path));
        ev.findings.extend(tenant::functions(new_functions));
    }
    if let Some(l) = ran {
        ev.findings.extend(l.findings);
        ev.live_notes.extend(l.notes);
        ev.live = if l.apply_failures > 0 {
            LiveOutcome::Failed(format!(
                "{} statement(s) rejected by {}",
                l.apply_failures, l.database
            ))
        } else {
            LiveOutcome::Applied(format!(
                "{}, {} statement(s) applied {}",
                l.database,
                l.statements,
                if l.scratch {
                    "in a scratch database, dropped afterwards"
                } else {
                    "in a rolled-back transaction"
                }
            ))
        };
    }
    ev
}

/// The history's impact lines, with each altered policy that is no longer tenant-scoped
/// said to be loosened.
fn impact(h: &History, judge: &Judge) -> Vec<String> {
    let mut lines = h.impact.clone();
    let scoped = |p: &crate::schema::Policy, names| {
        crate::schema::Command::EACH
            .iter()
            .filter(|c| p.command.covers(**c))
            .all(|c| {
                p.exprs_for(*c)
                    .iter()
                    .all(|(_, e)| judge.scoped(*e, names).is_ok())
            })
    };
    for a in &h.altered {
        if scoped(&a.before, &a.names) && !scoped(&a.after, &a.names) {
            if let Some(line) = lines.get_mut(a.impact_line) {
                *line = a.loosened.clone();
            }
        }
    }
    lines
}

/// The static check alone: read the histories and judge them (`check-migrations`, and the
/// tests of the reader).
pub fn static_migrations(
    repo: &std::path::Path,
    config: &Config,
    changes: &Changes,
) -> MigrationEvidence {
    let histories = crate::gather::migrations::read_static(repo, config, changes);
    migrations(&histories, Live::NotRun, config, changes)
}

/// One history given as bytes, judged statically (the fuzz target's entry point).
pub fn static_contents(
    files: &[(String, Vec<u8>)],
    config: &Config,
    changes: &Changes,
) -> MigrationEvidence {
    let h = crate::gather::migrations::read_contents(files, changes);
    migrations(&[h], Live::NotRun, config, changes)
}

/// Inline suppressions (`xtask-allow(rule-id): reason`), applied once to the judged evidence
/// so that every format shows them: read from the changed migration and code files (every
/// such file with `--all`) and from the files findings point at; see `rules::suppress`.
pub fn suppressions(root: &std::path::Path, ev: &mut crate::gather::Evidence) {
    use crate::rules::suppress;
    let mut paths: BTreeSet<String> = ev
        .changes
        .files
        .iter()
        .filter(|f| f.status != crate::model::ChangeStatus::Deleted)
        .map(|f| f.path.clone())
        .collect();
    let findings = crate::checklist::all_findings(ev);
    paths.extend(findings.filter_map(|f| f.path.clone()));
    if ev.changes.all {
        if let Ok(m) = &ev.migrations {
            paths.extend(m.new_files.iter().cloned());
        }
        if let Ok(r) = &ev.routes {
            paths.extend(r.routes.iter().map(|r| r.path.clone()));
        }
    }
    // Every file is read again (with `--all`, every migration): on the parser threads.
    let paths: Vec<String> = paths.into_iter().collect();
    let sups: Vec<_> = crate::gather::migrations::par_map(&paths, |p| suppress::scan_file(root, p))
        .into_iter()
        .flatten()
        .collect();
    if sups.is_empty() {
        return;
    }
    let mut used = vec![false; sups.len()];
    if let Ok(m) = &mut ev.migrations {
        let silenced = suppress::apply(&mut m.findings, &sups, &mut used);
        suppress::settle_tables(m, &silenced);
    }
    if let Ok(r) = &mut ev.routes {
        let silenced = suppress::apply(&mut r.findings, &sups, &mut used);
        suppress::settle_handlers(r, &silenced);
    }
    let problems = suppress::problems(&sups, &used);
    // Each problem goes with the findings of its file's kind (SQL with the migrations).
    for f in problems {
        let sql = f.path.as_deref().is_some_and(|p| p.ends_with(".sql"));
        match (&mut ev.migrations, &mut ev.routes) {
            (Ok(m), _) if sql => m.findings.push(f),
            (_, Ok(r)) if !sql => r.findings.push(f),
            (Ok(m), _) => m.findings.push(f),
            (_, Ok(r)) => r.findings.push(f),
            _ => {}
        }
    }
}
