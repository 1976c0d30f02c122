import { z } from "zod";

import { Pagination, Timestamp, Uuid } from "./common";

/** A row of `public.documents` as returned by the API. */
export const Document = z.object({
  id: Uuid,
  tenant_id: Uuid,
  project_id: Uuid,
  title: z.string(),
  body: z.string().nullable(),
  created_by: Uuid.nullable(),
  created_at: Timestamp,
});
export type Document = z.infer<typeof Document>;

/** Body of `POST /api/documents`. The project must belong to the caller's tenant. */
export const CreateDocumentInput = z
  .object({
    project_id: Uuid,
    title: z.string().trim().min(1, "Title is required").max(200),
    body: z.string().max(100_000).optional(),
  })
  .strict();
export type CreateDocumentInput = z.infer<typeof CreateDocumentInput>;

/** Query string of `GET /api/documents`. */
export const ListDocumentsQuery = Pagination.extend({
  project_id: Uuid.optional(),
});
export type ListDocumentsQuery = z.infer<typeof ListDocumentsQuery>;
