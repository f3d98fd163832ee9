//! Validation metrics: AUC, KS, Gini, ROC and KS curves, gains/lift by decile,
//! calibration, PSI. All take `risk` (higher = more likely the event, e.g.
//! P(event)) and `events` (1 = event).

use serde::{Deserialize, Serialize};

/// Row indices ordered by decreasing risk (ties by row index).
pub fn order_desc(risk: &[f64]) -> Vec<u32> {
    // Integer keys in descending `total_cmp` order (the transform `total_cmp`
    // makes, negated), ties by row: a plain integer sort, same order as comparing floats.
    let mut v: Vec<(i64, u32)> = risk
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let b = r.to_bits() as i64;
            (!(b ^ ((((b >> 63) as u64) >> 1) as i64)), i as u32)
        })
        .collect();
    v.sort_unstable();
    v.into_iter().map(|x| x.1).collect()
}

/// Area under the ROC curve: P(risk of a random event > risk of a random
/// non-event), ties counted one half. O(n log n).
pub fn auc(risk: &[f64], events: &[u8]) -> f64 {
    auc_ordered(risk, events, &order_desc(risk))
}

/// [`auc`] with the order of [`order_desc`] given.
pub fn auc_ordered(risk: &[f64], events: &[u8], idx: &[u32]) -> f64 {
    let (mut pos, mut neg) = (0.0f64, 0.0f64);
    let mut area = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let v = risk[idx[i] as usize];
        let (mut dp, mut dn) = (0.0, 0.0);
        while i < idx.len() && risk[idx[i] as usize] == v {
            if events[idx[i] as usize] == 1 {
                dp += 1.0
            } else {
                dn += 1.0
            }
            i += 1;
        }
        // events in this tie group beat all non-events after it and half of those tied
        area += dn * (pos + 0.5 * dp);
        pos += dp;
        neg += dn;
    }
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    area / (pos * neg)
}

/// ROC points (false positive rate, true positive rate) at every distinct threshold, from (0,0) to (1,1).
pub fn roc_curve(risk: &[f64], events: &[u8]) -> Vec<(f64, f64)> {
    roc_ordered(risk, events, &order_desc(risk))
}

/// [`roc_curve`] with the order of [`order_desc`] given.
pub fn roc_ordered(risk: &[f64], events: &[u8], idx: &[u32]) -> Vec<(f64, f64)> {
    let p = events.iter().filter(|&&e| e == 1).count() as f64;
    let n = events.len() as f64 - p;
    let mut out = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let v = risk[idx[i] as usize];
        while i < idx.len() && risk[idx[i] as usize] == v {
            if events[idx[i] as usize] == 1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        out.push((
            if n > 0.0 { fp / n } else { 0.0 },
            if p > 0.0 { tp / p } else { 0.0 },
        ));
    }
    out
}

/// Kolmogorov–Smirnov statistic: the largest gap between the cumulative share
/// of events and of non-events over thresholds of `risk`. Returns (KS, threshold).
pub fn ks(risk: &[f64], events: &[u8]) -> (f64, f64) {
    let idx = order_desc(risk);
    ks_ordered(risk, events, &idx, &roc_ordered(risk, events, &idx))
}

/// [`ks`] from the order and the ROC points.
pub fn ks_ordered(risk: &[f64], events: &[u8], idx: &[u32], roc: &[(f64, f64)]) -> (f64, f64) {
    let _ = events;
    let mut idx = idx.to_vec();
    idx.dedup_by(|a, b| risk[*a as usize] == risk[*b as usize]);
    let mut best = (0.0, f64::NAN);
    for (k, &(fpr, tpr)) in roc.iter().enumerate().skip(1) {
        if tpr - fpr > best.0 {
            best = (tpr - fpr, risk[idx[k - 1] as usize]);
        }
    }
    best
}

/// Gini = 2·AUC − 1.
pub fn gini(auc: f64) -> f64 {
    2.0 * auc - 1.0
}

/// One row of a gains table (groups of equal size from the riskiest down).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GainsRow {
    pub group: usize,
    pub rows: usize,
    pub events: usize,
    pub min_risk: f64,
    pub max_risk: f64,
    pub event_rate: f64,
    /// Share of all events in this and the riskier groups.
    pub cum_event_share: f64,
    pub cum_non_event_share: f64,
    /// Event rate of the group / overall event rate.
    pub lift: f64,
    pub cum_lift: f64,
    pub ks: f64,
}

/// Gains / lift table by `groups` equal-size groups ordered from the highest
/// risk (rows with equal risk are split by row order).
pub fn gains_table(risk: &[f64], events: &[u8], groups: usize) -> Vec<GainsRow> {
    gains_ordered(risk, events, groups, &order_desc(risk))
}

