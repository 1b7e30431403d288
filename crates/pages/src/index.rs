//! The snapshot prepared for the request path: host → site map, validated branding,
//! each site's stylesheet and `Content-Security-Policy`, windows grouped by site.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use axum::http::HeaderValue;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::escape::push_html;
use crate::model::{MaintenanceWindow, Snapshot};
use crate::validate::{
    split_port, url_origin, validate_color, validate_email, validate_host, validate_url,
};

/// How far ahead upcoming windows are announced unless configured otherwise.
pub const DEFAULT_ANNOUNCE_AHEAD: Duration = Duration::from_secs(72 * 3600);

/// A [`Snapshot`] ready to answer requests.
#[derive(Debug)]
pub struct Index {
    sites: Vec<SiteEntry>,
    hosts: HashMap<Box<str>, usize>,
    neutral: Style,
    pub(crate) announce_ahead: time::Duration,
}

/// One organisation's site with its branding validated.
#[derive(Debug)]
pub(crate) struct SiteEntry {
    pub org: Box<str>,
    pub name: Box<str>,
    pub logo_url: Option<Box<str>>,
    pub contact_email: Option<Box<str>>,
    pub status_url: Option<Box<str>>,
    pub default_language: Option<Box<str>>,
    pub style: Style,
    /// The branding fields HTML-escaped once, for the HTML pages.
    pub html: SiteHtml,
    /// Sorted by start.
    pub windows: Vec<MaintenanceWindow>,
}

/// A site's name, logo, contact and status page, HTML-escaped.
#[derive(Debug)]
pub(crate) struct SiteHtml {
    pub name: Box<str>,
    pub logo_url: Option<Box<str>>,
    pub contact_email: Option<Box<str>>,
    pub status_url: Option<Box<str>>,
}

impl SiteHtml {
    fn new(site: &SiteEntry) -> SiteHtml {
        let html = |s: &str| {
            let mut out = String::with_capacity(s.len() + 16);
            push_html(&mut out, s);
            out.into_boxed_str()
        };
        SiteHtml {
            name: html(&site.name),
            logo_url: site.logo_url.as_deref().map(html),
            contact_email: site.contact_email.as_deref().map(html),
            status_url: site.status_url.as_deref().map(html),
        }
    }
}

/// The `<style>` element of a site's HTML pages and the policy that allows it.
#[derive(Debug)]
pub(crate) struct Style {
    pub element: Box<str>,
    pub csp: HeaderValue,
}

impl Index {
    /// Builds the index. Invalid hosts and branding fields are left out (with a
    /// warning), as are windows of unknown organisations and windows that end before
    /// they start; a host listed by two sites belongs to the first.
    pub fn new(snap: &Snapshot, announce_ahead: Duration) -> Index {
        let mut sites = Vec::with_capacity(snap.sites.len());
        let mut hosts = HashMap::new();
        for site in &snap.sites {
            let b = &site.branding;
            let org = site.org.as_str();
            let keep = |field: &str,
                        v: &Option<String>,
                        check: fn(&str) -> Result<(), String>|
             -> Option<Box<str>> {
                let v = v.as_deref()?;
                match check(v) {
                    Ok(()) => Some(v.into()),
                    Err(e) => {
                        tracing::warn!(org, "pages: ignoring {field}: {e}");
                        None
                    }
                }
            };
            let color = keep("color", &b.color, validate_color);
            let logo_url = keep("logo_url", &b.logo_url, validate_url);
            let i = sites.len();
            for host in &site.hosts {
                let h = host.trim_end_matches('.').to_ascii_lowercase();
                if let Err(e) = validate_host(&h) {
                    tracing::warn!(org, "pages: ignoring host: {e}");
                    continue;
                }
                if hosts.contains_key(h.as_str()) {
                    tracing::warn!(
                        org,
                        host = h,
                        "pages: host already belongs to another organisation"
                    );
                    continue;
                }
                hosts.insert(h.into_boxed_str(), i);
            }
            let mut windows: Vec<MaintenanceWindow> = snap
                .windows
                .iter()
                .filter(|w| w.org == site.org)
                .filter(|w| {
                    let ok = w.ends_at > w.starts_at;
                    if !ok {
                        tracing::warn!(
                            org,
                            window = w.id,
                            "pages: ignoring a window that ends before it starts"
                        );
                    }
                    ok
                })
                .cloned()
                .collect();
            windows.sort_by_key(|w| w.starts_at);
            let mut entry = SiteEntry {
                org: org.into(),
                name: b.display_name.as_str().into(),
                style: Style::new(color.as_deref(), logo_url.as_deref()),
                logo_url,
                contact_email: keep("contact_email", &b.contact_email, validate_email),
                status_url: keep("status_url", &b.status_url, validate_url),
                default_language: site.default_language.as_deref().map(Into::into),
                html: SiteHtml {
                    name: "".into(),
                    logo_url: None,
                    contact_email: None,
                    status_url: None,
                },
                windows,
            };
            entry.html = SiteHtml::new(&entry);
            sites.push(entry);
        }
        Index {
            sites,
            hosts,
            neutral: Style::new(None, None),
            announce_ahead: time::Duration::try_from(announce_ahead).unwrap_or(time::Duration::MAX),
        }
    }

