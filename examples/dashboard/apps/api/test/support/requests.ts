import { NextRequest } from "next/server";

type RequestOptions = {
  method?: string;
  /** Bearer token; `null` sends no Authorization header. */
  token?: string | null;
  tenantId?: string;
  /** Serialised as JSON unless it is already a string. */
  body?: unknown;
  headers?: Record<string, string>;
};

export function apiRequest(path: string, options: RequestOptions = {}): NextRequest {
  const { method = "GET", token = "test-access-token", tenantId, body, headers = {} } = options;
  const allHeaders = new Headers(headers);
  if (token !== null) {
    allHeaders.set("authorization", `Bearer ${token}`);
  }
  if (tenantId) {
    allHeaders.set("x-tenant-id", tenantId);
  }
  if (body !== undefined) {
    allHeaders.set("content-type", "application/json");
  }
  return new NextRequest(new URL(path, "http://localhost:3001"), {
    method,
    headers: allHeaders,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** The second argument Next.js passes to handlers of dynamic routes. */
export function routeContext<P extends Record<string, string>>(params: P) {
  return { params: Promise.resolve(params) };
}
