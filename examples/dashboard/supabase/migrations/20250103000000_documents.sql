-- Documents: written content that belongs to a project of the same tenant.

create table public.documents (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  title text not null check (char_length(title) between 1 and 200),
  body text,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now()
);

-- Serves "documents of a project" and, through its first column, "documents of a tenant".
create index documents_tenant_id_project_id_idx on public.documents (tenant_id, project_id);

alter table public.documents enable row level security;

create policy documents_select on public.documents
  for select
  to authenticated
  using (tenant_id = public.get_current_tenant_id());

create policy documents_insert on public.documents
  for insert
  to authenticated
  with check (tenant_id = public.get_current_tenant_id());

create policy documents_update on public.documents
  for update
  to authenticated
  using (tenant_id = public.get_current_tenant_id())
  with check (tenant_id = public.get_current_tenant_id());

create policy documents_delete on public.documents
  for delete
  to authenticated
  using (tenant_id = public.get_current_tenant_id());
