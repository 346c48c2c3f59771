//! A wiki people enjoy using (issue 16), over HTTP: what the preview shows is what the page
//! shows, safe deletes with their confirmation, Undo and the list of deleted pages, the colour
//! scheme switch, Create's preview, the Markdown help, math, conflicts in plain language, the
//! Flask pages opening as Markdown, and the first steps (empty wiki, first member, Login links,
//! search counts and snippets, the main page, recent changes by day).

use quire::models::{page, setting};
use reqwest::StatusCode;
use sea_orm::EntityTrait;

use crate::access_helpers::{
    assert_forbidden, assert_login_redirect, hidden_value, member_with_role, wiki_with_admin,
};
use crate::helpers::*;
use crate::pages::unescape;
use crate::wiki::{another_member, at, delete, flashes, open_editor, save, stored};

crate::tests!(
    a_page_saved_from_a_form_shows_the_html_its_preview_showed,
    a_first_heading_repeating_the_title_is_shown_once,
    math_renders_to_mathml_on_the_server,
    delete_asks_first_and_names_the_page,
    a_delete_without_its_confirmation_field_deletes_nothing,
    deletions_appear_in_recent_changes_and_the_feed,
    admins_list_deleted_pages_and_restore_them,
    the_flash_after_a_delete_offers_undo_to_whoever_may_restore,
    the_colour_scheme_is_remembered_in_a_cookie,
    a_bad_colour_scheme_is_refused_and_changes_nothing,
    visitors_cached_pages_keep_each_colour_scheme_apart,
    create_previews_without_storing_anything,
    create_has_cancel_and_markdown_help,
    a_conflict_shows_both_versions_in_plain_language,
    a_conflict_resolved_with_the_choices_saves_them,
    an_incomplete_or_forged_resolution_saves_nothing,
    flask_pages_open_in_the_editor_as_markdown_that_renders_the_same,
    an_empty_wiki_invites_members_and_visitors_to_start,
    the_first_member_is_told_they_administer_the_wiki,
    login_links_come_back_with_the_query,
    search_counts_its_results_and_shows_the_rendered_text,
    admins_choose_a_main_page_shown_above_the_list,
    a_main_page_that_does_not_exist_is_refused,
    recent_changes_group_by_day_with_size_and_diff,
    pages_are_labelled_for_assistive_technology,
    field_errors_are_tied_to_their_fields,
);

// ----- helpers ----------------------------------------------------------------------------

