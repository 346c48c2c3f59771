//! SQLite: two contentless FTS5 tables over the analyzed words (migration m0009) — one of
//! titles alone (`title`, `words`: its stems and its unstemmed words), one of whole pages
//! (`title`, `body`, `words`) — beside the plain table `page_search` that keeps the
//! title and text shown in results. A trigger takes a page out of both word tables when its
//! `page_search` row goes, so `DELETE FROM page_search` (a removal, a restore's erase) is the
//! whole removal.
//!
//! The word tables use FTS5's `ascii` tokenizer: the words arrive analyzed and separated by
//! single spaces, and `ascii` splits on nothing else (every non-ASCII character is a word
//! character), so the engine never cuts a word Quire made. The title tier is a lookup in the
//! table of titles, whose doclists are short even for a word found on every page.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};

use super::{CANDIDATES, Entry, Term};

pub(super) async fn index<C: ConnectionTrait>(db: &C, entry: &Entry<'_>) -> Result<(), DbErr> {
    let id = entry.page_id;
    let (title, body) = (&entry.analyzed_title, &entry.analyzed_body);
    let words = join(&title.words, &body.words);
    let statements = [
        ("DELETE FROM page_search WHERE page_id = ?", vec![id.into()]),
        (
            "INSERT INTO page_search (page_id, title, body) VALUES (?, ?, ?)",
            vec![id.into(), entry.title.into(), entry.body.into()],
        ),
        (
            "INSERT INTO page_search_terms (rowid, title, body, words) VALUES (?, ?, ?, ?)",
            vec![id.into(), title.terms.as_str().into(), body.terms.as_str().into(), words.into()],
        ),
        (
            "INSERT INTO page_search_titles (rowid, title, words) VALUES (?, ?, ?)",
            vec![id.into(), title.terms.as_str().into(), title.words.as_str().into()],
        ),
    ];
    for (sql, values) in statements {
        db.execute_raw(Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql, values)).await?;
    }
    Ok(())
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a} {b}"),
    }
}

/// An FTS5 query, its terms implicitly AND-ed: a word (a quoted string) or a phrase (one
/// quoted string of several words) among the stems of `stems` (a column filter such as
/// `{title body}`), a prefix (a quoted string with `*`) among the stems or the words.
fn fts5(terms: &[Term], stems: &str) -> String {
    terms
        .iter()
        .map(|term| match term {
            Term::Word(w) => format!("{stems} : \"{w}\""),
            Term::Prefix(w) => format!("\"{w}\"*"),
            Term::Phrase(ws) => format!("{stems} : \"{}\"", ws.join(" ")),
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

pub(super) fn search(terms: &[Term], offset: u64, limit: u64) -> Statement {
    // In an aggregate with a single MIN(), SQLite takes the other columns from the row that
    // holds the minimum: each page keeps the score of its best tier.
    Statement::from_sql_and_values(
        DatabaseBackend::Sqlite,
        "WITH ranked AS ( \
           SELECT rid, MIN(tier) AS tier, score FROM ( \
             SELECT * FROM (SELECT rowid AS rid, 0 AS tier, bm25(page_search_titles) AS score \
                            FROM page_search_titles WHERE page_search_titles MATCH ?1 LIMIT ?3) \
             UNION ALL \
             SELECT * FROM (SELECT rowid AS rid, 1 AS tier, bm25(page_search_terms, 10.0, 1.0, 1.0) AS score \
                            FROM page_search_terms WHERE page_search_terms MATCH ?2 LIMIT ?3)) \
           GROUP BY rid ORDER BY tier, score, rid LIMIT ?4 OFFSET ?5) \
         SELECT s.title AS title, substr(s.body, 1, 20000) AS body \
         FROM ranked r JOIN page_search s ON s.page_id = r.rid ORDER BY r.tier, r.score, r.rid",
        [
            fts5(terms, "title").into(),
            fts5(terms, "{title body}").into(),
            CANDIDATES.into(),
            (limit as i64).into(),
            (offset as i64).into(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::search::parse;

    #[test]
    fn the_fts5_query_holds_only_quoted_words() {
        let terms = parse(r#"a'b "c; DROP" d* NEAR(x)"#);
        assert_eq!(
            fts5(&terms, "title"),
            r#"title : "a" AND title : "b" AND title : "c drop" AND "d"* AND title : "near" AND title : "x""#
        );
    }
}
