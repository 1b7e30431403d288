//! The settings of an app that the code branches on: its kind, what groups
//! become in it, what deprovisioning does and whether existing accounts may be
//! adopted. They are stored as text (`apps.kind`, `apps.groups_as`,
//! `apps.deprovision`, the `adopt` key of `apps.settings`); the store parses
//! them when it reads a row ([`crate::AppRecord`]) and refuses an unknown value
//! with [`UnknownSetting`], and writes them from these enums. `provision`
//! re-exports them; the admin API's schemas (feature `openapi`) and the command
//! line's arguments (feature `clap`) use them as they are.

use std::fmt;
use std::str::FromStr;

/// A stored or given value that is not one of a setting's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} {value:?} is not one of: {}", expected.join(", "))]
pub struct UnknownSetting {
    /// The setting's name (`kind`, `groups_as`, `deprovision`, `adopt`).
    pub setting: &'static str,
    /// The value found.
    pub value: String,
    /// The values the setting takes.
    pub expected: &'static [&'static str],
}

/// An enum of a setting's values, each with its text. Serde, utoipa and clap
/// name a variant in kebab case, which must be that text (checked by the
/// tests below).
macro_rules! setting_enum {
    (
        $(#[$meta:meta])*
        $name:ident as $setting:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
        #[serde(rename_all = "kebab-case")]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        impl $name {
            /// Every value, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The texts of [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownSetting;

            fn from_str(s: &str) -> Result<$name, UnknownSetting> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownSetting {
                        setting: $setting,
                        value: other.to_owned(),
                        expected: $name::NAMES,
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

setting_enum! {
    /// The kinds of apps Liaison provisions.
    AppKind as "kind" {
        Synapse = "synapse",
        Nextcloud = "nextcloud",
        Rocketchat = "rocketchat",
        Scim = "scim",
    }
}

setting_enum! {
    /// What a group becomes in an app. Each kind accepts some: synapse and
    /// rocketchat rooms, spaces or none; nextcloud and scim groups or none.
    #[derive(Default)]
    GroupsAs as "groups_as" {
        /// The app's native groups (Nextcloud groups, SCIM Groups).
        #[default]
        Groups = "groups",
        /// Matrix rooms (Synapse), private groups (Rocket.Chat).
        Rooms = "rooms",
        /// Matrix spaces (Synapse), teams (Rocket.Chat).
        Spaces = "spaces",
        /// Groups are not provisioned.
        None = "none",
    }
}

setting_enum! {
    /// What happens in an app to a user deleted from the directory.
    #[derive(Default)]
    Deprovision as "deprovision" {
        /// The account is disabled (the default).
        #[default]
        Disable = "disable",
        /// The account is deleted.
        Delete = "delete",
    }
}

setting_enum! {
    /// Whether accounts an app already had, which Liaison did not create, may
    /// be adopted (taken as the directory user's), and how they are matched.
    /// An operator's choice per app; adoption itself happens only when asked
    /// (`liaison sync --adopt`), never during a delivery.
    #[derive(Default)]
    Adopt as "adopt" {
        /// Never: an existing account is a collision (the default).
        #[default]
        Never = "never",
        /// The account whose login name is the one the user's `userName` maps to.
        ByUsername = "by-username",
        /// The only account with the user's e-mail address.
        ByEmail = "by-email",
    }
}

impl AppKind {
    /// What groups become in this kind of app by default, and which values it
    /// accepts (the default first).
    pub fn groups_as(self) -> (GroupsAs, &'static [GroupsAs]) {
        match self {
            AppKind::Synapse | AppKind::Rocketchat => (
                GroupsAs::Rooms,
                &[GroupsAs::Rooms, GroupsAs::Spaces, GroupsAs::None],
            ),
            AppKind::Nextcloud | AppKind::Scim => {
                (GroupsAs::Groups, &[GroupsAs::Groups, GroupsAs::None])
            }
        }
    }
}

impl GroupsAs {
    /// Whether groups are provisioned at all.
    pub fn provisions_groups(self) -> bool {
        self != GroupsAs::None
    }
}

impl Deprovision {
    /// Whether a user deleted from the directory is deleted from the app.
    pub fn deletes(self) -> bool {
        self == Deprovision::Delete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_text_and_its_json() {
        fn round<T>(all: &[T])
        where
            T: Copy + fmt::Display + FromStr<Err = UnknownSetting> + PartialEq + fmt::Debug,
            T: serde::Serialize + serde::de::DeserializeOwned,
        {
            for v in all {
                assert_eq!(v.to_string().parse::<T>(), Ok(*v));
                let json = serde_json::to_value(v).unwrap();
                assert_eq!(json, serde_json::Value::String(v.to_string()));
                assert_eq!(serde_json::from_value::<T>(json).unwrap(), *v);
            }
        }
        round(AppKind::ALL);
        round(GroupsAs::ALL);
        round(Deprovision::ALL);
        round(Adopt::ALL);
    }

    #[test]
    fn an_unknown_value_is_a_typed_error_naming_the_setting() {
        let e = "erase".parse::<Deprovision>().unwrap_err();
        assert_eq!(e.setting, "deprovision");
        assert_eq!(e.value, "erase");
        assert_eq!(
            e.to_string(),
            r#"deprovision "erase" is not one of: disable, delete"#
        );
        assert_eq!("Synapse".parse::<AppKind>().unwrap_err().setting, "kind");
        assert!("".parse::<GroupsAs>().is_err());
        assert!("by_email".parse::<Adopt>().is_err());
    }
}
