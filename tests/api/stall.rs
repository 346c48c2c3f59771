//! Bounded work for every input (issue 15, points 1–3, 7 and 10): nesting, links, highlighting
//! and the HTML of a page are capped and refused with a message that says which, nothing being
//! stored; revisions keep their HTML so that viewing one never renders; merges that would cost
//! too much fall back to the conflict screen; huge diffs are cut with links to the full texts.

use quire::models::revision;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::helpers::*;

/// One-letter lines from a seed: the worst case for line diffs and merges.
fn random_lines(bytes: usize, seed: u64) -> String {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut text = String::with_capacity(bytes);
    while text.len() < bytes {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        text.push((b'a' + ((state >> 33) % 26) as u8) as char);
        text.push('\n');
    }
    text
}

async fn revisions_of(app: &TestApp, title: &str) -> Vec<revision::Model> {
    let page =
        quire::models::page::find_with_author(&app.state.db.read, title).await.unwrap().expect("the page");
    revision::Entity::find()
        .filter(revision::Column::PageId.eq(page.page.id))
        .order_by_asc(revision::Column::Id)
        .all(&app.state.db.read)
        .await
        .unwrap()
}

async fn preview(browser: &Browser, content: &str) -> (StatusCode, String) {
    let token = browser.csrf("/create").await;
    let response = browser.post_form("/preview", &[("content", content), ("csrf_token", &token)]).await;
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// The value of the editor's `base_revision` field.
fn base_revision(editor: &str) -> String {
    let marker = r#"name="base_revision" value=""#;
    let at = editor.find(marker).expect("a base_revision field") + marker.len();
    editor[at..at + editor[at..].find('"').unwrap()].to_owned()
}

async fn save_edit(browser: &Browser, title: &str, content: &str, base: &str) -> (StatusCode, String) {
    let edit = format!("/wiki/{}/edit", quire::urls::segment(title));
    let token = browser.csrf(&edit).await;
    let form = [("content", content), ("summary", ""), ("base_revision", base), ("csrf_token", &token)];
    let response = browser.post_form(&edit, &form).await;
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Creating a page of `content` is refused with 422 and a message containing `says`.
async fn assert_create_refused(browser: &Browser, title: &str, content: &str, says: &str) {
    let response = browser.create_page(title, content).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.text().await.unwrap();
    assert!(body.contains(says), "{says:?} not in {}", &body[..body.len().min(600)]);
}

async fn content_nested_too_deeply_is_refused_with_a_message_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("nester").await;
    for deep in [">".repeat(100_000), "<div>".repeat(20_000), "<span><b>".repeat(200)] {
        assert_create_refused(browser, "Deep", &deep, "nested too deeply").await;
        let (status, message) = preview(browser, &deep).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message.contains("at most 100 levels"), "{message}");
    }
    assert_eq!(app.page_count().await, 0);

    // As deep as allowed saves; an edit that goes deeper is refused and the page keeps its text.
    let fine = format!("{} fine", ">".repeat(99));
    assert_eq!(browser.create_page("Deep", &fine).await.status(), StatusCode::SEE_OTHER);
    let (_, editor) = browser.get_text("/wiki/Deep/edit").await;
    let (status, body) = save_edit(browser, "Deep", &">".repeat(5_000), &base_revision(&editor)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("nested too deeply"));
    assert_eq!(revisions_of(&app, "Deep").await.len(), 1);
    let (status, page) = browser.get_text("/wiki/Deep").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("fine"));
}

