-- Stand-in for pgjwt (`create extension pgjwt`): sign() and verify() with pgjwt's signatures,
-- built on pgcrypto's hmac (which the Supabase base installs in schema extensions), so
-- functions that mint or check tokens can be created and called.
do $standin$
begin
  if to_regprocedure('@extschema@.url_encode(bytea)') is null then
    create function @extschema@.url_encode(data bytea) returns text language sql immutable as $f$
      select translate(encode(data, 'base64'), E'+/=\n', '-_')
    $f$;
  end if;
  if to_regprocedure('@extschema@.url_decode(text)') is null then
    create function @extschema@.url_decode(data text) returns bytea language sql immutable as $f$
      with t as (select translate(data, '-_', '+/') as trans),
           rem as (select length(t.trans) % 4 as remainder from t)
      select decode(t.trans || case when rem.remainder > 0 then repeat('=', (4 - rem.remainder)) else '' end, 'base64')
      from t, rem
    $f$;
  end if;
  if to_regprocedure('@extschema@.algorithm_sign(text, text, text)') is null then
    create function @extschema@.algorithm_sign(signables text, secret text, algorithm text) returns text
      language sql immutable as $f$
        select @extschema@.url_encode(extensions.hmac(signables, secret,
          case algorithm when 'HS384' then 'sha384' when 'HS512' then 'sha512' else 'sha256' end))
      $f$;
  end if;
  if to_regprocedure('@extschema@.sign(json, text, text)') is null then
    create function @extschema@.sign(payload json, secret text, algorithm text default 'HS256') returns text
      language sql immutable as $f$
        with header as (select @extschema@.url_encode(convert_to('{"alg":"' || algorithm || '","typ":"JWT"}', 'utf8')) as data),
             body as (select @extschema@.url_encode(convert_to(payload::text, 'utf8')) as data),
             signables as (select header.data || '.' || body.data as data from header, body)
        select signables.data || '.' || @extschema@.algorithm_sign(signables.data, secret, algorithm) from signables
      $f$;
  end if;
  if to_regprocedure('@extschema@.verify(text, text, text)') is null then
    create function @extschema@.verify(token text, secret text, algorithm text default 'HS256')
      returns table(header json, payload json, valid boolean) language sql immutable as $f$
        select convert_from(@extschema@.url_decode(r[1]), 'utf8')::json,
               convert_from(@extschema@.url_decode(r[2]), 'utf8')::json,
               r[3] = @extschema@.algorithm_sign(r[1] || '.' || r[2], secret, algorithm)
        from regexp_split_to_array(token, '\.') r
      $f$;
  end if;
end
$standin$;
