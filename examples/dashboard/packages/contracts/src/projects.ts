import { z } from "zod";

import { Pagination, Timestamp, Uuid } from "./common";

export const ProjectStatus = z.enum(["active", "archived"]);
export type ProjectStatus = z.infer<typeof ProjectStatus>;

/** A row of `public.projects` as returned by the API. */
export const Project = z.object({
  id: Uuid,
  tenant_id: Uuid,
  name: z.string(),
  description: z.string().nullable(),
  status: ProjectStatus,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Project = z.infer<typeof Project>;

const ProjectName = z.string().trim().min(1, "Name is required").max(120);
const ProjectDescription = z.string().trim().max(2000);

/**
 * Body of `POST /api/projects`. `tenant_id` is never accepted from the client:
 * the API takes it from the authenticated context (`.strict()` rejects it).
 */
export const CreateProjectInput = z
  .object({
    name: ProjectName,
    description: ProjectDescription.optional(),
  })
  .strict();
export type CreateProjectInput = z.infer<typeof CreateProjectInput>;

/** Body of `PATCH /api/projects/[id]`: at least one field. */
export const UpdateProjectInput = z
  .object({
    name: ProjectName.optional(),
    description: ProjectDescription.nullable().optional(),
    status: ProjectStatus.optional(),
  })
  .strict()
  .refine((input) => Object.keys(input).length > 0, {
    message: "Provide at least one field to update",
  });
export type UpdateProjectInput = z.infer<typeof UpdateProjectInput>;

/** Route params of `/api/projects/[id]`. */
export const ProjectIdParams = z.object({ id: Uuid });
export type ProjectIdParams = z.infer<typeof ProjectIdParams>;

/** Query string of `GET /api/projects`. */
export const ListProjectsQuery = Pagination.extend({
  status: ProjectStatus.optional(),
});
export type ListProjectsQuery = z.infer<typeof ListProjectsQuery>;
