//! MySQL/MariaDB: `page_search` holds the title and text shown in results and the analyzed
//! words in columns of their own, `title_terms` and `body_terms`, with a FULLTEXT index on the
//! title's words alone (the title tier) and one on both (migration m0009); the unstemmed words
//! (for prefixes) in two more, `title_words` and `body_words`, marked differently so that a word
//! or a phrase never finds them.
//!
//! InnoDB's FULLTEXT ignores words shorter than `innodb_ft_min_token_size` (3 by default) and
//! its stop words (`a`, `to`, `it`, `the` …), and server options cannot be relied on to change
//! either. So every word is stored and looked up with the prefix `qq`: `qqa`, `qqto`, `qqgo`
//! are three letters or more and none of them is a stop word (no InnoDB stop word starts
//! with `qq`). A prefix query keeps working (`qqwiki*`), and a word stays under the longest
//! token InnoDB indexes (84 characters) because words are cut at 64.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};

use super::{CANDIDATES, Entry, Term};

const MARK: &str = "qq";
/// The mark of an unstemmed word.
const WORD: &str = "qr";

/// Analyzed words as stored: each one marked.
fn encode(terms: &str, mark: &str) -> String {
    let mut out = String::with_capacity(terms.len() + terms.len() / 2);
    for word in terms.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(mark);
        out.push_str(word);
    }
    out
}

/// A BOOLEAN MODE query: every term required (`+`), a prefix `*`, a phrase in quotes.
fn boolean_mode(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|term| match term {
            Term::Word(w) => format!("+{MARK}{w}"),
            Term::Prefix(w) => format!("+({MARK}{w}* {WORD}{w}*)"),
            Term::Phrase(ws) => {
                format!("+\"{}\"", ws.iter().map(|w| format!("{MARK}{w}")).collect::<Vec<_>>().join(" "))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) async fn index<C: ConnectionTrait>(db: &C, entry: &Entry<'_>) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::MySql,
        "INSERT INTO page_search (page_id, title, body, title_terms, body_terms, title_words, body_words) \
         VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE title = VALUES(title), body = VALUES(body), \
           title_terms = VALUES(title_terms), body_terms = VALUES(body_terms), \
           title_words = VALUES(title_words), body_words = VALUES(body_words)",
        [
            entry.page_id.into(),
            entry.title.into(),
            entry.body.into(),
            encode(&entry.analyzed_title.terms, MARK).into(),
            encode(&entry.analyzed_body.terms, MARK).into(),
            encode(&entry.analyzed_title.words, WORD).into(),
            encode(&entry.analyzed_body.words, WORD).into(),
        ],
    ))
    .await?;
    Ok(())
}

pub(super) fn search(terms: &[Term], offset: u64, limit: u64) -> Statement {
    let q = boolean_mode(terms);
    Statement::from_sql_and_values(
        DatabaseBackend::MySql,
        "SELECT s.title, LEFT(s.body, 20000) AS body FROM ( \
           SELECT page_id, MIN(tier) AS tier FROM ( \
             (SELECT page_id, 0 AS tier FROM page_search \
              WHERE MATCH (title_terms, title_words) AGAINST (? IN BOOLEAN MODE) LIMIT ?) \
             UNION ALL \
             (SELECT page_id, 1 AS tier FROM page_search \
              WHERE MATCH (title_terms, body_terms, title_words, body_words) AGAINST (? IN BOOLEAN MODE) LIMIT ?) \
           ) c GROUP BY page_id) r JOIN page_search s ON s.page_id = r.page_id \
         ORDER BY r.tier, \
           CASE WHEN r.tier = 0 THEN MATCH (s.title_terms, s.title_words) AGAINST (? IN BOOLEAN MODE) END DESC, \
           MATCH (s.title_terms, s.body_terms, s.title_words, s.body_words) AGAINST (? IN BOOLEAN MODE) DESC, s.page_id \
         LIMIT ? OFFSET ?",
        [
            q.clone().into(),
            CANDIDATES.into(),
            q.clone().into(),
            CANDIDATES.into(),
            q.clone().into(),
            q.into(),
            (limit as i64).into(),
            (offset as i64).into(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::search::{analyze, parse};

    #[test]
    fn every_word_is_marked_so_that_none_is_too_short_or_a_stop_word() {
        let analyzed = analyze("To go, a C UI: it's the db, deployed");
        assert_eq!(encode(&analyzed.terms, MARK), "qqto qqgo qqa qqc qqui qqit qqs qqthe qqdb qqdeploy");
        assert_eq!(encode(&analyzed.words, WORD), "qrdeployed");
        assert_eq!(encode("", MARK), "");
    }

    #[test]
    fn the_boolean_query_holds_only_marked_words_and_operators() {
        let terms = parse(r#"a'b "c; DROP" d* -x"#);
        assert_eq!(boolean_mode(&terms), r#"+qqa +qqb +"qqc qqdrop" +(qqd* qrd*) +qqx"#);
    }
}
