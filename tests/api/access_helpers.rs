//! Helpers for the tests of issue 8 (a private team wiki): an admin with their own browser,
//! members of each role, the admin forms, invitations, the `quire` binary (commands and a second
//! instance over the same database), and raw reads of the database that do not depend on the
//! implementation's entities (a dump of every table, to prove that nothing changed or that a
//! secret is not stored).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Query};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::helpers::*;

pub const BINARY: &str = env!("CARGO_BIN_EXE_quire");

/// The first account registered: it becomes the admin.
pub const ADMIN: &str = "wikiboss";

pub const READER_REASON: &str = "Your account can read this wiki but not change it.";
pub const BLOCKED: &str = "This account is blocked.";
pub const LAST_ADMIN: &str = "The last admin cannot be demoted, blocked or deleted.";
pub const INVITE_ONLY: &str = "Registration is by invitation only.";
pub const CLOSED: &str = "Registration is closed.";
pub const INVITE_EXPIRED: &str = "This invitation has expired.";
pub const INVITE_USED_UP: &str = "This invitation has been used up.";
pub const INVITE_REVOKED: &str = "This invitation has been revoked.";
pub const INVITE_INVALID: &str = "This invitation is not valid.";
pub const ROLE_VALUES: &str = "role must be one of: admin, editor, reader.";
pub const READ_ACCESS_VALUES: &str = "read_access must be one of: public, members.";
pub const REGISTRATION_VALUES: &str = "registration must be one of: open, invite, closed.";

// ----- members ----------------------------------------------------------------------------

/// A fresh wiki whose first account, `boss`, is the admin, logged in with a browser of its own.
pub async fn wiki_with_admin(backend: Backend) -> (TestApp, Browser) {
    let app = spawn_app(backend).await;
    let admin = logged_in(&app, ADMIN).await;
    assert_eq!(role_of(&app, ADMIN).await.as_deref(), Some("admin"), "the first account is admin");
    (app, admin)
}

/// Registers `name` (registration open) and logs them in with a browser of their own.
pub async fn logged_in(app: &TestApp, name: &str) -> Browser {
    let browser = app.new_browser();
    let response = browser.register(name, PASSWORD).await;
    assert_redirects_to(&response, "/login");
    let response = browser.login(name, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "login of {name}");
    browser
}

/// A new member with `role`, logged in with a browser of their own.
pub async fn member_with_role(app: &TestApp, admin: &Browser, name: &str, role: &str) -> Browser {
    let browser = logged_in(app, name).await;
    assert_eq!(role_of(app, name).await.as_deref(), Some("editor"), "new members are editors");
    if role != "editor" {
        assert_redirects_to(&set_role(admin, name, role).await, "/admin/users");
    }
    assert_eq!(role_of(app, name).await.as_deref(), Some(role));
    browser
}

/// A form token of a member (every form of a member's session carries the same binding).
pub async fn token(browser: &Browser) -> String {
    browser.csrf("/profile").await
}

/// POSTs a form with the browser's token added.
pub async fn post_with_token(browser: &Browser, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let token = token(browser).await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", &token));
    browser.post_form(path, &form).await
}

pub fn user_path(name: &str, action: &str) -> String {
    format!("/admin/users/{}/{action}", quire::urls::segment(name))
}

pub async fn set_role(admin: &Browser, name: &str, role: &str) -> reqwest::Response {
    post_with_token(admin, &user_path(name, "role"), &[("role", role)]).await
}

pub async fn block(admin: &Browser, name: &str) -> reqwest::Response {
    post_with_token(admin, &user_path(name, "block"), &[]).await
}

pub async fn unblock(admin: &Browser, name: &str) -> reqwest::Response {
    post_with_token(admin, &user_path(name, "unblock"), &[]).await
}

pub async fn delete_member(admin: &Browser, name: &str) -> reqwest::Response {
    post_with_token(admin, &user_path(name, "delete"), &[]).await
}

pub async fn add_member(
    admin: &Browser,
    name: &str,
    password: &str,
    role: Option<&str>,
) -> reqwest::Response {
    let mut fields = vec![("username", name), ("password", password)];
    if let Some(role) = role {
        fields.push(("role", role));
    }
    post_with_token(admin, "/admin/users", &fields).await
}

