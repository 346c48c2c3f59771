//! Login and registration attempts, counted against every limit *before* the password work.
//!
//! Each counter is taken in one atomic statement ([`throttle::take`]), so N parallel attempts
//! let exactly the allowed number reach Argon2. A login counts against:
//! - its (account, address) pair: `--login-limit`, with exponential backoff past half of it;
//! - its address, whatever the username (unknown ones included): `--address-login-limit`;
//! - its account from everywhere: `--account-login-limit`, unless this browser holds the
//!   known-device cookie of that account ([`KnownDevice`]) — the owner is never locked out by
//!   strangers' guesses.
//!
//! A login that succeeds clears its pair and gives back what it took from the others; an
//! attempt the hash queue refuses (503) gives everything back: only failures count.

use crate::app::AppState;
use crate::auth::device::KnownDevice;
use crate::auth::password::Asker;
use crate::domain::Password;
use crate::error::AppError;
use crate::models::throttle::{self, Limit, Ticket, Verdict};
use crate::models::user;

/// What the password check decided.
pub enum LoginOutcome {
    Verified(user::Model),
    /// The right password for a blocked account: it counts as a failure.
    Blocked(user::Model),
    Failed,
}

/// The counters one login attempt touches, with the message of each.
struct Counted {
    key: String,
    limit: Limit,
    what: &'static str,
    ticket: Option<Ticket>,
}

fn counter(key: String, limit: Limit, what: &'static str) -> Counted {
    Counted { key, limit, what, ticket: None }
}

/// Takes every counter in order; on the first refusal, gives back the ones already taken.
async fn take_all(state: &AppState, counters: &mut [Counted]) -> Result<(), AppError> {
    for i in 0..counters.len() {
        match throttle::take(&state.db.write, &counters[i].key, counters[i].limit).await? {
            Verdict::Admitted(ticket) => counters[i].ticket = Some(ticket),
            Verdict::Refused { retry_after } => {
                let limit = counters[i].key.split('|').next().unwrap_or("limit");
                state.metrics.refused(limit);
                give_back(state, &mut counters[..i]).await?;
                return Err(AppError::TooManyAttempts { what: counters[i].what, retry_after });
            }
        }
    }
    Ok(())
}

async fn give_back(state: &AppState, counters: &mut [Counted]) -> Result<(), AppError> {
    for counted in counters {
        if let Some(ticket) = counted.ticket.take() {
            throttle::refund(&state.db.write, &ticket).await?;
        }
    }
    Ok(())
}

