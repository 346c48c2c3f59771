//! LDAP sign-in (the `ldap3` crate, over tokio and rustls): the member's directory password is
//! checked by binding as their entry — by a DN template (`uid={username},ou=people,…`) or by
//! searching for the entry first (search-then-bind, with a service account or anonymously).
//! Quire keeps only the link to the entry (its `entryUUID`, else its DN), never the password.
//!
//! The typed username is escaped for where it goes: as a DN value in a template, as a filter
//! value in a search (RFC 4514 and RFC 4515), so `*)(uid=*` is a name, not a query.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

use crate::config::Secret;

/// The issuer identities from the directory are kept under (one directory per wiki).
pub const ISSUER: &str = "ldap";
/// What `{username}` is replaced by in the template and the filter.
const PLACEHOLDER: &str = "{username}";
/// The filter used when `--ldap-user-filter` is not given.
pub const DEFAULT_USER_FILTER: &str = "(uid={username})";
/// The attribute the member's address is read from when `--ldap-email-attribute` is not given.
pub const DEFAULT_EMAIL_ATTRIBUTE: &str = "mail";
/// The longest wait for the directory: connecting, and each operation.
const TIMEOUT: Duration = Duration::from_secs(5);
/// LDAP's result code for a wrong password (or an unknown DN).
const INVALID_CREDENTIALS: u32 = 49;

/// How the member's entry is found.
#[derive(Clone)]
pub enum Bind {
    /// Bind as the DN this template makes of the username.
    Template(String),
    /// Bind as the service account (or anonymously), search, then bind as the entry found.
    Search { bind_dn: Option<String>, bind_password: Option<Secret>, base_dn: String, filter: String },
}

/// `--ldap-*`.
#[derive(Clone)]
pub struct LdapSettings {
    pub url: String,
    pub bind: Bind,
    pub starttls: bool,
    pub ca_file: Option<PathBuf>,
    /// Certificates are not checked: for tests only.
    pub insecure_skip_verify: bool,
    pub email_attribute: String,
}

impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bind = match &self.bind {
            Bind::Template(template) => format!("template {template:?}"),
            Bind::Search { bind_dn, base_dn, filter, .. } => {
                format!("search {filter:?} under {base_dn:?} as {bind_dn:?}")
            }
        };
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("bind", &bind)
            .field("starttls", &self.starttls)
            .field("ca_file", &self.ca_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("email_attribute", &self.email_attribute)
            .finish()
    }
}

/// The raw `--ldap-*` values.
#[derive(Debug, Clone, Default)]
pub struct RawLdap {
    pub url: Option<String>,
    pub bind_dn_template: Option<String>,
    pub bind_dn: Option<String>,
    pub bind_password: Option<String>,
    pub base_dn: Option<String>,
    pub user_filter: Option<String>,
    pub starttls: bool,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub email_attribute: Option<String>,
}

