//! Cutting a migration file into the statements Postgres will be sent, once, from the same
//! syntax tree the static reader reads: the live applier reuses these pieces.
//!
//! Statements are cut where squawk's parser puts statement boundaries, and every byte of the
//! file belongs to some piece (comments and text the parser could not read included).

use squawk_syntax::{SourceFile, SyntaxKind as K, SyntaxNode, SyntaxToken};

use crate::sql::Lines;

/// One statement of a file, as sent to Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// 1-based line where the statement starts.
    pub line: u32,
    /// Byte offset of `text` in the file.
    pub offset: usize,
    pub text: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An ordinary statement.
    Run,
    /// `begin`, `commit`, `savepoint`, ...: not sent (the check owns the transaction).
    TransactionControl,
    /// A statement Postgres refuses inside a transaction block: what it is.
    NoTransaction(&'static str),
    /// `create extension [if not exists] name [with schema s]`: the live check creates it on
    /// the migration's behalf when it is allowed (names as Postgres folds them).
    CreateExtension {
        name: String,
        if_not_exists: bool,
        schema: Option<String>,
    },
    /// Acts as Supabase's `postgres` (or `supabase_admin`) role: `alter ... owner to
    /// postgres`, `alter default privileges for role postgres ...`. Supabase runs migrations
    /// as `postgres`, who owns everything they create; on the live check the migration role
    /// stands for it, so these are not sent (said in the report).
    ActsAsAdmin(&'static str),
    /// `create index ... using hnsw|ivfflat`: pgvector's index methods (not built while
    /// pgvector is a stand-in).
    VectorIndex,
}

/// Supabase's roles that run migrations and own what they create.
const ADMIN_ROLES: [&str; 2] = ["postgres", "supabase_admin"];

/// Cut a file into statements (parsing it; the reader uses [`pieces`] on its own tree).
pub fn split(text: &str) -> Vec<Piece> {
    let parse = SourceFile::parse(text);
    pieces(&parse.syntax_node(), text, &Lines::new(text))
}

/// The statements of a parsed file.
pub fn pieces(root: &SyntaxNode, text: &str, lines: &Lines) -> Vec<Piece> {
    let nodes: Vec<SyntaxNode> = root.children().collect();
    let mut pieces = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let start = if i == 0 {
            0
        } else {
            usize::from(node.text_range().start())
        };
        let end = nodes
            .get(i + 1)
            .map_or(text.len(), |n| usize::from(n.text_range().start()));
        let Some(chunk) = text.get(start..end) else {
            continue;
        };
        pieces.push(Piece {
            line: lines.of_node(node),
            offset: start,
            text: chunk.to_string(),
            kind: classify(node),
        });
    }
    if pieces.is_empty() && !text.trim().is_empty() {
        return whole(text);
    }
    pieces
}

/// Nothing the parser can cut (nothing recognised, or nested too deep to parse): the file is
/// sent whole and Postgres says what it makes of it.
pub fn whole(text: &str) -> Vec<Piece> {
    vec![Piece {
        line: 1,
        offset: 0,
        text: text.to_string(),
        kind: Kind::Run,
    }]
}

fn keywords(node: &SyntaxNode) -> Vec<K> {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
        .take(4)
        .map(|t| t.kind())
        .collect()
}

