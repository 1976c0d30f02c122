//! Route handlers init exempts by what they do, each with its evidence as the reason: what a
//! maintainer writes in `[routes] exempt` after reading them.
//! - a Supabase sign-in callback (`exchangeCodeForSession`, `verifyOtp`, `verifyTokenHash`);
//! - the same content for everyone and no user read: a file at a fixed URL
//!   (`llms.txt/route.ts`, `sitemap.xml/route.ts`), an Open Graph image (`new
//!   ImageResponse`), a route Next.js builds once (`dynamic = 'force-static'`);
//! - a machine-to-machine hook that refuses a request without a shared secret first
//!   (`if (secret !== process.env.API_ROUTE_SECRET) return ... 401`);
//! - a tRPC adapter (`fetchRequestHandler`): authorisation is per procedure, which the route
//!   checker does not read (the reason says so);
//! - a folder the app's middleware closes to a request without a user ([`middleware`]).
//!
//! A handler that reads cookies, the session or a database handle is never "the same for
//! everyone".

use std::collections::BTreeMap;

use regex::Regex;

use super::Files;

/// Why the handlers of a route file (its folder `dir`, relative to the root) need no guard.
pub(super) fn evidence(dir: &str, text: &str) -> Option<String> {
    // Supabase's sign-in callbacks (a code or one-time token exchanged for a session) are
    // reached before there is a user.
    if ["exchangeCodeForSession(", "verifyOtp(", "verifyTokenHash("]
        .iter()
        .any(|c| text.contains(c))
    {
        return Some("a Supabase sign-in callback (exchanges a code or a one-time token for a session), reached before there is a user".into());
    }
    if let Some(why) = token_link(dir, text) {
        return Some(why);
    }
    if text.contains("fetchRequestHandler(") {
        return Some("hands every request to tRPC (`fetchRequestHandler`): authorisation is per procedure, which xtask does not read; check that each procedure reading tenant data is a protected one".into());
    }
    if let Some(secret) = shared_secret(text) {
        return Some(format!("a machine-to-machine hook: it refuses a request without the shared secret `{secret}` (401/403) before anything else"));
    }
    served(dir, text).map(str::to_string)
}

/// A form a visitor without an account submits (a newsletter, waitlist or contact form): a
/// POST whose body has an email validated as one (`z.string().email()`), and that reads no
/// user, cookie, session or database handle. Proposed as `public`, which still asks for a
/// rate limiter.
pub(super) fn visitor_form(text: &str) -> bool {
    text.contains("function POST")
        && Regex::new(r"email\s*:\s*z\s*\.\s*string\(\)[^,\n]*\.email\(")
            .unwrap()
            .is_match(text)
        && !reads_user_or_data(text)
        && !text.contains("db.")
}

/// Does the file read the request's user, its cookies or headers, or a database handle?
fn reads_user_or_data(text: &str) -> bool {
    [
        "cookies(",
        "headers(",
        ".auth.",
        "getUser",
        "getSession",
        "createClient",
        "Supabase",
        "supabase",
        "drizzle",
        "prisma",
    ]
    .iter()
    .any(|u| text.contains(u))
}

/// The same content for everyone.
fn served(dir: &str, text: &str) -> Option<&'static str> {
    if reads_user_or_data(text) {
        return None;
    }
    let only_get = !["POST", "PUT", "PATCH", "DELETE"]
        .iter()
        .any(|m| text.contains(&format!("function {m}")) || text.contains(&format!("const {m}")));
    if !only_get {
        return None;
    }
    let last = dir.rsplit('/').next().unwrap_or(dir);
    let file_like = last.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && matches!(ext, "txt" | "xml" | "json" | "webmanifest" | "ico" | "png")
    });
    let force_static = Regex::new(r#"export\s+const\s+dynamic\s*=\s*['"]force-static['"]"#)
        .unwrap()
        .is_match(text);
    if file_like {
        Some("a file served at a fixed URL (GET only, reads no user, cookie or database): public content")
    } else if text.contains("new ImageResponse(") {
        Some("renders an Open Graph image (`new ImageResponse(...)`) and reads no user, cookie or database")
    } else if force_static {
        Some("a static route (`export const dynamic = 'force-static'`): Next.js builds it once and serves the same response to everyone; it reads no user, cookie or database")
    } else {
        None
    }
}

/// A link that carries its own credential: a dynamic segment named like a token
/// (`confirm-delete-user/[token]`) that the handler looks up (`.eq('token', token)`) and
/// refuses (4xx) without a match, as a magic or unsubscribe link works.
fn token_link(dir: &str, text: &str) -> Option<String> {
    let segment = dir.split('/').find_map(|s| {
        let name = s.strip_prefix('[')?.strip_suffix(']')?;
        name.to_lowercase()
            .contains("token")
            .then(|| name.to_string())
    })?;
    let looked_up = Regex::new(&format!(
        r#"\.eq\(\s*['"]\w*token\w*['"]\s*,\s*(?:\w+\.)*{}\b"#,
        regex::escape(&segment)
    ))
    .unwrap()
    .is_match(text);
    let refused = Regex::new(r"status\s*:\s*4\d\d").unwrap().is_match(text);
    (looked_up && refused).then(|| {
        format!("a one-time link: the request carries its `[{segment}]`, which the handler looks up and refuses (4xx) without a match")
    })
}

