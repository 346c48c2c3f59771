//! Search (`/search?q=`): title matches first, phrases, prefixes, words AND-ed, inflections,
//! words of any length and stop words, escaped snippets with the matches marked, any query
//! answered, pages of 20, and an index that changes in the same transaction as the page and is
//! rebuilt by its migration. `search_corpus.rs` measures the ranking on a 200-page wiki.

use quire::models::search;
use quire::urls;
use reqwest::StatusCode;

use crate::helpers::*;
use crate::pages::unescape;
use crate::wiki::{delete, edit, rename, stored};

/// The result page of a query, which must answer 200.
pub async fn results_page(browser: &Browser, q: &str) -> String {
    let (status, html) = browser.get_text(&format!("/search?q={}", urls::encode_query(q))).await;
    assert_eq!(status, StatusCode::OK, "{q}");
    html
}

/// (href, title) of each result, in order.
fn results(html: &str) -> Vec<(String, String)> {
    let list = html.split(r#"<ol class="search-results">"#).nth(1).expect("a result list");
    let list = &list[..list.find("</ol>").unwrap()];
    list.split("<li><a href=\"")
        .skip(1)
        .map(|item| {
            let href = &item[..item.find('"').unwrap()];
            let text = &item[item.find('>').unwrap() + 1..item.find("</a>").unwrap()];
            (unescape(href), unescape(text))
        })
        .collect()
}

pub fn titles(html: &str) -> Vec<String> {
    results(html).into_iter().map(|(_, title)| title).collect()
}

/// The snippets of the results, as HTML.
fn snippets(html: &str) -> Vec<String> {
    html.split(r#"<p class="snippet">"#)
        .skip(1)
        .map(|rest| rest[..rest.find("</p>").unwrap()].to_owned())
        .collect()
}

fn message(html: &str) -> Option<String> {
    let rest = html.split(r#"<p class="search-message">"#).nth(1)?;
    Some(unescape(&rest[..rest.find("</p>").unwrap()]))
}

/// The titles the index itself finds for a query.
async fn indexed(app: &TestApp, q: &str) -> Vec<String> {
    let mut found: Vec<String> = search::search(&app.state.db.read, &search::parse(q), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|hit| hit.title)
        .collect();
    found.sort();
    found
}

fn sorted(mut titles: Vec<String>) -> Vec<String> {
    titles.sort();
    titles
}

async fn a_title_match_ranks_before_content_matches(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Systems languages", "rust rust rust: rust everywhere, rust all along").await;
    app.browser.create_page("Oxidation", "iron slowly turns into rust when left outside").await;
    app.browser.create_page("Rust notes", "thoughts about borrowing and lifetimes").await;
    app.browser.create_page("Gardening", "tomatoes need sunshine").await;

    let html = results_page(&app.new_browser(), "rust").await;
    let found = results(&html);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0], ("/wiki/Rust%20notes".to_owned(), "Rust notes".to_owned()));
    assert_eq!(sorted(titles(&html)[1..].to_vec()), ["Oxidation", "Systems languages"]);
    assert_eq!(message(&html), None);
    assert_eq!(indexed(&app, "rust").await, ["Oxidation", "Rust notes", "Systems languages"]);
    // Case does not matter.
    assert_eq!(titles(&results_page(&app.browser, "RUST").await)[0], "Rust notes");
}

async fn a_phrase_finds_the_words_together_and_plain_words_must_all_match(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Fable", "The quick brown fox jumps over the lazy hound.").await;
    app.browser.create_page("Scattered", "A quick reply about brown paper parcels.").await;
    app.browser.create_page("Unrelated", "Only a quick note here.").await;
    let visitor = app.new_browser();

    assert_eq!(titles(&results_page(&visitor, "\"quick brown\"").await), ["Fable"]);
    assert_eq!(sorted(titles(&results_page(&visitor, "quick brown").await)), ["Fable", "Scattered"]);
    assert_eq!(sorted(titles(&results_page(&visitor, "brown quick").await)), ["Fable", "Scattered"]);
    assert_eq!(titles(&results_page(&visitor, "quick parcels").await), ["Scattered"]);
    assert_eq!(sorted(titles(&results_page(&visitor, "quick").await)), ["Fable", "Scattered", "Unrelated"]);
    let html = results_page(&visitor, "\"brown quick\"").await;
    assert!(titles(&html).is_empty());
    assert_eq!(message(&html).as_deref(), Some("No page matches."));
    let html = results_page(&visitor, "quick zeppelin").await;
    assert!(titles(&html).is_empty(), "every word must match");
    assert_eq!(message(&html).as_deref(), Some("No page matches."));
    // An unterminated phrase is still a phrase.
    assert_eq!(titles(&results_page(&visitor, "\"quick brown").await), ["Fable"]);
    assert_eq!(indexed(&app, "\"quick brown\"").await, ["Fable"]);
}

async fn a_prefix_finds_the_words_starting_with_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Encyclopedias", "wikipedia is very large").await;
    app.browser.create_page("Engines", "many wikis exist today").await;
    app.browser.create_page("Games", "wicked puzzles and kiwis").await;
    let visitor = app.new_browser();
    assert_eq!(sorted(titles(&results_page(&visitor, "wiki*").await)), ["Encyclopedias", "Engines"]);
    assert_eq!(titles(&results_page(&visitor, "wikip*").await), ["Encyclopedias"]);
    // Without a star, a whole word and its inflections (wikis), not longer words.
    assert_eq!(titles(&results_page(&visitor, "wiki").await), ["Engines"]);
    assert!(titles(&results_page(&visitor, "wik").await).is_empty(), "a part of a word finds nothing");
    assert_eq!(indexed(&app, "wiki*").await, ["Encyclopedias", "Engines"]);
}

