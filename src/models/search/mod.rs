//! Full-text search over titles and content: one interface (`index`, `remove`, `search`,
//! `snippet`) and one module per database engine behind it (`sqlite`, `postgres`, `mysql`).
//!
//! **Quire analyzes the text itself, the engines only look words up.** A page's title and text
//! are cut into words (runs of letters and digits), lowercased, stripped of Latin diacritics
//! (`café` is `cafe`), cut at 64 characters and stemmed with the Snowball English stemmer
//! (`rust-stemmers`: `deploying`, `deployed` and `deploys` are all `deploy`); the query goes
//! through the same steps. The engines' own analysis differs in ways that change what is found
//! — SQLite FTS5 has no English stemmer at all (Porter only wraps another tokenizer and stems
//! differently from PostgreSQL's `english` Snowball configuration), PostgreSQL's `english`
//! drops stop words, and MySQL's FULLTEXT ignores words under `innodb_ft_min_token_size` (3)
//! and its stop words (`to`, `it`, `the` …), which server options cannot be relied on to
//! change — so each engine is handed words already analyzed, and all three find the same
//! pages. No word is ever dropped: one letter, two letters, stop words and digits are words.
//!
//! The query language is Quire's own (words, `"phrases"`, `prefix*`), parsed here; each engine
//! module writes it in its syntax from analyzed words only (letters and digits), so no user
//! input can be an engine syntax error. A prefix is not stemmed: it is looked up among the
//! stems and among the words as written (`Analyzed::words`), so `observab*` finds
//! `observability` although its stem is `observ`.

mod mysql;
mod postgres;
mod sqlite;

use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, FromQueryResult};
use unicode_normalization::UnicodeNormalization;

/// One part of a query, its words analyzed (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Word(String),
    Prefix(String),
    Phrase(Vec<String>),
}

/// A query has at most this many terms; longer ones are cut.
const MAX_TERMS: usize = 8;
/// Longer words are cut to this many characters, in pages and in queries alike.
const MAX_WORD_CHARS: usize = 64;

static ENGLISH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// A character that belongs to a word: a letter, a digit, or a combining diacritic (kept with
/// its letter until it is stripped, so that a decomposed `é` does not split a word).
fn in_word(c: char) -> bool {
    c.is_alphanumeric() || is_diacritic(c)
}

fn is_diacritic(c: char) -> bool {
    ('\u{300}'..='\u{36f}').contains(&c)
}

/// The words of a text, lowercased, without Latin diacritics, cut at `MAX_WORD_CHARS`.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !in_word(c)).filter_map(fold)
}

/// One word as compared: lowercase, Latin diacritics removed, at most `MAX_WORD_CHARS`.
/// `None` for a run of diacritics alone.
fn fold(word: &str) -> Option<String> {
    let folded: String = if word.is_ascii() {
        word.to_ascii_lowercase()
    } else {
        word.nfd().filter(|c| !is_diacritic(*c)).nfc().flat_map(char::to_lowercase).collect()
    };
    let folded = match folded.char_indices().nth(MAX_WORD_CHARS) {
        Some((end, _)) => folded[..end].to_owned(),
        None => folded,
    };
    (!folded.is_empty()).then_some(folded)
}

/// The stem of a folded word.
fn stem(folded: &str) -> String {
    ENGLISH.stem(folded).into_owned()
}

/// A text as the index holds it.
pub(crate) struct Analyzed {
    /// Its stems in order, separated by single spaces: what words and phrases are looked up in.
    pub terms: String,
    /// Its words whose stem differs from the word, once each, separated by single spaces: what
    /// a prefix is looked up in besides the stems (`observab*` finds `observability`, whose
    /// stem is `observ`).
    pub words: String,
}

pub(crate) fn analyze(text: &str) -> Analyzed {
    let mut terms = String::with_capacity(text.len());
    let mut words_seen = std::collections::HashSet::new();
    let mut words_out = String::new();
    for word in words(text) {
        if !terms.is_empty() {
            terms.push(' ');
        }
        let stemmed = ENGLISH.stem(&word);
        terms.push_str(&stemmed);
        if stemmed != word.as_str() && !words_seen.contains(&word) {
            if !words_out.is_empty() {
                words_out.push(' ');
            }
            words_out.push_str(&word);
            words_seen.insert(word);
        }
    }
    Analyzed { terms, words: words_out }
}

/// Parses what a visitor typed: `"…"` is a phrase, a trailing `*` makes a prefix.
pub fn parse(query: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    for (i, part) in query.split('"').enumerate() {
        if i % 2 == 1 {
            let stems: Vec<String> = words(part).map(|w| stem(&w)).collect();
            match stems.as_slice() {
                [] => {}
                [one] => terms.push(Term::Word(one.clone())),
                _ => terms.push(Term::Phrase(stems)),
            }
            continue;
        }
        for raw in part.split_whitespace() {
            let prefix = raw.ends_with('*');
            let pieces: Vec<String> = words(raw).collect();
            let count = pieces.len();
            for (j, word) in pieces.into_iter().enumerate() {
                if prefix && j + 1 == count {
                    terms.push(Term::Prefix(word));
                } else {
                    terms.push(Term::Word(stem(&word)));
                }
            }
        }
    }
    terms.truncate(MAX_TERMS);
    terms
}