    /// The organisation (slug) whose site has this host (`Host` header form: any case,
    /// optional port and trailing dot).
    pub fn org_for_host(&self, host: &str) -> Option<&str> {
        self.site(host).map(|s| &*s.org)
    }

    pub(crate) fn site(&self, host: &str) -> Option<&SiteEntry> {
        let (h, _) = split_port(host.trim());
        let h = h.strip_suffix('.').unwrap_or(h);
        let h = if h.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(h.to_ascii_lowercase())
        } else {
            Cow::Borrowed(h)
        };
        self.hosts.get(&*h).map(|&i| &self.sites[i])
    }

    pub(crate) fn neutral_style(&self) -> &Style {
        &self.neutral
    }

    /// Number of sites and of hosts.
    pub fn len(&self) -> (usize, usize) {
        (self.sites.len(), self.hosts.len())
    }

    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }
}

impl Default for Index {
    fn default() -> Self {
        Index::new(&Snapshot::default(), DEFAULT_ANNOUNCE_AHEAD)
    }
}

/// Light and dark palettes; every text colour has a contrast of at least 7:1 on its
/// background, links at least 4.5:1.
const LIGHT_BG: [u8; 3] = [0xff, 0xff, 0xff];
const DARK_BG: [u8; 3] = [0x16, 0x16, 0x1a];
const ROOT_LIGHT: &str = ":root{color-scheme:light dark;--bg:#ffffff;--fg:#1b1b1f;--muted:#45454f;--line:#d0d0d8;--link:#0b57d0;--brand:#6b6b76}";
const ROOT_DARK: &str = "@media (prefers-color-scheme:dark){:root{--bg:#16161a;--fg:#ececf1;--muted:#b9b9c3;--line:#3a3a44;--link:#8ab4f8}}";
const RULES: &str = "\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;background:var(--bg);color:var(--fg);border-top:.375rem solid var(--brand);\
font:1rem/1.6 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",sans-serif}\
.wrap{max-width:42rem;margin:0 auto;padding:2rem 1.25rem}\
header{display:flex;flex-wrap:wrap;align-items:center;gap:.75rem;margin-bottom:2.5rem;font-weight:600;font-size:1.125rem}\
header img{max-height:3rem;max-width:12rem;width:auto;height:auto}\
.code{margin:0;color:var(--muted);font-weight:600;letter-spacing:.05em;font-size:.875rem}\
h1{margin:.25rem 0 1rem;font-size:2rem;line-height:1.25}\
h2{margin:2rem 0 .5rem;font-size:1.125rem}\
p{margin:0 0 1rem}\
.notice{margin:1.5rem 0;padding:.75rem 1rem;border:1px solid var(--line);border-left:.25rem solid var(--brand);border-radius:.25rem}\
.notice h2{margin-top:0}\
dl{margin:0;color:var(--muted)}dt{font-weight:600}dd{margin:0 0 .5rem;overflow-wrap:anywhere}\
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9375rem}\
a{color:var(--link)}a:focus-visible{outline:.1875rem solid var(--link);outline-offset:.125rem}\
footer{margin-top:2.5rem;padding-top:1rem;border-top:1px solid var(--line)}footer h2{margin-top:0}\
ul{margin:0;padding-left:1.25rem}li{margin-bottom:.25rem;overflow-wrap:anywhere}";

const BASE_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The policy of non-HTML answers.
pub(crate) static PLAIN_CSP: HeaderValue = HeaderValue::from_static(BASE_POLICY);

