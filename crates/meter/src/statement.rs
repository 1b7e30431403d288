//! Statements: one organisation's active accounts and contribution for one period,
//! as JSON (serde), CSV (many statements) and a printable HTML page.

use std::collections::BTreeMap;

use askama::Template;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use crate::period::Period;
use crate::pricing::Contribution;

/// How active accounts are counted, as printed on every statement.
pub const METHOD: &str = "Active accounts are counted as distinct people who signed in to \
at least one app of the suite during the period. Each person is counted through a keyed \
hash whose key is destroyed when the period closes: nothing about any person is kept, \
neither who they are nor when or where they signed in.";

/// One organisation's statement for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The organisation's slug.
    pub org: String,
    pub org_name: String,
    /// The period's label (`2026-11`).
    pub period: String,
    /// First instant of the period, RFC 3339 UTC.
    pub period_start: String,
    /// First instant after the period, RFC 3339 UTC.
    pub period_end: String,
    /// Distinct people active in the organisation.
    pub active_accounts: u64,
    /// Distinct people active per app of the organisation.
    pub per_app: BTreeMap<String, u64>,
    /// Whether the period is closed (the count is final).
    pub closed: bool,
    pub contribution: Contribution,
}

impl Statement {
    /// A statement for `period`, its bounds written as RFC 3339.
    pub fn new(
        org: impl Into<String>,
        org_name: impl Into<String>,
        period: &Period,
        per_app: BTreeMap<String, u64>,
        closed: bool,
        contribution: Contribution,
    ) -> Statement {
        Statement {
            org: org.into(),
            org_name: org_name.into(),
            period: period.label(),
            period_start: rfc3339(period.start()),
            period_end: rfc3339(period.end()),
            active_accounts: contribution.active_accounts,
            per_app,
            closed,
            contribution,
        }
    }
}

fn rfc3339(date: time::Date) -> String {
    date.midnight()
        .assume_utc()
        .format(&Rfc3339)
        .expect("dates of periods are within RFC 3339's years")
}

const CSV_HEADER: [&str; 18] = [
    "org",
    "org_name",
    "period",
    "period_start",
    "period_end",
    "closed",
    "active_accounts",
    "per_app",
    "category",
    "subtotal",
    "coefficient",
    "after_coefficient",
    "minimum_applied",
    "net",
    "vat_rate",
    "vat",
    "total",
    "currency",
];

/// One CSV row per statement, with a header. `per_app` is written
/// `app=count;app=count`. Text cells that a spreadsheet would take for a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) are prefixed with `'`.
pub fn to_csv(statements: &[Statement]) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_HEADER).expect("writing CSV to memory");
    for st in statements {
        let c = &st.contribution;
        let per_app = st
            .per_app
            .iter()
            .map(|(app, count)| format!("{app}={count}"))
            .collect::<Vec<_>>()
            .join(";");
        let row = [
            text_cell(&st.org),
            text_cell(&st.org_name),
            text_cell(&st.period),
            text_cell(&st.period_start),
            text_cell(&st.period_end),
            st.closed.to_string(),
            st.active_accounts.to_string(),
            text_cell(&per_app),
            text_cell(c.category.as_deref().unwrap_or("")),
            c.subtotal.to_string(),
            c.coefficient.to_string(),
            c.after_coefficient.to_string(),
            c.minimum_applied.to_string(),
            c.net.to_string(),
            c.vat_rate.to_string(),
            c.vat.to_string(),
            c.total.to_string(),
            text_cell(&c.currency),
        ];
        out.write_record(&row).expect("writing CSV to memory");
    }
    let bytes = out.into_inner().expect("flushing CSV to memory");
    String::from_utf8(bytes).expect("CSV of Strings is UTF-8")
}

fn text_cell(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

#[derive(Template)]
#[template(path = "statement.html")]
struct StatementPage<'a> {
    st: &'a Statement,
    c: &'a Contribution,
    start: &'a str,
    end: &'a str,
    vat_percent: String,
    method: &'a str,
}

