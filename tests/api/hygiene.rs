//! HTTP hygiene: masked CSRF tokens (BREACH), no caching of members' pages, `__Host-` cookies
//! behind https, percent-encoded `Location` headers, and images from other sites blocked by the
//! Content-Security-Policy unless the operator allows their hosts.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, COOKIE, HeaderMap, LOCATION, SET_COOKIE};

use crate::helpers::*;

/// The raw `Location` of a response (it may not be valid UTF-8 if the server got it wrong).
fn raw_location(headers: &HeaderMap) -> String {
    String::from_utf8_lossy(headers.get(LOCATION).expect("a Location header").as_bytes()).into_owned()
}

/// A `Location` that is a URI: visible ASCII only, nothing RFC 3986 excludes.
#[track_caller]
fn assert_uri(location: &str) {
    assert!(
        location.bytes().all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b)),
        "not percent-encoded: {location:?}"
    );
}

fn csp_directive(headers: &HeaderMap, name: &str) -> String {
    let csp = headers.get("content-security-policy").expect("a CSP").to_str().unwrap();
    csp.split(';')
        .map(str::trim)
        .find(|d| d.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {csp}"))
        .to_owned()
}

// ----- CSRF tokens --------------------------------------------------------------------------

async fn every_form_token_is_masked_afresh_and_each_one_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    // A visitor: two views of the form, two different tokens, the older one still good.
    let visitor = app.new_browser();
    let first = visitor.csrf("/register").await;
    let second = visitor.csrf("/register").await;
    assert_ne!(first, second, "the token is masked per response");
    assert_eq!(first.len(), 128);
    let form = |token: &str| {
        vec![
            ("username".to_owned(), "masked".to_owned()),
            ("password".to_owned(), PASSWORD.to_owned()),
            ("confirm_password".to_owned(), PASSWORD.to_owned()),
            ("csrf_token".to_owned(), token.to_owned()),
        ]
    };
    let response = visitor.client.post(visitor.url("/register")).form(&form(&first)).send().await.unwrap();
    assert_redirects_to(&response, "/login");

    // A member: the token in the layout and the one in the form differ on every page.
    app.member("maskmember").await;
    let tokens: Vec<String> = [
        app.browser.csrf("/create").await,
        app.browser.csrf("/create").await,
        app.browser.csrf("/profile").await,
    ]
    .into();
    assert!(tokens[0] != tokens[1] && tokens[1] != tokens[2] && tokens[0] != tokens[2], "{tokens:?}");
    for (i, token) in tokens.iter().enumerate() {
        let title = format!("Masked {i}");
        let response = app
            .browser
            .post_form("/create", &[("title", &title), ("content", "x"), ("csrf_token", token)])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "token {i}");
    }

    // The unmasked secret (what every page used to carry) is refused, and nothing is created.
    let bytes = hex::decode(&tokens[0]).unwrap();
    let unmasked: Vec<u8> = bytes[32..].iter().zip(&bytes[..32]).map(|(m, k)| m ^ k).collect();
    let response = app
        .browser
        .post_form(
            "/create",
            &[("title", "Unmasked"), ("content", "x"), ("csrf_token", &hex::encode(unmasked))],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.page_count().await, 3);
}

// ----- Cache-Control ------------------------------------------------------------------------

