//! In-process fakes of the apps' admin APIs, for tests (feature `fakes`).
//!
//! Each fake is an axum server on `127.0.0.1:<random port>` written from the app's
//! official API documentation (each module cites its pages), with its state in
//! memory. A [`FakeApp`] adds what tests of a delivery pipeline need on top:
//!
//! - [`FakeApp::state`] / [`FakeApp::with_state`]: inspect or seed the app's data;
//! - [`FakeApp::set_outage`]: answer with an HTTP status (503, 429, ...), answer
//!   late, or refuse connections (the listener is closed and the same port is
//!   bound again by [`FakeApp::clear_outage`]);
//! - [`FakeApp::requests`]: a log of every request that reached the server
//!   (method, path, query, answered status), to assert exactly-once effects.
//!
//! Every response carries `Connection: close`, so clients never hold a pooled
//! connection across an outage: a refused connection is really refused.

pub mod nextcloud;
pub mod rocketchat;

pub use nextcloud::{spawn_nextcloud, NcGroup, NcUser, NextcloudState};
pub use rocketchat::{spawn_rocketchat, RcRoom, RcTeam, RcUser, RocketChatState};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A fault the fake injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Every request is answered with this HTTP status and a plain-text body, as a
    /// reverse proxy in front of a failing app would; the app's state is untouched.
    Status(u16),
    /// The listener is closed: connections are refused until
    /// [`FakeApp::clear_outage`]. Always lasts until cleared.
    Refuse,
    /// Each request is handled normally, but only after this delay (its effect
    /// happens even when the client has given up: an "unknown outcome").
    Delay(Duration),
}

/// How long an [`Outage`] lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageFor {
    /// The next `n` requests (ignored for [`Outage::Refuse`]).
    Requests(usize),
    /// Until [`FakeApp::clear_outage`].
    UntilCleared,
}

/// One request that reached a fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The HTTP status the fake answered.
    pub status: u16,
}

/// What the handlers of a fake share with the test: the app's state, the active
/// outage and the request log.
pub(crate) struct Shared<S> {
    state: Mutex<S>,
    outage: Mutex<Option<(Outage, OutageFor)>>,
    log: Mutex<Vec<RequestRecord>>,
}

/// Locks a mutex, recovering the data if a holder panicked (a failed assertion
/// in a test must not poison the fake for the remaining checks).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S> Shared<S> {
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut lock(&self.state))
    }
}

/// A running fake app. Dropping it stops the server.
pub struct FakeApp<S> {
    shared: Arc<Shared<S>>,
    addr: SocketAddr,
    router: Router,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl<S: Clone + Send + 'static> FakeApp<S> {
    /// Binds `127.0.0.1:0` and serves `app` (the fake's routes) behind the
    /// outage and logging layer.
    pub(crate) async fn start(
        shared: Arc<Shared<S>>,
        app: Router<()>,
    ) -> std::io::Result<FakeApp<S>> {
        let router = app.layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::<S>,
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let handle = serve(listener, router.clone());
        Ok(FakeApp {
            shared,
            addr,
            router,
            server: Mutex::new(Some(handle)),
        })
    }

    pub(crate) fn new_shared(state: S) -> Arc<Shared<S>> {
        Arc::new(Shared {
            state: Mutex::new(state),
            outage: Mutex::new(None),
            log: Mutex::new(Vec::new()),
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the app's data.
    pub fn state(&self) -> S {
        lock(&self.shared.state).clone()
    }

    /// Reads or changes the app's data (e.g. to create an account "behind
    /// Liaison's back").
    pub fn with_state<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        self.shared.with(f)
    }

    /// Starts a fault. A new outage replaces the previous one.
    pub async fn set_outage(&self, outage: Outage, duration: OutageFor) {
        *lock(&self.shared.outage) = Some((outage, duration));
        if outage == Outage::Refuse {
            self.stop().await;
        } else {
            self.resume().await;
        }
    }

    /// Ends any fault; after a [`Outage::Refuse`], listens again on the same port.
    pub async fn clear_outage(&self) {
        *lock(&self.shared.outage) = None;
        self.resume().await;
    }

    /// Every request that reached the server, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// How many requests with this method and path reached the server.
    pub fn count(&self, method: &str, path: &str) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .count()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    async fn stop(&self) {
        let handle = lock(&self.server).take();
        if let Some(handle) = handle {
            handle.abort();
            // Waits until the task (and so the listener) is dropped.
            let _ = handle.await;
        }
    }

    async fn resume(&self) {
        if lock(&self.server).is_some() {
            return;
        }
        // The port was ours a moment ago; binding again may need a few tries.
        let mut last_err = None;
        for _ in 0..100 {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => {
                    let handle = serve(listener, self.router.clone());
                    let mut slot = lock(&self.server);
                    if slot.is_none() {
                        *slot = Some(handle);
                    } else {
                        handle.abort();
                    }
                    return;
                }
                Err(e) => last_err = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::error!(addr = %self.addr, error = ?last_err, "fake app could not listen again");
    }
}

impl<S> Drop for FakeApp<S> {
    fn drop(&mut self) {
        if let Some(handle) = lock(&self.server).take() {
            handle.abort();
        }
    }
}

fn serve(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "fake app server stopped");
        }
    })
}

/// Applies the active outage, logs the request and closes the connection after
/// the response. The request is handled in a task of its own, so that it takes
/// effect (and is logged) even when the client gives up waiting, as on a real
/// server.
async fn guard<S: Send + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    req: Request,
    next: Next,
) -> Response {
    let task = tokio::spawn(async move {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);

        let fault = {
            let mut outage = lock(&shared.outage);
            let fault = match *outage {
                Some((o @ (Outage::Status(_) | Outage::Delay(_)), _)) => Some(o),
                _ => None,
            };
            if let Some((_, OutageFor::Requests(n))) = outage.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    *outage = None;
                }
            }
            fault
        };

        let mut response = match fault {
            Some(Outage::Status(code)) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let text = status.canonical_reason().unwrap_or("error").to_string();
                (status, Body::from(text)).into_response()
            }
            Some(Outage::Delay(d)) => {
                tokio::time::sleep(d).await;
                next.run(req).await
            }
            _ => next.run(req).await,
        };
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        lock(&shared.log).push(RequestRecord {
            method,
            path,
            query,
            status: response.status().as_u16(),
        });
        response
    });
    task.await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Parses request parameters the way PHP and Meteor apps read them: the query
/// string, then a form-urlencoded or JSON body (string, number and boolean
/// values; arrays as repeated `name[]` pairs).
pub(crate) fn params(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    if body.is_empty() {
        return out;
    }
    if content_type.is_some_and(|c| c.starts_with("application/json")) {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) => out.push((k, s)),
                    serde_json::Value::Array(items) => {
                        for item in items {
                            if let Some(s) = json_scalar(&item) {
                                out.push((format!("{k}[]"), s));
                            }
                        }
                    }
                    other => {
                        if let Some(s) = json_scalar(&other) {
                            out.push((k, s));
                        }
                    }
                }
            }
        }
    } else if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
        out.extend(pairs);
    }
    out
}

fn json_scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A random id of `len` alphanumeric characters.
pub(crate) fn random_id(len: usize) -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
