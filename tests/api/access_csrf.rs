//! Every POST route of the router (as `quire::routes::post_routes()` lists them) refuses a
//! missing, forged or foreign CSRF token with 403, even for an admin, and changes nothing.

use reqwest::StatusCode;

use crate::access_helpers::*;
use crate::access_members_only::revoke_ids;
use crate::helpers::*;

/// A wiki with a page (two revisions), a member, an invitation; the admin's browser and the
/// values that fill every route's parameters.
async fn populated(backend: Backend) -> (TestApp, Browser, Browser, RouteValues) {
    let (app, admin) = wiki_with_admin(backend).await;
    let editor = member_with_role(&app, &admin, "target", "editor").await;
    editor.create_page("Target page", "first").await;
    crate::wiki::edit(&editor, "Target page", "second", "edit").await;
    let deleted = "Deleted page";
    editor.create_page(deleted, "gone").await;
    assert_redirects_to(&crate::wiki::delete(&admin, deleted).await, "/");
    invite(&admin, 1, 7, "editor").await;
    let (_, invites) = admin.get_text("/admin/invites").await;
    let revision = crate::wiki::revisions_of(&app, "Target page").await.last().unwrap().id.to_string();
    let values = RouteValues {
        title: "Target page".into(),
        revision,
        name: "target".into(),
        invite: revoke_ids(&invites).remove(0),
    };
    (app, admin, editor, values)
}

/// Routes whose forms are multipart (uploads): they get a multipart body.
const MULTIPART: [&str; 1] = ["/profile"];

/// Plausible fields for any form, without a token.
fn fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("title", "Planted page"),
        ("content", "planted content"),
        ("summary", "planted"),
        ("new_title", "Planted title"),
        ("role", "reader"),
        ("read_access", "members"),
        ("registration", "closed"),
        ("username", "planted-user"),
        ("password", PASSWORD),
        ("confirm_password", PASSWORD),
        ("uses", "3"),
        ("expires_in_days", "2"),
    ]
}

/// The route with real values; the restore route gets the deleted page.
fn path_for(route: &str, values: &RouteValues) -> String {
    let path = fill_route(route, values);
    if route.ends_with("/restore") { path.replace("Target%20page", "Deleted%20page") } else { path }
}

async fn post_every_route(admin: &Browser, values: &RouteValues, token: Option<&str>) -> usize {
    let mut posted = 0;
    for route in post_routes() {
        let path = path_for(&route, values);
        let mut form = fields();
        if let Some(token) = token {
            form.push(("csrf_token", token));
        }
        let response = if MULTIPART.contains(&route.as_str()) {
            let mut multipart = reqwest::multipart::Form::new();
            for (name, value) in form {
                multipart = multipart.text(name.to_owned(), value.to_owned());
            }
            let image = reqwest::multipart::Part::bytes(crate::profile::png(8, 8)).file_name("a.png");
            admin
                .client
                .post(admin.url(&path))
                .multipart(multipart.part("avatar", image))
                .send()
                .await
                .unwrap()
        } else {
            admin.post_form(&path, &form).await
        };
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path} with token {token:?}");
        posted += 1;
    }
    posted
}

async fn every_post_route_refuses_a_missing_token_with_403(backend: Backend) {
    let (app, admin, _editor, values) = populated(backend).await;
    let before = dump(&app).await;
    let posted = post_every_route(&admin, &values, None).await;
    assert!(posted >= 19, "{posted} routes");
    // The upload form is multipart: without a token it is refused too.
    let form = reqwest::multipart::Form::new()
        .part("avatar", reqwest::multipart::Part::bytes(crate::profile::png(8, 8)).file_name("a.png"));
    let response = admin.client.post(admin.url("/profile")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "multipart /profile without a token");
    assert_same_dump(&before, &dump(&app).await, "POSTs without a token");
    assert!(admin.is_logged_in().await, "the logout without a token did not log out");
}

async fn every_post_route_refuses_a_forged_or_foreign_token_with_403(backend: Backend) {
    let (app, admin, editor, values) = populated(backend).await;
    let before = dump(&app).await;
    post_every_route(&admin, &values, Some("forged-token-of-the-right-shape-0123456789abcdef")).await;
    let foreign = token(&editor).await;
    post_every_route(&admin, &values, Some(&foreign)).await;
    let visitor_token = visitor_token(&app.new_browser()).await;
    post_every_route(&admin, &values, Some(&visitor_token)).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", foreign)
        .part("avatar", reqwest::multipart::Part::bytes(crate::profile::png(8, 8)).file_name("a.png"));
    let response = admin.client.post(admin.url("/profile")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "multipart /profile with another member's token");
    assert_same_dump(&before, &dump(&app).await, "POSTs with bad tokens");
    assert!(admin.is_logged_in().await && editor.is_logged_in().await);
}

async fn every_listed_route_is_really_routed_for_post(backend: Backend) {
    let (_app, admin, _editor, values) = populated(backend).await;
    // With a valid token, no listed route is unknown to the router or refuses the method.
    let token = token(&admin).await;
    for route in post_routes() {
        if matches!(route.as_str(), "/logout")
            || route.contains("delete")
            || route.contains("block")
            || route.ends_with("/{id}/end")
        {
            continue; // would end the admin's session or remove the values the others need
        }
        let path = path_for(&route, &values);
        let response = if MULTIPART.contains(&route.as_str()) {
            let form = reqwest::multipart::Form::new().text("csrf_token", token.clone());
            admin.client.post(admin.url(&path)).multipart(form).send().await.unwrap()
        } else {
            admin.post_form(&path, &[("csrf_token", token.as_str())]).await
        };
        let status = response.status();
        let body = response.text().await.unwrap();
        // A handler's own 404 (a link whose token is not valid) names what is missing; the
        // router's says the page does not exist.
        let unrouted = status == StatusCode::NOT_FOUND && body.contains("doesn’t exist");
        assert!(
            !unrouted && status != StatusCode::METHOD_NOT_ALLOWED && status != StatusCode::FORBIDDEN,
            "POST {path} with a valid token: {status}"
        );
        assert!(status.as_u16() < 500, "POST {path}: {status}");
    }
}

crate::tests![
    every_post_route_refuses_a_missing_token_with_403,
    every_post_route_refuses_a_forged_or_foreign_token_with_403,
    every_listed_route_is_really_routed_for_post,
];
