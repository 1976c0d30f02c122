/** Columns returned by the API. Listed explicitly so new columns are opt-in. */
export const PROJECT_COLUMNS = "id, tenant_id, name, description, status, created_at, updated_at";

export const DOCUMENT_COLUMNS = "id, tenant_id, project_id, title, body, created_by, created_at";
