//! Ethical activity metering: turns Keycloak login webhooks into counts of distinct
//! active people per organisation and period (through keyed, per-period hashes, so
//! nobody's activity is tracked), prices those counts with the collective's
//! contribution model, renders statements (JSON, CSV, printable HTML) and exports
//! them as draft invoices to Dokos. Everything here is pure except `dokos` (its
//! HTTP client) and `fakes` (an in-process fake Dokos, behind the `fakes` feature).

pub mod dokos;
#[cfg(feature = "fakes")]
pub mod fakes;
pub mod keycloak;
pub mod keyed;
pub mod period;
pub mod pricing;
pub mod statement;

pub use dokos::{
    create_draft_invoice, draft_from_statement, DokosConfig, DokosError, InvoiceDraft,
};
pub use keycloak::{parse, verify, Activity, ParseError, VerifyError, WebhookAuth};
pub use keyed::{person_hash, Kek, KekError, OpenError, PeriodKey};
pub use period::{Period, PeriodError, PeriodKind};
pub use pricing::{Contribution, Pricing, PricingError, PricingMode};
pub use statement::{to_csv, to_html, Statement};
