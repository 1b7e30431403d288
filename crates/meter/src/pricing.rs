//! The contribution model: what an organisation contributes for its active accounts.
//!
//! Deserialised from the `[pricing]` table of Liaison's configuration:
//!
//! ```toml
//! [pricing]
//! currency = "EUR"
//! vat_rate = "0.20"          # strings or numbers; strings keep decimals exact
//! minimum = "10.00"          # the least contribution for a period, before VAT
//! mode = "graduated"         # or "volume"
//! default_category = "association"
//! brackets = [
//!   { up_to = 50, per_account = "1.00" },
//!   { up_to = 250, per_account = "0.80" },
//!   { per_account = "0.50" },               # the last bracket is open
//! ]
//! [pricing.categories]
//! association = { coefficient = "1.0", label = "Association" }
//! solidarity = { coefficient = "0.5", label = "Solidarity rate" }
//! ```
//!
//! The computation, in order, rounding to cents (half away from zero) at each step:
//! 1. each bracket line: accounts × rate, rounded; the subtotal is their sum;
//! 2. subtotal × the category's coefficient, rounded;
//! 3. the net is that, or the minimum when it is larger;
//! 4. VAT: net × `vat_rate`, rounded; the total is net + VAT.
//!
//! In `graduated` mode (the default) each account is priced at the rate of its own
//! bracket, like tax brackets; in `volume` mode every account is priced at the rate
//! of the bracket the count falls in.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// How accounts are priced across brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PricingMode {
    /// Each account at its own bracket's rate.
    #[default]
    Graduated,
    /// All accounts at the rate of the bracket the count falls in.
    Volume,
}

impl PricingMode {
    /// The name used in configuration and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PricingMode::Graduated => "graduated",
            PricingMode::Volume => "volume",
        }
    }
}

/// One price bracket: accounts up to `up_to` (inclusive; absent on the last,
/// open bracket) cost `per_account` each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bracket {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<u64>,
    pub per_account: Decimal,
}

/// A category of organisation and its solidarity coefficient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub coefficient: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The contribution model. [`Pricing::default`] is [`Pricing::example`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// ISO 4217 code.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// VAT as a fraction (0.20 for 20 %); 0 when not subject to VAT.
    #[serde(default)]
    pub vat_rate: Decimal,
    /// The least net contribution for a period.
    #[serde(default)]
    pub minimum: Decimal,
    #[serde(default)]
    pub mode: PricingMode,
    pub brackets: Vec<Bracket>,
    /// Categories by name. Without any, every organisation has coefficient 1.
    #[serde(default)]
    pub categories: BTreeMap<String, Category>,
    /// The category of organisations that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_category: Option<String>,
}

fn default_currency() -> String {
    "EUR".to_owned()
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing::example()
    }
}

/// Why a model is invalid or a contribution cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("currency must be an ISO 4217 code such as EUR")]
    Currency,
    #[error("vat_rate must be between 0 and 1")]
    VatRate,
    #[error("minimum must not be negative")]
    Minimum,
    #[error("at least one bracket is needed")]
    NoBrackets,
    #[error("bracket {0}: per_account must not be negative")]
    NegativeRate(usize),
    #[error("bracket {0}: every bracket but the last needs up_to, in ascending order from 1")]
    BracketOrder(usize),
    #[error("the last bracket must be open (no up_to)")]
    LastBracketClosed,
    #[error("category {0:?}: coefficient must not be negative")]
    NegativeCoefficient(String),
    #[error("category names must not be empty")]
    EmptyCategoryName,
    #[error("unknown category {0:?}")]
    UnknownCategory(String),
    #[error("the amount is too large")]
    Overflow,
}

/// One bracket's part of a contribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BracketLine {
    /// First account of the bracket (1-based).
    pub from: u64,
    /// Last account of the bracket; `None` for the open bracket.
    pub to: Option<u64>,
    /// Accounts priced on this line.
    pub accounts: u64,
    pub rate: Decimal,
    /// accounts × rate, rounded to cents.
    pub amount: Decimal,
}

