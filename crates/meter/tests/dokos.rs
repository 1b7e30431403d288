//! The Dokos client against the fake Dokos.

use std::collections::BTreeMap;

use meter::dokos::{create_draft_invoice, draft_from_statement, DokosError, InvoiceDraft};
use meter::fakes::FakeDokos;
use meter::period::{Period, PeriodKind};
use meter::pricing::Pricing;
use meter::statement::Statement;
use rust_decimal::prelude::ToPrimitive;

const CUSTOMER: &str = "École Jean Jaurès";
const ITEM: &str = "CONTRIB-COMPTES";

fn statement(active: u64, category: &str) -> Statement {
    let period = Period::parse(PeriodKind::Month, "2026-11").unwrap();
    let contribution = Pricing::example()
        .contribution(active, Some(category))
        .unwrap();
    let per_app = BTreeMap::from([("nextcloud".to_owned(), active)]);
    Statement::new(
        "ecole-jaures",
        CUSTOMER,
        &period,
        per_app,
        true,
        contribution,
    )
}

async fn fake() -> FakeDokos {
    FakeDokos::start("api-key", "api-secret", &[CUSTOMER], &[ITEM]).await
}

fn vat_draft(st: &Statement) -> InvoiceDraft {
    draft_from_statement(st, CUSTOMER, ITEM)
        .with_vat("4457 - TVA collectée - C", st.contribution.vat_rate)
}

#[tokio::test]
async fn a_statement_becomes_a_draft_invoice_with_the_same_totals() {
    let dokos = fake().await;
    let mut cfg = dokos.config(ITEM);
    cfg.company = Some("Coop Hébergement".into());
    let client = meter::dokos::client().unwrap();

    let st = statement(60, "school");
    let name = create_draft_invoice(&client, &cfg, &vat_draft(&st))
        .await
        .unwrap();
    assert_eq!(name, "ACC-SINV-2026-00001");
    let second = create_draft_invoice(&client, &cfg, &vat_draft(&statement(300, "association")))
        .await
        .unwrap();
    assert_eq!(second, "ACC-SINV-2026-00002");

    let invoices = dokos.invoices();
    assert_eq!(invoices.len(), 2);
    let doc = &invoices[0];
    assert_eq!(doc["name"], "ACC-SINV-2026-00001");
    assert_eq!(doc["docstatus"], 0);
    assert_eq!(doc["customer"], CUSTOMER);
    assert_eq!(doc["company"], "Coop Hébergement");
    assert_eq!(doc["posting_date"], "2026-12-01");
    assert_eq!(doc["due_date"], "2026-12-31");
    assert_eq!(doc["currency"], "EUR");
    assert_eq!(doc["items"].as_array().unwrap().len(), 2);
    assert_eq!(doc["items"][0]["item_code"], ITEM);
    // Dokos' own totals equal the statement's.
    let c = &st.contribution;
    assert_eq!(doc["net_total"].as_f64(), c.net.to_f64());
    assert_eq!(doc["total_taxes_and_charges"].as_f64(), c.vat.to_f64());
    assert_eq!(doc["grand_total"].as_f64(), c.total.to_f64());
    assert_eq!(invoices[1]["grand_total"].as_f64(), Some(282.0));
}

#[tokio::test]
async fn a_minimum_only_statement_is_invoiced_at_the_minimum() {
    let dokos = fake().await;
    let st = statement(3, "solidarity");
    create_draft_invoice(
        &meter::dokos::client().unwrap(),
        &dokos.config(ITEM),
        &vat_draft(&st),
    )
    .await
    .unwrap();
    let doc = &dokos.invoices()[0];
    assert_eq!(doc["net_total"].as_f64(), Some(10.0));
    assert_eq!(doc["grand_total"].as_f64(), Some(12.0));
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_creates_nothing() {
    let dokos = fake().await;
    let mut cfg = dokos.config(ITEM);
    cfg.api_secret = "guess".into();
    let err = create_draft_invoice(
        &meter::dokos::client().unwrap(),
        &cfg,
        &vat_draft(&statement(10, "school")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, DokosError::Unauthorized { message } if message == "Invalid API Key or Secret"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("guess"));
    assert!(!err.is_transient());
    assert!(dokos.invoices().is_empty());
}

#[tokio::test]
async fn an_unknown_customer_is_a_link_validation_error() {
    let dokos = fake().await;
    let draft = draft_from_statement(&statement(10, "school"), "Nobody", ITEM);
    let err = create_draft_invoice(
        &meter::dokos::client().unwrap(),
        &dokos.config(ITEM),
        &draft,
    )
    .await
    .unwrap_err();
    match err {
        DokosError::Validation { exc_type, message } => {
            assert_eq!(exc_type, "LinkValidationError");
            assert_eq!(message, "Could not find Customer: Nobody");
        }
        other => panic!("{other:?}"),
    }
    dokos.add_customer("Nobody");
    create_draft_invoice(
        &meter::dokos::client().unwrap(),
        &dokos.config(ITEM),
        &draft,
    )
    .await
    .unwrap();
    assert_eq!(dokos.invoices().len(), 1);
}

#[tokio::test]
async fn an_unknown_item_and_an_empty_draft_are_refused() {
    let dokos = fake().await;
    let client = meter::dokos::client().unwrap();
    let draft = draft_from_statement(&statement(10, "school"), CUSTOMER, "NO-SUCH-ITEM");
    let err = create_draft_invoice(&client, &dokos.config(ITEM), &draft)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DokosError::Validation { exc_type, message }
            if exc_type == "LinkValidationError" && message == "Could not find Row #1: Item Code: NO-SUCH-ITEM"),
        "{err:?}"
    );

    let mut empty = draft_from_statement(&statement(10, "school"), CUSTOMER, ITEM);
    empty.items.clear();
    let err = create_draft_invoice(&client, &dokos.config(ITEM), &empty)
        .await
        .unwrap_err();
    assert!(matches!(err, DokosError::NothingToInvoice));
    assert_eq!(dokos.requests(), 1, "an empty draft is not sent");
}