/// Where a guard's own body refuses on a failed check: the file defining `name` (`export
/// const name = async () => {...}` or `export async function name`) whose body has an `if`
/// that throws, redirects or answers 401/403.
pub(super) fn refuses(root: &std::path::Path, files: &Files, name: &str) -> Option<String> {
    let def = Regex::new(&format!(
        r"export\s+(?:const\s+{n}\s*=\s*(?:async\s*)?\([^)]*\)\s*(?::[^=]+)?=>|(?:async\s+)?function\s+{n}\s*\()",
        n = regex::escape(name)
    ))
    .ok()?;
    let refusal = Regex::new(r"if\s*\([^)]*\)\s*\{?\s*(?:throw\b|return\s+[^;]*status\s*:\s*40[13]|redirect\(|notFound\()").unwrap();
    for p in files.paths.iter().filter(|p| crate::ts::is_code(p)) {
        let Ok(text) = std::fs::read_to_string(root.join(p)) else {
            continue;
        };
        let Some(m) = def.find(&text) else { continue };
        // The body: up to the next top-level export (or 2,000 characters).
        let rest = &text[m.end()..];
        let end = rest.find("\nexport ").unwrap_or(rest.len()).min(2000);
        if refusal.is_match(&rest[..rest.floor_char_boundary(end)]) {
            return Some(p.clone());
        }
    }
    None
}

/// `if (x !== process.env.SECRET) { return ... { status: 401 } }` near the top of a handler:
/// the secret's name.
fn shared_secret(text: &str) -> Option<String> {
    let check = Regex::new(
        r"if\s*\(\s*[\w.]+(?:\([^()]*\))?\s*!==?\s*process\.env\.(\w+)\s*\)\s*\{?\s*return\b[^;]{0,160}?status\s*:\s*40[13]",
    )
    .unwrap();
    let c = check.captures(text)?;
    // Before the handler touches anything: no database, storage or payment call above it.
    let above = &text[..c.get(0)?.start()];
    if [
        "supabase", "Supabase", "drizzle", "prisma", ".from(", ".insert(", "fetch(",
    ]
    .iter()
    .any(|u| {
        above
            .lines()
            .any(|l| !l.trim_start().starts_with("import") && l.contains(u))
    }) {
        return None;
    }
    let name = &c[1];
    let lower = name.to_lowercase();
    (lower.contains("secret") || lower.contains("token") || lower.contains("key"))
        .then(|| format!("process.env.{name}"))
}

