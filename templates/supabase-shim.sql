-- What a Supabase project has before its first migration, on a plain Postgres, for
-- `cargo xtask verify --live`: `supabase db reset` applies a history to a database that already
-- has these schemas, roles, extensions, tables and functions, and real histories use them
-- without creating them.
--
-- Run as the superuser before the migrations, inside the transaction (or the scratch database)
-- that is thrown away at the end: nothing here outlives the check. Every object is created only
-- when it is missing, so on a real Supabase database (or a second history in the same run) it
-- changes nothing. Each object says which Supabase behaviour it stands for; the columns are
-- those of Supabase's own tables (GoTrue's auth schema, Storage's storage schema), so that
-- triggers and policies that read them apply.
--
-- auth.uid(), auth.jwt(), auth.role() and auth.email() read the request's JWT claims from the
-- `request.jwt.claims` setting, as PostgREST sets it and as Supabase's own functions read it.

-- Roles. anon / authenticated / service_role are the API roles PostgREST switches to
-- (service_role bypasses RLS); the others own Supabase's services and appear in real
-- migrations' grants and `alter ... owner to` statements.
do $shim$
declare
  r text;
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  -- The role PostgREST logs in as, then switches to one of the API roles.
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator noinherit nologin;
  end if;
  grant anon, authenticated, service_role to authenticator;
  -- Owners of Supabase's services (auth, storage, realtime, functions) and the dashboard.
  foreach r in array array['supabase_auth_admin', 'supabase_storage_admin',
      'supabase_realtime_admin', 'supabase_functions_admin', 'supabase_replication_admin',
      'supabase_read_only_user', 'dashboard_user', 'pgbouncer'] loop
    if not exists (select from pg_roles where rolname = r) then
      execute format('create role %I nologin noinherit', r);
    end if;
  end loop;
  -- Supabase's own superuser-like role: bypasses RLS like the table owner.
  if not exists (select from pg_roles where rolname = 'supabase_admin') then
    create role supabase_admin nologin bypassrls createrole createdb;
  end if;
end
$shim$;

-- Schemas every Supabase project has. `extensions` holds the extensions (uuid-ossp,
-- pgcrypto, ...) and is on the search_path; the others belong to Supabase's services and
-- to extensions enabled from the dashboard (vault, pg_graphql, pg_cron, pg_net, webhooks).
create schema if not exists auth;
create schema if not exists storage;
create schema if not exists extensions;
create schema if not exists realtime;
create schema if not exists vault;
create schema if not exists graphql;
create schema if not exists graphql_public;
create schema if not exists cron;
create schema if not exists net;
create schema if not exists supabase_functions;
create schema if not exists pgsodium;

-- Supabase sets the database's search_path to `"$user", public, extensions`, so migrations
-- call uuid_generate_v4() or gen_random_bytes() without a schema.
set search_path = "$user", public, extensions;

-- Extensions every Supabase project has installed, in schema extensions.
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;

-- auth: GoTrue's tables, with the columns signup triggers and policies read.
create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255) default '',
  confirmation_sent_at timestamptz,
  recovery_token varchar(255) default '',
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255) default '',
  email_change varchar(255) default '',
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb not null default '{}'::jsonb,
  raw_user_meta_data jsonb not null default '{}'::jsonb,
  is_super_admin boolean,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  phone text unique default null,
  phone_confirmed_at timestamptz,
  phone_change text default '',
  phone_change_token varchar(255) default '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '',
  email_change_confirm_status smallint default 0,
  banned_until timestamptz,
  reauthentication_token varchar(255) default '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);

-- One row per sign-in method of a user (email, OAuth providers).
create table if not exists auth.identities (
  provider_id text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid primary key default gen_random_uuid(),
  unique (provider_id, provider)
);

