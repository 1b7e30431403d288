//! The pure core: a request's headers in, a page out. No I/O, no clock.

use std::fmt::Write as _;

use axum::http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use crate::catalogue::{Catalogue, Locale};
use crate::escape::{push_escaped_template, push_html, push_json, push_template, push_text};
use crate::index::{Index, SiteEntry, Style, PLAIN_CSP};
use crate::model::MaintenanceWindow;
use crate::negotiate::{parse_code, Format, PathForm};

/// Reflected header values (URI, host) are cut to this many bytes.
pub const MAX_REFLECTED: usize = 256;
/// Request IDs are cut to this many bytes, after dropping characters outside
/// `A-Z a-z 0-9 - _ . ~ : @ / + =`.
pub const MAX_REQUEST_ID: usize = 128;
/// A request with a header line (name and value) longer than this is answered 431.
pub const MAX_HEADER_LINE: usize = 8 * 1024;
/// A request whose header lines add up to more than this is answered 431. (Before the
/// router, hyper answers a bare 431 when a request head exceeds its read buffer, about
/// 400 KiB, or has more than 100 headers.)
pub const MAX_HEADERS_TOTAL: usize = 32 * 1024;

/// What a page depends on, borrowed from the request. Header values that are not
/// visible ASCII count as absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageRequest<'a> {
    /// The path, without the query.
    pub path: &'a str,
    /// `Host`: picks the organisation.
    pub host: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub accept_language: Option<&'a str>,
    /// `X-Code`.
    pub code: Option<&'a str>,
    /// `X-Format`: ingress-nginx passes the client's `Accept` there.
    pub format: Option<&'a str>,
    /// `X-Original-URI`.
    pub original_uri: Option<&'a str>,
    /// `X-Namespace`.
    pub namespace: Option<&'a str>,
    /// `X-Ingress-Name`.
    pub ingress_name: Option<&'a str>,
    /// `X-Service-Name`.
    pub service_name: Option<&'a str>,
    /// `X-Service-Port`.
    pub service_port: Option<&'a str>,
    /// `X-Request-ID`, else `X-Correlation-ID`.
    pub request_id: Option<&'a str>,
    /// Headers over [`MAX_HEADER_LINE`] or [`MAX_HEADERS_TOTAL`]: the answer is 431.
    pub oversized: bool,
}

impl<'a> PageRequest<'a> {
    /// Reads the headers of the ingress-nginx custom-errors contract (and `Host`,
    /// `Accept`, `Accept-Language`).
    /// Each header counts by its first value, as `HeaderMap::get` would return it.
    pub fn from_http(path: &'a str, headers: &'a HeaderMap) -> PageRequest<'a> {
        // One pass over the headers: `Some(value)` once a name has been seen, so
        // that a later value of the same name does not replace the first one.
        let mut seen: [Option<Option<&'a str>>; 12] = [None; 12];
        let mut total = 0;
        let mut oversized = false;
        for (name, value) in headers {
            let line = name.as_str().len() + value.len() + 4;
            total += line;
            oversized |= line > MAX_HEADER_LINE;
            let i = match name.as_str() {
                "host" => 0,
                "accept" => 1,
                "accept-language" => 2,
                "x-code" => 3,
                "x-format" => 4,
                "x-original-uri" => 5,
                "x-namespace" => 6,
                "x-ingress-name" => 7,
                "x-service-name" => 8,
                "x-service-port" => 9,
                "x-request-id" => 10,
                "x-correlation-id" => 11,
                _ => continue,
            };
            if seen[i].is_none() {
                seen[i] = Some(value.to_str().ok());
            }
        }
        let get = |i: usize| seen[i].flatten();
        PageRequest {
            path,
            host: get(0),
            accept: get(1),
            accept_language: get(2),
            code: get(3),
            format: get(4),
            original_uri: get(5),
            namespace: get(6),
            ingress_name: get(7),
            service_name: get(8),
            service_port: get(9),
            request_id: get(10).or_else(|| get(11)),
            oversized: oversized || total > MAX_HEADERS_TOTAL,
        }
    }
}

