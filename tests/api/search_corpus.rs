//! Search that finds the page: the 200 pages of `tests/fixtures/search-corpus.txt` (a team
//! wiki: deployment guides, on-call notes, meeting notes, a glossary with short words, code
//! snippets, pages in other languages) and 30 queries with the pages they must find first,
//! asked over HTTP (`GET /search?q=`) on every backend. The hit rate is printed; anything
//! below 30/30 fails.

use quire::models::{page, search};
use quire::render;

use crate::helpers::*;
use crate::search::{results_page, titles};

const CORPUS: &str = include_str!("../fixtures/search-corpus.txt");

/// A query and the pages it must find. `top` are the first results in any order (the engines'
/// relevance differs; which tier a page is in does not); `first`, when given, must be the very
/// first result.
struct Case {
    kind: &'static str,
    q: &'static str,
    top: &'static [&'static str],
    first: Option<&'static str>,
}

const fn case(
    kind: &'static str,
    q: &'static str,
    top: &'static [&'static str],
    first: Option<&'static str>,
) -> Case {
    Case { kind, q, top, first }
}

const CASES: [Case; 30] = [
    // Stemming: another inflection of the word finds the page.
    case(
        "stemming",
        "deploying",
        &["Deploy checklist", "Deployed services inventory", "Deploying on Fridays"],
        None,
    ),
    case(
        "stemming",
        "migrated databases",
        &["Database migration runbook", "Postgres upgrade notes"],
        Some("Database migration runbook"),
    ),
    case(
        "stemming",
        "caching",
        &["Cache invalidation notes", "Caching strategy for the API", "Redis operations"],
        None,
    ),
    case("stemming", "failovers", &["Failover drill May", "Database failover design"], None),
    case("stemming", "retried requests", &["HTTP client retries"], None),
    case(
        "stemming",
        "scheduling",
        &["On-call schedule", "Scheduled jobs (cron)", "Job scheduler design"],
        None,
    ),
    // Short words: one and two letters, and words with digits.
    case("short word", "Go", &["Go style guide", "Building Go services"], None),
    case("short word", "C", &["C coding conventions"], Some("C coding conventions")),
    case("short word", "UI", &["UI review checklist", "Design system: UI tokens"], None),
    case("short word", "db", &["DB access policy", "Glossary of short words"], Some("DB access policy")),
    case("short word", "k8s pod", &["k8s pod restarts"], Some("k8s pod restarts")),
    // Stop words (MySQL's list): searched like any other word.
    case("stop words", "\"to be or not to be\"", &["Hamlet quotes for the offsite"], None),
    case("stop words", "\"it is what it is\"", &["Retro: sprint 14"], None),
    case("stop words", "a b testing", &["A/B testing guide"], Some("A/B testing guide")),
    case("stop words", "on call", &["On-call schedule", "On-call handbook", "On-call rotation 2024"], None),
    // Phrases: the words in that order only.
    case(
        "phrase",
        "\"edit conflict\"",
        &["Edit conflicts explained", "Wiki editing tips"],
        Some("Edit conflicts explained"),
    ),
    case("phrase", "\"rolling restart\"", &["Restarting services safely"], None),
    case("phrase", "\"feature flag\"", &["Feature flags", "Release process"], Some("Feature flags")),
    case(
        "phrase",
        "\"error budget\"",
        &["SLOs and error budgets", "Incident review template"],
        Some("SLOs and error budgets"),
    ),
    // A page whose title holds every word comes first.
    case("title first", "postgres", &["Postgres upgrade notes", "Postgres connection pooling"], None),
    case(
        "title first",
        "kafka consumer lag",
        &["Kafka consumer lag alerts", "On-call handbook"],
        Some("Kafka consumer lag alerts"),
    ),
    case("title first", "terraform", &["Terraform state locking", "Terraform modules"], None),
    // Prefixes, also of words whose stem is shorter than the prefix.
    case(
        "prefix",
        "observab*",
        &["Observability stack", "Tracing with OpenTelemetry"],
        Some("Observability stack"),
    ),
    case("prefix", "kube*", &["Kubernetes upgrade runbook", "kubectl cheat sheet"], None),
    case("prefix", "grafan*", &["Grafana dashboards"], Some("Grafana dashboards")),
    // A word found on one or two pages.
    case("rare word", "zookeeper", &["Legacy Kafka cluster"], None),
    case("rare word", "idempotency", &["Payments API design", "HTTP client retries"], None),
    // A word on many pages: the pages it names come first.
    case(
        "common word",
        "service",
        &["Deployed services inventory", "Building Go services", "Restarting services safely"],
        None,
    ),
    // Other scripts and diacritics.
    case("other language", "デプロイ*", &["デプロイ手順"], Some("デプロイ手順")),
    case("other language", "storung", &["Bereitschaft und Störungen"], None),
];

/// The pages of the corpus: (title, Markdown).
fn corpus() -> Vec<(&'static str, String)> {
    let mut pages: Vec<(&str, String)> = Vec::new();
    for line in CORPUS.lines() {
        if let Some(title) = line.strip_prefix("=== ") {
            pages.push((title, String::new()));
        } else if let Some((_, text)) = pages.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    pages
}

/// Whether the results answer the case, and what they were.
fn hit(case: &Case, found: &[String]) -> bool {
    let mut top: Vec<&str> = found.iter().take(case.top.len()).map(String::as_str).collect();
    top.sort();
    let mut expected = case.top.to_vec();
    expected.sort();
    top == expected && case.first.is_none_or(|first| found.first().map(String::as_str) == Some(first))
}

async fn the_corpus_queries_find_their_pages_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let pages = corpus();
    assert_eq!(pages.len(), 200, "the corpus has 200 pages");
    // Seeded through the model layer (one transaction a page, indexed as a save indexes it):
    // 200 pages through the forms would take longer than every query together.
    for (title, text) in &pages {
        let rendered = render::content(text, page::FORMAT_MARKDOWN).unwrap();
        page::create(
            &app.state.db.write,
            page::NewPage {
                title,
                content: text,
                format: page::FORMAT_MARKDOWN,
                html: &rendered.html,
                author_id: None,
                links: &rendered.links,
            },
        )
        .await
        .unwrap();
    }
    let visitor = app.new_browser();
    let mut misses = Vec::new();
    for case in &CASES {
        let found = titles(&results_page(&visitor, case.q).await);
        if !hit(case, &found) {
            misses.push(format!(
                "{} {:?}: expected {:?} first, found {:?}",
                case.kind, case.q, case.top, found
            ));
        }
    }
    let hits = CASES.len() - misses.len();
    println!("search corpus on {}: {hits}/{} queries find their pages first", backend.name(), CASES.len());
    assert!(misses.is_empty(), "{hits}/{}:\n{}", CASES.len(), misses.join("\n"));
    // The model finds what the page shows.
    let direct = search::search(&app.state.db.read, &search::parse("deploying"), 0, 3).await.unwrap();
    assert_eq!(direct.len(), 3);
}

crate::tests![the_corpus_queries_find_their_pages_first];