/// [`gains_table`] with the order of [`order_desc`] given.
pub fn gains_ordered(risk: &[f64], events: &[u8], groups: usize, idx: &[u32]) -> Vec<GainsRow> {
    let n = risk.len();
    if n == 0 || groups == 0 {
        return Vec::new();
    }
    let tot_e = events.iter().filter(|&&e| e == 1).count() as f64;
    let tot_n = n as f64 - tot_e;
    let rate = tot_e / n as f64;
    let mut out = Vec::new();
    let (mut ce, mut cn, mut crows) = (0.0, 0.0, 0usize);
    for g in 0..groups {
        let a = g * n / groups;
        let b = (g + 1) * n / groups;
        if b <= a {
            continue;
        }
        let e = idx[a..b]
            .iter()
            .filter(|&&i| events[i as usize] == 1)
            .count();
        ce += e as f64;
        cn += (b - a - e) as f64;
        crows += b - a;
        let er = e as f64 / (b - a) as f64;
        let ces = if tot_e > 0.0 { ce / tot_e } else { 0.0 };
        let cns = if tot_n > 0.0 { cn / tot_n } else { 0.0 };
        out.push(GainsRow {
            group: g + 1,
            rows: b - a,
            events: e,
            min_risk: risk[idx[b - 1] as usize],
            max_risk: risk[idx[a] as usize],
            event_rate: er,
            cum_event_share: ces,
            cum_non_event_share: cns,
            lift: if rate > 0.0 { er / rate } else { 0.0 },
            cum_lift: if rate > 0.0 {
                (ce / crows as f64) / rate
            } else {
                0.0
            },
            ks: ces - cns,
        });
    }
    out
}

/// One row of a calibration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRow {
    pub group: usize,
    pub rows: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Calibration by `groups` equal-size groups of predicted probability (ascending).
pub fn calibration_table(prob: &[f64], events: &[u8], groups: usize) -> Vec<CalibrationRow> {
    calibration_ordered(prob, events, groups, &order_desc(prob))
}

/// [`calibration_table`] with the order of [`order_desc`] given.
pub fn calibration_ordered(
    prob: &[f64],
    events: &[u8],
    groups: usize,
    idx_desc: &[u32],
) -> Vec<CalibrationRow> {
    let n = prob.len();
    let mut idx = idx_desc.to_vec();
    idx.reverse();
    let mut out = Vec::new();
    for g in 0..groups {
        let a = g * n / groups;
        let b = (g + 1) * n / groups;
        if b <= a {
            continue;
        }
        let m = (b - a) as f64;
        let mp = idx[a..b].iter().map(|&i| prob[i as usize]).sum::<f64>() / m;
        let ob = idx[a..b]
            .iter()
            .filter(|&&i| events[i as usize] == 1)
            .count() as f64
            / m;
        out.push(CalibrationRow {
            group: g + 1,
            rows: b - a,
            mean_predicted: mp,
            observed_rate: ob,
        });
    }
    out
}

/// Brier score: mean squared error of the probabilities.
pub fn brier(prob: &[f64], events: &[u8]) -> f64 {
    prob.iter()
        .zip(events)
        .map(|(p, &e)| (p - e as f64).powi(2))
        .sum::<f64>()
        / prob.len().max(1) as f64
}

/// One bin of a PSI table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsiBin {
    /// Lower bound (exclusive; `None` = −∞) and upper bound (inclusive; `None` = +∞).
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub expected_count: usize,
    pub actual_count: usize,
    pub expected_share: f64,
    pub actual_share: f64,
    pub contribution: f64,
}

/// Population stability index and its table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsiReport {
    pub psi: f64,
    pub bins: Vec<PsiBin>,
}

/// Share used in place of an empty bin's share in PSI (avoids ln 0).
pub const PSI_EMPTY_SHARE: f64 = 1e-4;

