//! The report's texts in French and English: one TOML file per language
//! (`locales/{en,fr}.toml`), embedded in the binary. Every key is required in
//! every language (serde refuses a file with a missing or unknown key, and a
//! test loads both).

use std::sync::OnceLock;

use serde::Deserialize;

pub use lang::Lang;

/// The report's texts in a language.
pub trait ReportTexts {
    fn texts(self) -> &'static Texts;
}

impl ReportTexts for Lang {
    fn texts(self) -> &'static Texts {
        static EN: OnceLock<Texts> = OnceLock::new();
        static FR: OnceLock<Texts> = OnceLock::new();
        match self {
            Lang::En => EN.get_or_init(|| load(include_str!("../locales/en.toml"))),
            Lang::Fr => FR.get_or_init(|| load(include_str!("../locales/fr.toml"))),
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
    fn placeholders_are_filled() {
        assert_eq!(
            fill("{org} in {period}", &[("org", "a"), ("period", "b")]),
            "a in b"
        );
    }
}
