//! The pages Quire renders (askama: compiled, type-checked, auto-escaping). Only HTML that
//! came out of `render` is ever marked safe.

use askama::Template;

use crate::flash::Message;

/// What the shared layout needs: who is logged in, pending messages, the logout token.
pub struct Layout {
    pub user: Option<NavUser>,
    pub flashes: Vec<Message>,
    pub csrf_token: String,
    /// A visitor sees the Register link only while registration is open.
    pub show_register: bool,
    /// The colour scheme the reader chose.
    pub theme: crate::theme::Theme,
    /// This page's path and query: where Login and the theme switch come back to.
    pub here: String,
}

pub struct NavUser {
    pub username: String,
    pub profile_href: String,
    pub avatar_src: Option<String>,
    pub may_edit: bool,
    pub is_admin: bool,
}

impl Layout {
    /// The layout of error pages built outside a handler, which know nothing of the visitor.
    pub fn bare() -> Self {
        Self {
            user: None,
            flashes: Vec::new(),
            csrf_token: String::new(),
            show_register: false,
            theme: crate::theme::Theme::System,
            here: "/".to_owned(),
        }
    }

    /// The header's Login link: back here after logging in (not from the login page itself).
    pub fn login_href(&self) -> String {
        if self.here == "/" || self.here.starts_with("/login") || self.here.starts_with("/register") {
            "/login".to_owned()
        } else {
            format!("/login?next={}", crate::urls::encode_query(&self.here))
        }
    }

    /// Whether the page shows the actions that change pages (editors and admins).
    pub fn may_edit(&self) -> bool {
        self.user.as_ref().is_some_and(|user| user.may_edit)
    }

    pub fn stylesheet(&self) -> &'static str {
        crate::assets::STYLESHEET_PATH.as_str()
    }

    pub fn script(&self) -> &'static str {
        crate::assets::SCRIPT_PATH.as_str()
    }

    pub fn favicon(&self) -> &'static str {
        crate::assets::FAVICON_PATH.as_str()
    }
}

/// A link to a page, ready for a template.
pub struct Link {
    pub text: String,
    pub href: String,
}

impl Link {
    pub fn page(title: String) -> Self {
        Self { href: crate::urls::page(&title), text: title }
    }
}

/// Messages per form field.
#[derive(Default)]
pub struct FieldErrors {
    pub form: Vec<String>,
    pub username: Vec<String>,
    pub password: Vec<String>,
    pub confirm_password: Vec<String>,
    pub title: Vec<String>,
    pub content: Vec<String>,
    pub summary: Vec<String>,
    pub avatar: Vec<String>,
    pub current_password: Vec<String>,
    pub code: Vec<String>,
}

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.form.is_empty()
            && self.username.is_empty()
            && self.password.is_empty()
            && self.confirm_password.is_empty()
            && self.title.is_empty()
            && self.content.is_empty()
            && self.summary.is_empty()
            && self.avatar.is_empty()
            && self.current_password.is_empty()
            && self.code.is_empty()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub layout: Layout,
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub layout: Layout,
    pub pages: Vec<Link>,
    /// The page an admin chose to show above the list.
    pub main_page: Option<MainPage>,
    /// Whether the viewer may create pages, and whether they are logged in (the empty wiki's
    /// call to action).
    pub may_create: bool,
    pub is_member: bool,
    pub login_href: String,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

/// The main page at `/`.
pub struct MainPage {
    pub title: String,
    pub href: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub username: String,
    /// The invitation token the form carries on (hidden), or empty.
    pub invite: String,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "forgot.html")]
pub struct ForgotPage {
    pub layout: Layout,
    pub csrf_token: String,
    /// Mail is set up (`--smtp-url`); without it the page says to ask an admin.
    pub mail: bool,
    /// What was done, after a request.
    pub sent: Option<&'static str>,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "reset.html")]
pub struct ResetPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub token: String,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "verify_email.html")]
pub struct VerifyEmailPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub token: String,
    pub address: String,
}

