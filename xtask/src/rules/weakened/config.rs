//! `xtask.toml` at the base and now: what the change loosened. An exemption, a public route
//! glob, or a guard, wrapper, factory, limiter, tenant source or check function added; a
//! command changed; a migration directory removed; what names the tenant or where routes
//! live changed. A change that only tightens (an exemption removed, a directory added) is
//! no loosening.

use crate::config::{CommandLine, Config, Exemption};

use super::code;

/// One loosening: the key, what changed, and a text to find its line by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loosened {
    pub key: &'static str,
    pub what: String,
    pub needle: String,
}

pub fn loosened(base: &Config, now: &Config) -> Vec<Loosened> {
    let mut out = Vec::new();
    let mut added = |key: &'static str, was: &[String], is: &[String], what: &str| {
        for n in is.iter().filter(|n| !was.contains(n)) {
            out.push(Loosened {
                key,
                what: format!("{what} {} added", code(n)),
                needle: n.clone(),
            });
        }
    };
    let names = |e: &[Exemption]| e.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    let (b, n) = (base, now);
    added(
        "tenancy.exempt_tables",
        &names(&b.tenancy.exempt_tables),
        &names(&n.tenancy.exempt_tables),
        "exempt table",
    );
    added(
        "routes.exempt",
        &names(&b.routes.exempt),
        &names(&n.routes.exempt),
        "exempt route glob",
    );
    added(
        "routes.public",
        &b.routes.public,
        &n.routes.public,
        "public route glob (no auth guard needed)",
    );
    added(
        "routes.auth_wrappers",
        &b.routes.auth_wrappers,
        &n.routes.auth_wrappers,
        "auth wrapper",
    );
    added(
        "routes.guard_calls",
        &b.routes.guard_calls,
        &n.routes.guard_calls,
        "guard call",
    );
    added(
        "routes.guarded_factories",
        &b.routes.guarded_factories,
        &n.routes.guarded_factories,
        "guarded factory",
    );
    added(
        "routes.rate_limiters",
        &b.routes.rate_limiters,
        &n.routes.rate_limiters,
        "rate limiter",
    );
    added(
        "tenancy.source_functions",
        &b.tenancy.source_functions,
        &n.tenancy.source_functions,
        "tenant source function",
    );
    added(
        "tenancy.check_functions",
        &b.tenancy.check_functions,
        &n.tenancy.check_functions,
        "tenant check function",
    );
    added(
        "tenancy.user_functions",
        &b.tenancy.user_functions,
        &n.tenancy.user_functions,
        "user function",
    );
    added(
        "tenancy.settings",
        &b.tenancy.settings,
        &n.tenancy.settings,
        "tenant setting",
    );
    // A place no longer read: what is there goes unchecked.
    let mut removed =
        |key: &'static str, was: &[String], is: &[String], what: &str, needle: &str| {
            for w in was.iter().filter(|w| !is.contains(w)) {
                out.push(Loosened {
                    key,
                    what: format!("{what} {} removed", code(w)),
                    needle: needle.into(),
                });
            }
        };
    removed(
        "migrations.dirs",
        &b.migrations.dirs,
        &n.migrations.dirs,
        "migration directory",
        "dirs",
    );
    removed(
        "routes.roots",
        &b.routes.roots,
        &n.routes.roots,
        "route root",
        "roots",
    );
    let mut command = |key: &'static str, was: &CommandLine, is: &CommandLine| {
        if was != is {
            out.push(Loosened {
                key,
                what: format!(
                    "command changed: {} → {}",
                    code(&was.to_string()),
                    code(&is.to_string())
                ),
                needle: key.rsplit('.').next().unwrap_or(key).to_string(),
            });
        }
    };
    command("commands.lint", &b.commands.lint, &n.commands.lint);
    command("commands.test", &b.commands.test, &n.commands.test);
    command("commands.setup", &b.commands.setup, &n.commands.setup);
    let mut changed = |key: &'static str, was: &str, is: &str| {
        if was != is {
            out.push(Loosened {
                key,
                what: format!("changed: {} → {}", code(was), code(is)),
                needle: key.rsplit('.').next().unwrap_or(key).to_string(),
            });
        }
    };
    changed("tenancy.column", &b.tenancy.column, &n.tenancy.column);
    changed(
        "tenancy.root_table",
        &b.tenancy.root_table,
        &n.tenancy.root_table,
    );
    changed(
        "tenancy.membership_table",
        &b.tenancy.membership_table,
        &n.tenancy.membership_table,
    );
    changed(
        "tenancy.membership_tenant_column",
        &b.tenancy.membership_tenant_column,
        &n.tenancy.membership_tenant_column,
    );
    changed(
        "tenancy.membership_user_column",
        &b.tenancy.membership_user_column,
        &n.tenancy.membership_user_column,
    );
    changed("routes.root", &b.routes.root, &n.routes.root);
    if !b.routes.server_actions_dir.is_empty() {
        changed(
            "routes.server_actions_dir",
            &b.routes.server_actions_dir,
            &n.routes.server_actions_dir,
        );
    }
    changed(
        "contracts.package",
        &b.contracts.package,
        &n.contracts.package,
    );
    changed(
        "live.become_tenant",
        &b.live.become_tenant,
        &n.live.become_tenant,
    );
    out
}

