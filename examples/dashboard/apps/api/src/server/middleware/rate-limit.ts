import type { ApiError } from "@dashboard/contracts";
import type { NextRequest, NextResponse } from "next/server";

import { errorResponse } from "@/server/http";

export type RateLimitOptions = {
  /** Names the limited endpoint, e.g. "public:status". */
  key: string;
  /** Requests allowed per client and window. */
  limit: number;
  windowMs: number;
};

type Window = { count: number; resetAt: number };

/**
 * Fixed-window counters per `key` and client IP. They live in the memory of one
 * server instance: good enough for a single-region deployment. Behind several
 * instances, back this with a shared store (Redis) and keep the same signature.
 */
const windows = new Map<string, Window>();
const MAX_TRACKED_CLIENTS = 10_000;

/** The client address as set by the platform's proxy (first `x-forwarded-for` hop). */
export function clientIp(req: NextRequest): string {
  const forwarded = req.headers.get("x-forwarded-for");
  if (forwarded) {
    return forwarded.split(",")[0].trim();
  }
  return req.headers.get("x-real-ip") ?? "unknown";
}

function evictExpired(now: number): void {
  for (const [id, window] of windows) {
    if (window.resetAt <= now) {
      windows.delete(id);
    }
  }
}

/**
 * Counts this request and returns a 429 response once the client went over
 * `limit` requests in the current window, or `null` when the request may go on.
 *
 *     const limited = rateLimit(req, { key: "public:status", limit: 60, windowMs: 60_000 });
 *     if (limited) return limited;
 */
export function rateLimit(
  req: NextRequest,
  { key, limit, windowMs }: RateLimitOptions,
): NextResponse<ApiError> | null {
  const now = Date.now();
  const id = `${key}:${clientIp(req)}`;

  let window = windows.get(id);
  if (!window || window.resetAt <= now) {
    if (windows.size >= MAX_TRACKED_CLIENTS) {
      evictExpired(now);
    }
    window = { count: 0, resetAt: now + windowMs };
    windows.set(id, window);
  }

  window.count += 1;
  if (window.count <= limit) {
    return null;
  }

  const response = errorResponse(429, "rate_limited", "Too many requests, try again later");
  response.headers.set("Retry-After", String(Math.max(1, Math.ceil((window.resetAt - now) / 1000))));
  response.headers.set("X-RateLimit-Limit", String(limit));
  response.headers.set("X-RateLimit-Remaining", "0");
  response.headers.set("X-RateLimit-Reset", String(Math.ceil(window.resetAt / 1000)));
  return response;
}

/** Forgets every counter. For tests. */
export function resetRateLimits(): void {
  windows.clear();
}
