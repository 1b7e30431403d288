//! The report's texts in French and English: one TOML file per language
//! (`locales/{en,fr}.toml`), embedded in the binary. Every key is required in
//! every language (serde refuses a file with a missing or unknown key, and a
//! test loads both).

use std::sync::OnceLock;

use serde::Deserialize;

/// A language of the report.
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

    /// `en` or `fr` (any case, region ignored: `fr-CA` is French).
    pub fn parse(s: &str) -> Option<Lang> {
        let primary = s.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The preferred language of an `Accept-Language` header (English when
    /// none of its languages is known).
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

    /// `v` with `decimals` decimals, in this language's way: `1,234.5` or
    /// `1 234,5` (a narrow no-break space between thousands).
    pub fn number(self, v: f64, decimals: usize) -> String {
        let text = format!("{:.*}", decimals, v.abs());
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text.as_str(), None),
        };
        let (sep, point) = match self {
            Lang::En => (",", "."),
            Lang::Fr => ("\u{202f}", ","),
        };
        let mut grouped = String::new();
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push_str(sep);
            }
            grouped.push(ch);
        }
        let sign = if v < 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            "−"
        } else {
            ""
        };
        match frac {
            Some(f) => format!("{sign}{grouped}{point}{f}"),
            None => format!("{sign}{grouped}"),
        }
    }
}

fn load(text: &str) -> Texts {
    toml::from_str(text).expect("embedded locale files are complete (tested)")
}

/// Every text of the report, in one language.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub lang_name: String,
    pub title: String,
    pub heading: String,
    pub subtitle: String,
    pub summary: String,
    pub quantity: String,
    pub low: String,
    pub central: String,
    pub high: String,
    pub energy: String,
    pub use_emissions: String,
    pub embodied: String,
    pub total: String,
    pub direct: String,
    pub shared: String,
    pub share_of_cluster: String,
    pub summary_caption: String,
    pub split_caption: String,
    pub range_note: String,
    pub chart: String,
    pub chart_alt: String,
    pub chart_table_caption: String,
    pub period: String,
    pub legend_use: String,
    pub legend_embodied: String,
    pub legend_range: String,
    pub axis_kg: String,
    pub consumers: String,
    pub consumers_caption: String,
    pub name: String,
    pub kind: String,
    pub namespace: String,
    pub bucket: String,
    pub cpu_hours: String,
    pub network_gb: String,
    pub no_consumers: String,
    pub cluster: String,
    pub cluster_caption: String,
    pub method: String,
    pub method_text: Vec<String>,
    pub sources: String,
    pub sources_caption: String,
    pub site: String,
    pub pue: String,
    pub intensity: String,
    pub source: String,
    pub year: String,
    pub warnings: String,
    pub docs: String,
}

/// `template` with `{name}` replaced by each value (values are inserted as
/// text; the caller escapes the result for its format).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_load_and_differ() {
        let (en, fr) = (Lang::En.texts(), Lang::Fr.texts());
        assert_eq!(en.lang_name, "English");
        assert_eq!(fr.lang_name, "Français");
        assert_ne!(en.range_note, fr.range_note);
        assert!(en.range_note.contains("not a confidence interval"));
        assert!(fr
            .range_note
            .contains("n’est pas un intervalle de confiance"));
        assert_eq!(en.method_text.len(), fr.method_text.len());
    }

    #[test]
    fn negotiation_and_numbers() {
        assert_eq!(Lang::negotiate("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(Lang::negotiate("de, en;q=0.5, fr;q=0.4"), Lang::En);
        assert_eq!(Lang::negotiate("de"), Lang::En);
        assert_eq!(Lang::negotiate("fr;q=0"), Lang::En);
        assert_eq!(Lang::En.number(21462.345, 2), "21,462.35");
        assert_eq!(Lang::Fr.number(21462.345, 2), "21\u{202f}462,35");
        assert_eq!(Lang::Fr.number(0.5, 1), "0,5");
        assert_eq!(Lang::En.number(-0.0001, 2), "0.00");
        assert_eq!(
            fill("{org} in {period}", &[("org", "a"), ("period", "b")]),
            "a in b"
        );
    }
}