/// A rendered page.
#[derive(Clone, Debug)]
pub struct PageResponse {
    pub status: u16,
    pub format: Format,
    pub body: String,
    /// The page's language (`Content-Language`); `None` for `/healthz`.
    pub language: Option<HeaderValue>,
    pub csp: HeaderValue,
    /// Seconds until the end of the maintenance window (maintenance pages only).
    pub retry_after: Option<u64>,
    /// The sanitised request ID, echoed as `X-Request-ID`.
    pub request_id: Option<String>,
    /// The ID of the window a maintenance page is for.
    pub maintenance: Option<String>,
}

/// The codes a maintenance window turns into its maintenance page.
const MAINTENANCE_CODES: [u16; 3] = [502, 503, 504];

/// Answers a request.
///
/// * `/healthz`: 200 `ok`.
/// * Status: 431 when the headers are oversized; else `X-Code` when it is a code from
///   400 to 599; else the code of a `/{code}` or `/{code}.{ext}` path when it is one;
///   else 404 (`/`, any other path, other codes).
/// * Format: the path's extension, else `X-Format` read as an `Accept` list, else
///   `Accept`, else HTML.
/// * Organisation: the site whose host equals `Host` (port and case aside); none
///   gives a neutral page.
/// * Language: [`Catalogue::negotiate`] with the organisation's default language.
/// * Maintenance: for 502, 503 and 504 while a window of the organisation (or of the
///   app named by `X-Service-Name` or `X-Ingress-Name`) is active, the maintenance
///   page with 503 and `Retry-After`; otherwise a window starting within the index's
///   announcement period is announced on the page.
pub fn respond(
    req: &PageRequest,
    snap: &Index,
    cat: &Catalogue,
    now: OffsetDateTime,
) -> PageResponse {
    let path_form = PathForm::parse(req.path);
    if path_form == PathForm::Health {
        return PageResponse {
            status: 200,
            format: Format::Text,
            body: "ok".into(),
            language: None,
            csp: PLAIN_CSP.clone(),
            retry_after: None,
            request_id: req.request_id.and_then(sanitise_request_id),
            maintenance: None,
        };
    }
    let (path_code, path_format) = match path_form {
        PathForm::Code { code, format } => (code, format),
        _ => (None, None),
    };
    let code = if req.oversized {
        431
    } else {
        req.code.and_then(parse_code).or(path_code).unwrap_or(404)
    };
    let format = path_format
        .or_else(|| req.format.and_then(Format::from_accept))
        .or_else(|| req.accept.and_then(Format::from_accept))
        .unwrap_or(Format::Html);
    let site = req.host.and_then(|h| snap.site(h));
    let locale = cat.negotiate(
        req.accept_language,
        site.and_then(|s| s.default_language.as_deref()),
    );

    let mut maintenance = None;
    let mut upcoming = None;
    if let Some(site) = site {
        let applies = |w: &&MaintenanceWindow| match &w.app {
            None => true,
            Some(app) => [req.service_name, req.ingress_name]
                .into_iter()
                .flatten()
                .any(|n| n.eq_ignore_ascii_case(app)),
        };
        if MAINTENANCE_CODES.contains(&code) {
            maintenance = site
                .windows
                .iter()
                .filter(applies)
                .filter(|w| w.starts_at <= now && now < w.ends_at)
                .max_by_key(|w| w.ends_at);
        }
        if maintenance.is_none() {
            let horizon = now.saturating_add(snap.announce_ahead);
            upcoming = site
                .windows
                .iter()
                .filter(applies)
                .find(|w| now < w.starts_at && w.starts_at <= horizon);
        }
    }
    let status = if maintenance.is_some() { 503 } else { code };
    let ((title, description), (title_html, description_html)) = if maintenance.is_some() {
        (
            (
                &*locale.text.maintenance_title,
                &*locale.text.maintenance_description,
            ),
            (
                &*locale.html.maintenance_title,
                &*locale.html.maintenance_description,
            ),
        )
    } else {
        (locale.status(status), locale.status_html(status))
    };
    let retry_after = maintenance.map(|w| {
        let d = w.ends_at - now;
        let secs = d.whole_seconds() + i64::from(d.subsec_nanoseconds() > 0);
        u64::try_from(secs.max(1)).unwrap_or(1)
    });
    let style = site.map_or(snap.neutral_style(), |s| &s.style);
    let page = Page {
        status,
        style,
        title,
        description,
        title_html,
        description_html,
        locale,
        site,
        maintenance,
        upcoming,
        retry_after,
        host: req.host.map(|h| bounded(h, MAX_REFLECTED)),
        original_uri: req.original_uri.map(|u| bounded(u, MAX_REFLECTED)),
        request_id: req.request_id.and_then(sanitise_request_id),
    };
    let body = match format {
        Format::Html => page.html(),
        Format::Json => page.json(),
        Format::Xml => page.xml(),
        Format::Text => page.text(),
    };
    PageResponse {
        status,
        format,
        body,
        language: Some(locale.content_language().clone()),
        csp: match format {
            Format::Html => style.csp.clone(),
            _ => PLAIN_CSP.clone(),
        },
        retry_after,
        request_id: page.request_id,
        maintenance: maintenance.map(|w| w.id.clone()),
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn sanitise_request_id(id: &str) -> Option<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "-_.~:@/+=".contains(c);
    let clean: String = id.chars().filter(|&c| ok(c)).take(MAX_REQUEST_ID).collect();
    (!clean.is_empty()).then_some(clean)
}

struct Page<'a> {
    status: u16,
    style: &'a Style,
    title: &'a str,
    description: &'a str,
    /// `title` and `description` HTML-escaped.
    title_html: &'a str,
    description_html: &'a str,
    locale: &'a Locale,
    site: Option<&'a SiteEntry>,
    maintenance: Option<&'a MaintenanceWindow>,
    upcoming: Option<&'a MaintenanceWindow>,
    retry_after: Option<u64>,
    host: Option<&'a str>,
    original_uri: Option<&'a str>,
    request_id: Option<String>,
}

