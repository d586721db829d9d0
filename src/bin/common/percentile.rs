//! Percentiles of sorted latencies.

/// The `p`-th percentile (nearest rank) of `sorted`, in thousandths of its unit (µs → ms,
/// ns → µs); NaN when there is none.
pub fn percentile<T: Copy + Into<u64>>(sorted: &[T], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].into() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7000u32], 50.0), 7.0);
        assert_eq!(percentile(&[1500u64, 2500], 50.0), 1.5);
        assert!(percentile::<u32>(&[], 50.0).is_nan());
    }
}