async fn pages_shown_to_members_are_not_stored_by_caches(backend: Backend) {
    let app = spawn_app(backend).await;
    let visitor = app.new_browser();
    let response = visitor.get("/").await;
    assert_eq!(response.headers().get(CACHE_CONTROL), None, "a visitor's page may be cached");
    let (_, home) = visitor.get_text("/").await;
    let at = home.find(r#"<link rel="stylesheet" href=""#).unwrap();
    let rest = &home[at + r#"<link rel="stylesheet" href=""#.len()..];
    let stylesheet = rest[..rest.find('"').unwrap()].to_owned();

    app.browser.register("cached", PASSWORD).await;
    let login = app.browser.login("cached", PASSWORD).await;
    assert_eq!(login.headers()[CACHE_CONTROL], "no-store", "the login sets the session cookie");
    app.browser.create_page("Private notes", "for members").await;
    for path in
        ["/", "/wiki/Private%20notes", "/profile", "/create", "/recent", "/search?q=notes", "/no/such"]
    {
        let response = app.browser.get(path).await;
        assert_eq!(
            response.headers().get(CACHE_CONTROL).map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "GET {path} ({})",
            response.status()
        );
    }
    // What chose its own caching keeps it: hashed static files are the same for everyone.
    let response = app.browser.get(&stylesheet).await;
    assert_eq!(response.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable");
    // Forms that set the visitor's CSRF cookie are not stored either.
    let response = app.new_browser().get("/login").await;
    assert!(response.headers().get(SET_COOKIE).is_some());
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
}

// ----- __Host- cookies ----------------------------------------------------------------------

/// `name=value` of the cookie `name` set by a response, with its attributes lowercased.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, Vec<String>)> {
    headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap()).find_map(|header| {
        let mut parts = header.split(';');
        let pair = parts.next()?.trim();
        pair.starts_with(&format!("{name}="))
            .then(|| (pair.to_owned(), parts.map(|a| a.trim().to_ascii_lowercase()).collect::<Vec<_>>()))
    })
}

#[track_caller]
fn assert_host_cookie(attrs: &[String], what: &str) {
    assert!(attrs.iter().any(|a| a == "secure"), "{what}: {attrs:?}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{what}: {attrs:?}");
    assert!(!attrs.iter().any(|a| a.starts_with("domain")), "{what}: {attrs:?}");
    assert!(attrs.iter().any(|a| a == "httponly"), "{what}: {attrs:?}");
}

async fn cookies_carry_the_host_prefix_behind_an_https_public_url(backend: Backend) {
    let app = spawn_with(
        backend,
        Options { public_url: Some("https://wiki.example".into()), ..Options::default() },
    )
    .await;
    // Secure cookies are not sent back over plain http by a cookie jar: carry them by hand.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = |path: &str| format!("{}{path}", app.address);

    let response = client.get(url("/register")).send().await.unwrap();
    let (visitor, attrs) = set_cookie(response.headers(), "__Host-quire_csrf").expect("the visitor cookie");
    assert_host_cookie(&attrs, "visitor");
    assert!(set_cookie(response.headers(), "quire_csrf").is_none(), "no unprefixed twin");
    let token = csrf_in(&response.text().await.unwrap()).unwrap();

    let form = [
        ("username", "hosted"),
        ("password", PASSWORD),
        ("confirm_password", PASSWORD),
        ("csrf_token", &token),
    ];
    let response = client.post(url("/register")).header(COOKIE, &visitor).form(&form).send().await.unwrap();
    assert_redirects_to(&response, "/login");
    let (flash, attrs) = set_cookie(response.headers(), "__Host-quire_flash").expect("the flash cookie");
    assert_host_cookie(&attrs, "flash");

    // The flash is read under its prefixed name, and cleared with a removal browsers accept.
    let response =
        client.get(url("/login")).header(COOKIE, format!("{visitor}; {flash}")).send().await.unwrap();
    let (_, attrs) = set_cookie(response.headers(), "__Host-quire_flash").expect("the flash is cleared");
    assert!(attrs.iter().any(|a| a == "max-age=0"), "{attrs:?}");
    assert_host_cookie(&attrs, "flash removal");
    let login_page = response.text().await.unwrap();
    assert!(login_page.contains("Registration successful!"), "the flash was shown");

    let token = csrf_in(&login_page).unwrap();
    let form = [("username", "hosted"), ("password", PASSWORD), ("csrf_token", &token)];
    let response = client.post(url("/login")).header(COOKIE, &visitor).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (session, attrs) =
        set_cookie(response.headers(), "__Host-quire_session").expect("the session cookie");
    assert_host_cookie(&attrs, "session");
    assert!(set_cookie(response.headers(), "quire_session").is_none());
    let (_, attrs) = set_cookie(response.headers(), "__Host-quire_device").expect("the known-device cookie");
    assert_host_cookie(&attrs, "known device");
    assert!(set_cookie(response.headers(), "quire_device").is_none());

    // The session is read under its prefixed name; an unprefixed copy means nothing.
    let response = client.get(url("/profile")).header(COOKIE, &session).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let unprefixed = session.trim_start_matches("__Host-");
    let response = client.get(url("/profile")).header(COOKIE, unprefixed).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "an unprefixed session cookie is not a session");
}

async fn cookies_keep_their_plain_names_over_http(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.browser.get("/register").await;
    assert!(set_cookie(response.headers(), "quire_csrf").is_some());
    app.browser.register("plain", PASSWORD).await;
    let response = app.browser.login("plain", PASSWORD).await;
    assert!(set_cookie(response.headers(), "quire_session").is_some());
    for header in response.headers().get_all(SET_COOKIE) {
        assert!(!header.to_str().unwrap().starts_with("__Host-"), "{header:?}");
    }
}

// ----- Location -----------------------------------------------------------------------------

