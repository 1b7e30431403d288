//! The console's handlers and their templates. Each handler finds the
//! session, asks one `service::console` function and renders its answer;
//! failures become an HTML page with the matching status.

use crate::auth;
use crate::i18n::{ConsoleTexts, Lang, Texts};
use crate::{html, secure_headers, Console};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use service::apps::LinkStatus;
use service::console::{self as svc, Session};
use service::ServiceError;
use std::sync::Arc;

type St = State<Arc<Console>>;

/// What the page header shows of the session.
pub(crate) struct Chrome {
    actor: String,
    operator: bool,
    org: Option<String>,
    csrf: String,
}

/// A signed-in request: its language, session and the session's secret.
struct Ctx {
    lang: Lang,
    session: Session,
    secret: String,
}

impl Ctx {
    fn chrome(&self) -> Option<Chrome> {
        Some(Chrome {
            actor: self.session.actor.clone(),
            operator: self.session.is_operator(),
            org: self.session.org.as_ref().map(|o| o.slug.clone()),
            csrf: svc::csrf_token(&self.secret),
        })
    }

    fn t(&self) -> &'static Texts {
        self.lang.texts()
    }
}

/// Why a request gets no page of its own.
enum Fail {
    /// No session: how to sign in (401).
    SignIn,
    /// A login link that opens nothing (404).
    BadLink,
    /// No such page, or not the session's to see (404).
    NotFound,
    /// A POST without the session's CSRF token (403).
    Csrf,
    /// The request is not acceptable (400), with the service's message.
    Invalid(String),
    /// The database failed (500); logged.
    Internal,
}

impl From<ServiceError> for Fail {
    fn from(e: ServiceError) -> Fail {
        match e {
            ServiceError::NotFound(_) | ServiceError::Forbidden(_) => Fail::NotFound,
            ServiceError::Invalid(m) | ServiceError::Conflict(m) => Fail::Invalid(m),
            ServiceError::Upstream(m) => {
                tracing::warn!(error = %m, "console: upstream failure");
                Fail::Internal
            }
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "console: database failure");
                Fail::Internal
            }
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    lang: &'a str,
    t: &'a Texts,
    chrome: Option<Chrome>,
    heading: &'a str,
    text: &'a str,
    command: Option<&'a str>,
}

/// Renders a template, or a plain 500 if it cannot be (it always can: the
/// templates are compiled in).
fn render(status: StatusCode, lang: Lang, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => html(status, lang, body),
        Err(e) => {
            tracing::error!(error = %e, "console: template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn fail_page(lang: Lang, chrome: Option<Chrome>, fail: Fail) -> Response {
    let t = lang.texts();
    let (status, heading, text, command) = match &fail {
        Fail::SignIn => (
            StatusCode::UNAUTHORIZED,
            t.signin_title.as_str(),
            t.signin_text.clone(),
            Some("liaison console link --operator"),
        ),
        Fail::BadLink => (
            StatusCode::NOT_FOUND,
            t.signin_title.as_str(),
            t.signin_expired.clone(),
            Some("liaison console link --operator"),
        ),
        Fail::NotFound => (
            StatusCode::NOT_FOUND,
            t.not_found_title.as_str(),
            t.not_found_text.clone(),
            None,
        ),
        Fail::Csrf => (
            StatusCode::FORBIDDEN,
            t.forbidden_title.as_str(),
            t.forbidden_text.clone(),
            None,
        ),
        Fail::Invalid(m) => (
            StatusCode::BAD_REQUEST,
            t.invalid_title.as_str(),
            m.clone(),
            None,
        ),
        Fail::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            t.error_title.as_str(),
            t.error_text.clone(),
            None,
        ),
    };
    render(
        status,
        lang,
        &MessagePage {
            lang: lang.tag(),
            t,
            chrome,
            heading,
            text: &text,
            command,
        },
    )
}

fn lang_of(headers: &HeaderMap) -> Lang {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::negotiate)
        .unwrap_or_default()
}