async fn results_show_an_escaped_snippet_with_the_match_marked(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser
        .create_page("Preserves", "Before <script>alert(1)</script> the marmalade recipe & <b>more</b> after")
        .await;
    let baseline = results_page(&app.new_browser(), "").await;
    let html = results_page(&app.new_browser(), "marmalade").await;
    assert_eq!(titles(&html), ["Preserves"]);
    let snippet = &snippets(&html)[0];
    assert!(snippet.contains("<mark>marmalade</mark>"), "{snippet}");
    // The snippet is the text the page shows: the script (which the page never runs or shows)
    // is not in it, the rest is escaped.
    assert!(snippet.contains("Before the <mark>marmalade</mark> recipe &#38; more after"), "{snippet}");
    assert!(!snippet.contains("alert(1)") && !snippet.contains("script"), "{snippet}");
    assert!(!snippet.contains("<b>"), "{snippet}");
    assert_eq!(
        html.to_lowercase().matches("<script").count(),
        baseline.to_lowercase().matches("<script").count(),
        "no <script from the content reaches the page"
    );
    assert!(!html.contains("<script>alert(1)"));

    // A match deep in a long page: the snippet is cut around it.
    let long = format!("{} the pomegranate is here {}", "filler ".repeat(300), "tail ".repeat(300));
    app.browser.create_page("Long one", &long).await;
    let html = results_page(&app.browser, "pomegranate").await;
    let snippet = &snippets(&html)[0];
    assert!(snippet.contains("<mark>pomegranate</mark>"), "{snippet}");
    assert!(snippet.starts_with('…') && snippet.ends_with('…'), "{snippet}");
    assert!(snippet.chars().count() < 400, "{snippet}");
    // Titles are escaped in the results too.
    app.browser.create_page("Marmalade <i>jar</i>", "a jar").await;
    let html = results_page(&app.browser, "marmalade").await;
    assert_eq!(titles(&html)[0], "Marmalade <i>jar</i>", "the title match first");
    assert!(html.contains(">Marmalade &#60;i&#62;jar&#60;/i&#62;</a>"), "{html}");
    assert!(!html.contains("<i>jar"), "{html}");
    // The query is shown back, escaped.
    let html = results_page(&app.browser, "marmalade <i>x</i>").await;
    assert!(html.contains(r#"value="marmalade &#60;i&#62;x&#60;/i&#62;""#), "{html}");
}

async fn any_query_is_answered_without_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Anything goes", "some searchable words about parsing queries").await;
    app.browser.create_page("Title words", "near title and or not").await;
    let visitor = app.new_browser();
    let long = "lorem ipsum dolor ".repeat(600);
    let queries = [
        "\"",
        "\"\"",
        "*",
        "**",
        "words*",
        "*words",
        "AND (",
        "OR",
        "NOT words",
        "NEAR(a b)",
        "NEAR(searchable words, 2)",
        "title:x",
        "title:anything",
        "body:words",
        "' OR 1=1 --",
        "'; DROP TABLE pages; --",
        "-",
        "-words",
        "+",
        "+words -parsing",
        "%",
        "100%",
        "_",
        "\\",
        "a:*",
        "words:*",
        "!words & |parsing",
        "<-> words",
        "(words)",
        "{words}",
        "[words]",
        "^words",
        "~words",
        ">words <parsing",
        "@3 words",
        "$1",
        "?",
        "日本語のページ",
        "Ελληνικά",
        "emoji 🚀",
        "ﬁ ß İ ǅ",
        "x\u{301}\u{301}\u{301}",
        "²³ ½",
        "a\u{0}b",
        "\u{feff}",
        &"w".repeat(300),
        &long,
        "   ",
    ];
    for q in queries {
        let (status, html) = visitor.get_text(&format!("/search?q={}", urls::encode_query(q))).await;
        assert_eq!(status, StatusCode::OK, "{q:?}");
        assert!(html.contains(r#"<ol class="search-results">"#), "{q:?}");
    }
    for raw in [
        "/search?q=%",
        "/search?q=%%",
        "/search?q=%2",
        "/search?q=a+b",
        "/search?q=&page=2",
        "/search?q=words&page=abc",
        "/search?q=words&page=0",
        "/search?q=words&page=99999999999999999999",
    ] {
        let status = visitor.get(raw).await.status();
        assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{raw}: {status}");
    }
    for raw in ["/search?q=%FF", "/search?q=%E6%97", "/search?q=%C0%AF"] {
        let status = visitor.get(raw).await.status();
        assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{raw}: {status}");
    }

    // Engine syntax is only text: it finds the words it contains.
    assert_eq!(titles(&results_page(&visitor, "title:anything").await), Vec::<String>::new());
    assert_eq!(titles(&results_page(&visitor, "(parsing) AND queries").await), Vec::<String>::new());
    assert_eq!(titles(&results_page(&visitor, "+parsing -queries").await), ["Anything goes"]);

    // An empty query gets a hint, and so does a missing one.
    for path in ["/search", "/search?q=", "/search?q=%20%20"] {
        let (status, html) = visitor.get_text(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(message(&html).unwrap().starts_with("Type words to look for"), "{path}: {html}");
        assert!(results(&html).is_empty());
    }
    let html = results_page(&visitor, "zeppelins").await;
    assert_eq!(message(&html).as_deref(), Some("No page matches."));
    let html = results_page(&visitor, "*** () \"\"").await;
    assert!(message(&html).is_some(), "a query without words says so");
    assert!(results(&html).is_empty());
    // Nothing the queries did changed the pages.
    assert_eq!(app.page_count().await, 2);
}

async fn twenty_five_matches_are_shown_twenty_to_a_screen(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    for i in 1..=25 {
        let response =
            app.browser.create_page(&format!("Entry {i:02}"), &format!("needlework topic number {i}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    app.browser.create_page("Unrelated", "carpentry").await;
    let visitor = app.new_browser();
    let first = results_page(&visitor, "needlework").await;
    let first_titles = titles(&first);
    assert_eq!(first_titles.len(), 20);
    assert!(first.contains("/search?q=needlework&#38;page=2"), "a link to the next screen: {first}");
    assert!(!first.contains("rel=\"prev\""));
    let (status, second) = visitor.get_text("/search?q=needlework&page=2").await;
    assert_eq!(status, StatusCode::OK);
    let second_titles = titles(&second);
    assert_eq!(second_titles.len(), 5);
    assert!(!second.contains("page=3"));
    assert!(second.contains("/search?q=needlework&#38;page=1"), "a link back: {second}");
    let mut all = [first_titles, second_titles].concat();
    all.sort();
    all.dedup();
    assert_eq!(all, (1..=25).map(|i| format!("Entry {i:02}")).collect::<Vec<_>>(), "each match once");
    let (_, third) = visitor.get_text("/search?q=needlework&page=3").await;
    assert!(titles(&third).is_empty());
}

async fn the_index_follows_edits_renames_and_deletions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Vulture notes", "the original pelican paragraph").await;
    let visitor = app.new_browser();
    assert_eq!(titles(&results_page(&visitor, "pelican").await), ["Vulture notes"]);

    assert_redirects_to(
        &edit(&app.browser, "Vulture notes", "the replaced flamingo paragraph", "").await,
        "/wiki/Vulture%20notes",
    );
    assert_eq!(titles(&results_page(&visitor, "flamingo").await), ["Vulture notes"]);
    let html = results_page(&visitor, "pelican").await;
    assert!(titles(&html).is_empty(), "the removed word no longer finds the page");
    assert_eq!(message(&html).as_deref(), Some("No page matches."));
    assert_eq!(indexed(&app, "flamingo").await, ["Vulture notes"]);
    assert!(indexed(&app, "pelican").await.is_empty());

    assert_redirects_to(
        &rename(&app.browser, "Vulture notes", "Albatross notes").await,
        "/wiki/Albatross%20notes",
    );
    assert_eq!(titles(&results_page(&visitor, "albatross").await), ["Albatross notes"]);
    assert!(titles(&results_page(&visitor, "vulture").await).is_empty(), "the old title is not found");
    assert_eq!(results(&results_page(&visitor, "flamingo").await)[0].0, "/wiki/Albatross%20notes");
    assert_eq!(indexed(&app, "albatross").await, ["Albatross notes"]);

    // A refused edit changes nothing in the index either.
    let response = app
        .browser
        .post_form(
            "/wiki/Albatross%20notes/edit",
            &[
                ("content", "osprey"),
                ("base_revision", "not a number"),
                ("csrf_token", &app.browser.csrf("/create").await),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(titles(&results_page(&visitor, "osprey").await).is_empty());

    assert_redirects_to(&delete(&app.browser, "Albatross notes").await, "/");
    assert!(stored(&app, "Albatross notes").await.deleted_at.is_some());
    for q in ["flamingo", "albatross", "notes"] {
        let html = results_page(&visitor, q).await;
        assert!(titles(&html).is_empty(), "{q}: a deleted page is not found");
        assert_eq!(message(&html).as_deref(), Some("No page matches."));
        assert!(indexed(&app, q).await.is_empty());
    }
}

/// A text of many distinct words that stays under every limit a form has (1 MiB of content,
/// 2 MiB of URL-encoded body, 300,000 characters indexed by PostgreSQL) but whose index entry
/// is large: one- and two-character words of CJK ideographs and Hangul syllables, each a
/// different word.
fn many_distinct_words() -> String {
    let single = (0x4E00..=0x9FFF).chain(0xAC00..=0xD7A3).chain(0x3400..=0x4DBF).chain(0x20000..=0x2A6DF);
    let mut text = String::new();
    for code in single {
        text.push(char::from_u32(code).unwrap());
        text.push(' ');
    }
    for i in 0..45_000u32 {
        text.push(char::from_u32(0x4E00 + i % 20_992).unwrap());
        text.push(char::from_u32(0xAC00 + i / 20_992).unwrap());
        text.push(' ');
    }
    text
}

async fn a_large_page_of_distinct_words_is_saved_and_found(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    let content = format!("quokka {}", many_distinct_words());
    assert!(content.len() <= 1024 * 1024, "{} bytes", content.len());
    assert!(content.chars().count() <= 300_000, "{} characters", content.chars().count());
    let response = app.browser.create_page("Big vocabulary", &content).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a valid page is accepted");
    assert_eq!(stored(&app, "Big vocabulary").await.content.len(), content.len());
    assert_eq!(found_by_its_words(&app, backend, "quokka").await, ["Big vocabulary"]);

    // The same text saved as an edit of a small page.
    app.browser.create_page("Grows later", "wombat").await;
    let response = edit(&app.browser, "Grows later", &format!("wombat {}", many_distinct_words()), "").await;
    assert_redirects_to(&response, "/wiki/Grows%20later");
    assert_eq!(found_by_its_words(&app, backend, "wombat").await, ["Grows later"]);
}

/// The titles found for `q`. MariaDB's FULLTEXT index writes a document with more words than its
/// cache holds (`innodb_ft_cache_size`, 8 MB) to disk at commit, in the background, and until that
/// is done the words are not found (a second or so on a loaded machine, measured); every other
/// backend, and every page of ordinary size, is found at once. So on MySQL alone the search is
/// asked again for at most ten seconds.
async fn found_by_its_words(app: &TestApp, backend: Backend, q: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = titles(&results_page(&app.browser, q).await);
        if !found.is_empty() || backend != Backend::MySql || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn inflections_short_words_and_stop_words_find_the_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Release log", "We deployed the new UI to it; the db is on Go and C.").await;
    app.browser.create_page("Elsewhere", "Nothing about releases here.").await;
    let visitor = app.new_browser();
    for q in [
        "deploying",
        "deploys",
        "DEPLOY",
        "ui",
        "UI",
        "to it",
        "the db",
        "go",
        "c",
        "\"to it\"",
        "on go and c",
    ] {
        assert_eq!(titles(&results_page(&visitor, q).await), ["Release log"], "{q}");
        assert_eq!(indexed(&app, q).await, ["Release log"], "{q}");
    }
    // Another inflection is marked in the snippet.
    let html = results_page(&visitor, "deploying").await;
    assert!(snippets(&html)[0].contains("<mark>deployed</mark>"), "{html}");
    // Short words are whole words too; the order of a phrase counts.
    for q in ["d", "\"it to\"", "\"ui new\""] {
        let html = results_page(&visitor, q).await;
        assert!(titles(&html).is_empty(), "{q}: {:?}", titles(&html));
        assert_eq!(message(&html).as_deref(), Some("No page matches."));
    }
    // Diacritics do not matter, on either side.
    app.browser.create_page("Café notes", "The café opens at eight; crème brûlée on Fridays.").await;
    for q in ["cafe", "CAFÉ", "creme brulee", "\"crème brûlée\""] {
        assert_eq!(titles(&results_page(&visitor, q).await), ["Café notes"], "{q}");
    }
}

async fn the_migration_rebuilds_the_index_of_existing_pages(backend: Backend) {
    use sea_orm_migration::MigratorTrait;
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Deployment log", "We deployed it to the db.").await;
    app.browser.create_page("Removed page", "deployed once").await;
    assert_redirects_to(&delete(&app.browser, "Removed page").await, "/");
    // Back to the index of m0003, as a wiki made before m0009 has it, then forward again.
    let migrations = quire::migrations::Migrator::migrations();
    let at = migrations.iter().position(|m| m.name() == "m0009_search_terms").expect("m0009 is registered");
    let db = &app.state.db.write;
    quire::migrations::Migrator::down(db, Some((migrations.len() - at) as u32)).await.unwrap();
    quire::app::migrate(&app.state.db).await.unwrap();
    let visitor = app.new_browser();
    for q in ["deploying", "db", "\"to the db\"", "deploy*"] {
        assert_eq!(titles(&results_page(&visitor, q).await), ["Deployment log"], "{q}");
    }
    assert!(titles(&results_page(&visitor, "removed").await).is_empty(), "a deleted page stays out");
    // The rebuilt index follows the next save.
    assert_redirects_to(
        &edit(&app.browser, "Deployment log", "Now about rollbacks.", "").await,
        "/wiki/Deployment%20log",
    );
    assert_eq!(titles(&results_page(&visitor, "rollback").await), ["Deployment log"]);
    assert!(titles(&results_page(&visitor, "db").await).is_empty());
}

crate::tests![
    a_title_match_ranks_before_content_matches,
    inflections_short_words_and_stop_words_find_the_page,
    the_migration_rebuilds_the_index_of_existing_pages,
    a_phrase_finds_the_words_together_and_plain_words_must_all_match,
    a_prefix_finds_the_words_starting_with_it,
    results_show_an_escaped_snippet_with_the_match_marked,
    any_query_is_answered_without_a_server_error,
    twenty_five_matches_are_shown_twenty_to_a_screen,
    the_index_follows_edits_renames_and_deletions,
    a_large_page_of_distinct_words_is_saved_and_found,
];