/// `... OWNER TO postgres` or `ALTER DEFAULT PRIVILEGES FOR ROLE postgres ...`, read from
/// the statement's own tokens (a function body is one string token, never looked into).
/// `first` and `second` are the kinds of its first two tokens: only an `ALTER` is looked at
/// further (the tokens of every other statement, a seed file's large `INSERT`s, are not
/// walked again).
fn acts_as_admin(node: &SyntaxNode, first: Option<K>, second: Option<K>) -> Option<&'static str> {
    if first != Some(K::ALTER_KW) {
        return None;
    }
    let toks: Vec<SyntaxToken> = crate::sql::tokens(node).collect();
    let admin = |t: Option<&SyntaxToken>| {
        t.is_some_and(|t| ADMIN_ROLES.contains(&crate::sql::fold_ident(t.text()).as_str()))
    };
    for (i, w) in toks.windows(2).enumerate() {
        let (a, b) = (w[0].kind(), w[1].kind());
        if a == K::OWNER_KW && b == K::TO_KW && admin(toks.get(i + 2)) {
            return Some("OWNER TO postgres");
        }
        if second == Some(K::DEFAULT_KW)
            && a == K::FOR_KW
            && matches!(b, K::ROLE_KW | K::USER_KW)
            && admin(toks.get(i + 2))
        {
            return Some("ALTER DEFAULT PRIVILEGES FOR ROLE postgres");
        }
    }
    None
}

/// `... using hnsw (...)` / `using ivfflat`.
fn vector_index(node: &SyntaxNode) -> bool {
    let toks: Vec<_> = node
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
        .collect();
    toks.windows(2).any(|w| {
        w[0].kind() == K::USING_KW
            && matches!(
                crate::sql::fold_ident(w[1].text()).as_str(),
                "hnsw" | "ivfflat"
            )
    })
}

fn classify(node: &SyntaxNode) -> Kind {
    let kw = keywords(node);
    let first = kw.first().copied();
    let second = kw.get(1).copied();
    match first {
        Some(K::BEGIN_KW | K::COMMIT_KW | K::END_KW | K::ROLLBACK_KW | K::ABORT_KW) => {
            return Kind::TransactionControl
        }
        Some(K::START_KW) if second == Some(K::TRANSACTION_KW) => return Kind::TransactionControl,
        Some(K::SAVEPOINT_KW | K::RELEASE_KW) => return Kind::TransactionControl,
        Some(K::PREPARE_KW) if second == Some(K::TRANSACTION_KW) => {
            return Kind::TransactionControl
        }
        Some(K::VACUUM_KW) => return Kind::NoTransaction("VACUUM"),
        _ => {}
    }
    if let Some(what) = acts_as_admin(node, first, second) {
        return Kind::ActsAsAdmin(what);
    }
    if node.kind() == K::CREATE_INDEX && vector_index(node) {
        return Kind::VectorIndex;
    }
    match node.kind() {
        K::CREATE_EXTENSION => extension(node),
        K::CREATE_DATABASE => Kind::NoTransaction("CREATE DATABASE"),
        K::DROP_DATABASE => Kind::NoTransaction("DROP DATABASE"),
        K::ALTER_SYSTEM => Kind::NoTransaction("ALTER SYSTEM"),
        K::CREATE_TABLESPACE => Kind::NoTransaction("CREATE TABLESPACE"),
        K::CREATE_SUBSCRIPTION | K::DROP_SUBSCRIPTION => Kind::NoTransaction("SUBSCRIPTION"),
        K::CREATE_INDEX | K::DROP_INDEX | K::REINDEX
            if node
                .children_with_tokens()
                .any(|e| e.kind() == K::CONCURRENTLY_KW) =>
        {
            Kind::NoTransaction(match node.kind() {
                K::CREATE_INDEX => "CREATE INDEX CONCURRENTLY",
                K::DROP_INDEX => "DROP INDEX CONCURRENTLY",
                _ => "REINDEX CONCURRENTLY",
            })
        }
        _ => Kind::Run,
    }
}

/// The text with its comments (as our reader lexes them) turned into spaces: what the live
/// check sends when the superuser runs a statement for a migration, so that a comment Postgres
/// would read differently cannot hide another statement kind behind the one we recognised.
pub fn without_comments(text: &str) -> String {
    let parse = SourceFile::parse(text);
    parse
        .syntax_node()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .map(|t| {
            if t.kind() == K::COMMENT {
                " ".to_string()
            } else {
                t.text().to_string()
            }
        })
        .collect()
}

