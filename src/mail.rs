//! Mail: the SMTP relay Quire sends its links through (`--smtp-url`, `--smtp-from`).
//!
//! lettre over rustls: `smtp://host:25` (plain, for a relay on the same machine),
//! `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtps://user:pass@host:465` (TLS).
//! Links in mails point at `--public-url`, never at the `Host` a request named: a forged
//! `Host` must not turn a password-reset mail into a link to someone else's server.

use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where mail goes, and as whom it is sent.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// The mail settings, checked at start-up.
#[derive(Clone)]
pub struct MailSettings {
    pub smtp_url: String,
    pub from: Mailbox,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &crate::config::redact_url(&self.smtp_url))
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl MailSettings {
    /// Checks the relay URL and the sender; `public_url` must be set for links to point at.
    pub fn parse(smtp_url: &str, from: Option<&str>, public_url: Option<&str>) -> anyhow::Result<Self> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url).map_err(|e| {
            anyhow::anyhow!(
                "QUIRE_SMTP_URL {:?} is not an SMTP URL ({e}); use smtp://host:25, smtp://user:pass@host:587?tls=required or smtps://user:pass@host:465",
                crate::config::redact_url(smtp_url)
            )
        })?;
        let Some(from) = from.map(str::trim).filter(|f| !f.is_empty()) else {
            anyhow::bail!(
                "QUIRE_SMTP_URL needs QUIRE_SMTP_FROM (--smtp-from), the sender, like \"Wiki <wiki@example.org>\""
            );
        };
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("QUIRE_SMTP_FROM {from:?} is not a mail address ({e})"))?;
        if public_url.is_none() {
            anyhow::bail!(
                "QUIRE_SMTP_URL needs QUIRE_PUBLIC_URL (--public-url): the links in mails point there"
            );
        }
        Ok(Self { smtp_url: smtp_url.to_owned(), from })
    }
}

impl Mailer {
    pub fn new(settings: &MailSettings, public_url: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
            .context("the SMTP URL")?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self { transport, from: settings.from.clone(), public_url: public_url.to_owned() })
    }

    /// The absolute URL of a path of this wiki, for a mail.
    pub fn link(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.public_url)
    }

    /// Sends a plain-text mail.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let to: Mailbox = to.parse().with_context(|| format!("{to:?} is not a mail address"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .context("cannot build the mail")?;
        self.transport.send(message).await.context("the SMTP relay refused the mail")?;
        Ok(())
    }
}

/// An address as a member typed it, checked (a mailbox address, at most 254 bytes) and
/// lowercased (how it is stored and compared).
pub fn parse_address(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("An email address is required.");
    }
    if trimmed.len() > 254 || trimmed.contains(['<', '>', ',', ' ']) {
        return Err("This is not an email address.");
    }
    match trimmed.parse::<lettre::Address>() {
        Ok(_) => Ok(trimmed.to_lowercase()),
        Err(_) => Err("This is not an email address."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_lowercased() {
        assert_eq!(parse_address(" Alice@Example.ORG "), Ok("alice@example.org".to_owned()));
        assert!(parse_address("").is_err());
        assert!(parse_address("no-at-sign").is_err());
        assert!(parse_address("a@b@c").is_err());
        assert!(parse_address("Alice <alice@example.org>").is_err());
        assert!(parse_address(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn settings_need_a_sender_and_a_public_url() {
        let ok =
            MailSettings::parse("smtp://127.0.0.1:2525", Some("Wiki <wiki@example.org>"), Some("https://w"));
        assert!(ok.is_ok());
        assert!(MailSettings::parse("smtp://127.0.0.1:2525", None, Some("https://w")).is_err());
        assert!(MailSettings::parse("smtp://127.0.0.1:2525", Some("wiki@example.org"), None).is_err());
        assert!(MailSettings::parse("ftp://x", Some("wiki@example.org"), Some("https://w")).is_err());
        assert!(MailSettings::parse("smtp://127.0.0.1", Some("not an address"), Some("https://w")).is_err());
    }
}
