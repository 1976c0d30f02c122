import { describe, expect, it, vi } from "vitest";

import { GET, POST } from "@/app/api/projects/route";
import { createServerClient } from "@/server/supabase";

import { createFakeSupabase, PROJECT_ID, TENANT_A, type FakeSupabaseOptions } from "../support/fake-supabase";
import { apiRequest } from "../support/requests";

vi.mock("@/server/supabase", () => ({ createServerClient: vi.fn() }));

const project = {
  id: PROJECT_ID,
  tenant_id: TENANT_A,
  name: "Website relaunch",
  description: null,
  status: "active",
  created_at: "2025-02-03T09:30:00+00:00",
  updated_at: "2025-02-03T09:30:00+00:00",
};

function useSupabase(options: FakeSupabaseOptions = {}) {
  const fake = createFakeSupabase(options);
  vi.mocked(createServerClient).mockReturnValue(fake.client);
  return fake;
}

describe("GET /api/projects", () => {
  it("returns 401 without a token", async () => {
    useSupabase();

    const res = await GET(apiRequest("/api/projects", { token: null }));

    expect(res.status).toBe(401);
  });

  it("returns the tenant's projects and scopes the query with tenant_id", async () => {
    const fake = useSupabase({ results: { projects: [{ data: [project], error: null, count: 1 }] } });

    const res = await GET(apiRequest("/api/projects"));

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      data: [project],
      pagination: { limit: 20, offset: 0, total: 1 },
    });
    const [query] = fake.queriesOf("projects");
    expect(query.filters).toEqual({ tenant_id: TENANT_A });
    expect(query.argsOf("order")).toEqual(["created_at", { ascending: false }]);
    expect(query.argsOf("range")).toEqual([0, 19]);
  });

  it("applies the status filter and pagination from the query string", async () => {
    const fake = useSupabase();

    const res = await GET(apiRequest("/api/projects?status=archived&limit=10&offset=30"));

    expect(res.status).toBe(200);
    const [query] = fake.queriesOf("projects");
    expect(query.filters).toEqual({ tenant_id: TENANT_A, status: "archived" });
    expect(query.argsOf("range")).toEqual([30, 39]);
  });

  it("rejects an invalid query string with 400 before querying", async () => {
    const fake = useSupabase();

    const res = await GET(apiRequest("/api/projects?limit=500"));

    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("validation_error");
    expect(fake.queriesOf("projects")).toHaveLength(0);
  });
});

describe("POST /api/projects", () => {
  it("rejects an invalid body with 400 and inserts nothing", async () => {
    const fake = useSupabase();

    const res = await POST(apiRequest("/api/projects", { method: "POST", body: { name: "" } }));

    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.code).toBe("validation_error");
    expect(body.error.details.fieldErrors.name).toEqual(["Name is required"]);
    expect(fake.queriesOf("projects")).toHaveLength(0);
  });

  it("rejects a tenant_id sent by the client", async () => {
    const fake = useSupabase();

    const res = await POST(
      apiRequest("/api/projects", { method: "POST", body: { name: "Sneaky", tenant_id: TENANT_A } }),
    );

    expect(res.status).toBe(400);
    expect(fake.queriesOf("projects")).toHaveLength(0);
  });

  it("rejects malformed JSON with 400", async () => {
    useSupabase();

    const res = await POST(apiRequest("/api/projects", { method: "POST", body: "{name:" }));

    expect(res.status).toBe(400);
  });

  it("creates the project in the caller's tenant", async () => {
    const fake = useSupabase({ results: { projects: [{ data: project, error: null }] } });

    const res = await POST(
      apiRequest("/api/projects", { method: "POST", body: { name: "  Website relaunch " } }),
    );

    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ data: project });
    const [insert] = fake.queriesOf("projects");
    expect(insert.argsOf("insert")).toEqual([{ name: "Website relaunch", tenant_id: TENANT_A }]);
  });
});
