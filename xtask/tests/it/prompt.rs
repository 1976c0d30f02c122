//! The prompt speaks the repository's conventions (issue 17 part 4): `--print-prompt` on
//! fixtures of our own whose conventions are not the example's shows theirs — the guard as
//! the newest conforming handler writes it, the policy expression of the newest migration the
//! judge calls tenant-scoped, the limiter, the contracts package — and never ours; where a
//! convention is unknown it says so and names a file to open instead of inventing one.

use std::{path::Path, process::Command};

use crate::common::{self, copy_tree, run, xtask, TempDir};

fn fixture(name: &str) -> std::path::PathBuf {
    common::workspace()
        .join("xtask/tests/fixtures/prompt")
        .join(name)
}

/// Commit `paths` (all that is left with `None`) at a fixed date, so "newest" is git's.
fn commit_at(dir: &Path, paths: Option<&[&str]>, date: &str) {
    let mut add = vec!["add"];
    add.extend(paths.unwrap_or(&["-A"]));
    common::git(dir, &add);
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "-m",
            date,
        ])
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn print_prompt(dir: &Path) -> String {
    let r = run(xtask(
        dir,
        &[
            "backend-stage",
            "--repo",
            dir.to_str().unwrap(),
            "--task",
            "Add labels to notes.",
            "--print-prompt",
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

#[test]
fn a_guard_call_repository_gets_its_own_guard_policy_limiter_and_models() {
    let t = TempDir::new("prompt-guard-call");
    copy_tree(&fixture("guard-call"), t.path());
    common::git(t.path(), &["init", "-q", "-b", "main"]);
    // The notes handler is the newest by its commit, though `projects` sorts after it.
    let notes = "src/app/api/notes/route.ts";
    std::fs::rename(t.path().join(notes), t.path().join("notes.ts.later")).unwrap();
    commit_at(t.path(), None, "2024-01-01T00:00:00Z");
    std::fs::rename(t.path().join("notes.ts.later"), t.path().join(notes)).unwrap();
    commit_at(t.path(), Some(&[notes]), "2024-06-01T00:00:00Z");

    let p = print_prompt(t.path());
    for wanted in [
        // The guard as the newest conforming handler writes it, named by path.
        "calls the guard `requireAuthContext` before anything else, as this repository writes it: `const ctx = await requireAuthContext(req);` (`POST` of `src/app/api/notes/route.ts`)",
        "A route handler, modelled on `src/app/api/notes/route.ts`",
        "const input = CreateNoteInput.parse(await req.json());",
        // The policy expression of the newest migration the judge calls tenant-scoped (the
        // newer `feed` migration's `using (true)` is not), its table made generic.
        "as this repository's policies do — `using` and, for insert and update, `with check`: `is_org_member(<things>.org_id)` (policy `notes_members` on `public.notes` in `supabase/migrations/20240301000000_notes.sql`)",
        "modelled on `supabase/migrations/20240301000000_notes.sql` (`public.notes`",
        "create policy <things>_all on public.<things> for all to authenticated\n  using (is_org_member(<things>.org_id)) with check (is_org_member(<things>.org_id));",
        // Its tenant column and table, limiter and contracts package.
        "org_id uuid not null references public.orgs (id)",
        "create index <things>_org_id_idx on public.<things> (org_id);",
        "call the rate limiter `throttle` before anything else; this repository calls it as `src/app/api/hooks/ping/route.ts` does in its `GET`: `const blocked = await throttle(req, \"hooks:ping\");`",
        "in `packages/schemas/` (imported as `@acme/schemas`)",
        "never accept `org_id`",
    ] {
        assert!(p.contains(wanted), "missing {wanted:?} in:\n{p}");
    }
    for ours in [
        "withAuth",
        "rateLimit",
        "tenant_id",
        "get_current_tenant_id",
        "the current tenant",
        "using (true)",
        "apps/api",
    ] {
        assert!(
            !p.contains(ours),
            "{ours:?} is not this repository's convention:\n{p}"
        );
    }
}

#[test]
fn unknown_conventions_are_said_to_be_unknown_with_a_file_to_open() {
    let t = TempDir::outside_git("prompt-unknown");
    copy_tree(&fixture("unknown"), t.path());
    let p = print_prompt(t.path());
    for wanted in [
        "This repository's auth guard is not known",
        "(`app/api/items/route.ts` is the newest handler: open it for the layout)",
        "This repository's policy expression is not known",
        "Open `db/migrations/20240501000000_items.sql` for the repository's style",
        "this repository's is not known (`routes.rate_limiters` in xtask.toml is empty)",
        "no handler of this repository passes the checks yet",
        "workspace_id uuid not null, -- references the tenant table: see rule 1",
        "-- a policy for select, insert, update and delete: see rule 2",
        // No table to copy the key column from, no package.json to read the stack from.
        "-- the key column and timestamps: model on `db/migrations/20240501000000_items.sql`",
        "- package manager unknown (no package.json at the root); lint tool unknown",
        "test runner unknown",
    ] {
        assert!(p.contains(wanted), "missing {wanted:?} in:\n{p}");
    }
    for invented in [
        "withAuth",
        "rateLimit",
        "tenant_id",
        "get_current_tenant_id",
        "create policy",
        "```ts",
        "references public.workspaces",
        "using (true)",
        "Vitest",
        "id uuid primary key",
        "created_at",
    ] {
        assert!(!p.contains(invented), "{invented:?} is invented:\n{p}");
    }
}

#[test]
fn a_member_call_guard_and_a_check_function_form_the_checks_cannot_confirm() {
    let t = TempDir::outside_git("prompt-member-guard");
    copy_tree(&fixture("member-guard"), t.path());
    let p = print_prompt(t.path());
    for wanted in [
        // The guard named as configured, with the client it is called on.
        "calls the guard `auth.getUser` before anything else, as this repository writes it: `const supabase = await createClient();` then `const { data: { user }, } = await supabase.auth.getUser();` (`GET` of `app/api/notes/route.ts`)",
        // The repository's own policy form, said to be one the checks cannot confirm.
        "No policy of this repository is tenant-scoped as the checks read them; its policies call the check function as `supabase/migrations/20240101000000_teams.sql` does: `(select auth.uid()) in (select public.team_member_ids(<things>.team_id))` (policy `Members read notes` on `public.notes`)",
        "-- the repository's own policy form (rule 2); the checks cannot confirm it is tenant-scoped\ncreate policy <things>_select on public.<things> for select to authenticated\n  using ((select auth.uid()) in (select public.team_member_ids(<things>.team_id)));",
        // A limiter configured but called nowhere: the name, no invented call.
        "call the rate limiter `limitByIp` before anything else.",
        "team_id uuid not null references public.teams (id)",
    ] {
        assert!(p.contains(wanted), "missing {wanted:?} in:\n{p}");
    }
    for ours in [
        "withAuth",
        "rateLimit",
        "tenant_id",
        "get_current_tenant_id",
        "imported as",
    ] {
        assert!(
            !p.contains(ours),
            "{ours:?} is not this repository's convention:\n{p}"
        );
    }
}

/// The example's own conventions are ours: its prompt says the same as before, now with the
/// files it is modelled on. The rules and templates are a snapshot (`UPDATE_EXPECT=1`).
#[test]
fn the_example_prompt_keeps_its_conventions() {
    let repo = common::workspace().join("examples/dashboard");
    let config = xtask::config::Config::load(&repo).unwrap();
    let p = xtask::agent::prompt::build(&repo, &config, "task").text;
    let start = p.find("## Rules you must follow").unwrap();
    let end = p.find("## Commands to run before you stop").unwrap();
    expect_test::expect_file!["snapshots/prompt.example.md"].assert_eq(&p[start..end]);
}

/// The stack line and the new-table skeleton are the repository's: yarn, Biome and Jest
/// from its package.json; the model table's identity key (a table-level primary key),
/// `bigint` tenant column and `inserted_at`/`updated_at` timestamps from its `create table`.
#[test]
fn the_stack_and_the_table_skeleton_are_the_repositorys() {
    let t = TempDir::outside_git("prompt-stack-shape");
    copy_tree(&fixture("stack-shape"), t.path());
    let p = print_prompt(t.path());
    for wanted in [
        "- yarn workspaces (`packageManager` is `yarn@4.5.0`); lint: Biome (`lint` of package.json: `biome check .`); tests: Jest (`test` of package.json: `jest --runInBand`).",
        "create table public.<things> (\n  invoice_no bigint generated always as identity primary key,\n  account_id bigint not null references public.accounts (id) on delete cascade,\n  -- columns of the task\n  inserted_at timestamptz not null default timezone('utc', now()),\n  updated_at timestamptz not null default timezone('utc', now())\n);",
    ] {
        assert!(p.contains(wanted), "missing {wanted:?} in:\n{p}");
    }
    for ours in [
        "pnpm",
        "ESLint",
        "Vitest",
        "id uuid primary key",
        "created_at",
        "voided_at",
    ] {
        assert!(
            !p.contains(ours),
            "{ours:?} is not this repository's convention:\n{p}"
        );
    }
}

/// The example's stack line is read from its package.json and says what ours said.
#[test]
fn the_example_stack_line_is_read_from_its_package_json() {
    let repo = common::workspace().join("examples/dashboard");
    let config = xtask::config::Config::load(&repo).unwrap();
    let p = xtask::agent::prompt::build(&repo, &config, "task").text;
    assert!(
        p.contains("- pnpm workspaces (`packageManager` is `pnpm@9.15.0`); lint: ESLint (`lint` of apps/api/package.json: `eslint .`); tests: Vitest (`test` of apps/api/package.json: `vitest run`)."),
        "{p}"
    );
}
