//! The console's texts in French and English: one TOML file per language
//! (`locales/{en,fr}.toml`), embedded in the binary. Every key is required in
//! every language (serde refuses a file with a missing or unknown key, and a
//! test loads both), and the templates name the fields, so a missing text is
//! a compile error.

use serde::Deserialize;
use std::sync::OnceLock;

pub use lang::Lang;

/// The console's texts in a language, and what is written with them.
pub trait ConsoleTexts {
    fn texts(self) -> &'static Texts;

    /// A duration in whole seconds, roughly: `42 s`, `5 min`, `3 h 20 min`,
    /// `2 d 4 h` (`j` in French).
    fn age(self, secs: i64) -> String;
}

impl ConsoleTexts for Lang {
    fn texts(self) -> &'static Texts {
        static EN: OnceLock<Texts> = OnceLock::new();
        static FR: OnceLock<Texts> = OnceLock::new();
        match self {
            Lang::En => EN.get_or_init(|| load(include_str!("../locales/en.toml"))),
            Lang::Fr => FR.get_or_init(|| load(include_str!("../locales/fr.toml"))),
        }
    }

    fn age(self, secs: i64) -> String {
        let secs = secs.max(0);
        let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
        if d > 0 {
            format!("{d} {} {h} h", self.texts().unit_day)
        } else if h > 0 {
            format!("{h} h {m} min")
        } else if m > 0 {
            format!("{m} min")
        } else {
            format!("{secs} s")
        }
    }
}

fn load(text: &str) -> Texts {
    toml::from_str(text).expect("embedded locale files are complete (tested)")
}

/// Every text of the console, in one language.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub lang_name: String,
    pub app_name: String,
    pub skip_link: String,
    pub main_nav: String,
    pub nav_overview: String,
    pub nav_audit: String,
    pub nav_users: String,
    pub signed_in_as: String,
    pub role_operator: String,
    pub role_org_admin: String,
    pub logout: String,
    pub overview_title: String,
    pub overview_caption: String,
    pub col_org: String,
    pub col_name: String,
    pub col_users: String,
    pub col_apps: String,
    pub col_pending: String,
    pub col_failed: String,
    pub col_collisions: String,
    pub col_maintenance: String,
    pub no_maintenance: String,
    pub col_oldest: String,
    pub none: String,
    pub no_orgs: String,
    pub users_title: String,
    pub users_caption: String,
    pub search_label: String,
    pub search_button: String,
    pub col_user_name: String,
    pub col_display_name: String,
    pub col_id: String,
    pub no_users: String,
    pub next_page: String,
    pub first_page: String,
    pub user_title: String,
    pub user_apps: String,
    pub user_apps_caption: String,
    pub col_app: String,
    pub col_kind: String,
    pub col_status: String,
    pub col_app_id: String,
    pub col_last_attempt: String,
    pub col_error: String,
    pub no_apps: String,
    pub status_never: String,
    pub status_pending: String,
    pub status_retrying: String,
    pub status_failed: String,
    pub status_ok: String,
    pub status_deprovisioned: String,
    pub status_collision: String,
    pub retry_button: String,
    pub retry_help: String,
    pub retried: String,
    pub audit_title: String,
    pub audit_caption: String,
    pub col_when: String,
    pub col_who: String,
    pub col_role: String,
    pub col_action: String,
    pub col_subject: String,
    pub col_detail: String,
    pub no_audit: String,
    pub older: String,
    pub signin_title: String,
    pub signin_text: String,
    pub signin_expired: String,
    pub not_found_title: String,
    pub not_found_text: String,
    pub forbidden_title: String,
    pub forbidden_text: String,
    pub invalid_title: String,
    pub error_title: String,
    pub error_text: String,
    pub back_home: String,
    pub unit_day: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_are_complete() {
        for (name, text) in [
            ("en", include_str!("../locales/en.toml")),
            ("fr", include_str!("../locales/fr.toml")),
        ] {
            let t: Result<Texts, _> = toml::from_str(text);
            assert!(t.is_ok(), "{name}: {:?}", t.err());
        }
        assert_eq!(Lang::Fr.texts().lang_name, "Français");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(Lang::En.age(42), "42 s");
        assert_eq!(Lang::En.age(300), "5 min");
        assert_eq!(Lang::En.age(12_000), "3 h 20 min");
        assert_eq!(Lang::Fr.age(2 * 86_400 + 4 * 3600), "2 j 4 h");
    }
}
