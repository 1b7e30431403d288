//! `POST /o/{org}/events/keycloak`: the identity provider's event feed, for
//! activity metering. Authenticated by the organisation's webhook secret
//! (HMAC signature `X-Keycloak-Signature`, or the secret as Basic password or
//! bearer token), not by an API token.
//!
//! The body is verified before it is parsed, and parsed completely before
//! anything is recorded: a forged or malformed request stores nothing. Neither
//! the body nor anything from it (user id, name, address, client) is logged.

use super::SharedState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use meter::keycloak::{self, WebhookAuth};
use time::OffsetDateTime;

pub fn routes(max_body: usize) -> Router<SharedState> {
    Router::new()
        .route("/o/{org}/events/keycloak", post(keycloak_events))
        .layer(DefaultBodyLimit::max(max_body))
}

/// An error in the admin API's form (`{"error", "detail"}`).
fn refuse(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Response {
    super::admin::ApiError::new(status, code, detail).into_response()
}

async fn keycloak_events(
    State(st): State<SharedState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = |o: &str| st.metrics.meter_signal(crate::metering::KEYCLOAK, o);
    // An unknown organisation and a wrong signature answer alike.
    let unauthorized = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid webhook signature or secret is required",
        )
    };
    let now = OffsetDateTime::now_utc();
    let label = st.metering.current_label(now).unwrap_or_default();
    // The organisation, its secret and its current period: one round trip,
    // or none while an open period's context is cached.
    let ctx = match st.webhook_context(&slug, &label).await {
        Ok(Some(ctx)) => ctx,
        Ok(None) => {
            outcome("unauthorized");
            return unauthorized();
        }
        Err(e) => return internal(e),
    };
    let Some(secret) = ctx.secret.as_deref() else {
        outcome("unauthorized");
        return unauthorized();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = WebhookAuth {
        signature: header("x-keycloak-signature"),
        authorization: header("authorization"),
    };
    if keycloak::verify(&auth, &body, secret).is_err() {
        outcome("unauthorized");
        return unauthorized();
    }
    let activities = match keycloak::parse(&body) {
        Ok(a) => a,
        Err(e) => {
            outcome("malformed");
            return refuse(StatusCode::BAD_REQUEST, "bad_request", e.to_string());
        }
    };
    let signals: Vec<crate::metering::Signal> = activities
        .into_iter()
        .map(|a| crate::metering::Signal {
            subject: a.subject,
            username: a.username,
            at_ms: a.time_ms,
            resolved: false,
        })
        .collect();
    match st
        .metering
        .ingest_with(
            ctx.org_id,
            crate::metering::KEYCLOAK,
            &signals,
            now,
            Some((label, ctx.period.clone())),
        )
        .await
    {
        Ok(got) => {
            st.metrics.meter_ingested(crate::metering::KEYCLOAK, &got);
            Json(got).into_response()
        }
        Err(e) => {
            tracing::error!(org = %slug, error = %e, "recording activity failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "activity could not be recorded; retry later",
            )
        }
    }
}

fn internal(e: store::StoreError) -> Response {
    tracing::error!(error = %e, "webhook: store error");
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the database failed; retry later",
    )
}
