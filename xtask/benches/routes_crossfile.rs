//! Route checks on 1,000 generated route files whose handlers reach helpers in other files
//! (a factory, a wrapper, a body reader, a guard chain through a workspace package, an
//! admin client, a rate limiter), through a tsconfig `@/*` path and package names. Prints
//! figures; asserts the verdicts, nothing about speed.
//!
//!     cargo bench --bench routes_crossfile

use std::{
    path::Path,
    time::{Duration, Instant},
};

use xtask::{
    config::Config,
    gather::routes::analyze,
    repo::Changes,
    rules::routes::{check, graph::Graph, placement, Kind, Settings},
    ts::{self, Source},
};

const ROUNDS: usize = 5;
const ROUTES: usize = 1000;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Route shapes, `{i}` replaced by the route number; each imports helpers of `src/lib`.
const SHAPES: [&str; 4] = [
    r#"import { createHandler } from "@/lib/handler";
import { ListQuery } from "@bench/contracts";

export const dynamic = "force-dynamic";

export const GET = createHandler(async (req, ctx) => {
  const q = ListQuery.parse(Object.fromEntries(new URL(req.url).searchParams));
  const { data } = await ctx.supabase.from("items_{i}").select("*").eq("tenant_id", ctx.tenantId).range(q.offset, q.offset + q.limit);
  return Response.json({ data });
});
"#,
    r#"import { CreateInput, IdParams } from "@bench/contracts";
import { requireMember } from "@/lib/guards";
import { parseJson } from "@/lib/http";

export async function PATCH(req: Request, context: { params: Promise<{ id: string }> }) {
  const ctx = await requireMember(req);
  const { id } = IdParams.parse(await context.params);
  const input = CreateInput.parse(await parseJson(req));
  const { data } = await ctx.supabase.from("items_{i}").update(input).eq("tenant_id", ctx.tenantId).eq("id", id);
  return Response.json({ data });
}
"#,
    r#"import { createHash } from "node:crypto";
import { rateLimit } from "@/lib/rate-limit";

export async function GET(req: Request) {
  const ip = req.headers.get("x-forwarded-for") ?? "anonymous";
  const key = createHash("sha256").update(ip).digest("hex");
  const { success } = await rateLimit(key);
  if (!success) return new Response(null, { status: 429 });
  return Response.json({ status: "ok", route: {i} });
}
"#,
    r#"import { requireAuthContext } from "@bench/auth/guard";
import { createAdminClient } from "@/lib/admin";

export async function DELETE(req: Request) {
  const ctx = await requireAuthContext(req);
  const admin = createAdminClient();
  await admin.from("audit_{i}").delete().eq("tenant_id", ctx.tenantId);
  return new Response(null, { status: 204 });
}
"#,
];