/// The name, `if not exists` and schema of a `create extension`, from its tokens.
fn extension(node: &SyntaxNode) -> Kind {
    let tokens: Vec<_> = node
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
        .collect();
    let ident = |t: &squawk_syntax::SyntaxToken| {
        let text = t.text();
        match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => text.to_lowercase(),
        }
    };
    let mut i = 2; // create extension
    let if_not_exists = tokens.get(i).is_some_and(|t| t.kind() == K::IF_KW);
    if if_not_exists {
        i += 3;
    }
    let name = tokens.get(i).map(ident).unwrap_or_default();
    let schema = tokens
        .iter()
        .position(|t| t.kind() == K::SCHEMA_KW)
        .and_then(|at| tokens.get(at + 1))
        .map(ident);
    Kind::CreateExtension {
        name,
        if_not_exists,
        schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_cut_and_transaction_control_is_recognised() {
        let sql = "-- head\nbegin;\ncreate table a (x int);\n\ncommit;\nstart transaction;\nend;\nrollback;\ncreate index concurrently i on a (x);\nvacuum a;\n";
        let p = split(sql);
        let kinds: Vec<(u32, Kind)> = p.iter().map(|p| (p.line, p.kind.clone())).collect();
        assert_eq!(
            kinds,
            [
                (2, Kind::TransactionControl),
                (3, Kind::Run),
                (5, Kind::TransactionControl),
                (6, Kind::TransactionControl),
                (7, Kind::TransactionControl),
                (8, Kind::TransactionControl),
                (9, Kind::NoTransaction("CREATE INDEX CONCURRENTLY")),
                (10, Kind::NoTransaction("VACUUM")),
            ]
        );
        // Every byte is sent with some statement.
        let joined: String = p.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(joined, sql);
    }

    #[test]
    fn statements_acting_as_supabase_postgres_are_recognised() {
        let sql = "alter table public.t owner to \"postgres\";\nalter function f() owner to postgres;\nalter default privileges for role postgres in schema public grant all on tables to anon;\nalter table t owner to app_owner;\ncreate function g() returns text language sql as $$ select 'owner to postgres' $$;\n";
        let kinds: Vec<Kind> = split(sql).into_iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::ActsAsAdmin("OWNER TO postgres"),
                Kind::ActsAsAdmin("OWNER TO postgres"),
                Kind::ActsAsAdmin("ALTER DEFAULT PRIVILEGES FOR ROLE postgres"),
                Kind::Run,
                Kind::Run,
            ]
        );
    }

    #[test]
    fn a_function_body_with_begin_is_one_statement() {
        let sql = "create function f() returns void language plpgsql as $$\nbegin\n  perform 1;\nend;\n$$;\nselect 1;";
        let p = split(sql);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert_eq!(p[0].kind, Kind::Run);
        assert_eq!(p[1].line, 6);
    }

    #[test]
    fn create_extension_is_recognised_with_its_name_and_schema() {
        let p = split("create extension if not exists \"uuid-ossp\" with schema extensions;\ncreate extension PGCRYPTO;\ncreate extension dblink schema public cascade;\n");
        let kinds: Vec<Kind> = p.into_iter().map(|p| p.kind).collect();
        let ext = |name: &str, if_not_exists, schema: Option<&str>| Kind::CreateExtension {
            name: name.into(),
            if_not_exists,
            schema: schema.map(String::from),
        };
        assert_eq!(
            kinds,
            [
                ext("uuid-ossp", true, Some("extensions")),
                ext("pgcrypto", false, None),
                ext("dblink", false, Some("public")),
            ]
        );
    }

    #[test]
    fn comments_are_taken_out_for_the_superuser() {
        assert_eq!(
            without_comments(
                "/* a /* nested */ one */ create index concurrently i on t (x); -- end\n"
            ),
            "  create index concurrently i on t (x);  \n"
        );
    }
}