-- Sessions and refresh tokens: referenced by session-revoking functions.
create table if not exists auth.sessions (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  factor_id uuid,
  aal text,
  not_after timestamptz
);
create table if not exists auth.refresh_tokens (
  instance_id uuid,
  id bigserial primary key,
  token varchar(255) unique,
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  parent varchar(255),
  session_id uuid references auth.sessions (id) on delete cascade
);
create table if not exists auth.mfa_factors (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  friendly_name text,
  factor_type text not null default 'totp',
  status text not null default 'unverified',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create table if not exists auth.audit_log_entries (
  instance_id uuid,
  id uuid primary key,
  payload json,
  created_at timestamptz,
  ip_address varchar(64) not null default ''
);

do $shim$
begin
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb language sql stable as $f$
      select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
    $f$;
  end if;
  if to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid language sql stable as $f$
      select nullif(coalesce(current_setting('request.jwt.claim.sub', true),
                             auth.jwt() ->> 'sub'), '')::uuid
    $f$;
  end if;
  if to_regprocedure('auth.role()') is null then
    create function auth.role() returns text language sql stable as $f$
      select nullif(coalesce(current_setting('request.jwt.claim.role', true),
                             auth.jwt() ->> 'role'), '')::text
    $f$;
  end if;
  if to_regprocedure('auth.email()') is null then
    create function auth.email() returns text language sql stable as $f$
      select nullif(coalesce(current_setting('request.jwt.claim.email', true),
                             auth.jwt() ->> 'email'), '')::text
    $f$;
  end if;
end
$shim$;

-- storage: Storage's tables. RLS is on for objects and buckets, as Supabase ships them:
-- a bucket's files are reachable only through the policies the migrations write.
create table if not exists storage.buckets (
  id text primary key,
  name text not null unique,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[]
);

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  user_metadata jsonb,
  unique (bucket_id, name)
);
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

-- Storage's path helpers, used in storage policies: 'tenant/a/b.png' → {tenant,a},
-- 'b.png', 'png'.
create or replace function storage.foldername(name text) returns text[]
  language sql immutable as $f$
    select (string_to_array(name, '/'))[1:greatest(array_length(string_to_array(name, '/'), 1) - 1, 0)]
  $f$;
create or replace function storage.filename(name text) returns text
  language sql immutable as $f$
    select (string_to_array(name, '/'))[array_length(string_to_array(name, '/'), 1)]
  $f$;
create or replace function storage.extension(name text) returns text
  language sql immutable as $f$
    select reverse(split_part(reverse(storage.filename(name)), '.', 1))
  $f$;

-- realtime: Realtime's broadcast table (RLS on, policies decide who hears a topic) and the
-- functions triggers call to broadcast; the publication postgres_changes listens to.
create table if not exists realtime.messages (
  id uuid not null default gen_random_uuid(),
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp not null default now(),
  inserted_at timestamp not null default now(),
  primary key (id, inserted_at)
);
alter table realtime.messages enable row level security;
create or replace function realtime.topic() returns text language sql stable as $f$
  select nullif(current_setting('realtime.topic', true), '')::text
$f$;
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
  returns void language sql as $f$
    insert into realtime.messages (payload, event, topic, private, extension)
    values (payload, event, topic, private, 'broadcast')
  $f$;
create or replace function realtime.broadcast_changes(topic_name text, event_name text,
    operation text, table_name text, table_schema text, new record, old record,
    level text default 'ROW')
  returns void language plpgsql as $f$
  begin
    perform realtime.send(jsonb_build_object('operation', operation, 'table', table_name,
      'schema', table_schema), event_name, topic_name, true);
  end
  $f$;
do $shim$
begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$shim$;

-- vault (supabase_vault): secrets a migration stores for its webhooks and jobs. Stand-in:
-- stored as given; decrypted_secrets shows them as the real view does.
create table if not exists vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text unique,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create or replace view vault.decrypted_secrets as
  select id, name, description, secret, secret as decrypted_secret, key_id, nonce, created_at, updated_at
  from vault.secrets;
create or replace function vault.create_secret(new_secret text, new_name text default null,
    new_description text default '', new_key_id uuid default null)
  returns uuid language sql as $f$
    insert into vault.secrets (secret, name, description, key_id)
    values (new_secret, new_name, coalesce(new_description, ''), new_key_id) returning id
  $f$;
