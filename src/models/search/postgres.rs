//! PostgreSQL: `page_search` holds the title and text shown in results and two `tsvector`
//! columns, each with a GIN index (migration m0009): `title_tsv` (the title's words alone, so
//! the title tier is a lookup of short posting lists) and `tsv` (title weight A, text weight B).
//!
//! Both are written by Quire as `tsvector` literals from the analyzed words (stems with their
//! positions; the unstemmed words, for prefixes, marked `~` and without positions, so that a
//! word or a phrase never finds them), and queries as `tsquery` literals: PostgreSQL's parser never sees the text, so neither its word rules nor
//! the database's locale change what a word is. The words are letters and digits only, so a
//! literal needs no escaping.

use std::collections::HashMap;
use std::fmt::Write;

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};

use super::{Analyzed, CANDIDATES, Entry, Term};

/// Marks an unstemmed word (see the module doc); no stem holds it.
const WORD: char = '~';

/// PostgreSQL's limits on a tsvector: positions stop at 16,383 (later ones are stored as
/// 16,383), a word keeps at most 256 positions, and the whole value stays under 1 MiB — this
/// much is written at most, and words past it are left out of the text's vector.
const MAX_POSITION: usize = 16_383;
const MAX_POSITIONS_PER_WORD: usize = 256;
const MAX_VECTOR_BYTES: usize = 900_000;

/// A tsvector literal of analyzed words, `'stem':1A,7A 'other':2A … '~word' …`: each field's
/// stems with their positions and weight, the fields one after the other (a gap between them,
/// so that no phrase runs from a title into the text), then the unstemmed words.
fn tsvector(fields: &[(&Analyzed, char)]) -> String {
    let mut order: Vec<&str> = Vec::new();
    let mut positions: HashMap<&str, Vec<(usize, char)>> = HashMap::new();
    let mut unstemmed: Vec<&str> = Vec::new();
    let mut bytes = 0;
    let mut position = 0;
    'fields: for &(analyzed, weight) in fields {
        for word in analyzed.words.split(' ').filter(|w| !w.is_empty()) {
            bytes += word.len() + 6;
            if bytes > MAX_VECTOR_BYTES {
                break 'fields;
            }
            unstemmed.push(word);
        }
        for word in analyzed.terms.split(' ').filter(|w| !w.is_empty()) {
            position = (position + 1).min(MAX_POSITION);
            match positions.get_mut(word) {
                Some(list) => {
                    if list.len() < MAX_POSITIONS_PER_WORD
                        && list.last().is_some_and(|last| last.0 < position)
                    {
                        list.push((position, weight));
                        bytes += 2;
                    }
                }
                None => {
                    bytes += word.len() + 8;
                    if bytes > MAX_VECTOR_BYTES {
                        break 'fields;
                    }
                    order.push(word);
                    positions.insert(word, vec![(position, weight)]);
                }
            }
        }
        position = (position + 1).min(MAX_POSITION);
    }
    let mut out = String::with_capacity(bytes * 2);
    for word in order {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "'{word}':");
        for (i, (position, weight)) in positions[word].iter().enumerate() {
            let _ = write!(out, "{}{position}{weight}", if i == 0 { "" } else { "," });
        }
    }
    for word in unstemmed {
        let _ = write!(out, " '{WORD}{word}'");
    }
    out
}

/// A tsquery literal: every term AND-ed, a prefix `:*`, a phrase `<->`.
fn tsquery(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|term| match term {
            Term::Word(w) => format!("'{w}'"),
            Term::Prefix(w) => format!("('{w}':* | '{WORD}{w}':*)"),
            Term::Phrase(ws) => {
                format!("({})", ws.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" <-> "))
            }
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

pub(super) async fn index<C: ConnectionTrait>(db: &C, entry: &Entry<'_>) -> Result<(), DbErr> {
    let (title, body) = (&entry.analyzed_title, &entry.analyzed_body);
    let title_tsv = tsvector(&[(title, 'A')]);
    let tsv = tsvector(&[(title, 'A'), (body, 'B')]);
    db.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "INSERT INTO page_search (page_id, title, body, title_tsv, tsv) \
         VALUES ($1, $2, $3, $4::tsvector, $5::tsvector) \
         ON CONFLICT (page_id) DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body, \
           title_tsv = EXCLUDED.title_tsv, tsv = EXCLUDED.tsv",
        [entry.page_id.into(), entry.title.into(), entry.body.into(), title_tsv.into(), tsv.into()],
    ))
    .await?;
    Ok(())
}

pub(super) fn search(terms: &[Term], offset: u64, limit: u64) -> Statement {
    Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "WITH q AS (SELECT $1::tsquery AS t), \
         candidates AS ( \
           (SELECT page_id, 0 AS tier FROM page_search, q WHERE title_tsv @@ q.t LIMIT $2) \
           UNION ALL \
           (SELECT page_id, 1 AS tier FROM page_search, q WHERE tsv @@ q.t LIMIT $2)), \
         ranked AS (SELECT page_id, MIN(tier) AS tier FROM candidates GROUP BY page_id) \
         SELECT s.title, left(s.body, 20000) AS body FROM ranked r JOIN page_search s USING (page_id), q \
         ORDER BY r.tier, CASE WHEN r.tier = 0 THEN ts_rank(s.title_tsv, q.t, 0) END DESC NULLS LAST, \
           ts_rank(s.tsv, q.t, 0) DESC, s.page_id \
         LIMIT $3 OFFSET $4",
        [tsquery(terms).into(), CANDIDATES.into(), (limit as i64).into(), (offset as i64).into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::search::{analyze, parse};

    #[test]
    fn the_tsquery_holds_only_quoted_words_and_operators() {
        let terms = parse(r#"a'b "c; DROP" d* !x"#);
        assert_eq!(tsquery(&terms), "'a' & 'b' & ('c' <-> 'drop') & ('d':* | '~d':*) & 'x'");
    }

    #[test]
    fn a_tsvector_numbers_the_words_of_each_field_in_turn() {
        let title = analyze("Deploy guide");
        let body = analyze("deploying to it");
        assert_eq!(
            tsvector(&[(&title, 'A'), (&body, 'B')]),
            "'deploy':1A,4B 'guid':2A 'to':5B 'it':6B '~guide' '~deploying'"
        );
    }

    #[test]
    fn a_tsvector_stays_within_postgres_limits() {
        let many: String = (0..200_000).map(|i| format!("w{i}ing ")).collect();
        let vector = tsvector(&[(&analyze(&many), 'B')]);
        assert!(vector.len() < 1024 * 1024, "{}", vector.len());
        let same = "x ".repeat(100_000);
        let vector = tsvector(&[(&analyze(&same), 'B')]);
        assert_eq!(vector.matches(',').count(), MAX_POSITIONS_PER_WORD - 1);
    }
}
