-- Projects: the main tenant-owned resource of the dashboard.

create table public.projects (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 120),
  description text,
  status text not null default 'active' check (status in ('active', 'archived')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index projects_tenant_id_idx on public.projects (tenant_id);

create trigger projects_set_updated_at
  before update on public.projects
  for each row
  execute function public.set_updated_at();

alter table public.projects enable row level security;

create policy projects_select on public.projects
  for select
  to authenticated
  using (tenant_id = public.get_current_tenant_id());

create policy projects_insert on public.projects
  for insert
  to authenticated
  with check (tenant_id = public.get_current_tenant_id());

create policy projects_update on public.projects
  for update
  to authenticated
  using (tenant_id = public.get_current_tenant_id())
  with check (tenant_id = public.get_current_tenant_id());

create policy projects_delete on public.projects
  for delete
  to authenticated
  using (tenant_id = public.get_current_tenant_id());