/// Checks a login: limits first, then the password (an unknown name against the dummy hash,
/// at the same cost). `client` is the address limits are kept for.
#[tracing::instrument(skip_all)]
pub async fn log_in(
    state: &AppState,
    client: &str,
    typed_username: &str,
    password: Password,
    device: &KnownDevice,
) -> Result<LoginOutcome, AppError> {
    // Exact first (names brought from the Flask wiki are kept byte for byte), then trimmed.
    let mut found = user::find_by_username(&state.db.read, typed_username).await?;
    let account = typed_username.trim();
    if found.is_none() && account != typed_username {
        found = user::find_by_username(&state.db.read, account).await?;
    }

    let limits = state.settings.limits;
    let mut counters = vec![
        counter(format!("login|{client}|{account}"), limits.login, "failed logins for this account"),
        counter(format!("login-address|{client}"), limits.address_login, "failed logins"),
    ];
    let known = found.as_ref().is_some_and(|member| device.knows(member));
    if !known {
        counters.push(counter(
            format!("login-account|{account}"),
            limits.account_login,
            "failed logins for this account",
        ));
    }
    if let Err(refused) = take_all(state, &mut counters).await {
        tracing::warn!(known_device = known, "login refused: too many failures");
        return Err(refused);
    }

    // A member without a password of their own (made by a sign-in provider) is checked against
    // the dummy hash like an unknown name: the same cost, and it never verifies.
    let stored = found.as_ref().map(|member| member.password_hash.clone()).filter(|hash| !hash.is_empty());
    let for_directory = state.directory.as_ref().map(|_| Password::unchecked(password.expose().to_owned()));
    let verified = match state.hasher.verify(Asker { client, known_device: known }, password, stored).await {
        Ok(verified) => verified,
        Err(err) => {
            if matches!(err, crate::auth::password::HashError::Busy { .. }) {
                state.metrics.refused("password_queue");
            }
            give_back(state, &mut counters).await?;
            return Err(err.into());
        }
    };

    // Not this wiki's password: the directory's, when there is one. A directory member is
    // found by their entry, never by a local account of the same name.
    let (found, verified) = match (verified, &state.directory, for_directory) {
        (false, Some(directory), Some(password)) => {
            match directory.authenticate(account, password.expose()).await {
                Ok(Some(entry)) => (Some(directory_member(state, account, &entry).await?), true),
                Ok(None) => (found, false),
                Err(unreachable) => {
                    tracing::warn!(error = %unreachable, "login: the LDAP directory cannot be reached");
                    give_back(state, &mut counters).await?;
                    return Err(AppError::Unavailable(
                        "The directory that checks passwords cannot be reached right now. Please try again later.",
                    ));
                }
            }
        }
        _ => (found, verified),
    };

    let (pair, others) = counters.split_at_mut(1);
    match found {
        Some(member) if verified && !member.is_blocked() => {
            throttle::clear(&state.db.write, &pair[0].key).await?;
            give_back(state, others).await?;
            Ok(LoginOutcome::Verified(member))
        }
        found => {
            // The pair's count now holds this failure: past half the limit, each failure
            // makes the next attempt from here wait twice as long.
            if let Some(ticket) = &pair[0].ticket {
                let free = i64::from(limits.login.max.div_ceil(2));
                let delay = throttle::backoff_secs(ticket.hits, free, limits.login);
                throttle::back_off(&state.db.write, ticket, delay).await?;
            }
            Ok(match found {
                Some(member) if verified => LoginOutcome::Blocked(member),
                _ => LoginOutcome::Failed,
            })
        }
    }
}

