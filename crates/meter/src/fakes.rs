//! An in-process fake of Dokos' REST endpoint for Sales Invoices.
//!
//! This is a fake written from the Frappe REST API documentation (and ERPNext's
//! Sales Invoice doctype), because Dokos cannot run here. It serves
//! `POST /api/resource/{doctype}` like Frappe does for "Sales Invoice":
//! - `Authorization: token key:secret` is checked; a wrong or malformed token is
//!   answered 401 `AuthenticationError`, a request without one (a Guest) 403
//!   `PermissionError`, as Frappe does;
//! - another doctype is answered 404 `DoesNotExistError`;
//! - the document is validated: `customer` and `items` are mandatory (417
//!   `MandatoryError`), the customer and each item code must exist (417
//!   `LinkValidationError`, "Could not find Customer: X"), each tax row needs its
//!   mandatory fields;
//! - a valid document is named from the series `ACC-SINV-.YYYY.-` (the posting
//!   date's year), its totals are computed (item amounts rounded to cents, discount
//!   on the net total, taxes "On Net Total"), and it is answered 200
//!   `{"data": {...}}`.
//!
//! It also serves `GET /api/resource/Sales Invoice` (`get_list`): `filters` (a JSON
//! list of `[field, operator, value]` or `[doctype, field, operator, value]`,
//! operators `=`, `!=` and `like` with `%` wildcards), `fields` (a JSON list,
//! `["name"]` by default) and `limit_page_length` (20 by default), answered
//! `{"data": [...]}` oldest first.
//!
//! Errors have Frappe's body: `exception`, `exc_type` and `_server_messages` (a JSON
//! string holding a list of JSON strings, each an object with `message`). It can be
//! told to answer 503 to everything, as a site in maintenance or behind a failing
//! proxy does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::dokos::DokosConfig;
use crate::pricing::round_cents;

