//! Each handler form and each trap, with its exact verdict.

use oxc_allocator::Allocator;

use super::*;
use crate::{config::Config, rules::catalog::Rule, ts};

const ROOT: &str = "apps/api/src/app/api";

/// Check `code` as the route `<root>/<rel>` with the given `xtask.toml` text.
fn run_with(rel: &str, code: &str, toml: &str, kind: Kind) -> Option<Checked> {
    let config = Config::parse(toml).expect("test config");
    let settings = Settings::new(&config, Some("@dashboard/contracts".into()));
    let path = format!("{ROOT}/{rel}");
    let alloc = Allocator::default();
    let src = Source::new(&path, code);
    let parsed = ts::parse(&alloc, &src);
    let place = placement(&settings.routes, rel);
    check(&src, parsed.as_ref(), &settings, kind, &place, None)
}

fn run(code: &str) -> Checked {
    run_with("projects/route.ts", code, GUARDS, Kind::Route).unwrap()
}

const GUARDS: &str = "[routes]\nguard_calls = [\"requireAuthContext\"]\n";

/// The only handler's (auth, validation).
fn verdict(code: &str) -> (String, String) {
    let c = run(code);
    assert_eq!(c.report.handlers.len(), 1, "{:?}", c.report.handlers);
    let h = &c.report.handlers[0];
    (h.auth.clone(), h.validation.clone())
}

fn auth(code: &str) -> String {
    verdict(code).0
}

fn rules(c: &Checked) -> Vec<Rule> {
    c.findings.iter().map(|f| f.rule).collect()
}

// ---- auth: the accepted forms ----

