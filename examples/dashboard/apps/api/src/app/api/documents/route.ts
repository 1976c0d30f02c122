import { CreateDocumentInput, ListDocumentsQuery } from "@dashboard/contracts";
import type { NextRequest } from "next/server";

import { DOCUMENT_COLUMNS } from "@/server/columns";
import { badRequest, json, notFound, serverError } from "@/server/http";
import { withAuth } from "@/server/middleware/auth";

/** GET /api/documents?project_id=… — the tenant's documents, newest first. */
export async function GET(req: NextRequest) {
  return withAuth(req, async ({ supabase, tenantId }) => {
    const query = ListDocumentsQuery.parse(Object.fromEntries(req.nextUrl.searchParams));

    let documents = supabase
      .from("documents")
      .select(DOCUMENT_COLUMNS, { count: "exact" })
      .eq("tenant_id", tenantId);
    if (query.project_id) {
      documents = documents.eq("project_id", query.project_id);
    }

    const { data, error, count } = await documents
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

/** POST /api/documents — add a document to one of the tenant's projects. */
export async function POST(req: NextRequest) {
  return withAuth(req, async ({ supabase, tenantId, user }) => {
    const input = CreateDocumentInput.safeParse(await req.json().catch(() => null));
    if (!input.success) {
      return badRequest(input.error);
    }

    // The project must belong to the same tenant: never trust a client-sent id across tenants.
    const { data: project, error: projectError } = await supabase
      .from("projects")
      .select("id")
      .eq("tenant_id", tenantId)
      .eq("id", input.data.project_id)
      .maybeSingle();
    if (projectError) {
      return serverError(projectError);
    }
    if (!project) {
      return notFound("Project not found");
    }

    const { data, error } = await supabase
      .from("documents")
      .insert({ ...input.data, tenant_id: tenantId, created_by: user.id })
      .select(DOCUMENT_COLUMNS)
      .single();
    if (error) {
      return serverError(error);
    }

    return json({ data }, 201);
  });
}
