//! Draft invoices in Dokos (a Frappe/ERPNext distribution) through Frappe's REST API.
//!
//! `POST {url}/api/resource/Sales%20Invoice` with `Authorization: token
//! {api_key}:{api_secret}` and the Sales Invoice document as JSON creates it; the
//! answer is `{"data": {...the saved document, "name": ...}}`. With `docstatus` 0
//! the invoice stays a draft for a person to check and submit in Dokos.
//!
//! Creating is made idempotent by a reference ([`reference`]: the organisation
//! and the period) written in the invoice's remarks: [`ensure_draft_invoice`]
//! first looks for an invoice that is not cancelled with that reference
//! (`GET {url}/api/resource/Sales%20Invoice?filters=...`) and creates one only
//! when there is none, so an export interrupted between the creation and its
//! record in Liaison's database never creates the same invoice twice.
//!
//! A statement becomes one item line per price bracket (quantity = accounts, rate =
//! the bracket's rate), then, so that the invoice's net total equals the
//! statement's net: a discount on the net total for a solidarity coefficient below
//! 1 (Sales Invoice's `apply_discount_on` and `discount_amount`), a surcharge line
//! for a coefficient above 1, and a top-up line when the minimum applies. VAT is a
//! tax row "On Net Total" when the draft is given an account head with
//! [`InvoiceDraft::with_vat`]; without one, Dokos applies the taxes its own
//! configuration gives the customer.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::statement::{Statement, METHOD};
use outbound::{header, HttpError, Limits, Method, RequestBuilder, Url};
use std::time::Duration;

/// Largest answer read from Dokos (the bound of [`client`]).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Days between an invoice's posting date and its due date.
pub const DUE_DAYS: i64 = 30;

/// Where and as whom to create invoices.
#[derive(Clone, Deserialize)]
pub struct DokosConfig {
    /// Base URL of the Dokos site, e.g. `https://dokos.example.org`.
    pub url: String,
    pub api_key: String,
    pub api_secret: String,
    /// The Item invoiced for active accounts.
    pub item_code: String,
    /// The invoicing company, when the site has several.
    #[serde(default)]
    pub company: Option<String>,
}

impl std::fmt::Debug for DokosConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DokosConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .field("item_code", &self.item_code)
            .field("company", &self.company)
            .finish()
    }
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceItem {
    pub item_code: String,
    pub description: String,
    pub qty: u64,
    pub rate: Decimal,
}

/// One row of Sales Taxes and Charges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRow {
    /// Frappe's charge type; `On Net Total` for VAT.
    pub charge_type: String,
    /// The ledger account the tax is booked to, e.g. `4457 - TVA collectée - CO`.
    pub account_head: String,
    pub description: String,
    /// Percent (20 for 20 %).
    pub rate: Decimal,
}

/// A Sales Invoice to create as a draft. Dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDraft {
    pub customer: String,
    /// Taken from [`DokosConfig::company`] when `None`.
    pub company: Option<String>,
    pub posting_date: String,
    pub due_date: String,
    pub currency: String,
    pub items: Vec<InvoiceItem>,
    /// Discount on the net total, before taxes.
    pub discount_amount: Option<Decimal>,
    pub taxes: Option<Vec<TaxRow>>,
    pub remarks: Option<String>,
    /// What the invoice is for, unique to it ([`reference`]): appended to the
    /// remarks as `Reference: ...`, and looked up before creating.
    #[serde(default)]
    pub reference: Option<String>,
}

/// The reference of the invoice of an organisation's period:
/// `liaison:{org}:{period}`.
pub fn reference(org: &str, period: &str) -> String {
    format!("liaison:{org}:{period}")
}

/// The line of the remarks that carries a reference.
fn reference_line(reference: &str) -> String {
    format!("Reference: {reference}")
}

impl InvoiceDraft {
    /// Adds a VAT row on the net total booked to `account_head`, at `vat_rate`
    /// (a fraction, 0.20 for 20 %). Nothing is added for a zero rate.
    pub fn with_vat(mut self, account_head: &str, vat_rate: Decimal) -> InvoiceDraft {
        if vat_rate > Decimal::ZERO {
            let percent = (vat_rate * Decimal::ONE_HUNDRED).normalize();
            self.taxes.get_or_insert_with(Vec::new).push(TaxRow {
                charge_type: "On Net Total".to_owned(),
                account_head: account_head.to_owned(),
                description: format!("VAT {percent} %"),
                rate: percent,
            });
        }
        self
    }

