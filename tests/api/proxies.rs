//! The real client address (`--trusted-proxies`): forwarded headers believed from trusted
//! proxies only, the right-most untrusted hop taken, the scheme for `Secure` cookies.

use quire::config::Limits;
use quire::models::throttle::Limit;
use reqwest::StatusCode;

use crate::helpers::*;

/// Two failed logins per account and address, then 429; the other limits out of the way.
fn tight() -> Option<Limits> {
    Some(Limits {
        login: Limit::parse("2/300").unwrap(),
        address_login: Limit::parse("1000/300").unwrap(),
        account_login: Limit::parse("1000/300").unwrap(),
        ..Limits::default()
    })
}

/// A login through `browser` with extra request headers (what a proxy adds, or a forger).
async fn login_with(
    browser: &Browser,
    headers: &[(&str, &str)],
    username: &str,
    password: &str,
) -> reqwest::Response {
    let token = browser.csrf("/login").await;
    let mut request = browser.client.post(browser.url("/login")).form(&[
        ("username", username),
        ("password", password),
        ("csrf_token", &token),
    ]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("POST /login answers")
}

async fn forged_headers_from_an_untrusted_peer_change_nothing(backend: Backend) {
    // No proxy is trusted: each forged header claims a new address, and none is believed.
    let app = spawn_with(backend, Options { limits: tight(), ..Options::default() }).await;
    app.browser.register("target", PASSWORD).await;
    let forged: [&[(&str, &str)]; 4] = [
        &[("x-forwarded-for", "198.51.100.1")],
        &[("x-forwarded-for", "198.51.100.2"), ("x-real-ip", "198.51.100.2")],
        &[("forwarded", "for=198.51.100.3")],
        &[("forwarded", "for=\"[2001:db8::4]\""), ("x-forwarded-for", "198.51.100.4")],
    ];
    for (i, headers) in forged.iter().enumerate() {
        let response = login_with(&app.browser, headers, "target", "wrong guess").await;
        let expected = if i < 2 { StatusCode::UNAUTHORIZED } else { StatusCode::TOO_MANY_REQUESTS };
        assert_eq!(response.status(), expected, "attempt {i} with {headers:?}");
    }
    // Even the right password is refused from this address, whatever it claims to be.
    let response = login_with(&app.browser, &[("x-forwarded-for", "203.0.113.99")], "target", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.session_count().await, 0);

    // A forged scheme does not make cookies Secure.
    let fresh = app.new_browser();
    let response =
        fresh.client.get(fresh.url("/login")).header("x-forwarded-proto", "https").send().await.unwrap();
    let cookies: Vec<&str> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(!cookies.is_empty(), "the login form sets its CSRF cookie");
    assert!(cookies.iter().all(|c| !c.to_ascii_lowercase().contains("secure")), "{cookies:?}");
}

async fn behind_a_trusted_proxy_two_clients_get_separate_limits(backend: Backend) {
    let options = Options {
        limits: tight(),
        trusted_proxies: Some("127.0.0.2/32, 10.0.0.0/8".into()),
        ..Options::default()
    };
    let app = spawn_with(backend, options).await;
    app.browser.register("target", PASSWORD).await;
    // The proxy's connections come from 127.0.0.2; it appends the client it saw.
    let proxy = Browser::from_address(&app.address, "127.0.0.2");
    let first = [("x-forwarded-for", "198.51.100.1")];
    for _ in 0..2 {
        assert_eq!(login_with(&proxy, &first, "target", "wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_with(&proxy, &first, "target", "wrong").await.status(), StatusCode::TOO_MANY_REQUESTS);
    // The first client forging a left-most entry is still the first client: the right-most
    // untrusted hop counts, and the trusted 10.x hop in between is skipped.
    let forged = [("x-forwarded-for", "203.0.113.7, 198.51.100.1, 10.0.0.5")];
    assert_eq!(login_with(&proxy, &forged, "target", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another client behind the same proxy has limits of its own.
    let second_browser = Browser::from_address(&app.address, "127.0.0.2");
    let second = [("x-forwarded-for", "198.51.100.2")];
    assert_eq!(
        login_with(&second_browser, &second, "target", "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = login_with(&second_browser, &second, "target", PASSWORD).await;
    assert_redirects_to(&response, "/");
    assert!(second_browser.is_logged_in().await);

    // `Forwarded` is read too, and an IPv6 client is one more address.
    let third_browser = Browser::from_address(&app.address, "127.0.0.2");
    let third = [("forwarded", "for=\"[2001:db8:77::1]:4711\";proto=https")];
    for _ in 0..2 {
        assert_eq!(
            login_with(&third_browser, &third, "target", "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_with(&third_browser, &third, "target", "wrong").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // The proxy's own address, with no header, is a client like any other (the limit of
    // 198.51.100.1 was not charged to it).
    let bare = Browser::from_address(&app.address, "127.0.0.2");
    assert_redirects_to(&login_with(&bare, &[], "target", PASSWORD).await, "/");
}

async fn a_trusted_proxy_saying_https_gets_secure_cookies(backend: Backend) {
    let options = Options { trusted_proxies: Some("127.0.0.2".into()), ..Options::default() };
    let app = spawn_with(backend, options).await;
    app.browser.register("alice", PASSWORD).await;
    let proxy = Browser::from_address(&app.address, "127.0.0.2");
    let https = [("x-forwarded-for", "198.51.100.1"), ("x-forwarded-proto", "https")];
    let response = login_with(&proxy, &https, "alice", PASSWORD).await;
    assert_redirects_to(&response, "/");
    let cookies: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(!cookies.is_empty());
    assert!(cookies.iter().all(|c| c.contains("; Secure")), "{cookies:?}");

    // Over http through the same proxy: not Secure.
    let plain = [("x-forwarded-for", "198.51.100.1"), ("x-forwarded-proto", "http")];
    let other = Browser::from_address(&app.address, "127.0.0.2");
    let response = login_with(&other, &plain, "alice", PASSWORD).await;
    assert_redirects_to(&response, "/");
    let cookies: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(cookies.iter().all(|c| !c.contains("Secure")), "{cookies:?}");
}

async fn metrics_are_not_shown_to_clients_a_local_proxy_forwards(backend: Backend) {
    // nginx on the same machine: its connections come from loopback, its clients do not.
    let options = Options { trusted_proxies: Some("127.0.0.1".into()), ..Options::default() };
    let app = spawn_with(backend, options).await;
    let response = app.browser.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK, "straight from loopback");
    let forwarded = app
        .browser
        .client
        .get(app.browser.url("/metrics"))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), StatusCode::NOT_FOUND);
}

async fn the_audit_log_records_the_client_address(backend: Backend) {
    let options = Options { trusted_proxies: Some("127.0.0.2".into()), ..Options::default() };
    let app = spawn_with(backend, options).await;
    let admin = Browser::behind_proxy(&app.address, "127.0.0.2", &[("x-forwarded-for", "198.51.100.42")]);
    admin.register("boss", PASSWORD).await;
    assert_redirects_to(&admin.login("boss", PASSWORD).await, "/");
    crate::access_helpers::set_setting(&admin, "registration", "invite").await;
    // The same action straight from a client that forges the header: its own address.
    let direct = app.new_browser();
    direct.client.get(direct.url("/login")).send().await.unwrap();
    assert_redirects_to(
        &login_with(&direct, &[("x-forwarded-for", "203.0.113.66")], "boss", PASSWORD).await,
        "/",
    );
    crate::access_helpers::set_setting(&direct, "registration", "closed").await;
    let (status, audit) = admin.get_text("/admin/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(audit.contains("boss from 198.51.100.42"), "{audit}");
    assert!(audit.contains("boss from 127.0.0.1"), "{audit}");
    assert!(!audit.contains("127.0.0.2") && !audit.contains("203.0.113.66"), "{audit}");
}

crate::tests!(
    the_audit_log_records_the_client_address,
    forged_headers_from_an_untrusted_peer_change_nothing,
    behind_a_trusted_proxy_two_clients_get_separate_limits,
    a_trusted_proxy_saying_https_gets_secure_cookies,
    metrics_are_not_shown_to_clients_a_local_proxy_forwards,
);