/// A computed contribution, step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    pub active_accounts: u64,
    pub mode: PricingMode,
    pub lines: Vec<BracketLine>,
    pub subtotal: Decimal,
    pub category: Option<String>,
    pub category_label: Option<String>,
    pub coefficient: Decimal,
    /// subtotal × coefficient, rounded.
    pub after_coefficient: Decimal,
    pub minimum: Decimal,
    /// Whether the minimum replaced `after_coefficient`.
    pub minimum_applied: bool,
    pub net: Decimal,
    pub vat_rate: Decimal,
    pub vat: Decimal,
    pub total: Decimal,
    pub currency: String,
}

/// Rounds to cents, half away from zero, always showing two decimals.
pub fn round_cents(value: Decimal) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    rounded
}

impl Pricing {
    /// A model for a small co-op: 1.00 per account for the first 50, 0.80 up to
    /// 250, 0.50 beyond; at least 10.00 a period; categories association (1.0),
    /// school and union (0.8), solidarity (0.5); VAT 20 %; EUR.
    pub fn example() -> Pricing {
        let category = |coefficient: i64, scale: u32, label: &str| Category {
            coefficient: Decimal::new(coefficient, scale),
            label: Some(label.to_owned()),
        };
        Pricing {
            currency: default_currency(),
            vat_rate: Decimal::new(20, 2),
            minimum: Decimal::new(1000, 2),
            mode: PricingMode::Graduated,
            brackets: vec![
                Bracket {
                    up_to: Some(50),
                    per_account: Decimal::new(100, 2),
                },
                Bracket {
                    up_to: Some(250),
                    per_account: Decimal::new(80, 2),
                },
                Bracket {
                    up_to: None,
                    per_account: Decimal::new(50, 2),
                },
            ],
            categories: BTreeMap::from([
                ("association".to_owned(), category(10, 1, "Association")),
                ("school".to_owned(), category(8, 1, "School")),
                ("union".to_owned(), category(8, 1, "Trade union")),
                ("solidarity".to_owned(), category(5, 1, "Solidarity rate")),
            ]),
            default_category: Some("association".to_owned()),
        }
    }

