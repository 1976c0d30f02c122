//! `xtask.toml`: everything that is specific to one repository.
//!
//! Every key is optional; the defaults are the dashboard conventions of the contract
//! (`../shared/contract.md` § Configuration). A key the tool does not know is an error
//! that names the key, so a typo never silently falls back to a default.

use std::{fmt, path::Path};

use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "xtask.toml";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub tenancy: Tenancy,
    pub migrations: Migrations,
    pub routes: Routes,
    pub contracts: Contracts,
    pub commands: Commands,
    pub agent: Agent,
    pub prompt: Prompt,
    pub live: Live,
    pub storage: Storage,
}

/// Supabase Storage: the buckets whose objects need no tenant confinement for reading.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// `[[storage.buckets]]`: a bucket's own rules, each with a required reason.
    pub buckets: Vec<BucketConfig>,
}

/// One bucket of `[[storage.buckets]]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BucketConfig {
    /// The bucket's id (`storage.objects.bucket_id`).
    pub name: String,
    /// Reading its objects is open to everyone by design (avatars, public images); writes
    /// must still be confined to the tenant.
    pub public_read: bool,
    pub reason: String,
}

/// How a tenant is recognised in SQL.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tenancy {
    /// The column every tenant table carries.
    pub column: String,
    /// The table that *is* the tenant (exempt from the tenant-column rules).
    pub root_table: String,
    /// Functions whose result is the current tenant, e.g. `get_current_tenant_id()`.
    pub source_functions: Vec<String>,
    /// Membership table: `tenant_column IN (SELECT tenant_id FROM tenant_members WHERE user_id = auth.uid())`.
    pub membership_table: String,
    pub membership_tenant_column: String,
    pub membership_user_column: String,
    /// Functions that yield the current user, compared with the membership user column.
    pub user_functions: Vec<String>,
    /// Settings that carry the tenant, read with `current_setting('<name>')`.
    pub settings: Vec<String>,
    /// Functions that take the tenant column and decide membership, e.g. `is_tenant_member(tenant_id)`.
    pub check_functions: Vec<String>,
    /// Tables that need no tenant isolation, each with the reason shown in the report.
    pub exempt_tables: Vec<Exemption>,
    /// Tables whose tenancy differs from the rest (`[[tenancy.tables]]`), each with a reason.
    pub tables: Vec<TableTenancy>,
}

/// One table's own tenancy: another tenant column, scoped by its owner, or readable by every
/// signed-in user by design (writes still scoped). The reason is shown in the handover.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TableTenancy {
    /// `public.invoices`, or `invoices` for the `public` schema.
    pub table: String,
    /// Its tenant column, when not `[tenancy] column`.
    pub column: Option<String>,
    /// Scoped by its owner: policies compare this column with the current user
    /// (`user_id = auth.uid()`); it plays the tenant column's part.
    pub owner_column: Option<String>,
    /// SELECT is open to every signed-in user by design; INSERT, UPDATE, DELETE must be scoped.
    pub public_read: bool,
    /// Only the service role uses it: RLS on and no client policy is the design (no tenant
    /// column needed, `policy-missing` not raised); any client policy is still judged.
    pub service_only: bool,
    pub reason: String,
}