async fn a_page_may_link_to_two_thousand_pages_and_no_more(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("linker").await;
    let over: String = (0..2_001).map(|i| format!("[[z{i}]] ")).collect();
    let response = browser.create_page("Links", &over).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.text().await.unwrap();
    assert!(body.contains("links to 2001 different pages") && body.contains("at most 2000"), "{body}");
    assert_eq!(app.page_count().await, 0);

    // 2,000 distinct links, each repeated: saved, and every missing one marked in the view.
    let at_cap: String = (0..2_000).map(|i| format!("[[z{i}]] [[z{i}|again]] ")).collect();
    assert_eq!(browser.create_page("Links", &at_cap).await.status(), StatusCode::SEE_OTHER);
    let (status, view) = app.new_browser().get_text("/wiki/Links").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view.matches(r#"class="missing-page""#).count(), 4_000);
    assert!(view.contains(r#"href="/create?title=z1999""#));
    // A page that exists is linked as itself.
    assert_eq!(browser.create_page("z7", "here").await.status(), StatusCode::SEE_OTHER);
    let (_, view) = app.new_browser().get_text("/wiki/Links").await;
    assert_eq!(view.matches(r#"class="missing-page""#).count(), 3_998);
    assert!(view.contains(r#"href="/wiki/z7""#));
}

async fn a_huge_code_block_is_kept_as_plain_text_and_its_html_stays_small(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("coder").await;
    let line = "let value = compute(alpha, beta) + other_function(gamma, delta);\n";
    let content = format!("```rust\n{}```\n", line.repeat(1_000_000 / line.len()));
    assert_eq!(browser.create_page("Code", &content).await.status(), StatusCode::SEE_OTHER);
    let (status, view) = browser.get_text("/wiki/Code").await;
    assert_eq!(status, StatusCode::OK);
    assert!(view.len() < 2 * content.len(), "{} bytes for {} of code", view.len(), content.len());
    assert!(view.contains("compute(alpha, beta)"));
    // A small block on the same kind of page is still highlighted.
    let small = format!("```rust\n{}```\n", line.repeat(20));
    assert_eq!(browser.create_page("Small code", &small).await.status(), StatusCode::SEE_OTHER);
    let (_, view) = browser.get_text("/wiki/Small%20code").await;
    assert!(view.contains(r#"class="hl-"#), "highlighted");
}

async fn content_that_would_make_too_much_html_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("tabler").await;
    // One wiki link repeated 150,000 times: about ten times as much HTML, over the 4 MiB cap.
    let links = "[[a]] ".repeat(150_000);
    assert_create_refused(browser, "Links", &links, "a page may make at most 4 MiB").await;
    // A 1,000-column header over 500 short lines: half a million cells from 5 KB.
    let wide = format!("|{}\n|{}\n{}", "h|".repeat(1_000), "-|".repeat(1_000), "a\n".repeat(499));
    assert_create_refused(browser, "Wide", &wide, "may hold at most 100000").await;
    let (status, message) = preview(browser, &wide).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("cells"), "{message}");
    assert_eq!(app.page_count().await, 0);
}

async fn every_revision_keeps_its_html_and_an_old_one_is_rendered_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("reviser").await;
    assert_eq!(browser.create_page("Kept", "first **bold**").await.status(), StatusCode::SEE_OTHER);
    let (_, editor) = browser.get_text("/wiki/Kept/edit").await;
    let (status, _) = save_edit(browser, "Kept", "second *it*", &base_revision(&editor)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let revisions = revisions_of(&app, "Kept").await;
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[0].html.as_deref(), Some("<p>first <strong>bold</strong></p>\n"));
    assert_eq!(revisions[1].html.as_deref(), Some("<p>second <em>it</em></p>\n"));

    // A revision saved before revisions kept their HTML: rendered at its first view, then stored.
    let first = revisions[0].id;
    revision::Entity::update_many()
        .col_expr(revision::Column::Html, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .filter(revision::Column::Id.eq(first))
        .exec(&app.state.db.write)
        .await
        .unwrap();
    let (status, view) = app.new_browser().get_text(&format!("/wiki/Kept/revisions/{first}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(view.contains("<strong>bold</strong>"));
    let stored = revisions_of(&app, "Kept").await;
    assert_eq!(stored[0].html.as_deref(), Some("<p>first <strong>bold</strong></p>\n"));

    // One that breaks today's caps (stored before them) shows its text and the reason, not a 5xx.
    revision::Entity::update_many()
        .col_expr(revision::Column::Html, sea_orm::sea_query::Expr::value(Option::<String>::None))
        .col_expr(revision::Column::Content, sea_orm::sea_query::Expr::value("<div>".repeat(500)))
        .filter(revision::Column::Id.eq(first))
        .exec(&app.state.db.write)
        .await
        .unwrap();
    let (status, view) = app.new_browser().get_text(&format!("/wiki/Kept/revisions/{first}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(view.contains("nested too deeply"), "the reason is shown");
    assert!(view.contains("&lt;div&gt;&lt;div&gt;"), "the text is shown as text");
}

async fn an_edit_too_far_from_the_other_change_to_merge_gets_the_conflict_screen(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("merger").await;
    assert_eq!(
        browser.create_page("Random", &random_lines(100_000, 1)).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, editor) = browser.get_text("/wiki/Random/edit").await;
    let base = base_revision(&editor);
    let (status, _) = save_edit(browser, "Random", &random_lines(100_000, 2), &base).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mine = random_lines(100_000, 3);
    let (status, body) = save_edit(browser, "Random", &mine, &base).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("differ too much to combine automatically"), "the reason is given");
    assert!(body.contains(&mine[..200]), "the member's own text is in the editor");
    assert_eq!(revisions_of(&app, "Random").await.len(), 2, "nothing was saved");

    // A large page with small edits on both sides still merges.
    let big = random_lines(200_000, 4);
    assert_eq!(browser.create_page("Big", &big).await.status(), StatusCode::SEE_OTHER);
    let (_, editor) = browser.get_text("/wiki/Big/edit").await;
    let base = base_revision(&editor);
    let (status, _) = save_edit(browser, "Big", &format!("top\n{big}"), &base).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = save_edit(browser, "Big", &format!("{big}bottom\n"), &base).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "merged");
    let page = quire::models::page::find_with_author(&app.state.db.read, "Big").await.unwrap().unwrap();
    assert!(page.page.content.starts_with("top\n") && page.page.content.ends_with("bottom\n"));
}

async fn a_huge_diff_is_cut_and_links_to_both_full_texts(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("differ").await;
    let (old, new) = (random_lines(300_000, 5), random_lines(300_000, 6));
    assert_eq!(browser.create_page("Versions", &old).await.status(), StatusCode::SEE_OTHER);
    let (_, editor) = browser.get_text("/wiki/Versions/edit").await;
    let (status, _) = save_edit(browser, "Versions", &new, &base_revision(&editor)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let ids: Vec<i32> = revisions_of(&app, "Versions").await.iter().map(|r| r.id).collect();
    let visitor = app.new_browser();
    let (status, diff) =
        visitor.get_text(&format!("/wiki/Versions/diff?from={}&to={}", ids[0], ids[1])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(diff.contains("This diff is cut after its first 2000 lines"));
    assert!(diff.len() < 1_000_000, "the diff page is {} bytes", diff.len());
    for (id, text) in [(ids[0], &old), (ids[1], &new)] {
        let response = visitor.get(&format!("/wiki/Versions/revisions/{id}/raw")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(diff.contains(&format!(r#"href="/wiki/Versions/revisions/{id}/raw""#)));
        assert_eq!(&response.text().await.unwrap(), text);
    }
    // A small diff is whole.
    let (_, editor) = browser.get_text("/wiki/Versions/edit").await;
    let (status, _) =
        save_edit(browser, "Versions", &format!("{new}one more\n"), &base_revision(&editor)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let ids: Vec<i32> = revisions_of(&app, "Versions").await.iter().map(|r| r.id).collect();
    let (_, diff) = visitor.get_text(&format!("/wiki/Versions/diff?from={}&to={}", ids[1], ids[2])).await;
    assert!(!diff.contains("This diff is cut"));
    assert!(diff.contains("one more"));
}

async fn the_raw_text_of_an_unknown_revision_or_page_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("rawer").await;
    assert_eq!(browser.create_page("One", "text").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.create_page("Two", "other").await.status(), StatusCode::SEE_OTHER);
    let two = revisions_of(&app, "Two").await[0].id;
    for path in [
        "/wiki/One/revisions/999999/raw".to_owned(),
        format!("/wiki/One/revisions/{two}/raw"),
        "/wiki/Nope/revisions/1/raw".to_owned(),
    ] {
        assert_eq!(browser.get(&path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(browser.get("/wiki/One/revisions/x/raw").await.status(), StatusCode::BAD_REQUEST);
}

crate::tests![
    content_nested_too_deeply_is_refused_with_a_message_and_nothing_is_stored,
    a_page_may_link_to_two_thousand_pages_and_no_more,
    a_huge_code_block_is_kept_as_plain_text_and_its_html_stays_small,
    content_that_would_make_too_much_html_is_refused,
    every_revision_keeps_its_html_and_an_old_one_is_rendered_once,
    an_edit_too_far_from_the_other_change_to_merge_gets_the_conflict_screen,
    a_huge_diff_is_cut_and_links_to_both_full_texts,
    the_raw_text_of_an_unknown_revision_or_page_is_not_found,
];