#[derive(Template)]
#[template(path = "login_code.html")]
pub struct TwoFactorLoginPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub next: String,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub csrf_token: String,
    /// The name on the "Sign in with NAME" button, when single sign-on is set up.
    pub sso_name: Option<String>,
    /// The username and password form is shown (`--password-login`).
    pub password_login: bool,
    pub username: String,
    pub next: String,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub layout: Layout,
}

#[derive(Template)]
#[template(path = "create.html")]
pub struct CreatePage {
    pub layout: Layout,
    pub csrf_token: String,
    pub title: String,
    pub content: String,
    /// The rendered preview, when asked for.
    pub preview: Option<String>,
    /// Where Cancel goes: the list of pages.
    pub cancel_href: String,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "wiki_page.html")]
pub struct WikiPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub title: String,
    /// `/wiki/TITLE`, the base of the page's action links.
    pub base: String,
    pub author: Option<Link>,
    pub html: String,
    pub updated: String,
    pub backlinks: Vec<Link>,
    pub deleted: bool,
    pub may_delete: bool,
}

#[derive(Template)]
#[template(path = "edit.html")]
pub struct EditPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub action: String,
    pub page_href: String,
    pub title: String,
    pub content: String,
    pub summary: String,
    pub base_revision: i32,
    pub preview: Option<String>,
    pub conflict: Option<crate::routes::edit::Conflict>,
    /// A conflict with regions to choose from: the resolution form replaces the editor.
    pub resolving: bool,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "rename.html")]
pub struct RenamePage {
    pub layout: Layout,
    pub csrf_token: String,
    pub action: String,
    pub title: String,
    pub new_title: String,
    pub errors: FieldErrors,
}

pub struct HistoryRow {
    pub id: i32,
    pub href: String,
    pub diff_href: Option<String>,
    pub author: Option<String>,
    pub time: String,
    pub summary: String,
    pub size: i32,
    pub change: String,
}

#[derive(Template)]
#[template(path = "history.html")]
pub struct HistoryPage {
    pub layout: Layout,
    pub title: String,
    pub page_href: String,
    pub diff_action: String,
    pub rows: Vec<HistoryRow>,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    /// Uploads, deletions and restorations of the page's files, newest first.
    pub file_events: Vec<FileEventRow>,
}

/// One line of a page's file history.
pub struct FileEventRow {
    pub what: &'static str,
    pub name: String,
    /// The version's download (uploads of a file that is not deleted).
    pub href: Option<String>,
    pub version: Option<i32>,
    pub who: String,
    pub time: String,
}

#[derive(Template)]
#[template(path = "revision.html")]
pub struct RevisionPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub title: String,
    pub page_href: String,
    pub revert_action: String,
    pub diff_href: String,
    pub id: i32,
    pub author: Option<String>,
    pub time: String,
    pub summary: String,
    pub current: bool,
    pub html: String,
}

#[derive(Template)]
#[template(path = "diff.html")]
pub struct DiffPage {
    pub layout: Layout,
    pub title: String,
    pub page_href: String,
    pub history_href: String,
    pub from: i32,
    pub to: i32,
    pub from_href: String,
    pub to_href: String,
    pub from_raw_href: String,
    pub to_raw_href: String,
    /// `Some(rows shown)` when the diff was cut.
    pub truncated: Option<usize>,
    pub rows: Vec<crate::diff::DiffRow>,
}

pub struct SearchResult {
    pub title: String,
    pub href: String,
    pub snippet: Vec<(bool, String)>,
}