/// `2030-06-01 22:00 UTC`.
fn fmt_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl<'a> Page<'a> {
    /// The window's message in the page's language, else the organisation's, else
    /// English, else any; with its language.
    fn message(&self, w: &'a MaintenanceWindow) -> Option<(&'a str, &'a str)> {
        let default = self.site.and_then(|s| s.default_language.as_deref());
        [Some(self.locale.tag()), default, Some("en")]
            .into_iter()
            .flatten()
            .find_map(|tag| w.messages.iter().find(|(l, _)| l.eq_ignore_ascii_case(tag)))
            .or_else(|| w.messages.iter().next())
            .filter(|(_, m)| !m.trim().is_empty())
            .map(|(l, m)| (l.as_str(), m.as_str()))
    }

    /// Writes a catalogue message with its values: for HTML, the locale's
    /// pre-escaped `html` copy with the values escaped; for text, `text` through
    /// [`push_text`].
    fn template(out: &mut String, text: &str, html: &str, vars: &[(&str, &str)], as_html: bool) {
        if as_html {
            push_escaped_template(out, html, vars, push_html);
        } else {
            push_template(out, text, vars, push_text);
        }
    }

    fn code_line(&self, out: &mut String, as_html: bool) {
        let mut code = [0u8; 3];
        let code = format_code(self.status, &mut code);
        let l = self.locale;
        Self::template(
            out,
            &l.text.error_code,
            &l.html.error_code,
            &[("code", code)],
            as_html,
        );
    }

    fn back_at(&self, out: &mut String, w: &MaintenanceWindow, as_html: bool) {
        let l = self.locale;
        Self::template(
            out,
            &l.text.maintenance_back_at,
            &l.html.maintenance_back_at,
            &[("time", &fmt_time(w.ends_at))],
            as_html,
        );
    }

    fn upcoming_line(&self, out: &mut String, w: &MaintenanceWindow, as_html: bool) {
        let (start, end) = (fmt_time(w.starts_at), fmt_time(w.ends_at));
        let l = self.locale;
        Self::template(
            out,
            &l.text.maintenance_upcoming,
            &l.html.maintenance_upcoming,
            &[("start", &start), ("end", &end)],
            as_html,
        );
    }

    fn html(&self) -> String {
        // Catalogue texts and branding come HTML-escaped from the locale
        // (`locale.html`, `title_html`, `description_html`) and the site
        // (`site.html`); request values are escaped here.
        let style = &self.style.element;
        let mut o = String::with_capacity(3072 + style.len());
        let t = &self.locale.html;
        let tag = self.locale.tag();
        o.push_str("<!doctype html>\n<html lang=\"");
        push_html(&mut o, tag);
        o.push_str("\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"robots\" content=\"noindex\">\n<title>");
        o.push_str(self.title_html);
        if let Some(site) = self.site {
            o.push_str(" · ");
            o.push_str(&site.html.name);
        }
        o.push_str("</title>\n");
        o.push_str(style);
        o.push_str("\n</head>\n<body>\n<div class=\"wrap\">\n");
        if let Some(site) = self.site {
            o.push_str("<header>");
            if let Some(logo) = &site.html.logo_url {
                o.push_str("<img src=\"");
                o.push_str(logo);
                o.push_str("\" alt=\"\" height=\"48\">");
            }
            o.push_str("<span>");
            o.push_str(&site.html.name);
            o.push_str("</span></header>\n");
        }
        o.push_str("<main>\n<p class=\"code\">");
        self.code_line(&mut o, true);
        o.push_str("</p>\n<h1>");
        o.push_str(self.title_html);
        o.push_str("</h1>\n<p>");
        o.push_str(self.description_html);
        o.push_str("</p>\n");
        if let Some(w) = self.maintenance {
            if let Some((lang, msg)) = self.message(w) {
                self.html_message(&mut o, lang, msg);
            }
            o.push_str("<p>");
            self.back_at(&mut o, w, true);
            o.push_str("</p>\n");
        }
        if let Some(w) = self.upcoming {
            o.push_str(
                "<section class=\"notice\" aria-labelledby=\"upcoming\">\n<h2 id=\"upcoming\">",
            );
            o.push_str(&t.maintenance_upcoming_title);
            o.push_str("</h2>\n<p>");
            self.upcoming_line(&mut o, w, true);
            o.push_str("</p>\n");
            if let Some((lang, msg)) = self.message(w) {
                self.html_message(&mut o, lang, msg);
            }
            o.push_str("</section>\n");
        }
        if self.original_uri.is_some() || self.request_id.is_some() {
            o.push_str("<h2>");
            o.push_str(&t.details);
            o.push_str("</h2>\n<dl>\n");
            if let Some(uri) = self.original_uri {
                o.push_str("<dt>");
                o.push_str(&t.requested_address);
                o.push_str("</dt><dd><code>");
                push_html(&mut o, self.host.unwrap_or(""));
                push_html(&mut o, uri);
                o.push_str("</code></dd>\n");
            }
            if let Some(id) = &self.request_id {
                o.push_str("<dt>");
                o.push_str(&t.request_id);
                o.push_str("</dt><dd><code>");
                push_html(&mut o, id);
                o.push_str("</code></dd>\n");
            }
            o.push_str("</dl>\n");
        }
        o.push_str("</main>\n");
        if let Some(site) = self
            .site
            .filter(|s| s.contact_email.is_some() || s.status_url.is_some())
        {
            o.push_str("<footer>\n<h2>");
            o.push_str(&t.help);
            o.push_str("</h2>\n<ul>\n");
            if let Some(email) = &site.html.contact_email {
                o.push_str("<li><a href=\"mailto:");
                o.push_str(email);
                o.push_str("\">");
                o.push_str(&t.contact);
                o.push_str("</a> (");
                o.push_str(email);
                o.push_str(")</li>\n");
            }
            if let Some(url) = &site.html.status_url {
                o.push_str("<li><a href=\"");
                o.push_str(url);
                o.push_str("\">");
                o.push_str(&t.status_page);
                o.push_str("</a></li>\n");
            }
            o.push_str("</ul>\n</footer>\n");
        }
        o.push_str("</div>\n</body>\n</html>\n");
        o
    }

    fn html_message(&self, o: &mut String, lang: &str, msg: &str) {
        if lang.eq_ignore_ascii_case(self.locale.tag()) {
            o.push_str("<p>");
        } else {
            o.push_str("<p lang=\"");
            push_html(o, lang);
            o.push_str("\">");
        }
        push_html(o, msg);
        o.push_str("</p>\n");
    }

    fn json(&self) -> String {
        let mut o = String::with_capacity(512);
        let _ = write!(o, "{{\"status\":{},\"title\":", self.status);
        json_str(&mut o, Some(self.title));
        o.push_str(",\"description\":");
        json_str(&mut o, Some(self.description));
        o.push_str(",\"language\":");
        json_str(&mut o, Some(self.locale.tag()));
        o.push_str(",\"organisation\":");
        json_str(&mut o, self.site.map(|s| &*s.name));
        o.push_str(",\"request_id\":");
        json_str(&mut o, self.request_id.as_deref());
        o.push_str(",\"original_uri\":");
        json_str(&mut o, self.original_uri);
        o.push_str(",\"maintenance\":");
        match self.maintenance {
            Some(w) => {
                o.push_str("{\"id\":");
                json_str(&mut o, Some(&w.id));
                o.push_str(",\"message\":");
                json_str(&mut o, self.message(w).map(|(_, m)| m));
                let _ = write!(
                    o,
                    ",\"ends_at\":\"{}\",\"retry_after\":{}}}",
                    rfc3339(w.ends_at),
                    self.retry_after.unwrap_or(1)
                );
            }
            None => o.push_str("null"),
        }
        o.push_str(",\"upcoming_maintenance\":");
        match self.upcoming {
            Some(w) => {
                o.push_str("{\"id\":");
                json_str(&mut o, Some(&w.id));
                o.push_str(",\"message\":");
                json_str(&mut o, self.message(w).map(|(_, m)| m));
                let _ = write!(
                    o,
                    ",\"starts_at\":\"{}\",\"ends_at\":\"{}\"}}",
                    rfc3339(w.starts_at),
                    rfc3339(w.ends_at)
                );
            }
            None => o.push_str("null"),
        }
        o.push_str(",\"contact_email\":");
        json_str(&mut o, self.site.and_then(|s| s.contact_email.as_deref()));
        o.push_str(",\"status_url\":");
        json_str(&mut o, self.site.and_then(|s| s.status_url.as_deref()));
        o.push_str("}\n");
        o
    }

    fn xml(&self) -> String {
        let mut o = String::with_capacity(512);
        o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error xml:lang=\"");
        push_html(&mut o, self.locale.tag());
        let _ = write!(o, "\"><status>{}</status><title>", self.status);
        push_html(&mut o, self.title);
        o.push_str("</title><description>");
        push_html(&mut o, self.description);
        o.push_str("</description>");
        let el = |o: &mut String, name: &str, v: Option<&str>| {
            if let Some(v) = v {
                let _ = write!(o, "<{name}>");
                push_html(o, v);
                let _ = write!(o, "</{name}>");
            }
        };
        el(&mut o, "organisation", self.site.map(|s| &*s.name));
        el(&mut o, "request-id", self.request_id.as_deref());
        el(&mut o, "original-uri", self.original_uri);
        if let Some(w) = self.maintenance {
            o.push_str("<maintenance id=\"");
            push_html(&mut o, &w.id);
            let _ = write!(
                o,
                "\" ends-at=\"{}\" retry-after=\"{}\">",
                rfc3339(w.ends_at),
                self.retry_after.unwrap_or(1)
            );
            el(&mut o, "message", self.message(w).map(|(_, m)| m));
            o.push_str("</maintenance>");
        }
        if let Some(w) = self.upcoming {
            o.push_str("<upcoming-maintenance id=\"");
            push_html(&mut o, &w.id);
            let _ = write!(
                o,
                "\" starts-at=\"{}\" ends-at=\"{}\">",
                rfc3339(w.starts_at),
                rfc3339(w.ends_at)
            );
            el(&mut o, "message", self.message(w).map(|(_, m)| m));
            o.push_str("</upcoming-maintenance>");
        }
        el(
            &mut o,
            "contact-email",
            self.site.and_then(|s| s.contact_email.as_deref()),
        );
        el(
            &mut o,
            "status-url",
            self.site.and_then(|s| s.status_url.as_deref()),
        );
        o.push_str("</error>\n");
        o
    }

    fn text(&self) -> String {
        let mut o = String::with_capacity(512);
        if let Some(site) = self.site {
            push_text(&mut o, &site.name);
            o.push('\n');
        }
        self.code_line(&mut o, false);
        o.push_str(" - ");
        push_text(&mut o, self.title);
        o.push('\n');
        push_text(&mut o, self.description);
        o.push('\n');
        if let Some(w) = self.maintenance {
            if let Some((_, msg)) = self.message(w) {
                push_text(&mut o, msg);
                o.push('\n');
            }
            self.back_at(&mut o, w, false);
            o.push('\n');
        }
        if let Some(w) = self.upcoming {
            self.upcoming_line(&mut o, w, false);
            o.push('\n');
            if let Some((_, msg)) = self.message(w) {
                push_text(&mut o, msg);
                o.push('\n');
            }
        }
        let line = |o: &mut String, label: &str, v: &str| {
            push_text(o, label);
            o.push_str(": ");
            push_text(o, v);
            o.push('\n');
        };
        let t = &self.locale.text;
        if let Some(uri) = self.original_uri {
            push_text(&mut o, &t.requested_address);
            o.push_str(": ");
            push_text(&mut o, self.host.unwrap_or(""));
            push_text(&mut o, uri);
            o.push('\n');
        }
        if let Some(id) = &self.request_id {
            line(&mut o, &t.request_id, id);
        }
        if let Some(email) = self.site.and_then(|s| s.contact_email.as_deref()) {
            line(&mut o, &t.contact, email);
        }
        if let Some(url) = self.site.and_then(|s| s.status_url.as_deref()) {
            line(&mut o, &t.status_page, url);
        }
        o
    }
}