/// The text a page is searched by: what a reader sees of it (Markdown without its marks,
/// imported HTML without its tags).
pub fn text_of(content: &str, format: &str) -> String {
    if format == super::page::FORMAT_HTML {
        let text = ammonia::Builder::empty().clean(content).to_string();
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
    } else {
        // What the page shows, not its Markdown: snippets never show `##` or `|---|`.
        crate::render::plain_text(content)
    }
}

/// A page as it goes into the index: the text shown in results and its analysis.
pub(crate) struct Entry<'a> {
    pub page_id: i32,
    pub title: &'a str,
    pub body: &'a str,
    pub analyzed_title: Analyzed,
    pub analyzed_body: Analyzed,
}

/// Puts a page into the index (or replaces its entry), inside the caller's transaction.
pub async fn index<C: ConnectionTrait>(db: &C, page_id: i32, title: &str, body: &str) -> Result<(), DbErr> {
    let entry = Entry { page_id, title, body, analyzed_title: analyze(title), analyzed_body: analyze(body) };
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => sqlite::index(db, &entry).await,
        DatabaseBackend::Postgres => postgres::index(db, &entry).await,
        _ => mysql::index(db, &entry).await,
    }
}

/// Indexes a page with the names of its live files after its text, so that a search finds a
/// page by the name of a file attached to it. (Migrations index with [`index`]: the file tables
/// may not exist yet.)
pub async fn index_page<C: ConnectionTrait>(
    db: &C,
    page_id: i32,
    title: &str,
    body: &str,
) -> Result<(), DbErr> {
    let names = super::file::names_for_page(db, page_id).await?;
    if names.is_empty() {
        return index(db, page_id, title, body).await;
    }
    let body = format!("{body}\n\n{}", names.join("\n"));
    index(db, page_id, title, &body).await
}

/// Indexes a live page again from what is stored (after its files changed).
pub async fn reindex<C: ConnectionTrait>(db: &C, page_id: i32) -> Result<(), DbErr> {
    use sea_orm::EntityTrait;
    let Some(page) = super::page::Entity::find_by_id(page_id).one(db).await? else { return Ok(()) };
    if page.deleted_at.is_some() {
        return Ok(());
    }
    index_page(db, page.id, &page.title, &text_of(&page.content, &page.format)).await
}

/// Takes a page out of the index.
pub async fn remove<C: ConnectionTrait>(db: &C, page_id: i32) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => "DELETE FROM page_search WHERE page_id = $1",
        // SQLite: a trigger takes the page out of the word indexes too (see sqlite.rs).
        _ => "DELETE FROM page_search WHERE page_id = ?",
    };
    db.execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, [page_id.into()])).await?;
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

/// Pages matching every term: first those whose title holds every term (by how well the
/// title matches, then by the engine's relevance), then the rest by relevance (bm25, ts_rank,
/// MATCH … AGAINST), over a bounded set of candidates; ties by page id.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    terms: &[Term],
    offset: u64,
    limit: u64,
) -> Result<Vec<Hit>, DbErr> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let statement = match db.get_database_backend() {
        DatabaseBackend::Sqlite => sqlite::search(terms, offset, limit),
        DatabaseBackend::Postgres => postgres::search(terms, offset, limit),
        _ => mysql::search(terms, offset, limit),
    };
    Hit::find_by_statement(statement).all(db).await
}

/// The part of `body` around the first match, as (highlighted?, text) pieces.
/// A snippet looks for its first match in this much of a page at most: the work of a search
/// stays bounded whatever the size of the pages it finds.
const SNIPPET_SCAN_BYTES: usize = 64 * 1024;

/// What a snippet marks: the words whose stem is searched for, or that start with a prefix.
struct Needles<'a> {
    stems: Vec<&'a str>,
    prefixes: Vec<&'a str>,
    /// The first letters of the stems and prefixes.
    firsts: Vec<char>,
}

impl Needles<'_> {
    fn matches(&self, word: &[char]) -> bool {
        // Folding and stemming every word of a page is the costly part: a stem starts with the
        // first letter of its word (Snowball English only rewrites endings), so an ASCII word
        // whose first letter starts no needle is passed over at once.
        if let Some(first) = word.first().filter(|c| c.is_ascii())
            && !self.firsts.contains(&first.to_ascii_lowercase())
        {
            return false;
        }
        let Some(folded) = fold(&word.iter().collect::<String>()) else { return false };
        if self.prefixes.iter().any(|p| folded.starts_with(p)) {
            return true;
        }
        let first = folded.chars().next();
        if !self.stems.iter().any(|s| s.chars().next() == first) {
            return false;
        }
        let stemmed = ENGLISH.stem(&folded);
        self.stems.contains(&stemmed.as_ref()) || self.prefixes.iter().any(|p| stemmed.starts_with(p))
    }
}

