-- Stand-in for pgvector (`create extension vector`), which a plain Postgres does not ship:
-- the types (vector, halfvec, sparsevec, with their `(n)` modifiers), the distance operators
-- and functions, as far as migrations use them (an `hnsw` / `ivfflat` index is not built). Values are kept as text and every distance is 0: enough for tables,
-- functions and indexes to be created and for the isolation probe to insert rows, never for
-- similarity search. Installed by the superuser into the schema the migration names.
do $standin$
declare
  t text;
begin
  foreach t in array array['vector', 'halfvec', 'sparsevec'] loop
    if to_regtype(format('@extschema@.%I', t)) is not null then
      continue;
    end if;
    execute format('create type @extschema@.%I', t);
    execute format('create function @extschema@.%1$I_in(cstring, oid, integer) returns @extschema@.%1$I language internal immutable strict parallel safe as %2$L', t, 'varcharin');
    execute format('create function @extschema@.%1$I_out(@extschema@.%1$I) returns cstring language internal immutable strict parallel safe as %2$L', t, 'varcharout');
    execute format('create function @extschema@.%1$I_recv(internal, oid, integer) returns @extschema@.%1$I language internal immutable strict parallel safe as %2$L', t, 'varcharrecv');
    execute format('create function @extschema@.%1$I_send(@extschema@.%1$I) returns bytea language internal immutable strict parallel safe as %2$L', t, 'varcharsend');
    execute format('create function @extschema@.%1$I_typmod_in(cstring[]) returns integer language internal immutable strict parallel safe as %2$L', t, 'varchartypmodin');
    execute format('create type @extschema@.%1$I (input = @extschema@.%1$I_in, output = @extschema@.%1$I_out, receive = @extschema@.%1$I_recv, send = @extschema@.%1$I_send, typmod_in = @extschema@.%1$I_typmod_in, internallength = variable, storage = extended, collatable = true, category = %2$L)', t, 'U');
    -- Distances (always 0 in the stand-in) and their operators.
    execute format('create function @extschema@.l2_distance(@extschema@.%1$I, @extschema@.%1$I) returns float8 language sql immutable parallel safe as %2$L', t, 'select 0::float8');
    execute format('create function @extschema@.cosine_distance(@extschema@.%1$I, @extschema@.%1$I) returns float8 language sql immutable parallel safe as %2$L', t, 'select 0::float8');
    execute format('create function @extschema@.inner_product(@extschema@.%1$I, @extschema@.%1$I) returns float8 language sql immutable parallel safe as %2$L', t, 'select 0::float8');
    execute format('create function @extschema@.negative_inner_product(@extschema@.%1$I, @extschema@.%1$I) returns float8 language sql immutable parallel safe as %2$L', t, 'select 0::float8');
    execute format('create function @extschema@.l1_distance(@extschema@.%1$I, @extschema@.%1$I) returns float8 language sql immutable parallel safe as %2$L', t, 'select 0::float8');
    execute format('create operator @extschema@.<-> (leftarg = @extschema@.%1$I, rightarg = @extschema@.%1$I, function = @extschema@.l2_distance, commutator = operator(@extschema@.<->))', t);
    execute format('create operator @extschema@.<=> (leftarg = @extschema@.%1$I, rightarg = @extschema@.%1$I, function = @extschema@.cosine_distance, commutator = operator(@extschema@.<=>))', t);
    execute format('create operator @extschema@.<#> (leftarg = @extschema@.%1$I, rightarg = @extschema@.%1$I, function = @extschema@.negative_inner_product, commutator = operator(@extschema@.<#>))', t);
    execute format('create operator @extschema@.<+> (leftarg = @extschema@.%1$I, rightarg = @extschema@.%1$I, function = @extschema@.l1_distance, commutator = operator(@extschema@.<+>))', t);
    -- Comparison on the text form, so the index methods below can build an index.
    execute format('create function @extschema@.%1$I_lt(@extschema@.%1$I, @extschema@.%1$I) returns boolean language internal immutable strict as %2$L', t, 'text_lt');
    execute format('create function @extschema@.%1$I_le(@extschema@.%1$I, @extschema@.%1$I) returns boolean language internal immutable strict as %2$L', t, 'text_le');
    execute format('create function @extschema@.%1$I_eq(@extschema@.%1$I, @extschema@.%1$I) returns boolean language internal immutable strict as %2$L', t, 'texteq');
    execute format('create function @extschema@.%1$I_ge(@extschema@.%1$I, @extschema@.%1$I) returns boolean language internal immutable strict as %2$L', t, 'text_ge');
    execute format('create function @extschema@.%1$I_gt(@extschema@.%1$I, @extschema@.%1$I) returns boolean language internal immutable strict as %2$L', t, 'text_gt');
    execute format('create function @extschema@.%1$I_cmp(@extschema@.%1$I, @extschema@.%1$I) returns integer language internal immutable strict as %2$L', t, 'bttextcmp');
    execute format('create operator @extschema@.< (leftarg = @extschema@.%1$I, rightarg = @extschema@.%1$I, function = @extschema@.%1$I_lt)', t);
    execute format('create operator @extschema@.<= (leftarg = @extschema@.%1$I, rightarg = @extschema@.%1$I, function = @extschema@.%1$I_le)', t);
    execute format('create operator @extschema@.= (leftarg = @extschema@.%1$I, rightarg = @extschema@.%1$I, function = @extschema@.%1$I_eq)', t);
    execute format('create operator @extschema@.>= (leftarg = @extschema@.%1$I, rightarg = @extschema@.%1$I, function = @extschema@.%1$I_ge)', t);
    execute format('create operator @extschema@.> (leftarg = @extschema@.%1$I, rightarg = @extschema@.%1$I, function = @extschema@.%1$I_gt)', t);
    execute format('create function @extschema@.vector_dims(@extschema@.%1$I) returns integer language sql immutable parallel safe as %2$L', t, 'select 0');
    execute format('create function @extschema@.l2_norm(@extschema@.%1$I) returns float8 language sql immutable parallel safe as %2$L', t, 'select 0::float8');
    execute format('create function @extschema@.l2_normalize(@extschema@.%1$I) returns @extschema@.%1$I language sql immutable parallel safe as %2$L', t, 'select $1');
    execute format('create cast (real[] as @extschema@.%I) with inout as assignment', t);
    execute format('create cast (double precision[] as @extschema@.%I) with inout as assignment', t);
    execute format('create cast (@extschema@.%I as real[]) with inout as assignment', t);
  end loop;
  if to_regtype('@extschema@.vector') is not null and not exists (select from pg_cast c where c.castsource = '@extschema@.vector'::regtype and c.casttarget = '@extschema@.halfvec'::regtype) then
    create cast (@extschema@.vector as @extschema@.halfvec) with inout as assignment;
    create cast (@extschema@.halfvec as @extschema@.vector) with inout as assignment;
  end if;
  -- The rest of pgvector's functions, with its signatures, so that a dump's GRANT and ALTER
  -- FUNCTION statements find them (none computes anything).
  foreach t in array array['vector', 'halfvec', 'sparsevec'] loop
    if to_regprocedure(format('@extschema@.%1$I(@extschema@.%1$I, integer, boolean)', t)) is not null then
      continue;
    end if;
    execute format('create function @extschema@.%1$I(@extschema@.%1$I, integer, boolean) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1');
    execute format('create function @extschema@.array_to_%1$s(integer[], integer, boolean) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1::text::@extschema@.' || t);
    execute format('create function @extschema@.array_to_%1$s(real[], integer, boolean) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1::text::@extschema@.' || t);
    execute format('create function @extschema@.array_to_%1$s(double precision[], integer, boolean) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1::text::@extschema@.' || t);
    execute format('create function @extschema@.array_to_%1$s(numeric[], integer, boolean) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1::text::@extschema@.' || t);
    execute format('create function @extschema@.%1$s_ne(@extschema@.%1$I, @extschema@.%1$I) returns boolean language internal immutable strict as %2$L', t, 'textne');
    execute format('create function @extschema@.%1$s_l2_squared_distance(@extschema@.%1$I, @extschema@.%1$I) returns float8 language sql immutable as %2$L', t, 'select 0::float8');
    execute format('create function @extschema@.%1$s_negative_inner_product(@extschema@.%1$I, @extschema@.%1$I) returns float8 language sql immutable as %2$L', t, 'select 0::float8');
    if t <> 'sparsevec' then
      execute format('create function @extschema@.%1$s_spherical_distance(@extschema@.%1$I, @extschema@.%1$I) returns float8 language sql immutable as %2$L', t, 'select 0::float8');
      execute format('create function @extschema@.%1$s_accum(double precision[], @extschema@.%1$I) returns double precision[] language sql immutable as %2$L', t, 'select $1');
      execute format('create function @extschema@.%1$s_avg(double precision[]) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select null::@extschema@.' || t);
      execute format('create function @extschema@.%1$s_combine(double precision[], double precision[]) returns double precision[] language sql immutable as %2$L', t, 'select $1');
      execute format('create function @extschema@.%1$s_add(@extschema@.%1$I, @extschema@.%1$I) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1');
      execute format('create function @extschema@.%1$s_sub(@extschema@.%1$I, @extschema@.%1$I) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1');
      execute format('create function @extschema@.%1$s_mul(@extschema@.%1$I, @extschema@.%1$I) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1');
      execute format('create function @extschema@.%1$s_concat(@extschema@.%1$I, @extschema@.%1$I) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1');
      execute format('create function @extschema@.%1$s_to_float4(@extschema@.%1$I, integer, boolean) returns real[] language sql immutable as %2$L', t, 'select null::real[]');
      execute format('create function @extschema@.binary_quantize(@extschema@.%1$I) returns bit language sql immutable as %2$L', t, 'select null::bit');
      execute format('create function @extschema@.subvector(@extschema@.%1$I, integer, integer) returns @extschema@.%1$I language sql immutable as %2$L', t, 'select $1');
      execute format('create aggregate @extschema@.avg(@extschema@.%1$I) (sfunc = @extschema@.%1$s_accum, stype = double precision[], finalfunc = @extschema@.%1$s_avg, combinefunc = @extschema@.%1$s_combine, initcond = %2$L)', t, '{0}');
      execute format('create aggregate @extschema@.sum(@extschema@.%1$I) (sfunc = @extschema@.%1$s_add, stype = @extschema@.%1$I, combinefunc = @extschema@.%1$s_add)', t);
    end if;
  end loop;
  if to_regprocedure('@extschema@.vector_norm(@extschema@.vector)') is null then
    create function @extschema@.vector_norm(@extschema@.vector) returns float8 language sql immutable as $f$ select 0::float8 $f$;
    create function @extschema@.vector_to_halfvec(@extschema@.vector, integer, boolean) returns @extschema@.halfvec language sql immutable as $f$ select $1::text::@extschema@.halfvec $f$;
    create function @extschema@.vector_to_sparsevec(@extschema@.vector, integer, boolean) returns @extschema@.sparsevec language sql immutable as $f$ select $1::text::@extschema@.sparsevec $f$;
    create function @extschema@.halfvec_to_vector(@extschema@.halfvec, integer, boolean) returns @extschema@.vector language sql immutable as $f$ select $1::text::@extschema@.vector $f$;
    create function @extschema@.halfvec_to_sparsevec(@extschema@.halfvec, integer, boolean) returns @extschema@.sparsevec language sql immutable as $f$ select $1::text::@extschema@.sparsevec $f$;
    create function @extschema@.sparsevec_to_vector(@extschema@.sparsevec, integer, boolean) returns @extschema@.vector language sql immutable as $f$ select $1::text::@extschema@.vector $f$;
    create function @extschema@.sparsevec_to_halfvec(@extschema@.sparsevec, integer, boolean) returns @extschema@.halfvec language sql immutable as $f$ select $1::text::@extschema@.halfvec $f$;
    create function @extschema@.hamming_distance(bit, bit) returns float8 language sql immutable as $f$ select 0::float8 $f$;
    create function @extschema@.jaccard_distance(bit, bit) returns float8 language sql immutable as $f$ select 0::float8 $f$;
    -- The index methods' C entry points, bound to harmless built-ins of the same shape.
    create function @extschema@.hnswhandler(internal) returns index_am_handler language internal as 'bthandler';
    create function @extschema@.ivfflathandler(internal) returns index_am_handler language internal as 'bthandler';
    create function @extschema@.hnsw_bit_support(internal) returns internal language internal as 'brin_minmax_opcinfo';
    create function @extschema@.hnsw_halfvec_support(internal) returns internal language internal as 'brin_minmax_opcinfo';
    create function @extschema@.hnsw_sparsevec_support(internal) returns internal language internal as 'brin_minmax_opcinfo';
    create function @extschema@.ivfflat_bit_support(internal) returns internal language internal as 'brin_minmax_opcinfo';
    create function @extschema@.ivfflat_halfvec_support(internal) returns internal language internal as 'brin_minmax_opcinfo';
  end if;
  -- Index methods: `create index ... using hnsw|ivfflat` is not sent while this stand-in
  -- is in place (the report says so): an embedding index says nothing about tenants.
  foreach t in array array['vector', 'halfvec', 'sparsevec'] loop
    if not exists (select from pg_opclass where opcname = t || '_ops') then
      execute format('create operator class @extschema@.%1$I default for type @extschema@.%2$I using btree as '
        'operator 1 @extschema@.< , operator 2 @extschema@.<= , operator 3 @extschema@.= , '
        'operator 4 @extschema@.>= , operator 5 @extschema@.> , function 1 @extschema@.%2$I_cmp(@extschema@.%2$I, @extschema@.%2$I)',
        t || '_ops', t);
    end if;
  end loop;
end
$standin$;
