import { beforeEach, describe, expect, it } from "vitest";

import { GET } from "@/app/api/public/status/route";
import { resetRateLimits } from "@/server/middleware/rate-limit";

import { apiRequest } from "../support/requests";

const request = () =>
  apiRequest("/api/public/status", { token: null, headers: { "x-forwarded-for": "192.0.2.44" } });

describe("GET /api/public/status", () => {
  beforeEach(() => {
    resetRateLimits();
  });

  it("answers without authentication", async () => {
    const res = await GET(request());

    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", service: "api" });
  });

  it("is rate limited to 60 requests a minute per client", async () => {
    for (let i = 0; i < 60; i++) {
      expect((await GET(request())).status).toBe(200);
    }

    const res = await GET(request());

    expect(res.status).toBe(429);
    expect(res.headers.get("Retry-After")).not.toBeNull();
  });
});