/// The signed-in context of a request, or the page to answer with.
async fn ctx(c: &Console, headers: &HeaderMap) -> Result<Ctx, Response> {
    let lang = lang_of(headers);
    let Some(secret) = auth::session_secret(headers) else {
        return Err(fail_page(lang, None, Fail::SignIn));
    };
    match svc::session(&c.store, &secret).await {
        Ok(Some(session)) => Ok(Ctx {
            lang,
            session,
            secret,
        }),
        Ok(None) => Err(fail_page(lang, None, Fail::SignIn)),
        Err(e) => Err(fail_page(lang, None, e.into())),
    }
}

/// Runs a signed-in handler body: its failures become pages with the header
/// of the session.
async fn signed_in<F, Fut>(c: Arc<Console>, headers: &HeaderMap, f: F) -> Response
where
    F: FnOnce(Arc<Console>, Ctx) -> Fut,
    Fut: std::future::Future<Output = (Lang, Option<Chrome>, Result<Response, Fail>)>,
{
    let ctx = match ctx(&c, headers).await {
        Ok(ctx) => ctx,
        Err(page) => return page,
    };
    match f(c, ctx).await {
        (_, _, Ok(r)) => r,
        (lang, chrome, Err(fail)) => fail_page(lang, chrome, fail),
    }
}

/// A 303 to `to`.
pub(crate) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(r.headers_mut());
    r
}

/// Checks the CSRF token of a POST's form.
fn check_csrf(ctx: &Ctx, body: &[u8]) -> Result<(), Fail> {
    if svc::csrf_ok(&ctx.secret, &auth::form_csrf(body)) {
        Ok(())
    } else {
        Err(Fail::Csrf)
    }
}

pub(crate) async fn not_found(headers: HeaderMap) -> Response {
    fail_page(lang_of(&headers), None, Fail::NotFound)
}

