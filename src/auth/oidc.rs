//! OpenID Connect sign-in, as a relying party (the `openidconnect` crate): the authorization
//! code flow with PKCE, `state` and `nonce`, discovery and the JWKS from the issuer (kept for an
//! hour, and fetched again at once when a token names a key the kept set lacks: the provider
//! rotated its keys), and the ID token's signature, issuer, audience, expiry and nonce verified.
//!
//! Nothing is stored for a visitor between the two legs of the flow: the state, nonce, PKCE
//! verifier and where to go next travel in a signed cookie of ten minutes, read once.

use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies, Key};

use crate::config::Secret;
use crate::models::now_ms;

/// The path the provider sends the browser back to (register `PUBLIC_URL` + this at the provider).
pub const CALLBACK_PATH: &str = "/login/oidc/callback";
/// Where the flow starts.
pub const START_PATH: &str = "/login/oidc";
/// The name shown on the button when `--oidc-name` is not given.
pub const DEFAULT_NAME: &str = "single sign-on";
/// The claim groups are read from when `--oidc-groups-claim` is not given.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// How long discovery and the JWKS are kept before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The longest wait for the provider (discovery, JWKS, the token endpoint).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// `--oidc-*`: the provider and this wiki's client there.
#[derive(Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// What the button says after "Sign in with".
    pub name: String,
    /// The ID-token claim that lists the member's groups.
    pub groups_claim: String,
    /// Members of this group (in the groups claim) are admins; others are not.
    pub admin_group: Option<String>,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("name", &self.name)
            .field("groups_claim", &self.groups_claim)
            .field("admin_group", &self.admin_group)
            .finish()
    }
}

/// The raw `--oidc-*` values.
#[derive(Debug, Clone, Default)]
pub struct RawOidc {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub name: Option<String>,
    pub groups_claim: Option<String>,
    pub admin_group: Option<String>,
}

fn given(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

impl OidcSettings {
    /// `None` when no issuer is given; the other options then must not be given either.
    pub fn parse(raw: &RawOidc, public_url: Option<&str>) -> anyhow::Result<Option<Self>> {
        let Some(issuer) = given(&raw.issuer) else {
            if given(&raw.client_id).is_some() || given(&raw.client_secret).is_some() {
                anyhow::bail!(
                    "--oidc-client-id and --oidc-client-secret need --oidc-issuer (QUIRE_OIDC_ISSUER)"
                );
            }
            return Ok(None);
        };
        // Kept exactly as given: the ID token's `iss` must be this string (a trailing slash
        // included, for the providers whose issuer has one).
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            anyhow::bail!("QUIRE_OIDC_ISSUER must be an http(s) URL, got {issuer:?}");
        }
        IssuerUrl::new(issuer.clone()).map_err(|e| anyhow::anyhow!("QUIRE_OIDC_ISSUER {issuer:?}: {e}"))?;
        let Some(client_id) = given(&raw.client_id) else {
            anyhow::bail!("--oidc-issuer needs --oidc-client-id (QUIRE_OIDC_CLIENT_ID)");
        };
        if public_url.is_none() {
            anyhow::bail!(
                "--oidc-issuer needs --public-url (QUIRE_PUBLIC_URL): the provider sends members back to \
                 PUBLIC_URL{CALLBACK_PATH}"
            );
        }
        let name = given(&raw.name).unwrap_or_else(|| DEFAULT_NAME.to_owned());
        if name.chars().count() > 60 {
            anyhow::bail!("QUIRE_OIDC_NAME is at most 60 characters");
        }
        Ok(Some(Self {
            issuer,
            client_id,
            client_secret: given(&raw.client_secret).map(|s| Secret::new(s.into_bytes())),
            name,
            groups_claim: given(&raw.groups_claim).unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_owned()),
            admin_group: given(&raw.admin_group),
        }))
    }
}

/// Why a sign-in through the provider did not give a verified identity.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider did not answer, or not as a provider does.
    #[error("the provider cannot be reached: {0}")]
    Unreachable(String),
    /// The provider refused the code (used already, expired, or not ours).
    #[error("the provider refused the code: {0}")]
    CodeRefused(String),
    /// The ID token failed verification (signature, issuer, audience, expiry, nonce).
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
}

/// What a verified ID token says about the member.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub preferred_username: Option<String>,
    /// Only when the provider says it is verified.
    pub email: Option<String>,
    pub name: Option<String>,
    /// The groups claim (empty when absent).
    pub groups: Vec<String>,
}