fn given(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

impl LdapSettings {
    /// `None` without `--ldap-url`; the other options then must not be given.
    pub fn parse(raw: &RawLdap) -> anyhow::Result<Option<Self>> {
        let Some(url) = given(&raw.url) else {
            if given(&raw.bind_dn_template).is_some() || given(&raw.base_dn).is_some() {
                bail!("the --ldap-* options need --ldap-url (QUIRE_LDAP_URL)");
            }
            return Ok(None);
        };
        let parsed = url::Url::parse(&url).with_context(|| format!("QUIRE_LDAP_URL {url:?} is not a URL"))?;
        match parsed.scheme() {
            "ldap" => {}
            "ldaps" if raw.starttls => bail!("--ldap-starttls is for ldap:// URLs; ldaps:// is TLS already"),
            "ldaps" => {}
            other => bail!("QUIRE_LDAP_URL must start with ldap:// or ldaps://, got {other}://"),
        }
        let bind = match (given(&raw.bind_dn_template), given(&raw.base_dn)) {
            (Some(_), Some(_)) => {
                bail!("give either --ldap-bind-dn-template or --ldap-base-dn (search-then-bind), not both")
            }
            (Some(template), None) => {
                if !template.contains(PLACEHOLDER) {
                    bail!(
                        "--ldap-bind-dn-template must contain {PLACEHOLDER}, like uid={PLACEHOLDER},ou=people,dc=example,dc=org"
                    );
                }
                if given(&raw.bind_dn).is_some() {
                    bail!("--ldap-bind-dn is for search-then-bind (--ldap-base-dn), not with a template");
                }
                Bind::Template(template)
            }
            (None, Some(base_dn)) => {
                let filter = given(&raw.user_filter).unwrap_or_else(|| DEFAULT_USER_FILTER.to_owned());
                if !filter.contains(PLACEHOLDER) {
                    bail!("--ldap-user-filter must contain {PLACEHOLDER}, like {DEFAULT_USER_FILTER}");
                }
                let bind_dn = given(&raw.bind_dn);
                let bind_password = raw.bind_password.clone().filter(|p| !p.is_empty());
                if bind_dn.is_some() != bind_password.is_some() {
                    bail!(
                        "--ldap-bind-dn and --ldap-bind-password go together (neither: an anonymous search)"
                    );
                }
                Bind::Search {
                    bind_dn,
                    bind_password: bind_password.map(|p| Secret::new(p.into_bytes())),
                    base_dn,
                    filter,
                }
            }
            (None, None) => {
                bail!("--ldap-url needs --ldap-bind-dn-template, or --ldap-base-dn for search-then-bind")
            }
        };
        if let Some(file) = &raw.ca_file
            && !file.is_file()
        {
            bail!("--ldap-ca-file {} is not a readable file", file.display());
        }
        Ok(Some(Self {
            url,
            bind,
            starttls: raw.starttls,
            ca_file: raw.ca_file.clone(),
            insecure_skip_verify: raw.insecure_skip_verify,
            email_attribute: given(&raw.email_attribute)
                .unwrap_or_else(|| DEFAULT_EMAIL_ATTRIBUTE.to_owned()),
        }))
    }
}

/// The member's entry, found and their password accepted by the directory.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dn: String,
    /// What the link is kept under: `entryUUID` when the directory has it, else the DN.
    pub subject: String,
    pub email: Option<String>,
}

/// The directory could not answer.
#[derive(Debug, thiserror::Error)]
#[error("the directory cannot be reached: {0}")]
pub struct Unreachable(pub String);

impl From<ldap3::LdapError> for Unreachable {
    fn from(err: ldap3::LdapError) -> Self {
        Self(err.to_string())
    }
}

/// The directory, as configured.
pub struct Directory {
    settings: LdapSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Directory {
    pub fn new(settings: LdapSettings) -> anyhow::Result<Self> {
        let tls = match &settings.ca_file {
            Some(file) if !settings.insecure_skip_verify => Some(Arc::new(tls_config(file)?)),
            _ => None,
        };
        Ok(Self { settings, tls })
    }

    /// Checks `password` for `username`: the entry when the directory accepts it, `None` for an
    /// unknown name or a wrong password (the same answer), an error when it cannot be asked.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<Option<Entry>, Unreachable> {
        // An empty password would be an unauthenticated bind, which directories accept.
        if password.is_empty() || username.is_empty() {
            return Ok(None);
        }
        let mut connection = LdapConnSettings::new()
            .set_conn_timeout(TIMEOUT)
            .set_starttls(self.settings.starttls)
            .set_no_tls_verify(self.settings.insecure_skip_verify);
        if let Some(tls) = &self.tls {
            connection = connection.set_config(tls.clone());
        }
        let (driver, mut ldap) = LdapConnAsync::with_settings(connection, &self.settings.url).await?;
        ldap3::drive!(driver);
        let found = self.find_and_bind(&mut ldap, username, password).await;
        let _ = ldap.unbind().await;
        found
    }