#[derive(Template)]
#[template(path = "search.html")]
pub struct SearchPage {
    pub layout: Layout,
    pub query: String,
    /// "3 results for ‘wiki’", when the query was looked for.
    pub summary: Option<String>,
    pub message: Option<&'static str>,
    pub results: Vec<SearchResult>,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

/// One line of recent changes.
pub struct Change {
    pub page: Link,
    /// The revision, for a saved change; none for a deletion or restoration.
    pub revision_href: Option<String>,
    /// The change against the revision before it (none: the page's first).
    pub diff_href: Option<String>,
    pub author: Option<Link>,
    pub time: String,
    pub summary: String,
    /// `+12`, `−3` (bytes), for a saved change.
    pub size_change: Option<String>,
    /// Whether the size grew (`+`), shrank, or stayed.
    pub grew: std::cmp::Ordering,
    /// "deleted" or "restored" for such events.
    pub event: Option<&'static str>,
    /// Whether the page's title links to it (not for a visitor, when it is deleted).
    pub linked: bool,
}

/// Changes of one day.
pub struct ChangeDay {
    pub day: String,
    pub changes: Vec<Change>,
}

#[derive(Template)]
#[template(path = "recent.html")]
pub struct RecentPage {
    pub layout: Layout,
    pub days: Vec<ChangeDay>,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

pub struct AtomEntry {
    pub id: String,
    pub href: String,
    pub title: String,
    pub updated: String,
    pub author: String,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "recent.atom", escape = "xml")]
pub struct AtomFeed {
    pub id: String,
    pub self_href: String,
    pub alternate_href: String,
    pub updated: String,
    pub entries: Vec<AtomEntry>,
}

#[derive(Template)]
#[template(path = "user.html")]
pub struct UserPage {
    pub layout: Layout,
    pub username: String,
    pub avatar_src: Option<String>,
    pub role: &'static str,
    pub joined: String,
    pub pages: Vec<Link>,
    pub contributions: Vec<Change>,
}

#[derive(Template)]
#[template(path = "missing_page.html")]
pub struct MissingPage {
    pub layout: Layout,
    /// Visitors (asked to log in on the way) and editors; not readers.
    pub may_create: bool,
    pub title: String,
    pub create_href: String,
}

#[derive(Template)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    pub layout: Layout,
    pub csrf_token: String,
    pub username: String,
    pub avatar_src: Option<String>,
    pub pages: Vec<Link>,
    pub errors: FieldErrors,
}

/// One of the member's sessions on `/profile/security`.
pub struct SessionRow {
    /// The session this page was asked for with.
    pub current: bool,
    pub created: String,
    pub last_seen: String,
    pub address: String,
    /// "Firefox on Linux", from `agent`.
    pub browser: String,
    pub agent: String,
    pub end_href: String,
}

#[derive(Template)]
#[template(path = "security.html")]
pub struct SecurityPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub username: String,
    pub sessions: Vec<SessionRow>,
    /// How many of `sessions` are not this one.
    pub others: usize,
    pub two_factor_on: bool,
    /// The member's verified address.
    pub email: Option<String>,
    /// Mail is set up.
    pub mail: bool,
    /// The single sign-on's name, when there is one.
    pub sso_name: Option<String>,
    /// The member's account at that provider is linked.
    pub sso_linked: bool,
    /// The member has a password of their own (members made by a sign-in provider do not).
    pub has_password: bool,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "two_factor.html")]
pub struct TwoFactorPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub username: String,
    /// "off", "pending" or "on".
    pub state: &'static str,
    /// The QR code of the `otpauth://` URI, drawn by the server (pending only).
    pub qr_svg: String,
    /// The secret in groups of four (pending only).
    pub secret: String,
    pub codes_left: u64,
    /// The wiki requires two-factor of this member (`require_2fa`).
    pub required: bool,
    /// Recovery codes just made: shown this once.
    pub new_codes: Vec<String>,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "admin/home.html")]
pub struct AdminHome {
    pub layout: Layout,
    /// What stored files take (each content once), and of what quota.
    pub storage: String,
}

/// A member as the admin list shows them.
pub struct MemberRow {
    pub username: String,
    pub href: String,
    /// `/admin/users/NAME`, the base of the row's actions.
    pub base: String,
    pub role: crate::access::Role,
    pub blocked: bool,
    pub pages: u64,
    pub last_login: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct AdminUsersPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub rows: Vec<MemberRow>,
    pub roles: [crate::access::Role; 3],
    /// The add form's name, given back after a refusal.
    pub username: String,
    pub errors: FieldErrors,
}