/// `GET /console/login/{secret}`: redeems a one-time link.
pub(crate) async fn login(
    State(c): St,
    Path(secret): Path<String>,
    headers: HeaderMap,
) -> Response {
    let lang = lang_of(&headers);
    match svc::redeem_link(&c.store, &secret).await {
        Ok(Some(opened)) => {
            let mut r = see_other("/console/");
            let max_age = (opened.session.expires - time::OffsetDateTime::now_utc())
                .whole_seconds()
                .max(0);
            if let Some(v) = auth::set_cookie(&opened.secret, max_age, c.secure_cookies) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(None) => fail_page(lang, None, Fail::BadLink),
        Err(e) => fail_page(lang, None, e.into()),
    }
}

/// `POST /console/logout`: ends the session.
pub(crate) async fn logout(State(c): St, headers: HeaderMap, body: Bytes) -> Response {
    let secure = c.secure_cookies;
    signed_in(c, &headers, |c, ctx| async move {
        let lang = ctx.lang;
        let chrome = ctx.chrome();
        let result = async {
            check_csrf(&ctx, &body)?;
            svc::logout(&c.store, &ctx.session, &ctx.secret).await?;
            let mut r = see_other("/console/");
            r.headers_mut()
                .insert(header::SET_COOKIE, auth::clear_cookie(secure));
            Ok(r)
        }
        .await;
        (lang, chrome, result)
    })
    .await
}

struct OrgRow {
    slug: String,
    name: String,
    users: i64,
    apps: i64,
    pending: i64,
    failed: i64,
    collisions: i64,
    oldest: String,
    /// Start and end (RFC 3339) of the current or next maintenance window.
    maintenance: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    lang: &'a str,
    t: &'a Texts,
    chrome: Option<Chrome>,
    orgs: Vec<OrgRow>,
}

/// `GET /console/`: the operators' overview; an organisation admin is sent
/// to their organisation's users.
pub(crate) async fn home(State(c): St, headers: HeaderMap) -> Response {
    signed_in(c, &headers, |c, ctx| async move {
        let (lang, chrome) = (ctx.lang, ctx.chrome());
        if let Some(org) = &ctx.session.org {
            return (
                lang,
                chrome,
                Ok(see_other(&format!("/console/o/{}/users", org.slug))),
            );
        }
        let result = svc::overview(&c.store, &ctx.session)
            .await
            .map_err(Fail::from)
            .map(|orgs| {
                let t = ctx.t();
                let orgs = orgs
                    .into_iter()
                    .map(|o| OrgRow {
                        oldest: o
                            .oldest_pending_secs
                            .map_or_else(|| t.none.clone(), |s| lang.age(s)),
                        slug: o.slug,
                        name: o.name,
                        users: o.users,
                        apps: o.apps,
                        pending: o.pending,
                        failed: o.failed,
                        collisions: o.collisions,
                        maintenance: o.next_maintenance,
                    })
                    .collect();
                render(
                    StatusCode::OK,
                    lang,
                    &OverviewPage {
                        lang: lang.tag(),
                        t,
                        chrome: ctx.chrome(),
                        orgs,
                    },
                )
            });
        (lang, chrome, result)
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    lang: &'a str,
    t: &'a Texts,
    chrome: Option<Chrome>,
    org: &'a str,
    org_name: &'a str,
    query: &'a str,
    users: Vec<store::UserEntry>,
    paged: bool,
    first_href: String,
    next_href: Option<String>,
}

fn users_href(org: &str, q: &str, after: Option<&str>) -> String {
    let mut params = vec![("q", q)];
    if let Some(a) = after {
        params.push(("after", a));
    }
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    format!("/console/o/{org}/users?{query}")
}

/// `GET /console/o/{org}/users?q=&after=`: users by name, keyset-paged.
pub(crate) async fn users(
    State(c): St,
    Path(org): Path<String>,
    Query(query): Query<UsersQuery>,
    headers: HeaderMap,
) -> Response {
    signed_in(c, &headers, |c, ctx| async move {
        let (lang, chrome) = (ctx.lang, ctx.chrome());
        let result = async {
            let org = svc::org_for(&c.store, &ctx.session, &org).await?;
            let page = svc::users(&c.store, &org, &query.q, query.after.as_deref()).await?;
            Ok::<_, Fail>(render(
                StatusCode::OK,
                lang,
                &UsersPage {
                    lang: lang.tag(),
                    t: ctx.t(),
                    chrome: ctx.chrome(),
                    org: &org.slug,
                    org_name: &org.name,
                    query: &query.q,
                    users: page.users,
                    paged: query.after.is_some(),
                    first_href: users_href(&org.slug, &query.q, None),
                    next_href: page
                        .next
                        .as_deref()
                        .map(|a| users_href(&org.slug, &query.q, Some(a))),
                },
            ))
        }
        .await;
        (lang, chrome, result)
    })
    .await
}

struct AppRow {
    app: String,
    kind: String,
    status: String,
    status_class: &'static str,
    app_id: Option<String>,
    last_attempt: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage<'a> {
    lang: &'a str,
    t: &'a Texts,
    chrome: Option<Chrome>,
    org: &'a str,
    id: &'a str,
    user_name: &'a str,
    display_name: Option<&'a str>,
    apps: Vec<AppRow>,
    can_retry: bool,
    retried: Option<u64>,
    csrf: String,
}

fn status_text(t: &Texts, s: LinkStatus) -> (&str, &'static str) {
    match s {
        LinkStatus::Never => (t.status_never.as_str(), "never"),
        LinkStatus::Pending => (t.status_pending.as_str(), "pending"),
        LinkStatus::Retrying => (t.status_retrying.as_str(), "retrying"),
        LinkStatus::Failed => (t.status_failed.as_str(), "failed"),
        LinkStatus::Ok => (t.status_ok.as_str(), "ok"),
        LinkStatus::Deprovisioned => (t.status_deprovisioned.as_str(), "deprovisioned"),
        LinkStatus::Collision => (t.status_collision.as_str(), "collision"),
    }
}

#[derive(Deserialize)]
pub(crate) struct UserQuery {
    #[serde(default)]
    retried: Option<u64>,
}

/// `GET /console/o/{org}/users/{id}`: a user's state in every app.
pub(crate) async fn user(
    State(c): St,
    Path((org, id)): Path<(String, String)>,
    Query(query): Query<UserQuery>,
    headers: HeaderMap,
) -> Response {
    signed_in(c, &headers, |c, ctx| async move {
        let (lang, chrome) = (ctx.lang, ctx.chrome());
        let result = async {
            let org = svc::org_for(&c.store, &ctx.session, &org).await?;
            let user = svc::user(&c.store, &org, &id).await?;
            let t = ctx.t();
            let apps: Vec<AppRow> = user
                .provisioning
                .apps
                .into_iter()
                .map(|a| {
                    let (status, class) = status_text(t, a.status);
                    AppRow {
                        app: a.app,
                        kind: a.kind.to_string(),
                        status: status.to_owned(),
                        status_class: class,
                        app_id: a.app_id,
                        last_attempt: a.last_attempt,
                        error: match a.status {
                            LinkStatus::Ok | LinkStatus::Deprovisioned => None,
                            _ => a.last_error,
                        },
                    }
                })
                .collect();
            let can_retry = apps
                .iter()
                .any(|a| matches!(a.status_class, "failed" | "collision"));
            Ok::<_, Fail>(render(
                StatusCode::OK,
                lang,
                &UserPage {
                    lang: lang.tag(),
                    t,
                    chrome: ctx.chrome(),
                    org: &org.slug,
                    id: &user.id,
                    user_name: &user.user_name,
                    display_name: user.display_name.as_deref(),
                    apps,
                    can_retry,
                    retried: query.retried,
                    csrf: svc::csrf_token(&ctx.secret),
                },
            ))
        }
        .await;
        (lang, chrome, result)
    })
    .await
}

/// `POST /console/o/{org}/users/{id}/retry`: queues the user's failed
/// deliveries again, then shows the user.
pub(crate) async fn retry(
    State(c): St,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    signed_in(c, &headers, |c, ctx| async move {
        let (lang, chrome) = (ctx.lang, ctx.chrome());
        let result = async {
            // The organisation first: another organisation's URL is a 404
            // whatever the form holds.
            let org = svc::org_for(&c.store, &ctx.session, &org).await?;
            check_csrf(&ctx, &body)?;
            let n = svc::retry_user(&c.store, &ctx.session, &org, &id).await?;
            if let Some(wake) = &c.outbox_wake {
                wake.notify_one();
            }
            Ok::<_, Fail>(see_other(&format!(
                "/console/o/{}/users/{}?retried={n}",
                org.slug, id
            )))
        }
        .await;
        (lang, chrome, result)
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    lang: &'a str,
    t: &'a Texts,
    chrome: Option<Chrome>,
    entries: Vec<svc::AuditView>,
    next: Option<i64>,
}

/// `GET /console/operator/audit?before=`: the audit log (operators only).
pub(crate) async fn audit(
    State(c): St,
    Query(query): Query<AuditQuery>,
    headers: HeaderMap,
) -> Response {
    signed_in(c, &headers, |c, ctx| async move {
        let (lang, chrome) = (ctx.lang, ctx.chrome());
        let result = async {
            let page = svc::audit_log(&c.store, &ctx.session, query.before).await?;
            Ok::<_, Fail>(render(
                StatusCode::OK,
                lang,
                &AuditPage {
                    lang: lang.tag(),
                    t: ctx.t(),
                    chrome: ctx.chrome(),
                    entries: page.entries,
                    next: page.next,
                },
            ))
        }
        .await;
        (lang, chrome, result)
    })
    .await
}