impl Default for Tenancy {
    fn default() -> Self {
        Tenancy {
            column: "tenant_id".into(),
            root_table: "tenants".into(),
            source_functions: vec!["get_current_tenant_id".into()],
            membership_table: "tenant_members".into(),
            membership_tenant_column: "tenant_id".into(),
            membership_user_column: "user_id".into(),
            user_functions: vec!["auth.uid".into()],
            settings: Vec::new(),
            check_functions: Vec::new(),
            exempt_tables: Vec::new(),
            tables: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    /// A table name (`public.audit_log`, or `audit_log` for the `public` schema) or a route glob.
    #[serde(alias = "table", alias = "glob")]
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Migrations {
    /// Each directory is one migration history, replayed on its own in file-name order.
    pub dirs: Vec<String>,
}

impl Default for Migrations {
    fn default() -> Self {
        Migrations {
            dirs: vec!["supabase/migrations".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Routes {
    /// Root of the Next.js route handlers (`<root>/<resource>/route.ts`). A `*` in it
    /// matches one directory name (`apps/*/app/api`: every app of a monorepo).
    pub root: String,
    /// More route roots besides `root`, in the same form (several apps whose handlers sit
    /// at different depths).
    pub roots: Vec<String>,
    /// Wrappers a handler returns or is built with: `withAuth(req, async (ctx) => ...)`.
    pub auth_wrappers: Vec<String>,
    /// Calls that guard a handler when they are its first statement: `await requireAuthContext(req)`.
    pub guard_calls: Vec<String>,
    /// Handler factories known to apply the auth guard themselves.
    pub guarded_factories: Vec<String>,
    /// Route globs (relative to `root`) that need no auth, each with its reason.
    pub exempt: Vec<Exemption>,
    /// Route globs (relative to `root`) that are public: they must call a rate limiter.
    pub public: Vec<String>,
    /// Calls that count as rate limiting.
    pub rate_limiters: Vec<String>,
    /// Directory of `'use server'` server actions, checked like routes. Empty: none.
    pub server_actions_dir: String,
    /// Factories or values that give a client bypassing RLS (`createAdminClient`,
    /// `supabaseAdmin`), besides `createClient(url, <service-role key>)` found by itself:
    /// every query on one must filter on the tenant of the auth context.
    pub admin_clients: Vec<String>,
    /// Request headers and cookies count as input that must be validated.
    pub headers_are_input: bool,
    /// Database handles that connect as the database owner, so RLS does not apply (a
    /// Drizzle `db`): every query through one must filter on the tenant of the auth context.
    /// A value made by `drizzle(...)` is one without being listed.
    pub database_handles: Vec<String>,
}

impl Routes {
    /// Every route root: `root` and `roots`, the empty ones left out.
    pub fn all_roots(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.root.as_str())
            .chain(self.roots.iter().map(String::as_str))
            .map(|r| r.trim_end_matches('/'))
            .filter(|r| !r.is_empty())
    }

    /// The path of `path` relative to the route root it lies under (the first that
    /// matches), for the exempt and public globs.
    pub fn under_root<'p>(&self, path: &'p str) -> Option<&'p str> {
        self.all_roots().find_map(|root| strip_root(root, path))
    }
}

/// `path` with the directories that `root` (literal names, or globs of one name each)
/// matches taken off its front.
pub fn strip_root<'p>(root: &str, path: &'p str) -> Option<&'p str> {
    let mut rest = path;
    for seg in root.split('/').filter(|s| !s.is_empty()) {
        let (name, after) = rest.split_once('/')?;
        if !crate::rules::routes::glob_match(seg, name) {
            return None;
        }
        rest = after;
    }
    (!rest.is_empty()).then_some(rest)
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            root: "apps/api/src/app/api".into(),
            roots: Vec::new(),
            auth_wrappers: vec!["withAuth".into()],
            guard_calls: Vec::new(),
            guarded_factories: Vec::new(),
            exempt: Vec::new(),
            public: vec!["public/**".into()],
            rate_limiters: vec!["rateLimit".into()],
            server_actions_dir: String::new(),
            admin_clients: Vec::new(),
            headers_are_input: false,
            database_handles: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Contracts {
    /// The package that holds the Zod schemas.
    pub package: String,
}

impl Default for Contracts {
    fn default() -> Self {
        Contracts {
            package: "packages/contracts".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Commands {
    /// The lint command (`lint` checklist item).
    pub lint: CommandLine,
    /// The test command (`tests` checklist item).
    pub test: CommandLine,
    /// Run once before lint and tests, e.g. `pnpm install --frozen-lockfile`. Empty: nothing.
    pub setup: CommandLine,
    /// Wall-clock limit for each command; the whole process group is ended after it.
    pub timeout_secs: u64,
}

impl Default for Commands {
    fn default() -> Self {
        Commands {
            lint: CommandLine::words("pnpm --filter api lint"),
            test: CommandLine::words("pnpm test:api"),
            setup: CommandLine::default(),
            timeout_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Agent {
    /// The codex executable: a name on PATH or a path.
    pub command: String,
    /// `-m MODEL`; empty: codex's own default.
    pub model: String,
    pub sandbox: String,
    /// More arguments passed to `codex exec` before the prompt.
    pub extra_args: Vec<String>,
    pub timeout_secs: u64,
}

impl Default for Agent {
    fn default() -> Self {
        Agent {
            command: "codex".into(),
            model: String::new(),
            sandbox: "workspace-write".into(),
            extra_args: Vec::new(),
            timeout_secs: 1800,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Prompt {
    /// Rule files copied into the prompt.
    pub rules: Vec<String>,
    /// The agents document and the headings (section numbers) taken from it.
    pub agents_doc: String,
    pub agents_sections: Vec<String>,
    pub schema_doc: String,
    /// Upper bound of the prompt in bytes; what is cut to fit is said in the prompt.
    pub budget_bytes: usize,
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt {
            rules: vec!["CLAUDE.md".into()],
            agents_doc: "docs/agents.md".into(),
            agents_sections: vec!["8".into(), "9".into(), "10".into()],
            schema_doc: "docs/db/schema.md".into(),
            budget_bytes: 100_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Live {
    /// How the probe becomes a tenant: SQL run as the migration role (`xtask_migrator`), with
    /// `:tenant` and `:user` replaced by literals. Empty: the membership table of `[tenancy]`
    /// plus the `request.jwt.claims` setting.
    pub become_tenant: String,
    pub timeout_secs: u64,
    /// Extensions a migration may create besides those a Supabase project offers by default
    /// (`gather::live::role::EXTENSIONS`): created by the superuser on its behalf.
    pub allow_extensions: Vec<String>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            become_tenant: String::new(),
            timeout_secs: 120,
            allow_extensions: Vec::new(),
        }
    }
}

/// A command as an argv. Written in TOML either as an array (`["pnpm", "test:api"]`) or as
/// one string split on whitespace, with `'...'` and `"..."` grouping words. No shell is
/// ever involved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandLine(pub Vec<String>);

impl CommandLine {
    pub fn words(s: &str) -> CommandLine {
        CommandLine(split_words(s))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self
            .0
            .iter()
            .map(|w| {
                if w.is_empty() || w.contains(char::is_whitespace) {
                    format!("'{w}'")
                } else {
                    w.clone()
                }
            })
            .collect();
        f.write_str(&quoted.join(" "))
    }
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Line(String),
            Argv(Vec<String>),
        }
        Ok(match Repr::deserialize(d)? {
            Repr::Line(s) => CommandLine::words(&s),
            Repr::Argv(v) => CommandLine(v),
        })
    }
}

impl Serialize for CommandLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// A configuration problem: always exit status 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads `<repo>/xtask.toml`; a missing file means all defaults.
    pub fn load(repo: &Path) -> Result<Config, ConfigError> {
        let path = repo.join(FILE_NAME);
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| ConfigError(format!("{}: not valid UTF-8", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(ConfigError(format!("{}: {e}", path.display()))),
        };
        Config::parse(&text).map_err(|msg| ConfigError(format!("{}: {msg}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.tenancy.column.trim().is_empty() {
            return Err("tenancy.column must not be empty".into());
        }
        if self.migrations.dirs.is_empty() {
            return Err("migrations.dirs must name at least one directory".into());
        }
        for root in self.routes.all_roots() {
            if root.split('/').any(|p| p.contains("**")) {
                return Err(format!(
                    "route root `{root}` (routes.root or routes.roots): `**` cannot stand in a route root (the globs of exempt and public routes are relative to it); write `*` for each directory level, or list the roots in routes.roots"
                ));
            }
        }
        for dir in self
            .migrations
            .dirs
            .iter()
            .chain([&self.routes.root, &self.contracts.package])
            .chain(&self.routes.roots)
        {
            if Path::new(dir).is_absolute() || dir.split('/').any(|p| p == "..") {
                return Err(format!(
                    "`{dir}`: paths in xtask.toml are relative to the repository and stay inside it"
                ));
            }
        }
        if self.commands.timeout_secs == 0 || self.agent.timeout_secs == 0 {
            return Err("timeouts must be at least 1 second".into());
        }
        for e in self.tenancy.exempt_tables.iter().chain(&self.routes.exempt) {
            if e.reason.trim().is_empty() {
                return Err(format!("exemption `{}` needs a reason", e.name));
            }
        }
        for b in &self.storage.buckets {
            if b.name.trim().is_empty() {
                return Err("[[storage.buckets]]: `name` (the bucket id) is required".into());
            }
            if b.reason.trim().is_empty() {
                return Err(format!(
                    "[[storage.buckets]] `{}` needs a reason (why its objects may be read by anyone)",
                    b.name
                ));
            }
            if !b.public_read {
                return Err(format!(
                    "[[storage.buckets]] `{}`: only `public_read = true` is a bucket's own rule; a private bucket needs no entry",
                    b.name
                ));
            }
        }
        for t in &self.tenancy.tables {
            if t.table.trim().is_empty() {
                return Err("[[tenancy.tables]]: `table` is required".into());
            }
            if t.reason.trim().is_empty() {
                return Err(format!("[[tenancy.tables]] `{}` needs a reason", t.table));
            }
            if t.column.is_some() && t.owner_column.is_some() {
                return Err(format!(
                    "[[tenancy.tables]] `{}`: give `column` or `owner_column`, not both",
                    t.table
                ));
            }
            if t.service_only && (t.column.is_some() || t.owner_column.is_some() || t.public_read) {
                return Err(format!(
                    "[[tenancy.tables]] `{}`: `service_only` stands alone",
                    t.table
                ));
            }
            if t.column.is_none() && t.owner_column.is_none() && !t.public_read && !t.service_only {
                return Err(format!(
                    "[[tenancy.tables]] `{}`: say what differs (`column`, `owner_column`, `public_read = true` or `service_only = true`)",
                    t.table
                ));
            }
        }
        Ok(())
    }
}

/// toml's messages already name the key (`unknown field `x`, expected one of ...`); add the
/// line so the user can find it.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_seed_conventions() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.tenancy.column, "tenant_id");
        assert_eq!(c.tenancy.root_table, "tenants");
        assert_eq!(c.tenancy.source_functions, ["get_current_tenant_id"]);
        assert_eq!(c.tenancy.membership_table, "tenant_members");
        assert_eq!(c.migrations.dirs, ["supabase/migrations"]);
        assert_eq!(c.routes.root, "apps/api/src/app/api");
        assert_eq!(c.routes.auth_wrappers, ["withAuth"]);
        assert_eq!(c.contracts.package, "packages/contracts");
        assert_eq!(c.commands.lint.0, ["pnpm", "--filter", "api", "lint"]);
        assert_eq!(c.commands.test.0, ["pnpm", "test:api"]);
    }

    #[test]
    fn route_roots_are_globs_and_lists() {
        let c = Config::parse(
            "[routes]\nroot = \"apps/*/app/api\"\nroots = [\"apps/admin/src/app/api/\"]\n",
        )
        .unwrap();
        let roots: Vec<&str> = c.routes.all_roots().collect();
        assert_eq!(roots, ["apps/*/app/api", "apps/admin/src/app/api"]);
        let r = &c.routes;
        assert_eq!(
            r.under_root("apps/web/app/api/items/route.ts"),
            Some("items/route.ts")
        );
        assert_eq!(
            r.under_root("apps/admin/src/app/api/public/x/route.ts"),
            Some("public/x/route.ts")
        );
        assert_eq!(r.under_root("apps/web/src/app/api/x/route.ts"), None);
        assert_eq!(r.under_root("apps/web/app/api"), None);
        // The key of one root keeps working as it did.
        let d = Config::default();
        assert_eq!(
            d.routes.under_root("apps/api/src/app/api/a/route.ts"),
            Some("a/route.ts")
        );
        let err = Config::parse("[routes]\nroots = [\"apps/**/api\"]\n").unwrap_err();
        assert!(
            err.contains("apps/**/api") && err.contains("`*` for each directory level"),
            "{err}"
        );
        let err = Config::parse("[routes]\nroots = [\"../elsewhere\"]\n").unwrap_err();
        assert!(err.contains("../elsewhere"), "{err}");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Config::parse("[tenancy]\ncolumn = \"org_id\"\ncolum = \"x\"\n").unwrap_err();
        assert!(err.contains("colum"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = Config::parse("[tenant]\ncolumn = \"x\"\n").unwrap_err();
        assert!(err.contains("tenant"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let err = Config::parse("[commands]\ntimeout_secs = \"ten\"\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn commands_as_string_or_array() {
        let c = Config::parse(
            "[commands]\nlint = \"pnpm --filter 'my api' lint\"\ntest = [\"node\", \"--test\", \"a b.js\"]\n",
        )
        .unwrap();
        assert_eq!(c.commands.lint.0, ["pnpm", "--filter", "my api", "lint"]);
        assert_eq!(c.commands.test.0, ["node", "--test", "a b.js"]);
        assert_eq!(c.commands.lint.to_string(), "pnpm --filter 'my api' lint");
    }

    #[test]
    fn paths_must_stay_inside_the_repo() {
        let err = Config::parse("[migrations]\ndirs = [\"../elsewhere\"]\n").unwrap_err();
        assert!(err.contains("../elsewhere"), "{err}");
        let err = Config::parse("[migrations]\ndirs = []\n").unwrap_err();
        assert!(err.contains("migrations.dirs"), "{err}");
    }

    #[test]
    fn exemptions_need_a_reason() {
        let c = Config::parse(
            "[tenancy]\nexempt_tables = [{ table = \"public.plans\", reason = \"global price list\" }]\n",
        )
        .unwrap();
        assert_eq!(c.tenancy.exempt_tables[0].name, "public.plans");
        let err =
            Config::parse("[tenancy]\nexempt_tables = [{ table = \"plans\", reason = \" \" }]\n")
                .unwrap_err();
        assert!(err.contains("needs a reason"), "{err}");
    }

    #[test]
    fn public_buckets_need_a_reason() {
        let ok = Config::parse(
            "[[storage.buckets]]\nname = \"avatars\"\npublic_read = true\nreason = \"profile pictures\"\n",
        )
        .unwrap();
        assert_eq!(ok.storage.buckets[0].name, "avatars");
        let err = Config::parse("[[storage.buckets]]\nname = \"avatars\"\npublic_read = true\n")
            .unwrap_err();
        assert!(err.contains("`avatars` needs a reason"), "{err}");
        let err = Config::parse("[[storage.buckets]]\nname = \"a\"\nreason = \"r\"\n").unwrap_err();
        assert!(err.contains("public_read = true"), "{err}");
        let err =
            Config::parse("[[storage.buckets]]\nname = \"a\"\nreason = \"r\"\npublic = true\n")
                .unwrap_err();
        assert!(err.contains("public"), "{err}");
    }
}
