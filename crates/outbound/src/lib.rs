//! The one HTTP layer for calls to other services (the apps Liaison
//! provisions, the Keycloak directory source, Prometheus, Dokos): an answer is
//! never trusted.
//!
//! - **No redirects**: a 3xx answer is an error ([`HttpError::Redirect`]), so
//!   credentials sent in headers (Basic auth, bearer tokens, Rocket.Chat's
//!   `X-User-Id`/`X-Auth-Token`) never reach another host.
//! - **Timeouts**: one to connect, one for the whole request, body included.
//! - **Bounded bodies**: a body is read up to [`Limits::max_body`] (8 MiB by
//!   default) and refused beyond ([`HttpError::TooLarge`]), whatever
//!   `Content-Length` says.
//! - **Bounded listings**: a [`Pager`] counts the pages and items of a paged
//!   listing and stops it at [`Limits::max_pages`] / [`Limits::max_items`]
//!   with [`HttpError::TooMany`], so a peer announcing `totalResults: 1e12`, or
//!   answering full pages for ever, ends the listing instead of looping.
//! - **Typed errors**: the HTTP status is a number in [`HttpError::Status`],
//!   never parsed back out of a message.
//! - **Excerpts**: what is kept of an answer for messages ([`excerpt`]) is
//!   short and sanitised (no control characters).

use std::borrow::Cow;
use std::time::Duration;

pub use reqwest::{header, Method, RequestBuilder, StatusCode, Url};

/// Characters of an answer kept in an error message.
pub const EXCERPT_CHARS: usize = 200;

/// Limits of a [`Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// The whole request, body included.
    pub timeout: Duration,
    /// Bytes of a body read at most.
    pub max_body: usize,
    /// Pages of one listing.
    pub max_pages: usize,
    /// Items of one listing.
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body: 8 << 20,
            max_pages: 2_000,
            max_items: 200_000,
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No answer: connection refused or cut, timeout, TLS failure.
    #[error("unreachable: {0}")]
    Transport(String),
    /// A redirect, which is not followed.
    #[error("HTTP {status}: a redirect, not followed (is the base URL right?)")]
    Redirect { status: u16 },
    /// The body exceeds [`Limits::max_body`].
    #[error("the answer exceeds {limit} bytes")]
    TooLarge { limit: usize },
    /// A listing exceeds [`Limits::max_pages`] or [`Limits::max_items`].
    #[error("the listing exceeds {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
    /// An answer with an unexpected status; `excerpt` is a short, sanitised
    /// part of its body.
    #[error("HTTP {status}: {excerpt}")]
    Status { status: u16, excerpt: String },
    /// The body is not what was expected.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl HttpError {
    /// Whether trying again later may succeed (unreachable, 5xx, 429, 408).
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Transport(_) => true,
            HttpError::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            _ => false,
        }
    }

    /// The HTTP status of an answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } | HttpError::Redirect { status } => Some(*status),
            _ => None,
        }
    }
}

/// An answer read whole (within the bound), any status but a redirect.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body as JSON, `None` when it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A short, sanitised excerpt of the body.
    pub fn excerpt(&self) -> String {
        excerpt(&self.text())
    }

    /// The body parsed as JSON into `T`; [`HttpError::Decode`] (with a short
    /// message) when it does not fit.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode(clip(&e.to_string(), 300)))
    }

    /// This answer as an [`HttpError::Status`].
    pub fn error(&self) -> HttpError {
        HttpError::Status {
            status: self.status.as_u16(),
            excerpt: self.excerpt(),
        }
    }
}

/// `text` made fit for a message: control characters (line breaks, escapes)
/// become spaces, runs of white space one space, and at most [`EXCERPT_CHARS`]
/// characters are kept (`…` marks a cut).
pub fn excerpt(text: &str) -> String {
    clip(text, EXCERPT_CHARS)
}