/// The line of a loosening in the new `xtask.toml`: the first line that holds its needle.
pub fn line(text: &str, l: &Loosened) -> Option<u32> {
    let quoted = format!("\"{}\"", l.needle);
    text.lines()
        .position(|t| t.contains(&quoted))
        .or_else(|| {
            text.lines()
                .position(|t| t.trim_start().starts_with(&l.needle))
        })
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn whats(base: &str, now: &str) -> Vec<String> {
        let (b, n) = (Config::parse(base).unwrap(), Config::parse(now).unwrap());
        loosened(&b, &n)
            .into_iter()
            .map(|l| format!("{}: {}", l.key, l.what))
            .collect()
    }

    #[test]
    fn loosenings_are_named() {
        let now = "[tenancy]\nexempt_tables = [{ table = \"public.invoices\", reason = \"x\" }]\n[routes]\npublic = [\"public/**\", \"admin/**\"]\nguard_calls = [\"noop\"]\n[commands]\nlint = \"true\"\n[migrations]\ndirs = [\"db\"]\n";
        expect_test::expect![[r#"
            [
                "tenancy.exempt_tables: exempt table `public.invoices` added",
                "routes.public: public route glob (no auth guard needed) `admin/**` added",
                "routes.guard_calls: guard call `noop` added",
                "migrations.dirs: migration directory `supabase/migrations` removed",
                "commands.lint: command changed: `pnpm --filter api lint` → `true`",
            ]
        "#]]
        .assert_debug_eq(&whats("", now));
        let l = &loosened(&Config::default(), &Config::parse(now).unwrap())[0];
        assert_eq!(line(now, l), Some(2));
    }

    #[test]
    fn a_route_root_removed_is_a_loosening() {
        let base = "[routes]\nroots = [\"apps/admin/app/api\", \"apps/web/app/api\"]\n";
        let now = "[routes]\nroots = [\"apps/web/app/api\", \"apps/shop/app/api\"]\n";
        assert_eq!(
            whats(base, now),
            ["routes.roots: route root `apps/admin/app/api` removed"]
        );
    }

    #[test]
    fn tightening_is_no_loosening() {
        let base = "[tenancy]\nexempt_tables = [{ table = \"plans\", reason = \"price list\" }]\n[routes]\npublic = [\"public/**\", \"webhooks/**\"]\n";
        let now = "[routes]\npublic = [\"public/**\"]\n[migrations]\ndirs = [\"supabase/migrations\", \"db/migrations\"]\n[commands]\ntimeout_secs = 60\n";
        assert_eq!(whats(base, now), Vec::<String>::new());
    }
}
