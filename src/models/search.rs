//! Full-text search over titles and content, in the database's own engine (see migration
//! m0003): the query language is Quire's own (words, `"phrases"`, `prefix*`), parsed here and
//! turned into each engine's syntax from letters and digits only, so no user input can be an
//! engine syntax error.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, FromQueryResult, Statement, Value};

/// One part of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Word(String),
    Prefix(String),
    Phrase(Vec<String>),
}

/// A query has at most this many terms; longer ones are cut.
const MAX_TERMS: usize = 8;
const MAX_TERM_CHARS: usize = 64;

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_TERM_CHARS).collect::<String>().to_lowercase())
        .collect()
}

/// Parses what a visitor typed: `"…"` is a phrase, a trailing `*` makes a prefix.
pub fn parse(query: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    for (i, part) in query.split('"').enumerate() {
        if i % 2 == 1 {
            match words(part).as_slice() {
                [] => {}
                [one] => terms.push(Term::Word(one.clone())),
                many => terms.push(Term::Phrase(many.to_vec())),
            }
            continue;
        }
        for raw in part.split_whitespace() {
            let prefix = raw.ends_with('*');
            let pieces = words(raw);
            let count = pieces.len();
            for (j, word) in pieces.into_iter().enumerate() {
                if prefix && j + 1 == count {
                    terms.push(Term::Prefix(word));
                } else {
                    terms.push(Term::Word(word));
                }
            }
        }
    }
    terms.truncate(MAX_TERMS);
    terms
}

fn fts5(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|term| match term {
            Term::Word(w) => format!("\"{w}\""),
            Term::Prefix(w) => format!("\"{w}\"*"),
            Term::Phrase(ws) => format!("\"{}\"", ws.join(" ")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn tsquery(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|term| match term {
            Term::Word(w) => w.clone(),
            Term::Prefix(w) => format!("{w}:*"),
            Term::Phrase(ws) => format!("({})", ws.join(" <-> ")),
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

fn boolean_mode(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|term| match term {
            Term::Word(w) => format!("+{w}"),
            Term::Prefix(w) => format!("+{w}*"),
            Term::Phrase(ws) => format!("+\"{}\"", ws.join(" ")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text a page is searched by: Markdown as written, imported HTML without its tags.
pub fn text_of(content: &str, format: &str) -> String {
    if format == super::page::FORMAT_HTML {
        let text = ammonia::Builder::empty().clean(content).to_string();
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
    } else {
        content.to_owned()
    }
}

/// Puts a page into the index (or replaces its entry), inside the caller's transaction.
pub async fn index<C: ConnectionTrait>(db: &C, page_id: i32, title: &str, body: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let values = [Value::from(page_id), Value::from(title), Value::from(body)];
    match backend {
        DatabaseBackend::Sqlite => {
            remove(db, page_id).await?;
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO page_search (rowid, title, body) VALUES (?, ?, ?)",
                values,
            ))
            .await?;
        }
        DatabaseBackend::Postgres => {
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO page_search (page_id, title, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (page_id) DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body",
                values,
            ))
            .await?;
        }
        _ => {
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO page_search (page_id, title, body) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE title = VALUES(title), body = VALUES(body)",
                values,
            ))
            .await?;
        }
    }
    Ok(())
}

/// Takes a page out of the index.
pub async fn remove<C: ConnectionTrait>(db: &C, page_id: i32) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Sqlite => "DELETE FROM page_search WHERE rowid = ?",
        DatabaseBackend::Postgres => "DELETE FROM page_search WHERE page_id = $1",
        _ => "DELETE FROM page_search WHERE page_id = ?",
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [Value::from(page_id)])).await?;
    Ok(())
}

/// One result: the page and the start of its text (20,000 characters), to cut a snippet from.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Hit {
    pub title: String,
    pub body: String,
}

/// How many matches of each tier (title, anywhere) are ranked. Ranking every match of a word
/// found on 100,000 pages costs a second; ranking a bounded set keeps a query in milliseconds
/// whatever the size of the wiki. Rarer words (fewer matches than this) are ranked exactly.
const CANDIDATES: i64 = 1000;

