//! The one place this crate speaks HTTP: no redirects, connect and total
//! timeouts, bodies read up to a bound, errors typed with the HTTP status.
//! Everything Keycloak answers goes through [`Http::send`].

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HttpError {
    /// No answer: connection refused or cut, timeout, TLS failure.
    #[error("unreachable: {0}")]
    Transport(String),
    /// An answer with a status other than the expected ones. `detail` is a
    /// bounded excerpt of the body.
    #[error("HTTP {status}: {detail}")]
    Status { status: u16, detail: String },
    /// The body exceeds the bound.
    #[error("the answer exceeds {0} bytes")]
    TooLarge(usize),
    /// The body is not the JSON expected.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl HttpError {
    /// Whether trying again later may succeed (unreachable, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Transport(_) => true,
            HttpError::Status { status, .. } => *status >= 500 || *status == 429,
            HttpError::TooLarge(_) | HttpError::Decode(_) => false,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub connect_timeout: Duration,
    /// Whole request, body included.
    pub timeout: Duration,
    pub max_body: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_body: 8 << 20,
        }
    }
}

/// A client with those rules.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    max_body: usize,
}

/// Characters of an error body kept in [`HttpError::Status`].
const DETAIL_CHARS: usize = 300;

impl Http {
    pub fn new(limits: HttpLimits) -> Result<Http, HttpError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.timeout)
            .user_agent(concat!("liaison-source/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        Ok(Http {
            client,
            max_body: limits.max_body,
        })
    }

    /// Sends a request and reads its body (bounded). Answers other than 2xx are
    /// [`HttpError::Status`], except the statuses in `accept`, which are returned
    /// with their body like a success.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        bearer: Option<&str>,
        form: Option<String>,
        accept: &[u16],
    ) -> Result<(StatusCode, Vec<u8>), HttpError> {
        let mut req = self
            .client
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = form {
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body);
        }
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(HttpError::TooLarge(self.max_body));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() || accept.contains(&status.as_u16()) {
            return Ok((status, body));
        }
        let text = String::from_utf8_lossy(&body);
        Err(HttpError::Status {
            status: status.as_u16(),
            detail: text.chars().take(DETAIL_CHARS).collect(),
        })
    }

    /// GET as JSON; `Ok(None)` on 404.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        bearer: &str,
    ) -> Result<Option<T>, HttpError> {
        let (status, body) = self
            .send(Method::GET, url, Some(bearer), None, &[404])
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        decode(&body).map(Some)
    }
}

/// Parses a JSON body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpError> {
    serde_json::from_slice(body).map_err(|e| HttpError::Decode(e.to_string()))
}

fn transport(e: reqwest::Error) -> HttpError {
    // The error's URL may carry query parameters but never credentials (they
    // travel in headers and bodies); its chain says what failed.
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    HttpError::Transport(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn bodies_are_bounded_and_redirects_not_followed() {
        let base = serve(
            Router::new()
                .route("/big", get(|| async { "x".repeat(5000) }))
                .route(
                    "/moved",
                    get(|| async {
                        (
                            axum::http::StatusCode::FOUND,
                            [(axum::http::header::LOCATION, "/big")],
                        )
                    }),
                )
                .route(
                    "/missing",
                    get(|| async { axum::http::StatusCode::NOT_FOUND }),
                )
                .route(
                    "/broken",
                    get(|| async { (axum::http::StatusCode::BAD_GATEWAY, "upstream down") }),
                ),
        )
        .await;
        let http = Http::new(HttpLimits {
            max_body: 1000,
            ..HttpLimits::default()
        })
        .unwrap();
        let url = |p: &str| Url::parse(&format!("{base}{p}")).unwrap();
        let big = http.send(Method::GET, url("/big"), None, None, &[]).await;
        assert_eq!(big, Err(HttpError::TooLarge(1000)));
        let moved = http.send(Method::GET, url("/moved"), None, None, &[]).await;
        assert_eq!(moved.unwrap_err().status(), Some(302));
        let missing: Option<serde_json::Value> = http.get_json(url("/missing"), "t").await.unwrap();
        assert!(missing.is_none());
        let broken = http
            .send(Method::GET, url("/broken"), None, None, &[])
            .await
            .unwrap_err();
        assert!(broken.is_transient(), "{broken}");
        assert_eq!(broken.to_string(), "HTTP 502: upstream down");
        let closed = Http::new(HttpLimits::default())
            .unwrap()
            .send(
                Method::GET,
                Url::parse("http://127.0.0.1:9/").unwrap(),
                None,
                None,
                &[],
            )
            .await
            .unwrap_err();
        assert!(matches!(closed, HttpError::Transport(_)), "{closed}");
    }
}
