import type { ServiceStatus } from "@dashboard/contracts";
import type { NextRequest } from "next/server";

import { json } from "@/server/http";
import { rateLimit } from "@/server/middleware/rate-limit";

/** GET /api/public/status — unauthenticated health check for the status page and uptime probes. */
export async function GET(req: NextRequest) {
  const limited = rateLimit(req, { key: "public:status", limit: 60, windowMs: 60_000 });
  if (limited) {
    return limited;
  }

  const status: ServiceStatus = {
    status: "ok",
    service: "api",
    version: process.env.APP_VERSION ?? "dev",
    time: new Date().toISOString(),
  };
  return json(status);
}
