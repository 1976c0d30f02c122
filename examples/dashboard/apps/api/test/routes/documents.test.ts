import { describe, expect, it, vi } from "vitest";

import { GET, POST } from "@/app/api/documents/route";
import { createServerClient } from "@/server/supabase";

import {
  createFakeSupabase,
  PROJECT_ID,
  TENANT_A,
  USER,
  type FakeSupabaseOptions,
} from "../support/fake-supabase";
import { apiRequest } from "../support/requests";

vi.mock("@/server/supabase", () => ({ createServerClient: vi.fn() }));

function useSupabase(options: FakeSupabaseOptions = {}) {
  const fake = createFakeSupabase(options);
  vi.mocked(createServerClient).mockReturnValue(fake.client);
  return fake;
}

describe("/api/documents", () => {
  it("GET filters by tenant and project", async () => {
    const fake = useSupabase();

    const res = await GET(apiRequest(`/api/documents?project_id=${PROJECT_ID}`));

    expect(res.status).toBe(200);
    expect(fake.queriesOf("documents")[0].filters).toEqual({ tenant_id: TENANT_A, project_id: PROJECT_ID });
  });

  it("POST answers 404 when the project is not in the caller's tenant", async () => {
    const fake = useSupabase({ results: { projects: [{ data: null, error: null }] } });

    const res = await POST(
      apiRequest("/api/documents", { method: "POST", body: { project_id: PROJECT_ID, title: "Spec" } }),
    );

    expect(res.status).toBe(404);
    expect(fake.queriesOf("projects")[0].filters).toEqual({ tenant_id: TENANT_A, id: PROJECT_ID });
    expect(fake.queriesOf("documents")).toHaveLength(0);
  });

  it("POST stores tenant_id and created_by from the auth context", async () => {
    const document = { id: "b6d767d2-f8ed-4d21-a44b-0e5886fb0e21", title: "Spec" };
    const fake = useSupabase({
      results: {
        projects: [{ data: { id: PROJECT_ID }, error: null }],
        documents: [{ data: document, error: null }],
      },
    });

    const res = await POST(
      apiRequest("/api/documents", { method: "POST", body: { project_id: PROJECT_ID, title: "Spec" } }),
    );

    expect(res.status).toBe(201);
    expect(fake.queriesOf("documents")[0].argsOf("insert")).toEqual([
      { project_id: PROJECT_ID, title: "Spec", tenant_id: TENANT_A, created_by: USER.id },
    ]);
  });
});
