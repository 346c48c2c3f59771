//! The wiki people expect: editing with revisions, previews, merges and conflicts of concurrent
//! edits, history and diffs, reverts, renames, deletion and restoring, wiki links, recent
//! changes and their Atom feed, members' pages, tables of contents.

use std::sync::Arc;

use quire::models::{link, page, revision, user};
use quire::urls;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::*;
use crate::pages::{escape, index_links, unescape};

// ----- helpers ----------------------------------------------------------------------------

/// `/wiki/TITLE` followed by `suffix`.
pub fn at(title: &str, suffix: &str) -> String {
    format!("{}{suffix}", urls::page(title))
}

/// A second member, logged in with a browser of their own.
pub async fn another_member(app: &TestApp, username: &str) -> Browser {
    let browser = app.new_browser();
    let response = browser.register(username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "registration of {username}");
    let response = browser.login(username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "login of {username}");
    browser
}

/// What the edit form holds.
#[derive(Clone, Debug)]
pub struct Editor {
    pub csrf: String,
    pub base: String,
    pub content: String,
}

/// The value of the `value="…"` attribute that follows `marker`.
fn value_after(html: &str, marker: &str) -> Option<String> {
    let at = html.find(marker)?;
    let rest = &html[at + marker.len()..];
    let rest = &rest[rest.find("value=\"")? + "value=\"".len()..];
    Some(unescape(&rest[..rest.find('"')?]))
}

/// The text of the editor's textarea, unescaped.
pub fn textarea(html: &str) -> String {
    let marker = r#"<textarea id="content" name="content""#;
    let at = html.find(marker).unwrap_or_else(|| panic!("no editor textarea in {html}"));
    let rest = &html[at..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    unescape(&rest[..rest.find("</textarea>").unwrap()])
}

pub fn base_revision_in(html: &str) -> String {
    value_after(html, r#"name="base_revision""#).unwrap_or_else(|| panic!("no base_revision in {html}"))
}

/// Opens the editor of a page (which must answer 200).
pub async fn open_editor(browser: &Browser, title: &str) -> Editor {
    let (status, html) = browser.get_text(&at(title, "/edit")).await;
    assert_eq!(status, StatusCode::OK, "the editor of {title}");
    Editor {
        csrf: csrf_in(&html).expect("the editor has a csrf token"),
        base: base_revision_in(&html),
        content: textarea(&html),
    }
}

/// Posts the edit form as the editor was opened, with new content and summary.
pub async fn save(
    browser: &Browser,
    title: &str,
    editor: &Editor,
    content: &str,
    summary: &str,
) -> reqwest::Response {
    browser
        .post_form(
            &at(title, "/edit"),
            &[
                ("content", content),
                ("summary", summary),
                ("base_revision", &editor.base),
                ("csrf_token", &editor.csrf),
            ],
        )
        .await
}

/// Opens the editor and saves at once.
pub async fn edit(browser: &Browser, title: &str, content: &str, summary: &str) -> reqwest::Response {
    let editor = open_editor(browser, title).await;
    save(browser, title, &editor, content, summary).await
}

/// Renames a page through its form.
pub async fn rename(browser: &Browser, title: &str, new_title: &str) -> reqwest::Response {
    let token = browser.csrf(&at(title, "/rename")).await;
    browser.post_form(&at(title, "/rename"), &[("new_title", new_title), ("csrf_token", &token)]).await
}

/// Deletes a page through its confirmation (the CSRF token and the confirmation field).
pub async fn delete(browser: &Browser, title: &str) -> reqwest::Response {
    let token = browser.csrf("/create").await;
    browser.post_form(&at(title, "/delete"), &[("csrf_token", &token), ("confirm", "yes")]).await
}

pub async fn restore(browser: &Browser, title: &str) -> reqwest::Response {
    let token = browser.csrf("/create").await;
    browser.post_form(&at(title, "/restore"), &[("csrf_token", &token)]).await
}

/// The flash messages shown on a page.
pub fn flashes(html: &str) -> Vec<String> {
    html.split(r#"<span class="flash-message">"#)
        .skip(1)
        .map(|rest| unescape(&rest[..rest.find("</span>").unwrap()]))
        .collect()
}

/// The stored page of a title, deleted or not.
pub async fn stored(app: &TestApp, title: &str) -> page::Model {
    page::find_including_deleted(&app.state.db.read, title)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the page {title} is stored"))
        .page
}

/// The revisions of a page, newest first.
pub async fn revisions_of(app: &TestApp, title: &str) -> Vec<revision::Entry> {
    let page = stored(app, title).await;
    revision::history(&app.state.db.read, page.id, 0, 10_000).await.unwrap()
}

pub async fn revision_count(app: &TestApp) -> u64 {
    revision::Entity::find().count(&app.state.db.read).await.unwrap()
}

async fn revision(app: &TestApp, id: i32) -> revision::Model {
    revision::Entity::find_by_id(id).one(&app.state.db.read).await.unwrap().expect("the revision exists")
}

/// Numbered lines, each ending in a newline.
fn lines_of(lines: &[String]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// The text between `start` and the next `end` after it.
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html.find(start).unwrap_or_else(|| panic!("no {start} in {html}"));
    let rest = &html[at..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

// ----- editing ----------------------------------------------------------------------------

async fn a_member_edits_a_page_and_the_revision_records_author_summary_and_size(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Edited page", "first text").await;
    let created = stored(&app, "Edited page").await;

    let editor = open_editor(&app.browser, "Edited page").await;
    assert_eq!(editor.content, "first text");
    assert_eq!(
        editor.base,
        created.revision_id.unwrap().to_string(),
        "the editor starts from the current revision"
    );

    let response =
        save(&app.browser, "Edited page", &editor, "second text, **longer**", "Made it longer").await;
    assert_redirects_to(&response, "/wiki/Edited%20page");
    let (status, html) = follow(&app.browser, response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flashes(&html), ["Saved."]);
    assert!(html.contains("second text, <strong>longer</strong>"), "{html}");

    let page = stored(&app, "Edited page").await;
    assert_eq!(page.content, "second text, **longer**");
    let history = revisions_of(&app, "Edited page").await;
    assert_eq!(history.len(), 2);
    let newest = &history[0];
    assert_eq!(Some(newest.id), page.revision_id, "the page points at its newest revision");
    assert_eq!(newest.author.as_deref(), Some("ann"));
    assert_eq!(newest.summary, "Made it longer");
    assert_eq!(newest.size, "second text, **longer**".len() as i32);
    assert_eq!(revision(&app, newest.id).await.content, "second text, **longer**");
    assert_eq!(history[1].size, "first text".len() as i32);

    // A member can edit a page someone else wrote; the revision is theirs.
    let bob = another_member(&app, "bob").await;
    assert_redirects_to(&edit(&bob, "Edited page", "third text", "").await, "/wiki/Edited%20page");
    let history = revisions_of(&app, "Edited page").await;
    assert_eq!(history.len(), 3);
    assert_eq!(history[0].author.as_deref(), Some("bob"));
    assert_eq!(history[0].summary, "");

    // There is no editor for a page that does not exist.
    assert_eq!(app.browser.get("/wiki/Nowhere/edit").await.status(), StatusCode::NOT_FOUND);
}

async fn visitors_are_sent_to_log_in_before_editing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("cid").await;
    app.browser.create_page("Guarded", "members only").await;
    let editor = open_editor(&app.browser, "Guarded").await;
    let before = revision_count(&app).await;

    let visitor = app.new_browser();
    assert_redirects_to(&visitor.get("/wiki/Guarded/edit").await, "/login?next=/wiki/Guarded/edit");
    let response = visitor
        .post_form(
            "/wiki/Guarded/edit",
            &[("content", "vandalised"), ("base_revision", &editor.base), ("csrf_token", &editor.csrf)],
        )
        .await;
    assert_redirects_to(&response, "/login?next=/wiki/Guarded/edit");
    let (_, login) = follow(&visitor, response).await;
    assert!(login.contains("You must be logged in"), "{login}");
    assert_eq!(revision_count(&app).await, before);
    assert_eq!(stored(&app, "Guarded").await.content, "members only");
}

async fn saving_unchanged_content_creates_no_revision(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("dan").await;
    app.browser.create_page("Steady", "nothing new").await;
    let before = revision_count(&app).await;
    let response = edit(&app.browser, "Steady", "nothing new", "no-op").await;
    assert_redirects_to(&response, "/wiki/Steady");
    let (status, html) = follow(&app.browser, response).await;
    assert_eq!(status, StatusCode::OK);
    let shown = flashes(&html);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].starts_with("No changes to save"), "{shown:?}");
    assert_eq!(revision_count(&app).await, before);
    assert_eq!(revisions_of(&app, "Steady").await.len(), 1);
}

async fn an_edit_with_a_missing_or_forged_csrf_token_is_refused_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("eli").await;
    app.browser.create_page("Protected", "original").await;
    let editor = open_editor(&app.browser, "Protected").await;
    let before = revision_count(&app).await;
    let forged = Editor { csrf: "00".repeat(32), ..editor.clone() };
    let missing = Editor { csrf: String::new(), ..editor.clone() };
    for form in [forged, missing] {
        let response = save(&app.browser, "Protected", &form, "tampered", "").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.text().await.unwrap().contains("This form has expired"));
    }
    // A token made for another session is forged too.
    let other = another_member(&app, "fay").await;
    let foreign = Editor { csrf: open_editor(&other, "Protected").await.csrf, ..editor.clone() };
    assert_eq!(
        save(&app.browser, "Protected", &foreign, "tampered", "").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(revision_count(&app).await, before);
    assert_eq!(stored(&app, "Protected").await.content, "original");
}

async fn invalid_edits_show_a_message_give_the_text_back_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("gus").await;
    app.browser.create_page("Strict", "original").await;
    app.browser.create_page("Elsewhere", "another page").await;
    let elsewhere = stored(&app, "Elsewhere").await.revision_id.unwrap().to_string();
    let editor = open_editor(&app.browser, "Strict").await;
    let before = revision_count(&app).await;

    let long_summary = "s".repeat(201);
    let big = "b".repeat(1024 * 1024 + 1);
    let cases: [(&str, &str, &str, &str); 7] = [
        ("kept text one", &long_summary, &editor.base, "at most 200 characters"),
        (&big, "", &editor.base, "at most 1 MiB"),
        ("   ", "", &editor.base, "Content is required."),
        ("kept text two", "", "abc", "The edit form is incomplete"),
        ("kept text three", "", "", "The edit form is incomplete"),
        ("kept text four", "", &elsewhere, "not part of this page"),
        ("kept text five", "", "999999", "not part of this page"),
    ];
    for (content, summary, base, message) in cases {
        let form = Editor { base: base.to_owned(), ..editor.clone() };
        let response = save(&app.browser, "Strict", &form, content, summary).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        let html = response.text().await.unwrap();
        assert!(html.contains(message), "{message}: {html}");
        if content.starts_with("kept") {
            assert_eq!(textarea(&html), content, "the typed text is given back");
        }
    }
    assert_eq!(revision_count(&app).await, before);
    assert_eq!(stored(&app, "Strict").await.content, "original");

    // The limits themselves are accepted.
    let summary = "é".repeat(200);
    let response = save(&app.browser, "Strict", &editor, &"c".repeat(1024 * 1024), &summary).await;
    assert_redirects_to(&response, "/wiki/Strict");
    assert_eq!(revisions_of(&app, "Strict").await[0].summary, summary);
}