fn helpers(repo: &Path) {
    write(
        repo,
        "package.json",
        r#"{ "name": "bench", "private": true }"#,
    );
    write(
        repo,
        "apps/api/tsconfig.json",
        r#"{ "compilerOptions": { "baseUrl": ".", "paths": { "@/*": ["./src/*"] } } }"#,
    );
    write(repo, "apps/api/package.json", r#"{ "name": "@bench/api" }"#);
    write(
        repo,
        "packages/contracts/package.json",
        r#"{ "name": "@bench/contracts", "main": "src/index.ts" }"#,
    );
    write(
        repo,
        "packages/contracts/src/index.ts",
        "import { z } from \"zod\";\nexport const ListQuery = z.object({ limit: z.number(), offset: z.number() });\nexport const CreateInput = z.object({ name: z.string() });\nexport const IdParams = z.object({ id: z.string() });\n",
    );
    write(
        repo,
        "packages/auth/package.json",
        r#"{ "name": "@bench/auth", "exports": { "./guard": "./src/guard.ts" } }"#,
    );
    write(
        repo,
        "packages/auth/src/guard.ts",
        "export async function requireAuthContext(req: Request) {\n  const token = req.headers.get(\"authorization\");\n  if (!token) throw new Error(\"unauthorized\");\n  return { tenantId: \"t\", supabase: {} as any };\n}\n",
    );
    write(
        repo,
        "apps/api/src/lib/handler.ts",
        "import { requireAuthContext } from \"@bench/auth/guard\";\nexport function createHandler(h: (req: Request, ctx: any) => Promise<Response>) {\n  return async (req: Request) => {\n    const ctx = await requireAuthContext(req);\n    return h(req, ctx);\n  };\n}\n",
    );
    write(
        repo,
        "apps/api/src/lib/guards.ts",
        "import { requireAuthContext } from \"@bench/auth/guard\";\nexport async function requireAdmin(req: Request) {\n  return await requireAuthContext(req);\n}\nexport async function requireMember(req: Request) {\n  const ctx = await requireAdmin(req);\n  return ctx;\n}\n",
    );
    write(
        repo,
        "apps/api/src/lib/http.ts",
        "export async function parseJson(req: Request): Promise<unknown> {\n  return req.json();\n}\n",
    );
    write(
        repo,
        "apps/api/src/lib/admin.ts",
        "import { createClient } from \"@supabase/supabase-js\";\nexport function createAdminClient() {\n  return createClient(process.env.SUPABASE_URL!, process.env.SUPABASE_SERVICE_ROLE_KEY!);\n}\n",
    );
    write(
        repo,
        "apps/api/src/lib/rate-limit.ts",
        "export async function rateLimit(key: string) {\n  return { success: key.length > 0 };\n}\n",
    );
}

/// CPU time of this process (user + system): on a machine shared with other builds, wall
/// time mostly measures the others.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes one `rusage` into the zeroed value it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/route-bench-crossfile");
    let _ = std::fs::remove_dir_all(&repo);
    helpers(&repo);
    let mut bytes = 0;
    for i in 0..ROUTES {
        let shape = SHAPES[i % SHAPES.len()].replace("{i}", &i.to_string());
        let dir = if i % SHAPES.len() == 2 {
            format!("public/r{i}")
        } else {
            format!("r{i}/[id]")
        };
        bytes += shape.len();
        write(
            &repo,
            &format!("apps/api/src/app/api/{dir}/route.ts"),
            &shape,
        );
    }
    let config = Config::parse(
        "[routes]\nguard_calls = [\"requireAuthContext\"]\nrate_limiters = [\"rateLimit\"]\n\n[contracts]\npackage = \"packages/contracts\"\n",
    )
    .unwrap();
    let mut times: Vec<Duration> = Vec::new();
    let mut cpu: Vec<Duration> = Vec::new();
    let mut last = None;
    for _ in 0..ROUNDS {
        let (started, cpu_started) = (Instant::now(), cpu_time());
        let ev = analyze(&repo, &config, &Changes::all()).unwrap();
        times.push(started.elapsed());
        cpu.push(cpu_time() - cpu_started);
        last = Some(ev);
    }
    let ev = last.unwrap();
    times.sort();
    cpu.sort();

    // The same files read, parsed and checked one at a time, without following imports
    // (the checker before issue 15), and with the import graph: what following costs.
    let settings = Settings::new(&config, Some("@bench/contracts".into()));
    let files: Vec<(String, String)> = (0..ROUTES)
        .map(|i| {
            let dir = if i % SHAPES.len() == 2 {
                format!("public/r{i}")
            } else {
                format!("r{i}/[id]")
            };
            let rel = format!("{dir}/route.ts");
            let path = format!("apps/api/src/app/api/{rel}");
            (rel, path)
        })
        .collect();
    let mut alone = Vec::new();
    let mut graphed = Vec::new();
    for round in 0..2 * ROUNDS {
        let with_graph = round % 2 == 1;
        let cpu_started = cpu_time();
        let graph = with_graph.then(|| Graph::new(&repo, &settings));
        let mut alloc = oxc_allocator::Allocator::default();
        for (rel, path) in &files {
            let text = std::fs::read_to_string(repo.join(path)).unwrap();
            alloc.reset();
            let src = Source::new(path, &text);
            let parsed = ts::parse(&alloc, &src);
            let place = placement(&config.routes, rel);
            check(
                &src,
                parsed.as_ref(),
                &settings,
                Kind::Route,
                &place,
                graph.as_ref(),
            )
            .unwrap();
        }
        let spent = cpu_time() - cpu_started;
        if with_graph {
            graphed.push(spent)
        } else {
            alone.push(spent)
        }
    }
    alone.sort();
    graphed.sort();
    println!(
        "routes_crossfile: the checks alone (read, parse, check; CPU): one file at a time min {:.0} ms, median {:.0} ms; following imports min {:.0} ms, median {:.0} ms",
        alone[0].as_secs_f64() * 1000.0,
        alone[ROUNDS / 2].as_secs_f64() * 1000.0,
        graphed[0].as_secs_f64() * 1000.0,
        graphed[ROUNDS / 2].as_secs_f64() * 1000.0,
    );
    let handlers: usize = ev.routes.iter().map(|r| r.handlers.len()).sum();
    println!(
        "routes_crossfile: {} route files ({} KiB, {handlers} handlers, 7 helper files in 3 packages), {} findings: wall min {:.0} ms, median {:.0} ms; CPU (user+sys) min {:.0} ms, median {:.0} ms; over {ROUNDS} rounds",
        ev.routes.len(),
        bytes / 1024,
        ev.findings.len(),
        times[0].as_secs_f64() * 1000.0,
        times[ROUNDS / 2].as_secs_f64() * 1000.0,
        cpu[0].as_secs_f64() * 1000.0,
        cpu[ROUNDS / 2].as_secs_f64() * 1000.0,
    );
    assert_eq!(ev.routes.len(), ROUTES);
    let bad: Vec<_> = ev
        .routes
        .iter()
        .flat_map(|r| r.handlers.iter().map(move |h| (r.path.clone(), h.clone())))
        .filter(|(_, h)| !(h.auth == "guarded" || h.auth == "exempt"))
        .take(3)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(
        ev.findings.is_empty(),
        "{:#?}",
        &ev.findings[..ev.findings.len().min(5)]
    );
}