    /// Checks the model: currency code, VAT in [0, 1], non-negative amounts and
    /// coefficients, brackets ascending with only the last open, and a default
    /// category that exists.
    pub fn validate(&self) -> Result<(), PricingError> {
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(PricingError::Currency);
        }
        if self.vat_rate < Decimal::ZERO || self.vat_rate > Decimal::ONE {
            return Err(PricingError::VatRate);
        }
        if self.minimum < Decimal::ZERO {
            return Err(PricingError::Minimum);
        }
        let Some(last) = self.brackets.len().checked_sub(1) else {
            return Err(PricingError::NoBrackets);
        };
        let mut previous = 0;
        for (index, bracket) in self.brackets.iter().enumerate() {
            if bracket.per_account < Decimal::ZERO {
                return Err(PricingError::NegativeRate(index));
            }
            match bracket.up_to {
                Some(_) if index == last => return Err(PricingError::LastBracketClosed),
                Some(up_to) if up_to > previous => previous = up_to,
                None if index == last => {}
                _ => return Err(PricingError::BracketOrder(index)),
            }
        }
        for (name, category) in &self.categories {
            if name.is_empty() {
                return Err(PricingError::EmptyCategoryName);
            }
            if category.coefficient < Decimal::ZERO {
                return Err(PricingError::NegativeCoefficient(name.clone()));
            }
        }
        if let Some(name) = &self.default_category {
            if !self.categories.contains_key(name) {
                return Err(PricingError::UnknownCategory(name.clone()));
            }
        }
        Ok(())
    }

    /// The contribution for `active` accounts of an organisation of `category`
    /// (the default category when `None`).
    pub fn contribution(
        &self,
        active: u64,
        category: Option<&str>,
    ) -> Result<Contribution, PricingError> {
        self.validate()?;
        let category = category.or(self.default_category.as_deref());
        let (coefficient, category_label) = match category {
            Some(name) => {
                let found = self
                    .categories
                    .get(name)
                    .ok_or_else(|| PricingError::UnknownCategory(name.to_owned()))?;
                (found.coefficient, found.label.clone())
            }
            None => (Decimal::ONE, None),
        };

        let lines = match self.mode {
            PricingMode::Graduated => self.graduated(active)?,
            PricingMode::Volume => self.volume(active)?,
        };
        let subtotal = lines
            .iter()
            .try_fold(Decimal::ZERO, |sum, line| sum.checked_add(line.amount))
            .ok_or(PricingError::Overflow)?;
        let after_coefficient = round_cents(
            subtotal
                .checked_mul(coefficient)
                .ok_or(PricingError::Overflow)?,
        );
        let minimum = round_cents(self.minimum);
        let minimum_applied = after_coefficient < minimum;
        let net = if minimum_applied {
            minimum
        } else {
            after_coefficient
        };
        let vat = round_cents(
            net.checked_mul(self.vat_rate)
                .ok_or(PricingError::Overflow)?,
        );
        let total = net.checked_add(vat).ok_or(PricingError::Overflow)?;
        Ok(Contribution {
            active_accounts: active,
            mode: self.mode,
            lines,
            subtotal: round_cents(subtotal),
            category: category.map(str::to_owned),
            category_label,
            coefficient,
            after_coefficient,
            minimum,
            minimum_applied,
            net,
            vat_rate: self.vat_rate,
            vat,
            total,
            currency: self.currency.clone(),
        })
    }

    fn line(
        from: u64,
        to: Option<u64>,
        accounts: u64,
        rate: Decimal,
    ) -> Result<BracketLine, PricingError> {
        let amount = Decimal::from(accounts)
            .checked_mul(rate)
            .ok_or(PricingError::Overflow)?;
        Ok(BracketLine {
            from,
            to,
            accounts,
            rate,
            amount: round_cents(amount),
        })
    }

    fn graduated(&self, active: u64) -> Result<Vec<BracketLine>, PricingError> {
        let mut lines = Vec::new();
        let mut below = 0u64;
        for bracket in &self.brackets {
            if active <= below {
                break;
            }
            let top = bracket.up_to.map_or(active, |up_to| up_to.min(active));
            lines.push(Self::line(
                below + 1,
                bracket.up_to,
                top - below,
                bracket.per_account,
            )?);
            below = top;
        }
        Ok(lines)
    }

    fn volume(&self, active: u64) -> Result<Vec<BracketLine>, PricingError> {
        if active == 0 {
            return Ok(Vec::new());
        }
        let mut below = 0u64;
        for bracket in &self.brackets {
            match bracket.up_to {
                Some(up_to) if active > up_to => below = up_to,
                _ => {
                    return Ok(vec![Self::line(
                        below + 1,
                        bracket.up_to,
                        active,
                        bracket.per_account,
                    )?])
                }
            }
        }
        Err(PricingError::LastBracketClosed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn graduated_prices_each_account_in_its_bracket() {
        let c = Pricing::example().contribution(300, None).unwrap();
        let lines: Vec<_> = c
            .lines
            .iter()
            .map(|l| (l.from, l.to, l.accounts, l.amount.to_string()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (1, Some(50), 50, "50.00".into()),
                (51, Some(250), 200, "160.00".into()),
                (251, None, 50, "25.00".into()),
            ]
        );
        assert_eq!(c.subtotal, d("235.00"));
        assert_eq!(c.category.as_deref(), Some("association"));
        assert_eq!(c.coefficient, d("1.0"));
        assert_eq!(c.net, d("235.00"));
        assert_eq!(c.vat, d("47.00"));
        assert_eq!(c.total.to_string(), "282.00");
        assert!(!c.minimum_applied);
    }

    #[test]
    fn bracket_edges_are_inclusive() {
        let p = Pricing::example();
        let c = p.contribution(50, None).unwrap();
        assert_eq!(c.lines.len(), 1);
        assert_eq!(c.subtotal, d("50.00"));
        let c = p.contribution(51, None).unwrap();
        assert_eq!(c.lines.len(), 2);
        assert_eq!((c.lines[1].from, c.lines[1].accounts), (51, 1));
        assert_eq!(c.subtotal, d("50.80"));
    }

    #[test]
    fn volume_prices_every_account_at_the_reached_bracket() {
        let p = Pricing {
            mode: PricingMode::Volume,
            ..Pricing::example()
        };
        let c = p.contribution(300, None).unwrap();
        assert_eq!(c.lines.len(), 1);
        assert_eq!(
            (c.lines[0].from, c.lines[0].to, c.lines[0].accounts),
            (251, None, 300)
        );
        assert_eq!(c.subtotal, d("150.00"));
        let c = p.contribution(250, None).unwrap();
        assert_eq!((c.lines[0].from, c.lines[0].to), (51, Some(250)));
        assert_eq!(c.subtotal, d("200.00"));
        assert!(p.contribution(0, None).unwrap().lines.is_empty());
    }

    #[test]
    fn coefficient_then_minimum_then_vat() {
        let p = Pricing::example();
        let c = p.contribution(40, Some("solidarity")).unwrap();
        assert_eq!(c.subtotal, d("40.00"));
        assert_eq!(c.after_coefficient, d("20.00"));
        assert_eq!(c.category_label.as_deref(), Some("Solidarity rate"));
        assert_eq!(c.net, d("20.00"));
        assert_eq!(c.total, d("24.00"));

        let c = p.contribution(15, Some("solidarity")).unwrap();
        assert_eq!(c.after_coefficient, d("7.50"));
        assert!(c.minimum_applied);
        assert_eq!(c.net, d("10.00"));
        assert_eq!(c.vat, d("2.00"));
        assert_eq!(c.total, d("12.00"));

        let c = p.contribution(0, None).unwrap();
        assert!(c.lines.is_empty() && c.minimum_applied);
        assert_eq!(c.total, d("12.00"));
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_each_step() {
        let p = Pricing {
            vat_rate: d("0.055"),
            minimum: Decimal::ZERO,
            brackets: vec![Bracket {
                up_to: None,
                per_account: d("0.125"),
            }],
            categories: BTreeMap::from([(
                "third".into(),
                Category {
                    coefficient: d("0.5"),
                    label: None,
                },
            )]),
            default_category: None,
            ..Pricing::example()
        };
        // 3 × 0.125 = 0.375 → 0.38; × 0.5 = 0.19; VAT 0.19 × 0.055 = 0.01045 → 0.01.
        let c = p.contribution(3, Some("third")).unwrap();
        assert_eq!(c.lines[0].amount.to_string(), "0.38");
        assert_eq!(c.after_coefficient.to_string(), "0.19");
        assert_eq!(c.vat.to_string(), "0.01");
        assert_eq!(c.total.to_string(), "0.20");
        // Without a default category and none given, the coefficient is 1.
        let c = p.contribution(1, None).unwrap();
        assert_eq!((c.category, c.coefficient), (None, Decimal::ONE));
        assert_eq!(c.net.to_string(), "0.13");
    }

    #[test]
    fn unknown_category_is_an_error() {
        assert_eq!(
            Pricing::example().contribution(1, Some("bank")),
            Err(PricingError::UnknownCategory("bank".into()))
        );
    }

    #[test]
    fn validation_catches_broken_models() {
        let ok = Pricing::example();
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(Pricing, PricingError)> = vec![
            (
                Pricing {
                    currency: "eur".into(),
                    ..ok.clone()
                },
                PricingError::Currency,
            ),
            (
                Pricing {
                    vat_rate: d("-0.1"),
                    ..ok.clone()
                },
                PricingError::VatRate,
            ),
            (
                Pricing {
                    vat_rate: d("20"),
                    ..ok.clone()
                },
                PricingError::VatRate,
            ),
            (
                Pricing {
                    minimum: d("-1"),
                    ..ok.clone()
                },
                PricingError::Minimum,
            ),
            (
                Pricing {
                    brackets: vec![],
                    ..ok.clone()
                },
                PricingError::NoBrackets,
            ),
            (
                Pricing {
                    brackets: vec![Bracket {
                        up_to: Some(10),
                        per_account: d("1"),
                    }],
                    ..ok.clone()
                },
                PricingError::LastBracketClosed,
            ),
            (
                Pricing {
                    brackets: vec![
                        Bracket {
                            up_to: Some(10),
                            per_account: d("1"),
                        },
                        Bracket {
                            up_to: Some(10),
                            per_account: d("1"),
                        },
                        Bracket {
                            up_to: None,
                            per_account: d("1"),
                        },
                    ],
                    ..ok.clone()
                },
                PricingError::BracketOrder(1),
            ),
            (
                Pricing {
                    brackets: vec![
                        Bracket {
                            up_to: None,
                            per_account: d("1"),
                        },
                        Bracket {
                            up_to: None,
                            per_account: d("1"),
                        },
                    ],
                    ..ok.clone()
                },
                PricingError::BracketOrder(0),
            ),
            (
                Pricing {
                    brackets: vec![
                        Bracket {
                            up_to: Some(0),
                            per_account: d("1"),
                        },
                        Bracket {
                            up_to: None,
                            per_account: d("1"),
                        },
                    ],
                    ..ok.clone()
                },
                PricingError::BracketOrder(0),
            ),
            (
                Pricing {
                    brackets: vec![Bracket {
                        up_to: None,
                        per_account: d("-1"),
                    }],
                    ..ok.clone()
                },
                PricingError::NegativeRate(0),
            ),
            (
                Pricing {
                    default_category: Some("bank".into()),
                    ..ok.clone()
                },
                PricingError::UnknownCategory("bank".into()),
            ),
        ];
        for (pricing, error) in cases {
            assert_eq!(pricing.validate(), Err(error.clone()));
            assert_eq!(pricing.contribution(10, None), Err(error));
        }
        let mut negative = ok.clone();
        negative.categories.get_mut("school").unwrap().coefficient = d("-0.5");
        assert_eq!(
            negative.validate(),
            Err(PricingError::NegativeCoefficient("school".into()))
        );
    }

    #[test]
    fn reads_the_config_table_with_strings_or_numbers() {
        let text = r#"
            vat_rate = 0.2
            minimum = "10.00"
            mode = "volume"
            default_category = "school"
            brackets = [
              { up_to = 50, per_account = "1.00" },
              { per_account = 0.5 },
            ]
            [categories]
            school = { coefficient = "0.8", label = "School" }
        "#;
        let p: Pricing = toml::from_str(text).unwrap();
        assert_eq!(p.currency, "EUR");
        assert_eq!(p.vat_rate, d("0.2"));
        assert_eq!(p.mode, PricingMode::Volume);
        assert_eq!(
            p.brackets[1],
            Bracket {
                up_to: None,
                per_account: d("0.5")
            }
        );
        assert_eq!(p.validate(), Ok(()));
        // 60 × 0.5 = 30.00 × 0.8 = 24.00, VAT 4.80.
        assert_eq!(p.contribution(60, None).unwrap().total, d("28.80"));

        assert!(toml::from_str::<Pricing>("brackets = []\ncurency = \"EUR\"").is_err());
        let defaults: Pricing = toml::from_str(r#"brackets = [{ per_account = "2" }]"#).unwrap();
        assert_eq!(
            (defaults.mode, defaults.vat_rate, defaults.minimum),
            (PricingMode::Graduated, Decimal::ZERO, Decimal::ZERO)
        );
        assert!(defaults.categories.is_empty());
    }

    #[test]
    fn contributions_serialise_money_as_exact_strings() {
        let c = Pricing::example().contribution(51, None).unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["subtotal"], "50.80");
        assert_eq!(json["lines"][1]["rate"], "0.80");
        assert_eq!(json["mode"], "graduated");
        let back: Contribution = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn huge_counts_overflow_cleanly() {
        let p = Pricing {
            brackets: vec![Bracket {
                up_to: None,
                per_account: Decimal::MAX,
            }],
            ..Pricing::example()
        };
        assert_eq!(p.contribution(u64::MAX, None), Err(PricingError::Overflow));
    }
}
