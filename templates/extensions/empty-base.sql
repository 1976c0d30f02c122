-- Stand-in for an extension whose objects the Supabase base already provides
-- (templates/supabase-shim.sql: schemas cron, net, vault, pgsodium, graphql): nothing more to
-- create. Its jobs, requests and secrets are recorded there and never acted on.
select 1;
