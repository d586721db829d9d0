//! Names and values written for PostgreSQL: a URL with another database, identifiers and
//! literals.

/// `url` with its database replaced by `name`: the path of a `postgres://` URL, or a
/// `dbname=` setting appended to a `key=value` connection string (the last one wins).
pub(super) fn with_dbname(url: &str, name: &str) -> String {
    for scheme in ["postgresql://", "postgres://"] {
        let Some(rest) = url.strip_prefix(scheme) else {
            continue;
        };
        let (before_query, query) = match rest.find('?') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let authority = before_query.split('/').next().unwrap_or("");
        return format!("{scheme}{authority}/{}{query}", percent_encode(name));
    }
    format!("{url} dbname={}", quote_literal(name))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A single-quoted literal for postgresql.conf and libpq connection strings.
pub(super) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_for_replaces_only_the_database() {
        assert_eq!(
            with_dbname("postgresql://postgres@127.0.0.1:5432/postgres", "serai"),
            "postgresql://postgres@127.0.0.1:5432/serai"
        );
        assert_eq!(
            with_dbname(
                "postgres://u:p%40ss@db:26257/defaultdb?sslmode=require",
                "t 1"
            ),
            "postgres://u:p%40ss@db:26257/t%201?sslmode=require"
        );
        assert_eq!(with_dbname("postgresql://h", "x"), "postgresql://h/x");
        assert_eq!(
            with_dbname("host=/tmp user=me", "x"),
            "host=/tmp user=me dbname='x'"
        );
        let cfg: tokio_postgres::Config = with_dbname("host=/tmp dbname=a", "b").parse().unwrap();
        assert_eq!(cfg.get_dbname(), Some("b"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it\\'s'");
    }
}
