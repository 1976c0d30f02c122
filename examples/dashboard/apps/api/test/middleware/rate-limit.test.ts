import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { rateLimit, resetRateLimits } from "@/server/middleware/rate-limit";

import { apiRequest } from "../support/requests";

const options = { key: "test", limit: 3, windowMs: 60_000 };

function fromIp(ip: string) {
  return apiRequest("/api/public/status", { token: null, headers: { "x-forwarded-for": `${ip}, 10.0.0.1` } });
}

describe("rateLimit", () => {
  beforeEach(() => {
    resetRateLimits();
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2025-03-01T12:00:00.000Z"));
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it("lets `limit` requests through, then answers 429 with Retry-After", async () => {
    for (let i = 0; i < options.limit; i++) {
      expect(rateLimit(fromIp("203.0.113.7"), options)).toBeNull();
    }

    vi.advanceTimersByTime(15_000);
    const limited = rateLimit(fromIp("203.0.113.7"), options);

    expect(limited?.status).toBe(429);
    expect(limited?.headers.get("Retry-After")).toBe("45");
    expect(limited?.headers.get("X-RateLimit-Remaining")).toBe("0");
    expect(await limited?.json()).toEqual({
      error: { code: "rate_limited", message: "Too many requests, try again later" },
    });
  });

  it("counts each client and each key separately", () => {
    for (let i = 0; i < options.limit; i++) {
      rateLimit(fromIp("203.0.113.7"), options);
    }

    expect(rateLimit(fromIp("203.0.113.7"), options)?.status).toBe(429);
    expect(rateLimit(fromIp("198.51.100.20"), options)).toBeNull();
    expect(rateLimit(fromIp("203.0.113.7"), { ...options, key: "other" })).toBeNull();
  });

  it("starts a new window once windowMs has passed", () => {
    for (let i = 0; i < options.limit; i++) {
      rateLimit(fromIp("203.0.113.7"), options);
    }
    expect(rateLimit(fromIp("203.0.113.7"), options)?.status).toBe(429);

    vi.advanceTimersByTime(options.windowMs);

    expect(rateLimit(fromIp("203.0.113.7"), options)).toBeNull();
  });
});
