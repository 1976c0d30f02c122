import { NextResponse } from "next/server";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";

import { withAuth, type AuthContext } from "@/server/middleware/auth";
import { createServerClient } from "@/server/supabase";

import { createFakeSupabase, TENANT_A, TENANT_B, USER } from "../support/fake-supabase";
import { apiRequest } from "../support/requests";

vi.mock("@/server/supabase", () => ({ createServerClient: vi.fn() }));

const ok = vi.fn(async (_ctx: AuthContext) => NextResponse.json({ ok: true }));

function useSupabase(options: Parameters<typeof createFakeSupabase>[0] = {}) {
  const fake = createFakeSupabase(options);
  vi.mocked(createServerClient).mockReturnValue(fake.client);
  return fake;
}

describe("withAuth", () => {
  beforeEach(() => {
    useSupabase();
  });

  it("returns 401 without a bearer token and never reaches Supabase", async () => {
    const res = await withAuth(apiRequest("/api/projects", { token: null }), ok);

    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: { code: "unauthorized", message: "Missing bearer token" },
    });
    expect(createServerClient).not.toHaveBeenCalled();
    expect(ok).not.toHaveBeenCalled();
  });

  it("returns 401 for a non-bearer Authorization header", async () => {
    const req = apiRequest("/api/projects", { token: null, headers: { authorization: "Basic YWRhOnB3" } });

    const res = await withAuth(req, ok);

    expect(res.status).toBe(401);
    expect(ok).not.toHaveBeenCalled();
  });

  it("returns 401 when Supabase Auth rejects the token", async () => {
    const fake = useSupabase({ user: null });

    const res = await withAuth(apiRequest("/api/projects", { token: "expired" }), ok);

    expect(res.status).toBe(401);
    expect(createServerClient).toHaveBeenCalledWith("expired");
    expect(fake.auth.getUser).toHaveBeenCalledWith("expired");
    expect(ok).not.toHaveBeenCalled();
  });

  it("returns 403 when the user belongs to no tenant", async () => {
    useSupabase({ memberships: [] });

    const res = await withAuth(apiRequest("/api/projects"), ok);

    expect(res.status).toBe(403);
    expect(ok).not.toHaveBeenCalled();
  });

  it("returns 403 when x-tenant-id names a tenant the user is not a member of", async () => {
    const res = await withAuth(apiRequest("/api/projects", { tenantId: TENANT_B }), ok);

    expect(res.status).toBe(403);
    expect((await res.json()).error.code).toBe("forbidden");
    expect(ok).not.toHaveBeenCalled();
  });

  it("returns 400 for an x-tenant-id that is not a uuid", async () => {
    const res = await withAuth(apiRequest("/api/projects", { tenantId: "acme" }), ok);

    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("invalid_tenant");
  });

  it("asks for x-tenant-id when the user belongs to several tenants", async () => {
    useSupabase({
      memberships: [
        { tenant_id: TENANT_A, role: "member" },
        { tenant_id: TENANT_B, role: "owner" },
      ],
    });

    const res = await withAuth(apiRequest("/api/projects"), ok);

    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("tenant_required");
  });

  it("calls the handler with the user, the chosen tenant and the role", async () => {
    const fake = useSupabase({
      memberships: [
        { tenant_id: TENANT_A, role: "member" },
        { tenant_id: TENANT_B, role: "owner" },
      ],
    });

    const res = await withAuth(apiRequest("/api/projects", { tenantId: TENANT_B }), ok);

    expect(res.status).toBe(200);
    expect(ok).toHaveBeenCalledWith({
      supabase: fake.client,
      user: USER,
      tenantId: TENANT_B,
      role: "owner",
    });
    const [membershipQuery] = fake.queriesOf("tenant_members");
    expect(membershipQuery.filters).toEqual({ user_id: USER.id });
  });

  it("turns a ZodError thrown by the handler into a 400", async () => {
    const res = await withAuth(apiRequest("/api/projects"), async () => {
      z.object({ id: z.string().uuid() }).parse({ id: "nope" });
      return NextResponse.json({});
    });

    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.code).toBe("validation_error");
    expect(body.error.details.fieldErrors.id).toBeDefined();
  });

  it("turns any other error into a 500 without details", async () => {
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});

    const res = await withAuth(apiRequest("/api/projects"), async () => {
      throw new Error("connection refused: db.internal:5432");
    });

    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({
      error: { code: "internal_error", message: "Something went wrong" },
    });
    expect(consoleError).toHaveBeenCalled();
    consoleError.mockRestore();
  });
});