/// PSI = Σ (a − e)·ln(a / e) over bins cut at the quantiles of `expected`
/// (at most `bins` bins; equal cut points are merged). An empty bin's share is
/// replaced by [`PSI_EMPTY_SHARE`]. NaN values are ignored.
pub fn psi(expected: &[f64], actual: &[f64], bins: usize) -> PsiReport {
    let mut e: Vec<f64> = expected.iter().copied().filter(|v| !v.is_nan()).collect();
    let a: Vec<f64> = actual.iter().copied().filter(|v| !v.is_nan()).collect();
    e.sort_unstable_by(|x, y| x.total_cmp(y));
    let bins = bins.max(1);
    let mut cuts: Vec<f64> = Vec::new();
    if !e.is_empty() {
        for i in 1..bins {
            let v = e[(i * e.len() / bins).min(e.len() - 1)];
            if v < e[e.len() - 1] && cuts.last().is_none_or(|&l| v > l) {
                cuts.push(v);
            }
        }
    }
    // bin k holds cuts[k-1] < x <= cuts[k]
    let k = cuts.len() + 1;
    let mut ec = vec![0usize; k];
    let mut ac = vec![0usize; k];
    for &v in &e {
        ec[cuts.partition_point(|&c| c < v)] += 1;
    }
    for &v in &a {
        ac[cuts.partition_point(|&c| c < v)] += 1;
    }
    let (ne, na) = (e.len().max(1) as f64, a.len().max(1) as f64);
    let mut out = Vec::with_capacity(k);
    let mut total = 0.0;
    for i in 0..k {
        let es = ec[i] as f64 / ne;
        let as_ = ac[i] as f64 / na;
        let (es2, as2) = (es.max(PSI_EMPTY_SHARE), as_.max(PSI_EMPTY_SHARE));
        let c = (as2 - es2) * (as2 / es2).ln();
        total += c;
        out.push(PsiBin {
            lower: if i == 0 { None } else { Some(cuts[i - 1]) },
            upper: if i == k - 1 { None } else { Some(cuts[i]) },
            expected_count: ec[i],
            actual_count: ac[i],
            expected_share: es,
            actual_share: as_,
            contribution: c,
        });
    }
    PsiReport {
        psi: total,
        bins: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auc_pairs(risk: &[f64], ev: &[u8]) -> f64 {
        let (mut s, mut c) = (0.0, 0.0);
        for i in 0..risk.len() {
            for j in 0..risk.len() {
                if ev[i] == 1 && ev[j] == 0 {
                    c += 1.0;
                    s += if risk[i] > risk[j] {
                        1.0
                    } else if risk[i] == risk[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        s / c
    }

    #[test]
    fn order_desc_is_descending_total_order_ties_by_row() {
        let r = [
            0.5,
            -0.0,
            0.0,
            0.5,
            f64::NEG_INFINITY,
            1e-300,
            -2.0,
            0.5,
            1.0,
        ];
        let mut want: Vec<u32> = (0..r.len() as u32).collect();
        want.sort_by(|&a, &b| r[b as usize].total_cmp(&r[a as usize]).then(a.cmp(&b)));
        assert_eq!(order_desc(&r), want);
    }

    #[test]
    fn auc_matches_pair_count_with_ties() {
        let mut s: u64 = 7;
        for _ in 0..20 {
            let n = 200;
            let risk: Vec<f64> = (0..n)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 33) % 17) as f64
                })
                .collect();
            let ev: Vec<u8> = (0..n)
                .map(|i| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (((s >> 33) % 20) as f64) < risk[i] + 2.0
                } as u8)
                .collect();
            assert!((auc(&risk, &ev) - auc_pairs(&risk, &ev)).abs() < 1e-12);
        }
    }

    #[test]
    fn ks_and_auc_of_perfect_and_inverse_rankings() {
        let r = [0.9, 0.8, 0.3, 0.1];
        let e = [1, 1, 0, 0];
        assert_eq!(auc(&r, &e), 1.0);
        assert_eq!(ks(&r, &e).0, 1.0);
        assert_eq!(ks(&r, &e).1, 0.8);
        let e2 = [0, 0, 1, 1];
        assert_eq!(auc(&r, &e2), 0.0);
        assert_eq!(ks(&r, &e2).0, 0.0);
    }

    #[test]
    fn ks_equals_max_gap_of_roc_and_gains() {
        let risk: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64).collect();
        let ev: Vec<u8> = (0..1000)
            .map(|i| (((i * 53) % 97) as f64) < risk[i] * 0.6)
            .map(|b| b as u8)
            .collect();
        let (k, _) = ks(&risk, &ev);
        let brute = roc_curve(&risk, &ev)
            .iter()
            .map(|(f, t)| t - f)
            .fold(0.0, f64::max);
        assert!((k - brute).abs() < 1e-12);
        let g = gains_table(&risk, &ev, 10);
        assert_eq!(g.len(), 10);
        assert_eq!(g.iter().map(|r| r.rows).sum::<usize>(), 1000);
        assert!((g[9].cum_event_share - 1.0).abs() < 1e-12);
        assert!(g.iter().all(|r| r.ks <= k + 1e-12));
    }

    #[test]
    fn psi_zero_for_same_and_positive_for_shift() {
        let a: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        assert!(psi(&a, &a, 10).psi.abs() < 1e-12);
        let b: Vec<f64> = (0..1000).map(|i| i as f64 + 300.0).collect();
        let r = psi(&a, &b, 10);
        assert!(r.psi > 0.25, "{}", r.psi);
        let manual: f64 = r
            .bins
            .iter()
            .map(|x| {
                let (e, a) = (
                    x.expected_share.max(PSI_EMPTY_SHARE),
                    x.actual_share.max(PSI_EMPTY_SHARE),
                );
                (a - e) * (a / e).ln()
            })
            .sum();
        assert!((manual - r.psi).abs() < 1e-12);
        assert_eq!(r.bins.iter().map(|b| b.expected_count).sum::<usize>(), 1000);
    }
}
