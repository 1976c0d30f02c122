-- Tenants and their members: the root of multi-tenancy.
-- Every tenant-owned table references public.tenants and is filtered by
-- public.get_current_tenant_id() in its RLS policies.

create extension if not exists pgcrypto;

create table public.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  created_at timestamptz not null default now()
);

create table public.tenant_members (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member' check (role in ('owner', 'admin', 'member')),
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id)
);

-- The primary key covers lookups by tenant_id; this one serves "my tenants".
create index tenant_members_user_id_idx on public.tenant_members (user_id);

-- The active tenant of the request: the `tenant_id` claim of the caller's JWT
-- (added by the custom access token hook), but only while auth.uid() is still a
-- member of that tenant. Returns null otherwise, so every policy denies.
-- security definer: it reads tenant_members without going through its RLS.
create or replace function public.get_current_tenant_id()
returns uuid
language sql
stable
security definer
set search_path = public
as $$
  select tm.tenant_id
  from public.tenant_members tm
  where tm.tenant_id = (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'tenant_id')::uuid
    and tm.user_id = auth.uid()
$$;

revoke execute on function public.get_current_tenant_id() from public, anon;
grant execute on function public.get_current_tenant_id() to authenticated, service_role;

-- Keeps updated_at columns honest; attached by the tables that have one.
create or replace function public.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

alter table public.tenants enable row level security;
alter table public.tenant_members enable row level security;

-- Tenants are created by the service role (signup flow): signed-in users only read theirs.
create policy tenants_select on public.tenants
  for select
  to authenticated
  using (id = public.get_current_tenant_id());

create policy tenant_members_select on public.tenant_members
  for select
  to authenticated
  using (tenant_id = public.get_current_tenant_id());

-- A user may always list their own memberships: the API resolves the active
-- tenant from them before any tenant claim can be trusted.
create policy tenant_members_select_own on public.tenant_members
  for select
  to authenticated
  using (user_id = auth.uid());

-- Owners and admins manage the members of their current tenant. The role check runs in a
-- security definer function: a policy on tenant_members that read tenant_members itself
-- would recurse.
create or replace function public.is_tenant_admin()
returns boolean
language sql
stable
security definer
set search_path = public
as $$
  select exists (
    select 1
    from public.tenant_members tm
    where tm.tenant_id = public.get_current_tenant_id()
      and tm.user_id = auth.uid()
      and tm.role in ('owner', 'admin')
  )
$$;

revoke execute on function public.is_tenant_admin() from public, anon;
grant execute on function public.is_tenant_admin() to authenticated, service_role;

create policy tenant_members_insert on public.tenant_members
  for insert
  to authenticated
  with check (tenant_id = public.get_current_tenant_id() and public.is_tenant_admin());

create policy tenant_members_update on public.tenant_members
  for update
  to authenticated
  using (tenant_id = public.get_current_tenant_id() and public.is_tenant_admin())
  with check (tenant_id = public.get_current_tenant_id() and public.is_tenant_admin());

create policy tenant_members_delete on public.tenant_members
  for delete
  to authenticated
  using (tenant_id = public.get_current_tenant_id() and public.is_tenant_admin());
