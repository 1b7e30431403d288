//! Translated messages: one TOML file per language (`locales/{tag}.toml`), embedded in
//! the binary and optionally overridden or extended from a directory at run time.
//!
//! A file's tables flatten to dotted keys (`[status.404] title = …` is
//! `status.404.title`). `en` is complete by definition; a key another language lacks
//! falls back to English. Placeholders in braces (`{code}`, `{time}`, `{start}`,
//! `{end}`) are filled in when a page is rendered.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _};
use axum::http::HeaderValue;

use crate::escape::push_html;

const EMBEDDED: &[(&str, &str)] = &[
    ("en", include_str!("../locales/en.toml")),
    ("fr", include_str!("../locales/fr.toml")),
];

/// The status codes the pages accept: anything else is answered as 404.
pub const MIN_CODE: u16 = 400;
pub const MAX_CODE: u16 = 599;

macro_rules! texts {
    ($($field:ident = $key:literal,)*) => {
        /// The fixed messages of one language.
        #[derive(Debug)]
        pub(crate) struct Texts { $(pub $field: Box<str>,)* }

        const TEXT_KEYS: &[&str] = &[$($key,)*];

        impl Texts {
            fn build(map: &BTreeMap<String, String>, fallback: Option<&Texts>) -> anyhow::Result<Texts> {
                Ok(Texts { $($field: match (map.get($key), fallback) {
                    (Some(v), _) => v.as_str().into(),
                    (None, Some(f)) => f.$field.clone(),
                    (None, None) => bail!("missing key {}", $key),
                },)* })
            }

            /// The same messages HTML-escaped (placeholders are unaffected).
            fn html(&self) -> Texts {
                Texts { $($field: html(&self.$field),)* }
            }

            #[cfg(test)]
            fn values(&self) -> Vec<&str> {
                vec![$(&*self.$field,)*]
            }
        }
    };
}

fn html(s: &str) -> Box<str> {
    let mut out = String::with_capacity(s.len() + 16);
    push_html(&mut out, s);
    out.into()
}

texts! {
    language_name = "meta.language_name",
    error_code = "page.error_code",
    details = "page.details",
    requested_address = "page.requested_address",
    request_id = "page.request_id",
    service = "page.service",
    help = "page.help",
    contact = "page.contact",
    status_page = "page.status_page",
    title_4xx = "family.4xx.title",
    description_4xx = "family.4xx.description",
    title_5xx = "family.5xx.title",
    description_5xx = "family.5xx.description",
    maintenance_title = "maintenance.title",
    maintenance_description = "maintenance.description",
    maintenance_back_at = "maintenance.back_at",
    maintenance_upcoming_title = "maintenance.upcoming_title",
    maintenance_upcoming = "maintenance.upcoming",
}

/// The status codes every language must title and describe (`status.{code}.title`,
/// `status.{code}.description`); a file may add others.
pub const REQUIRED_CODES: &[u16] = &[
    400, 401, 403, 404, 405, 408, 410, 413, 429, 431, 500, 502, 503, 504,
];

/// A status code's title and description.
type StatusText = Option<(Box<str>, Box<str>)>;

/// The messages of one language.
#[derive(Debug)]
pub struct Locale {
    tag: Box<str>,
    content_language: HeaderValue,
    pub(crate) text: Texts,
    /// `text` HTML-escaped once, for the HTML pages.
    pub(crate) html: Texts,
    /// Title and description per code, indexed by `code - MIN_CODE`.
    status: Box<[StatusText]>,
    /// `status` HTML-escaped.
    status_html: Box<[StatusText]>,
}

impl Locale {
    /// The language tag, lower case (`en`, `fr`, `pt-br`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub(crate) fn content_language(&self) -> &HeaderValue {
        &self.content_language
    }

    /// Title and description of a status code: the code's own, or its family's.
    pub fn status(&self, code: u16) -> (&str, &str) {
        status_in(&self.status, &self.text, code)
    }

    /// [`Locale::status`] HTML-escaped.
    pub(crate) fn status_html(&self, code: u16) -> (&str, &str) {
        status_in(&self.status_html, &self.html, code)
    }
}