    async fn find_and_bind(
        &self,
        ldap: &mut ldap3::Ldap,
        username: &str,
        password: &str,
    ) -> Result<Option<Entry>, Unreachable> {
        let dn = match &self.settings.bind {
            Bind::Template(template) => template.replace(PLACEHOLDER, &ldap3::dn_escape(username)),
            Bind::Search { bind_dn, bind_password, base_dn, filter } => {
                if let (Some(dn), Some(secret)) = (bind_dn, bind_password) {
                    let password = String::from_utf8_lossy(secret.expose()).into_owned();
                    let result = ldap.with_timeout(TIMEOUT).simple_bind(dn, &password).await?;
                    if result.rc != 0 {
                        return Err(Unreachable(format!(
                            "the service account was refused (result {}: {})",
                            result.rc, result.text
                        )));
                    }
                }
                let filter = filter.replace(PLACEHOLDER, &ldap3::ldap_escape(username));
                let (entries, _) = ldap
                    .with_timeout(TIMEOUT)
                    .search(base_dn, Scope::Subtree, &filter, vec!["1.1"])
                    .await?
                    .success()?;
                match entries.as_slice() {
                    [one] => SearchEntry::construct(one.clone()).dn,
                    [] => return Ok(None),
                    _ => {
                        tracing::warn!(
                            ldap.entries = entries.len(),
                            "the user filter matched several entries"
                        );
                        return Ok(None);
                    }
                }
            }
        };
        let result = ldap.with_timeout(TIMEOUT).simple_bind(&dn, password).await?;
        match result.rc {
            0 => {}
            INVALID_CREDENTIALS => return Ok(None),
            rc => {
                return Err(Unreachable(format!("the bind was answered with result {rc}: {}", result.text)));
            }
        }
        // Bound as the member: read what the link and the profile need from their own entry.
        let attributes = vec!["entryUUID", self.settings.email_attribute.as_str()];
        let (entries, _) = ldap
            .with_timeout(TIMEOUT)
            .search(&dn, Scope::Base, "(objectClass=*)", attributes)
            .await?
            .success()?;
        let entry = entries.into_iter().next().map(SearchEntry::construct);
        let first = |name: &str| {
            entry.as_ref().and_then(|e| {
                e.attrs
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| v.first().cloned())
            })
        };
        let subject = first("entryUUID").unwrap_or_else(|| dn.to_ascii_lowercase());
        let email = first(&self.settings.email_attribute);
        Ok(Some(Entry { dn, subject, email }))
    }
}

/// A TLS configuration that trusts the certificates in `file` (PEM) only.
fn tls_config(file: &std::path::Path) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(file)
        .with_context(|| format!("cannot read --ldap-ca-file {}", file.display()))?
    {
        let certificate = certificate
            .with_context(|| format!("--ldap-ca-file {} holds a bad certificate", file.display()))?;
        roots.add(certificate).with_context(|| format!("--ldap-ca-file {}", file.display()))?;
    }
    if roots.is_empty() {
        bail!("--ldap-ca-file {} holds no certificate", file.display());
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawLdap {
        RawLdap {
            url: Some("ldap://127.0.0.1:389".into()),
            bind_dn_template: Some("uid={username},ou=people,dc=example,dc=org".into()),
            ..RawLdap::default()
        }
    }

    #[test]
    fn settings_take_a_template_or_a_search_and_refuse_what_cannot_work() {
        assert!(matches!(LdapSettings::parse(&raw()).unwrap().unwrap().bind, Bind::Template(_)));
        assert!(LdapSettings::parse(&RawLdap::default()).unwrap().is_none());
        let search =
            RawLdap { bind_dn_template: None, base_dn: Some("ou=people,dc=example,dc=org".into()), ..raw() };
        match LdapSettings::parse(&search).unwrap().unwrap().bind {
            Bind::Search { filter, bind_dn: None, .. } => assert_eq!(filter, DEFAULT_USER_FILTER),
            _ => panic!("a search"),
        }
        for (bad, says) in [
            (RawLdap { url: Some("http://x".into()), ..raw() }, "ldap://"),
            (RawLdap { bind_dn_template: Some("ou=people".into()), ..raw() }, "{username}"),
            (RawLdap { base_dn: Some("dc=x".into()), ..raw() }, "not both"),
            (RawLdap { bind_dn_template: None, ..raw() }, "--ldap-base-dn"),
            (RawLdap { url: Some("ldaps://x".into()), starttls: true, ..raw() }, "TLS already"),
            (
                RawLdap {
                    bind_dn: Some("cn=admin".into()),
                    bind_dn_template: None,
                    base_dn: Some("dc=x".into()),
                    ..raw()
                },
                "go together",
            ),
            (RawLdap { url: None, ..raw() }, "need --ldap-url"),
        ] {
            let err = LdapSettings::parse(&bad).unwrap_err().to_string();
            assert!(err.contains(says), "{says}: {err}");
        }
    }
}
