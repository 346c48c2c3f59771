//! Register and log in: validation, duplicates, races, and the same answer for unknown users.

use reqwest::StatusCode;

use crate::helpers::*;

async fn registering_then_logging_in_gives_a_working_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = &app.browser;
    assert!(!browser.is_logged_in().await);

    let response = browser.register("alice", PASSWORD).await;
    assert_redirects_to(&response, "/login");
    let (status, page) = follow(browser, response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Registration successful! Please log in."), "{page}");
    assert!(page.contains("flash-success"));

    let response = browser.login("alice", PASSWORD).await;
    assert_redirects_to(&response, "/");
    let (_, home) = follow(browser, response).await;
    assert!(home.contains("Login successful!"));
    assert!(home.contains("alice"), "the navigation shows the username");
    assert!(home.contains("Logout"));
    assert!(browser.is_logged_in().await);
    assert_eq!(app.user_count().await, 1);
}

async fn the_stored_password_is_an_argon2id_hash_with_argon2_cffi_parameters(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("bob", PASSWORD).await;
    let user = quire::models::user::find_by_username(&app.state.db.read, "bob").await.unwrap().unwrap();
    assert!(user.password_hash.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"), "{}", user.password_hash);
    assert!(!user.password_hash.contains(PASSWORD));
}

async fn invalid_registrations_show_a_message_per_field_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let long_name = "n".repeat(51);
    let long_password = "p".repeat(1025);
    let cases: [(&str, &str, &str, &str); 7] = [
        ("", PASSWORD, PASSWORD, "Username is required."),
        ("   ", PASSWORD, PASSWORD, "Username is required."),
        (&long_name, PASSWORD, PASSWORD, "at most 50 characters"),
        ("bad\u{7}name", PASSWORD, PASSWORD, "control characters"),
        ("carol", "short", "short", "at least 8 characters"),
        ("carol", &long_password, &long_password, "at most 1024 characters"),
        ("carol", PASSWORD, "something else entirely", "Passwords must match."),
    ];
    for (username, password, confirm, message) in cases {
        let response = app.browser.register_confirmed(username, password, confirm).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{username:?} / {message}");
        let body = response.text().await.unwrap();
        assert!(body.contains(message), "expected {message:?} in the page");
        assert!(body.contains("name=\"csrf_token\""), "the form is shown again");
    }
    assert_eq!(app.user_count().await, 0);
}

async fn the_form_is_shown_again_with_the_username_typed(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.browser.register_confirmed("<dave>", PASSWORD, "mismatch!!").await;
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"value="&#60;dave&#62;""#) || body.contains(r#"value="&lt;dave&gt;""#), "{body}");
    assert!(!body.contains(PASSWORD), "passwords are never echoed");
}

async fn a_duplicate_username_gets_a_message_and_no_second_account(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_redirects_to(&app.browser.register("erin", PASSWORD).await, "/login");
    let response = app.browser.register("erin", "another password").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await.unwrap().contains("Username already exists!"));
    assert_eq!(app.user_count().await, 1);
    // The first password still works: nothing was overwritten.
    assert_redirects_to(&app.browser.login("erin", PASSWORD).await, "/");
}

async fn usernames_are_case_and_accent_sensitive_on_every_backend(backend: Backend) {
    let app = spawn_app(backend).await;
    for name in ["Zoe", "zoe", "zoé", "Zoé"] {
        assert_redirects_to(&app.browser.register(name, PASSWORD).await, "/login");
    }
    assert_eq!(app.user_count().await, 4);
    let browser = app.new_browser();
    assert_redirects_to(&browser.login("zoé", PASSWORD).await, "/");
    let (_, profile) = browser.get_text("/profile").await;
    assert!(profile.contains("Welcome, zoé"));
}

async fn racing_registrations_of_one_name_make_exactly_one_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let browser = app.new_browser();
        tasks.push(tokio::spawn(async move {
            let token = browser.csrf("/register").await;
            let password = format!("password number {i}");
            browser
                .post_form(
                    "/register",
                    &[
                        ("username", "racer"),
                        ("password", &password),
                        ("confirm_password", &password),
                        ("csrf_token", &token),
                    ],
                )
                .await
                .status()
        }));
    }
    let mut created = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(status == StatusCode::SEE_OTHER || status == StatusCode::CONFLICT, "got {status}");
        if status == StatusCode::SEE_OTHER {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.user_count().await, 1);
}