async fn redirect_locations_are_percent_encoded(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("author").await;
    app.browser.create_page("Café crème", "x").await;
    app.browser.logout().await;
    // A visitor sent to log in: the page they wanted travels encoded in `next`.
    let response = app.new_browser().get("/wiki/Caf%C3%A9%20cr%C3%A8me/edit").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = raw_location(response.headers());
    assert_uri(&location);
    assert_eq!(location, "/login?next=/wiki/Caf%25C3%25A9%2520cr%25C3%25A8me/edit");

    app.browser.register("Zoë Ångström", PASSWORD).await;
    // After login, a `next` with spaces and accents (decoded from the query) goes out encoded.
    let token = app.browser.csrf("/login").await;
    let response = app
        .browser
        .client
        .post(app.browser.url("/login?next=%2Fwiki%2FCaf%C3%A9%20cr%C3%A8me%3Fx%3D%22a%20b%22"))
        .form(&[("username", "Zoë Ångström"), ("password", PASSWORD), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(raw_location(response.headers()), "/wiki/Caf%C3%A9%20cr%C3%A8me?x=%22a%20b%22");

    // Titles: created, renamed, the old title's redirect, a title with a slash typed by hand.
    let response = app.browser.create_page("Straße am Meer", "x").await;
    assert_eq!(raw_location(response.headers()), "/wiki/Stra%C3%9Fe%20am%20Meer");
    let token = app.browser.csrf("/wiki/Stra%C3%9Fe%20am%20Meer/rename").await;
    let response = app
        .browser
        .post_form(
            "/wiki/Stra%C3%9Fe%20am%20Meer/rename",
            &[("new_title", "海辺 の 道"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let renamed = raw_location(response.headers());
    assert_uri(&renamed);
    assert_eq!(renamed, quire::urls::page("海辺 の 道"));
    let response = app.browser.get("/wiki/Stra%C3%9Fe%20am%20Meer").await;
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(raw_location(response.headers()), renamed);
    app.browser.create_page("a b/ç d", "x").await;
    let response = app.browser.get("/wiki/a%20b/%C3%A7%20d").await;
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = raw_location(response.headers());
    assert_uri(&location);
    assert_eq!(location, quire::urls::page("a b/ç d"));
}

// ----- images -------------------------------------------------------------------------------

async fn images_from_other_sites_are_blocked_by_default(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/", "/login", "/no/such"] {
        let response = app.browser.get(path).await;
        assert_eq!(csp_directive(response.headers(), "img-src"), "img-src 'self'", "GET {path}");
    }
}

async fn images_come_from_the_hosts_the_operator_allows(backend: Backend) {
    let app = spawn_with(
        backend,
        Options { image_hosts: Some("images.example.com, *.Wikimedia.org".into()), ..Options::default() },
    )
    .await;
    let response = app.browser.get("/").await;
    assert_eq!(
        csp_directive(response.headers(), "img-src"),
        "img-src 'self' https://images.example.com https://*.wikimedia.org"
    );
    // The rest of the policy is unchanged.
    assert_eq!(csp_directive(response.headers(), "script-src"), "script-src 'self'");
    assert_eq!(csp_directive(response.headers(), "default-src"), "default-src 'none'");
}

/// `quire serve` with `args`: it must refuse to start, with one clear line naming `expected`.
async fn assert_refused_at_start_up(args: &[&str], env: &[(&str, &str)], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_quire"));
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env("QUIRE_DATA_DIR", dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("QUIRE_IMAGE_HOSTS")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .unwrap_or_else(|_| panic!("quire {args:?} {env:?} started instead of refusing"))
        .unwrap();
    assert!(!output.status.success(), "{args:?} {env:?} must fail");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains(expected), "{args:?} {env:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!dir.path().join("secret").exists(), "nothing was created before refusing");
}

async fn bad_image_hosts_and_timeouts_are_refused_at_start_up(backend: Backend) {
    if backend != Backend::Sqlite {
        return; // start-up validation does not depend on the database
    }
    assert_refused_at_start_up(
        &["--image-hosts", "images.example.com, evil.example;script-src"],
        &[],
        r#"QUIRE_IMAGE_HOSTS: "evil.example;script-src" is not a host name"#,
    )
    .await;
    assert_refused_at_start_up(
        &[],
        &[("QUIRE_IMAGE_HOSTS", "'unsafe-inline'")],
        r#""'unsafe-inline'" is not a host name"#,
    )
    .await;
    assert_refused_at_start_up(&["--header-timeout", "0"], &[], "header timeout").await;
    assert_refused_at_start_up(&["--body-timeout", "0"], &[], "body timeout").await;
    assert_refused_at_start_up(&["--max-connections", "0"], &[], "connection cap").await;
}

crate::tests![
    every_form_token_is_masked_afresh_and_each_one_is_accepted,
    pages_shown_to_members_are_not_stored_by_caches,
    cookies_carry_the_host_prefix_behind_an_https_public_url,
    cookies_keep_their_plain_names_over_http,
    redirect_locations_are_percent_encoded,
    images_from_other_sites_are_blocked_by_default,
    images_come_from_the_hosts_the_operator_allows,
    bad_image_hosts_and_timeouts_are_refused_at_start_up,
];