#[test]
fn function_returning_the_wrapper_is_guarded() {
    let c = run(r#"
import { withAuth } from "@/server/middleware/auth";
export async function GET(req: Request) {
  return withAuth(req, async (ctx) => Response.json({ tenant: ctx.tenantId }));
}
"#);
    let h = &c.report.handlers[0];
    assert_eq!(
        (h.method.as_str(), h.line, h.auth.as_str()),
        ("GET", 3, "guarded")
    );
    assert_eq!(h.validation, "no_input");
    assert!(h.note.starts_with("withAuth"), "{}", h.note);
    assert!(c.findings.is_empty(), "{:?}", c.findings);
}

#[test]
fn const_built_with_the_wrapper_is_guarded() {
    assert_eq!(
        auth("import { withAuth } from '@/server/auth';\nexport const POST = withAuth(async (req, ctx) => new Response(null));\n"),
        "guarded"
    );
}

#[test]
fn arrow_bodied_export_returning_the_wrapper_is_guarded() {
    assert_eq!(
        auth("import { withAuth } from '@/server/auth';\nexport const DELETE = (req: Request) => withAuth(req, async (ctx) => new Response(null, { status: 204 }));\n"),
        "guarded"
    );
}

#[test]
fn guard_call_as_first_statement_is_guarded() {
    assert_eq!(
        auth("import { requireAuthContext } from '@/server/auth';\nexport async function GET(req: Request) {\n  const ctx = await requireAuthContext(req);\n  return Response.json(ctx);\n}\n"),
        "guarded"
    );
    assert_eq!(
        auth("export async function GET(req: Request) {\n  await requireAuthContext(req);\n  return new Response('ok');\n}\n"),
        "guarded"
    );
    // Not awaited: an async guard would reject after the handler ran.
    let c = run("export async function GET(req: Request) {\n  requireAuthContext(req);\n  return new Response('ok');\n}\n");
    assert_eq!(c.report.handlers[0].auth, "unverified");
    assert!(
        c.findings[0].message.contains("not awaited"),
        "{}",
        c.findings[0].message
    );
}

#[test]
fn guard_call_first_inside_try_is_guarded() {
    let c = run("export async function GET(req: Request) {\n  try {\n    const { tenantId } = await requireAuthContext(req);\n    return Response.json({ tenantId });\n  } catch (e) {\n    return new Response(null, { status: 401 });\n  }\n}\n");
    assert_eq!(c.report.handlers[0].auth, "guarded");
    assert!(
        c.report.handlers[0].note.contains("(in try)"),
        "{}",
        c.report.handlers[0].note
    );
}

#[test]
fn declarations_that_do_no_work_may_precede_the_guard() {
    assert_eq!(
        auth("export async function GET(req: Request, { params }: { params: Promise<{ id: string }> }) {\n  const started = 1;\n  return withAuth(req, async () => new Response(String(started)));\n}\n"),
        "guarded"
    );
}

#[test]
fn alias_export_is_followed() {
    let guarded = run("async function handler(req: Request) {\n  return withAuth(req, async () => new Response('ok'));\n}\nexport { handler as GET, handler as HEAD };\n");
    let methods: Vec<_> = guarded
        .report
        .handlers
        .iter()
        .map(|h| (h.method.as_str(), h.auth.as_str()))
        .collect();
    assert_eq!(methods, [("GET", "guarded"), ("HEAD", "guarded")]);
    let open = run("const handler = async (req: Request) => new Response('open');\nexport { handler as GET };\n");
    assert_eq!(open.report.handlers[0].auth, "unguarded");
    assert_eq!(rules(&open), [Rule::RouteUnguarded]);
}

#[test]
fn generic_wrapper_is_guarded_by_its_callback() {
    assert_eq!(
        auth("import { withErrorHandling } from '@/server/errors';\nexport const GET = withErrorHandling(async (req: Request) => {\n  const ctx = await requireAuthContext(req);\n  return Response.json(ctx);\n});\n"),
        "guarded"
    );
    let c = run("import { withErrorHandling } from '@/server/errors';\nexport const GET = withErrorHandling(async (req: Request) => Response.json({}));\n");
    assert_eq!(c.report.handlers[0].auth, "unguarded");
    assert!(
        c.findings[0].message.contains("withErrorHandling"),
        "{}",
        c.findings[0].message
    );
}

#[test]
fn local_helper_returned_first_is_followed() {
    assert_eq!(
        auth("async function handle(req: Request) { return withAuth(req, async () => new Response('ok')); }\nexport const GET = (req: Request) => handle(req);\n"),
        "guarded"
    );
}

#[test]
fn non_method_exports_are_not_handlers() {
    let c = run("export const dynamic = 'force-dynamic';\nexport const runtime = 'nodejs';\nexport async function GET(req: Request) { return withAuth(req, async () => new Response('ok')); }\n");
    assert_eq!(c.report.handlers.len(), 1);
}

// ---- auth: the traps ----

#[test]
fn wrapper_named_only_in_a_comment_is_unguarded() {
    let c = run("// every handler uses withAuth(req, ...)\nexport async function GET(req: Request) {\n  /* return withAuth(req, handler) */\n  return Response.json({ ok: true });\n}\n");
    assert_eq!(c.report.handlers[0].auth, "unguarded");
    assert_eq!(rules(&c), [Rule::RouteUnguarded]);
    assert_eq!(c.findings[0].line, Some(2));
    assert_eq!(
        c.findings[0].path.as_deref(),
        Some("apps/api/src/app/api/projects/route.ts")
    );
    assert!(
        c.findings[0].message.contains("Fix:"),
        "{}",
        c.findings[0].message
    );
}

#[test]
fn wrapper_named_only_in_a_string_is_unguarded() {
    assert_eq!(
        auth("export async function GET(req: Request) {\n  const how = 'return withAuth(req, handler)';\n  return new Response(how);\n}\n"),
        "unguarded"
    );
    assert_eq!(
        auth("export const GET = () => new Response(`withAuth(${1})`);\n"),
        "unguarded"
    );
}

#[test]
fn guard_after_a_return_is_unguarded() {
    let c = run("export async function GET(req: Request) {\n  return Response.json({ secret: 1 });\n  await requireAuthContext(req);\n}\n");
    assert_eq!(c.report.handlers[0].auth, "unguarded");
    assert!(
        c.findings[0].message.contains("line 3"),
        "{}",
        c.findings[0].message
    );
}

#[test]
fn guard_inside_if_false_is_unguarded() {
    assert_eq!(
        auth("export async function GET(req: Request) {\n  if (false) {\n    await requireAuthContext(req);\n  }\n  return Response.json({});\n}\n"),
        "unguarded"
    );
}

#[test]
fn wrapper_returned_only_in_a_branch_is_unguarded() {
    assert_eq!(
        auth("export async function GET(req: Request) {\n  if (false) return withAuth(req, async () => new Response('x'));\n  return Response.json({ all: 1 });\n}\n"),
        "unguarded"
    );
    assert_eq!(
        auth("export const GET = (req: Request) => (req.headers.get('x') ? withAuth(req, async () => new Response('x')) : Response.json({}));\n"),
        "unguarded"
    );
}

#[test]
fn guard_after_work_is_unguarded() {
    assert_eq!(
        auth("export async function POST(req: Request) {\n  await db.from('audit').insert({});\n  await requireAuthContext(req);\n  return new Response(null);\n}\n"),
        "unguarded"
    );
}

#[test]
fn wrapper_defined_in_the_route_file_is_unverified() {
    let c = run("function withAuth(req: Request, fn: () => Promise<Response>) { return fn(); }\nexport async function GET(req: Request) {\n  return withAuth(req, async () => new Response('x'));\n}\n");
    assert_eq!(c.report.handlers[0].auth, "unverified");
    assert_eq!(rules(&c), [Rule::RouteUnverified]);
}

#[test]
fn factory_is_unverified_unless_configured() {
    let code = "import { createExportHandler } from '@/server/export';\nexport const GET = createExportHandler({ table: 'projects' });\n";
    let c = run(code);
    assert_eq!(
        (
            c.report.handlers[0].auth.as_str(),
            c.report.handlers[0].validation.as_str()
        ),
        ("unverified", "no_input")
    );
    assert_eq!(rules(&c), [Rule::RouteUnverified]);
    assert!(
        c.findings[0].message.contains("guarded_factories"),
        "{}",
        c.findings[0].message
    );
    let configured = run_with(
        "projects/route.ts",
        code,
        "[routes]\nguarded_factories = [\"createExportHandler\"]\n",
        Kind::Route,
    )
    .unwrap();
    assert_eq!(configured.report.handlers[0].auth, "guarded");
    assert!(configured.findings.is_empty());
}

#[test]
fn re_exports_are_unverified() {
    let c = run("export { GET, POST } from '../shared/handlers';\n");
    let got: Vec<_> = c
        .report
        .handlers
        .iter()
        .map(|h| (h.method.as_str(), h.auth.as_str(), h.validation.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("GET", "unverified", "unverified"),
            ("POST", "unverified", "unverified")
        ]
    );
    assert_eq!(rules(&c), [Rule::RouteUnverified, Rule::RouteUnverified]);

    let star = run("export * from '../shared/handlers';\n");
    assert_eq!(star.report.handlers[0].method, "*");
    assert_eq!(star.report.handlers[0].auth, "unverified");

    let imported = run("import { handler } from './handler';\nexport const GET = handler;\n");
    assert_eq!(imported.report.handlers[0].auth, "unverified");
    assert!(
        imported.findings[0].message.contains("./handler"),
        "{}",
        imported.findings[0].message
    );
}

#[test]
fn a_parse_error_is_unverified() {
    let c =
        run("export async function GET(req: Request) {\n  return withAuth(req, async () => {\n}\n");
    assert_eq!(c.report.handlers.len(), 1);
    let h = &c.report.handlers[0];
    assert_eq!(
        (h.method.as_str(), h.auth.as_str(), h.validation.as_str()),
        ("*", "unverified", "unverified")
    );
    assert_eq!(rules(&c), [Rule::RouteUnverified]);
    assert!(
        c.findings[0].message.contains("does not parse"),
        "{}",
        c.findings[0].message
    );
}

#[test]
fn exempt_route_is_exempt_with_its_reason() {
    let toml = "[[routes.exempt]]\nglob = \"webhooks/**\"\nreason = \"Stripe signs the request\"\n";
    let c = run_with(
        "webhooks/stripe/route.ts",
        "export async function POST(req: Request) { return new Response(null); }\n",
        toml,
        Kind::Route,
    )
    .unwrap();
    assert_eq!(c.report.exempt.as_deref(), Some("Stripe signs the request"));
    assert_eq!(c.report.handlers[0].auth, "exempt");
    assert!(c.findings.is_empty(), "{:?}", c.findings);
}

// ---- validation ----

const CONTRACTS_POST: &str = r#"
import { CreateProjectInput } from "@dashboard/contracts";
import { withAuth } from "@/server/middleware/auth";
export async function POST(req: Request) {
  return withAuth(req, async (ctx) => {
    const input = CreateProjectInput.parse(await req.json());
    return Response.json(input, { status: 201 });
  });
}
"#;

#[test]
fn contracts_schema_passes_with_a_note() {
    let c = run(CONTRACTS_POST);
    let h = &c.report.handlers[0];
    assert_eq!(
        (h.auth.as_str(), h.validation.as_str()),
        ("guarded", "contracts")
    );
    assert_eq!(
        h.note,
        "withAuth; schema CreateProjectInput from @dashboard/contracts"
    );
    assert!(c.findings.is_empty(), "{:?}", c.findings);
}

#[test]
fn relative_import_into_the_contracts_package_passes() {
    let code = "import * as c from '../../../../../../packages/contracts/src/projects';\nexport const POST = withAuth(async (req: Request) => {\n  const r = c.CreateProjectInput.safeParse(await req.json());\n  return Response.json(r);\n});\n";
    assert_eq!(verdict(code), ("guarded".into(), "contracts".into()));
}

#[test]
fn inline_schema_is_a_warning() {
    let c = run("import { z } from 'zod';\nconst Body = z.object({ name: z.string() });\nexport const POST = withAuth(async (req: Request) => {\n  const body = Body.parse(await req.json());\n  return Response.json(body);\n});\n");
    assert_eq!(c.report.handlers[0].validation, "inline");
    assert_eq!(rules(&c), [Rule::InputNotValidated]);
    assert_eq!(c.findings[0].severity, Severity::Warning);
    assert_eq!(c.findings[0].line, Some(4));
    assert!(
        c.findings[0]
            .message
            .contains("define it in packages/contracts"),
        "{}",
        c.findings[0].message
    );
    let chained = verdict("export const POST = withAuth(async (req: Request) => Response.json(z.object({}).parse(await req.json())));\n");
    assert_eq!(chained.1, "inline");
}

#[test]
fn unvalidated_body_is_an_error() {
    let c = run("export const POST = withAuth(async (req: Request) => {\n  const body = await req.json();\n  return Response.json(JSON.parse(JSON.stringify(body)));\n});\n");
    assert_eq!(c.report.handlers[0].validation, "none");
    assert_eq!(rules(&c), [Rule::InputNotValidated]);
    assert_eq!(c.findings[0].severity, Severity::Error);
    assert!(
        c.findings[0].message.contains("body (line 2)"),
        "{}",
        c.findings[0].message
    );
}

#[test]
fn query_and_params_are_input() {
    assert_eq!(
        verdict("export async function GET(req: NextRequest) {\n  return withAuth(req, async () => Response.json({ q: req.nextUrl.searchParams.get('q') }));\n}\n").1,
        "none"
    );
    assert_eq!(
        verdict("export async function GET(req: Request, { params }: { params: Promise<{ id: string }> }) {\n  return withAuth(req, async () => Response.json({ id: (await params).id }));\n}\n").1,
        "none"
    );
    assert_eq!(
        verdict("export async function GET(req: Request, { params: { id } }: any) {\n  return withAuth(req, async () => Response.json({ id }));\n}\n").1,
        "none"
    );
    assert_eq!(
        verdict("import { ProjectIdParams } from '@dashboard/contracts';\nexport async function GET(req: Request, ctx: { params: Promise<{ id: string }> }) {\n  return withAuth(req, async () => Response.json(ProjectIdParams.parse(await ctx.params)));\n}\n").1,
        "contracts"
    );
}

#[test]
fn no_input_needs_no_schema() {
    assert_eq!(
        verdict("export const GET = withAuth(async () => Response.json({ ok: true }));\n").1,
        "no_input"
    );
}

// ---- rate limits on public routes ----

#[test]
fn public_route_with_a_limiter_first_passes() {
    let code = "import { rateLimit } from '@/server/rate-limit';\nexport async function GET(req: Request) {\n  const limited = await rateLimit(req, { key: 'health' });\n  if (limited) return limited;\n  return Response.json({ ok: true });\n}\n";
    let c = run_with("public/health/route.ts", code, "", Kind::Route).unwrap();
    assert!(c.report.public);
    assert_eq!(c.report.rate_limited, Some(true));
    let h = &c.report.handlers[0];
    assert_eq!(h.auth, "exempt");
    assert!(h.note.contains("rateLimit"), "{}", h.note);
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    let in_if = "export async function GET(req: Request) {\n  if (!(await rateLimit(req)).ok) return new Response(null, { status: 429 });\n  return Response.json({});\n}\n";
    assert_eq!(
        run_with("public/a/route.ts", in_if, "", Kind::Route)
            .unwrap()
            .report
            .rate_limited,
        Some(true)
    );
}

#[test]
fn public_route_without_a_limiter_fails() {
    let c = run_with(
        "public/health/route.ts",
        "export async function GET() { return Response.json({ ok: true }); }\n",
        "",
        Kind::Route,
    )
    .unwrap();
    assert_eq!(c.report.rate_limited, Some(false));
    assert_eq!(rules(&c), [Rule::RateLimitMissing]);
    assert_eq!(c.findings[0].severity, Severity::Error);
}

#[test]
fn limiter_after_work_or_in_dead_code_fails() {
    let after = "export async function GET(req: Request) {\n  const rows = await db.from('t').select();\n  await rateLimit(req);\n  return Response.json(rows);\n}\n";
    let c = run_with("public/x/route.ts", after, "", Kind::Route).unwrap();
    assert_eq!(c.report.rate_limited, Some(false));
    assert!(
        c.findings[0].message.contains("after work at line 2"),
        "{}",
        c.findings[0].message
    );
    let dead = "export async function GET(req: Request) {\n  if (false) { await rateLimit(req); }\n  return Response.json({});\n}\n";
    assert_eq!(
        run_with("public/x/route.ts", dead, "", Kind::Route)
            .unwrap()
            .report
            .rate_limited,
        Some(false)
    );
}

#[test]
fn private_route_has_no_rate_limit_verdict() {
    assert_eq!(run(CONTRACTS_POST).report.rate_limited, None);
}

// ---- server actions ----

#[test]
fn server_actions_are_checked_like_handlers() {
    let code = "'use server';\nimport { CreateProjectInput } from '@dashboard/contracts';\nexport async function createProject(form: FormData) {\n  const ctx = await requireAuthContext();\n  const input = CreateProjectInput.parse(Object.fromEntries(form));\n  return input;\n}\nexport async function deleteAll(id: string) {\n  await db.from('projects').delete();\n}\n";
    let c = run_with("actions/projects.ts", code, GUARDS, Kind::ServerActions).unwrap();
    let got: Vec<_> = c
        .report
        .handlers
        .iter()
        .map(|h| (h.method.as_str(), h.auth.as_str(), h.validation.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("createProject", "guarded", "contracts"),
            ("deleteAll", "unguarded", "none")
        ]
    );
    assert_eq!(rules(&c), [Rule::RouteUnguarded, Rule::InputNotValidated]);
    assert!(run_with(
        "actions/util.ts",
        "export async function f(x: string) { return x; }\n",
        GUARDS,
        Kind::ServerActions
    )
    .is_none());
}

// ---- config helpers ----

#[test]
fn globs_match_segments() {
    assert!(glob_match("public/**", "public/health/route.ts"));
    assert!(glob_match("public/**", "public/route.ts"));
    assert!(!glob_match("public/**", "publications/route.ts"));
    assert!(glob_match("webhooks/*", "webhooks/stripe"));
    assert!(!glob_match("webhooks/*", "webhooks/stripe/route.ts"));
    assert!(glob_match("**/cron/**", "admin/cron/daily/route.ts"));
    assert!(glob_match("health", "health"));
}

#[test]
fn contracts_sources() {
    let config = Config::default();
    let s = Settings::new(&config, Some("@dashboard/contracts".into()));
    let from = "apps/api/src/app/api/projects/route.ts";
    assert!(s.is_contracts_source("@dashboard/contracts", from));
    assert!(s.is_contracts_source("@dashboard/contracts/projects", from));
    assert!(!s.is_contracts_source("@dashboard/contracts-extra", from));
    assert!(s.is_contracts_source("../../../../../../packages/contracts/src", from));
    assert!(!s.is_contracts_source("../../lib/schemas", from));
    assert!(!s.is_contracts_source("zod", from));
}

#[test]
fn the_fix_names_only_what_is_configured() {
    let code = "export async function GET() { return Response.json({}); }\n";
    let default = run_with("x/route.ts", code, "", Kind::Route).unwrap();
    let msg = &default.findings[0].message;
    assert!(msg.contains("it does not return `withAuth(...)`"), "{msg}");
    assert!(
        msg.contains("`return withAuth(req, async (ctx) => ...)`"),
        "{msg}"
    );
    assert!(!msg.contains("requireAuthContext"), "{msg}");
    let guards = run_with("x/route.ts", code, GUARDS, Kind::Route).unwrap();
    assert!(guards.findings[0]
        .message
        .contains("`await requireAuthContext(req)` as its first statement"));
}

#[test]
fn each_input_must_reach_a_parse() {
    // The query is read raw next to a validated body.
    let c = run("import { CreateProjectInput } from '@dashboard/contracts';\nexport const POST = withAuth(async (req: NextRequest) => {\n  const input = CreateProjectInput.parse(await req.json());\n  const q = req.nextUrl.searchParams.get('q');\n  return Response.json({ input, q });\n});\n");
    assert_eq!(c.report.handlers[0].validation, "none");
    assert_eq!(rules(&c), [Rule::InputNotValidated]);
    assert!(
        c.findings[0].message.contains("query (line 4)"),
        "{}",
        c.findings[0].message
    );
    // A schema parsing something else does not validate the body.
    assert_eq!(
        verdict("import { CreateProjectInput } from '@dashboard/contracts';\nexport const POST = withAuth(async (req: Request) => {\n  const body = await req.json();\n  CreateProjectInput.parse({});\n  return Response.json(body);\n});\n").1,
        "none"
    );
    // Through names and objects it does.
    assert_eq!(
        verdict("import { CreateProjectInput } from '@dashboard/contracts';\nexport const POST = withAuth(async (req: Request) => {\n  const raw = await req.json();\n  const merged = { ...raw, source: 'api' };\n  const r = CreateProjectInput.safeParse(merged);\n  return Response.json(r);\n});\n").1,
        "contracts"
    );
    assert_eq!(
        verdict("import { ProjectIdParams } from '@dashboard/contracts';\nexport async function GET(req: Request, { params: { id } }: any) {\n  return withAuth(req, async () => Response.json(ProjectIdParams.parse({ id })));\n}\n").1,
        "contracts"
    );
}

// ---- issue 15: the patterns of real code (docs/corpus/routes/patterns.md) ----

fn findings_of(c: &Checked) -> Vec<(Rule, String)> {
    c.findings
        .iter()
        .map(|f| (f.rule, f.message.clone()))
        .collect()
}

#[test]
fn returning_a_const_bound_to_a_wrapper_call_is_followed() {
    let c = run("import { withAuth } from '@/server/auth';\nexport const PATCH = withAuth(async (req: Request, ctx: any) => {\n  const b = await req.json();\n  return Response.json(b);\n});\nexport async function PUT(req: Request) {\n  return PATCH(req);\n}\n");
    let got: Vec<_> = c
        .report
        .handlers
        .iter()
        .map(|h| (h.method.as_str(), h.auth.as_str(), h.validation.as_str()))
        .collect();
    assert_eq!(
        got,
        [("PATCH", "guarded", "none"), ("PUT", "guarded", "none")]
    );
    assert!(
        c.report.handlers[1].note.contains("PATCH → withAuth"),
        "{}",
        c.report.handlers[1].note
    );
    // C2: a local arrow that reads the body, returned by the handler.
    let c2 = run("const PATCH = async (req: Request) => { const b = await req.json(); return save(b); };\nexport async function PUT(req: Request) {\n  await requireAuthContext(req);\n  return PATCH(req);\n}\n");
    assert_eq!(verdict_of(&c2), ("guarded".into(), "none".into()));
}

fn verdict_of(c: &Checked) -> (String, String) {
    let h = &c.report.handlers[0];
    (h.auth.clone(), h.validation.clone())
}

#[test]
fn route_params_come_from_the_second_argument_only() {
    // C3 fixture A: `ctx.params` of the second argument is input.
    let a = run("export async function GET(_r: Request, ctx: { params: Promise<{ id: string }> }) {\n  await requireAuthContext(_r);\n  const { id } = await ctx.params;\n  return read(id);\n}\n");
    assert_eq!(verdict_of(&a), ("guarded".into(), "none".into()));
    assert_eq!(rules(&a), [Rule::InputNotValidated]);
    // `{ params }` destructured, awaited later.
    let d = run("export async function DELETE(req: Request, { params }: any) {\n  await requireAuthContext(req);\n  const { id } = await params;\n  await db.from('t').delete().eq('id', id);\n  return new Response(null);\n}\n");
    assert_eq!(verdict_of(&d).1, "none");
    // C3 fixture B: a variable that happens to be called `params` is not input.
    let b = run("export async function POST(req: Request) {\n  await requireAuthContext(req);\n  const params = { limit: 10 };\n  return list(params);\n}\n");
    assert_eq!(verdict_of(&b), ("guarded".into(), "no_input".into()));
    assert!(b.findings.is_empty(), "{:?}", b.findings);
    // Nor is `options.params` of some other object.
    let o = run("export async function GET(req: Request) {\n  await requireAuthContext(req);\n  const options = { params: { a: 1 } };\n  return Response.json(options.params);\n}\n");
    assert_eq!(verdict_of(&o).1, "no_input");
}

#[test]
fn parsing_a_database_row_is_not_input_validation() {
    // D4: the id from the query reaches the database unvalidated; the row is parsed.
    let c = run("import { RowSchema } from '@dashboard/contracts';\nexport async function GET(req: Request) {\n  await requireAuthContext(req);\n  const id = new URL(req.url).searchParams.get('id');\n  const row = await db.one(id);\n  return Response.json(RowSchema.parse(row));\n}\n");
    assert_eq!(verdict_of(&c), ("guarded".into(), "none".into()));
    assert_eq!(rules(&c), [Rule::InputNotValidated]);
    assert!(
        c.findings[0].message.contains("query"),
        "{}",
        c.findings[0].message
    );
    // The query itself parsed: validated, whatever is done with the row.
    let ok = run("import { Q, RowSchema } from '@dashboard/contracts';\nexport async function GET(req: Request) {\n  await requireAuthContext(req);\n  const { id } = Q.parse(Object.fromEntries(new URL(req.url).searchParams));\n  const row = await db.one(id);\n  return Response.json(RowSchema.parse(row));\n}\n");
    assert_eq!(verdict_of(&ok).1, "contracts");
}

#[test]
fn computing_the_limiters_arguments_is_not_work() {
    let toml = "[routes]\nrate_limiters = [\"limit\", \"ratelimit.limit\"]\n";
    // E3: the key from a header, hashed.
    let ip = "import { createHash } from 'node:crypto';\nexport async function POST(req: Request) {\n  const ip = req.headers.get('x-forwarded-for') ?? 'anon';\n  const key = createHash('sha256').update(ip).digest('hex');\n  const ok = await limit(key, { window: 60 });\n  if (!ok) return new Response(null, { status: 429 });\n  const body = await req.json();\n  return Response.json(body);\n}\n";
    let c = run_with("public/x/route.ts", ip, toml, Kind::Route).unwrap();
    assert_eq!(c.report.rate_limited, Some(true), "{:?}", c.findings);
    // A member call limiter (`ratelimit.limit(ip)`) with its client created first.
    let member = "import { Ratelimit } from '@upstash/ratelimit';\nimport { Redis } from '@upstash/redis';\nexport async function GET(req: Request) {\n  const ratelimit = new Ratelimit({ redis: Redis.fromEnv(), limiter: Ratelimit.slidingWindow(10, '1 m') });\n  const { success } = await ratelimit.limit(req.headers.get('x-real-ip') ?? 'x');\n  if (!success) return new Response(null, { status: 429 });\n  return Response.json({});\n}\n";
    let m = run_with("public/x/route.ts", member, toml, Kind::Route).unwrap();
    assert_eq!(m.report.rate_limited, Some(true), "{:?}", m.findings);
    // The key computed by a database read: the read is work.
    let db = "export async function POST(req: Request) {\n  const u = await db.user(req.headers.get('x-user'));\n  await limit(u.plan);\n  return Response.json({});\n}\n";
    let d = run_with("public/x/route.ts", db, toml, Kind::Route).unwrap();
    assert_eq!(d.report.rate_limited, Some(false));
    assert_eq!(rules(&d), [Rule::RateLimitMissing]);
    // Reading the body first is work.
    let body = "export async function POST(req: Request) {\n  const b = await req.json();\n  await limit(b.email);\n  return Response.json({});\n}\n";
    assert_eq!(
        run_with("public/x/route.ts", body, toml, Kind::Route)
            .unwrap()
            .report
            .rate_limited,
        Some(false)
    );
}

#[test]
fn tenant_taken_from_the_body_is_a_finding() {
    let c = run("export async function POST(req: Request) {\n  const ctx = await requireAuthContext(req);\n  const { tenant_id, name } = await req.json();\n  await ctx.supabase.from('projects').insert({ tenant_id, name });\n  return new Response(null, { status: 201 });\n}\n");
    let r = rules(&c);
    assert!(
        r.contains(&Rule::TenantFromRequest),
        "{:?}",
        findings_of(&c)
    );
    assert!(
        !r.contains(&Rule::ServiceRoleUnscoped),
        "{:?}",
        findings_of(&c)
    );
    // From the auth context: no finding of either.
    let ok = run("import { CreateProjectInput } from '@dashboard/contracts';\nexport async function POST(req: Request) {\n  const ctx = await requireAuthContext(req);\n  const input = CreateProjectInput.parse(await req.json());\n  await ctx.supabase.from('projects').insert({ ...input, tenant_id: ctx.tenantId });\n  return new Response(null, { status: 201 });\n}\n");
    assert!(ok.findings.is_empty(), "{:?}", findings_of(&ok));
    // In a wrapper's callback, the context is the wrapper's; `?tenant=` is the request.
    let q = run("export const GET = withAuth(async (req: Request, ctx: any) => {\n  const t = new URL(req.url).searchParams.get('tenant');\n  return Response.json(await ctx.supabase.from('x').select().eq('tenant_id', t));\n});\n");
    assert!(
        rules(&q).contains(&Rule::TenantFromRequest),
        "{:?}",
        findings_of(&q)
    );
}

#[test]
fn service_role_queries_must_filter_on_the_auth_tenant() {
    let open = run("import { createClient } from '@supabase/supabase-js';\nexport async function DELETE(req: Request) {\n  const ctx = await requireAuthContext(req);\n  const admin = createClient(process.env.SUPABASE_URL!, process.env.SUPABASE_SERVICE_ROLE_KEY!);\n  await admin.from('docs').delete().eq('id', 'x');\n  return new Response(null);\n}\n");
    assert_eq!(rules(&open), [Rule::ServiceRoleUnscoped]);
    assert_eq!(open.findings[0].line, Some(5));
    assert!(
        open.findings[0].message.contains("admin.from('docs')"),
        "{}",
        open.findings[0].message
    );
    assert!(
        open.report.handlers[0].note.contains("RLS-bypassing"),
        "{}",
        open.report.handlers[0].note
    );
    let scoped = run("import { createClient } from '@supabase/supabase-js';\nexport async function DELETE(req: Request) {\n  const ctx = await requireAuthContext(req);\n  const admin = createClient(process.env.SUPABASE_URL!, process.env.SUPABASE_SERVICE_ROLE_KEY!);\n  await admin.from('docs').delete().eq('tenant_id', ctx.tenantId).eq('id', 'x');\n  return new Response(null);\n}\n");
    assert!(scoped.findings.is_empty(), "{:?}", findings_of(&scoped));
    // F2: filtered only by an id from the body.
    let idor = run("export async function POST(req: Request) {\n  const me = await requireAuthContext(req);\n  const { docId } = await req.json();\n  await createAdminClient().from('docs').update({ seen: true }).eq('id', docId);\n  return new Response(null);\n}\n");
    let configured = run_with(
        "projects/route.ts",
        "export async function POST(req: Request) {\n  const me = await requireAuthContext(req);\n  const { docId } = await req.json();\n  await createAdminClient().from('docs').update({ seen: true }).eq('id', docId);\n  return new Response(null);\n}\n",
        "[routes]\nguard_calls = [\"requireAuthContext\"]\nadmin_clients = [\"createAdminClient\"]\n",
        Kind::Route,
    )
    .unwrap();
    assert!(
        !rules(&idor).contains(&Rule::ServiceRoleUnscoped),
        "not configured: {:?}",
        findings_of(&idor)
    );
    assert!(
        rules(&configured).contains(&Rule::ServiceRoleUnscoped),
        "{:?}",
        findings_of(&configured)
    );
    // The tenant of the admin query from the body: both findings.
    let hop = run_with(
        "projects/route.ts",
        "export async function POST(req: Request) {\n  await requireAuthContext(req);\n  const body = await req.json();\n  await supabaseAdmin.from('docs').select().eq('tenant_id', body.tenantId);\n  return new Response(null);\n}\n",
        "[routes]\nguard_calls = [\"requireAuthContext\"]\nadmin_clients = [\"supabaseAdmin\"]\n",
        Kind::Route,
    )
    .unwrap();
    let r = rules(&hop);
    assert!(
        r.contains(&Rule::ServiceRoleUnscoped) && r.contains(&Rule::TenantFromRequest),
        "{:?}",
        findings_of(&hop)
    );
}

#[test]
fn inline_bearer_token_check_is_a_guard_only_when_configured() {
    let code = "import { createClient } from '@supabase/supabase-js';\nimport { getBearerToken } from '@/server/token';\nexport async function GET(req: Request) {\n  const token = getBearerToken(req);\n  const supabase = createClient(process.env.URL!, process.env.ANON!);\n  const { data: { user } } = await supabase.auth.getUser(token);\n  if (!user) return new Response(null, { status: 401 });\n  assertAdminRole(user);\n  return Response.json({ id: user.id });\n}\n";
    let configured = run_with(
        "x/route.ts",
        code,
        "[routes]\nguard_calls = [\"supabase.auth.getUser\"]\n",
        Kind::Route,
    )
    .unwrap();
    let h = &configured.report.handlers[0];
    assert_eq!(h.auth, "guarded", "{:?}", configured.findings);
    assert!(
        h.note.contains("then authorizes with `assertAdminRole`"),
        "{}",
        h.note
    );
    let c = run(code);
    assert_eq!(c.report.handlers[0].auth, "unverified");
    assert!(
        c.findings[0].message.contains("an inline token check (`supabase.auth.getUser(...)` at line 6) is not a configured guard"),
        "{}",
        c.findings[0].message
    );
}

#[test]
fn guard_helpers_reached_through_a_chain_count() {
    let code = "'use server';\nasync function requireAdmin(req: Request) {\n  const ctx = await requireAuthContext(req);\n  return ctx;\n}\nasync function requireOwner(req: Request) {\n  return await requireAdmin(req);\n}\nexport async function archive(id: string) {\n  const ctx = await requireOwner(new Request('x'));\n  return id;\n}\n";
    let c = run_with("actions/a.ts", code, GUARDS, Kind::ServerActions).unwrap();
    let h = &c.report.handlers[0];
    assert_eq!(h.auth, "guarded", "{:?}", c.findings);
    assert!(
        h.note
            .contains("requireOwner → requireAdmin → requireAuthContext"),
        "{}",
        h.note
    );
}

#[test]
fn responses_and_outgoing_urls_are_not_request_input() {
    // A fetched response's body and an outgoing URL's query are the server's own values.
    let c = run("export async function GET(req: Request) {\n  await requireAuthContext(req);\n  const img = await fetch('https://x').then((res) => res.arrayBuffer());\n  const url = new URL('https://hooks.example');\n  url.searchParams.append('a', 'b');\n  return new Response(img);\n}\n");
    assert_eq!(verdict_of(&c), ("guarded".into(), "no_input".into()));
    // The request's own URL is the query.
    let q = run("export async function GET(req: Request) {\n  await requireAuthContext(req);\n  const url = new URL(req.url);\n  return Response.json({ q: url.searchParams.get('q') });\n}\n");
    assert_eq!(verdict_of(&q).1, "none");
}

#[test]
fn an_admin_query_keyed_by_the_signed_in_user_is_scoped() {
    // F3: the id comes from the guard's result.
    let c = run_with(
        "x/route.ts",
        "export async function POST(req: Request) {\n  const { data: { user } } = await sb.auth.getUser();\n  if (!user) return new Response(null, { status: 401 });\n  await supabaseAdmin.from('profiles').update({ seen: true }).eq('id', user.id);\n  return new Response(null);\n}\n",
        "[routes]\nguard_calls = [\"auth.getUser\"]\nadmin_clients = [\"supabaseAdmin\"]\n",
        Kind::Route,
    )
    .unwrap();
    assert_eq!(c.report.handlers[0].auth, "guarded");
    assert!(c.findings.is_empty(), "{:?}", findings_of(&c));
}

#[test]
fn a_configured_guard_exported_as_an_action_is_the_guard() {
    let c = run_with(
        "actions/session.ts",
        "'use server';\nexport async function requireAuthContext() {\n  const s = await readSession();\n  if (!s) throw new Error('no');\n  return s;\n}\n",
        GUARDS,
        Kind::ServerActions,
    )
    .unwrap();
    assert_eq!(c.report.handlers[0].auth, "guarded");
    assert!(
        c.report.handlers[0]
            .note
            .contains("is the configured guard"),
        "{}",
        c.report.handlers[0].note
    );
}

#[test]
fn some_exports_of_a_file_can_be_exempt() {
    let toml = "[routes]\nguard_calls = [\"requireAuthContext\"]\nexempt = [{ glob = \"auth.ts#signIn*\", reason = \"signing in is public\" }]\n";
    let code = "'use server';\nexport async function signInWithEmail(f: FormData) {\n  return f;\n}\nexport async function updateName(f: FormData) {\n  return f;\n}\n";
    let c = run_with("auth.ts", code, toml, Kind::ServerActions).unwrap();
    let got: Vec<_> = c
        .report
        .handlers
        .iter()
        .map(|h| (h.method.as_str(), h.auth.as_str()))
        .collect();
    assert_eq!(
        got,
        [("signInWithEmail", "exempt"), ("updateName", "unguarded")]
    );
    assert!(c.report.handlers[0].note.contains("signing in is public"));
}

#[test]
fn the_request_handed_to_a_library_may_be_read() {
    // C2: a library service reads the query; the checker cannot see it.
    let c = run("import { createAuthCallbackService } from '@kit/supabase/auth';\nexport async function GET(request: Request) {\n  await requireAuthContext(request);\n  const service = createAuthCallbackService(client);\n  const { nextPath } = await service.exchangeCodeForSession(request, { redirectPath: '/home' });\n  return Response.redirect(nextPath);\n}\n");
    let h = &c.report.handlers[0];
    assert_eq!(h.validation, "unverified", "{}", h.note);
    assert!(
        h.note.contains("`service.exchangeCodeForSession`"),
        "{}",
        h.note
    );
    // Handed to the configured guard only: no input.
    assert_eq!(verdict("export async function GET(req: Request) {\n  await requireAuthContext(req);\n  return Response.json({});\n}\n").1, "no_input");
}

#[test]
fn a_safe_parse_counts_only_when_its_result_is_tested() {
    // D6: the result is used without looking at `success`.
    let c = run("import { CreateProjectInput } from '@dashboard/contracts';\nexport async function POST(req: Request) {\n  await requireAuthContext(req);\n  const r = CreateProjectInput.safeParse(await req.json());\n  await save(r.data);\n  return new Response(null);\n}\n");
    assert_eq!(verdict_of(&c).1, "none");
    let checked = run("import { CreateProjectInput } from '@dashboard/contracts';\nexport async function POST(req: Request) {\n  await requireAuthContext(req);\n  const r = CreateProjectInput.safeParse(await req.json());\n  if (!r.success) return new Response(null, { status: 400 });\n  await save(r.data);\n  return new Response(null);\n}\n");
    assert_eq!(verdict_of(&checked).1, "contracts");
    let inline = run("import { Q } from '@dashboard/contracts';\nexport async function GET(req: Request) {\n  await requireAuthContext(req);\n  if (!Q.safeParse(Object.fromEntries(new URL(req.url).searchParams)).success) return new Response(null, { status: 400 });\n  return Response.json({});\n}\n");
    assert_eq!(verdict_of(&inline).1, "contracts");
    let destructured = run("import { Q } from '@dashboard/contracts';\nexport async function GET(req: Request) {\n  await requireAuthContext(req);\n  const { success, data } = Q.safeParse(Object.fromEntries(new URL(req.url).searchParams));\n  if (!success) return new Response(null, { status: 400 });\n  return Response.json(data);\n}\n");
    assert_eq!(verdict_of(&destructured).1, "contracts");
}

/// Drizzle-style handles connect as the database owner: RLS does not apply, so each query
/// must filter on the auth context's tenant, as on a service-role client.
#[test]
fn database_handle_queries_must_filter_on_the_auth_tenant() {
    let handler = |body: &str| {
        format!(
            "import {{ and, eq, or, sql }} from 'drizzle-orm';\nimport {{ db }} from '@/db';\nexport async function GET(req: Request) {{\n  const ctx = await requireAuthContext(req);\n  {body}\n  return new Response(null);\n}}\n"
        )
    };
    let toml = "[routes]\nguard_calls = [\"requireAuthContext\"]\ndatabase_handles = [\"db\"]\n";
    let judged = |body: &str, toml: &str| {
        let c = run_with("x/route.ts", &handler(body), toml, Kind::Route).unwrap();
        (rules(&c), c.report.handlers[0].note.clone())
    };
    for scoped in [
        "await db.select().from(t).where(eq(t.tenantId, ctx.tenantId));",
        "await db.select().from(t).where(and(eq(t.id, 'x'), eq(t.tenant_id, ctx.tenantId)));",
        "await db.query.t.findMany({ where: eq(t.tenantId, ctx.tenantId) });",
        "await db.insert(t).values({ tenantId: ctx.tenantId, name: 'n' });",
        "await db.execute(sql`delete from t where tenant_id = ${ctx.tenantId}`);",
    ] {
        let (r, note) = judged(scoped, toml);
        assert!(r.is_empty(), "{scoped}: {r:?}");
        assert!(note.contains("RLS-bypassing client (`db`)"), "{note}");
    }
    for open in [
        "await db.select().from(t);",
        "await db.select().from(t).where(eq(t.id, 'x'));",
        "await db.select().from(t).where(or(eq(t.tenantId, ctx.tenantId), eq(t.shared, true)));",
        "await db.delete(t);",
        "await db.update(t).set({ name: 'n' }).where(eq(t.tenantId, 'fixed'));",
        "await db.execute(sql`select * from t`);",
    ] {
        let (r, _) = judged(open, toml);
        assert_eq!(r, [Rule::ServiceRoleUnscoped], "{open}");
    }
    let c = run_with(
        "x/route.ts",
        &handler("await db.delete(t);"),
        toml,
        Kind::Route,
    )
    .unwrap();
    let m = &c.findings[0].message;
    assert!(
        m.contains("`db.delete(t)` on `db`, a database handle that connects as the owner")
            && m.contains("`.where(eq(<table>.tenantId, <tenant of the auth context>))`"),
        "{m}"
    );
    // The tenant from the query string: both findings.
    let (r, _) = judged(
        "const q = new URL(req.url).searchParams;\n  await db.select().from(t).where(eq(t.tenantId, q.get('tenant')));",
        toml,
    );
    assert!(
        r.contains(&Rule::ServiceRoleUnscoped) && r.contains(&Rule::TenantFromRequest),
        "{r:?}"
    );
    // Not configured and not made by `drizzle(...)`: `db` is not known to bypass RLS.
    let (r, _) = judged("await db.select().from(t);", GUARDS);
    assert!(r.is_empty(), "{r:?}");
    // Made by `drizzle(...)` in this file: a handle without being listed.
    let c = run(&handler("await db.select().from(t);").replace(
        "import { db } from '@/db';",
        "import { drizzle } from 'drizzle-orm/postgres-js';\nconst db = drizzle(process.env.DATABASE_URL!);",
    ));
    assert_eq!(rules(&c), [Rule::ServiceRoleUnscoped]);
}

/// A local helper given the auth context's tenant runs scoped queries; given another
/// value, not.
#[test]
fn a_local_helper_is_judged_with_the_arguments_it_is_given() {
    let code = |arg: &str| {
        format!(
            "async function list(tenant: string) {{\n  return supabaseAdmin.from('docs').select().eq('tenant_id', tenant);\n}}\nexport async function GET(req: Request) {{\n  const ctx = await requireAuthContext(req);\n  return Response.json(await list({arg}));\n}}\n"
        )
    };
    let toml =
        "[routes]\nguard_calls = [\"requireAuthContext\"]\nadmin_clients = [\"supabaseAdmin\"]\n";
    let run_arg =
        |arg: &str| rules(&run_with("x/route.ts", &code(arg), toml, Kind::Route).unwrap());
    assert!(run_arg("ctx.tenantId").is_empty());
    assert_eq!(run_arg("'t1'"), [Rule::ServiceRoleUnscoped]);
}