/// The displayed HTML of a page view: its table of contents and content, as the preview sends
/// them.
fn shown_content(html: &str) -> String {
    let body = html.split(r#"id="page-body">"#).nth(1).unwrap_or_else(|| panic!("no page body in {html}"));
    let body = &body[..body.find(r#"<aside class="backlinks""#).expect("the backlinks follow")];
    let (toc, rest) = match body.find(r#"<div class="page-content">"#) {
        Some(at) => (&body[..at], &body[at + r#"<div class="page-content">"#.len()..]),
        None => panic!("no page content in {body}"),
    };
    let content = &rest[..rest.rfind("</div>").unwrap()];
    let content = &content[..content.rfind("</div>").unwrap()];
    format!("{}{}", toc.trim(), content.trim_start_matches('\n').trim_end())
}

async fn preview(browser: &Browser, title: &str, content: &str) -> (StatusCode, String) {
    let token = browser.csrf("/create").await;
    let response = browser
        .post_form("/preview", &[("content", content), ("title", title), ("csrf_token", &token)])
        .await;
    let status = response.status();
    (status, response.text().await.unwrap())
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

/// The parts of the conflict form, as a browser would send them back: every hidden field.
fn conflict_fields(html: &str) -> Vec<(String, String)> {
    let form =
        html.split(r#"id="conflict-form""#).nth(1).unwrap_or_else(|| panic!("no conflict form in {html}"));
    let form = &form[..form.find("</form>").unwrap()];
    let mut fields = Vec::new();
    for tag in form.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap()];
        if !tag.contains(r#"type="hidden""#) {
            continue;
        }
        let attr = |name: &str| {
            let marker = format!(r#"{name}=""#);
            tag.split(&marker).nth(1).map(|v| unescape(&v[..v.find('"').unwrap()]))
        };
        if let (Some(name), Some(value)) = (attr("name"), attr("value")) {
            fields.push((name, value));
        }
    }
    fields
}

async fn post_fields(browser: &Browser, path: &str, fields: &[(String, String)]) -> reqwest::Response {
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser.post_form(path, &form).await
}

// ----- what you preview is what you get ------------------------------------------------------

async fn a_page_saved_from_a_form_shows_the_html_its_preview_showed(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("writer").await;
    browser.create_page("Alpha", "exists").await;
    // What a browser's form submits: CRLF line endings.
    let text = "# Notes\n\n## Code\n\n```rust\nfn main() {\n    let x = 1;\n}\n```\n\n## Links\n\nSee [[Alpha]] and [[Nowhere yet]].\n\n## Table\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
    let submitted = text.replace('\n', "\r\n");
    assert_redirects_to(&browser.create_page("Notes page", &submitted).await, "/wiki/Notes%20page");
    let (status, html) = browser.get_text("/wiki/Notes%20page").await;
    assert_eq!(status, StatusCode::OK);
    let shown = shown_content(&html);
    // The script's preview sends the textarea's text (LF) with the title.
    let (status, previewed) = preview(browser, "Notes page", text).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, previewed.trim());
    // Code keeps its lines, the missing page is marked in both, the stored text has no CR.
    assert!(!shown.contains("\n</span>\n") && !shown.contains('\r'), "{shown}");
    assert!(shown.contains(r#"href="/create?title=Nowhere%20yet" class="missing-page""#), "{shown}");
    assert!(shown.contains(r#"href="/wiki/Alpha""#), "{shown}");
    assert_eq!(stored(&app, "Notes page").await.content, text);
    // The editor's own (scriptless) preview shows the same.
    let editor = open_editor(browser, "Notes page").await;
    let response = browser
        .post_form(
            "/wiki/Notes%20page/edit",
            &[
                ("content", &submitted),
                ("summary", ""),
                ("base_revision", &editor.base),
                ("csrf_token", &editor.csrf),
                ("preview", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let body = html.split(r#"<div id="preview-body">"#).nth(1).expect("a preview");
    assert_eq!(body[..body.find("</div>\n</section>").unwrap()].trim(), shown);
}

async fn a_first_heading_repeating_the_title_is_shown_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("writer").await;
    browser.create_page("Garden", "# Garden\n\nTomatoes.\n").await;
    let (_, html) = browser.get_text("/wiki/Garden").await;
    assert_eq!(count(&html, "<h1"), 1, "{html}");
    assert!(html.contains("<p>Tomatoes.</p>"), "{html}");
    // Another first heading stays.
    browser.create_page("Kitchen", "# Recipes\n\nSoup.\n").await;
    let (_, html) = browser.get_text("/wiki/Kitchen").await;
    assert_eq!(count(&html, "<h1"), 2, "{html}");
    // The stored text keeps its heading: the editor shows it.
    assert_eq!(open_editor(browser, "Garden").await.content, "# Garden\n\nTomatoes.\n");
}

async fn math_renders_to_mathml_on_the_server(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("writer").await;
    browser.create_page("Maths", "Inline $a^2 + b^2 = c^2$ and\n\n$$\\frac{1}{2}$$\n\nIt costs $5.\n").await;
    let (_, html) = browser.get_text("/wiki/Maths").await;
    let content = shown_content(&html);
    assert!(content.contains("<math"), "{content}");
    assert!(content.contains("<msup>") && content.contains("<mfrac>"), "{content}");
    assert!(content.contains(r#"<math display="block""#), "{content}");
    assert!(content.contains("It costs $5."), "{content}");
    assert!(!content.contains("style="), "no inline style (the CSP forbids it): {content}");
    assert!(!content.contains("<script"), "no script: {content}");
}

// ----- safe delete ------------------------------------------------------------------------

async fn delete_asks_first_and_names_the_page(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let writer = member_with_role(&app, &admin, "writer", "editor").await;
    writer.create_page("Doomed <page>", "text").await;
    let path = at("Doomed <page>", "/delete");
    let (status, html) = writer.get_text(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Delete “Doomed &#60;page&#62;”?"), "{html}");
    assert!(html.contains(r#"name="confirm" value="yes""#), "{html}");
    assert!(html.contains(r#"name="csrf_token""#), "{html}");
    assert!(stored(&app, "Doomed <page>").await.deleted_at.is_none(), "opening it deletes nothing");
    // The page links to the confirmation, not to a one-click form.
    let (_, view) = writer.get_text(&at("Doomed <page>", "")).await;
    assert!(view.contains(&format!(r#"<a href="{path}" class="danger">Delete</a>"#)), "{view}");
    // Who may not delete is told so; a visitor is asked to log in.
    let other = member_with_role(&app, &admin, "other", "editor").await;
    assert_forbidden(other.get(&path).await, "Only the page", "another editor").await;
    let reader = member_with_role(&app, &admin, "reader", "reader").await;
    assert_eq!(reader.get(&path).await.status(), StatusCode::FORBIDDEN);
    assert_login_redirect(&app.new_browser().get(&path).await, &path);
    assert_eq!(writer.get(&at("No such page", "/delete")).await.status(), StatusCode::NOT_FOUND);
}

async fn a_delete_without_its_confirmation_field_deletes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let writer = app.member("writer").await;
    writer.create_page("Kept", "text").await;
    let token = writer.csrf("/create").await;
    for confirm in [None, Some(""), Some("no"), Some("YES")] {
        let mut form = vec![("csrf_token", token.as_str())];
        if let Some(value) = confirm {
            form.push(("confirm", value));
        }
        let response = writer.post_form("/wiki/Kept/delete", &form).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "confirm {confirm:?}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Nothing was deleted"), "{html}");
        assert!(stored(&app, "Kept").await.deleted_at.is_none(), "confirm {confirm:?}");
    }
    // The confirmation without its token.
    let response = writer.post_form("/wiki/Kept/delete", &[("confirm", "yes")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(stored(&app, "Kept").await.deleted_at.is_none());
}

async fn deletions_appear_in_recent_changes_and_the_feed(backend: Backend) {
    let app = spawn_app(backend).await;
    let writer = app.member("writer").await;
    writer.create_page("Short lived", "text").await;
    writer.create_page("Stays", "text").await;
    assert_redirects_to(&delete(writer, "Short lived").await, "/");
    let (status, recent) = app.new_browser().get_text("/recent").await;
    assert_eq!(status, StatusCode::OK);
    let deleted = recent.find("Short lived").unwrap_or_else(|| panic!("the deletion is listed: {recent}"));
    let line = &recent[deleted..deleted + recent[deleted..].find("</li>").unwrap()];
    assert!(line.contains(r#"<span class="deleted-mark">deleted</span>"#), "{line}");
    assert!(line.contains(r#"href="/users/writer""#), "who deleted it: {line}");
    // A deleted page's title is no link for those who cannot open it.
    assert!(!recent.contains(r#"<a href="/wiki/Short%20lived">"#), "{recent}");
    let (status, feed) = app.new_browser().get_text("/recent.atom").await;
    assert_eq!(status, StatusCode::OK);
    assert!(roxmltree::Document::parse(&feed).is_ok(), "{feed}");
    assert!(feed.contains("<title>Short lived (deleted)</title>"), "{feed}");
    assert!(feed.contains("Page “Short lived” deleted"), "{feed}");
    // The newest entry is the deletion.
    let first_entry = &feed[feed.find("<entry>").unwrap()..];
    assert!(first_entry[..first_entry.find("</entry>").unwrap()].contains("(deleted)"), "{feed}");
}

async fn admins_list_deleted_pages_and_restore_them(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let writer = member_with_role(&app, &admin, "writer", "editor").await;
    writer.create_page("Archive", "old things").await;
    assert_redirects_to(&delete(&writer, "Archive").await, "/");
    let (status, html) = admin.get_text("/deleted").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<a href="/wiki/Archive">Archive</a>"#), "{html}");
    assert!(html.contains(r#"action="/wiki/Archive/restore""#), "{html}");
    // Nobody else sees the list.
    assert_forbidden(writer.get("/deleted").await, "Only an admin", "an editor").await;
    assert_login_redirect(&app.new_browser().get("/deleted").await, "/deleted");
    // Restore from the list.
    let token = hidden_value(&html, "csrf_token").unwrap();
    let response = admin.post_form("/wiki/Archive/restore", &[("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/wiki/Archive");
    assert!(stored(&app, "Archive").await.deleted_at.is_none());
    let (_, html) = admin.get_text("/deleted").await;
    assert!(html.contains("No page is deleted."), "{html}");
    let (_, recent) = admin.get_text("/recent").await;
    assert!(recent.contains(r#"<span class="deleted-mark">restored</span>"#), "{recent}");
}

async fn the_flash_after_a_delete_offers_undo_to_whoever_may_restore(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let writer = member_with_role(&app, &admin, "writer", "editor").await;
    admin.create_page("Oops", "text").await;
    let (_, html) = follow(&admin, delete(&admin, "Oops").await).await;
    assert_eq!(flashes(&html), ["Page “Oops” deleted."]);
    assert!(
        html.contains(r#"<form method="post" action="/wiki/Oops/restore" class="inline-form">"#),
        "{html}"
    );
    let token = csrf_in(&html[html.find("/wiki/Oops/restore").unwrap()..]).unwrap();
    assert_redirects_to(
        &admin.post_form("/wiki/Oops/restore", &[("csrf_token", &token)]).await,
        "/wiki/Oops",
    );
    assert!(stored(&app, "Oops").await.deleted_at.is_none(), "undone");
    // An editor who deleted their own page cannot restore it: no Undo for them.
    writer.create_page("Mine", "text").await;
    let (_, html) = follow(&writer, delete(&writer, "Mine").await).await;
    assert_eq!(flashes(&html), ["Page “Mine” deleted. An admin can restore it."]);
    assert!(!html.contains("/restore"), "{html}");
}

// ----- colour scheme ------------------------------------------------------------------------

async fn the_colour_scheme_is_remembered_in_a_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.new_browser();
    let (_, html) = browser.get_text("/recent").await;
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"), "the system's scheme by default");
    assert!(html.contains(r#"href="/theme?set=dark&amp;next=/recent""#), "{html}");
    let response = browser.get("/theme?set=dark&next=/recent%3Fpage%3D1").await;
    assert_redirects_to(&response, "/recent?page=1");
    assert_eq!(browser.cookie("quire_theme").as_deref(), Some("dark"));
    let (_, html) = browser.get_text("/recent").await;
    assert!(html.contains(r#"<html lang="en" data-theme="dark">"#), "{html}");
    assert!(html.contains(r#"aria-current="true">Dark</a>"#), "{html}");
    assert_redirects_to(&browser.get("/theme?set=light&next=/").await, "/");
    let (_, html) = browser.get_text("/").await;
    assert!(html.contains(r#"data-theme="light""#), "{html}");
    // System forgets the choice.
    assert_redirects_to(&browser.get("/theme?set=system&next=/").await, "/");
    assert_eq!(browser.cookie("quire_theme"), None);
    let (_, html) = browser.get_text("/").await;
    assert!(!html.contains("data-theme="), "{html}");
}

async fn a_bad_colour_scheme_is_refused_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.new_browser();
    for path in ["/theme?set=purple&next=/", "/theme", "/theme?set=Dark", "/theme?set=dark&set=light&next=/"]
    {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("theme"), "{path}: {body}");
        assert_eq!(browser.cookie("quire_theme"), None, "{path}");
    }
    // Only this site's paths: elsewhere is home.
    for next in ["//evil.example/x", "https://evil.example/", "/\\evil.example"] {
        let path = format!("/theme?set=dark&next={}", quire::urls::encode_query(next));
        assert_redirects_to(&browser.get(&path).await, "/");
    }
}

async fn visitors_cached_pages_keep_each_colour_scheme_apart(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("writer").await.create_page("Cached", "text").await;
    let light = app.new_browser();
    let dark = app.new_browser();
    dark.get("/theme?set=dark&next=/").await;
    for _ in 0..2 {
        let (_, html) = light.get_text("/wiki/Cached").await;
        assert!(!html.contains("data-theme="), "{html}");
        let (_, html) = dark.get_text("/wiki/Cached").await;
        assert!(html.contains(r#"data-theme="dark""#), "{html}");
    }
}

// ----- the editor ---------------------------------------------------------------------------

async fn create_previews_without_storing_anything(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("writer").await;
    let token = browser.csrf("/create").await;
    let response = browser
        .post_form(
            "/create",
            &[
                ("title", "Draft"),
                ("content", "Some **bold** text"),
                ("preview", "1"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("<strong>bold</strong>"), "{html}");
    assert!(html.contains(r#"value="Draft""#), "the title is kept: {html}");
    assert!(html.contains("Some **bold** text</textarea>"), "the text is kept: {html}");
    assert_eq!(app.page_count().await, 0);
    // A preview with an unsettled title still previews; content past its limits does not.
    let response = browser
        .post_form("/create", &[("title", ""), ("content", "x"), ("preview", "1"), ("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let deep = "> ".repeat(150);
    let response = browser
        .post_form(
            "/create",
            &[("title", "Deep"), ("content", &deep), ("preview", "1"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("nested too deeply"));
    assert_eq!(app.page_count().await, 0);
    // Without a token, nothing is rendered either.
    let response =
        browser.post_form("/create", &[("title", "Draft"), ("content", "x"), ("preview", "1")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn create_has_cancel_and_markdown_help(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("writer").await;
    let (_, html) = browser.get_text("/create?title=From%20a%20red%20link").await;
    assert!(html.contains(r#"value="From a red link""#), "{html}");
    assert!(html.contains(r#"<a href="/" class="btn-link">Cancel</a>"#), "{html}");
    assert!(html.contains(r#"id="preview-button""#), "{html}");
    assert!(html.contains(r#"href="/help/markdown""#), "{html}");
    // The title is given: the text gets the focus.
    assert!(html.contains("required autofocus aria-describedby=\"content-hint\""), "{html}");
    let (status, help) = app.new_browser().get_text("/help/markdown").await;
    assert_eq!(status, StatusCode::OK);
    for shown in ["<strong>bold</strong>", "<table", "<math", r#"href="/create?title=Home""#, "<pre"] {
        assert!(
            help.contains(shown) || (shown.starts_with("href") && help.contains(r#"href="/wiki/Home""#)),
            "{shown}: {help}"
        );
    }
}

// ----- conflicts ----------------------------------------------------------------------------

const ANCESTOR: &str = "Intro line\n\nMiddle paragraph\n\nClosing line\n";

/// Two members edit one page: `theirs` is saved first; `mine` then meets it.
async fn conflicted(backend: Backend, theirs: &str, mine: &str) -> (TestApp, Browser, reqwest::Response) {
    let app = spawn_app(backend).await;
    let me = app.member("me").await.clone();
    me.create_page("Shared", ANCESTOR).await;
    let other = another_member(&app, "other").await;
    let mine_opened = open_editor(&me, "Shared").await;
    assert_redirects_to(&crate::wiki::edit(&other, "Shared", theirs, "theirs").await, "/wiki/Shared");
    let response = save(&me, "Shared", &mine_opened, mine, "mine").await;
    (app, me, response)
}

async fn a_conflict_shows_both_versions_in_plain_language(backend: Backend) {
    let theirs = "Intro line\n\nMiddle paragraph, as other wrote it\n\nClosing line\n";
    let mine = "Intro line, improved by me\n\nMiddle paragraph, as I wrote it\n\nClosing line\n";
    let (app, _me, response) = conflicted(backend, theirs, mine).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    for marker in ["<<<<<<<", ">>>>>>>", "=======", "|||||||", "ours", "theirs\n"] {
        assert!(!html.contains(marker), "{marker:?} reaches a person: {html}");
    }
    assert!(html.contains("<h3 id=\"mine-"), "{html}");
    assert!(html.contains(">Your version</h3>"), "{html}");
    assert!(html.contains("Saved meanwhile by other at "), "{html}");
    for label in ["Use mine", "Use theirs", "Keep both"] {
        assert!(html.contains(label), "{label}: {html}");
    }
    assert!(html.contains("Region 1 of 1"), "{html}");
    // The part only I changed is already merged, and my whole text is there to copy.
    let fields = conflict_fields(&html);
    assert!(
        fields.iter().any(|(k, v)| k.starts_with("part") && v.contains("Intro line, improved by me")),
        "{fields:?}"
    );
    assert!(html.contains("Middle paragraph, as I wrote it"), "{html}");
    assert!(html.contains("Middle paragraph, as other wrote it"), "{html}");
    assert!(html.contains(&format!("readonly>{}</textarea>", mine)), "{html}");
    // Nothing was saved.
    assert_eq!(stored(&app, "Shared").await.content, theirs);
}

async fn a_conflict_resolved_with_the_choices_saves_them(backend: Backend) {
    let theirs = "Intro line\n\nMiddle paragraph, as other wrote it\n\nClosing line\n";
    let mine = "Intro line, improved by me\n\nMiddle paragraph, as I wrote it\n\nClosing line\n";
    for (choice, expected) in [
        ("mine", mine.to_owned()),
        ("theirs", "Intro line, improved by me\n\nMiddle paragraph, as other wrote it\n\nClosing line\n".to_owned()),
        (
            "both",
            "Intro line, improved by me\n\nMiddle paragraph, as other wrote it\nMiddle paragraph, as I wrote it\n\nClosing line\n"
                .to_owned(),
        ),
    ] {
        let (app, me, response) = conflicted(backend, theirs, mine).await;
        let html = response.text().await.unwrap();
        let mut fields = conflict_fields(&html);
        let region = fields.iter().find(|(k, _)| k.starts_with("mine")).unwrap().0.trim_start_matches("mine").to_owned();
        fields.push((format!("choice{region}"), choice.to_owned()));
        fields.push(("summary".into(), "resolved".into()));
        let response = post_fields(&me, "/wiki/Shared/edit", &fields).await;
        assert_redirects_to(&response, "/wiki/Shared");
        assert_eq!(stored(&app, "Shared").await.content, expected, "{choice}");
    }
}

async fn an_incomplete_or_forged_resolution_saves_nothing(backend: Backend) {
    let theirs = "Intro line\n\nMiddle paragraph, as other wrote it\n\nClosing line\n";
    let mine = "Intro line\n\nMiddle paragraph, as I wrote it\n\nClosing line\n";
    let (app, me, response) = conflicted(backend, theirs, mine).await;
    let html = response.text().await.unwrap();
    let fields = conflict_fields(&html);
    // No choice made: the same choices come back, marked, and nothing is saved.
    let response = post_fields(&me, "/wiki/Shared/edit", &fields).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = response.text().await.unwrap();
    assert!(again.contains("Choose which version to keep for every region: 1 left"), "{again}");
    assert!(again.contains(r#"aria-invalid="true" aria-describedby="region-1-error""#), "{again}");
    assert!(again.contains("Middle paragraph, as I wrote it"), "{again}");
    assert_eq!(stored(&app, "Shared").await.content, theirs);
    // Malformed forms are refused with a clear message.
    let region =
        fields.iter().find(|(k, _)| k.starts_with("mine")).unwrap().0.trim_start_matches("mine").to_owned();
    let with = |changes: &[(&str, &str)]| {
        let mut changed: Vec<(String, String)> =
            fields.iter().filter(|(k, _)| !changes.iter().any(|(c, _)| c == k)).cloned().collect();
        changed.extend(
            changes.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        changed
    };
    let choice = format!("choice{region}");
    let mine_field = format!("mine{region}");
    for (what, form) in [
        ("an unknown choice", with(&[(choice.as_str(), "everything")])),
        ("no part count", with(&[("parts", "")])),
        ("a part count past the parts", with(&[("parts", "999")])),
        ("a zero part count", with(&[("parts", "0")])),
        ("a region without its text", with(&[(mine_field.as_str(), ""), (choice.as_str(), "mine")])),
    ] {
        let response = post_fields(&me, "/wiki/Shared/edit", &form).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(status.is_client_error(), "{what}: {status}");
        assert_ne!(status, StatusCode::SEE_OTHER, "{what}");
        if what != "no part count" {
            assert!(body.contains("The conflict form is incomplete"), "{what}: {body}");
        }
        assert_eq!(stored(&app, "Shared").await.content, theirs, "{what}");
    }
    // Without the token.
    let mut no_token = with(&[(choice.as_str(), "mine")]);
    no_token.retain(|(k, _)| k != "csrf_token");
    assert_eq!(post_fields(&me, "/wiki/Shared/edit", &no_token).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(stored(&app, "Shared").await.content, theirs);
}

// ----- pages from the Flask wiki ------------------------------------------------------------

/// What a reader gets of rendered HTML: its text, links, list items, table cells and
/// emphasised words (tags read by a small scanner over the sanitizer's well-formed output).
#[derive(Debug, PartialEq, Default)]
struct Reading {
    text: String,
    links: Vec<String>,
    items: Vec<String>,
    cells: Vec<String>,
    emphasis: Vec<String>,
}

fn reading(html: &str) -> Reading {
    let decode = |s: &str| {
        unescape(s)
            .replace("&amp;", "&")
            .replace("&#38;", "&")
            .replace("&nbsp;", "\u{a0}")
            .replace("&copy;", "©")
    };
    let mut reading = Reading::default();
    let mut open: Vec<(String, String)> = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        match rest.find('<') {
            Some(0) => {
                let end = rest.find('>').unwrap();
                let tag = &rest[1..end];
                rest = &rest[end + 1..];
                if let Some(name) = tag.strip_prefix('/') {
                    if let Some(at) = open.iter().rposition(|(n, _)| n == name) {
                        let (name, text) = open.remove(at);
                        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                        match name.as_str() {
                            "li" => reading.items.push(text),
                            "td" | "th" => reading.cells.push(text),
                            "strong" | "em" | "b" | "i" => reading.emphasis.push(text),
                            _ => {}
                        }
                    }
                    continue;
                }
                let name = tag.split_whitespace().next().unwrap_or_default().trim_end_matches('/').to_owned();
                // A heading's own anchor (`#`) is the renderer's, not the page's.
                if name == "a" && tag.contains(r#"class="anchor""#) {
                    rest = &rest[rest.find("</a>").unwrap() + "</a>".len()..];
                    continue;
                }
                if name == "a" {
                    let href = tag.split(r#"href=""#).nth(1).map(|h| decode(&h[..h.find('"').unwrap()]));
                    reading.links.extend(href);
                }
                if !tag.ends_with('/') && !["br", "hr", "img", "input"].contains(&name.as_str()) {
                    open.push((name, String::new()));
                }
                // Block boundaries separate words.
                reading.text.push(' ');
            }
            found => {
                let end = found.unwrap_or(rest.len());
                let text = decode(&rest[..end]);
                reading.text.push_str(&text);
                for (_, inner) in &mut open {
                    inner.push_str(&text);
                }
                rest = &rest[end..];
            }
        }
    }
    reading.text = reading.text.split_whitespace().collect::<Vec<_>>().join(" ");
    reading
}

async fn flask_pages_open_in_the_editor_as_markdown_that_renders_the_same(backend: Backend) {
    let app = spawn_app(backend).await;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flask");
    quire::import::import_flask(
        &app.state.db,
        &app.avatar_dir(),
        &fixture.join("database.db"),
        &fixture.join("uploads/avatars"),
        &quire::import::Quiet,
    )
    .await
    .unwrap();
    let browser = app.member("reviewer").await;
    let pages = page::Entity::find().all(&app.state.db.read).await.unwrap();
    assert!(pages.len() >= 20, "the fixture's pages came in: {}", pages.len());
    let mut checked = (0, 0, 0, 0);
    for found in pages {
        assert_eq!(found.format, page::FORMAT_HTML, "{}", found.title);
        let editor = open_editor(browser, &found.title).await;
        let markdown = editor.content;
        for tag in ["<p>", "<h2>", "<ul>", "<li>", "<table>", "<strong>", "<em>", "<blockquote>", "<script"] {
            assert!(!markdown.contains(tag), "{}: raw {tag} in the editor: {markdown}", found.title);
        }
        let original = reading(&quire::render::sanitize(&found.content).unwrap());
        // The table of contents a long page gains is Quire's, not the page's text.
        let rendered = quire::render::markdown(&markdown).unwrap();
        let converted = reading(quire::render::split_toc(&rendered).1);
        assert_eq!(converted, original, "{}: the Markdown {markdown:?}", found.title);
        checked.0 += original.links.len();
        checked.1 += original.items.len();
        checked.2 += original.cells.len();
        checked.3 += original.emphasis.len();
        // Saving it unchanged stores Markdown that shows the same.
        let response =
            save(browser, &found.title, &open_editor(browser, &found.title).await, &markdown, "").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", found.title);
        let saved = stored(&app, &found.title).await;
        assert_eq!(saved.format, page::FORMAT_MARKDOWN, "{}", found.title);
        assert_eq!(reading(quire::render::split_toc(&saved.html).1), original, "{}", found.title);
    }
    assert!(
        checked.0 >= 1 && checked.1 >= 3 && checked.2 >= 4 && checked.3 >= 2,
        "the fixture exercises each: {checked:?}"
    );
}

// ----- first steps --------------------------------------------------------------------------

async fn an_empty_wiki_invites_members_and_visitors_to_start(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, html) = app.new_browser().get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<a href="/login?next=/create" class="btn btn-primary">Log in to start writing</a>"#),
        "{html}"
    );
    assert!(!html.contains("No pages yet"), "{html}");
    let member = app.member("first").await;
    let (_, html) = member.get_text("/").await;
    assert!(
        html.contains(r#"<a href="/create" class="btn btn-primary">Create the first page</a>"#),
        "{html}"
    );
    member.create_page("One", "text").await;
    let (_, html) = member.get_text("/").await;
    assert!(!html.contains("Create the first page"), "{html}");
    assert!(html.contains(r#"<li><a href="/wiki/One">One</a></li>"#), "{html}");
}

async fn the_first_member_is_told_they_administer_the_wiki(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.new_browser();
    let response = first.register("founder", PASSWORD).await;
    assert_redirects_to(&response, "/login");
    let (_, html) = follow(&first, response).await;
    assert!(
        html.contains(r#"id="username" name="username" value="founder""#),
        "the name is filled in: {html}"
    );
    let (_, again) = first.get_text("/login").await;
    assert!(again.contains(r#"name="username" value="""#), "once: {again}");
    let shown = flashes(&html);
    assert_eq!(shown[0], "Registration successful! Please log in.");
    assert!(shown[1].contains("first member, so you administer it"), "{shown:?}");
    let second = app.new_browser();
    let (_, html) = follow(&second, second.register("later", PASSWORD).await).await;
    assert_eq!(flashes(&html), ["Registration successful! Please log in."]);
}

async fn login_links_come_back_with_the_query(backend: Backend) {
    let app = spawn_app(backend).await;
    let visitor = app.new_browser();
    let (_, html) = visitor.get_text("/search?q=tea%20cups&page=2").await;
    let expected = format!("/login?next={}", quire::urls::encode_query("/search?q=tea%20cups&page=2"));
    assert!(
        html.contains(&format!(r#"<a href="{}" class="nav-link">Login</a>"#, expected.replace('&', "&amp;"))),
        "{html}"
    );
    // The login page keeps it, and logging in goes there, query and all.
    visitor.register("reader", PASSWORD).await;
    let (_, form) = visitor.get_text(&expected).await;
    let token = csrf_in(&form).unwrap();
    let action = form.split(r#"<form method="post" action=""#).nth(1).unwrap();
    let action = unescape(&action[..action.find('"').unwrap()]).replace("&amp;", "&");
    let response = visitor
        .post_form(&action, &[("username", "reader"), ("password", PASSWORD), ("csrf_token", &token)])
        .await;
    assert_redirects_to(&response, "/search?q=tea%20cups&page=2");
    // A red link's title survives the detour through the login page.
    let (_, missing) = app.new_browser().get_text("/wiki/Not%20written").await;
    assert!(missing.contains(r#"href="/create?title=Not%20written""#), "{missing}");
    assert_login_redirect(
        &app.new_browser().get("/create?title=Not%20written").await,
        "/create?title=Not%20written",
    );
}

async fn search_counts_its_results_and_shows_the_rendered_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("writer").await;
    browser
        .create_page("Teapots", "## Porcelain teapots\n\n| kind | teapot |\n|---|---|\n| **blue** | yes |\n")
        .await;
    browser.create_page("Cups", "Cups go with a teapot.").await;
    let (status, html) = browser.get_text("/search?q=teapot").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<title>2 results for ‘teapot’ · Quire</title>"), "{html}");
    assert!(html.contains("2 results for ‘teapot’</p>"), "{html}");
    let snippets: Vec<&str> =
        html.split(r#"<p class="snippet">"#).skip(1).map(|s| &s[..s.find("</p>").unwrap()]).collect();
    assert_eq!(snippets.len(), 2, "{html}");
    for snippet in snippets {
        for mark in ["|---|", "## ", "**", "|"] {
            assert!(!snippet.contains(mark), "{mark:?} in {snippet}");
        }
    }
    let (_, html) = browser.get_text("/search?q=porcelain").await;
    assert!(html.contains("<title>1 result for ‘porcelain’ · Quire</title>"), "{html}");
    let (_, html) = browser.get_text("/search?q=zebra").await;
    assert!(html.contains("0 results for ‘zebra’"), "{html}");
    let (_, html) = browser.get_text("/search?q=").await;
    assert!(html.contains("<title>Search · Quire</title>"), "{html}");
}

async fn admins_choose_a_main_page_shown_above_the_list(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    admin.create_page("Welcome", "# Welcome\n\nStart **here**.").await;
    admin.create_page("Other", "text").await;
    let token = admin.csrf("/admin/settings").await;
    let response =
        admin.post_form("/admin/main-page", &[("main_page", " Welcome "), ("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/admin/settings");
    assert_eq!(setting::main_page(&app.state.db.read).await.unwrap().as_deref(), Some("Welcome"));
    let (_, html) = app.new_browser().get_text("/").await;
    let main = html.find("<strong>here</strong>").unwrap_or_else(|| panic!("the main page is shown: {html}"));
    assert!(main < html.find(r#"<ul class="page-list">"#).unwrap(), "above the list");
    assert!(html.contains("<title>Welcome · Quire</title>"), "{html}");
    assert_eq!(count(&html, ">Welcome</"), 2, "its title once, and its line in the list: {html}");
    // The audit log has it; an empty value removes it.
    let (_, audit) = admin.get_text("/admin/audit").await;
    assert!(audit.contains("main_page"), "{audit}");
    let response = admin.post_form("/admin/main-page", &[("main_page", ""), ("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/admin/settings");
    assert_eq!(setting::main_page(&app.state.db.read).await.unwrap(), None);
    let (_, html) = app.new_browser().get_text("/").await;
    assert!(!html.contains("<strong>here</strong>"), "{html}");
}

async fn a_main_page_that_does_not_exist_is_refused(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let editor = member_with_role(&app, &admin, "editor", "editor").await;
    admin.create_page("Real", "text").await;
    let token = admin.csrf("/admin/settings").await;
    for (value, message) in [("Ghost", "There is no page titled “Ghost”."), ("a/../b\u{202E}", "")] {
        let response =
            admin.post_form("/admin/main-page", &[("main_page", value), ("csrf_token", &token)]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{value}");
        let html = response.text().await.unwrap();
        assert!(html.contains(message), "{html}");
        assert!(
            html.contains(r#"id="main_page" name="main_page""#) && html.contains(r#"aria-invalid="true""#),
            "{html}"
        );
        assert_eq!(setting::main_page(&app.state.db.read).await.unwrap(), None);
    }
    let response = editor
        .post_form(
            "/admin/main-page",
            &[("main_page", "Real"), ("csrf_token", &editor.csrf("/profile").await)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = admin.post_form("/admin/main-page", &[("main_page", "Real")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(setting::main_page(&app.state.db.read).await.unwrap(), None);
}

async fn recent_changes_group_by_day_with_size_and_diff(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("writer").await;
    browser.create_page("Growing", "12345").await;
    crate::wiki::edit(browser, "Growing", "1234567890", "more").await;
    crate::wiki::edit(browser, "Growing", "123", "less").await;
    let (status, html) = browser.get_text("/recent").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count(&html, r#"<h2 class="changes-day">"#), 1, "one day: {html}");
    let revisions = crate::wiki::revisions_of(&app, "Growing").await;
    let ids: Vec<i32> = revisions.iter().map(|r| r.id).collect();
    assert!(html.contains(r#"<span class="size-down" title="size change in bytes">−7</span>"#), "{html}");
    assert!(html.contains(r#"<span class="size-up" title="size change in bytes">+5</span>"#), "{html}");
    let newest = *ids.iter().max().unwrap();
    let middle = ids.iter().filter(|id| **id != newest).max().copied().unwrap();
    assert!(
        html.contains(&format!(r#"href="/wiki/Growing/diff?from={middle}&#38;to={newest}">diff</a>"#)),
        "{html}"
    );
    // The diff link works.
    let (status, _) = browser.get_text(&format!("/wiki/Growing/diff?from={middle}&to={newest}")).await;
    assert_eq!(status, StatusCode::OK);
    // The first revision has no diff, only its size.
    let first = &html[html.rfind("Growing</a>").unwrap()..];
    assert!(!first[..first.find("</li>").unwrap()].contains("diff"), "{first}");
}

// ----- accessibility markup ------------------------------------------------------------------

async fn pages_are_labelled_for_assistive_technology(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("writer").await;
    browser
        .create_page(
            "Tasks",
            "# One\n\n## Two\n\n## Three\n\n- [x] done\n- [ ] todo\n\n```\nwide code\n```\n",
        )
        .await;
    let (_, html) = browser.get_text("/wiki/Tasks").await;
    assert!(html.contains(r##"<a class="skip-link" href="#main">Skip to content</a>"##), "{html}");
    assert!(html.contains(r#"id="main" tabindex="-1""#), "{html}");
    for label in ["Main", "Colour scheme", "Page actions", "Contents"] {
        assert!(html.contains(&format!(r#"aria-label="{label}""#)), "{label}: {html}");
    }
    for nav in html.split("<nav").skip(1) {
        let tag = &nav[..nav.find('>').unwrap()];
        assert!(tag.contains("aria-label="), "every navigation landmark is labelled: <nav{tag}>");
    }
    assert!(html.contains(r#"aria-label="Done""#) && html.contains(r#"aria-label="Not done""#), "{html}");
    assert!(
        html.contains(r##"<a href="#h-two" aria-label="Link to heading 'Two'" class="anchor""##),
        "{html}"
    );
    assert!(html.contains(r#"rel="noopener noreferrer nofollow">#</a></h2>"#), "anchors show a #: {html}");
    assert!(html.contains("aria-label=\"Link to heading"), "anchors are named: {html}");
    assert!(!html.contains(r#"class="anchor"></a>"#), "no empty heading anchor: {html}");
    assert!(html.contains(r#"<pre tabindex="0""#) || html.contains(r#"tabindex="0"><code"#), "{html}");
    assert!(html.contains(r#"<details open=""><summary>Contents</summary>"#), "{html}");
}

async fn field_errors_are_tied_to_their_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("writer").await;
    let token = browser.csrf("/create").await;
    let response =
        browser.post_form("/create", &[("title", ""), ("content", "text"), ("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"required autofocus aria-invalid="true" aria-describedby="title-error">"#),
        "the invalid title has the focus and names its error: {html}"
    );
    assert!(html.contains(r#"<div id="title-error" class="field-errors">"#), "{html}");
    assert!(
        !html.contains(r#"id="content" name="content" rows="16" required autofocus"#),
        "one autofocus: {html}"
    );
    assert_eq!(app.page_count().await, 0);
}
