//! Mail against a real SMTP server (aiosmtpd): members' addresses verified by a link,
//! password recovery by a single-use one-hour link that answers alike whether or not the
//! account exists, invitations sent by mail; and, without SMTP, recovery through an admin.

use reqwest::StatusCode;

use crate::access_helpers::{post_with_token, wiki_with_admin};
use crate::helpers::*;
use crate::smtp::{SmtpServer, link_in, to_of};

const NEW_PASSWORD: &str = "a password from the mail";
const PUBLIC: &str = "http://wiki.test";

async fn with_mail(backend: Backend) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let options = Options {
        smtp_url: Some(smtp.url()),
        smtp_from: Some("Test wiki <wiki@wiki.test>".into()),
        public_url: Some(PUBLIC.into()),
        ..Options::default()
    };
    (spawn_with(backend, options).await, smtp)
}

/// Sets and verifies `address` for the logged-in `browser`; `already` mails had arrived.
async fn verify_address(browser: &Browser, smtp: &SmtpServer, address: &str, already: usize) {
    let token = browser.csrf("/profile/security").await;
    let response =
        browser.post_form("/profile/security/email", &[("email", address), ("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/profile/security");
    let mails = smtp.wait_for(already + 1).await;
    let mail = mails
        .iter()
        .find(|m| to_of(m).contains(address) && crate::smtp::body_of(m).contains("/email/verify"))
        .expect("the verification mail");
    let link = link_in(mail, "/email/verify?token=").expect("a verification link");
    assert!(mail.contains(&format!("{PUBLIC}/email/verify")) || crate::smtp::body_of(mail).contains(PUBLIC));
    let (status, page) = browser.get_text(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(address), "{page}");
    let token = crate::helpers::csrf_in(&page).unwrap();
    let value = link.split_once("token=").unwrap().1;
    let response = browser.post_form("/email/verify", &[("token", value), ("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/profile/security");
}

async fn forgot(browser: &Browser, login: &str) -> (StatusCode, String) {
    // A visitor's tokens are bound to their cookie: the login form's serves.
    let token = browser.csrf("/login").await;
    let response = browser.post_form("/password/forgot", &[("login", login), ("csrf_token", &token)]).await;
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn an_address_is_used_only_once_its_link_is_opened(backend: Backend) {
    let (app, smtp) = with_mail(backend).await;
    let alice = app.member("alice").await;
    let (_, page) = alice.get_text("/profile/security").await;
    assert!(page.contains("No verified address"), "{page}");

    // Bad addresses are refused and nothing is sent.
    for bad in ["not an address", "a@b@c", "Alice <alice@example.org>"] {
        let response = post_with_token(alice, "/profile/security/email", &[("email", bad)]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    assert!(smtp.messages().is_empty());

    // Before the link is opened, the address is not used: recovery sends nothing to it.
    let response = post_with_token(alice, "/profile/security/email", &[("email", "Alice@Example.org")]).await;
    assert_redirects_to(&response, "/profile/security");
    let mails = smtp.wait_for(1).await;
    assert_eq!(to_of(&mails[0]), "alice@example.org");
    let (_, page) = alice.get_text("/profile/security").await;
    assert!(page.contains("No verified address"));
    let visitor = app.new_browser();
    assert_eq!(forgot(&visitor, "alice").await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "no recovery mail to an unverified address");

    // A forged token finds nothing.
    let (status, _) = alice.get_text("/email/verify?token=forged").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let link = link_in(&mails[0], "/email/verify?token=").unwrap();
    let token = link.split_once("token=").unwrap().1.to_owned();
    // The link itself changes nothing (mail scanners open links): the button does.
    let (status, page) = visitor.get_text(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("alice@example.org"));
    let form_token = csrf_in(&page).unwrap();
    let response =
        visitor.post_form("/email/verify", &[("token", &token), ("csrf_token", &form_token)]).await;
    assert_redirects_to(&response, "/profile/security");
    let (_, page) = alice.get_text("/profile/security").await;
    assert!(page.contains("Your verified address: <strong>alice@example.org</strong>"), "{page}");
    // Once only.
    let response =
        visitor.post_form("/email/verify", &[("token", &token), ("csrf_token", &form_token)]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

async fn a_forgotten_password_is_set_again_with_a_one_hour_single_use_link(backend: Backend) {
    let (app, smtp) = with_mail(backend).await;
    let alice = app.member("alice").await;
    verify_address(alice, &smtp, "alice@example.org", 0).await;
    let other_session = app.new_browser();
    assert_redirects_to(&other_session.login("alice", PASSWORD).await, "/");

    // The same page, quickly, for an account with an address, one without, and nobody.
    let visitor = app.new_browser();
    let (status, page) = visitor.get_text("/password/forgot").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Username or email address"), "{page}");
    let mut answers = Vec::new();
    // Mails expected after each request: one to alice by her name, none for nobody (by name
    // or address), one to alice by her address in any case.
    for (login, mails) in [("alice", 2), ("nobody", 2), ("nobody@example.org", 2), ("ALICE@example.org", 3)] {
        let started = std::time::Instant::now();
        let (status, body) = forgot(&visitor, login).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{login}: the answer does not wait for mail"
        );
        assert_eq!(status, StatusCode::OK, "{login}");
        assert!(body.contains("If that account has a verified email address"), "{body}");
        answers.push(body.replace(&csrf_in(&body).unwrap_or_default(), ""));
        smtp.wait_for(mails).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(smtp.messages().len(), mails, "after {login}");
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "the answers are the same");
    let all = smtp.messages();
    let resets: Vec<&String> =
        all.iter().filter(|m| crate::smtp::body_of(m).contains("/password/reset")).collect();
    assert_eq!(resets.len(), 2);
    assert!(resets.iter().all(|m| to_of(m) == "alice@example.org"));
    // Only the newest link counts; the token is stored hashed.
    let links: Vec<String> = resets.iter().map(|m| link_in(m, "/password/reset?token=").unwrap()).collect();
    let mut good = None;
    for link in &links {
        let token = link.split_once("token=").unwrap().1;
        assert!(crate::access_helpers::find_in_database(&app, token.as_bytes()).await.is_empty());
        if visitor.get(link).await.status() == StatusCode::OK {
            good = Some(link.clone());
        }
    }
    let link = good.expect("the newest link works");
    let token = link.split_once("token=").unwrap().1.to_owned();

    let (_, page) = visitor.get_text(&link).await;
    let form_token = csrf_in(&page).unwrap();
    let post = |new: &'static str, confirm: &'static str| {
        let (visitor, token, form_token) = (visitor.clone(), token.clone(), form_token.clone());
        async move {
            visitor
                .post_form(
                    "/password/reset",
                    &[
                        ("token", &token),
                        ("new_password", new),
                        ("confirm_password", confirm),
                        ("csrf_token", &form_token),
                    ],
                )
                .await
        }
    };
    assert_eq!(post("short", "short").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(post(NEW_PASSWORD, "something else").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(alice.is_logged_in().await, "nothing changed yet");
    let response = post(NEW_PASSWORD, NEW_PASSWORD).await;
    assert_redirects_to(&response, "/login");
    assert!(!alice.is_logged_in().await && !other_session.is_logged_in().await, "every session ended");
    assert_eq!(app.new_browser().login("alice", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_redirects_to(&app.new_browser().login("alice", NEW_PASSWORD).await, "/");
    // Used up.
    assert_eq!(post(NEW_PASSWORD, NEW_PASSWORD).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(visitor.get(&link).await.status(), StatusCode::NOT_FOUND);

    // A link past its hour is refused.
    assert_eq!(forgot(&visitor, "alice").await.0, StatusCode::OK);
    let mails = smtp.wait_for(4).await;
    let newest = mails
        .iter()
        .filter_map(|m| link_in(m, "/password/reset?token="))
        .find(|l| !links.contains(l))
        .expect("a new link");
    use sea_orm::ConnectionTrait;
    app.state.db.write.execute_unprepared("UPDATE email_tokens SET expires_at = 0").await.unwrap();
    assert_eq!(visitor.get(&newest).await.status(), StatusCode::NOT_FOUND);
}

async fn invitations_can_be_mailed(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let options = Options {
        smtp_url: Some(smtp.url()),
        smtp_from: Some("wiki@wiki.test".into()),
        public_url: Some(PUBLIC.into()),
        ..Options::default()
    };
    let app = spawn_with(backend, options).await;
    let admin = app.member("boss").await;
    let (status, page) =
        crate::access_helpers::post_invite(admin, &[("uses", "1"), ("email", "newcomer@example.org")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("The invitation was mailed to newcomer@example.org."), "{page}");
    let mails = smtp.wait_for(1).await;
    assert_eq!(to_of(&mails[0]), "newcomer@example.org");
    let link = link_in(&mails[0], "/register?invite=").expect("the invitation link");
    let newcomer = app.new_browser();
    let (status, _) = newcomer.get_text(&link).await;
    assert_eq!(status, StatusCode::OK);
    let token = link.split_once("invite=").unwrap().1;
    assert_redirects_to(
        &crate::access_helpers::register_invited(&newcomer, "newcomer", token).await,
        "/login",
    );

    let (status, _) =
        crate::access_helpers::post_invite(admin, &[("uses", "1"), ("email", "not an address")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(smtp.messages().len(), 1);
}

async fn without_smtp_members_are_told_to_ask_an_admin_who_resets_the_password(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let bob = app.new_browser();
    bob.register("bob", PASSWORD).await;
    assert_redirects_to(&bob.login("bob", PASSWORD).await, "/");
    let visitor = app.new_browser();
    let (status, page) = visitor.get_text("/password/forgot").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Ask an admin"), "{page}");
    let (_, login) = visitor.get_text("/login").await;
    assert!(login.contains("/password/forgot"), "the login page links it");
    let (status, _) = forgot(&visitor, "bob").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, security) = bob.get_text("/profile/security").await;
    assert!(security.contains("sends no mail"));
    let response = post_with_token(&bob, "/profile/security/email", &[("email", "bob@example.org")]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // The admin sets a new password: bob's sessions end, the audit log says who.
    let path = crate::access_helpers::user_path("bob", "password");
    assert_eq!(
        post_with_token(&admin, &path, &[("password", "short")]).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert!(bob.is_logged_in().await);
    assert_eq!(
        post_with_token(&bob, &path, &[("password", NEW_PASSWORD)]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post_with_token(
            &admin,
            &crate::access_helpers::user_path("nobody", "password"),
            &[("password", NEW_PASSWORD)]
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_redirects_to(&post_with_token(&admin, &path, &[("password", NEW_PASSWORD)]).await, "/admin/users");
    assert!(!bob.is_logged_in().await);
    assert_redirects_to(&bob.login("bob", NEW_PASSWORD).await, "/");
    let (_, audit) = admin.get_text("/admin/audit").await;
    assert!(audit.contains("password_reset"), "{audit}");

    // Invitations cannot be mailed either.
    let (status, page) =
        crate::access_helpers::post_invite(&admin, &[("uses", "1"), ("email", "friend@example.org")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("This wiki sends no mail"), "{page}");

    // On a members-only wiki the way back in stays open to visitors.
    crate::access_helpers::set_setting(&admin, "read_access", "members").await;
    let (status, page) = app.new_browser().get_text("/password/forgot").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Ask an admin"));
}

async fn changing_the_password_voids_a_recovery_link(backend: Backend) {
    let (app, smtp) = with_mail(backend).await;
    let alice = app.member("alice").await;
    verify_address(alice, &smtp, "alice@example.org", 0).await;
    assert_eq!(forgot(&app.new_browser(), "alice").await.0, StatusCode::OK);
    let mails = smtp.wait_for(2).await;
    let link = mails.iter().find_map(|m| link_in(m, "/password/reset?token=")).expect("a recovery link");
    assert_eq!(app.new_browser().get(&link).await.status(), StatusCode::OK);
    let response = post_with_token(
        alice,
        "/profile/security/password",
        &[("current_password", PASSWORD), ("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)],
    )
    .await;
    assert_redirects_to(&response, "/profile/security");
    assert_eq!(app.new_browser().get(&link).await.status(), StatusCode::NOT_FOUND);
}

crate::tests!(
    changing_the_password_voids_a_recovery_link,
    an_address_is_used_only_once_its_link_is_opened,
    a_forgotten_password_is_set_again_with_a_one_hour_single_use_link,
    invitations_can_be_mailed,
    without_smtp_members_are_told_to_ask_an_admin_who_resets_the_password,
);
