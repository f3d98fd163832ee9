//! Validation of a model on one or more samples (train, test, out-of-time).

use crate::data::Dataset;
use crate::error::Result;
use crate::metrics::{
    auc_ordered, brier, calibration_ordered, gains_ordered, gini, ks_ordered, order_desc, psi,
    roc_ordered, CalibrationRow, GainsRow, PsiReport,
};
use crate::model::Model;
use serde::{Deserialize, Serialize};

/// A point of the KS curve: share of the population taken from the riskiest
/// end and the cumulative shares of events and non-events in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KsPoint {
    pub population_share: f64,
    pub cum_event_share: f64,
    pub cum_non_event_share: f64,
}

/// Histogram of total scores, split by outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreHistogram {
    /// `edges.len() == events.len() + 1`; bin i is `[edges[i], edges[i+1])`, the last bin closed.
    pub edges: Vec<f64>,
    pub events: Vec<usize>,
    pub non_events: Vec<usize>,
}

/// Metrics of one sample. AUC, KS and the tables are computed on P(event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleMetrics {
    pub name: String,
    pub rows: usize,
    pub events: usize,
    pub auc: f64,
    pub ks: f64,
    pub gini: f64,
    pub brier: f64,
    pub mean_score: f64,
    /// ROC points (FPR, TPR), thinned to at most ~400 points for drawing.
    pub roc: Vec<(f64, f64)>,
    pub ks_curve: Vec<KsPoint>,
    pub gains: Vec<GainsRow>,
    pub calibration: Vec<CalibrationRow>,
    pub score_histogram: ScoreHistogram,
}

/// Validation results shown by the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub samples: Vec<SampleMetrics>,
    /// PSI of the total score of the second sample against the first (10 bins).
    pub psi: Option<PsiReport>,
    /// Free text put in the report header by the caller (e.g. a date); the library reads no clock.
    pub note: String,
}

fn thin<T: Clone>(v: &[T], max: usize) -> Vec<T> {
    if v.len() <= max {
        return v.to_vec();
    }
    let step = v.len() as f64 / max as f64;
    let mut out: Vec<T> = (0..max)
        .map(|i| v[(i as f64 * step) as usize].clone())
        .collect();
    out.push(v[v.len() - 1].clone());
    out
}

/// Scores each sample with the model and computes its metrics.
pub fn validate(model: &Model, samples: &[(&str, &Dataset)]) -> Result<Validation> {
    let mut scored = Vec::new();
    for (name, ds) in samples {
        let s = model.score_rows(ds, false)?; // totals and P(event) only
        scored.push((name.to_string(), s, &ds.target));
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, s, _) in &scored {
        for &t in &s.total {
            lo = lo.min(t);
            hi = hi.max(t);
        }
    }
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    let nb = 20usize;
    let width = ((hi - lo) / nb as f64).max(1e-9);
    let edges: Vec<f64> = (0..=nb).map(|i| lo + width * i as f64).collect();
    let mut out = Vec::new();
    for (name, s, y) in &scored {
        let order = order_desc(&s.p_event);
        let roc = roc_ordered(&s.p_event, y, &order);
        let (a, (k, _)) = (
            auc_ordered(&s.p_event, y, &order),
            ks_ordered(&s.p_event, y, &order, &roc),
        );
        let rows = y.len();
        let events = y.iter().filter(|&&e| e == 1).count();
        let (pe, pn) = (events as f64, (rows - events) as f64);
        let ks_curve: Vec<KsPoint> = roc
            .iter()
            .map(|&(f, t)| KsPoint {
                population_share: (t * pe + f * pn) / rows.max(1) as f64,
                cum_event_share: t,
                cum_non_event_share: f,
            })
            .collect();
        let mut hev = vec![0usize; nb];
        let mut hne = vec![0usize; nb];
        for (&t, &e) in s.total.iter().zip(y.iter()) {
            let b = (((t - lo) / width) as usize).min(nb - 1);
            if e == 1 {
                hev[b] += 1
            } else {
                hne[b] += 1
            }
        }
        out.push(SampleMetrics {
            name: name.clone(),
            rows,
            events,
            auc: a,
            ks: k,
            gini: gini(a),
            brier: brier(&s.p_event, y),
            mean_score: s.total.iter().sum::<f64>() / rows.max(1) as f64,
            roc: thin(&roc, 400),
            ks_curve: thin(&ks_curve, 400),
            gains: gains_ordered(&s.p_event, y, 10, &order),
            calibration: calibration_ordered(&s.p_event, y, 10, &order),
            score_histogram: ScoreHistogram {
                edges: edges.clone(),
                events: hev,
                non_events: hne,
            },
        });
    }
    let psi = if scored.len() >= 2 {
        Some(psi(&scored[0].1.total, &scored[1].1.total, 10))
    } else {
        None
    };
    Ok(Validation {
        samples: out,
        psi,
        note: String::new(),
    })
}
