//! What the pages know about the organisations: sites (hosts and branding) and
//! maintenance windows, as a [`Snapshot`] a [`Source`] loads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Everything the pages show, as loaded from a source at one time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    #[serde(default)]
    pub sites: Vec<Site>,
    #[serde(default)]
    pub windows: Vec<MaintenanceWindow>,
}

/// One organisation's hosts and branding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The organisation's slug; maintenance windows refer to it.
    pub org: String,
    /// Host names (no port), matched exactly and case-insensitively against `Host`.
    #[serde(default)]
    pub hosts: Vec<String>,
    pub branding: Branding,
    /// Language of the pages when none of `Accept-Language` is available.
    #[serde(default)]
    pub default_language: Option<String>,
}

/// How an organisation's pages look. Fields that fail their validator
/// ([`crate::validate_color`], [`crate::validate_url`], [`crate::validate_email`]) are
/// ignored when the index is built.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    pub display_name: String,
    #[serde(default)]
    pub logo_url: Option<String>,
    /// `#rgb` or `#rrggbb`.
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub contact_email: Option<String>,
    #[serde(default)]
    pub status_url: Option<String>,
}

/// A scheduled maintenance of an organisation, or of one of its apps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    pub id: String,
    pub org: String,
    /// When set, the window applies only to requests whose `X-Service-Name` or
    /// `X-Ingress-Name` equals it (ASCII case-insensitively).
    #[serde(default)]
    pub app: Option<String>,
    /// RFC 3339 (a string, or a TOML date-time with offset).
    #[serde(with = "rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "rfc3339")]
    pub ends_at: OffsetDateTime,
    /// Message per language tag (`en`, `fr`, …).
    #[serde(default)]
    pub messages: BTreeMap<String, String>,
}

impl Snapshot {
    /// Reads a snapshot from a file: JSON when the name ends in `.json`, TOML otherwise.
    pub fn from_toml_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        Self::from_file(path)
    }

    /// Reads a snapshot from a file: JSON when the name ends in `.json`, TOML otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            Self::from_json_str(&text)
        } else {
            Self::from_toml_str(&text)
        }
        .with_context(|| format!("parsing {}", path.display()))
    }

    pub fn from_toml_str(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    pub fn from_json_str(text: &str) -> anyhow::Result<Self> {
        Ok(serde_json::from_str(text)?)
    }
}

/// Where the pages get their snapshot from; called once at start and then on every
/// refresh.
#[async_trait::async_trait]
pub trait Source: Send + Sync + 'static {
    async fn load(&self) -> anyhow::Result<Snapshot>;
}

/// A snapshot held in memory (tests, benchmarks, or a caller that builds it itself).
#[derive(Clone, Debug, Default)]
pub struct FixedSource(pub Snapshot);

#[async_trait::async_trait]
impl Source for FixedSource {
    async fn load(&self) -> anyhow::Result<Snapshot> {
        Ok(self.0.clone())
    }
}

/// A snapshot file (see [`Snapshot::from_file`]), read again only when its
/// modification time or length changes.
#[derive(Debug)]
pub struct StaticSource {
    path: PathBuf,
    last: Mutex<Option<(SystemTime, u64, Snapshot)>>,
}

impl StaticSource {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StaticSource {
            path: path.into(),
            last: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait::async_trait]
impl Source for StaticSource {
    async fn load(&self) -> anyhow::Result<Snapshot> {
        let path = self.path.clone();
        let meta =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if let Some((mtime, len, snap)) = &*self.last.lock().unwrap_or_else(|e| e.into_inner()) {
            if (*mtime, *len) == stamp {
                return Ok(snap.clone());
            }
        }
        let snap = tokio::task::spawn_blocking(move || Snapshot::from_file(&path)).await??;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((stamp.0, stamp.1, snap.clone()));
        Ok(snap)
    }
}

/// RFC 3339 date-times that also accept TOML's native offset date-times.
mod rfc3339 {
    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format(&Rfc3339).map_err(serde::ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OffsetDateTime;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 date-time with an offset")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OffsetDateTime, E> {
                OffsetDateTime::parse(v, &Rfc3339).map_err(|e| E::custom(format!("{v:?}: {e}")))
            }
            // toml hands a native date-time over as a one-entry map.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OffsetDateTime, A::Error> {
                let Some((_, v)) = map.next_entry::<String, String>()? else {
                    return Err(de::Error::custom("empty date-time"));
                };
                self.visit_str(&v)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_accepts_strings_and_native_datetimes() {
        let snap = Snapshot::from_toml_str(
            r#"
            [[windows]]
            id = "a"
            org = "o"
            starts_at = "2030-01-01T10:00:00Z"
            ends_at = 2030-01-01T12:00:00+02:00
            messages = { en = "Upgrade" }
            "#,
        )
        .unwrap();
        let w = &snap.windows[0];
        assert_eq!(w.starts_at, time::macros::datetime!(2030-01-01 10:00 UTC));
        assert_eq!(w.ends_at, time::macros::datetime!(2030-01-01 10:00 UTC));
        let json = serde_json::to_string(&snap).unwrap();
        assert!(json.contains("\"2030-01-01T10:00:00Z\""), "{json}");
        assert_eq!(Snapshot::from_json_str(&json).unwrap(), snap);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(Snapshot::from_toml_str(
            "[[sites]]\norg='o'\nhostz=[]\n[sites.branding]\ndisplay_name='O'"
        )
        .is_err());
    }
}
