//! The console's texts in French and English: one TOML file per language
//! (`locales/{en,fr}.toml`), embedded in the binary. Every key is required in
//! every language (serde refuses a file with a missing or unknown key, and a
//! test loads both), and the templates name the fields, so a missing text is
//! a compile error.

use serde::Deserialize;
use std::sync::OnceLock;

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// `en` or `fr` (any case, region ignored).
    fn parse(s: &str) -> Option<Lang> {
        let primary = s.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The preferred known language of an `Accept-Language` header
    /// (English when none is known).
    pub fn negotiate(accept_language: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept_language.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::parse(tag) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }

    pub fn texts(self) -> &'static Texts {
        static EN: OnceLock<Texts> = OnceLock::new();
        static FR: OnceLock<Texts> = OnceLock::new();
        match self {
            Lang::En => EN.get_or_init(|| load(include_str!("../locales/en.toml"))),
            Lang::Fr => FR.get_or_init(|| load(include_str!("../locales/fr.toml"))),
        }
    }

    /// A duration in whole seconds, roughly: `42 s`, `5 min`, `3 h 20 min`,
    /// `2 d 4 h` (`j` in French).
    pub fn age(self, secs: i64) -> String {
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
    fn languages_are_negotiated() {
        assert_eq!(Lang::negotiate("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(Lang::negotiate("de, en;q=0.5"), Lang::En);
        assert_eq!(Lang::negotiate("de"), Lang::En);
        assert_eq!(Lang::negotiate("en;q=0.2, fr-CA;q=0.7"), Lang::Fr);
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(Lang::En.age(42), "42 s");
        assert_eq!(Lang::En.age(300), "5 min");
        assert_eq!(Lang::En.age(12_000), "3 h 20 min");
        assert_eq!(Lang::Fr.age(2 * 86_400 + 4 * 3600), "2 j 4 h");
    }
}
