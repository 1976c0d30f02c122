//! Stand-ins for extensions Supabase offers and a plain Postgres lacks (vector, pg_net,
//! pg_cron, pgsodium, supabase_vault, pgjwt, http, pg_graphql): when `create extension`
//! names one that `pg_available_extensions` does not list, its stand-in
//! (`templates/extensions/<name>.sql`: schema objects, types and functions as far as
//! migrations use them, never acting outside the database) is installed by the superuser
//! instead, and the report says so. One missing extension then never cascades into hundreds
//! of rejected statements.

/// The stand-in of an extension, with `@extschema@` where its schema goes.
pub fn sql(name: &str) -> Option<&'static str> {
    const EMPTY: &str = include_str!("../../../../templates/extensions/empty-base.sql");
    Some(match name {
        "vector" => include_str!("../../../../templates/extensions/vector.sql"),
        "pgjwt" => include_str!("../../../../templates/extensions/pgjwt.sql"),
        "http" => include_str!("../../../../templates/extensions/http.sql"),
        // Their schemas and functions are part of the Supabase base (the shim).
        "pg_net" | "pg_cron" | "pgsodium" | "supabase_vault" | "pg_graphql" => EMPTY,
        _ => return None,
    })
}

/// The stand-in for `schema`, ready to run.
pub fn for_schema(sql: &str, schema: &str) -> String {
    sql.replace("@extschema@", &crate::schema::quote_ident(schema))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_are_one_statement_each_and_take_the_schema() {
        for name in ["vector", "pgjwt", "http", "pg_net", "pg_cron"] {
            let s = for_schema(sql(name).unwrap(), "Odd Schema");
            assert!(!s.contains("@extschema@"), "{name}");
            let pieces = crate::gather::migrations::split::split(&s);
            let statements = pieces
                .iter()
                .filter(|p| !p.text.trim().trim_start_matches("--").is_empty())
                .count();
            assert_eq!(statements, 1, "{name}: {pieces:#?}");
        }
        assert!(sql("dblink").is_none());
    }
}