/// A printable, self-contained HTML page for one statement. Every value is
/// HTML-escaped by the template.
pub fn to_html(st: &Statement) -> String {
    let page = StatementPage {
        st,
        c: &st.contribution,
        start: st.period_start.get(..10).unwrap_or(&st.period_start),
        end: st.period_end.get(..10).unwrap_or(&st.period_end),
        vat_percent: (st.contribution.vat_rate * rust_decimal::Decimal::ONE_HUNDRED)
            .normalize()
            .to_string(),
        method: METHOD,
    };
    page.render()
        .expect("rendering into a String does not fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::PeriodKind;
    use crate::pricing::Pricing;

    fn statement(org_name: &str) -> Statement {
        let period = Period::parse(PeriodKind::Month, "2026-11").unwrap();
        let contribution = Pricing::example().contribution(60, Some("school")).unwrap();
        let per_app = BTreeMap::from([("nextcloud".to_owned(), 55), ("synapse".to_owned(), 12)]);
        Statement::new(
            "ecole-jaures",
            org_name,
            &period,
            per_app,
            true,
            contribution,
        )
    }

    #[test]
    fn json_has_one_object_per_org_and_period() {
        let st = statement("École Jean Jaurès");
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["org"], "ecole-jaures");
        assert_eq!(json["period"], "2026-11");
        assert_eq!(json["period_start"], "2026-11-01T00:00:00Z");
        assert_eq!(json["period_end"], "2026-12-01T00:00:00Z");
        assert_eq!(json["active_accounts"], 60);
        assert_eq!(json["per_app"]["nextcloud"], 55);
        // 50 × 1.00 + 10 × 0.80 = 58.00, × 0.8 = 46.40, VAT 9.28.
        assert_eq!(json["contribution"]["net"], "46.40");
        assert_eq!(json["contribution"]["total"], "55.68");
        assert_eq!(serde_json::from_value::<Statement>(json).unwrap(), st);
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_statement() {
        let mut other = statement("Syndicat, \"uni\"");
        other.org = "syndicat".into();
        other.per_app.clear();
        let text = to_csv(&[statement("École Jean Jaurès"), other]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            reader.headers().unwrap().iter().collect::<Vec<_>>(),
            CSV_HEADER
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        let row = &rows[0];
        assert_eq!(&row[0], "ecole-jaures");
        assert_eq!(&row[1], "École Jean Jaurès");
        assert_eq!(&row[2], "2026-11");
        assert_eq!(&row[5], "true");
        assert_eq!(&row[6], "60");
        assert_eq!(&row[7], "nextcloud=55;synapse=12");
        assert_eq!(&row[8], "school");
        assert_eq!(&row[9], "58.00");
        assert_eq!(&row[13], "46.40");
        assert_eq!(&row[16], "55.68");
        assert_eq!(&row[17], "EUR");
        assert_eq!(&rows[1][1], "Syndicat, \"uni\"");
        assert_eq!(&rows[1][7], "");
    }

    #[test]
    fn csv_neutralises_formulas() {
        let text = to_csv(&[statement("=HYPERLINK(\"http://x\")")]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[1], "'=HYPERLINK(\"http://x\")");
        assert_eq!(to_csv(&[]).lines().count(), 1);
    }

    #[test]
    fn html_is_printable_accessible_and_escaped() {
        let st = statement("<script>alert('x')</script> & Cie");
        let html = to_html(&st);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("@media print"));
        assert!(!html.contains("<script>"));
        assert!(
            html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; Cie"),
            "{html}"
        );
        assert!(html.contains("<caption>"));
        assert!(html.contains("scope=\"col\""));
        // The bracket lines, the totals and the statement of method.
        assert!(html.contains("51–250"));
        assert!(html.contains("46.40"));
        assert!(html.contains("55.68"));
        assert!(html.contains("20 %"));
        assert!(html.contains("nothing about any person is kept"));
        assert!(html.contains("nextcloud"));
    }

    #[test]
    fn html_escapes_every_text_field() {
        let mut st = statement("ok");
        st.org = "<b>org</b>".into();
        st.period = "<i>p</i>".into();
        st.per_app = BTreeMap::from([("<img src=x>".to_owned(), 1)]);
        st.contribution.category_label = Some("<u>cat</u>".into());
        st.contribution.currency = "<s>".into();
        let html = to_html(&st);
        for raw in ["<b>", "<i>", "<img", "<u>", "<s>"] {
            assert!(!html.contains(raw), "{raw} in {html}");
        }
    }
}
