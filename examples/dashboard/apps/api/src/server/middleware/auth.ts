import { TenantRole, Uuid } from "@dashboard/contracts";
import type { User } from "@supabase/supabase-js";
import type { NextRequest } from "next/server";
import { ZodError } from "zod";

import { badRequest, errorResponse, forbidden, serverError, unauthorized } from "@/server/http";
import { createServerClient, type ServerSupabaseClient } from "@/server/supabase";

/** Selects the active tenant when the caller belongs to several. */
export const TENANT_HEADER = "x-tenant-id";

export type AuthContext = {
  /** Client acting as the caller: RLS applies to every query made with it. */
  supabase: ServerSupabaseClient;
  user: User;
  /** The tenant every query of the handler must be scoped to. */
  tenantId: string;
  role: TenantRole;
};

export type AuthenticatedHandler = (ctx: AuthContext) => Promise<Response>;

function bearerToken(req: NextRequest): string | null {
  const header = req.headers.get("authorization");
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  return match ? match[1] : null;
}

/**
 * Guards a route handler: authenticates the bearer token with Supabase Auth,
 * resolves the caller's tenant from `tenant_members` (optionally chosen with the
 * `x-tenant-id` header, which must name one of the caller's tenants) and calls
 * `handler` with the tenant-scoped context.
 *
 * 401 without a valid token, 403 without membership of the tenant.
 * A `ZodError` thrown by the handler (e.g. from `Schema.parse`) becomes a 400,
 * anything else a 500 without details.
 */
export async function withAuth(req: NextRequest, handler: AuthenticatedHandler): Promise<Response> {
  const token = bearerToken(req);
  if (!token) {
    return unauthorized("Missing bearer token");
  }

  const requestedTenant = req.headers.get(TENANT_HEADER);
  if (requestedTenant !== null && !Uuid.safeParse(requestedTenant).success) {
    return errorResponse(400, "invalid_tenant", `${TENANT_HEADER} must be a UUID`);
  }

  try {
    const supabase = createServerClient(token);

    const {
      data: { user },
      error: userError,
    } = await supabase.auth.getUser(token);
    if (userError || !user) {
      return unauthorized("Invalid or expired token");
    }

    const { data: memberships, error: membershipError } = await supabase
      .from("tenant_members")
      .select("tenant_id, role")
      .eq("user_id", user.id);
    if (membershipError) {
      return serverError(membershipError);
    }

    const membership = requestedTenant
      ? memberships.find((m) => m.tenant_id === requestedTenant)
      : memberships.length === 1
        ? memberships[0]
        : undefined;

    if (!membership) {
      if (requestedTenant !== null || memberships.length === 0) {
        return forbidden("Not a member of this tenant");
      }
      return errorResponse(
        400,
        "tenant_required",
        `You belong to several tenants: send the ${TENANT_HEADER} header`,
      );
    }

    const role = TenantRole.safeParse(membership.role);
    if (!role.success) {
      return forbidden("Unknown tenant role");
    }

    return await handler({ supabase, user, tenantId: membership.tenant_id, role: role.data });
  } catch (error) {
    if (error instanceof ZodError) {
      return badRequest(error);
    }
    return serverError(error);
  }
}

/** Roles allowed to delete or archive tenant data. */
export function canManage(role: TenantRole): boolean {
  return role === "owner" || role === "admin";
}