impl Style {
    fn new(color: Option<&str>, logo_url: Option<&str>) -> Style {
        let mut css = String::with_capacity(ROOT_LIGHT.len() + ROOT_DARK.len() + RULES.len() + 128);
        css.push_str(ROOT_LIGHT);
        let rgb = color.and_then(parse_rgb);
        if let (Some(rgb), Some(c)) = (rgb, color) {
            css.push_str(":root{--brand:");
            css.push_str(c);
            // The brand colour is used for text (links) only where it is readable.
            if contrast(rgb, LIGHT_BG) >= 4.5 {
                css.push_str(";--link:");
                css.push_str(c);
            }
            css.push('}');
        }
        css.push_str(ROOT_DARK);
        if let (Some(rgb), Some(c)) = (rgb, color) {
            if contrast(rgb, DARK_BG) >= 4.5 {
                css.push_str("@media (prefers-color-scheme:dark){:root{--link:");
                css.push_str(c);
                css.push_str("}}");
            }
        }
        css.push_str(RULES);
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css.as_bytes()));
        let mut csp = format!("default-src 'none'; style-src 'sha256-{hash}'");
        if let Some(origin) = logo_url.and_then(|u| url_origin(u).ok()) {
            csp.push_str("; img-src ");
            csp.push_str(&origin);
        }
        csp.push_str("; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
        Style {
            element: format!("<style>{css}</style>").into(),
            csp: HeaderValue::from_str(&csp).expect("validated values only"),
        }
    }
}

fn parse_rgb(c: &str) -> Option<[u8; 3]> {
    validate_color(c).ok()?;
    let hex = &c[1..];
    let digit = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok();
    if hex.len() == 3 {
        Some([digit(0)? * 17, digit(1)? * 17, digit(2)? * 17])
    } else {
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some([byte(0)?, byte(2)?, byte(4)?])
    }
}

/// WCAG 2 contrast ratio.
fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    fn luminance(c: [u8; 3]) -> f64 {
        let lin = |v: u8| {
            let s = f64::from(v) / 255.0;
            if s <= 0.04045 {
                s / 12.92
            } else {
                ((s + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
    }
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Branding, Site};

    fn site(org: &str, hosts: &[&str], color: Option<&str>) -> Site {
        Site {
            org: org.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            branding: Branding {
                display_name: org.into(),
                color: color.map(Into::into),
                ..Default::default()
            },
            default_language: None,
        }
    }

    #[test]
    fn hosts_match_exactly_and_case_insensitively_without_port() {
        let snap = Snapshot {
            sites: vec![
                site("a", &["A.example.org", "bad host"], None),
                site("b", &["a.example.org", "b.example.org."], None),
            ],
            windows: vec![],
        };
        let idx = Index::new(&snap, DEFAULT_ANNOUNCE_AHEAD);
        assert_eq!(idx.len(), (2, 2));
        assert_eq!(idx.org_for_host("a.example.org"), Some("a"));
        assert_eq!(idx.org_for_host("A.EXAMPLE.ORG:8443"), Some("a"));
        assert_eq!(idx.org_for_host("b.example.org."), Some("b"));
        assert_eq!(idx.org_for_host("x.a.example.org"), None);
        assert_eq!(idx.org_for_host("example.org"), None);
        assert_eq!(idx.org_for_host(""), None);
    }

    #[test]
    fn contrast_ratios() {
        assert!((contrast([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 1e-9);
        // The fixed palette meets its promises.
        assert!(contrast([0x1b, 0x1b, 0x1f], LIGHT_BG) >= 7.0);
        assert!(contrast([0x45, 0x45, 0x4f], LIGHT_BG) >= 7.0);
        assert!(contrast([0x0b, 0x57, 0xd0], LIGHT_BG) >= 4.5);
        assert!(contrast([0xec, 0xec, 0xf1], DARK_BG) >= 7.0);
        assert!(contrast([0xb9, 0xb9, 0xc3], DARK_BG) >= 7.0);
        assert!(contrast([0x8a, 0xb4, 0xf8], DARK_BG) >= 4.5);
        assert_eq!(parse_rgb("#fa0"), Some([0xff, 0xaa, 0x00]));
    }

    #[test]
    fn brand_colour_colours_links_only_when_readable() {
        let pale = Style::new(Some("#ffee00"), None);
        assert!(
            pale.element.contains("--brand:#ffee00}"),
            "{}",
            pale.element
        );
        assert!(pale.element.contains("{:root{--link:#ffee00}}"));
        let dark = Style::new(Some("#1a237e"), None);
        assert!(dark.element.contains("--brand:#1a237e;--link:#1a237e}"));
        assert!(!dark.element.contains("{:root{--link:#1a237e}}"));
    }

    #[test]
    fn policy_hashes_the_style_and_allows_the_logo_origin() {
        let s = Style::new(Some("#336699"), Some("https://cdn.example.org/logo.svg"));
        let css = s
            .element
            .strip_prefix("<style>")
            .unwrap()
            .strip_suffix("</style>")
            .unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css.as_bytes()));
        let csp = s.csp.to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; "), "{csp}");
        assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
        assert!(csp.contains("img-src https://cdn.example.org;"), "{csp}");
        assert!(!csp.contains("unsafe"));
        assert!(!Style::new(None, None)
            .csp
            .to_str()
            .unwrap()
            .contains("img-src"));
    }
}
