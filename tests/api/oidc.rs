//! Single sign-on against a real OpenID provider: npm's `oidc-provider`, run with Node from
//! `tests/peers/oidc/provider.mjs` (installed by `tests/peers/install.sh`), one per test on a
//! free port. The browser goes to the provider and back as a person's would; the provider's
//! test-only paths sign it in as an account and, for the forgery tests, re-sign the ID tokens
//! it hands out with exactly one thing wrong.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{
    Backend, Browser, Options, PASSWORD, TestApp, assert_redirects_to, csrf_in, location, spawn_with,
};

const CLIENT_ID: &str = "quire";
const CLIENT_SECRET: &str = "quire-test-secret";
const NAME: &str = "Example ID";

/// The provider script and its packages.
fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oidc")
}

pub struct Provider {
    pub issuer: String,
    http: reqwest::Client,
    _child: Child,
}

impl Provider {
    /// Starts the provider for a client whose callback is `redirect_uri`, or fails the test
    /// saying why (it never skips).
    pub async fn start(redirect_uri: &str) -> Self {
        crate::peers::installed();
        let dir = peer_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed in {}: run tests/peers/install.sh (.ci/run does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("REDIRECT_URI", redirect_uri)
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start node (apt-get install nodejs; tests/peers/install.sh): {e}")
            });
        // Its errors are shown; its notes that it runs as a development setup are not.
        let stderr = child.stderr.take().expect("the provider's stderr");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if !line.starts_with("oidc-provider WARNING") {
                    eprintln!("oidc-provider: {line}");
                }
            }
        });
        let stdout = child.stdout.take().expect("the provider's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let started = Instant::now();
        let issuer = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("the OpenID provider did not start within 30 s"))
                .expect("the provider's output");
            match line {
                Some(line) => {
                    if let Some(issuer) = line.strip_prefix("listening ") {
                        break issuer.trim().to_owned();
                    }
                }
                None => panic!("the OpenID provider exited before listening ({:?})", child.try_wait()),
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the OpenID provider did not start");
        };
        // Its output after the first line is not read: drained so that it never blocks.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::new();
        Self { issuer, http, _child: child }
    }

    /// From now on the ID tokens it hands out carry this fault (`none` to stop).
    pub async fn tamper(&self, mode: &str) {
        let response =
            self.http.post(format!("{}/test/tamper?mode={mode}", self.issuer)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

/// A Quire with single sign-on through a provider of its own.
pub struct Sso {
    pub app: TestApp,
    pub provider: Provider,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub async fn spawn_sso(backend: Backend, tweak: impl FnOnce(&mut Options)) -> Sso {
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(&format!("{public_url}/login/oidc/callback")).await;
    let mut options = Options {
        bind: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        public_url: Some(public_url),
        ..Options::default()
    };
    options.oidc = quire::auth::oidc::RawOidc {
        issuer: Some(provider.issuer.clone()),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        name: Some(NAME.into()),
        ..Default::default()
    };
    tweak(&mut options);
    let app = spawn_with(backend, options).await;
    Sso { app, provider }
}

/// Who the browser signs in as at the provider.
#[derive(Clone, Copy)]
pub struct Account<'a> {
    pub sub: &'a str,
    pub username: &'a str,
    pub groups: &'a str,
}

pub fn account<'a>(sub: &'a str, username: &'a str) -> Account<'a> {
    Account { sub, username, groups: "" }
}

impl Sso {
    /// Goes through the provider, from a redirect to it, and stops at the redirect back to
    /// Quire: returns the callback's path and query, not yet followed.
    pub async fn through_provider(
        &self,
        browser: &Browser,
        to_provider: reqwest::Response,
        who: Account<'_>,
    ) -> String {
        assert_eq!(to_provider.status(), StatusCode::SEE_OTHER, "Quire sends the browser to the provider");
        let mut url = location(to_provider.headers());
        assert!(url.starts_with(&self.provider.issuer), "to the provider: {url}");
        for _ in 0..10 {
            if let Some(back) = url.strip_prefix(&self.app.address) {
                return back.to_owned();
            }
            if url.contains("/interaction/") {
                let query = serde_urlencoded::to_string([
                    ("sub", who.sub),
                    ("preferred_username", who.username),
                    ("email", &format!("{}@example.org", who.sub)),
                    ("groups", who.groups),
                ])
                .unwrap();
                url = format!("{url}?{query}");
            }
            let response = browser.client.get(&url).send().await.expect("the provider answers");
            assert!(
                response.status().is_redirection(),
                "the provider answered {url} with {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
            let next = location(response.headers());
            url = if next.starts_with('/') { format!("{}{next}", self.provider.issuer) } else { next };
        }
        panic!("the provider never sent the browser back to Quire");
    }

    /// "Sign in with …" through to the callback, not yet followed.
    pub async fn callback_for(&self, browser: &Browser, who: Account<'_>) -> String {
        let start = browser.get("/login/oidc").await;
        self.through_provider(browser, start, who).await
    }

    /// The whole sign-in; the callback's answer.
    pub async fn sign_in(&self, browser: &Browser, who: Account<'_>) -> reqwest::Response {
        let back = self.callback_for(browser, who).await;
        browser.get(&back).await
    }

    pub async fn identities(&self) -> Vec<quire::models::identity::Model> {
        use sea_orm::EntityTrait;
        quire::models::identity::Entity::find().all(&self.app.state.db.read).await.unwrap()
    }

    pub async fn member(&self, name: &str) -> Option<quire::models::user::Model> {
        quire::models::user::find_by_username(&self.app.state.db.read, name).await.unwrap()
    }
}

/// The current member's name, as the profile page shows it.
async fn signed_in_as(browser: &Browser) -> Option<String> {
    let (status, body) = browser.get_text("/profile").await;
    if status != StatusCode::OK {
        return None;
    }
    let title = body.split("<title>").nth(1)?.split("</title>").next()?.to_owned();
    Some(title)
}

async fn the_login_page_offers_the_provider_by_name(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let (status, body) = sso.app.browser.get_text("/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&format!("Sign in with {NAME}")), "{body}");
    assert!(body.contains(r#"href="/login/oidc""#), "{body}");
    assert!(body.contains(r#"name="password""#), "the password form stays: {body}");
}

async fn a_first_sign_in_creates_a_member_and_signs_them_in(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let browser = &sso.app.browser;
    let response = sso.sign_in(browser, account("sub-alice", "alice")).await;
    assert_redirects_to(&response, "/");
    assert!(browser.is_logged_in().await);
    assert_eq!(sso.app.user_count().await, 1);
    let alice = sso.member("alice").await.expect("alice was made");
    assert_eq!(alice.password_hash, "", "no password is stored");
    assert_eq!(alice.role(), quire::access::Role::Admin, "the first member administers the wiki");
    let identities = sso.identities().await;
    assert_eq!(identities.len(), 1);
    assert_eq!((identities[0].user_id, identities[0].subject.as_str()), (alice.id, "sub-alice"));
    assert_eq!(identities[0].issuer, sso.provider.issuer);
    // The verified address the provider gave is the member's.
    let email = quire::models::email::verified_of(&sso.app.state.db.read, alice.id).await.unwrap();
    assert_eq!(email.as_deref(), Some("sub-alice@example.org"));
    // The session is an ordinary one: listed at /profile/security.
    let (_, security) = browser.get_text("/profile/security").await;
    assert!(security.contains("(this session)"), "{security}");
    assert!(security.contains("no password of its own"), "{security}");
    // The audit log says how the member came.
    let (_, audit) = browser.get_text("/admin/audit").await;
    assert!(audit.contains(&format!("first sign-in with {NAME}")), "{audit}");
}

async fn a_second_sign_in_finds_the_same_member_by_subject(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let response = sso.sign_in(&sso.app.browser, account("sub-alice", "alice")).await;
    assert_redirects_to(&response, "/");
    let other = sso.app.new_browser();
    // The provider now calls them something else: the subject decides, and the name stays.
    let response = sso.sign_in(&other, account("sub-alice", "alice.renamed")).await;
    assert_redirects_to(&response, "/");
    assert_eq!(signed_in_as(&other).await, signed_in_as(&sso.app.browser).await);
    assert_eq!(sso.app.user_count().await, 1);
    assert_eq!(sso.identities().await.len(), 1);
    assert!(sso.member("alice.renamed").await.is_none());
}

async fn a_taken_username_is_made_unique_and_never_attached_to_the_local_account(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let local = sso.app.new_browser();
    local.register("alice", PASSWORD).await;
    let response = sso.sign_in(&sso.app.browser, account("sub-alice", "alice")).await;
    assert_redirects_to(&response, "/");
    let made = sso.member("alice-2").await.expect("a member of another name");
    let local_alice = sso.member("alice").await.unwrap();
    assert_ne!(made.id, local_alice.id);
    assert_eq!(sso.identities().await[0].user_id, made.id);
    let (_, profile) = sso.app.browser.get_text("/profile").await;
    assert!(profile.contains("alice-2"), "{profile}");
    // The local account is untouched: its password still signs it in.
    assert_redirects_to(&local.login("alice", PASSWORD).await, "/");
    assert_eq!(sso.app.user_count().await, 2);
}

async fn logout_ends_a_single_sign_on_session(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let browser = &sso.app.browser;
    sso.sign_in(browser, account("sub-alice", "alice")).await;
    assert!(browser.is_logged_in().await);
    assert_eq!(sso.app.session_count().await, 1);
    browser.logout().await;
    assert!(!browser.is_logged_in().await);
    assert_eq!(sso.app.session_count().await, 0);
}

async fn a_forged_state_is_refused_and_nothing_is_stored(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let browser = &sso.app.browser;
    let back = sso.callback_for(browser, account("sub-mallory", "mallory")).await;
    let forged = back
        .split('&')
        .map(|pair| if pair.starts_with("state=") { "state=forged".to_owned() } else { pair.to_owned() })
        .collect::<Vec<_>>()
        .join("&");
    let forged = if forged.contains("state=") { forged } else { format!("{forged}&state=forged") };
    assert_ne!(forged, back);
    let (status, body) = browser.get_text(&forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("its state does not match"), "{body}");
    assert_eq!(sso.app.user_count().await, 0);
    assert!(sso.identities().await.is_empty());
    assert!(!browser.is_logged_in().await);
    // The flow was used up: the genuine answer cannot come after the forged one.
    let (status, body) = browser.get_text(&back).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("has expired or was started in another browser"), "{body}");
    assert_eq!(sso.app.user_count().await, 0);
}

async fn a_sign_in_the_provider_declined_goes_back_to_the_login_page_saying_so(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let browser = &sso.app.browser;
    let start = browser.get("/login/oidc").await;
    let authorize: reqwest::Url = location(start.headers()).parse().unwrap();
    let state = authorize.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).unwrap();
    assert!(
        authorize.query_pairs().any(|(k, v)| k == "code_challenge_method" && v == "S256"),
        "PKCE: {authorize}"
    );
    assert!(authorize.query_pairs().any(|(k, _)| k == "nonce"), "a nonce: {authorize}");
    let declined = format!("/login/oidc/callback?error=access_denied&error_description=no&state={state}");
    assert_redirects_to(&browser.get(&declined).await, "/login");
    let (_, page) = browser.get_text("/login").await;
    assert!(page.contains(&format!("{NAME} did not sign you in (access_denied)")), "{page}");
    assert_eq!(sso.app.user_count().await, 0);
    assert!(!browser.is_logged_in().await);
}

async fn a_callback_without_its_flow_is_refused(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let back = sso.callback_for(&sso.app.browser, account("sub-alice", "alice")).await;
    // Another browser (an attacker's link) has no flow cookie.
    let (status, body) = sso.app.new_browser().get_text(&back).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("started in another browser"), "{body}");
    assert_eq!(sso.app.user_count().await, 0);
}

async fn a_replayed_code_is_refused_by_the_provider_and_signs_nobody_in(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let browser = &sso.app.browser;
    let back = sso.callback_for(browser, account("sub-alice", "alice")).await;
    let flow = browser.cookie("quire_oidc").expect("the flow cookie");
    assert_redirects_to(&browser.get(&back).await, "/");
    browser.logout().await;
    // The same answer again, with the flow cookie put back: the state matches, the code is spent.
    browser.set_cookie("quire_oidc", &flow);
    let (status, body) = browser.get_text(&back).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("the provider refused it"), "{body}");
    assert!(!browser.is_logged_in().await);
    assert_eq!(sso.app.user_count().await, 1);
}

/// Signs in with the provider handing out tokens with `fault`: refused, saying so, nothing stored.
async fn refused_with(backend: Backend, fault: &str) {
    let sso = spawn_sso(backend, |_| {}).await;
    sso.provider.tamper(fault).await;
    let browser = &sso.app.browser;
    let (status, body) = {
        let back = sso.callback_for(browser, account("sub-alice", "alice")).await;
        browser.get_text(&back).await
    };
    assert_eq!(status, StatusCode::BAD_REQUEST, "{fault}: {body}");
    assert!(body.contains("The sign-in could not be verified"), "{fault}: {body}");
    assert_eq!(sso.app.user_count().await, 0, "{fault}");
    assert!(sso.identities().await.is_empty(), "{fault}");
    assert!(!browser.is_logged_in().await, "{fault}");
    assert_eq!(sso.app.session_count().await, 0, "{fault}");
    // With the provider honest again the same browser signs in: only the fault was refused.
    sso.provider.tamper("none").await;
    assert_redirects_to(&sso.sign_in(browser, account("sub-alice", "alice")).await, "/");
}

async fn a_token_signed_by_another_key_is_refused(backend: Backend) {
    refused_with(backend, "foreign-key").await;
}

async fn an_expired_token_is_refused(backend: Backend) {
    refused_with(backend, "expired").await;
}

async fn a_token_for_another_audience_is_refused(backend: Backend) {
    refused_with(backend, "audience").await;
}

async fn a_token_from_another_issuer_or_with_another_nonce_is_refused(backend: Backend) {
    refused_with(backend, "issuer").await;
    refused_with(backend, "nonce").await;
}

async fn keys_rotated_at_the_provider_are_fetched_again(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    assert_redirects_to(&sso.sign_in(&sso.app.browser, account("sub-alice", "alice")).await, "/");
    // A new signing key with a new id: not in the set Quire keeps, in the provider's JWKS.
    sso.provider.tamper("rotate").await;
    let other = sso.app.new_browser();
    assert_redirects_to(&sso.sign_in(&other, account("sub-bob", "bob")).await, "/");
    assert!(other.is_logged_in().await);
    assert_eq!(sso.app.user_count().await, 2);
}

async fn the_admin_group_gives_the_admin_role_and_leaving_it_takes_it_away(backend: Backend) {
    let sso = spawn_sso(backend, |options| options.oidc.admin_group = Some("wiki-admins".into())).await;
    let admins = "staff,wiki-admins";
    // First, but not in the group: not an admin.
    let bob = sso.app.new_browser();
    sso.sign_in(&bob, account("sub-bob", "bob")).await;
    assert_eq!(sso.member("bob").await.unwrap().role(), quire::access::Role::Editor);
    assert_eq!(bob.get("/admin/users").await.status(), StatusCode::FORBIDDEN);
    let alice = sso.app.new_browser();
    sso.sign_in(&alice, Account { sub: "sub-alice", username: "alice", groups: admins }).await;
    assert_eq!(sso.member("alice").await.unwrap().role(), quire::access::Role::Admin);
    assert_eq!(alice.get("/admin/users").await.status(), StatusCode::OK);
    let carol = sso.app.new_browser();
    sso.sign_in(&carol, Account { sub: "sub-carol", username: "carol", groups: "wiki-admins" }).await;
    // Alice leaves the group: at her next sign-in she is an editor.
    let again = sso.app.new_browser();
    sso.sign_in(&again, Account { sub: "sub-alice", username: "alice", groups: "staff" }).await;
    assert_eq!(sso.member("alice").await.unwrap().role(), quire::access::Role::Editor);
    assert_eq!(again.get("/admin/users").await.status(), StatusCode::FORBIDDEN);
    // Carol, the last admin, leaves it too: the last-admin rule keeps her admin.
    let last = sso.app.new_browser();
    sso.sign_in(&last, Account { sub: "sub-carol", username: "carol", groups: "" }).await;
    assert_eq!(sso.member("carol").await.unwrap().role(), quire::access::Role::Admin);
    let (_, audit) = last.get_text("/admin/audit").await;
    assert!(audit.contains("alice: admin → editor"), "{audit}");
}

async fn a_blocked_member_cannot_sign_in_with_single_sign_on(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let local = sso.app.new_browser();
    local.register("root", PASSWORD).await;
    sso.sign_in(&sso.app.browser, account("sub-alice", "alice")).await;
    quire::models::user::change_by(
        &sso.app.state.db.write,
        "alice",
        quire::models::user::AdminChange::Block,
        &quire::models::audit::Actor::CommandLine,
    )
    .await
    .unwrap();
    assert!(!sso.app.browser.is_logged_in().await, "blocking ends the session");
    let other = sso.app.new_browser();
    let response = sso.sign_in(&other, account("sub-alice", "alice")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("This account is blocked."));
    assert!(!other.is_logged_in().await);
    assert_eq!(sso.app.session_count().await, 0);
}

async fn a_member_links_and_unlinks_their_account_from_the_profile(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let browser = &sso.app.browser;
    sso.app.member("dave").await;
    let (_, page) = browser.get_text("/profile/security").await;
    assert!(page.contains(&format!("Link {NAME}")), "{page}");
    let token = csrf_in(&page).unwrap();
    // Without a CSRF token the link does not start.
    assert_eq!(browser.post_form("/profile/security/oidc/link", &[]).await.status(), StatusCode::FORBIDDEN);
    let start = browser.post_form("/profile/security/oidc/link", &[("csrf_token", &token)]).await;
    let back = sso.through_provider(browser, start, account("sub-dave", "david")).await;
    assert_redirects_to(&browser.get(&back).await, "/profile/security");
    let dave = sso.member("dave").await.unwrap();
    let identities = sso.identities().await;
    assert_eq!((identities.len(), identities[0].user_id), (1, dave.id));
    let (_, page) = browser.get_text("/profile/security").await;
    assert!(page.contains("Your account is linked"), "{page}");
    // Signing in with the provider is now signing in as dave; nobody new is made.
    let other = sso.app.new_browser();
    assert_redirects_to(&sso.sign_in(&other, account("sub-dave", "david")).await, "/");
    assert!(signed_in_as(&other).await.unwrap().contains("dave"));
    assert_eq!(sso.app.user_count().await, 1);
    // Unlinked, the provider's account is a stranger again: signing in makes a new member.
    let token = csrf_in(&browser.get_text("/profile/security").await.1).unwrap();
    assert_redirects_to(
        &browser.post_form("/profile/security/oidc/unlink", &[("csrf_token", &token)]).await,
        "/profile/security",
    );
    assert!(sso.identities().await.is_empty());
    let third = sso.app.new_browser();
    assert_redirects_to(&sso.sign_in(&third, account("sub-dave", "david")).await, "/");
    assert!(sso.member("david").await.is_some());
    assert_eq!(sso.app.user_count().await, 2);
}

async fn an_account_linked_to_another_member_cannot_be_linked_again(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    sso.sign_in(&sso.app.new_browser(), account("sub-alice", "alice")).await;
    sso.app.member("dave").await;
    let browser = &sso.app.browser;
    let token = csrf_in(&browser.get_text("/profile/security").await.1).unwrap();
    let start = browser.post_form("/profile/security/oidc/link", &[("csrf_token", &token)]).await;
    let back = sso.through_provider(browser, start, account("sub-alice", "alice")).await;
    let (status, body) = browser.get_text(&back).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("already linked to another member"), "{body}");
    let identities = sso.identities().await;
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0].user_id, sso.member("alice").await.unwrap().id);
}

async fn a_member_made_by_the_provider_cannot_unlink_their_only_way_in(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let browser = &sso.app.browser;
    sso.sign_in(browser, account("sub-alice", "alice")).await;
    let (_, page) = browser.get_text("/profile/security").await;
    assert!(!page.contains("/profile/security/oidc/unlink"), "no unlink button: {page}");
    let token = csrf_in(&page).unwrap();
    let response = browser.post_form("/profile/security/oidc/unlink", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await.unwrap().contains("your only way in"));
    assert_eq!(sso.identities().await.len(), 1);
}

async fn with_password_login_off_only_single_sign_on_is_offered(backend: Backend) {
    let sso = spawn_sso(backend, |options| options.password_login = Some(false)).await;
    let browser = &sso.app.browser;
    let (status, body) = browser.get_text("/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&format!("Sign in with {NAME}")), "{body}");
    assert!(!body.contains(r#"name="password""#), "no password form: {body}");
    // A password posted anyway (a local account made at the command line) is refused.
    let hash =
        quire::auth::password::hash_blocking(&quire::domain::Password::unchecked(PASSWORD.into())).unwrap();
    let name = quire::domain::Username::parse("root").unwrap();
    quire::models::user::create(&sso.app.state.db.write, &name, &hash, quire::access::Role::Admin)
        .await
        .unwrap();
    assert!(!body.contains(r#"href="/register""#), "no registration link: {body}");
    // No page has a password form now: the request is made by hand, with a valid visitor token.
    let visitor = "ab".repeat(32);
    browser.set_cookie(quire::cookies::VISITOR, &visitor);
    let token = sso.app.state.csrf.token(&format!("visitor:{visitor}"));
    let response = browser
        .post_form("/login", &[("username", "root"), ("password", PASSWORD), ("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("single sign-on only"));
    assert!(!browser.is_logged_in().await);
    let (status, body) = browser.get_text("/register").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("single sign-on"), "{body}");
    assert_eq!(sso.app.user_count().await, 1);
    // Single sign-on still works.
    assert_redirects_to(&sso.sign_in(browser, account("sub-alice", "alice")).await, "/");
}

async fn single_sign_on_works_on_a_members_only_wiki_and_returns_to_the_page_asked_for(backend: Backend) {
    let sso = spawn_sso(backend, |_| {}).await;
    let admin = sso.app.member("root").await;
    crate::access_helpers::set_setting(admin, "read_access", "members").await;
    let visitor = sso.app.new_browser();
    assert_redirects_to(&visitor.get("/recent").await, "/login?next=/recent");
    let start = visitor.get("/login/oidc?next=%2Frecent").await;
    let back = sso.through_provider(&visitor, start, account("sub-alice", "alice")).await;
    assert_redirects_to(&visitor.get(&back).await, "/recent");
    assert_eq!(visitor.get("/recent").await.status(), StatusCode::OK);
    // Somewhere else than this wiki is not a place to return to.
    let other = sso.app.new_browser();
    let start = other.get("/login/oidc?next=https%3A%2F%2Fevil.example%2F").await;
    let back = sso.through_provider(&other, start, account("sub-bob", "bob")).await;
    assert_redirects_to(&other.get(&back).await, "/");
}

async fn a_provider_that_cannot_be_reached_gives_a_clear_error(backend: Backend) {
    let port = free_port();
    let mut options = Options { public_url: Some("http://127.0.0.1:1".into()), ..Options::default() };
    options.oidc = quire::auth::oidc::RawOidc {
        issuer: Some(format!("http://127.0.0.1:{port}")),
        client_id: Some(CLIENT_ID.into()),
        ..Default::default()
    };
    let app = spawn_with(backend, options).await;
    let (status, body) = app.browser.get_text("/login/oidc").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("The sign-in provider cannot be reached"), "{body}");
    assert!(app.browser.cookie("quire_oidc").is_none());
    // The password form still works meanwhile.
    assert_eq!(app.browser.get("/login").await.status(), StatusCode::OK);
}

crate::tests!(
    the_login_page_offers_the_provider_by_name,
    a_first_sign_in_creates_a_member_and_signs_them_in,
    a_second_sign_in_finds_the_same_member_by_subject,
    a_taken_username_is_made_unique_and_never_attached_to_the_local_account,
    logout_ends_a_single_sign_on_session,
    a_forged_state_is_refused_and_nothing_is_stored,
    a_sign_in_the_provider_declined_goes_back_to_the_login_page_saying_so,
    a_callback_without_its_flow_is_refused,
    a_replayed_code_is_refused_by_the_provider_and_signs_nobody_in,
    a_token_signed_by_another_key_is_refused,
    an_expired_token_is_refused,
    a_token_for_another_audience_is_refused,
    a_token_from_another_issuer_or_with_another_nonce_is_refused,
    keys_rotated_at_the_provider_are_fetched_again,
    the_admin_group_gives_the_admin_role_and_leaving_it_takes_it_away,
    a_blocked_member_cannot_sign_in_with_single_sign_on,
    a_member_links_and_unlinks_their_account_from_the_profile,
    an_account_linked_to_another_member_cannot_be_linked_again,
    a_member_made_by_the_provider_cannot_unlink_their_only_way_in,
    with_password_login_off_only_single_sign_on_is_offered,
    single_sign_on_works_on_a_members_only_wiki_and_returns_to_the_page_asked_for,
    a_provider_that_cannot_be_reached_gives_a_clear_error,
);
