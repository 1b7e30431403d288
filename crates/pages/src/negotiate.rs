//! Reading the request: path forms, status code, response format.

use crate::catalogue::{MAX_CODE, MIN_CODE};

/// The formats a page is rendered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Html,
    Json,
    Xml,
    Text,
}

impl Format {
    /// In the order ties are broken.
    const ALL: [Format; 4] = [Format::Html, Format::Json, Format::Xml, Format::Text];

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Json => "application/json",
            Format::Xml => "application/xml; charset=utf-8",
            Format::Text => "text/plain; charset=utf-8",
        }
    }

    /// `html`, `json`, `xml`, `txt` (ASCII case-insensitive).
    pub fn from_extension(ext: &str) -> Option<Format> {
        [
            ("html", Format::Html),
            ("json", Format::Json),
            ("xml", Format::Xml),
            ("txt", Format::Text),
        ]
        .into_iter()
        .find(|(e, _)| ext.eq_ignore_ascii_case(e))
        .map(|(_, f)| f)
    }

    /// The format an `Accept`-style list prefers: the highest q-value, then the most
    /// specific media range, then HTML, JSON, XML, text in that order. `None` when the
    /// list accepts none of them (an empty list, `image/png`, all at `q=0`).
    pub fn from_accept(accept: &str) -> Option<Format> {
        // Per format: (specificity, q) of the most specific range that matches it.
        let mut matched = [(0u8, 0u16); 4];
        for item in accept.split(',').take(64) {
            let (range, q) = split_q(item);
            let Some((ty, sub)) = range.split_once('/') else {
                continue;
            };
            let (ty, sub) = (ty.trim(), sub.trim());
            for (i, f) in Format::ALL.into_iter().enumerate() {
                let spec = specificity(f, ty, sub);
                if spec > matched[i].0 {
                    matched[i] = (spec, q);
                }
            }
        }
        let mut best: Option<(u16, u8, Format)> = None;
        for (i, f) in Format::ALL.into_iter().enumerate() {
            let (spec, q) = matched[i];
            if spec == 0 || q == 0 {
                continue;
            }
            if best.is_none_or(|(bq, bs, _)| (q, spec) > (bq, bs)) {
                best = Some((q, spec, f));
            }
        }
        best.map(|(_, _, f)| f)
    }
}

/// How precisely `ty/sub` names format `f`: 3 exactly, 2 by `type/*`, 1 by `*/*`,
/// 0 not at all.
fn specificity(f: Format, ty: &str, sub: &str) -> u8 {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if eq(ty, "*") && eq(sub, "*") {
        return 1;
    }
    // Bytes, not `&str` slicing: `sub` is arbitrary input and the cut may fall
    // inside a multi-byte character.
    let ends = |suffix: &str| {
        sub.len() >= suffix.len()
            && sub.as_bytes()[sub.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    let exact = match f {
        Format::Html => {
            eq(ty, "text") && eq(sub, "html") || eq(ty, "application") && eq(sub, "xhtml+xml")
        }
        Format::Json => eq(ty, "application") && (eq(sub, "json") || ends("+json")),
        Format::Xml => {
            (eq(ty, "application") || eq(ty, "text"))
                && (eq(sub, "xml") || ends("+xml") && !eq(sub, "xhtml+xml"))
        }
        Format::Text => eq(ty, "text") && eq(sub, "plain"),
    };
    if exact {
        return 3;
    }
    let family = match f {
        Format::Html | Format::Text => eq(ty, "text"),
        Format::Json => eq(ty, "application"),
        Format::Xml => eq(ty, "text") || eq(ty, "application"),
    };
    if family && eq(sub, "*") {
        2
    } else {
        0
    }
}

/// Splits one entry of an `Accept` or `Accept-Language` list into its value and its
/// q-value in thousandths (1000 when absent or malformed).
pub(crate) fn split_q(item: &str) -> (&str, u16) {
    let mut parts = item.split(';');
    let value = parts.next().unwrap_or("").trim();
    let mut q = 1000;
    for p in parts {
        let p = p.trim();
        if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
            q = parse_q(v.trim()).unwrap_or(1000);
        }
    }
    (value, q)
}

fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    (thousandths <= 1000).then_some(thousandths)
}

/// What the request path asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathForm {
    /// `/healthz`.
    Health,
    /// `/{code}` or `/{code}.{ext}` with three digits; `code` is `None` when they are
    /// not a code from 400 to 599, `format` when there is no (known) extension.
    Code {
        code: Option<u16>,
        format: Option<Format>,
    },
    /// Anything else, `/` included.
    Other,
}