    /// Gives the draft its [`reference`].
    pub fn with_reference(mut self, reference: String) -> InvoiceDraft {
        self.reference = Some(reference);
        self
    }

    /// The Sales Invoice document sent to Dokos.
    pub fn to_doc(&self, cfg: &DokosConfig) -> Value {
        let mut doc = Map::new();
        doc.insert("docstatus".into(), json!(0));
        doc.insert("customer".into(), json!(self.customer));
        if let Some(company) = self.company.as_ref().or(cfg.company.as_ref()) {
            doc.insert("company".into(), json!(company));
        }
        // Without set_posting_time, ERPNext replaces posting_date with today.
        doc.insert("set_posting_time".into(), json!(1));
        doc.insert("posting_date".into(), json!(self.posting_date));
        doc.insert("due_date".into(), json!(self.due_date));
        doc.insert("currency".into(), json!(self.currency));
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|item| {
                json!({
                    "item_code": item.item_code,
                    "description": item.description,
                    "qty": item.qty,
                    "rate": number(item.rate),
                })
            })
            .collect();
        doc.insert("items".into(), Value::Array(items));
        if let Some(discount) = self.discount_amount {
            doc.insert("apply_discount_on".into(), json!("Net Total"));
            doc.insert("discount_amount".into(), number(discount));
        }
        if let Some(taxes) = self.taxes.as_ref().filter(|t| !t.is_empty()) {
            let rows: Vec<Value> = taxes
                .iter()
                .map(|tax| {
                    json!({
                        "charge_type": tax.charge_type,
                        "account_head": tax.account_head,
                        "description": tax.description,
                        "rate": number(tax.rate),
                    })
                })
                .collect();
            doc.insert("taxes".into(), Value::Array(rows));
        }
        let remarks = match (&self.remarks, &self.reference) {
            (Some(r), Some(key)) => Some(format!("{r}\n{}", reference_line(key))),
            (Some(r), None) => Some(r.clone()),
            (None, Some(key)) => Some(reference_line(key)),
            (None, None) => None,
        };
        if let Some(remarks) = remarks {
            doc.insert("remarks".into(), json!(remarks));
        }
        Value::Object(doc)
    }
}

/// Frappe's currency and percent fields are floats in JSON.
fn number(value: Decimal) -> Value {
    value.to_f64().map_or(Value::Null, |f| json!(f))
}