struct Kept {
    metadata: CoreProviderMetadata,
    fetched: Instant,
}

/// The relying party: the settings, an HTTP client, and what discovery found.
pub struct Oidc {
    pub settings: OidcSettings,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    http: openidconnect::reqwest::Client,
    kept: RwLock<Option<Kept>>,
}

/// The pieces of a flow the browser keeps between its two legs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    /// Where to go after signing in.
    pub next: String,
    /// Set when a signed-in member is linking this provider's account to theirs.
    pub link_user: Option<i32>,
    issued_at: i64,
}

/// The flow cookie's name (with the `__Host-` prefix when cookies are `Secure`).
const COOKIE: &str = "quire_oidc";
/// How long the member has at the provider.
const FLOW_LIFETIME_MS: i64 = 10 * 60 * 1000;

impl Flow {
    fn set(&self, cookies: &Cookies, key: &Key, secure: bool) -> anyhow::Result<()> {
        let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(self)?);
        let cookie = Cookie::build((crate::cookies::cookie_name(COOKIE, secure), value))
            .path("/")
            .http_only(true)
            .secure(secure)
            // Lax: the provider's redirect back is a top-level GET, which carries it.
            .same_site(SameSite::Lax)
            .max_age(time::Duration::milliseconds(FLOW_LIFETIME_MS))
            .build();
        cookies.signed(key).add(cookie);
        Ok(())
    }

    /// The flow this browser started, taken (the cookie is removed): signed, under ten minutes
    /// old; `None` otherwise.
    pub fn take(cookies: &Cookies, key: &Key, secure: bool) -> Option<Self> {
        let name = crate::cookies::cookie_name(COOKIE, secure);
        let found = cookies.signed(key).get(&name);
        let mut removal = Cookie::from(name);
        removal.set_path("/");
        cookies.remove(removal);
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(found?.value()).ok()?;
        let flow: Self = serde_json::from_slice(&bytes).ok()?;
        let age = now_ms() - flow.issued_at;
        (0..FLOW_LIFETIME_MS).contains(&age).then_some(flow)
    }

    /// True when `state` is the one this flow sent (compared in constant time).
    pub fn state_matches(&self, state: &str) -> bool {
        bool::from(self.state.as_bytes().ct_eq(state.as_bytes()))
    }
}

impl Oidc {
    pub fn new(settings: OidcSettings, public_url: &str) -> anyhow::Result<Self> {
        let issuer = IssuerUrl::new(settings.issuer.clone())?;
        let redirect = RedirectUrl::new(format!("{public_url}{CALLBACK_PATH}"))?;
        let http = openidconnect::reqwest::Client::builder()
            // Following redirects from the provider's endpoints would let them point anywhere.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()?;
        Ok(Self { settings, issuer, redirect, http, kept: RwLock::new(None) })
    }

    /// The issuer's origin (`https://id.example.org`), for the Content-Security-Policy.
    pub fn origin(&self) -> String {
        self.issuer.url().origin().ascii_serialization()
    }

