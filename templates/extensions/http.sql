-- Stand-in for pgsql-http (`create extension http`): its types and functions with their
-- signatures, so functions and triggers that call out can be created. No request is ever
-- sent (the check has no network and must call no one): every call answers status 0.
do $standin$
begin
  if to_regtype('@extschema@.http_header') is null then
    create type @extschema@.http_header as (field varchar, value varchar);
  end if;
  if to_regtype('@extschema@.http_request') is null then
    create type @extschema@.http_request as (method text, uri varchar, headers @extschema@.http_header[], content_type varchar, content varchar);
  end if;
  if to_regtype('@extschema@.http_response') is null then
    create type @extschema@.http_response as (status integer, content_type varchar, headers @extschema@.http_header[], content varchar);
  end if;
  if to_regprocedure('@extschema@.http_header(varchar, varchar)') is null then
    create function @extschema@.http_header(field varchar, value varchar) returns @extschema@.http_header
      language sql immutable as $f$ select row(field, value)::@extschema@.http_header $f$;
  end if;
  if to_regprocedure('@extschema@.http(@extschema@.http_request)') is null then
    create function @extschema@.http(request @extschema@.http_request) returns @extschema@.http_response
      language sql as $f$ select row(0, null, null, null)::@extschema@.http_response $f$;
  end if;
  if to_regprocedure('@extschema@.http_get(varchar)') is null then
    create function @extschema@.http_get(uri varchar) returns @extschema@.http_response
      language sql as $f$ select row(0, null, null, null)::@extschema@.http_response $f$;
  end if;
  if to_regprocedure('@extschema@.http_post(varchar, varchar, varchar)') is null then
    create function @extschema@.http_post(uri varchar, content varchar, content_type varchar) returns @extschema@.http_response
      language sql as $f$ select row(0, null, null, null)::@extschema@.http_response $f$;
  end if;
  if to_regprocedure('@extschema@.http_delete(varchar)') is null then
    create function @extschema@.http_delete(uri varchar) returns @extschema@.http_response
      language sql as $f$ select row(0, null, null, null)::@extschema@.http_response $f$;
  end if;
end
$standin$;