pub fn snippet(body: &str, terms: &[Term], width: usize) -> Vec<(bool, String)> {
    let mut scanned = body.len().min(SNIPPET_SCAN_BYTES);
    while !body.is_char_boundary(scanned) {
        scanned -= 1;
    }
    let (body, cut) = (&body[..scanned], scanned < body.len());
    let mut needles = Needles { stems: Vec::new(), prefixes: Vec::new(), firsts: Vec::new() };
    for term in terms {
        match term {
            Term::Word(w) => needles.stems.push(w),
            Term::Prefix(p) => needles.prefixes.push(p),
            Term::Phrase(ws) => needles.stems.extend(ws.iter().map(String::as_str)),
        }
    }
    needles.firsts = needles.stems.iter().chain(&needles.prefixes).filter_map(|w| w.chars().next()).collect();
    let chars: Vec<char> = body.chars().collect();
    // The matching words as character ranges, from the first one to the end of its window.
    let mut matched: Vec<(usize, usize)> = Vec::new();
    let mut window_end = usize::MAX;
    let mut word_start = None;
    for (i, c) in chars.iter().chain(std::iter::once(&' ')).enumerate() {
        match (in_word(*c), word_start) {
            (true, None) => word_start = Some(i),
            (false, Some(s)) => {
                word_start = None;
                if needles.matches(&chars[s..i]) {
                    if matched.is_empty() {
                        window_end = s.saturating_sub(width / 3) + width;
                    }
                    matched.push((s, i));
                }
            }
            (false, None) if i >= window_end => break,
            _ => {}
        }
    }
    let first = matched.first().map_or(0, |m| m.0);
    let start = first.saturating_sub(width / 3);
    let end = (start + width).min(chars.len());
    let mut pieces: Vec<(bool, String)> = Vec::new();
    if start > 0 {
        pieces.push((false, "…".into()));
    }
    let shown = |from: usize, to: usize| -> String {
        chars[from..to].iter().map(|c| if c.is_control() { ' ' } else { *c }).collect()
    };
    let mut i = start;
    for &(s, e) in matched.iter().filter(|m| m.1 > start && m.0 < end) {
        let s = s.max(start);
        if s > i {
            pieces.push((false, shown(i, s)));
        }
        let e = e.min(end);
        pieces.push((true, shown(s, e)));
        i = e;
    }
    if i < end {
        pieces.push((false, shown(i, end)));
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
    fn queries_parse_into_stemmed_words_prefixes_and_phrases() {
        assert_eq!(
            parse(r#"wiki* "edit conflicts" Deploying"#),
            vec![
                Term::Prefix("wiki".into()),
                Term::Phrase(vec!["edit".into(), "conflict".into()]),
                Term::Word("deploy".into())
            ]
        );
        // Engine syntax in the input is just text.
        assert_eq!(
            parse(r#"title:x AND (NOT "#),
            vec![
                Term::Word("titl".into()),
                Term::Word("x".into()),
                Term::Word("and".into()),
                Term::Word("not".into())
            ]
        );
        assert!(parse(r#"*** "" ()"#).is_empty());
        assert_eq!(
            parse(r#""unterminated phrase"#),
            vec![Term::Phrase(vec!["untermin".into(), "phrase".into()])]
        );
    }

    #[test]
    fn inflections_share_a_stem_and_short_words_are_kept() {
        for word in ["deploy", "deploys", "deployed", "deploying", "Deploying"] {
            assert_eq!(analyze(word).terms, "deploy", "{word}");
        }
        assert_eq!(analyze("To go, a C UI: it's the db!").terms, "to go a c ui it s the db");
        let observed = analyze("Observability: observable, observed; observability");
        assert_eq!(observed.terms, "observ observ observ observ");
        assert_eq!(observed.words, "observability observable observed", "each unstemmed word once");
    }

    #[test]
    fn diacritics_and_case_fold_and_other_scripts_pass_through() {
        assert_eq!(analyze("Café CAFÉ cafe\u{301}").terms, "cafe cafe cafe");
        assert_eq!(analyze("日本語の ページ Ελληνικά").terms, "日本語の ページ ελληνικα");
        assert_eq!(parse("x\u{301}\u{301}"), vec![Term::Word("x".into())]);
        assert!(parse("\u{301}\u{301}").is_empty(), "diacritics alone are no word");
        let long = "w".repeat(300);
        assert_eq!(analyze(&long).terms.len(), MAX_WORD_CHARS);
        assert_eq!(parse(&long), vec![Term::Word("w".repeat(MAX_WORD_CHARS))]);
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
        assert_eq!(marked, ["Wiki", "wikis"]);
        assert_eq!(pieces.first().unwrap().1, "…");
    }

    #[test]
    fn snippets_mark_every_inflection_and_whole_words_only() {
        let body = "We deployed it; redeploying is rare, deployments happen. A deploy-bot deploys.";
        let pieces = snippet(body, &parse("deploying"), 200);
        let marked: Vec<&str> = pieces.iter().filter(|p| p.0).map(|p| p.1.as_str()).collect();
        assert_eq!(marked, ["deployed", "deployments", "deploy", "deploys"]);
        let text: String = pieces.iter().map(|p| p.1.as_str()).collect();
        assert_eq!(text, body, "nothing is lost between the pieces");
    }
}