pub async fn save_settings(admin: &Browser, fields: &[(&str, &str)]) -> reqwest::Response {
    post_with_token(admin, "/admin/settings", fields).await
}

/// Sets one setting through the admin form, asserting success.
pub async fn set_setting(admin: &Browser, key: &str, value: &str) {
    let response = save_settings(admin, &[(key, value)]).await;
    assert_redirects_to(&response, "/admin/settings");
}

// ----- invitations ------------------------------------------------------------------------

/// POSTs the invitation form with the given fields (and the admin's token).
pub async fn post_invite(admin: &Browser, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let response = post_with_token(admin, "/admin/invites", fields).await;
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// The token of the link `/register?invite=TOKEN` shown on a page.
pub fn invite_token_in(html: &str) -> Option<String> {
    let marker = "/register?invite=";
    let at = html.find(marker)?;
    let token: String = html[at + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// Creates an invitation and returns its token.
pub async fn invite(admin: &Browser, uses: u32, days: u32, role: &str) -> String {
    let (uses, days) = (uses.to_string(), days.to_string());
    let (status, html) =
        post_invite(admin, &[("uses", &uses), ("expires_in_days", &days), ("role", role)]).await;
    assert_eq!(status, StatusCode::OK, "creating an invitation: {html}");
    invite_token_in(&html).unwrap_or_else(|| panic!("no invitation link on {html}"))
}

pub fn invite_path(token: &str) -> String {
    format!("/register?invite={}", quire::urls::encode_query(token))
}

/// Registers with an invitation the way a browser does: open the link, post its form.
pub async fn register_invited(browser: &Browser, name: &str, token: &str) -> reqwest::Response {
    let (status, html) = browser.get_text(&invite_path(token)).await;
    assert_eq!(status, StatusCode::OK, "the invitation form: {html}");
    let csrf = csrf_in(&html).expect("the invitation form has a token");
    assert_eq!(hidden_value(&html, "invite").as_deref(), Some(token), "the form carries the invitation");
    post_register(browser, name, Some(token), &csrf).await
}

/// POSTs the registration form as given.
pub async fn post_register(
    browser: &Browser,
    name: &str,
    invite: Option<&str>,
    csrf: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("username", name),
        ("password", PASSWORD),
        ("confirm_password", PASSWORD),
        ("csrf_token", csrf),
    ];
    if let Some(invite) = invite {
        form.push(("invite", invite));
    }
    browser.post_form("/register", &form).await
}

/// A visitor's form token (from the login page, which every visitor may see).
pub async fn visitor_token(browser: &Browser) -> String {
    browser.csrf("/login").await
}

/// The value of the hidden input `name`.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}""#);
    let mut rest = html;
    while let Some(at) = rest.find(&marker) {
        let start = rest[..at].rfind('<')?;
        let end = at + rest[at..].find('>')?;
        let tag = &rest[start..end];
        if tag.starts_with("<input") {
            let value = tag.split(r#"value=""#).nth(1)?;
            return Some(crate::pages::unescape(&value[..value.find('"')?]));
        }
        rest = &rest[end..];
    }
    None
}

// ----- redirects and bodies -----------------------------------------------------------------

/// Decodes `%XX` escapes.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Asserts a 303 to `/login?next=` naming `path` (path and query, percent-encoded).
#[track_caller]
pub fn assert_login_redirect(response: &reqwest::Response, path: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}: a redirect to log in");
    let target = location(response.headers());
    let next =
        target.strip_prefix("/login?next=").unwrap_or_else(|| panic!("{path}: redirected to {target}"));
    assert!(!next.contains('&') && !next.contains('#'), "{path}: next must be one encoded value: {target}");
    assert_eq!(percent_decode(next), path, "{path}: the next of {target}");
}

/// Asserts a 403 whose page says `reason`.
pub async fn assert_forbidden(response: reqwest::Response, reason: &str, what: &str) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
    let body = response.text().await.unwrap();
    assert!(body.contains(reason), "{what}: the page must say {reason:?}: {body}");
}

