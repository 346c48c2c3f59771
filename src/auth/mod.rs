//! Who is asking: password hashing, sessions and CSRF tokens.

pub mod csrf;
pub mod forms;
pub mod password;
pub mod session;