/// Like [`excerpt`], with `max` characters at most (`…` included).
pub fn clip(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in text.trim().chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if count + 1 >= max && max > 0 {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// An HTTP client with the rules of this crate.
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::Client,
    limits: Limits,
}

impl Client {
    /// A client with these limits.
    pub fn new(limits: Limits) -> Result<Client, HttpError> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.timeout)
            .user_agent(concat!("liaison/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(transport)?;
        Ok(Client { inner, limits })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A request to be completed (headers, body) and given to [`Client::send`].
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.inner.request(method, url)
    }

    /// Sends a request and reads its body up to the bound. Any status is
    /// returned, except redirects ([`HttpError::Redirect`]).
    pub async fn send(&self, req: RequestBuilder) -> Result<Response, HttpError> {
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(HttpError::Redirect {
                status: status.as_u16(),
            });
        }
        let limit = self.limits.max_body;
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(HttpError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                return Err(HttpError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, body })
    }

    /// [`Client::send`], and an answer whose status is neither a success nor
    /// one of `accept` is an error ([`HttpError::Status`]).
    pub async fn send_expecting(
        &self,
        req: RequestBuilder,
        accept: &[u16],
    ) -> Result<Response, HttpError> {
        let resp = self.send(req).await?;
        if resp.status.is_success() || accept.contains(&resp.status.as_u16()) {
            Ok(resp)
        } else {
            Err(resp.error())
        }
    }

    /// A counter for one paged listing.
    pub fn pager(&self) -> Pager {
        Pager::new(&self.limits)
    }
}

/// Counts the pages and items of one listing; see [`Pager::page`].
#[derive(Debug, Clone)]
pub struct Pager {
    max_pages: usize,
    max_items: usize,
    pages: usize,
    items: usize,
}

impl Pager {
    pub fn new(limits: &Limits) -> Pager {
        Pager {
            max_pages: limits.max_pages,
            max_items: limits.max_items,
            pages: 0,
            items: 0,
        }
    }

    /// Records a page of `items` items: an error once the listing has more
    /// pages or items than allowed.
    pub fn page(&mut self, items: usize) -> Result<(), HttpError> {
        self.pages += 1;
        self.items = self.items.saturating_add(items);
        if self.pages > self.max_pages {
            return Err(HttpError::TooMany {
                what: "pages",
                limit: self.max_pages,
            });
        }
        if self.items > self.max_items {
            return Err(HttpError::TooMany {
                what: "items",
                limit: self.max_items,
            });
        }
        Ok(())
    }

    /// Pages recorded so far.
    pub fn pages(&self) -> usize {
        self.pages
    }
}

fn transport(e: reqwest::Error) -> HttpError {
    // The message says what failed; the URL is left out (its query may carry
    // names), and credentials travel in headers, never in messages.
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if timeout && !msg.contains("timed out") {
        msg.push_str(" (timed out)");
    }
    HttpError::Transport(clip(&msg, 300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_clean() {
        assert_eq!(excerpt("  a\r\n\tb\u{1b}[31m  c "), "a b [31m c");
        let long = "é".repeat(10_000);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS);
        assert!(e.ends_with('…'));
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }

    #[test]
    fn pagers_stop_at_the_caps() {
        let limits = Limits {
            max_pages: 3,
            max_items: 10,
            ..Limits::default()
        };
        let mut p = Pager::new(&limits);
        assert!(p.page(4).is_ok() && p.page(4).is_ok());
        assert_eq!(
            p.page(4),
            Err(HttpError::TooMany {
                what: "items",
                limit: 10
            })
        );
        let mut p = Pager::new(&limits);
        for _ in 0..3 {
            p.page(0).unwrap();
        }
        assert!(matches!(
            p.page(0),
            Err(HttpError::TooMany { what: "pages", .. })
        ));
    }

    #[test]
    fn statuses_say_whether_to_retry() {
        let s = |status| HttpError::Status {
            status,
            excerpt: String::new(),
        };
        assert!(s(503).is_transient() && s(429).is_transient());
        assert!(!s(409).is_transient() && !s(404).is_transient());
        assert_eq!(s(409).status(), Some(409));
        assert!(!HttpError::Redirect { status: 302 }.is_transient());
        assert!(HttpError::Transport("x".into()).is_transient());
    }
}