impl PathForm {
    pub fn parse(path: &str) -> PathForm {
        if path == "/healthz" {
            return PathForm::Health;
        }
        let Some(name) = path.strip_prefix('/') else {
            return PathForm::Other;
        };
        let (stem, format) = match name.split_once('.') {
            Some((stem, ext)) => match Format::from_extension(ext) {
                Some(f) => (stem, Some(f)),
                None => return PathForm::Other,
            },
            None => (name, None),
        };
        if stem.len() != 3 || !stem.bytes().all(|b| b.is_ascii_digit()) {
            return PathForm::Other;
        }
        PathForm::Code {
            code: parse_code(stem),
            format,
        }
    }
}

/// A status code from 400 to 599 (surrounding spaces allowed), else `None`.
pub fn parse_code(s: &str) -> Option<u16> {
    let s = s.trim();
    if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|c| (MIN_CODE..=MAX_CODE).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_with_multibyte_subtypes_does_not_panic() {
        // Found by the `pages_respond` fuzz target: a suffix check cut a
        // multi-byte character.
        assert_eq!(Format::from_accept("text/._.x\u{7fd}\u{5}"), None);
        assert_eq!(
            Format::from_accept("application/é+json"),
            Some(Format::Json)
        );
        assert_eq!(Format::from_accept("text/le.o/~\u{1}\u{41041}o"), None);
    }

    #[test]
    fn paths() {
        assert_eq!(PathForm::parse("/healthz"), PathForm::Health);
        assert_eq!(PathForm::parse("/"), PathForm::Other);
        assert_eq!(
            PathForm::parse("/404"),
            PathForm::Code {
                code: Some(404),
                format: None
            }
        );
        assert_eq!(
            PathForm::parse("/503.JSON"),
            PathForm::Code {
                code: Some(503),
                format: Some(Format::Json)
            }
        );
        assert_eq!(
            PathForm::parse("/502.txt"),
            PathForm::Code {
                code: Some(502),
                format: Some(Format::Text)
            }
        );
        assert_eq!(
            PathForm::parse("/200.xml"),
            PathForm::Code {
                code: None,
                format: Some(Format::Xml)
            }
        );
        assert_eq!(PathForm::parse("/404.png"), PathForm::Other);
        assert_eq!(PathForm::parse("/4044"), PathForm::Other);
        assert_eq!(PathForm::parse("/a/404"), PathForm::Other);
        assert_eq!(PathForm::parse("/styles/app.css"), PathForm::Other);
    }

    #[test]
    fn codes() {
        assert_eq!(parse_code("503"), Some(503));
        assert_eq!(parse_code(" 404 "), Some(404));
        for bad in ["200", "399", "600", "+50", "5e2", "", "abc", "0404"] {
            assert_eq!(parse_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn accept_lists() {
        let f = Format::from_accept;
        assert_eq!(f("*/*"), Some(Format::Html));
        assert_eq!(
            f("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            Some(Format::Html)
        );
        assert_eq!(f("application/json, */*"), Some(Format::Json));
        assert_eq!(f("application/json;q=0.5, text/plain"), Some(Format::Text));
        assert_eq!(f("text/*, text/plain;q=0"), Some(Format::Html));
        assert_eq!(f("text/plain, text/*;q=0.5"), Some(Format::Text));
        assert_eq!(f("application/*"), Some(Format::Json));
        assert_eq!(f("application/problem+json"), Some(Format::Json));
        assert_eq!(f("text/xml"), Some(Format::Xml));
        assert_eq!(f("APPLICATION/XML; charset=utf-8"), Some(Format::Xml));
        assert_eq!(f("image/png"), None);
        assert_eq!(f("text/html;q=0, */*;q=0"), None);
        assert_eq!(f(""), None);
        assert_eq!(f("*/*;q=0.1, text/html;q=0"), Some(Format::Json));
    }

    #[test]
    fn q_values() {
        assert_eq!(split_q("fr-CA;q=0.75"), ("fr-CA", 750));
        assert_eq!(split_q(" en "), ("en", 1000));
        assert_eq!(split_q("en;q=0"), ("en", 0));
        assert_eq!(split_q("en;q=1.5"), ("en", 1000));
        assert_eq!(split_q("en;q=0.0001"), ("en", 1000));
    }
}