// ----- the database, read raw ---------------------------------------------------------------

fn backend_of(app: &TestApp) -> DatabaseBackend {
    app.state.db.read.get_database_backend()
}

fn quote(backend: DatabaseBackend, name: &str) -> String {
    match backend {
        DatabaseBackend::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    }
}

async fn strings(app: &TestApp, sql: &str) -> Vec<String> {
    let backend = backend_of(app);
    app.state
        .db
        .read
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Every table of the wiki's database.
pub async fn tables(app: &TestApp) -> Vec<String> {
    let sql = match backend_of(app) {
        DatabaseBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        DatabaseBackend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        _ => {
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        }
    };
    let mut names = strings(app, sql).await;
    names.sort();
    names
}

/// The columns of a table, in order.
pub async fn columns(app: &TestApp, table: &str) -> Vec<String> {
    let sql = match backend_of(app) {
        DatabaseBackend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        DatabaseBackend::Postgres => format!(
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
        ),
        _ => format!(
            "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = '{table}' ORDER BY ordinal_position"
        ),
    };
    strings(app, &sql).await
}

/// Every row of a table, each cell as its bytes (text as UTF-8, numbers as their decimal text,
/// binary as is), cells separated by 0x1F; rows sorted.
pub async fn rows_of(app: &TestApp, table: &str) -> Vec<Vec<u8>> {
    let backend = backend_of(app);
    let cells: Vec<String> = columns(app, table)
        .await
        .iter()
        .map(|column| {
            let c = quote(backend, column);
            match backend {
                DatabaseBackend::Sqlite => format!("hex({c})"),
                DatabaseBackend::Postgres => format!("encode(convert_to(CAST({c} AS TEXT), 'UTF8'), 'hex')"),
                _ => format!("HEX(CAST({c} AS BINARY))"),
            }
        })
        .collect();
    let sql = format!("SELECT {} FROM {}", cells.join(", "), quote(backend, table));
    let result = app
        .state
        .db
        .read
        .query_all_raw(Statement::from_string(backend, sql.clone()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows: Vec<Vec<u8>> = result
        .into_iter()
        .map(|row| {
            let mut bytes = Vec::new();
            for i in 0..cells.len() {
                let cell: Option<String> = row.try_get_by_index(i).unwrap();
                match cell {
                    Some(hex_text) => bytes.extend(hex::decode(hex_text).unwrap()),
                    None => bytes.extend_from_slice(b"<NULL>"),
                }
                bytes.push(0x1f);
            }
            bytes
        })
        .collect();
    rows.sort();
    rows
}

/// Tables that change by themselves while a wiki is used (sessions are refreshed, rate-limit
/// counters move, migrations are bookkeeping): left out of "nothing changed" comparisons.
fn is_bookkeeping(table: &str) -> bool {
    let table = table.to_ascii_lowercase();
    table == "sessions"
        || table.contains("seaql")
        || table.contains("throttle")
        || table.contains("rate_limit")
}

/// Everything the wiki stores, table by table (bookkeeping tables left out).
pub async fn dump(app: &TestApp) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for table in tables(app).await {
        if !is_bookkeeping(&table) {
            let rows = rows_of(app, &table).await;
            out.insert(table, rows);
        }
    }
    out
}

/// Asserts that two dumps are the same, naming the first table that differs.
#[track_caller]
pub fn assert_same_dump(
    before: &BTreeMap<String, Vec<Vec<u8>>>,
    after: &BTreeMap<String, Vec<Vec<u8>>>,
    what: &str,
) {
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "{what}: tables");
    for (table, rows) in before {
        let other = &after[table];
        if rows != other {
            let show = |rows: &Vec<Vec<u8>>| {
                rows.iter().map(|r| String::from_utf8_lossy(r).replace('\u{1f}', " | ")).collect::<Vec<_>>()
            };
            panic!("{what}: the table {table} changed:\nbefore {:#?}\nafter {:#?}", show(rows), show(other));
        }
    }
}

/// Every (table, column) whose stored bytes contain `needle` (as bytes, or as lower- or
/// upper-case hex of those bytes), bookkeeping tables included.
pub async fn find_in_database(app: &TestApp, needle: &[u8]) -> Vec<String> {
    let hex_lower = hex::encode(needle).into_bytes();
    let hex_upper = hex::encode_upper(needle).into_bytes();
    let mut found = Vec::new();
    for table in tables(app).await {
        for row in rows_of(app, &table).await {
            for n in [needle, &hex_lower, &hex_upper] {
                if !n.is_empty() && row.windows(n.len()).any(|w| w == n) {
                    found
                        .push(format!("{table}: {}", String::from_utf8_lossy(&row).replace('\u{1f}', " | ")));
                }
            }
        }
    }
    found
}

/// The table whose name contains `part` (e.g. "invit"), which must exist.
pub async fn table_like(app: &TestApp, part: &str) -> String {
    let all = tables(app).await;
    let matching: Vec<&String> = all.iter().filter(|t| t.to_ascii_lowercase().contains(part)).collect();
    assert_eq!(matching.len(), 1, "one table named like {part:?} among {all:?}");
    matching[0].clone()
}

/// How many rows a table holds.
pub async fn count_rows(app: &TestApp, table: &str) -> u64 {
    let backend = backend_of(app);
    let sql = format!("SELECT COUNT(*) FROM {}", quote(backend, table));
    let row = app.state.db.read.query_one_raw(Statement::from_string(backend, sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap() as u64
}

/// One text column of one row chosen by an equality on another text column.
async fn text_where(app: &TestApp, table: &str, column: &str, key_column: &str, key: &str) -> Option<String> {
    let query = Query::select()
        .expr(Func::cast_as(Expr::col(Alias::new(column)), Alias::new(text_type(backend_of(app)))))
        .from(Alias::new(table))
        .and_where(ExprTrait::eq(Expr::col(Alias::new(key_column)), key))
        .to_owned();
    let statement = backend_of(app).build(&query);
    let row = app.state.db.read.query_one_raw(statement).await.unwrap()?;
    row.try_get_by_index::<Option<String>>(0).unwrap()
}

fn text_type(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::MySql => "CHAR",
        _ => "TEXT",
    }
}

/// The role stored for a member (`users.role`), or None when there is no such member.
pub async fn role_of(app: &TestApp, name: &str) -> Option<String> {
    text_where(app, "users", "role", "username", name).await
}

/// The value stored for a setting (`settings.value`), or None when the row does not exist.
pub async fn setting(app: &TestApp, key: &str) -> Option<String> {
    text_where(app, "settings", "value", "key", key).await
}

/// The setting as the wiki applies it: the stored value, or the default when no row exists.
pub async fn effective_setting(app: &TestApp, key: &str) -> String {
    let default = match key {
        "read_access" => "public",
        "require_2fa" => "none",
        _ => "open",
    };
    setting(app, key).await.unwrap_or_else(|| default.to_owned())
}

/// The number of revisions stored, the number of pages, and each page's state.
pub async fn pages_state(app: &TestApp) -> Vec<(String, String, bool, Option<i32>)> {
    use quire::models::page;
    use sea_orm::{EntityTrait, QueryOrder};
    page::Entity::find()
        .order_by_asc(page::Column::Id)
        .all(&app.state.db.read)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.title, p.content, p.deleted_at.is_some(), p.author_id))
        .collect()
}

