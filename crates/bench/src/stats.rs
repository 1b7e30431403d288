//! Small statistics over latency samples: percentiles and medians, computed by
//! sorting (the sample counts of one benchmark run fit in memory easily).

use std::time::Duration;

/// The `p`-th percentile (0.0–100.0) of `samples` by the nearest-rank method, or
/// `None` when there are no samples. Sorts `samples` in place.
pub fn percentile(samples: &mut [Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let p = p.clamp(0.0, 100.0);
    // Nearest rank: the smallest value with at least p% of the samples at or below it.
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    let index = rank.clamp(1, samples.len()) - 1;
    samples.get(index).copied()
}

/// The median of `samples` (the lower middle value for an even count).
pub fn median(samples: &mut [Duration]) -> Option<Duration> {
    percentile(samples, 50.0)
}

/// Milliseconds as a float, for reports.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = millis(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(percentile(&mut s, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&mut s, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&mut s, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&mut s, 0.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn median_of_small_sets() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut millis(&[7])), Some(Duration::from_millis(7)));
        assert_eq!(
            median(&mut millis(&[9, 1, 5])),
            Some(Duration::from_millis(5))
        );
        assert_eq!(
            median(&mut millis(&[4, 1, 3, 2])),
            Some(Duration::from_millis(2))
        );
    }

    #[test]
    fn out_of_range_percentiles_are_clamped() {
        let mut s = millis(&[3, 1, 2]);
        assert_eq!(percentile(&mut s, -5.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&mut s, 250.0), Some(Duration::from_millis(3)));
    }

    #[test]
    fn ms_converts() {
        assert!((ms(Duration::from_micros(1500)) - 1.5).abs() < 1e-9);
    }
}