/// The draft invoice of a statement, for `customer` (the Customer's name in Dokos),
/// dated the first day after the period and due [`DUE_DAYS`] later. Its lines
/// add up to the statement's net (see the module's documentation); it has no
/// line when the net is zero.
pub fn draft_from_statement(st: &Statement, customer: &str, item_code: &str) -> InvoiceDraft {
    let c = &st.contribution;
    let item = |description: String, qty: u64, rate: Decimal| InvoiceItem {
        item_code: item_code.to_owned(),
        description,
        qty,
        rate,
    };
    let mut items: Vec<InvoiceItem> = c
        .lines
        .iter()
        .filter(|line| line.accounts > 0)
        .map(|line| {
            let range = match line.to {
                Some(to) => format!("{}–{}", line.from, to),
                None => format!("{} and beyond", line.from),
            };
            item(
                format!("Active accounts {range}, period {}", st.period),
                line.accounts,
                line.rate,
            )
        })
        .collect();

    let mut discount_amount = None;
    let adjustment = c.after_coefficient - c.subtotal;
    let category = c
        .category_label
        .as_deref()
        .or(c.category.as_deref())
        .unwrap_or("");
    if adjustment < Decimal::ZERO {
        discount_amount = Some(-adjustment);
    } else if adjustment > Decimal::ZERO {
        items.push(item(
            format!(
                "Coefficient {} ({category}), period {}",
                c.coefficient, st.period
            ),
            1,
            adjustment,
        ));
    }
    if c.minimum_applied && c.net > c.after_coefficient {
        items.push(item(
            format!("Minimum contribution, period {}", st.period),
            1,
            c.net - c.after_coefficient,
        ));
    }

    let posting_date = st.period_end.get(..10).unwrap_or(&st.period_end).to_owned();
    let due_date = time::Date::parse(
        &posting_date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
    .and_then(|date| date.checked_add(time::Duration::days(DUE_DAYS)))
    .map_or_else(|| posting_date.clone(), |date| date.to_string());
    InvoiceDraft {
        customer: customer.to_owned(),
        company: None,
        posting_date,
        due_date,
        currency: c.currency.clone(),
        items,
        discount_amount,
        taxes: None,
        reference: None,
        remarks: Some(format!(
            "Contribution of {} for {}: {} active accounts. {METHOD}",
            st.org_name, st.period, st.active_accounts
        )),
    }
}

/// Why an invoice was not created. Messages never contain the API secret.
#[derive(Debug, thiserror::Error)]
pub enum DokosError {
    #[error("nothing to invoice: the draft has no line")]
    NothingToInvoice,
    #[error("Dokos refused the API key or secret (HTTP 401): {message}")]
    Unauthorized { message: String },
    #[error("the Dokos API user may not create Sales Invoices (HTTP 403): {message}")]
    Forbidden { message: String },
    #[error("Dokos refused the invoice ({exc_type}): {message}")]
    Validation { exc_type: String, message: String },
    #[error("not found in Dokos (HTTP 404): {message}")]
    NotFound { message: String },
    #[error("Dokos is unavailable (HTTP {status})")]
    Unavailable { status: u16 },
    #[error("unexpected answer from Dokos (HTTP {status}): {message}")]
    Unexpected { status: u16, message: String },
    #[error("the Dokos URL is not valid: {0}")]
    Url(String),
    /// Unreachable, a redirect (not followed), or an answer beyond the bound.
    #[error("Dokos: {0}")]
    Http(#[from] HttpError),
}

impl DokosError {
    /// Whether trying again later may succeed (Dokos down or unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            DokosError::Unavailable { .. } => true,
            DokosError::Http(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// The client for Dokos: no redirects, connect and whole-request timeouts,
/// answers read up to [`MAX_RESPONSE_BYTES`].
pub fn client() -> Result<outbound::Client, DokosError> {
    Ok(outbound::Client::new(Limits {
        connect_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(30),
        max_body: MAX_RESPONSE_BYTES,
        ..Limits::default()
    })?)
}

/// The Sales Invoice resource under the site's URL.
fn invoices_url(cfg: &DokosConfig) -> Result<Url, DokosError> {
    Url::parse(&format!(
        "{}/api/resource/Sales%20Invoice",
        cfg.url.trim_end_matches('/')
    ))
    .map_err(|e| DokosError::Url(e.to_string()))
}

/// A request to Dokos with its token, asking for JSON.
fn request(
    client: &outbound::Client,
    cfg: &DokosConfig,
    method: Method,
    url: Url,
) -> RequestBuilder {
    client
        .request(method, url)
        .header(
            header::AUTHORIZATION,
            format!("token {}:{}", cfg.api_key, cfg.api_secret),
        )
        .header(header::ACCEPT, "application/json")
}

/// The draft's invoice in Dokos: the one found with the draft's reference,
/// if any (`false`), else a new one ([`create_draft_invoice`], `true`).
pub async fn ensure_draft_invoice(
    client: &outbound::Client,
    cfg: &DokosConfig,
    draft: &InvoiceDraft,
) -> Result<(String, bool), DokosError> {
    if let Some(key) = &draft.reference {
        if let Some(name) = find_invoice(client, cfg, key).await? {
            return Ok((name, false));
        }
    }
    Ok((create_draft_invoice(client, cfg, draft).await?, true))
}

/// The name of a Sales Invoice that is not cancelled and carries `reference`
/// in its remarks, if any.
pub async fn find_invoice(
    client: &outbound::Client,
    cfg: &DokosConfig,
    reference: &str,
) -> Result<Option<String>, DokosError> {
    let url = invoices_url(cfg)?;
    let line = reference_line(reference);
    let filters = json!([
        ["remarks", "like", format!("%{line}%")],
        ["docstatus", "!=", 2],
    ]);
    let req = request(client, cfg, Method::GET, url).query(&[
        ("filters", filters.to_string()),
        ("fields", json!(["name", "remarks"]).to_string()),
        ("limit_page_length", "20".to_owned()),
    ]);
    let answer = read_answer(client.send(req).await?)?;
    let list = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| DokosError::Unexpected {
            status: 200,
            message: "no data list in the answer".to_owned(),
        })?;
    // `like` is a pattern: keep only a remarks line equal to the reference.
    Ok(list
        .iter()
        .filter(|doc| {
            doc.get("remarks")
                .and_then(Value::as_str)
                .is_some_and(|r| r.lines().any(|l| l.trim() == line))
        })
        .find_map(|doc| doc.get("name").and_then(Value::as_str))
        .map(str::to_owned))
}

/// Creates `draft` as a draft Sales Invoice and returns its name in Dokos
/// (e.g. `ACC-SINV-2026-00001`). See [`ensure_draft_invoice`] to create it
/// only once.
pub async fn create_draft_invoice(
    client: &outbound::Client,
    cfg: &DokosConfig,
    draft: &InvoiceDraft,
) -> Result<String, DokosError> {
    if draft.items.is_empty() {
        return Err(DokosError::NothingToInvoice);
    }
    let url = invoices_url(cfg)?;
    let req = request(client, cfg, Method::POST, url).json(&draft.to_doc(cfg));
    let answer = read_answer(client.send(req).await?)?;
    answer
        .pointer("/data/name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| DokosError::Unexpected {
            status: 200,
            message: "no data.name in the answer".to_owned(),
        })
}

/// An answer (read within the client's bound): its JSON on success, the
/// error it says otherwise.
fn read_answer(response: outbound::Response) -> Result<Value, DokosError> {
    let status = response.status.as_u16();
    let json: Option<Value> = response.json();

    if (200..300).contains(&status) {
        return json.ok_or_else(|| DokosError::Unexpected {
            status,
            message: "the answer is not JSON".to_owned(),
        });
    }
    let message = json.as_ref().map(frappe_message).unwrap_or_default();
    let exc_type = json
        .as_ref()
        .and_then(|v| v.get("exc_type"))
        .and_then(Value::as_str)
        .map(|s| clean(s, 100))
        .unwrap_or_default();
    Err(match status {
        401 => DokosError::Unauthorized { message },
        403 => DokosError::Forbidden { message },
        404 => DokosError::NotFound { message },
        409 | 417 => DokosError::Validation {
            exc_type: if exc_type.is_empty() {
                "ValidationError".to_owned()
            } else {
                exc_type
            },
            message,
        },
        502..=504 => DokosError::Unavailable { status },
        _ => DokosError::Unexpected { status, message },
    })
}

/// The human message of a Frappe error answer: the `message` of each entry of
/// `_server_messages` (a JSON string holding a list of JSON strings), else
/// `exception`, else `message`; tags removed and length bounded.
fn frappe_message(answer: &Value) -> String {
    let from_server_messages = answer
        .get("_server_messages")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
        .map(|messages| {
            messages
                .iter()
                .map(|m| match serde_json::from_str::<Value>(m) {
                    Ok(Value::Object(o)) => o
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    _ => m.clone(),
                })
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|m| !m.is_empty());
    let text = from_server_messages
        .or_else(|| {
            answer
                .get("exception")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| {
            answer
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    clean(&text, 500)
}

/// Drops HTML tags, collapses whitespace and keeps at most `max` characters.
fn clean(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in text.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if c.is_whitespace() => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    let out = out.trim_end();
    match out.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::period::{Period, PeriodKind};
    use crate::pricing::Pricing;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn statement(active: u64, category: &str) -> Statement {
        let period = Period::parse(PeriodKind::Month, "2026-11").unwrap();
        let mut pricing = Pricing::example();
        pricing.categories.insert(
            "bank".into(),
            crate::pricing::Category {
                coefficient: d("1.5"),
                label: None,
            },
        );
        let contribution = pricing.contribution(active, Some(category)).unwrap();
        Statement::new(
            "ecole",
            "École",
            &period,
            BTreeMap::new(),
            true,
            contribution,
        )
    }

    /// What Frappe computes: item amounts, less the discount, is the net total.
    fn net_of(draft: &InvoiceDraft) -> Decimal {
        let items: Decimal = draft
            .items
            .iter()
            .map(|i| Decimal::from(i.qty) * i.rate)
            .sum();
        items - draft.discount_amount.unwrap_or_default()
    }

    #[test]
    fn drafts_add_up_to_the_net_in_every_case() {
        for (active, category) in [
            (300, "association"),
            (60, "school"),
            (15, "solidarity"),
            (0, "association"),
            (100, "bank"),
        ] {
            let st = statement(active, category);
            let draft = draft_from_statement(&st, "École Jean Jaurès", "CONTRIB");
            assert_eq!(net_of(&draft), st.contribution.net, "{active} {category}");
            assert!(draft
                .items
                .iter()
                .all(|i| i.item_code == "CONTRIB" && i.rate >= Decimal::ZERO));
        }
    }

    #[test]
    fn a_draft_has_bracket_lines_then_adjustments() {
        let draft = draft_from_statement(&statement(60, "school"), "École", "CONTRIB");
        assert_eq!(draft.posting_date, "2026-12-01");
        assert_eq!(draft.due_date, "2026-12-31");
        assert_eq!(draft.currency, "EUR");
        let lines: Vec<_> = draft.items.iter().map(|i| (i.qty, i.rate)).collect();
        assert_eq!(lines, vec![(50, d("1.00")), (10, d("0.80"))]);
        assert_eq!(
            draft.items[1].description,
            "Active accounts 51–250, period 2026-11"
        );
        // 58.00 × 0.8 = 46.40: a discount of 11.60 on the net total.
        assert_eq!(draft.discount_amount, Some(d("11.60")));
        assert_eq!(draft.taxes, None);

        let draft = draft_from_statement(&statement(0, "association"), "École", "CONTRIB");
        assert_eq!(draft.items.len(), 1);
        assert_eq!((draft.items[0].qty, draft.items[0].rate), (1, d("10.00")));
        assert_eq!(
            draft.items[0].description,
            "Minimum contribution, period 2026-11"
        );
    }

    #[test]
    fn the_document_is_a_minimal_draft_sales_invoice() {
        let cfg = DokosConfig {
            url: "https://dokos.example.org/".into(),
            api_key: "k".into(),
            api_secret: "s".into(),
            item_code: "CONTRIB".into(),
            company: Some("Coop".into()),
        };
        let draft = draft_from_statement(&statement(60, "school"), "École", "CONTRIB")
            .with_vat("4457 - TVA - C", d("0.20"));
        let doc = draft.to_doc(&cfg);
        assert_eq!(doc["docstatus"], 0);
        assert_eq!(doc["customer"], "École");
        assert_eq!(doc["company"], "Coop");
        assert_eq!(doc["set_posting_time"], 1);
        assert_eq!(doc["posting_date"], "2026-12-01");
        assert_eq!(doc["items"][0]["qty"], 50);
        assert_eq!(doc["items"][0]["rate"], 1.0);
        assert_eq!(doc["apply_discount_on"], "Net Total");
        assert_eq!(doc["discount_amount"], 11.6);
        assert_eq!(
            doc["taxes"],
            json!([{"charge_type": "On Net Total", "account_head": "4457 - TVA - C", "description": "VAT 20 %", "rate": 20.0}])
        );
        assert!(doc.get("doctype").is_none());
        let zero = draft_from_statement(&statement(60, "school"), "École", "CONTRIB")
            .with_vat("x", Decimal::ZERO);
        assert_eq!(zero.taxes, None);
    }

    #[test]
    fn the_secret_never_prints() {
        let cfg = DokosConfig {
            url: "u".into(),
            api_key: "key".into(),
            api_secret: "very-secret".into(),
            item_code: "i".into(),
            company: None,
        };
        assert!(!format!("{cfg:?}").contains("very-secret"));
    }

    #[test]
    fn frappe_errors_read_their_server_messages() {
        let inner = json!({"message": "Could not find Customer: <a href=\"/app/customer/X\">X</a>", "indicator": "red"}).to_string();
        let answer = json!({
            "exception": "frappe.exceptions.LinkValidationError: Could not find Customer: X",
            "exc_type": "LinkValidationError",
            "_server_messages": serde_json::to_string(&vec![inner]).unwrap(),
        });
        assert_eq!(frappe_message(&answer), "Could not find Customer: X");
        assert_eq!(
            frappe_message(&json!({"exception": "frappe.exceptions.X: y"})),
            "frappe.exceptions.X: y"
        );
        assert_eq!(frappe_message(&json!({})), "");
        assert_eq!(clean(&"é".repeat(600), 500).chars().count(), 501);
    }
}
