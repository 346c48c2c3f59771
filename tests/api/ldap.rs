//! LDAP sign-in against a real `slapd` (Debian's package, installed by
//! `tests/peers/install.sh`): a throwaway directory per test, made with `slapadd` from a small
//! LDIF into a temporary dir and served on a free port.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::process::{Child, Command};

use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_redirects_to, spawn_with};

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
const ADMIN_PASSWORD: &str = "directory-admin-secret";
const ADA_PASSWORD: &str = "ada-directory-password";
const GRACE_PASSWORD: &str = "grace-directory-password";

const DIRECTORY: &str = "\
dn: dc=example,dc=org
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: uid=ada,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: ada
cn: Ada Lovelace
sn: Lovelace
mail: ada@example.org
userPassword: ada-directory-password

dn: uid=grace,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: grace
cn: Grace Hopper
sn: Hopper
userPassword: grace-directory-password
";

pub struct Slapd {
    pub port: u16,
    _dir: tempfile::TempDir,
    _child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Slapd {
    /// Makes the directory and starts slapd on it, or fails the test saying why.
    pub async fn start() -> Self {
        crate::peers::installed();
        for tool in [SLAPD, SLAPADD] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: run tests/peers/install.sh (.ci/run does), which installs Debian's slapd"
            );
        }
        let dir = tempfile::tempdir().expect("a directory for slapd");
        let root = dir.path();
        std::fs::create_dir(root.join("db")).unwrap();
        let config = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             pidfile {root}/slapd.pid\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"dc=example,dc=org\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\n\
             directory {root}/db\n\
             access to attrs=userPassword by self read by anonymous auth by * none\n\
             access to * by * read\n",
            root = root.display()
        );
        std::fs::write(root.join("slapd.conf"), config).unwrap();
        std::fs::write(root.join("directory.ldif"), DIRECTORY).unwrap();
        let loaded = Command::new(SLAPADD)
            .arg("-f")
            .arg(root.join("slapd.conf"))
            .arg("-l")
            .arg(root.join("directory.ldif"))
            .output()
            .await
            .expect("slapadd runs");
        assert!(loaded.status.success(), "slapadd failed: {}", String::from_utf8_lossy(&loaded.stderr));
        let port = free_port();
        let mut child = Command::new(SLAPD)
            .arg("-f")
            .arg(root.join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"))
            // Debugging on keeps it in the foreground, where kill_on_drop ends it.
            .args(["-d", "0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("slapd starts");
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { port, _dir: dir, _child: child };
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = pipe.read_to_string(&mut stderr).await;
                }
                panic!("slapd exited ({status}) before listening: {stderr}");
            }
            assert!(started.elapsed() < Duration::from_secs(15), "slapd did not listen within 15 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }
}

/// The two ways of finding a member's entry.
#[derive(Clone, Copy)]
enum Mode {
    Template,
    Search,
}

async fn spawn_ldap(backend: Backend, mode: Mode) -> (TestApp, Slapd) {
    let slapd = Slapd::start().await;
    let mut options = Options::default();
    options.ldap.url = Some(slapd.url());
    match mode {
        Mode::Template => {
            options.ldap.bind_dn_template = Some("uid={username},ou=people,dc=example,dc=org".into())
        }
        Mode::Search => {
            options.ldap.base_dn = Some("ou=people,dc=example,dc=org".into());
            options.ldap.bind_dn = Some(ADMIN_DN.into());
            options.ldap.bind_password = Some(ADMIN_PASSWORD.into());
        }
    }
    (spawn_with(backend, options).await, slapd)
}

async fn member(app: &TestApp, name: &str) -> Option<quire::models::user::Model> {
    quire::models::user::find_by_username(&app.state.db.read, name).await.unwrap()
}

async fn identities(app: &TestApp) -> Vec<quire::models::identity::Model> {
    use sea_orm::EntityTrait;
    quire::models::identity::Entity::find().all(&app.state.db.read).await.unwrap()
}

/// Asserts the one refusal for a wrong password and an unknown name, with nothing stored.
async fn assert_refused(app: &TestApp, username: &str, password: &str) {
    let browser = app.new_browser();
    let response = browser.login(username, password).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{username}");
    assert!(response.text().await.unwrap().contains("Invalid username or password."), "{username}");
    assert!(!browser.is_logged_in().await, "{username}");
}

async fn a_directory_member_signs_in_with_their_directory_password(backend: Backend) {
    let (app, _slapd) = spawn_ldap(backend, Mode::Template).await;
    assert_redirects_to(&app.browser.login("ada", ADA_PASSWORD).await, "/");
    assert!(app.browser.is_logged_in().await);
    let ada = member(&app, "ada").await.expect("ada was made");
    assert_eq!(ada.password_hash, "", "the directory password is not stored");
    let links = identities(&app).await;
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].user_id, links[0].issuer.as_str()), (ada.id, "ldap"));
    assert_eq!(links[0].subject.len(), 36, "the entryUUID: {}", links[0].subject);
    let email = quire::models::email::verified_of(&app.state.db.read, ada.id).await.unwrap();
    assert_eq!(email.as_deref(), Some("ada@example.org"));
    // Again, from another browser: the same member.
    let other = app.new_browser();
    assert_redirects_to(&other.login("ada", ADA_PASSWORD).await, "/");
    assert_eq!(app.user_count().await, 1);
    assert_eq!(identities(&app).await.len(), 1);
    // Logout ends the session like any other.
    other.logout().await;
    assert!(!other.is_logged_in().await);
}