async fn a_wrong_password_and_an_unknown_user_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("frank", PASSWORD).await;
    let wrong = app.browser.login("frank", "not the password").await;
    let wrong_status = wrong.status();
    let wrong_body = wrong.text().await.unwrap();
    let unknown = app.browser.login("nobody-at-all", "not the password").await;
    let unknown_status = unknown.status();
    let unknown_body = unknown.text().await.unwrap();

    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_status, unknown_status);
    assert!(wrong_body.contains("Invalid username or password."));
    assert!(unknown_body.contains("Invalid username or password."));
    assert!(!app.browser.is_logged_in().await);
}

async fn an_empty_login_form_names_the_missing_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.browser.csrf("/login").await;
    let response = app.browser.post_form("/login", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.text().await.unwrap();
    assert!(body.contains("Username is required."));
    assert!(body.contains("Password is required."));
}

async fn login_sends_the_visitor_back_to_the_page_that_asked(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("grace", PASSWORD).await;
    let response = app.browser.get("/create").await;
    assert_redirects_to(&response, "/login?next=/create");
    let (_, login_page) = follow(&app.browser, response).await;
    assert!(login_page.contains("You must be logged in to access this page."));

    let token = app.browser.csrf("/login?next=/create").await;
    let response = app
        .browser
        .post_form(
            "/login?next=/create",
            &[("username", "grace"), ("password", PASSWORD), ("csrf_token", &token)],
        )
        .await;
    assert_redirects_to(&response, "/create");
}

async fn login_never_sends_the_visitor_to_another_site(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("heidi", PASSWORD).await;
    for next in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"] {
        let browser = app.new_browser();
        let path = format!("/login?next={}", quire::urls::encode_query(next));
        let token = browser.csrf(&path).await;
        let response = browser
            .post_form(&path, &[("username", "heidi"), ("password", PASSWORD), ("csrf_token", &token)])
            .await;
        assert_redirects_to(&response, "/");
    }
}

async fn the_navigation_shows_login_links_to_visitors_and_the_member_menu_to_members(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, home) = app.browser.get_text("/").await;
    assert!(home.contains(r#"href="/register""#) && home.contains(r#"href="/login""#));
    assert!(!home.contains("Logout"));
    app.member("ivan").await;
    let (_, home) = app.browser.get_text("/").await;
    assert!(home.contains("ivan") && home.contains(r#"href="/create""#) && home.contains("Logout"));
    assert!(!home.contains(r#"href="/register""#));
}

async fn hashes_written_by_the_flask_app_log_in(backend: Backend) {
    #[derive(serde::Deserialize)]
    struct Vector {
        password: String,
        hash: String,
    }
    let app = spawn_app(backend).await;
    let vectors: Vec<Vector> =
        serde_json::from_str(include_str!("../fixtures/argon2_cffi_vectors.json")).unwrap();
    let vector = &vectors[0];
    let user = quire::models::user::create(
        &app.state.db.write,
        "from-flask",
        &vector.hash,
        quire::access::Role::Editor,
    )
    .await
    .unwrap();
    assert!(user.id > 0);
    assert_redirects_to(&app.browser.login("from-flask", &vector.password).await, "/");
}

crate::tests![
    registering_then_logging_in_gives_a_working_session,
    the_stored_password_is_an_argon2id_hash_with_argon2_cffi_parameters,
    invalid_registrations_show_a_message_per_field_and_store_nothing,
    the_form_is_shown_again_with_the_username_typed,
    a_duplicate_username_gets_a_message_and_no_second_account,
    usernames_are_case_and_accent_sensitive_on_every_backend,
    racing_registrations_of_one_name_make_exactly_one_account,
    a_wrong_password_and_an_unknown_user_get_the_same_answer,
    an_empty_login_form_names_the_missing_fields,
    login_sends_the_visitor_back_to_the_page_that_asked,
    login_never_sends_the_visitor_to_another_site,
    the_navigation_shows_login_links_to_visitors_and_the_member_menu_to_members,
    hashes_written_by_the_flask_app_log_in,
];