/// Route folders (relative to `route_root`) the app's middleware refuses to a request
/// without a user: a `middleware.ts` of the app that calls (itself, or through a function it
/// imports) `auth.getUser()` and then redirects or refuses when `!user &&
/// pathname.startsWith("/api/protected")`. With the evidence.
pub(super) fn middleware(
    root: &std::path::Path,
    files: &Files,
    route_root: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // The app: the route root's directory above `app` (`apps/web/src/app` → `apps/web/src`).
    let Some(app_dir) = route_root
        .strip_suffix("/app")
        .or_else(|| route_root.strip_suffix("/app/api"))
        .or_else(|| (route_root == "app" || route_root == "app/api").then_some(""))
    else {
        return out;
    };
    let prefix = if app_dir.is_empty() {
        String::new()
    } else {
        format!("{app_dir}/")
    };
    let Some(mw) = ["middleware.ts", "middleware.js"]
        .iter()
        .map(|m| format!("{prefix}{m}"))
        .find(|m| files.paths.contains(m))
    else {
        return out;
    };
    let Ok(mw_text) = std::fs::read_to_string(root.join(&mw)) else {
        return out;
    };
    let gate = Regex::new(r"!\s*user\s*&&\s*\(?((?:[^{;]|\n)*?)\)\s*\{").unwrap();
    let starts = Regex::new(r#"pathname\s*\.\s*startsWith\s*\(\s*["'](/[^"']*)["']\s*\)"#).unwrap();
    // The middleware itself, and the files of the functions it imports and calls, found as
    // the route checker finds imports (tsconfig `paths`, relative files, workspace packages).
    let import = Regex::new(r#"import\s*\{([^}]*)\}\s*from\s*["']([^"']+)["']"#).unwrap();
    let resolver = crate::rules::routes::resolve::Resolver::new(root);
    let mut texts = vec![(mw.clone(), mw_text.clone())];
    for c in import.captures_iter(&mw_text) {
        let called = c[1]
            .split(',')
            .map(|n| n.trim().trim_start_matches("type ").trim())
            .any(|n| !n.is_empty() && mw_text.contains(&format!("{n}(")));
        let Some(file) = called
            .then(|| resolver.resolve(&root.join(&mw), &c[2]))
            .flatten()
        else {
            continue;
        };
        if let Ok(t) = std::fs::read_to_string(&file) {
            let path = file
                .strip_prefix(root)
                .map(crate::repo::to_slash)
                .unwrap_or_else(|_| file.display().to_string());
            texts.push((path, t));
        }
    }
    for (path, text) in texts {
        if !text.contains("auth.getUser(") {
            continue;
        }
        for g in gate.captures_iter(&text) {
            let after = &text[g.get(0).map_or(0, |m| m.end())..];
            let a = &after[..after.floor_char_boundary(400)];
            let refuses =
                a.contains("redirect") || a.contains("status: 401") || a.contains("status: 403");
            if !refuses {
                continue;
            }
            for s in starts.captures_iter(&g[1]) {
                let url = s[1].trim_matches('/');
                if url.is_empty() {
                    continue;
                }
                // A URL prefix under `api/` of a root that is `app/api` drops the `api/`.
                let folder = if route_root.ends_with("/api") || route_root == "api" {
                    url.strip_prefix("api/").unwrap_or(url).to_string()
                } else {
                    url.to_string()
                };
                out.insert(
                    folder,
                    format!("guarded by middleware: {mw} runs {path}, which checks the user with `auth.getUser()` and redirects or refuses a request without one under `/{url}`"),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_public_by_what_they_serve() {
        let text = "export async function GET() { return new Response(await render()); }";
        assert!(served("(llms)/llms.txt", text).is_some());
        assert!(served("sitemap.xml", text).is_some());
        // Not a file name: a folder with a dot elsewhere, or none.
        assert!(served("v1.2/items", text).is_none());
        assert!(served("version", text).is_none());
        let fixed = format!("export const dynamic = 'force-static';\n{text}");
        assert!(served("version", &fixed).is_some());
        let og = "import { ImageResponse } from 'next/og';\nexport async function GET(req: Request) { return new ImageResponse(<div />); }";
        assert!(served("api/blog-og/[title]", og).is_some());
        // Reading the user, a cookie or a database, or writing: never settled here.
        let reads = "import { cookies } from 'next/headers';\nexport async function GET() { cookies(); return new ImageResponse(<div />); }";
        assert!(served("api/og", reads).is_none());
        let db = "export async function GET() { const supabase = createClient(); return new Response(''); }";
        assert!(served("feed.xml", db).is_none());
        let posts = "export async function POST() { return new Response(''); }";
        assert!(served("hook.json", posts).is_none());
    }

    #[test]
    fn a_form_for_visitors() {
        let form = "import { z } from 'zod';\nexport async function POST(request: Request) {\n  const body = z.object({ email: z.string().trim().email('Invalid'), name: z.string() }).parse(await request.json());\n  await fetch(process.env.HOOK_URL!, { method: 'POST', body: JSON.stringify(body) });\n  return Response.json({ ok: true });\n}";
        assert!(visitor_form(form));
        // Writing our database, or reading the user: not a visitor's form.
        assert!(!visitor_form(&form.replace(
            "await fetch(",
            "await supabase.from('leads').insert(body); await fetch("
        )));
        assert!(!visitor_form(&form.replace(
            "email: z.string().trim().email('Invalid')",
            "email: z.string()"
        )));
    }

    #[test]
    fn a_shared_secret_checked_first_and_trpc() {
        let hook = "export async function POST(req: NextRequest) {\n  const secret = new URL(req.url).searchParams.get('s');\n  if (secret !== process.env.HOOK_SECRET) {\n    return NextResponse.json({ message: 'no' }, { status: 401 });\n  }\n  await supabaseAdmin.from('x').insert({});\n}";
        assert!(evidence("api/hook", hook).is_some_and(|w| w.contains("process.env.HOOK_SECRET")));
        // Compared with something that is no secret, or not refused: nothing.
        let url = hook.replace("HOOK_SECRET", "NEXT_PUBLIC_URL");
        assert!(evidence("api/hook", &url).is_none());
        let logged = hook.replace("status: 401", "status: 200");
        assert!(evidence("api/hook", &logged).is_none());
        // Checked only after the handler has written: nothing.
        let late = hook.replace(
            "  const secret",
            "  await supabaseAdmin.from('log').insert({});\n  const secret",
        );
        assert!(evidence("api/hook", &late).is_none());
        let link = "export async function GET(req: Request, { params }: { params: unknown }) {\n  const token = schema.parse(params).token;\n  const { data } = await admin.from('delete_tokens').select('user_id').eq('token', token).single();\n  if (!data) return new Response('expired', { status: 404 });\n}";
        assert!(evidence("confirm/[token]", link).is_some_and(|w| w.contains("one-time link")));
        // Not looked up, or not in a token segment: nothing.
        assert!(evidence("confirm/[id]", link).is_none());
        let unchecked = link.replace(".eq('token', token)", "");
        assert!(evidence("confirm/[token]", &unchecked).is_none());
        let trpc = "const handler = (req: Request) => fetchRequestHandler({ endpoint: '/api/trpc', req, router });\nexport { handler as GET, handler as POST };";
        assert!(evidence("api/trpc/[trpc]", trpc).is_some_and(|w| w.contains("per procedure")));
    }
}