fn status_in<'a>(table: &'a [StatusText], text: &'a Texts, code: u16) -> (&'a str, &'a str) {
    let own = code
        .checked_sub(MIN_CODE)
        .and_then(|i| table.get(usize::from(i)))
        .and_then(Option::as_ref);
    match own {
        Some((t, d)) => (t, d),
        None if code >= 500 => (&text.title_5xx, &text.description_5xx),
        None => (&text.title_4xx, &text.description_4xx),
    }
}

/// All languages the pages speak; `en` is always there.
#[derive(Debug)]
pub struct Catalogue {
    locales: Vec<Locale>,
    en: usize,
    problems: Vec<String>,
}

impl Catalogue {
    /// The languages embedded in the binary.
    pub fn embedded() -> Catalogue {
        let files = EMBEDDED
            .iter()
            .map(|(t, s)| (t.to_string(), s.to_string()))
            .collect();
        Catalogue::build(files).expect("embedded locales are valid (tested)")
    }

    /// The embedded languages, plus every `{tag}.toml` in `dir` (a file for a tag that
    /// is embedded replaces it).
    pub fn load_dir(dir: impl AsRef<Path>) -> anyhow::Result<Catalogue> {
        let dir = dir.as_ref();
        let mut files: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(t, s)| (t.to_string(), s.to_string()))
            .collect();
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let Some(tag) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_ascii_lowercase)
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            files.retain(|(t, _)| *t != tag);
            files.push((tag, text));
        }
        Catalogue::build(files)
    }

    fn build(mut files: Vec<(String, String)>) -> anyhow::Result<Catalogue> {
        // English first: the others fall back to it.
        files.sort_by_key(|(t, _)| t != "en");
        let mut locales: Vec<Locale> = Vec::with_capacity(files.len());
        let mut problems = Vec::new();
        let mut en_keys: Vec<String> = Vec::new();
        for (tag, text) in files {
            if tag.is_empty()
                || tag.len() > 35
                || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                bail!(
                    "{tag:?} is not a language tag (file name must be like fr.toml or pt-br.toml)"
                );
            }
            let table: toml::Table =
                toml::from_str(&text).with_context(|| format!("parsing locale {tag}"))?;
            let mut map = BTreeMap::new();
            flatten("", &toml::Value::Table(table), &mut map)
                .with_context(|| format!("locale {tag}"))?;
            let en = locales.first();
            if let Some(en) = en {
                for k in &en_keys {
                    if !map.contains_key(k) {
                        problems.push(format!("{tag}: missing key {k}"));
                    }
                }
                for k in map.keys() {
                    if !en_keys.contains(k) {
                        problems.push(format!("{tag}: unknown key {k}"));
                    }
                }
                debug_assert_eq!(&*en.tag, "en");
            } else if tag != "en" {
                bail!("no en locale");
            } else {
                en_keys = map.keys().cloned().collect();
                for code in REQUIRED_CODES {
                    for part in ["title", "description"] {
                        let k = format!("status.{code}.{part}");
                        if !map.contains_key(&k) {
                            bail!("en: missing key {k}");
                        }
                    }
                }
            }
            let text =
                Texts::build(&map, en.map(|l| &l.text)).with_context(|| format!("locale {tag}"))?;
            let mut status: Vec<StatusText> = match en {
                Some(en) => en.status.to_vec(),
                None => vec![None; usize::from(MAX_CODE - MIN_CODE + 1)],
            };
            for (k, title) in &map {
                let Some(code) = k
                    .strip_prefix("status.")
                    .and_then(|r| r.strip_suffix(".title"))
                else {
                    continue;
                };
                let code: u16 = code
                    .parse()
                    .with_context(|| format!("locale {tag}: key {k}"))?;
                if !(MIN_CODE..=MAX_CODE).contains(&code) {
                    bail!("locale {tag}: key {k}: code outside {MIN_CODE}-{MAX_CODE}");
                }
                let description = map
                    .get(&format!("status.{code}.description"))
                    .map(|d| d.as_str().into())
                    .or_else(|| {
                        status[usize::from(code - MIN_CODE)]
                            .as_ref()
                            .map(|(_, d)| d.clone())
                    })
                    .with_context(|| format!("locale {tag}: status.{code}.description missing"))?;
                status[usize::from(code - MIN_CODE)] = Some((title.as_str().into(), description));
            }
            for k in TEXT_KEYS {
                if !map.contains_key(*k) && en.is_none() {
                    bail!("en: missing key {k}");
                }
            }
            let content_language = HeaderValue::from_str(&tag)?;
            let status_html = status
                .iter()
                .map(|s| s.as_ref().map(|(t, d)| (html(t), html(d))))
                .collect();
            locales.push(Locale {
                tag: tag.into(),
                content_language,
                html: text.html(),
                text,
                status: status.into(),
                status_html,
            });
        }
        for p in &problems {
            tracing::warn!("pages catalogue: {p}");
        }
        Ok(Catalogue {
            locales,
            en: 0,
            problems,
        })
    }

    /// Keys a language lacks or has in addition to `en`, as `"{tag}: missing key {key}"`
    /// or `"{tag}: unknown key {key}"`. Empty when every file is complete.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The language tags, `en` first.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.locales.iter().map(|l| l.tag())
    }

    pub fn get(&self, tag: &str) -> Option<&Locale> {
        self.locales
            .iter()
            .find(|l| l.tag.eq_ignore_ascii_case(tag))
    }

    pub fn english(&self) -> &Locale {
        &self.locales[self.en]
    }

    /// The language for a request: the best `Accept-Language` entry (highest q, the
    /// earlier on ties; `fr-CA` matches `fr-ca`, then `fr`) the catalogue has, else
    /// `default` (the organisation's language) when the catalogue has it, else `en`.
    pub fn negotiate(&self, accept_language: Option<&str>, default: Option<&str>) -> &Locale {
        let mut best: Option<(u16, usize)> = None;
        if let Some(header) = accept_language {
            for item in header.split(',').take(32) {
                let (tag, q) = crate::negotiate::split_q(item);
                if q == 0 || tag == "*" || best.is_some_and(|(bq, _)| q <= bq) {
                    continue;
                }
                let found = self.position(tag).or_else(|| {
                    tag.split_once('-')
                        .and_then(|(primary, _)| self.position(primary))
                });
                if let Some(i) = found {
                    best = Some((q, i));
                }
            }
        }
        if let Some((_, i)) = best {
            return &self.locales[i];
        }
        default
            .and_then(|d| self.get(d))
            .unwrap_or_else(|| self.english())
    }

    fn position(&self, tag: &str) -> Option<usize> {
        self.locales
            .iter()
            .position(|l| l.tag.eq_ignore_ascii_case(tag))
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue::embedded()
    }
}