/// Title terms for PostgreSQL: every lexeme must come from the title (weight A).
fn tsquery_title(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|term| match term {
            Term::Word(w) => format!("{w}:A"),
            Term::Prefix(w) => format!("{w}:*A"),
            Term::Phrase(ws) => {
                format!("({})", ws.iter().map(|w| format!("{w}:A")).collect::<Vec<_>>().join(" <-> "))
            }
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// Pages matching `terms`: title matches first, then the rest, each by the engine's relevance
/// (bm25, ts_rank, MATCH … AGAINST) over a bounded set of candidates.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    terms: &[Term],
    offset: u64,
    limit: u64,
) -> Result<Vec<Hit>, DbErr> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let (limit, offset) = (limit as i64, offset as i64);
    let statement = match backend {
        DatabaseBackend::Sqlite => {
            let all = fts5(terms);
            let title = format!("title : ({all})");
            Statement::from_sql_and_values(
                backend,
                "WITH ranked AS ( \
                   SELECT rid, MIN(tier) AS tier, MIN(score) AS score FROM ( \
                     SELECT * FROM (SELECT rowid AS rid, 0 AS tier, bm25(page_search, 10.0, 1.0) AS score \
                                    FROM page_search WHERE page_search MATCH ?1 LIMIT ?3) \
                     UNION ALL \
                     SELECT * FROM (SELECT rowid AS rid, 1 AS tier, bm25(page_search, 10.0, 1.0) AS score \
                                    FROM page_search WHERE page_search MATCH ?2 LIMIT ?3)) \
                   GROUP BY rid ORDER BY tier, score LIMIT ?4 OFFSET ?5) \
                 SELECT s.title AS title, substr(s.body, 1, 20000) AS body \
                 FROM ranked r JOIN page_search s ON s.rowid = r.rid ORDER BY r.tier, r.score",
                [title.into(), all.into(), CANDIDATES.into(), limit.into(), offset.into()],
            )
        }
        DatabaseBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "WITH q AS (SELECT to_tsquery('simple', $1) AS t, to_tsquery('simple', $2) AS a), \
             candidates AS ( \
               (SELECT page_id, 0 AS tier FROM page_search, q WHERE tsv @@ q.t LIMIT $3) \
               UNION ALL \
               (SELECT page_id, 1 AS tier FROM page_search, q WHERE tsv @@ q.a LIMIT $3)), \
             ranked AS ( \
               SELECT c.page_id, MIN(c.tier) AS tier FROM candidates c GROUP BY c.page_id) \
             SELECT s.title, left(s.body, 20000) AS body FROM ranked r JOIN page_search s USING (page_id), q \
             ORDER BY r.tier, ts_rank(s.tsv, q.a, 0) DESC, s.page_id LIMIT $4 OFFSET $5",
            [
                tsquery_title(terms).into(),
                tsquery(terms).into(),
                CANDIDATES.into(),
                limit.into(),
                offset.into(),
            ],
        ),
        _ => {
            let q = boolean_mode(terms);
            Statement::from_sql_and_values(
                backend,
                "SELECT s.title, LEFT(s.body, 20000) AS body FROM ( \
                   SELECT page_id, MIN(tier) AS tier FROM ( \
                     (SELECT page_id, 0 AS tier FROM page_search WHERE MATCH (title) AGAINST (? IN BOOLEAN MODE) LIMIT ?) \
                     UNION ALL \
                     (SELECT page_id, 1 AS tier FROM page_search WHERE MATCH (title, body) AGAINST (? IN BOOLEAN MODE) LIMIT ?) \
                   ) c GROUP BY page_id) r JOIN page_search s ON s.page_id = r.page_id \
                 ORDER BY r.tier, MATCH (s.title, s.body) AGAINST (? IN BOOLEAN MODE) DESC, s.page_id LIMIT ? OFFSET ?",
                [
                    q.clone().into(),
                    CANDIDATES.into(),
                    q.clone().into(),
                    CANDIDATES.into(),
                    q.into(),
                    limit.into(),
                    offset.into(),
                ],
            )
        }
    };
    Hit::find_by_statement(statement).all(db).await
}

/// The part of `body` around the first match, as (highlighted?, text) pieces.
/// A snippet looks for its first match in this much of a page at most: the work of a search
/// stays bounded whatever the size of the pages it finds.
const SNIPPET_SCAN_BYTES: usize = 64 * 1024;

