//! Ranges: a `low`, a `central` and a `high` value, combined by interval
//! arithmetic on non-negative quantities.
//!
//! Every bound of a result takes the bounds of its inputs that push it furthest:
//! the low of a product is the product of the lows, the low of a quotient divides
//! by the high, the low of a difference subtracts the high. A range is therefore
//! the span of values the inputs' own spans allow, not a confidence interval: no
//! probability is attached to it.

use serde::{Deserialize, Serialize};

/// A quantity known within `low ..= high`, with `central` the best estimate.
/// Invariant (checked by [`Range::new`], kept by every operation): finite,
/// non-negative, `low <= central <= high`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub low: f64,
    pub central: f64,
    pub high: f64,
}

/// Why a range was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RangeError {
    #[error("not a finite number")]
    NotFinite,
    #[error("negative")]
    Negative,
    #[error("low ({low}) <= central ({central}) <= high ({high}) does not hold")]
    Unordered { low: f64, central: f64, high: f64 },
}

impl Range {
    pub const ZERO: Range = Range {
        low: 0.0,
        central: 0.0,
        high: 0.0,
    };

    /// A checked range.
    pub fn new(low: f64, central: f64, high: f64) -> Result<Range, RangeError> {
        for v in [low, central, high] {
            if !v.is_finite() {
                return Err(RangeError::NotFinite);
            }
            if v < 0.0 {
                return Err(RangeError::Negative);
            }
        }
        if !(low <= central && central <= high) {
            return Err(RangeError::Unordered { low, central, high });
        }
        Ok(Range { low, central, high })
    }

    /// A value known exactly (`low = central = high`).
    pub fn point(v: f64) -> Range {
        Range {
            low: v,
            central: v,
            high: v,
        }
    }

    /// `v` with relative spreads: `low = v·(1 − below)`, `high = v·(1 + above)`.
    pub fn spread(v: f64, below: f64, above: f64) -> Range {
        Range {
            low: v * (1.0 - below).max(0.0),
            central: v,
            high: v * (1.0 + above),
        }
    }

    /// Sum of ranges.
    pub fn plus(self, o: Range) -> Range {
        Range {
            low: self.low + o.low,
            central: self.central + o.central,
            high: self.high + o.high,
        }
    }

    /// Difference, floored at zero: `[a, b] − [c, d] = [max(0, a − d), b − c]`.
    pub fn minus(self, o: Range) -> Range {
        Range {
            low: (self.low - o.high).max(0.0),
            central: (self.central - o.central).max(0.0),
            high: (self.high - o.low).max(0.0),
        }
    }

    /// Product of non-negative ranges.
    pub fn times(self, o: Range) -> Range {
        Range {
            low: self.low * o.low,
            central: self.central * o.central,
            high: self.high * o.high,
        }
    }

    /// Quotient by a positive range: `[a, b] / [c, d] = [a / d, b / c]`.
    pub fn over(self, o: Range) -> Range {
        Range {
            low: self.low / o.high,
            central: self.central / o.central,
            high: self.high / o.low,
        }
    }

    /// Every bound times a non-negative factor.
    pub fn scale(self, k: f64) -> Range {
        Range {
            low: self.low * k,
            central: self.central * k,
            high: self.high * k,
        }
    }

    /// `high − low`.
    pub fn width(&self) -> f64 {
        self.high - self.low
    }

    /// Whether `low <= central <= high` (and all finite).
    pub fn is_ordered(&self) -> bool {
        self.low.is_finite()
            && self.high.is_finite()
            && self.low <= self.central
            && self.central <= self.high
    }

    /// Each bound rounded to `digits` decimals (for reports).
    pub fn round(self, digits: i32) -> Range {
        let r = |v: f64| round_to(v, digits);
        Range {
            low: r(self.low),
            central: r(self.central),
            high: r(self.high),
        }
    }
}

impl std::iter::Sum for Range {
    fn sum<I: Iterator<Item = Range>>(iter: I) -> Range {
        iter.fold(Range::ZERO, Range::plus)
    }
}

/// `v` rounded to `digits` decimals.
pub fn round_to(v: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v * k).round() / k
}

/// A range as written in the inventory: a plain number (known exactly) or a
/// table `{ low, central, high }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RangeInput {
    Exact(f64),
    Range { low: f64, central: f64, high: f64 },
}

impl RangeInput {
    pub fn to_range(self) -> Result<Range, RangeError> {
        match self {
            RangeInput::Exact(v) => Range::new(v, v, v),
            RangeInput::Range { low, central, high } => Range::new(low, central, high),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_arithmetic() {
        let a = Range::new(1.0, 2.0, 3.0).unwrap();
        let b = Range::new(2.0, 4.0, 5.0).unwrap();
        assert_eq!(a.plus(b), Range::new(3.0, 6.0, 8.0).unwrap());
        assert_eq!(b.minus(a), Range::new(0.0, 2.0, 4.0).unwrap());
        assert_eq!(a.times(b), Range::new(2.0, 8.0, 15.0).unwrap());
        assert_eq!(b.over(a), Range::new(2.0 / 3.0, 2.0, 5.0).unwrap());
        assert!(a.minus(b).is_ordered());
    }

    #[test]
    fn checks() {
        assert_eq!(
            Range::new(2.0, 1.0, 3.0).unwrap_err().to_string(),
            "low (2) <= central (1) <= high (3) does not hold"
        );
        assert_eq!(Range::new(-1.0, 1.0, 3.0), Err(RangeError::Negative));
        assert_eq!(Range::new(f64::NAN, 1.0, 3.0), Err(RangeError::NotFinite));
        assert_eq!(
            Range::new(1.0, 1.0, f64::INFINITY),
            Err(RangeError::NotFinite)
        );
    }
}