fn flatten(
    prefix: &str,
    v: &toml::Value,
    out: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    match v {
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
        }
        _ => bail!("{prefix}: messages must be strings"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_locale_has_every_key_of_en() {
        let cat = Catalogue::embedded();
        assert_eq!(cat.problems(), &[] as &[String]);
        assert_eq!(cat.languages().collect::<Vec<_>>(), ["en", "fr"]);
        // Also check the raw files, independently of the fallback logic.
        let keys = |src: &str| {
            let mut m = BTreeMap::new();
            flatten(
                "",
                &toml::Value::Table(toml::from_str(src).unwrap()),
                &mut m,
            )
            .unwrap();
            m.into_keys().collect::<Vec<_>>()
        };
        let en = keys(EMBEDDED[0].1);
        for k in TEXT_KEYS {
            assert!(en.iter().any(|e| e == k), "en lacks {k}");
        }
        for (tag, src) in EMBEDDED {
            assert_eq!(keys(src), en, "{tag} differs from en");
        }
    }

    #[test]
    fn status_texts_fall_back_to_the_family() {
        let cat = Catalogue::embedded();
        let en = cat.english();
        assert_eq!(en.status(404).0, "Page not found");
        assert_eq!(
            en.status(418),
            (&*en.text.title_4xx, &*en.text.description_4xx)
        );
        assert_eq!(
            en.status(599),
            (&*en.text.title_5xx, &*en.text.description_5xx)
        );
        assert_eq!(cat.get("FR").unwrap().status(404).0, "Page introuvable");
    }

    #[test]
    fn accept_language_selection_and_fallback() {
        let cat = Catalogue::embedded();
        let pick = |h: Option<&str>, d: Option<&str>| cat.negotiate(h, d).tag().to_string();
        assert_eq!(pick(Some("fr-CA,fr;q=0.9,en;q=0.8"), None), "fr");
        assert_eq!(pick(Some("de-DE, en;q=0.5, fr;q=0.7"), None), "fr");
        assert_eq!(pick(Some("en;q=0.2, fr;q=0"), Some("fr")), "en");
        assert_eq!(pick(Some("de, it"), Some("fr")), "fr");
        assert_eq!(pick(Some("*"), Some("fr")), "fr");
        assert_eq!(pick(None, Some("xx")), "en");
        assert_eq!(pick(Some("EN-gb;q=0.9, fr;q=0.9"), Some("fr")), "en");
        assert_eq!(pick(Some(";;;,q=,fr;q=abc"), None), "fr");
    }

    #[test]
    fn html_copies_are_the_escaped_messages() {
        let dir = std::env::temp_dir().join(format!("pages-locales-html-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("xx.toml"),
            "[page]\nerror_code = \"<b>Error</b> {code} & co\"\n\
             [maintenance]\ntitle = \"'Maintenance' \\\"now\\\"\"\n\
             [status.404]\ntitle = \"<404>\"\ndescription = \"Gone & <away>\"\n",
        )
        .unwrap();
        let cat = Catalogue::load_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let esc = |s: &str| {
            let mut o = String::new();
            push_html(&mut o, s);
            o
        };
        for tag in cat.languages() {
            let l = cat.get(tag).unwrap();
            let escaped: Vec<String> = l.text.values().into_iter().map(esc).collect();
            assert_eq!(l.html.values(), escaped, "{tag}");
            for code in MIN_CODE..=MAX_CODE {
                let (t, d) = l.status(code);
                assert_eq!(l.status_html(code), (&*esc(t), &*esc(d)), "{tag} {code}");
            }
        }
        let xx = cat.get("xx").unwrap();
        assert_eq!(
            &*xx.html.error_code,
            "&lt;b&gt;Error&lt;/b&gt; {code} &amp; co"
        );
        assert_eq!(
            &*xx.html.maintenance_title,
            "&#39;Maintenance&#39; &quot;now&quot;"
        );
        assert_eq!(
            xx.status_html(404),
            ("&lt;404&gt;", "Gone &amp; &lt;away&gt;")
        );
    }

    #[test]
    fn a_directory_adds_languages_and_reports_missing_keys() {
        let dir = std::env::temp_dir().join(format!("pages-locales-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("de.toml"),
            "[status.404]\ntitle = \"Seite nicht gefunden\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("README.md"), "ignored").unwrap();
        let cat = Catalogue::load_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let de = cat.get("de").unwrap();
        assert_eq!(de.status(404).0, "Seite nicht gefunden");
        // Falls back to English for the description and the rest.
        assert_eq!(de.status(404).1, cat.english().status(404).1);
        assert_eq!(de.status(500).0, cat.english().status(500).0);
        assert!(
            cat.problems()
                .iter()
                .any(|p| p == "de: missing key page.contact"),
            "{:?}",
            cat.problems()
        );
        assert_eq!(cat.negotiate(Some("de-AT"), None).tag(), "de");
    }
}
