import { describe, expect, it } from "vitest";

import {
  CreateDocumentInput,
  CreateProjectInput,
  ListProjectsQuery,
  UpdateProjectInput,
} from "../src";

describe("contracts", () => {
  it("coerces and defaults pagination in list queries", () => {
    expect(ListProjectsQuery.parse({})).toEqual({ limit: 20, offset: 0 });
    expect(ListProjectsQuery.parse({ limit: "50", offset: "100", status: "archived" })).toEqual({
      limit: 50,
      offset: 100,
      status: "archived",
    });
    expect(ListProjectsQuery.safeParse({ limit: "1000" }).success).toBe(false);
  });

  it("never accepts tenant_id from the client", () => {
    const result = CreateProjectInput.safeParse({
      name: "Website relaunch",
      tenant_id: "7d3c0a51-2f5e-4a3b-9a59-0d6f1b2c3d4e",
    });
    expect(result.success).toBe(false);
  });

  it("trims names and rejects blank ones", () => {
    expect(CreateProjectInput.parse({ name: "  Q3 roadmap " })).toEqual({ name: "Q3 roadmap" });
    expect(CreateProjectInput.safeParse({ name: "   " }).success).toBe(false);
  });

  it("requires at least one field in a project update", () => {
    expect(UpdateProjectInput.safeParse({}).success).toBe(false);
    expect(UpdateProjectInput.safeParse({ status: "archived" }).success).toBe(true);
  });

  it("requires a uuid project_id for documents", () => {
    expect(CreateDocumentInput.safeParse({ project_id: "42", title: "Spec" }).success).toBe(false);
  });
});
