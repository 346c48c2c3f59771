//! Who is asking: password hashing, sessions and CSRF tokens.

pub mod attempts;
pub mod csrf;
pub mod device;
pub mod forms;
pub mod ldap;
pub mod oidc;
pub mod password;
pub mod pending;
pub mod session;
pub mod totp;
