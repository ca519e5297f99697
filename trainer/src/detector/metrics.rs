//! Detection metrics: how well anomaly scores rank labelled outliers
//! above normal points.

/// Area under the ROC curve of `scores` (higher = more anomalous) against
/// binary `labels` (true = positive), with ties counted as one half: the
/// Mann-Whitney U statistic divided by the number of positive-negative
/// pairs. `None` when either class is empty or a score is NaN.
///
/// ```
/// use tinygen::detector::metrics::roc_auc;
/// assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
/// ```
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (average, 1-based) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * average_rank;
        i = j + 1;
    }
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Average precision of `scores` against binary `labels`, as scikit-learn's
/// `average_precision_score`: `Σ_n (R_n - R_{n-1}) P_n` over the distinct
/// score thresholds, from the highest down. `None` without positives.
///
/// ```
/// use tinygen::detector::metrics::average_precision;
/// // sklearn: average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333...
/// let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
/// assert!((ap - 5.0 / 6.0).abs() < 1e-12);
/// ```
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    if positives == 0.0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut ap, mut recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        // All points tied at this threshold enter together.
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        let new_recall = tp / positives;
        ap += (new_recall - recall) * tp / (tp + fp);
        recall = new_recall;
        i = j;
    }
    Some(ap)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct count over all positive-negative pairs.
    fn pairwise(scores: &[f64], labels: &[bool]) -> f64 {
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for (i, &li) in labels.iter().enumerate() {
            for (j, &lj) in labels.iter().enumerate() {
                if li && !lj {
                    pairs += 1.0;
                    wins += match scores[i].partial_cmp(&scores[j]).unwrap() {
                        std::cmp::Ordering::Greater => 1.0,
                        std::cmp::Ordering::Equal => 0.5,
                        std::cmp::Ordering::Less => 0.0,
                    };
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn matches_pairwise_count_with_ties() {
        let scores = [0.3, 0.1, 0.3, 0.9, 0.5, 0.3, 0.1, 0.7];
        let labels = [true, false, false, true, false, true, true, false];
        assert!((roc_auc(&scores, &labels).unwrap() - pairwise(&scores, &labels)).abs() < 1e-12);
    }

    #[test]
    fn average_precision_matches_scikit_learn_values() {
        // sklearn.metrics.average_precision_score on these inputs.
        let ap = average_precision(
            &[0.9, 0.8, 0.7, 0.6, 0.5],
            &[true, false, true, false, true],
        )
        .unwrap();
        assert!((ap - (1.0 + 2.0 / 3.0 + 3.0 / 5.0) / 3.0).abs() < 1e-12);
        // Ties enter together: one threshold, precision 1/2, recall 1.
        assert_eq!(average_precision(&[1.0, 1.0], &[true, false]), Some(0.5));
        assert_eq!(average_precision(&[1.0, 2.0], &[false, false]), None);
    }

    #[test]
    fn perfect_inverted_and_degenerate() {
        assert_eq!(roc_auc(&[1.0, 2.0], &[false, true]), Some(1.0));
        assert_eq!(roc_auc(&[1.0, 2.0], &[true, false]), Some(0.0));
        assert_eq!(roc_auc(&[1.0, 1.0], &[true, false]), Some(0.5));
        assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(roc_auc(&[f64::NAN, 2.0], &[true, false]), None);
    }
}