fn json_str(o: &mut String, v: Option<&str>) {
    match v {
        Some(v) => {
            o.push('"');
            push_json(o, v);
            o.push('"');
        }
        None => o.push_str("null"),
    }
}

fn format_code(code: u16, buf: &mut [u8; 3]) -> &str {
    buf[0] = b'0' + (code / 100 % 10) as u8;
    buf[1] = b'0' + (code / 10 % 10) as u8;
    buf[2] = b'0' + (code % 10) as u8;
    std::str::from_utf8(buf).unwrap_or("000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_at_a_character_boundary() {
        assert_eq!(bounded("abc", 2), "ab");
        assert_eq!(bounded("aé", 2), "a");
        assert_eq!(bounded("é", 8), "é");
    }

    #[test]
    fn headers_count_by_their_first_value_like_header_map_get() {
        let mut h = HeaderMap::new();
        h.append("x-code", HeaderValue::from_bytes(b"5\xff3").unwrap());
        h.append("x-code", HeaderValue::from_static("503"));
        h.append("host", HeaderValue::from_static("a.example"));
        h.append("host", HeaderValue::from_static("b.example"));
        h.append("x-correlation-id", HeaderValue::from_static("corr"));
        h.append("x-unrelated", HeaderValue::from_static("x"));
        let r = PageRequest::from_http("/", &h);
        // The first value is not visible ASCII: absent, as through `get`.
        assert_eq!(r.code, None);
        assert_eq!(r.host, Some("a.example"));
        assert_eq!(r.request_id, Some("corr"));
        assert_eq!(r.accept, None);
        assert!(!r.oversized);
        h.append("x-request-id", HeaderValue::from_static("req"));
        assert_eq!(PageRequest::from_http("/", &h).request_id, Some("req"));
    }

    #[test]
    fn codes_format_as_three_digits() {
        assert_eq!(format_code(404, &mut [0; 3]), "404");
        assert_eq!(format_code(599, &mut [0; 3]), "599");
    }
}