// ----- the binary -------------------------------------------------------------------------

/// `quire` on the app's database and data dir (so it shares the app's secret).
pub fn quire_command(app: &TestApp) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("DATABASE_URL", &app.database.url)
        .env("QUIRE_DATA_DIR", app.data_dir.path())
        .env("QUIRE_AVATAR_DIR", app.avatar_dir())
        .env("RUST_LOG", "warn")
        .env_remove("SESSION_SECRET")
        .env_remove("QUIRE_PUBLIC_URL")
        .env_remove("QUIRE_BIND");
    command
}

/// What a command answered.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `quire ARGS` to the end with `stdin`.
pub async fn cli(app: &TestApp, args: &[&str], stdin: &str) -> Output {
    let mut command = quire_command(app);
    command.args(args);
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("quire runs");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// A second `quire serve` process over the app's database, sharing its secret; killed when
/// dropped.
pub struct Instance {
    child: Child,
    pub base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn second_instance(app: &TestApp) -> Instance {
    let mut child = quire_command(app)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("quire starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().expect("the serving line names the address").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    Instance { child, base }
}

// ----- pages of the admin area --------------------------------------------------------------

/// The rows (`<tr>…</tr>`) of the first table on a page, header rows and the one-cell row of
/// an empty list ("Nothing recorded yet.") left out.
pub fn table_rows(html: &str) -> Vec<String> {
    let rows: Vec<String> = match html.find("<tbody") {
        Some(start) => {
            let body = &html[start..html[start..].find("</tbody>").map_or(html.len(), |end| start + end)];
            body.split("<tr")
                .skip(1)
                .map(|row| row[..row.find("</tr>").unwrap_or(row.len())].to_owned())
                .collect()
        }
        None => html
            .split("<tr")
            .skip(1)
            .map(|row| row[..row.find("</tr>").unwrap_or(row.len())].to_owned())
            .filter(|row| !row.contains("<th"))
            .collect(),
    };
    rows.into_iter().filter(|row| !(row.matches("<td").count() == 1 && row.contains("colspan"))).collect()
}

/// The values of the `<option … selected>` tags in an HTML fragment.
pub fn selected_options(html: &str) -> Vec<String> {
    html.split("<option")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            if !tag.contains("selected") {
                return None;
            }
            let value = tag.split(r#"value=""#).nth(1)?;
            Some(value[..value.find('"')?].to_owned())
        })
        .collect()
}

/// The text of an HTML fragment: tags removed, entities decoded, whitespace collapsed.
pub fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    crate::pages::unescape(&out).split_whitespace().collect::<Vec<_>>().join(" ")
}

// ----- routes -----------------------------------------------------------------------------

/// Real values for the parameters of route paths.
pub struct RouteValues {
    pub title: String,
    pub revision: String,
    pub name: String,
    pub invite: String,
}

/// A route path (`/wiki/{title}/revisions/{id}/revert`) with its parameters filled in.
pub fn fill_route(route: &str, values: &RouteValues) -> String {
    let segments: Vec<&str> = route.split('/').collect();
    let mut out = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            out.push((*segment).to_owned());
            continue;
        };
        let before = if i > 0 { segments[i - 1] } else { "" };
        let value = match (param.trim_start_matches('*'), before) {
            ("title", _) => quire::urls::segment(&values.title),
            (_, "revisions") => values.revision.clone(),
            (_, "invites") => values.invite.clone(),
            ("name" | "username", _) | (_, "users") => quire::urls::segment(&values.name),
            // A member's session, by the hash the session list links it with.
            (_, "sessions") => "0".repeat(64),
            _ => panic!("the test does not know how to fill {{{param}}} in {route}: teach fill_route"),
        };
        out.push(value);
    }
    out.join("/")
}

/// Every path registered with POST, as `quire::routes::post_routes()` lists them.
pub fn post_routes() -> Vec<String> {
    let routes: Vec<String> = quire::routes::post_routes().iter().map(|r| r.to_string()).collect();
    for known in [
        "/register",
        "/login",
        "/logout",
        "/create",
        "/preview",
        "/profile",
        "/wiki/{title}/edit",
        "/wiki/{title}/rename",
        "/wiki/{title}/delete",
        "/wiki/{title}/restore",
        "/wiki/{title}/revisions/{id}/revert",
        "/admin/settings",
        "/admin/users",
        "/admin/invites",
        "/admin/users/{name}/role",
        "/admin/users/{name}/block",
        "/admin/users/{name}/unblock",
        "/admin/users/{name}/delete",
        "/admin/invites/{id}/revoke",
    ] {
        let shape = |r: &str| -> String {
            r.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect::<Vec<_>>().join("/")
        };
        assert!(routes.iter().any(|r| shape(r) == shape(known)), "post_routes() lacks {known}: {routes:?}");
    }
    routes
}