pub struct InviteRow {
    pub id: i32,
    pub revoke_action: String,
    pub creator: Option<String>,
    pub role: crate::access::Role,
    pub uses_left: i32,
    pub expires: String,
    pub status: &'static str,
    /// Not yet revoked (expired and used-up ones may still be revoked, to say so).
    pub revocable: bool,
}

#[derive(Template)]
#[template(path = "admin/invites.html")]
pub struct AdminInvitesPage {
    pub layout: Layout,
    pub csrf_token: String,
    /// The link of the invitation just made: shown once.
    pub new_link: Option<String>,
    /// Whether the new link was mailed, and to whom.
    pub mail_note: Option<String>,
    /// Mail is set up: the form offers to send the link.
    pub mail: bool,
    pub rows: Vec<InviteRow>,
    pub roles: [crate::access::Role; 3],
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
pub struct AdminSettingsPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub read_access: String,
    pub registration: String,
    pub read_access_choices: [&'static str; 2],
    pub registration_choices: [&'static str; 3],
    /// The title of the page shown at `/` (empty: none).
    pub main_page: String,
    pub require_2fa: String,
    pub require_2fa_choices: [&'static str; 3],
    pub errors: FieldErrors,
}

pub struct AuditRow {
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AdminAuditPage {
    pub layout: Layout,
    pub rows: Vec<AuditRow>,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

/// A Unix-millisecond time as `2026-11-24 14:05 UTC`.
/// The day of a time, as recent changes head their groups: `Friday, 04 December 2026` (UTC).
pub fn format_day(ms: i64) -> String {
    let format = time::macros::format_description!("[weekday], [day] [month repr:long] [year]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

pub fn format_time(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "delete.html")]
pub struct DeletePage {
    pub layout: Layout,
    pub csrf_token: String,
    pub action: String,
    pub page_href: String,
    pub title: String,
    pub may_restore: bool,
    pub errors: FieldErrors,
}

pub struct DeletedRow {
    pub title: String,
    pub href: String,
    pub deleted: String,
}

#[derive(Template)]
#[template(path = "deleted.html")]
pub struct DeletedPages {
    pub layout: Layout,
    pub csrf_token: String,
    pub pages: Vec<DeletedRow>,
}

/// One example of the Markdown help: what one types, and what the page shows.
pub struct HelpExample {
    pub what: &'static str,
    pub source: &'static str,
    pub html: String,
}

#[derive(Template)]
#[template(path = "help.html")]
pub struct HelpPage {
    pub layout: Layout,
    pub examples: Vec<HelpExample>,
}

/// One version of an attached file, in its list.
pub struct VersionRow {
    pub number: i32,
    pub href: String,
    pub size: String,
    pub uploaded: String,
    pub uploader_name: String,
}

/// One attached file: its newest version's facts, and every version.
pub struct AttachmentRow {
    pub name: String,
    /// `/wiki/TITLE/attachments/NAME`
    pub href: String,
    pub size: String,
    pub bytes: i64,
    pub content_type: String,
    pub uploader: Option<Link>,
    pub uploader_name: String,
    /// When the newest version was uploaded (for a deleted file: when it was deleted).
    pub uploaded: String,
    pub versions: Vec<VersionRow>,
}

#[derive(Template)]
#[template(path = "attachments.html")]
pub struct AttachmentsPage {
    pub layout: Layout,
    pub csrf_token: String,
    pub title: String,
    pub page_href: String,
    /// Where the upload form posts.
    pub action: String,
    pub files: Vec<AttachmentRow>,
    /// Deleted files, shown to admins (who may restore them).
    pub deleted: Vec<AttachmentRow>,
    pub may_edit: bool,
    pub max_upload: String,
    pub errors: FieldErrors,
}