pub fn snippet(body: &str, terms: &[Term], width: usize) -> Vec<(bool, String)> {
    let mut scanned = body.len().min(SNIPPET_SCAN_BYTES);
    while !body.is_char_boundary(scanned) {
        scanned -= 1;
    }
    let (body, cut) = (&body[..scanned], scanned < body.len());
    let needles: Vec<Vec<char>> = terms
        .iter()
        .flat_map(|term| match term {
            Term::Word(w) | Term::Prefix(w) => vec![w.clone()],
            Term::Phrase(ws) => ws.clone(),
        })
        .map(|w| w.chars().collect())
        .collect();
    let chars: Vec<char> = body.chars().collect();
    let lower: Vec<char> = chars.iter().map(|c| c.to_lowercase().next().unwrap_or(*c)).collect();
    let matches_at = |i: usize| -> Option<usize> {
        // A match starts a word: the previous character is not alphanumeric.
        if i > 0 && lower[i - 1].is_alphanumeric() {
            return None;
        }
        needles.iter().find(|n| !n.is_empty() && lower[i..].starts_with(n)).map(Vec::len)
    };
    let first = (0..lower.len()).find(|&i| matches_at(i).is_some()).unwrap_or(0);
    let start = first.saturating_sub(width / 3);
    let end = (start + width).min(chars.len());
    let mut pieces: Vec<(bool, String)> = Vec::new();
    if start > 0 {
        pieces.push((false, "…".into()));
    }
    let mut i = start;
    let mut plain = String::new();
    while i < end {
        if let Some(len) = matches_at(i) {
            if !plain.is_empty() {
                pieces.push((false, std::mem::take(&mut plain)));
            }
            let len = len.min(end - i);
            pieces.push((true, chars[i..i + len].iter().collect()));
            i += len;
        } else {
            plain.push(if chars[i].is_control() { ' ' } else { chars[i] });
            i += 1;
        }
    }
    if !plain.is_empty() {
        pieces.push((false, plain));
    }
    if end < chars.len() || cut {
        pieces.push((false, "…".into()));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_into_words_prefixes_and_phrases() {
        assert_eq!(
            parse(r#"wiki* "edit conflict" Rust"#),
            vec![
                Term::Prefix("wiki".into()),
                Term::Phrase(vec!["edit".into(), "conflict".into()]),
                Term::Word("rust".into())
            ]
        );
        // Engine syntax in the input is just text.
        assert_eq!(
            parse(r#"title:x AND (NOT "#),
            vec![
                Term::Word("title".into()),
                Term::Word("x".into()),
                Term::Word("and".into()),
                Term::Word("not".into())
            ]
        );
        assert!(parse(r#"*** "" ()"#).is_empty());
        assert_eq!(
            parse(r#""unterminated phrase"#),
            vec![Term::Phrase(vec!["unterminated".into(), "phrase".into()])]
        );
    }

    #[test]
    fn engine_queries_contain_only_words_and_operators() {
        let terms = parse(r#"a'b "c; DROP" d*"#);
        assert_eq!(fts5(&terms), r#""a" "b" "c drop" "d"*"#);
        assert_eq!(tsquery(&terms), "a & b & (c <-> drop) & d:*");
        assert_eq!(boolean_mode(&terms), r#"+a +b +"c drop" +d*"#);
    }

    #[test]
    fn snippets_look_at_the_start_of_huge_pages_only() {
        let body = format!("{} needle", "hay ".repeat(1_000_000));
        let pieces = snippet(&body, &parse("needle"), 60);
        assert!(pieces.iter().all(|p| !p.0), "beyond the scanned part: no match marked");
        assert_eq!(pieces.last().unwrap().1, "…");
    }

    #[test]
    fn snippets_highlight_the_matches_near_the_first_one() {
        let body = format!("{} The Wiki engine. wikis everywhere", "x ".repeat(200));
        let pieces = snippet(&body, &parse("wiki*"), 60);
        let marked: Vec<&str> = pieces.iter().filter(|p| p.0).map(|p| p.1.as_str()).collect();
        assert_eq!(marked, ["Wiki", "wiki"]);
        assert_eq!(pieces.first().unwrap().1, "…");
    }
}
