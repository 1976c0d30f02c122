#!/bin/sh
# Seed corpora for the fuzz targets, from the repository's own migrations (nothing is
# committed under corpus/). Run from anywhere: fuzz/seed.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
reader="$here/corpus/migration_reader"
judge="$here/corpus/policy_judge"
plpgsql="$here/corpus/plpgsql_reader"
mkdir -p "$reader" "$judge" "$plpgsql"

# migration_reader: the first byte chooses the mode. 0x00: the rest is one file;
# 0x01: the rest is the files of one history separated by NUL bytes.
n=0
for dir in "$root"/xtask/tests/fixtures/migrations/* "$root"/examples/dashboard/supabase/migrations; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    first=1
    {
        printf '\001'
        for f in "$dir"/*.sql; do
            [ -f "$f" ] || continue
            [ $first -eq 1 ] || printf '\000'
            first=0
            cat "$f"
        done
    } >"$reader/history-$name"
    for f in "$dir"/*.sql; do
        [ -f "$f" ] || continue
        { printf '\000'; cat "$f"; } >"$reader/file-$name-$(basename "$f" .sql)"
        n=$((n + 1))
    done
done

# policy_judge: the USING / WITH CHECK expressions of those files, one per seed, and the
# shapes the judge knows.
cat "$root"/xtask/tests/fixtures/migrations/*/*.sql "$root"/examples/dashboard/supabase/migrations/*.sql |
    tr '\n' ' ' |
    grep -oiE '(using|with check) \((\([^()]*\)|[^()])*\)' |
    sed -E 's/^(using|USING|with check|WITH CHECK) \((.*)\)$/\2/' |
    sort -u |
    while IFS= read -r e; do
        printf '%s' "$e" >"$judge/expr-$(printf '%s' "$e" | cksum | cut -d' ' -f1)"
    done
i=0
for e in \
    "tenant_id = get_current_tenant_id()" \
    "tenant_id = (select get_current_tenant_id())" \
    "tenant_id = current_setting('app.tenant_id')::uuid" \
    "tenant_id in (select tenant_id from tenant_members where user_id = auth.uid())" \
    "tenant_id = any (select tenant_id from tenant_members where user_id = (select auth.uid()))" \
    "is_tenant_member(tenant_id)" \
    "exists (select 1 from tenant_members m where m.tenant_id = docs.tenant_id and m.user_id = auth.uid())" \
    "user_id = auth.uid()" \
    "(tenant_id = get_current_tenant_id() and a) or (tenant_id = get_current_tenant_id() and b)"; do
    printf '%s' "$e" >"$judge/shape-$i"
    i=$((i + 1))
done
# plpgsql_reader: the bodies of the DO blocks and functions of those files ($$ ... $$).
cat "$root"/xtask/tests/fixtures/migrations/*/*.sql "$root"/examples/dashboard/supabase/migrations/*.sql |
    awk 'BEGIN { RS = "\\$\\$" } NR % 2 == 0 { print > ("'"$plpgsql"'/body-" NR) }'
echo "seeded: $(ls "$reader" | wc -l) migration_reader inputs ($n files), $(ls "$judge" | wc -l) policy_judge inputs, $(ls "$plpgsql" | wc -l) plpgsql_reader inputs"
# route_reader: the first byte chooses the file (bit 0: a route handler, bit 1: TSX).
routes="$here/corpus/route_reader"
mkdir -p "$routes"
for f in $(find "$root"/examples -path '*/node_modules' -prune -o \( -name '*.ts' -o -name '*.tsx' \) -print); do
    case "$f" in */route.ts) mode='\001' ;; *.tsx) mode='\002' ;; *) mode='\000' ;; esac
    { printf "$mode"; cat "$f"; } >"$routes/$(printf '%s' "$f" | cksum | cut -d' ' -f1)"
done
echo "seeded: $(ls "$routes" | wc -l) route_reader inputs"