    /// Discovery (with the JWKS), from what is kept unless it is older than an hour or
    /// `refresh` asks for a new copy.
    async fn metadata(&self, refresh: bool) -> Result<CoreProviderMetadata, OidcError> {
        if !refresh
            && let Some(kept) = self.kept.read().await.as_ref()
            && kept.fetched.elapsed() < METADATA_TTL
        {
            return Ok(kept.metadata.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| OidcError::Unreachable(error_chain(&e)))?;
        tracing::info!(
            oidc.issuer = %self.settings.issuer,
            oidc.keys = metadata.jwks().keys().len(),
            "discovery and keys fetched"
        );
        *self.kept.write().await = Some(Kept { metadata: metadata.clone(), fetched: Instant::now() });
        Ok(metadata)
    }

    /// Fetches the key set again (after a token named a key the kept one lacks).
    async fn refresh_keys(&self, metadata: CoreProviderMetadata) -> Result<CoreProviderMetadata, OidcError> {
        let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| OidcError::Unreachable(error_chain(&e)))?;
        tracing::info!(oidc.issuer = %self.settings.issuer, oidc.keys = jwks.keys().len(), "keys fetched again");
        let metadata = metadata.set_jwks(jwks);
        *self.kept.write().await = Some(Kept { metadata: metadata.clone(), fetched: Instant::now() });
        Ok(metadata)
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(String::from_utf8_lossy(s.expose()).into_owned())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Starts a flow: the provider's authorization URL, and the cookie that remembers it.
    pub async fn begin(
        &self,
        cookies: &Cookies,
        key: &Key,
        secure: bool,
        next: String,
        link_user: Option<i32>,
    ) -> Result<String, OidcError> {
        let metadata = self.metadata(false).await?;
        let client = self.client(metadata);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let flow = Flow {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next,
            link_user,
            issued_at: now_ms(),
        };
        flow.set(cookies, key, secure).map_err(|e| OidcError::Unreachable(e.to_string()))?;
        Ok(url.to_string())
    }

    /// The second leg: the code exchanged (with the PKCE verifier) and the ID token verified.
    pub async fn finish(&self, flow: &Flow, code: &str) -> Result<Identity, OidcError> {
        let metadata = self.metadata(false).await?;
        let client = self.client(metadata.clone());
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Unreachable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|err| match err {
                openidconnect::RequestTokenError::ServerResponse(refusal) => {
                    OidcError::CodeRefused(refusal.to_string())
                }
                other => OidcError::Unreachable(error_chain(&other)),
            })?;
        let token = response
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("the token response has no ID token".into()))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let claims = match token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => {
                // A key the kept set lacks: the provider may have rotated. Fetch and try once more.
                let client = self.client(self.refresh_keys(metadata).await?);
                token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|e| OidcError::InvalidToken(error_chain(&e)))?
                    .clone()
            }
            Err(err) => return Err(OidcError::InvalidToken(error_chain(&err))),
        };
        Ok(self.identity(&claims, &token.to_string()))
    }

    /// What the verified claims say. The groups claim is not one `openidconnect` models, so it
    /// is read from the payload of the same (verified) token.
    fn identity(&self, claims: &CoreIdTokenClaims, compact: &str) -> Identity {
        let email = match (claims.email(), claims.email_verified()) {
            (Some(email), Some(true)) => Some(email.as_str().to_owned()),
            _ => None,
        };
        let name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned());
        Identity {
            issuer: self.settings.issuer.clone(),
            subject: claims.subject().as_str().to_owned(),
            preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
            email,
            name,
            groups: groups_in(compact, &self.settings.groups_claim),
        }
    }
}

/// The strings of `claim` in a JWT's payload: an array of strings, or one string.
fn groups_in(compact: &str, claim: &str) -> Vec<String> {
    let Some(payload) = compact.split('.').nth(1) else { return Vec::new() };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))
    else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Vec::new();
    };
    match map.get(claim) {
        Some(serde_json::Value::Array(items)) => {
            items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect()
        }
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// An error and its sources, on one line (for the log).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", encode(r#"{"alg":"RS256"}"#), encode(payload))
    }

    #[test]
    fn groups_are_read_as_a_list_or_a_single_string_and_anything_else_is_none() {
        assert_eq!(groups_in(&jwt(r#"{"groups":["a","b",3]}"#), "groups"), ["a", "b"]);
        assert_eq!(groups_in(&jwt(r#"{"roles":"wiki-admins"}"#), "roles"), ["wiki-admins"]);
        assert!(groups_in(&jwt(r#"{"groups":{"a":1}}"#), "groups").is_empty());
        assert!(groups_in(&jwt(r#"{}"#), "groups").is_empty());
        assert!(groups_in("not a token", "groups").is_empty());
    }

    #[test]
    fn settings_need_a_client_id_and_a_public_url_and_refuse_a_bad_issuer() {
        let raw = RawOidc {
            issuer: Some("https://id.example.org/realms/wiki/".into()),
            client_id: Some("quire".into()),
            ..RawOidc::default()
        };
        let parsed = OidcSettings::parse(&raw, Some("https://wiki.example.org")).unwrap().unwrap();
        assert_eq!(parsed.issuer, "https://id.example.org/realms/wiki/");
        assert_eq!(parsed.name, DEFAULT_NAME);
        assert_eq!(parsed.groups_claim, "groups");
        assert!(OidcSettings::parse(&raw, None).unwrap_err().to_string().contains("--public-url"));
        let no_id = RawOidc { client_id: None, ..raw.clone() };
        assert!(
            OidcSettings::parse(&no_id, Some("https://w")).unwrap_err().to_string().contains("client-id")
        );
        let ftp = RawOidc { issuer: Some("ftp://id.example.org".into()), ..raw.clone() };
        assert!(OidcSettings::parse(&ftp, Some("https://w")).is_err());
        let orphan = RawOidc { issuer: None, ..raw };
        assert!(OidcSettings::parse(&orphan, Some("https://w")).is_err());
        assert!(OidcSettings::parse(&RawOidc::default(), None).unwrap().is_none());
    }
}