create or replace function vault.update_secret(secret_id uuid, new_secret text default null,
    new_name text default null, new_description text default null, new_key_id uuid default null)
  returns void language sql as $f$
    update vault.secrets set secret = coalesce(new_secret, secret), name = coalesce(new_name, name),
      description = coalesce(new_description, description), updated_at = now()
    where id = secret_id
  $f$;

-- pg_net: asynchronous HTTP from SQL (webhooks, edge function calls). Stand-in: the request is
-- recorded, never sent (the check has no network and must not call anyone).
create table if not exists net.http_request_queue (
  id bigserial primary key,
  method text not null,
  url text not null,
  headers jsonb,
  body jsonb,
  timeout_milliseconds int
);
create or replace function net.http_post(url text, body jsonb default '{}'::jsonb,
    params jsonb default '{}'::jsonb, headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
    timeout_milliseconds int default 5000)
  returns bigint language sql as $f$
    insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    values ('POST', url, headers, body, timeout_milliseconds) returning id
  $f$;
create or replace function net.http_get(url text, params jsonb default '{}'::jsonb,
    headers jsonb default '{}'::jsonb, timeout_milliseconds int default 5000)
  returns bigint language sql as $f$
    insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
    values ('GET', url, headers, timeout_milliseconds) returning id
  $f$;
create or replace function net.http_delete(url text, params jsonb default '{}'::jsonb,
    headers jsonb default '{}'::jsonb, timeout_milliseconds int default 5000)
  returns bigint language sql as $f$
    insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
    values ('DELETE', url, headers, timeout_milliseconds) returning id
  $f$;

-- pg_cron: scheduled jobs. Stand-in: jobs are recorded, never run.
create table if not exists cron.job (
  jobid bigserial primary key,
  schedule text not null,
  command text not null,
  nodename text not null default 'localhost',
  nodeport int not null default 5432,
  database text not null default current_database(),
  username text not null default current_user,
  active boolean not null default true,
  jobname text
);
create or replace function cron.schedule(job_name text, schedule text, command text)
  returns bigint language sql as $f$
    insert into cron.job (jobname, schedule, command) values (job_name, schedule, command) returning jobid
  $f$;
create or replace function cron.schedule(schedule text, command text)
  returns bigint language sql as $f$
    insert into cron.job (schedule, command) values (schedule, command) returning jobid
  $f$;
create or replace function cron.unschedule(job_name text) returns boolean language sql as $f$
  with d as (delete from cron.job where jobname = job_name returning 1) select count(*) > 0 from d
$f$;
create or replace function cron.unschedule(job_id bigint) returns boolean language sql as $f$
  with d as (delete from cron.job where jobid = job_id returning 1) select count(*) > 0 from d
$f$;

-- Database webhooks (supabase_functions): the trigger function the dashboard's webhooks
-- install. Stand-in: records the call through pg_net's stand-in.
create table if not exists supabase_functions.hooks (
  id bigserial primary key,
  hook_table_id int not null,
  hook_name text not null,
  created_at timestamptz not null default now(),
  request_id bigint
);
create or replace function supabase_functions.http_request() returns trigger
  language plpgsql as $f$
  begin
    if tg_nargs >= 1 then
      perform net.http_post(tg_argv[0]::text, '{}'::jsonb);
    end if;
    return coalesce(new, old);
  end
  $f$;

grant usage on schema public, auth, storage, extensions, realtime, graphql_public
  to anon, authenticated, service_role;
grant execute on all functions in schema auth to anon, authenticated, service_role;
grant execute on all functions in schema storage to anon, authenticated, service_role;
grant all on storage.objects, storage.buckets to anon, authenticated, service_role;
grant select, insert on realtime.messages to anon, authenticated, service_role;
-- The services' admin roles own and use their schemas (GoTrue migrates auth, Storage storage).
grant usage, create on schema auth to supabase_auth_admin;
grant usage, create on schema storage to supabase_storage_admin;
grant usage, create on schema realtime to supabase_realtime_admin;
grant all on all tables in schema auth to supabase_auth_admin;
grant all on all tables in schema storage to supabase_storage_admin;
grant all on all tables in schema realtime to supabase_realtime_admin;

-- Supabase grants the API roles every privilege on what the migrations create in `public`;
-- row level security is what keeps them in their lane.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
