import { z } from "zod";

/** A row id or foreign key. Every primary key in the database is a uuid. */
export const Uuid = z.string().uuid();
export type Uuid = z.infer<typeof Uuid>;

/** Timestamps come back from PostgREST as ISO 8601 strings. */
export const Timestamp = z.string().datetime({ offset: true });

/**
 * Offset pagination for list endpoints. Query strings are strings, so the
 * numbers are coerced; the API never returns more than 100 rows at once.
 */
export const Pagination = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).default(0),
});
export type Pagination = z.infer<typeof Pagination>;

/** The `pagination` object returned next to `data` by every list endpoint. */
export const PageInfo = z.object({
  limit: z.number().int(),
  offset: z.number().int(),
  total: z.number().int().nullable(),
});
export type PageInfo = z.infer<typeof PageInfo>;

/** Roles of a user inside a tenant (`tenant_members.role`). */
export const TenantRole = z.enum(["owner", "admin", "member"]);
export type TenantRole = z.infer<typeof TenantRole>;

/** The body of every non-2xx response. */
export const ApiError = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ApiError = z.infer<typeof ApiError>;

/** Response of the public `GET /api/public/status` endpoint. */
export const ServiceStatus = z.object({
  status: z.enum(["ok", "degraded"]),
  service: z.string(),
  version: z.string(),
  time: Timestamp,
});
export type ServiceStatus = z.infer<typeof ServiceStatus>;
