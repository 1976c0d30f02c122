import { ProjectIdParams, UpdateProjectInput } from "@dashboard/contracts";
import type { NextRequest } from "next/server";

import { PROJECT_COLUMNS } from "@/server/columns";
import { badRequest, forbidden, json, noContent, notFound, serverError } from "@/server/http";
import { canManage, withAuth } from "@/server/middleware/auth";

type RouteContext = { params: Promise<{ id: string }> };

/** GET /api/projects/[id] */
export async function GET(req: NextRequest, { params }: RouteContext) {
  return withAuth(req, async ({ supabase, tenantId }) => {
    const { id } = ProjectIdParams.parse(await params);

    const { data, error } = await supabase
      .from("projects")
      .select(PROJECT_COLUMNS)
      .eq("tenant_id", tenantId)
      .eq("id", id)
      .maybeSingle();
    if (error) {
      return serverError(error);
    }
    if (!data) {
      return notFound("Project not found");
    }

    return json({ data });
  });
}

/** PATCH /api/projects/[id] — rename, describe, archive or restore. */
export async function PATCH(req: NextRequest, { params }: RouteContext) {
  return withAuth(req, async ({ supabase, tenantId }) => {
    const { id } = ProjectIdParams.parse(await params);
    const input = UpdateProjectInput.safeParse(await req.json().catch(() => null));
    if (!input.success) {
      return badRequest(input.error);
    }

    const { data, error } = await supabase
      .from("projects")
      .update(input.data)
      .eq("tenant_id", tenantId)
      .eq("id", id)
      .select(PROJECT_COLUMNS)
      .maybeSingle();
    if (error) {
      return serverError(error);
    }
    if (!data) {
      return notFound("Project not found");
    }

    return json({ data });
  });
}

/** DELETE /api/projects/[id] — owners and admins only; documents go with it (on delete cascade). */
export async function DELETE(req: NextRequest, { params }: RouteContext) {
  return withAuth(req, async ({ supabase, tenantId, role }) => {
    const { id } = ProjectIdParams.parse(await params);
    if (!canManage(role)) {
      return forbidden("Only owners and admins can delete projects");
    }

    const { data, error } = await supabase
      .from("projects")
      .delete()
      .eq("tenant_id", tenantId)
      .eq("id", id)
      .select("id");
    if (error) {
      return serverError(error);
    }
    if (data.length === 0) {
      return notFound("Project not found");
    }

    return noContent();
  });
}
