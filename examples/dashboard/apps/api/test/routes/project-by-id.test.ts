import { describe, expect, it, vi } from "vitest";

import { DELETE, GET, PATCH } from "@/app/api/projects/[id]/route";
import { createServerClient } from "@/server/supabase";

import { createFakeSupabase, PROJECT_ID, TENANT_A, type FakeSupabaseOptions } from "../support/fake-supabase";
import { apiRequest, routeContext } from "../support/requests";

vi.mock("@/server/supabase", () => ({ createServerClient: vi.fn() }));

function useSupabase(options: FakeSupabaseOptions = {}) {
  const fake = createFakeSupabase(options);
  vi.mocked(createServerClient).mockReturnValue(fake.client);
  return fake;
}

const path = `/api/projects/${PROJECT_ID}`;

describe("/api/projects/[id]", () => {
  it("GET rejects an id that is not a uuid", async () => {
    const fake = useSupabase();

    const res = await GET(apiRequest("/api/projects/42"), routeContext({ id: "42" }));

    expect(res.status).toBe(400);
    expect(fake.queriesOf("projects")).toHaveLength(0);
  });

  it("GET answers 404 for a project outside the tenant", async () => {
    const fake = useSupabase({ results: { projects: [{ data: null, error: null }] } });

    const res = await GET(apiRequest(path), routeContext({ id: PROJECT_ID }));

    expect(res.status).toBe(404);
    expect(fake.queriesOf("projects")[0].filters).toEqual({ tenant_id: TENANT_A, id: PROJECT_ID });
  });

  it("PATCH updates only within the tenant", async () => {
    const updated = { id: PROJECT_ID, tenant_id: TENANT_A, status: "archived" };
    const fake = useSupabase({ results: { projects: [{ data: updated, error: null }] } });

    const res = await PATCH(
      apiRequest(path, { method: "PATCH", body: { status: "archived" } }),
      routeContext({ id: PROJECT_ID }),
    );

    expect(res.status).toBe(200);
    const [update] = fake.queriesOf("projects");
    expect(update.argsOf("update")).toEqual([{ status: "archived" }]);
    expect(update.filters).toEqual({ tenant_id: TENANT_A, id: PROJECT_ID });
  });

  it("PATCH rejects an empty update", async () => {
    useSupabase();

    const res = await PATCH(apiRequest(path, { method: "PATCH", body: {} }), routeContext({ id: PROJECT_ID }));

    expect(res.status).toBe(400);
  });

  it("DELETE is forbidden to plain members", async () => {
    const fake = useSupabase({ memberships: [{ tenant_id: TENANT_A, role: "member" }] });

    const res = await DELETE(apiRequest(path, { method: "DELETE" }), routeContext({ id: PROJECT_ID }));

    expect(res.status).toBe(403);
    expect(fake.queriesOf("projects")).toHaveLength(0);
  });

  it("DELETE by an admin answers 204", async () => {
    const fake = useSupabase({
      memberships: [{ tenant_id: TENANT_A, role: "admin" }],
      results: { projects: [{ data: [{ id: PROJECT_ID }], error: null }] },
    });

    const res = await DELETE(apiRequest(path, { method: "DELETE" }), routeContext({ id: PROJECT_ID }));

    expect(res.status).toBe(204);
    expect(fake.queriesOf("projects")[0].filters).toEqual({ tenant_id: TENANT_A, id: PROJECT_ID });
  });
});