/// The member linked to a directory entry whose password was just accepted, made at their
/// first sign-in (named as typed, made unique; the entry's address kept as verified).
async fn directory_member(
    state: &AppState,
    typed: &str,
    entry: &crate::auth::ldap::Entry,
) -> Result<user::Model, AppError> {
    use crate::models::identity::{self, SignUp};
    let issuer = crate::auth::ldap::ISSUER;
    if entry.subject.len() > identity::MAX_LEN {
        return Err(AppError::BadRequest(
            "The directory's id of this account is too long for this wiki.".into(),
        ));
    }
    if let Some((link, member)) = identity::find(&state.db.read, issuer, &entry.subject).await? {
        identity::touch(&state.db.write, link.id).await?;
        return Ok(member);
    }
    let wanted: String = typed.chars().take(crate::domain::USERNAME_MAX).collect();
    let wanted = crate::domain::Username::parse(&wanted)
        .or_else(|_| crate::domain::Username::parse("member"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let how = "first sign-in with the LDAP directory";
    match identity::sign_up(
        &state.db.write,
        issuer,
        &entry.subject,
        &wanted,
        crate::access::Role::Editor,
        true,
        how,
    )
    .await?
    {
        SignUp::Created(member, _) => {
            tracing::info!(user.id = member.id, user.name = %member.username, "member made at first directory sign-in");
            if let Some(email) = entry.email.as_deref().filter(|e| e.len() <= 254 && e.contains('@')) {
                crate::models::email::set_verified(&state.db.write, member.id, email).await?;
            }
            Ok(member)
        }
        SignUp::Existing(member, _) => Ok(member),
    }
}

/// Hashes the password of a new account, counted against `--register-limit` first.
#[tracing::instrument(skip_all)]
pub async fn hash_for_registration(
    state: &AppState,
    client: &str,
    password: Password,
) -> Result<String, AppError> {
    let mut counters =
        [counter(format!("register|{client}"), state.settings.limits.register, "registrations")];
    take_all(state, &mut counters).await?;
    match state.hasher.hash(Asker::from(client), password).await {
        Ok(hash) => Ok(hash),
        Err(err) => {
            if matches!(err, crate::auth::password::HashError::Busy { .. }) {
                state.metrics.refused("password_queue");
            }
            give_back(state, &mut counters).await?;
            Err(err.into())
        }
    }
}

/// Checks the password of a member who is logged in already (changing their password,
/// turning off two-factor): counted against the same (account, address) and address limits
/// as a login, so a stolen session cannot be used to guess the password at leisure.
#[tracing::instrument(skip_all)]
pub async fn confirm_password(
    state: &AppState,
    client: &str,
    member: &user::Model,
    password: Password,
) -> Result<bool, AppError> {
    let limits = state.settings.limits;
    let mut counters = vec![
        counter(
            format!("login|{client}|{}", member.username),
            limits.login,
            "failed logins for this account",
        ),
        counter(format!("login-address|{client}"), limits.address_login, "failed logins"),
    ];
    take_all(state, &mut counters).await?;
    let stored = Some(member.password_hash.clone());
    let verified = match state.hasher.verify(Asker::from(client), password, stored).await {
        Ok(verified) => verified,
        Err(err) => {
            if matches!(err, crate::auth::password::HashError::Busy { .. }) {
                state.metrics.refused("password_queue");
            }
            give_back(state, &mut counters).await?;
            return Err(err.into());
        }
    };
    let (pair, others) = counters.split_at_mut(1);
    if verified {
        throttle::clear(&state.db.write, &pair[0].key).await?;
        give_back(state, others).await?;
    } else if let Some(ticket) = &pair[0].ticket {
        let free = i64::from(limits.login.max.div_ceil(2));
        let delay = throttle::backoff_secs(ticket.hits, free, limits.login);
        throttle::back_off(&state.db.write, ticket, delay).await?;
    }
    Ok(verified)
}

/// Hashes a member's new password (no limit but the hash queue: the member proved who they
/// are already).
pub async fn hash_new_password(
    state: &AppState,
    client: &str,
    password: Password,
) -> Result<String, AppError> {
    match state.hasher.hash(Asker::from(client), password).await {
        Ok(hash) => Ok(hash),
        Err(err) => {
            if matches!(err, crate::auth::password::HashError::Busy { .. }) {
                state.metrics.refused("password_queue");
            }
            Err(err.into())
        }
    }
}

/// A second-factor attempt (an authenticator or recovery code at login), counted like a
/// password: against the (account, address) pair with backoff, the address, and the account
/// from everywhere unless this browser is known to it.
pub struct CodeAttempt {
    counters: Vec<Counted>,
}

impl CodeAttempt {
    /// Takes the counters; a refusal (429) comes before the code is looked at.
    pub async fn begin(
        state: &AppState,
        client: &str,
        member: &user::Model,
        device: &KnownDevice,
    ) -> Result<Self, AppError> {
        let limits = state.settings.limits;
        let account = &member.username;
        let mut counters = vec![
            counter(format!("login|{client}|{account}"), limits.login, "failed logins for this account"),
            counter(format!("login-address|{client}"), limits.address_login, "failed logins"),
        ];
        if !device.knows(member) {
            counters.push(counter(
                format!("login-account|{account}"),
                limits.account_login,
                "failed logins for this account",
            ));
        }
        take_all(state, &mut counters).await?;
        Ok(Self { counters })
    }

    /// The code was right: the pair is cleared, the others given back.
    pub async fn succeeded(mut self, state: &AppState) -> Result<(), AppError> {
        let (pair, others) = self.counters.split_at_mut(1);
        throttle::clear(&state.db.write, &pair[0].key).await?;
        give_back(state, others).await
    }

    /// The code was wrong: it stays counted, and past half the limit the next try waits.
    pub async fn failed(self, state: &AppState) -> Result<(), AppError> {
        if let Some(ticket) = &self.counters[0].ticket {
            let limits = state.settings.limits;
            let free = i64::from(limits.login.max.div_ceil(2));
            let delay = throttle::backoff_secs(ticket.hits, free, limits.login);
            throttle::back_off(&state.db.write, ticket, delay).await?;
        }
        Ok(())
    }
}

/// Counts a request that sends a mail (a recovery link, a verification link) against the
/// per-address limit of registrations: nobody can make Quire mail a stranger without bound.
pub async fn count_recovery_request(state: &AppState, client: &str) -> Result<(), AppError> {
    let mut counters = [counter(format!("mail|{client}"), state.settings.limits.register, "mail requests")];
    take_all(state, &mut counters).await
}