struct Inner {
    api_key: String,
    api_secret: String,
    customers: Vec<String>,
    items: Vec<String>,
    invoices: Vec<Value>,
    unavailable: bool,
    requests: usize,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake Dokos on `127.0.0.1`; stopped when dropped.
pub struct FakeDokos {
    addr: SocketAddr,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDokos {
    /// Starts a fake that accepts `token api_key:api_secret` and knows the given
    /// customers and item codes.
    pub async fn start(
        api_key: &str,
        api_secret: &str,
        customers: &[&str],
        items: &[&str],
    ) -> FakeDokos {
        let inner = Arc::new(Mutex::new(Inner {
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
            customers: customers.iter().map(|c| (*c).to_owned()).collect(),
            items: items.iter().map(|i| (*i).to_owned()).collect(),
            invoices: Vec::new(),
            unavailable: false,
            requests: 0,
        }));
        let app = Router::new()
            .route("/api/resource/{doctype}", post(insert).get(list))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Dokos");
        let addr = listener.local_addr().expect("the fake Dokos' address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDokos { addr, inner, task }
    }

    /// The site's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client configuration for this fake with its credentials.
    pub fn config(&self, item_code: &str) -> DokosConfig {
        let inner = self.lock();
        DokosConfig {
            url: self.url(),
            api_key: inner.api_key.clone(),
            api_secret: inner.api_secret.clone(),
            item_code: item_code.to_owned(),
            company: None,
        }
    }

    /// The invoices created, as answered (with name and totals), oldest first.
    pub fn invoices(&self) -> Vec<Value> {
        self.lock().invoices.clone()
    }

    /// How many requests reached the fake, whatever their answer.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// While set, every request is answered 503.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }

    pub fn add_customer(&self, name: &str) {
        self.lock().customers.push(name.to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for FakeDokos {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Frappe error answer.
fn frappe_error(status: StatusCode, exc_type: &str, message: &str) -> Response {
    let entry =
        json!({"message": message, "title": "Message", "indicator": "red", "raise_exception": 1});
    let server_messages = serde_json::to_string(&vec![entry.to_string()]).unwrap_or_default();
    let body = json!({
        "exception": format!("frappe.exceptions.{exc_type}: {message}"),
        "exc_type": exc_type,
        "_server_messages": server_messages,
    });
    (status, Json(body)).into_response()
}

/// Frappe's `like`: `%` matches any text, the rest is compared without case.
fn like(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let text = text.to_lowercase();
    let parts: Vec<&str> = pattern.split('%').collect();
    let mut rest = text.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

fn matches(doc: &Value, filter: &Value) -> Option<bool> {
    let f = filter.as_array()?;
    let (field, op, value) = match f.len() {
        3 => (&f[0], &f[1], &f[2]),
        4 => (&f[1], &f[2], &f[3]),
        _ => return None,
    };
    let have = doc.get(field.as_str()?).cloned().unwrap_or(Value::Null);
    let same = |a: &Value, b: &Value| match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    };
    match op.as_str()? {
        "=" => Some(same(&have, value)),
        "!=" => Some(!same(&have, value)),
        "like" => Some(like(value.as_str()?, have.as_str().unwrap_or(""))),
        _ => None,
    }
}

async fn list(
    State(shared): State<Shared>,
    Path(doctype): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut inner = shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(refused) = admit(&mut inner, &headers, &doctype) {
        return refused;
    }
    let parse = |key: &str, default: Value| match query.get(key) {
        Some(text) => serde_json::from_str::<Value>(text).ok(),
        None => Some(default),
    };
    let (Some(Value::Array(filters)), Some(Value::Array(fields))) = (
        parse("filters", json!([])),
        parse("fields", json!(["name"])),
    ) else {
        return frappe_error(
            StatusCode::EXPECTATION_FAILED,
            "ValidationError",
            "Invalid filters or fields",
        );
    };
    let limit = query
        .get("limit_page_length")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20);
    let mut out = Vec::new();
    for doc in &inner.invoices {
        let mut keep = true;
        for filter in &filters {
            match matches(doc, filter) {
                Some(m) => keep &= m,
                None => {
                    return frappe_error(
                        StatusCode::EXPECTATION_FAILED,
                        "ValidationError",
                        "Invalid filter",
                    )
                }
            }
        }
        if !keep {
            continue;
        }
        let picked: Map<String, Value> = fields
            .iter()
            .filter_map(Value::as_str)
            .map(|f| (f.to_owned(), doc.get(f).cloned().unwrap_or(Value::Null)))
            .collect();
        out.push(Value::Object(picked));
        if out.len() == limit {
            break;
        }
    }
    (StatusCode::OK, Json(json!({ "data": out }))).into_response()
}

/// Counts the request, then refuses it as Frappe would when the site is
/// unavailable, the token is missing or wrong, or the doctype is not Sales
/// Invoice.
fn admit(inner: &mut Inner, headers: &HeaderMap, doctype: &str) -> Option<Response> {
    inner.requests += 1;
    if inner.unavailable {
        return Some((StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response());
    }
    let Some(authorization) = headers.get("authorization") else {
        return Some(frappe_error(
            StatusCode::FORBIDDEN,
            "PermissionError",
            "Not permitted",
        ));
    };
    let token = authorization
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("token"))
        .and_then(|(_, token)| token.split_once(':'));
    match token {
        Some((key, secret)) if key == inner.api_key && secret == inner.api_secret => {}
        _ => {
            return Some(frappe_error(
                StatusCode::UNAUTHORIZED,
                "AuthenticationError",
                "Invalid API Key or Secret",
            ))
        }
    }
    if doctype != "Sales Invoice" {
        return Some(frappe_error(
            StatusCode::NOT_FOUND,
            "DoesNotExistError",
            &format!("DocType {doctype} not found"),
        ));
    }
    None
}

async fn insert(
    State(shared): State<Shared>,
    Path(doctype): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(refused) = admit(&mut inner, &headers, &doctype) {
        return refused;
    }
    let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(&body) else {
        return frappe_error(
            StatusCode::EXPECTATION_FAILED,
            "ValidationError",
            "Invalid request body",
        );
    };

    let customer = doc
        .get("customer")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if customer.is_empty() {
        return frappe_error(
            StatusCode::EXPECTATION_FAILED,
            "MandatoryError",
            "Error: Value missing for Sales Invoice: Customer",
        );
    }
    if !inner.customers.contains(&customer) {
        return frappe_error(
            StatusCode::EXPECTATION_FAILED,
            "LinkValidationError",
            &format!("Could not find Customer: {customer}"),
        );
    }

    let items = doc
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        return frappe_error(
            StatusCode::EXPECTATION_FAILED,
            "MandatoryError",
            "Error: Value missing for Sales Invoice: Items",
        );
    }
    let mut total = Decimal::ZERO;
    for (index, item) in items.iter().enumerate() {
        let row = index + 1;
        let code = item.get("item_code").and_then(Value::as_str).unwrap_or("");
        if !inner.items.iter().any(|known| known == code) {
            return frappe_error(
                StatusCode::EXPECTATION_FAILED,
                "LinkValidationError",
                &format!("Could not find Row #{row}: Item Code: {code}"),
            );
        }
        let (Some(qty), Some(rate)) = (decimal(item.get("qty")), decimal(item.get("rate"))) else {
            return frappe_error(
                StatusCode::EXPECTATION_FAILED,
                "ValidationError",
                &format!("Row #{row}: Qty and Rate must be numbers"),
            );
        };
        total += round_cents(qty * rate);
    }

    let discount = if doc.get("apply_discount_on").and_then(Value::as_str) == Some("Net Total") {
        decimal(doc.get("discount_amount")).unwrap_or_default()
    } else {
        Decimal::ZERO
    };
    let net_total = total - discount;
    let mut taxes_total = Decimal::ZERO;
    if let Some(taxes) = doc.get("taxes").and_then(Value::as_array) {
        for (index, tax) in taxes.iter().enumerate() {
            for field in ["charge_type", "account_head", "description"] {
                if tax
                    .get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return frappe_error(
                        StatusCode::EXPECTATION_FAILED,
                        "MandatoryError",
                        &format!(
                            "Error: Value missing for Sales Taxes and Charges row #{}: {field}",
                            index + 1
                        ),
                    );
                }
            }
            if tax.get("charge_type").and_then(Value::as_str) == Some("On Net Total") {
                let rate = decimal(tax.get("rate")).unwrap_or_default();
                taxes_total += round_cents(net_total * rate / Decimal::ONE_HUNDRED);
            }
        }
    }

    let year = doc
        .get("posting_date")
        .and_then(Value::as_str)
        .and_then(|date| date.get(..4))
        .unwrap_or("2026")
        .to_owned();
    let name = format!("ACC-SINV-{year}-{:05}", inner.invoices.len() + 1);
    let money = |d: Decimal| json!(d.to_f64().unwrap_or(0.0));
    let docstatus = doc.get("docstatus").cloned().unwrap_or(json!(0));
    let mut saved = Map::new();
    saved.insert("name".into(), json!(name));
    saved.insert("doctype".into(), json!("Sales Invoice"));
    saved.insert("docstatus".into(), docstatus);
    saved.insert("status".into(), json!("Draft"));
    saved.insert("total".into(), money(total));
    saved.insert("net_total".into(), money(net_total));
    saved.insert("total_taxes_and_charges".into(), money(taxes_total));
    saved.insert("grand_total".into(), money(net_total + taxes_total));
    for (key, value) in std::mem::take(&mut doc) {
        saved.entry(key).or_insert(value);
    }
    let saved = Value::Object(saved);
    inner.invoices.push(saved.clone());
    (StatusCode::OK, Json(json!({ "data": saved }))).into_response()
}

fn decimal(value: Option<&Value>) -> Option<Decimal> {
    match value? {
        Value::Number(n) => n
            .as_i64()
            .map(Decimal::from)
            .or_else(|| n.as_f64().and_then(Decimal::from_f64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