// ----- previews ---------------------------------------------------------------------------

async fn the_preview_is_the_sanitized_html_for_members_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let visitor = app.new_browser();
    // A visitor is sent to log in, as for every action that changes pages.
    let response = visitor.post_form("/preview", &[("content", "**b**"), ("csrf_token", "")]).await;
    assert_redirects_to(&response, "/login?next=/");

    app.member("hana").await;
    let token = app.browser.csrf("/create").await;
    let response = app
        .browser
        .post_form(
            "/preview",
            &[
                (
                    "content",
                    "**b** and [[Some Page]]\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>",
                ),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("<strong>b</strong>"), "{html}");
    // As the saved page will show it: the missing page's link leads to creating it.
    assert!(html.contains(r#"href="/create?title=Some%20Page" class="missing-page""#), "{html}");
    assert!(!html.to_lowercase().contains("<script"), "{html}");
    assert!(!html.contains("onerror"), "{html}");

    let response = app.browser.post_form("/preview", &[("content", "**b**"), ("csrf_token", "forged")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.page_count().await, 0, "a preview stores nothing");
    assert_eq!(revision_count(&app).await, 0);
}

async fn the_preview_button_without_javascript_shows_the_editor_again_and_saves_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ian").await;
    app.browser.create_page("Previewed", "as stored").await;
    let editor = open_editor(&app.browser, "Previewed").await;
    let before = revision_count(&app).await;
    let typed = "a **bold move** & <script>alert(1)</script>";
    let response = app
        .browser
        .post_form(
            "/wiki/Previewed/edit",
            &[
                ("content", typed),
                ("summary", "my summary"),
                ("base_revision", &editor.base),
                ("csrf_token", &editor.csrf),
                ("preview", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let preview = section(&html, r#"<div id="preview-body">"#, "</section>");
    assert!(preview.contains("<strong>bold move</strong>"), "{preview}");
    assert!(!preview.contains("<script"), "{preview}");
    assert_eq!(textarea(&html), typed, "the typed text stays in the editor");
    assert!(html.contains(&escape(typed)), "the typed text is escaped in the textarea");
    assert!(html.contains(r#"value="my summary""#));
    assert_eq!(base_revision_in(&html), editor.base, "the editor still starts from the same revision");
    assert_eq!(revision_count(&app).await, before);
    assert_eq!(stored(&app, "Previewed").await.content, "as stored");
}

// ----- concurrent edits -------------------------------------------------------------------

fn six_lines() -> Vec<String> {
    ["Line one of the page", "Line two of the page", "Line three", "Line four", "Line five", "Line six"]
        .map(str::to_owned)
        .to_vec()
}

async fn edits_to_different_lines_by_two_members_are_merged(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.member("ann").await;
    let bob = another_member(&app, "bob").await;
    let original = six_lines();
    ann.create_page("Shared", &lines_of(&original)).await;
    let ann_editor = open_editor(ann, "Shared").await;
    let bob_editor = open_editor(&bob, "Shared").await;
    assert_eq!(ann_editor.base, bob_editor.base);

    let mut ann_lines = original.clone();
    ann_lines[0] = "Line one, as Ann wrote it".into();
    let response = save(ann, "Shared", &ann_editor, &lines_of(&ann_lines), "Ann's change").await;
    assert_redirects_to(&response, "/wiki/Shared");

    let mut bob_lines = original.clone();
    bob_lines[4] = "Line five, as Bob wrote it".into();
    let response = save(&bob, "Shared", &bob_editor, &lines_of(&bob_lines), "Bob's change").await;
    assert_redirects_to(&response, "/wiki/Shared");
    let (_, html) = follow(&bob, response).await;
    let shown = flashes(&html);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].contains("both changes are kept"), "{shown:?}");

    let mut both = original.clone();
    both[0] = ann_lines[0].clone();
    both[4] = bob_lines[4].clone();
    assert_eq!(stored(&app, "Shared").await.content, lines_of(&both));
    let history = revisions_of(&app, "Shared").await;
    assert_eq!(history.len(), 3);
    assert_eq!(history[0].author.as_deref(), Some("bob"));
    assert_eq!(revision(&app, history[0].id).await.content, lines_of(&both));
}

async fn overlapping_edits_bring_the_second_member_back_to_a_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = app.member("ann").await;
    let bob = another_member(&app, "bob").await;
    let original = six_lines();
    ann.create_page("Contested lines", &lines_of(&original)).await;
    let ann_editor = open_editor(ann, "Contested lines").await;
    let bob_editor = open_editor(&bob, "Contested lines").await;

    let mut ann_lines = original.clone();
    ann_lines[1] = "Line two, the alpha version".into();
    let response = save(ann, "Contested lines", &ann_editor, &lines_of(&ann_lines), "").await;
    assert_redirects_to(&response, "/wiki/Contested%20lines");
    let after_ann = revision_count(&app).await;
    let ann_revision = stored(&app, "Contested lines").await.revision_id.unwrap();

    let mut bob_lines = original.clone();
    bob_lines[1] = "Line two, the beta version".into();
    let response = save(&bob, "Contested lines", &bob_editor, &lines_of(&bob_lines), "Bob's try").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert!(html.contains("Someone else changed this page while you were editing"), "{html}");
    // In plain language: no merge marker reaches Bob; the region both changed shows as his
    // version and Ann's, labelled, and his whole text is kept to copy from.
    for marker in
        ["&#60;&#60;&#60;&#60;&#60;&#60;&#60;", "&#62;&#62;&#62;&#62;&#62;&#62;&#62;", "=======", "<<<<<<<"]
    {
        assert!(!html.contains(marker), "{marker} reaches a person: {html}");
    }
    let region = section(&html, r#"<fieldset class="conflict-region""#, "</fieldset>");
    assert!(
        region.contains(">Your version</h3>") && region.contains("Line two, the beta version"),
        "{region}"
    );
    assert!(
        region.contains("Saved meanwhile by ann at ") && region.contains("Line two, the alpha version"),
        "{region}"
    );
    for choice in ["Use mine", "Use theirs", "Keep both"] {
        assert!(region.contains(choice), "{choice}: {region}");
    }
    let yours = section(&html, r#"<textarea id="your-text" rows="12" readonly>"#, "</textarea>");
    assert!(yours.contains("Line two, the beta version"), "Bob's own text is shown: {yours}");
    assert_eq!(
        base_revision_in(&html),
        ann_revision.to_string(),
        "the resolved text is saved on top of Ann's"
    );
    assert!(html.contains(r#"value="Bob&#39;s try""#), "the summary is kept: {html}");

    assert_eq!(revision_count(&app).await, after_ann, "nothing is stored for Bob");
    assert_eq!(stored(&app, "Contested lines").await.content, lines_of(&ann_lines));

    // Bob resolves the conflict from the form he was given.
    let resolved =
        Editor { csrf: csrf_in(&html).unwrap(), base: base_revision_in(&html), content: String::new() };
    let mut merged = ann_lines.clone();
    merged[1] = "Line two, alpha and beta".into();
    let response = save(&bob, "Contested lines", &resolved, &lines_of(&merged), "Resolved").await;
    assert_redirects_to(&response, "/wiki/Contested%20lines");
    assert_eq!(stored(&app, "Contested lines").await.content, lines_of(&merged));
    assert_eq!(revision_count(&app).await, after_ann + 1);
}

async fn simultaneous_saves_of_the_same_line_keep_exactly_one(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("racer").await;
    let original: Vec<String> = (1..=8).map(|i| format!("Line {i} of the race")).collect();
    app.browser.create_page("Race track", &lines_of(&original)).await;
    let before = revision_count(&app).await;
    let mut editors = Vec::new();
    for _ in 0..8 {
        editors.push(open_editor(&app.browser, "Race track").await);
    }
    assert!(editors.iter().all(|e| e.base == editors[0].base));

    let barrier = Arc::new(tokio::sync::Barrier::new(editors.len()));
    let mut tasks = Vec::new();
    for (i, editor) in editors.into_iter().enumerate() {
        let browser = app.browser.clone();
        let barrier = barrier.clone();
        let mut lines = original.clone();
        lines[3] = format!("Line 4 as writer {i} wants it");
        let content = lines_of(&lines);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = save(&browser, "Race track", &editor, &content, &format!("writer {i}")).await;
            let status = response.status();
            let body = response.text().await.unwrap();
            (status, content, body)
        }));
    }
    let mut accepted = Vec::new();
    for task in tasks {
        let (status, content, body) = task.await.unwrap();
        match status {
            StatusCode::SEE_OTHER => accepted.push(content),
            StatusCode::CONFLICT => {
                assert!(body.contains("Someone else changed this page"), "{body}")
            }
            other => panic!("a simultaneous save answered {other}: {body}"),
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one save of the same line is accepted");
    assert_eq!(revision_count(&app).await, before + 1);
    assert_eq!(stored(&app, "Race track").await.content, accepted[0]);
    assert_eq!(revisions_of(&app, "Race track").await.len(), 2);
}

async fn simultaneous_saves_of_different_lines_are_all_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("racer").await;
    // Changed lines are kept apart by an unchanged one: changes to adjacent lines overlap.
    let original: Vec<String> = (1..=16).map(|i| format!("Line {i} of the relay")).collect();
    app.browser.create_page("Relay", &lines_of(&original)).await;
    let before = revision_count(&app).await;
    let mut editors = Vec::new();
    for _ in 0..8 {
        editors.push(open_editor(&app.browser, "Relay").await);
    }

    let barrier = Arc::new(tokio::sync::Barrier::new(editors.len()));
    let mut tasks = Vec::new();
    let mut expected = original.clone();
    for (i, editor) in editors.into_iter().enumerate() {
        let browser = app.browser.clone();
        let barrier = barrier.clone();
        let mut lines = original.clone();
        lines[2 * i] = format!("Line {} rewritten by runner {i}", 2 * i + 1);
        expected[2 * i] = lines[2 * i].clone();
        let content = lines_of(&lines);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = save(&browser, "Relay", &editor, &content, &format!("runner {i}")).await;
            let status = response.status();
            (i, status, response.text().await.unwrap())
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        let (i, status, body) = task.await.unwrap();
        if status != StatusCode::SEE_OTHER {
            let message = body
                .split(r#"class="field-error""#)
                .nth(1)
                .map(|m| m.chars().take(200).collect::<String>())
                .unwrap_or_else(|| body.chars().take(300).collect());
            failures.push(format!("runner {i}: {status}: {message}"));
        }
    }
    let content = stored(&app, "Relay").await.content;
    assert!(
        failures.is_empty(),
        "every save of its own line succeeds:\n{}\nstored:\n{content}",
        failures.join("\n")
    );
    assert_eq!(content, lines_of(&expected), "no write is lost");
    assert_eq!(revision_count(&app).await, before + 8);
}

// ----- history ----------------------------------------------------------------------------

async fn the_history_lists_every_revision_with_author_summary_and_size_change(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    let bob = another_member(&app, "bob").await;
    app.browser.create_page("Sized", "12345").await;
    assert_redirects_to(
        &edit(&app.browser, "Sized", "12345abcdefghijkl", "Added <twelve> bytes").await,
        "/wiki/Sized",
    );
    assert_redirects_to(&edit(&bob, "Sized", "12", "Cut it down").await, "/wiki/Sized");
    let revisions = revisions_of(&app, "Sized").await;
    assert_eq!(revisions.len(), 3);
    assert_eq!(
        revisions.iter().map(|r| (r.author.as_deref(), r.summary.as_str(), r.size)).collect::<Vec<_>>(),
        [
            (Some("bob"), "Cut it down", 2),
            (Some("ann"), "Added <twelve> bytes", 17),
            (Some("ann"), "Created", 5)
        ]
    );

    let (status, html) = app.new_browser().get_text("/wiki/Sized/history").await;
    assert_eq!(status, StatusCode::OK, "visitors see the history");
    let table = section(&html, r#"<table class="history">"#, "</table>");
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 3, "{table}");
    let expected = [
        (revisions[0].id, "bob", "Cut it down", "2 bytes (−15)"),
        (revisions[1].id, "ann", "Added &#60;twelve&#62; bytes", "17 bytes (+12)"),
        (revisions[2].id, "ann", "Created", "5 bytes (+5)"),
    ];
    for (row, (id, author, summary, size)) in rows.iter().zip(expected) {
        assert!(row.contains(&format!(r#"<a href="/wiki/Sized/revisions/{id}">#{id}</a>"#)), "{row}");
        assert!(row.contains(&format!("<td>{author}</td>")), "{row}");
        assert!(row.contains(&format!("<td>{summary}</td>")), "{row}");
        assert!(row.contains(size), "{size}: {row}");
    }
    assert!(
        rows[0].contains(&format!("/wiki/Sized/diff?from={}&#38;to={}", revisions[1].id, revisions[0].id)),
        "{}",
        rows[0]
    );
    assert_eq!(app.browser.get("/wiki/No%20such/history").await.status(), StatusCode::NOT_FOUND);
}

async fn each_revision_shows_its_own_content_and_no_other_page_s(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Layered", "the **first** layer").await;
    app.browser.create_page("Other", "another page").await;
    edit(&app.browser, "Layered", "the *second* layer", "").await;
    let revisions = revisions_of(&app, "Layered").await;
    let (first, second) = (revisions[1].id, revisions[0].id);
    let other = stored(&app, "Other").await.revision_id.unwrap();

    let visitor = app.new_browser();
    let (status, html) = visitor.get_text(&format!("/wiki/Layered/revisions/{first}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("the <strong>first</strong> layer"), "{html}");
    assert!(!html.contains("second"), "{html}");
    assert!(html.contains(&format!("Revision #{first}")), "{html}");
    let (status, html) = visitor.get_text(&format!("/wiki/Layered/revisions/{second}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("the <em>second</em> layer"), "{html}");
    assert!(html.contains("This is the current text."), "{html}");

    let (status, html) = visitor.get_text(&format!("/wiki/Layered/revisions/{other}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a revision of another page is not found here");
    assert!(!html.contains("another page"));
    assert_eq!(visitor.get("/wiki/Layered/revisions/999999").await.status(), StatusCode::NOT_FOUND);
    let status = visitor.get("/wiki/Layered/revisions/abc").await.status();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{status}");
}

/// The marked pieces of a diff row.
fn marked(row: &str) -> Vec<String> {
    row.split("<mark>").skip(1).map(|rest| rest[..rest.find("</mark>").unwrap()].to_owned()).collect()
}

async fn the_diff_shows_removed_and_added_lines_with_the_changed_words_marked(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Diffed", "one\nthe quick fox\nthree\n").await;
    edit(&app.browser, "Diffed", "one\nthe <slow> fox\nthree\nfour\n", "").await;
    let revisions = revisions_of(&app, "Diffed").await;
    let (from, to) = (revisions[1].id, revisions[0].id);
    let (status, html) = app.new_browser().get_text(&format!("/wiki/Diffed/diff?from={from}&to={to}")).await;
    assert_eq!(status, StatusCode::OK);
    let table = section(&html, r#"<table class="diff">"#, "</table>");
    let rows: Vec<&str> = table.split("<tr class=\"").skip(1).collect();
    let removed: Vec<&&str> = rows.iter().filter(|r| r.starts_with("diff-del")).collect();
    let added: Vec<&&str> = rows.iter().filter(|r| r.starts_with("diff-add")).collect();
    assert_eq!(removed.len(), 1, "{table}");
    assert_eq!(added.len(), 2, "{table}");
    assert!(marked(removed[0]).iter().any(|m| m == "quick"), "{table}");
    assert!(marked(added[0]).iter().any(|m| m.contains("slow")), "{table}");
    assert!(!marked(added[0]).iter().any(|m| m.contains("fox")), "only the changed word is marked: {table}");
    assert!(added[0].contains("&#60;"), "the changed line is escaped: {table}");
    assert!(added[1].contains("four"), "{table}");
    assert!(rows.iter().any(|r| r.starts_with("diff-ctx") && r.contains("one")), "{table}");
    assert!(!table.contains("<slow>"));

    // The same revision on both sides: no differences.
    let (status, html) = app.browser.get_text(&format!("/wiki/Diffed/diff?from={to}&to={to}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No differences."));
}

async fn a_diff_needs_two_revision_numbers_of_the_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Diffed", "one").await;
    app.browser.create_page("Other", "two").await;
    let id = stored(&app, "Diffed").await.revision_id.unwrap();
    let other = stored(&app, "Other").await.revision_id.unwrap();
    for query in [
        "",
        "?from=1",
        &format!("?to={id}"),
        &format!("?from=abc&to={id}"),
        &format!("?from={id}&to="),
        "?from=1.5&to=2",
    ] {
        let (status, html) = app.browser.get_text(&format!("/wiki/Diffed/diff{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(html.contains("A diff needs two revision numbers"), "{query}: {html}");
    }
    let (status, _) = app.browser.get_text(&format!("/wiki/Diffed/diff?from={other}&to={id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a revision of another page");
}

async fn reverting_makes_a_new_revision_with_the_old_content(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Revertible", "the **good** text").await;
    edit(&app.browser, "Revertible", "vandalised text", "oops").await;
    let good = revisions_of(&app, "Revertible").await[1].id;
    let before = revision_count(&app).await;
    let action = format!("/wiki/Revertible/revisions/{good}/revert");

    // Visitors are sent to log in; a forged token is refused.
    let visitor = app.new_browser();
    let (_, html) = visitor.get_text(&format!("/wiki/Revertible/revisions/{good}")).await;
    assert!(!html.contains("Revert to this revision"), "visitors get no revert button");
    assert_redirects_to(
        &visitor.post_form(&action, &[("csrf_token", "x")]).await,
        "/login?next=/wiki/Revertible",
    );
    assert_eq!(
        app.browser.post_form(&action, &[("csrf_token", "forged")]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.browser.post_form(&action, &[]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(revision_count(&app).await, before);
    assert_eq!(stored(&app, "Revertible").await.content, "vandalised text");

    let bob = another_member(&app, "bob").await;
    let (status, html) = bob.get_text(&format!("/wiki/Revertible/revisions/{good}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Revert to this revision"));
    assert!(html.contains(&format!(r#"action="{action}""#)), "{html}");
    let token = csrf_in(&html).unwrap();
    let response = bob.post_form(&action, &[("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/wiki/Revertible");
    let (_, html) = follow(&bob, response).await;
    assert_eq!(flashes(&html), [format!("Reverted to revision {good}.")]);
    assert!(html.contains("the <strong>good</strong> text"));

    assert_eq!(revision_count(&app).await, before + 1);
    let page = stored(&app, "Revertible").await;
    assert_eq!(page.content, "the **good** text");
    let newest = &revisions_of(&app, "Revertible").await[0];
    assert_eq!(Some(newest.id), page.revision_id);
    assert_eq!(newest.summary, format!("Reverted to revision {good}"));
    assert_eq!(newest.author.as_deref(), Some("bob"));

    // A revision of another page cannot be reverted to here.
    app.browser.create_page("Other", "other text").await;
    let other = stored(&app, "Other").await.revision_id.unwrap();
    let token = app.browser.csrf("/create").await;
    let response = app
        .browser
        .post_form(&format!("/wiki/Revertible/revisions/{other}/revert"), &[("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(stored(&app, "Revertible").await.content, "the **good** text");
}

// ----- renames ----------------------------------------------------------------------------

async fn renaming_moves_the_page_and_its_history_and_the_old_title_redirects(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Old name", "first").await;
    edit(&app.browser, "Old name", "second", "Second thoughts").await;
    let id = stored(&app, "Old name").await.id;

    let visitor = app.new_browser();
    assert_redirects_to(
        &visitor.get("/wiki/Old%20name/rename").await,
        "/login?next=/wiki/Old%2520name/rename",
    );
    let (status, form) = app.browser.get_text("/wiki/Old%20name/rename").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(r#"value="Old name""#), "{form}");

    let response = rename(&app.browser, "Old name", "New name").await;
    assert_redirects_to(&response, "/wiki/New%20name");
    let (status, html) = follow(&app.browser, response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(flashes(&html)[0].starts_with("Page renamed"), "{html}");
    assert!(html.contains(r#"<h1 class="page-title">New name</h1>"#));

    let response = visitor.get("/wiki/Old%20name").await;
    assert!(
        response.status() == StatusCode::PERMANENT_REDIRECT
            || response.status() == StatusCode::MOVED_PERMANENTLY,
        "{}",
        response.status()
    );
    assert_eq!(location(response.headers()), "/wiki/New%20name");

    let page = stored(&app, "New name").await;
    assert_eq!(page.id, id, "the same page, renamed");
    assert_eq!(page.content, "second");
    assert!(page::find_including_deleted(&app.state.db.read, "Old name").await.unwrap().is_none());
    assert_eq!(link::old_titles(&app.state.db.read, id).await.unwrap(), ["Old name"]);
    let revisions = revisions_of(&app, "New name").await;
    assert_eq!(revisions.len(), 3);
    assert!(revisions[0].summary.starts_with("Renamed from"), "{:?}", revisions[0]);
    assert!(revisions[0].summary.contains("Old name") && revisions[0].summary.contains("New name"));
    assert_eq!(revision(&app, revisions[0].id).await.content, "second");

    let (status, history) = visitor.get_text("/wiki/New%20name/history").await;
    assert_eq!(status, StatusCode::OK);
    for revision in &revisions {
        assert!(history.contains(&format!(">#{}</a>", revision.id)), "{history}");
    }
    assert!(history.contains("Renamed from"));
    assert!(history.contains("Second thoughts"));
    assert!(history.contains("Created"));

    // A new page may take the old title back; the redirect then ends.
    app.browser.create_page("Old name", "a new page").await;
    let (status, html) = visitor.get_text("/wiki/Old%20name").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("a new page"));
}

async fn renaming_onto_an_existing_title_or_the_same_one_is_refused_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser.create_page("Mine", "my text").await;
    app.browser.create_page("Taken", "their text").await;
    let before = revision_count(&app).await;

    let response = rename(&app.browser, "Mine", "Taken").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert!(html.contains("already exists"), "{html}");
    assert!(html.contains(r#"value="Taken""#), "the typed title is kept");

    let long = "t".repeat(101);
    let cases: [(&str, &str); 5] = [
        ("Mine", "same as the old one"),
        ("  Mine  ", "same as the old one"),
        ("", "Title is required."),
        (&long, "at most 100 characters"),
        ("..", "Title cannot be just"),
    ];
    for (new_title, message) in cases {
        let response = rename(&app.browser, "Mine", new_title).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{new_title:?}");
        assert!(response.text().await.unwrap().contains(message), "{message}");
    }
    let response = app
        .browser
        .post_form("/wiki/Mine/rename", &[("new_title", "Elsewhere"), ("csrf_token", "bad")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let visitor = app.new_browser();
    let response =
        visitor.post_form("/wiki/Mine/rename", &[("new_title", "Elsewhere"), ("csrf_token", "bad")]).await;
    assert_redirects_to(&response, "/login?next=/wiki/Mine/rename");

    assert_eq!(revision_count(&app).await, before);
    assert_eq!(stored(&app, "Mine").await.content, "my text");
    assert_eq!(stored(&app, "Taken").await.content, "their text");
    assert_eq!(app.page_count().await, 2);
    let mine = stored(&app, "Mine").await.id;
    assert!(link::old_titles(&app.state.db.read, mine).await.unwrap().is_empty());
    assert!(page::find_including_deleted(&app.state.db.read, "Elsewhere").await.unwrap().is_none());
}

// ----- deletion ---------------------------------------------------------------------------

async fn only_the_author_or_an_admin_deletes_and_only_an_admin_restores(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.member("root").await;
    let writer = another_member(&app, "writer").await;
    let other = another_member(&app, "other").await;
    let db = &app.state.db.read;
    assert!(
        user::find_by_username(db, "root").await.unwrap().unwrap().role().is_admin(),
        "the first account is admin"
    );
    assert!(!user::find_by_username(db, "writer").await.unwrap().unwrap().role().is_admin());
    assert!(!user::find_by_username(db, "other").await.unwrap().unwrap().role().is_admin());

    writer.create_page("Doomed page", "about the zanzibar archipelago").await;
    let (_, html) = other.get_text("/wiki/Doomed%20page").await;
    assert!(!html.contains("/wiki/Doomed%20page/delete"), "no delete button for other members");
    let (_, html) = writer.get_text("/wiki/Doomed%20page").await;
    assert!(
        html.contains(r#"<a href="/wiki/Doomed%20page/delete" class="danger">Delete</a>"#),
        "the author gets a delete link"
    );
    let (status, confirmation) = writer.get_text("/wiki/Doomed%20page/delete").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        confirmation.contains(r#"action="/wiki/Doomed%20page/delete""#),
        "the confirmation posts the delete"
    );

    // Neither author nor admin.
    let response = delete(&other, "Doomed page").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("Only the page"));
    assert!(stored(&app, "Doomed page").await.deleted_at.is_none());
    // Visitors and forged tokens.
    let visitor = app.new_browser();
    let response = visitor.post_form("/wiki/Doomed%20page/delete", &[("csrf_token", "x")]).await;
    assert_redirects_to(&response, "/login?next=/wiki/Doomed%2520page");
    let response = writer.post_form("/wiki/Doomed%20page/delete", &[("csrf_token", "forged")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(stored(&app, "Doomed page").await.deleted_at.is_none());

    // The author deletes.
    let response = delete(&writer, "Doomed page").await;
    assert_redirects_to(&response, "/");
    let (_, html) = follow(&writer, response).await;
    assert_eq!(flashes(&html)[0], "Page “Doomed page” deleted. An admin can restore it.", "{html}");
    assert!(stored(&app, "Doomed page").await.deleted_at.is_some());
    for browser in [&visitor, &writer, &other] {
        let (status, html) = browser.get_text("/wiki/Doomed%20page").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!html.contains("zanzibar"));
        let (_, index) = browser.get_text("/").await;
        assert!(index_links(&index).is_empty(), "{index}");
        let (status, results) = browser.get_text("/search?q=zanzibar").await;
        assert_eq!(status, StatusCode::OK);
        assert!(results.contains("No page matches."), "{results}");
    }
    assert_eq!(writer.get("/wiki/Doomed%20page/edit").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(visitor.get("/wiki/Doomed%20page/history").await.status(), StatusCode::NOT_FOUND);

    // The admin still sees it, with a way back.
    let (status, html) = admin.get_text("/wiki/Doomed%20page").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("This page is deleted"), "{html}");
    assert!(html.contains(r#"action="/wiki/Doomed%20page/restore""#), "{html}");
    assert!(html.contains("zanzibar"));

    // Only an admin restores.
    for browser in [&writer, &other] {
        let response = restore(browser, "Doomed page").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.text().await.unwrap().contains("Only an admin"));
    }
    assert!(stored(&app, "Doomed page").await.deleted_at.is_some());
    let response = restore(admin, "Doomed page").await;
    assert_redirects_to(&response, "/wiki/Doomed%20page");
    let (_, html) = follow(admin, response).await;
    assert_eq!(flashes(&html), ["Page restored."]);
    assert!(stored(&app, "Doomed page").await.deleted_at.is_none());
    let (status, html) = visitor.get_text("/wiki/Doomed%20page").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("zanzibar"));
    let (_, index) = visitor.get_text("/").await;
    assert_eq!(index_links(&index), [("/wiki/Doomed%20page".to_owned(), "Doomed page".to_owned())]);
    let (_, results) = visitor.get_text("/search?q=zanzibar").await;
    assert!(results.contains(r#"href="/wiki/Doomed%20page""#), "{results}");

    // The admin may delete anyone's page.
    assert_redirects_to(&delete(admin, "Doomed page").await, "/");
    assert!(stored(&app, "Doomed page").await.deleted_at.is_some());
    // Restoring a page that is not deleted is not found.
    writer.create_page("Alive", "x").await;
    assert_eq!(restore(admin, "Alive").await.status(), StatusCode::NOT_FOUND);
}

// ----- links ------------------------------------------------------------------------------

async fn wiki_links_lead_to_creating_missing_pages_and_follow_renames(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser
        .create_page(
            "Source page",
            "See [[Target Page]] and [[Target Page|the target]].\n\nCode: `[[Not A Link]]`\n",
        )
        .await;
    let source = stored(&app, "Source page").await.id;
    let db = &app.state.db.read;
    let stored_links: Vec<String> = link::wiki_link::Entity::find()
        .filter(link::wiki_link::Column::FromPageId.eq(source))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.to_title)
        .collect();
    assert_eq!(stored_links, ["Target Page"]);
    assert_eq!(link::missing_targets(db, source).await.unwrap(), ["Target Page"]);

    let (status, html) = app.new_browser().get_text("/wiki/Source%20page").await;
    assert_eq!(status, StatusCode::OK);
    let content = section(&html, r#"<div class="page-content">"#, "</div>");
    assert_eq!(
        content.matches(r#"href="/create?title=Target%20Page" class="missing-page""#).count(),
        2,
        "{content}"
    );
    assert!(content.contains(">Target Page</a>") && content.contains(">the target</a>"), "{content}");
    assert!(!content.contains(r#"href="/wiki/Target%20Page""#), "{content}");
    assert!(content.contains("<code>[[Not A Link]]</code>"), "{content}");
    assert!(!content.contains("Not%20A%20Link"), "{content}");

    app.browser.create_page("Target Page", "I am linked").await;
    assert!(link::missing_targets(db, source).await.unwrap().is_empty());
    let (_, html) = app.new_browser().get_text("/wiki/Source%20page").await;
    let content = section(&html, r#"<div class="page-content">"#, "</div>");
    assert_eq!(content.matches(r#"href="/wiki/Target%20Page""#).count(), 2, "{content}");
    assert!(!content.contains("missing-page"), "{content}");
    let (_, target) = app.new_browser().get_text("/wiki/Target%20Page").await;
    let backlinks = section(&target, r#"<aside class="backlinks">"#, "</aside>");
    assert!(backlinks.contains("What links here"));
    assert!(backlinks.contains(r#"<a href="/wiki/Source%20page">Source page</a>"#), "{backlinks}");

    assert_redirects_to(
        &rename(&app.browser, "Target Page", "Renamed Target").await,
        "/wiki/Renamed%20Target",
    );
    assert!(link::missing_targets(db, source).await.unwrap().is_empty(), "an old title is not missing");
    let (_, html) = app.new_browser().get_text("/wiki/Source%20page").await;
    let content = section(&html, r#"<div class="page-content">"#, "</div>");
    assert!(content.contains(r#"href="/wiki/Target%20Page""#), "{content}");
    assert!(!content.contains("missing-page"), "{content}");
    let response = app.new_browser().get("/wiki/Target%20Page").await;
    assert!(
        response.status() == StatusCode::PERMANENT_REDIRECT
            || response.status() == StatusCode::MOVED_PERMANENTLY
    );
    assert_eq!(location(response.headers()), "/wiki/Renamed%20Target");
    let (status, renamed) = app.new_browser().get_text("/wiki/Renamed%20Target").await;
    assert_eq!(status, StatusCode::OK);
    let backlinks = section(&renamed, r#"<aside class="backlinks">"#, "</aside>");
    assert!(backlinks.contains(r#"<a href="/wiki/Source%20page">Source page</a>"#), "{backlinks}");

    // Editing the links away empties What links here.
    edit(&app.browser, "Source page", "no links any more", "").await;
    let (_, renamed) = app.new_browser().get_text("/wiki/Renamed%20Target").await;
    let backlinks = section(&renamed, r#"<aside class="backlinks">"#, "</aside>");
    assert!(backlinks.contains("No page links here yet."), "{backlinks}");
}

// ----- browsing ---------------------------------------------------------------------------

/// (page href, revision href, author) of each change listed, in order.
fn listed_changes(html: &str) -> Vec<(String, String, String)> {
    let list = section(html, r#"<ul class="changes">"#, "</ul>");
    list.split("<li><a href=\"")
        .skip(1)
        .map(|item| {
            let hrefs: Vec<&str> = item.split("href=\"").map(|s| &s[..s.find('"').unwrap_or(0)]).collect();
            let page = item[..item.find('"').unwrap()].to_owned();
            let revision = hrefs.get(1).copied().unwrap_or_default().to_owned();
            let author = hrefs.get(2).and_then(|h| h.strip_prefix("/users/")).unwrap_or_default().to_owned();
            (page, revision, author)
        })
        .collect()
}

async fn recent_changes_list_the_newest_first_with_pages_and_authors(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    let bob = another_member(&app, "bob").await;
    app.browser.create_page("Alpha", "a").await;
    edit(&bob, "Alpha", "a, edited", "Bob was here").await;
    bob.create_page("Beta", "b").await;
    let alpha = revisions_of(&app, "Alpha").await;
    let beta = revisions_of(&app, "Beta").await;

    let (status, html) = app.new_browser().get_text("/recent").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed_changes(&html),
        [
            ("/wiki/Beta".to_owned(), format!("/wiki/Beta/revisions/{}", beta[0].id), "bob".to_owned()),
            ("/wiki/Alpha".to_owned(), format!("/wiki/Alpha/revisions/{}", alpha[0].id), "bob".to_owned()),
            ("/wiki/Alpha".to_owned(), format!("/wiki/Alpha/revisions/{}", alpha[1].id), "ann".to_owned()),
        ]
    );
    assert!(html.contains(r#"<span class="summary">Bob was here</span>"#));
    assert!(html.contains(r#"href="/recent.atom""#));
}

/// A small check that a document is well-formed XML: tags nest and close, and every `&` starts
/// an entity or character reference.
fn assert_well_formed_xml(xml: &str) {
    fn references_ok(text: &str) -> bool {
        text.split('&').skip(1).all(|rest| {
            let Some(end) = rest.find(';') else { return false };
            let name = &rest[..end];
            ["lt", "gt", "amp", "quot", "apos"].contains(&name)
                || name
                    .strip_prefix("#x")
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_hexdigit()))
                || name
                    .strip_prefix('#')
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
    }
    let mut rest = xml.trim_start();
    let mut open: Vec<String> = Vec::new();
    let mut roots = 0;
    if let Some(after) = rest.strip_prefix("<?xml") {
        rest = &after[after.find("?>").expect("the XML declaration ends") + 2..];
    }
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        assert!(references_ok(text), "a bare & in text: {text:?}");
        assert!(!text.contains('>') || !open.is_empty(), "text outside the root: {text:?}");
        let end = rest[lt..].find('>').expect("every tag ends") + lt;
        let tag = &rest[lt + 1..end];
        assert!(!tag.contains('<'), "a < inside a tag: {tag:?}");
        let quoted: Vec<&str> = tag.split('"').skip(1).step_by(2).collect();
        assert!(quoted.iter().all(|value| references_ok(value)), "a bare & in an attribute: {tag:?}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop().as_deref(), Some(name.trim()), "mismatched </{name}>");
        } else {
            let name = tag.split([' ', '/', '\n', '\t']).next().unwrap().to_owned();
            assert!(!name.is_empty(), "an empty tag name: {tag:?}");
            if open.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert_eq!(roots, 1, "one root element");
}

fn unescape_xml(s: &str) -> String {
    unescape(&s.replace("&apos;", "'"))
}

async fn the_atom_feed_is_well_formed_with_one_entry_per_change_and_escaped_titles(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    let (status, empty) = {
        let response = app.new_browser().get("/recent.atom").await;
        let status = response.status();
        (status, response.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    assert_well_formed_xml(&empty);
    assert_eq!(empty.matches("<entry>").count(), 0);

    let title = "<b>&</b>";
    let response = app.browser.create_page(title, "bold & brave").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.browser.create_page("Plain", "plain").await;
    edit(&app.browser, "Plain", "plain, edited", "an \"edit\" with <tags> & 'quotes'").await;

    let response = app.new_browser().get("/recent.atom").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/atom+xml"), "{content_type}");
    let xml = response.text().await.unwrap();
    assert!(xml.contains(r#"<feed xmlns="http://www.w3.org/2005/Atom">"#), "{xml}");
    assert_well_formed_xml(&xml);
    assert_eq!(xml.matches("<entry>").count(), revision_count(&app).await as usize, "{xml}");
    assert_eq!(xml.matches("</entry>").count(), 3);
    assert!(!xml.contains("<b>"), "{xml}");
    assert!(!xml.contains("<tags>"), "{xml}");
    let titles: Vec<String> = xml
        .split("<entry>")
        .skip(1)
        .map(|entry| unescape_xml(&section(entry, "<title>", "</title>")["<title>".len()..]))
        .collect();
    assert_eq!(titles, ["Plain", "Plain", title]);
    let summary = section(&xml, "<summary>", "</summary>")["<summary>".len()..].to_owned();
    assert_eq!(unescape_xml(&summary), "an \"edit\" with <tags> & 'quotes'");
    let id = stored(&app, title).await.revision_id.unwrap();
    assert!(xml.contains(&format!("/wiki/%3Cb%3E%26%3C%2Fb%3E/revisions/{id}")), "{xml}");
}

async fn a_member_page_shows_their_pages_and_contributions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    let bob = another_member(&app, "bob").await;
    app.browser.create_page("Ann's page", "mine").await;
    app.browser.create_page("Zeta", "also mine").await;
    bob.create_page("Bob's page", "his").await;
    edit(&app.browser, "Bob's page", "his, improved by Ann", "Improved").await;
    let response = app.browser.upload_avatar("me.png", crate::profile::png(32, 32)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let avatar =
        user::find_by_username(&app.state.db.read, "ann").await.unwrap().unwrap().avatar.expect("an avatar");

    let visitor = app.new_browser();
    let (status, html) = visitor.get_text("/users/ann").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        index_links(&html),
        [
            ("/wiki/Ann%27s%20page".to_owned(), "Ann's page".to_owned()),
            ("/wiki/Zeta".to_owned(), "Zeta".to_owned())
        ]
    );
    let changes = listed_changes(&html);
    assert_eq!(
        changes.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["/wiki/Bob%27s%20page", "/wiki/Zeta", "/wiki/Ann%27s%20page"]
    );
    assert!(changes.iter().all(|c| c.2 == "ann"));
    assert!(html.contains("Improved"));
    assert!(!html.contains(&avatar), "visitors see no avatar");
    assert!(!html.contains("/avatars/"), "{html}");

    let (status, html) = bob.get_text("/users/ann").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!(r#"<img src="/avatars/{avatar}""#)), "members see it: {html}");
    assert!(html.contains(r#"<small class="badge">admin</small>"#), "ann registered first");

    let (status, html) = visitor.get_text("/users/bob").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(index_links(&html), [("/wiki/Bob%27s%20page".to_owned(), "Bob's page".to_owned())]);
    assert!(!html.contains("badge"));

    assert_eq!(visitor.get("/users/nobody").await.status(), StatusCode::NOT_FOUND);
}

async fn pages_with_three_headings_get_a_table_of_contents_with_working_anchors(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ann").await;
    app.browser
        .create_page(
            "Long read",
            "# Alpha\n\ntext\n\n## Beta part\n\nmore\n\n## Beta part\n\n### Gamma & delta\n\nend",
        )
        .await;
    app.browser.create_page("Short read", "# Alpha\n\ntext\n\n## Beta\n\nmore").await;
    let stored_html = stored(&app, "Long read").await.html;
    assert!(stored_html.contains(r#"<nav class="toc" aria-label="Contents">"#));

    let (status, html) = app.new_browser().get_text("/wiki/Long%20read").await;
    assert_eq!(status, StatusCode::OK);
    let toc = section(&html, r#"<nav class="toc" aria-label="Contents">"#, "</nav>");
    let anchors: Vec<&str> =
        toc.split("href=\"#").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect();
    assert_eq!(anchors.len(), 4, "{toc}");
    assert!(anchors.iter().all(|a| a.starts_with("h-")), "{anchors:?}");
    assert_eq!(
        anchors.iter().collect::<std::collections::HashSet<_>>().len(),
        4,
        "unique anchors: {anchors:?}"
    );
    for anchor in &anchors {
        assert_eq!(html.matches(&format!(r#"id="{anchor}""#)).count(), 1, "{anchor}: {html}");
    }
    assert!(toc.contains("Gamma &amp; delta"), "{toc}");

    let (_, short) = app.new_browser().get_text("/wiki/Short%20read").await;
    assert!(!short.contains(r#"class="toc""#), "two headings get no contents");
}

crate::tests![
    a_member_edits_a_page_and_the_revision_records_author_summary_and_size,
    visitors_are_sent_to_log_in_before_editing,
    saving_unchanged_content_creates_no_revision,
    an_edit_with_a_missing_or_forged_csrf_token_is_refused_and_stores_nothing,
    invalid_edits_show_a_message_give_the_text_back_and_store_nothing,
    the_preview_is_the_sanitized_html_for_members_only,
    the_preview_button_without_javascript_shows_the_editor_again_and_saves_nothing,
    edits_to_different_lines_by_two_members_are_merged,
    overlapping_edits_bring_the_second_member_back_to_a_conflict,
    simultaneous_saves_of_the_same_line_keep_exactly_one,
    simultaneous_saves_of_different_lines_are_all_kept,
    the_history_lists_every_revision_with_author_summary_and_size_change,
    each_revision_shows_its_own_content_and_no_other_page_s,
    the_diff_shows_removed_and_added_lines_with_the_changed_words_marked,
    a_diff_needs_two_revision_numbers_of_the_page,
    reverting_makes_a_new_revision_with_the_old_content,
    renaming_moves_the_page_and_its_history_and_the_old_title_redirects,
    renaming_onto_an_existing_title_or_the_same_one_is_refused_and_changes_nothing,
    only_the_author_or_an_admin_deletes_and_only_an_admin_restores,
    wiki_links_lead_to_creating_missing_pages_and_follow_renames,
    recent_changes_list_the_newest_first_with_pages_and_authors,
    the_atom_feed_is_well_formed_with_one_entry_per_change_and_escaped_titles,
    a_member_page_shows_their_pages_and_contributions,
    pages_with_three_headings_get_a_table_of_contents_with_working_anchors,
];
