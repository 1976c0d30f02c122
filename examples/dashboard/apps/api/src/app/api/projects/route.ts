import { CreateProjectInput, ListProjectsQuery } from "@dashboard/contracts";
import type { NextRequest } from "next/server";

import { PROJECT_COLUMNS } from "@/server/columns";
import { badRequest, json, serverError } from "@/server/http";
import { withAuth } from "@/server/middleware/auth";

/** GET /api/projects — the tenant's projects, newest first. */
export async function GET(req: NextRequest) {
  return withAuth(req, async ({ supabase, tenantId }) => {
    const query = ListProjectsQuery.parse(Object.fromEntries(req.nextUrl.searchParams));

    let projects = supabase
      .from("projects")
      .select(PROJECT_COLUMNS, { count: "exact" })
      .eq("tenant_id", tenantId);
    if (query.status) {
      projects = projects.eq("status", query.status);
    }

    const { data, error, count } = await projects
      .order("created_at", { ascending: false })
      .range(query.offset, query.offset + query.limit - 1);
    if (error) {
      return serverError(error);
    }

    return json({
      data,
      pagination: { limit: query.limit, offset: query.offset, total: count },
    });
  });
}

/** POST /api/projects — create a project in the caller's tenant. */
export async function POST(req: NextRequest) {
  return withAuth(req, async ({ supabase, tenantId }) => {
    const input = CreateProjectInput.safeParse(await req.json().catch(() => null));
    if (!input.success) {
      return badRequest(input.error);
    }

    const { data, error } = await supabase
      .from("projects")
      .insert({ ...input.data, tenant_id: tenantId })
      .select(PROJECT_COLUMNS)
      .single();
    if (error) {
      return serverError(error);
    }

    return json({ data }, 201);
  });
}