#[tokio::test]
async fn an_unavailable_dokos_is_a_transient_error() {
    let dokos = fake().await;
    let client = meter::dokos::client().unwrap();
    let draft = vat_draft(&statement(10, "school"));
    dokos.set_unavailable(true);
    let err = create_draft_invoice(&client, &dokos.config(ITEM), &draft)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DokosError::Unavailable { status: 503 }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(dokos.invoices().is_empty());

    dokos.set_unavailable(false);
    assert_eq!(
        create_draft_invoice(&client, &dokos.config(ITEM), &draft)
            .await
            .unwrap(),
        "ACC-SINV-2026-00001"
    );
}

#[tokio::test]
async fn an_unreachable_dokos_is_a_transport_error() {
    let cfg = {
        let dokos = fake().await;
        dokos.config(ITEM)
    };
    // The fake is stopped: nothing listens on its port any more.
    let err = create_draft_invoice(
        &meter::dokos::client().unwrap(),
        &cfg,
        &vat_draft(&statement(10, "school")),
    )
    .await
    .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn a_wrong_site_path_is_not_found() {
    let dokos = fake().await;
    let mut cfg = dokos.config(ITEM);
    cfg.url = format!("{}/nothing-here", dokos.url());
    let err = create_draft_invoice(
        &meter::dokos::client().unwrap(),
        &cfg,
        &vat_draft(&statement(10, "school")),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DokosError::NotFound { .. }), "{err:?}");
}

/// An export that created the invoice and stopped before recording it (a
/// crash) runs again: the invoice is found by its reference, not created a
/// second time; another period's gets its own.
#[tokio::test]
async fn an_invoice_with_a_reference_is_created_once() {
    let dokos = fake().await;
    let cfg = dokos.config(ITEM);
    let client = meter::dokos::client().unwrap();
    let st = statement(60, "school");
    let key = meter::dokos::reference(&st.org, &st.period);
    assert_eq!(key, "liaison:ecole-jaures:2026-11");
    let draft = vat_draft(&st).with_reference(key.clone());

    let (first, created) = meter::dokos::ensure_draft_invoice(&client, &cfg, &draft)
        .await
        .unwrap();
    assert!(created);
    let remarks = dokos.invoices()[0]["remarks"].as_str().unwrap().to_owned();
    assert!(
        remarks.ends_with("\nReference: liaison:ecole-jaures:2026-11"),
        "{remarks}"
    );
    // The record of `first` was lost: the export runs again.
    let (again, created) = meter::dokos::ensure_draft_invoice(&client, &cfg, &draft)
        .await
        .unwrap();
    assert_eq!((again.as_str(), created), (first.as_str(), false));
    assert_eq!(dokos.invoices().len(), 1, "created once");

    // A reference that only starts like another is another invoice.
    let other = vat_draft(&st).with_reference(format!("{key}0"));
    let (second, created) = meter::dokos::ensure_draft_invoice(&client, &cfg, &other)
        .await
        .unwrap();
    assert!(created);
    assert_ne!(second, first);
    assert_eq!(dokos.invoices().len(), 2);
}

/// A server answering `answer` to every request, counting them.
async fn answering(
    answer: fn() -> axum::response::Response,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let router = axum::Router::new().fallback(move || {
        count.fetch_add(1, Ordering::SeqCst);
        async move { answer() }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn redirects_and_oversized_answers_are_refused() {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    let (moved, hits) = answering(|| {
        (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, "/elsewhere")],
        )
            .into_response()
    })
    .await;
    let dokos = fake().await;
    let draft = vat_draft(&statement(10, "school"));
    let client = meter::dokos::client().unwrap();
    let mut cfg = dokos.config(ITEM);
    cfg.url = moved;
    let err = meter::dokos::ensure_draft_invoice(&client, &cfg, &draft)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DokosError::Http(outbound::HttpError::Redirect { status: 302 })
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the redirect was followed");

    let (big, _) = answering(|| {
        let data = "x".repeat(meter::dokos::MAX_RESPONSE_BYTES + 1);
        axum::Json(serde_json::json!({ "data": { "name": data } })).into_response()
    })
    .await;
    cfg.url = big;
    let err = create_draft_invoice(&client, &cfg, &draft)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DokosError::Http(outbound::HttpError::TooLarge { limit })
                if limit == meter::dokos::MAX_RESPONSE_BYTES
        ),
        "{err:?}"
    );
    assert!(dokos.invoices().is_empty());
}
