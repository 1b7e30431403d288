//! The HTTP side: the router, its shared state and the background refresh.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LANGUAGE, CONTENT_SECURITY_POLICY, CONTENT_TYPE, RETRY_AFTER,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use time::OffsetDateTime;

use crate::catalogue::Catalogue;
use crate::index::{Index, DEFAULT_ANNOUNCE_AHEAD};
use crate::model::{Snapshot, Source};
use crate::page::{respond, PageRequest, PageResponse};

/// How the pages run.
#[derive(Clone, Debug)]
pub struct PagesConfig {
    /// Time between two loads of the source; zero loads it only once.
    pub refresh: Duration,
    /// How long before its start a window is announced on the organisation's pages.
    pub announce_ahead: Duration,
    /// A directory of `{tag}.toml` message files added to the embedded ones.
    pub locales_dir: Option<PathBuf>,
}

impl Default for PagesConfig {
    fn default() -> Self {
        PagesConfig {
            refresh: Duration::from_secs(30),
            announce_ahead: DEFAULT_ANNOUNCE_AHEAD,
            locales_dir: None,
        }
    }
}

/// The pages' state: the catalogue and the current index, which [`Pages::refresh`]
/// replaces.
///
/// Each index is published with a stamp unique in the process. A thread answering
/// requests keeps the last index it used with its stamp (a thread-local), and takes
/// the lock only when `stamp` says a newer index was published: the request path
/// reads one atomic that only refreshes write. A thread holds on to the index it
/// last used until its next request.
pub struct Pages {
    source: Arc<dyn Source>,
    cfg: PagesConfig,
    catalogue: Catalogue,
    index: RwLock<(u64, Arc<Index>)>,
    stamp: AtomicU64,
    last: tokio::sync::Mutex<Snapshot>,
}

/// The source of index stamps.
static NEXT_STAMP: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The index this thread last answered with, and its stamp.
    static LOCAL_INDEX: RefCell<Option<(u64, Arc<Index>)>> = const { RefCell::new(None) };
}

impl Pages {
    /// Loads the catalogue and the source once; fails if either fails.
    pub async fn new(source: Arc<dyn Source>, cfg: PagesConfig) -> anyhow::Result<Arc<Pages>> {
        let catalogue = match &cfg.locales_dir {
            Some(dir) => Catalogue::load_dir(dir)?,
            None => Catalogue::embedded(),
        };
        let snap = source.load().await?;
        let index = Index::new(&snap, cfg.announce_ahead);
        tracing::info!(
            sites = index.len().0,
            hosts = index.len().1,
            windows = snap.windows.len(),
            "pages: loaded"
        );
        let stamp = NEXT_STAMP.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Pages {
            source,
            cfg,
            catalogue,
            index: RwLock::new((stamp, Arc::new(index))),
            stamp: AtomicU64::new(stamp),
            last: tokio::sync::Mutex::new(snap),
        }))
    }

    /// Loads the source again and swaps the index when the snapshot changed. On error
    /// the current index stays.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let mut last = self.last.lock().await;
        let snap = self.source.load().await?;
        if snap != *last {
            let index = Index::new(&snap, self.cfg.announce_ahead);
            tracing::info!(
                sites = index.len().0,
                hosts = index.len().1,
                windows = snap.windows.len(),
                "pages: reloaded"
            );
            let stamp = NEXT_STAMP.fetch_add(1, Ordering::Relaxed);
            *self.index.write().unwrap_or_else(|e| e.into_inner()) = (stamp, Arc::new(index));
            self.stamp.store(stamp, Ordering::Release);
            *last = snap;
        }
        Ok(())
    }

    /// The current index.
    pub fn index(&self) -> Arc<Index> {
        self.index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Calls `f` with the current index, through this thread's copy when it is
    /// current (see [`Pages`]).
    fn with_index<R>(&self, f: impl FnOnce(&Index) -> R) -> R {
        let stamp = self.stamp.load(Ordering::Acquire);
        let mut f = Some(f);
        let local = LOCAL_INDEX.try_with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            if !matches!(&*slot, Some((s, _)) if *s == stamp) {
                let current = self.index.read().unwrap_or_else(|e| e.into_inner());
                *slot = Some((current.0, current.1.clone()));
            }
            let (_, index) = slot.as_ref()?;
            Some(f.take()?(index))
        });
        match (local, f) {
            (Ok(Some(r)), _) => r,
            (_, Some(f)) => f(&self.index()),
            (_, None) => unreachable!("f returned a value"),
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Answers every path and method (see [`respond`]).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(page).with_state(self.clone())
    }

    /// Refreshes every `cfg.refresh` until the last reference to `self` goes away.
    pub fn spawn_refresh(self: &Arc<Self>) {
        if self.cfg.refresh.is_zero() {
            return;
        }
        let weak: Weak<Pages> = Arc::downgrade(self);
        let period = self.cfg.refresh;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(pages) = weak.upgrade() else { break };
                if let Err(e) = pages.refresh().await {
                    tracing::warn!("pages: refresh failed, keeping the last snapshot: {e:#}");
                }
            }
        });
    }
}

/// The pages router: loads once (failing if that fails), then refreshes in the
/// background every `cfg.refresh`, keeping the last good snapshot when a load fails.
pub async fn router(source: Arc<dyn Source>, cfg: PagesConfig) -> anyhow::Result<Router> {
    let pages = Pages::new(source, cfg).await?;
    pages.spawn_refresh();
    Ok(pages.router())
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_ROBOTS_TAG: HeaderName = HeaderName::from_static("x-robots-tag");
static X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
static REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");

async fn page(State(pages): State<Arc<Pages>>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let mut page_req = PageRequest::from_http(parts.uri.path(), &parts.headers);
    if page_req.host.is_none() {
        page_req.host = parts.uri.host();
    }
    let now = OffsetDateTime::now_utc();
    let page = pages.with_index(|index| respond(&page_req, index, &pages.catalogue, now));
    into_response(page)
}

/// The HTTP answer of a page, with its security headers.
pub fn into_response(page: PageResponse) -> Response {
    let mut res = Response::new(Body::from(page.body));
    *res.status_mut() = StatusCode::from_u16(page.status).unwrap_or(StatusCode::NOT_FOUND);
    let h = res.headers_mut();
    h.reserve(12);
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(page.format.content_type()),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_ROBOTS_TAG.clone(), HeaderValue::from_static("noindex"));
    h.insert(
        X_CONTENT_TYPE_OPTIONS.clone(),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        REFERRER_POLICY.clone(),
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(CONTENT_SECURITY_POLICY, page.csp);
    if let Some(lang) = page.language {
        h.insert(CONTENT_LANGUAGE, lang);
    }
    if let Some(secs) = page.retry_after {
        h.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(id) = page
        .request_id
        .and_then(|id| HeaderValue::try_from(id).ok())
    {
        h.insert(X_REQUEST_ID.clone(), id);
    }
    res
}