async fn search_then_bind_finds_the_entry_with_a_service_account(backend: Backend) {
    let (app, _slapd) = spawn_ldap(backend, Mode::Search).await;
    assert_redirects_to(&app.browser.login("grace", GRACE_PASSWORD).await, "/");
    assert!(member(&app, "grace").await.is_some());
    assert_refused(&app, "grace", ADA_PASSWORD).await;
    assert_eq!(app.user_count().await, 1);
}

async fn a_wrong_directory_password_is_refused_and_nothing_is_stored(backend: Backend) {
    for mode in [Mode::Template, Mode::Search] {
        let (app, _slapd) = spawn_ldap(backend, mode).await;
        assert_refused(&app, "ada", "not-adas-password").await;
        assert_eq!(app.user_count().await, 0);
        assert!(identities(&app).await.is_empty());
    }
}

async fn an_unknown_user_gets_the_same_refusal(backend: Backend) {
    for mode in [Mode::Template, Mode::Search] {
        let (app, _slapd) = spawn_ldap(backend, mode).await;
        assert_refused(&app, "nobody", ADA_PASSWORD).await;
        assert_eq!(app.user_count().await, 0);
    }
}

async fn the_username_is_escaped_so_it_cannot_change_the_query(backend: Backend) {
    // Unescaped, `a*a` would match ada's entry in the filter and her password would let it in.
    let (app, _slapd) = spawn_ldap(backend, Mode::Search).await;
    for injected in ["a*a", "*", "ada)(uid=*", "*)(|(uid=*"] {
        assert_refused(&app, injected, ADA_PASSWORD).await;
    }
    assert_eq!(app.user_count().await, 0);
    // In a DN template, a comma or an equals sign is a value, not a new component.
    let (app, _slapd) = spawn_ldap(backend, Mode::Template).await;
    for injected in ["ada,ou=people", "ada+cn=Ada Lovelace", "uid=ada"] {
        assert_refused(&app, injected, ADA_PASSWORD).await;
    }
    assert_eq!(app.user_count().await, 0);
    assert!(identities(&app).await.is_empty());
}

async fn a_blocked_directory_member_cannot_sign_in(backend: Backend) {
    let (app, _slapd) = spawn_ldap(backend, Mode::Template).await;
    app.new_browser().register("root", PASSWORD).await;
    assert_redirects_to(&app.browser.login("ada", ADA_PASSWORD).await, "/");
    quire::models::user::change_by(
        &app.state.db.write,
        "ada",
        quire::models::user::AdminChange::Block,
        &quire::models::audit::Actor::CommandLine,
    )
    .await
    .unwrap();
    assert!(!app.browser.is_logged_in().await, "blocking ends the session");
    let browser = app.new_browser();
    let response = browser.login("ada", ADA_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("This account is blocked."));
    assert!(!browser.is_logged_in().await);
}

async fn a_local_account_of_the_same_name_stays_separate(backend: Backend) {
    let (app, _slapd) = spawn_ldap(backend, Mode::Template).await;
    app.new_browser().register("grace", PASSWORD).await;
    // The local password signs in the local account.
    let local = app.new_browser();
    assert_redirects_to(&local.login("grace", PASSWORD).await, "/");
    // The directory password signs in the directory's Grace, under a name of her own.
    let directory = app.new_browser();
    assert_redirects_to(&directory.login("grace", GRACE_PASSWORD).await, "/");
    let (_, profile) = directory.get_text("/profile").await;
    assert!(profile.contains("grace-2"), "{profile}");
    let made = member(&app, "grace-2").await.unwrap();
    assert_eq!(identities(&app).await[0].user_id, made.id);
    assert_eq!(app.user_count().await, 2);
}

async fn a_directory_that_is_down_gives_a_clear_error_not_a_500(backend: Backend) {
    let mut options = Options::default();
    options.ldap.url = Some(format!("ldap://127.0.0.1:{}", free_port()));
    options.ldap.bind_dn_template = Some("uid={username},ou=people,dc=example,dc=org".into());
    let app = spawn_with(backend, options).await;
    app.new_browser().register("root", PASSWORD).await;
    let response = app.browser.login("ada", ADA_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.text().await.unwrap().contains("The directory that checks passwords cannot be reached"));
    assert_eq!(app.user_count().await, 1);
    // A local account's password needs no directory.
    assert_redirects_to(&app.new_browser().login("root", PASSWORD).await, "/");
}

crate::tests!(
    a_directory_member_signs_in_with_their_directory_password,
    search_then_bind_finds_the_entry_with_a_service_account,
    a_wrong_directory_password_is_refused_and_nothing_is_stored,
    an_unknown_user_gets_the_same_refusal,
    the_username_is_escaped_so_it_cannot_change_the_query,
    a_blocked_directory_member_cannot_sign_in,
    a_local_account_of_the_same_name_stays_separate,
    a_directory_that_is_down_gives_a_clear_error_not_a_500,
);
