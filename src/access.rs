//! The access model's vocabulary: who may read the wiki, who may join it, and what a member's
//! role lets them do. Each value parses from (and prints as) the word stored in the database
//! and typed at the command line, with one message listing the allowed words.

use std::fmt;

/// Who may read: everyone (`public`, the seed's behaviour) or members only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadAccess {
    #[default]
    Public,
    Members,
}

/// Who may join: anyone, holders of an invitation, or nobody but those an admin adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registration {
    #[default]
    Open,
    Invite,
    Closed,
}

/// Who must use two-factor sign-in: nobody in particular, admins, or every member. A member
/// who must and has not enrolled is taken to enrolment at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Require2fa {
    #[default]
    None,
    Admins,
    All,
}

impl Require2fa {
    /// True when a member of `role` must have two-factor turned on.
    pub fn applies_to(self, role: Role) -> bool {
        match self {
            Self::None => false,
            Self::Admins => role.is_admin(),
            Self::All => true,
        }
    }
}

/// A member's one role. A reader reads and keeps their profile; an editor also changes pages;
/// an admin also runs the wiki.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Role {
    Reader,
    #[default]
    Editor,
    Admin,
}

/// A word that is not one of a setting's allowed values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} must be one of: {allowed}.")]
pub struct InvalidValue {
    pub name: &'static str,
    pub allowed: &'static str,
}

macro_rules! words {
    ($ty:ty, $name:literal, $allowed:literal, { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            pub const NAME: &'static str = $name;
            pub const ALLOWED: &'static str = $allowed;

            pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
                match raw.trim() {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(InvalidValue { name: $name, allowed: $allowed }),
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words!(ReadAccess, "read_access", "public, members", { Public => "public", Members => "members" });
words!(Registration, "registration", "open, invite, closed", {
    Open => "open",
    Invite => "invite",
    Closed => "closed",
});
words!(Require2fa, "require_2fa", "none, admins, all", { None => "none", Admins => "admins", All => "all" });
words!(Role, "role", "admin, editor, reader", { Admin => "admin", Editor => "editor", Reader => "reader" });

impl Role {
    /// Editors and admins change pages; readers do not.
    pub fn may_edit(self) -> bool {
        self >= Self::Editor
    }

    pub fn is_admin(self) -> bool {
        self == Self::Admin
    }

    /// Every role, most powerful first (for forms).
    pub const ALL: [Role; 3] = [Role::Admin, Role::Editor, Role::Reader];
}

/// The wiki-wide settings, as stored in the `settings` table (absent keys take the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WikiSettings {
    pub read_access: ReadAccess,
    pub registration: Registration,
    pub require_2fa: Require2fa,
}

/// A key of the settings table, for `quire settings` and the admin form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKey {
    ReadAccess,
    Registration,
    Require2fa,
}

impl SettingKey {
    pub const ALL: [SettingKey; 3] =
        [SettingKey::ReadAccess, SettingKey::Registration, SettingKey::Require2fa];

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw.trim() {
            "read_access" => Ok(Self::ReadAccess),
            "registration" => Ok(Self::Registration),
            "require_2fa" => Ok(Self::Require2fa),
            _ => Err(InvalidValue { name: "the setting", allowed: "read_access, registration, require_2fa" }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadAccess => ReadAccess::NAME,
            Self::Registration => Registration::NAME,
            Self::Require2fa => Require2fa::NAME,
        }
    }

    /// Checks a value for this key and gives it back in its stored spelling.
    pub fn check(self, value: &str) -> Result<&'static str, InvalidValue> {
        match self {
            Self::ReadAccess => ReadAccess::parse(value).map(ReadAccess::as_str),
            Self::Registration => Registration::parse(value).map(Registration::as_str),
            Self::Require2fa => Require2fa::parse(value).map(Require2fa::as_str),
        }
    }

    /// This key's value in a set of settings.
    pub fn value_in(self, settings: &WikiSettings) -> &'static str {
        match self {
            Self::ReadAccess => settings.read_access.as_str(),
            Self::Registration => settings.registration.as_str(),
            Self::Require2fa => settings.require_2fa.as_str(),
        }
    }
}

impl WikiSettings {
    /// Applies one stored pair; unknown keys and values that no longer parse keep the default,
    /// so a row written by a newer version never locks an older one out.
    pub fn apply(&mut self, key: &str, value: &str) {
        match key {
            "read_access" => self.read_access = ReadAccess::parse(value).unwrap_or_default(),
            "registration" => self.registration = Registration::parse(value).unwrap_or_default(),
            "require_2fa" => self.require_2fa = Require2fa::parse(value).unwrap_or_default(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_parses_back_to_itself() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        for access in [ReadAccess::Public, ReadAccess::Members] {
            assert_eq!(ReadAccess::parse(access.as_str()), Ok(access));
        }
        for registration in [Registration::Open, Registration::Invite, Registration::Closed] {
            assert_eq!(Registration::parse(registration.as_str()), Ok(registration));
        }
    }

    #[test]
    fn an_unknown_word_is_refused_with_the_allowed_ones() {
        assert_eq!(
            ReadAccess::parse("private").unwrap_err().to_string(),
            "read_access must be one of: public, members."
        );
        assert_eq!(
            Registration::parse("Open").unwrap_err().to_string(),
            "registration must be one of: open, invite, closed."
        );
        assert_eq!(Role::parse("").unwrap_err().to_string(), "role must be one of: admin, editor, reader.");
        assert!(SettingKey::parse("theme").is_err());
    }

    #[test]
    fn roles_are_ordered_by_what_they_may_do() {
        assert!(!Role::Reader.may_edit());
        assert!(Role::Editor.may_edit() && !Role::Editor.is_admin());
        assert!(Role::Admin.may_edit() && Role::Admin.is_admin());
    }

    #[test]
    fn stored_settings_that_no_longer_parse_keep_the_defaults() {
        let mut settings = WikiSettings::default();
        settings.apply("read_access", "members");
        settings.apply("registration", "by-carrier-pigeon");
        settings.apply("theme", "dark");
        assert_eq!(settings.read_access, ReadAccess::Members);
        assert_eq!(settings.registration, Registration::Open);
    }
}
