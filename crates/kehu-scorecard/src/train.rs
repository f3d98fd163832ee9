//! The training pipeline: checks → binning → IV filter → WoE correlation filter
//! → logistic regression (optionally stepwise) → points.

use crate::binning::{bin_column, VariableBinning};
use crate::config::{Criterion, DegeneratePolicy, Stepwise, TrainConfig};
use crate::data::{ColumnData, Dataset, MISSING_CODE};
use crate::error::{Error, Result};
use crate::logistic::{correlation_matrix, fit_logistic_threads, LogitFit};
use crate::model::{
    Candidate, Model, ModelVariable, Scaling, TrainingSummary, MODEL_FORMAT, MODEL_FORMAT_VERSION,
};

struct Binned {
    vb: VariableBinning,
    idx: Vec<u16>,
    missing_share: f64,
}

fn degenerate(col: &crate::data::Column) -> Option<(bool, String)> {
    // Some((all_missing, single_value))
    match &col.data {
        ColumnData::Numeric(x) => {
            let mut first: Option<f64> = None;
            let mut has_missing = false;
            for &v in x {
                if v.is_nan() {
                    has_missing = true;
                    continue;
                }
                match first {
                    None => first = Some(v),
                    Some(f) if f != v => return None,
                    _ => {}
                }
            }
            match first {
                None => Some((true, String::new())),
                Some(f) if !has_missing => Some((false, format!("{f}"))),
                _ => None,
            }
        }
        ColumnData::Categorical { codes, levels } => {
            let mut first: Option<u32> = None;
            let mut has_missing = false;
            for &c in codes {
                if c == MISSING_CODE {
                    has_missing = true;
                    continue;
                }
                match first {
                    None => first = Some(c),
                    Some(f) if f != c => return None,
                    _ => {}
                }
            }
            match first {
                None => Some((true, String::new())),
                Some(f) if !has_missing => Some((false, levels[f as usize].clone())),
                _ => None,
            }
        }
    }
}

/// Trains a scorecard. `progress` receives one line per step (for a CLI).
pub fn train(ds: &Dataset, cfg: &TrainConfig, progress: &mut dyn FnMut(&str)) -> Result<Model> {
    cfg.validate()?;
    let n = ds.n_rows();
    let y = &ds.target;
    let events = ds.n_events();
    if events < cfg.min_events {
        return Err(Error::TooFewEvents {
            which: "events (bads)",
            label: ds.event.clone(),
            found: events,
            required: cfg.min_events,
        });
    }
    if n - events < cfg.min_events {
        return Err(Error::TooFewEvents {
            which: "non-events (goods)",
            label: ds.non_event.clone(),
            found: n - events,
            required: cfg.min_events,
        });
    }
    for name in cfg
        .include
        .iter()
        .chain(&cfg.exclude)
        .chain(cfg.overrides.iter().map(|o| &o.variable))
        .chain(cfg.variables.keys())
    {
        if ds.column(name).is_none() {
            return Err(Error::MissingColumn {
                path: ds.source.clone().into(),
                column: name.clone(),
                available: ds
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    progress(&format!(
        "training on {n} rows, {events} events ({:.2}%), {} columns",
        100.0 * events as f64 / n as f64,
        ds.columns.len()
    ));
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut binned: Vec<Binned> = Vec::new();
    let mut to_bin: Vec<&crate::data::Column> = Vec::new();
    let sel = &cfg.selection;
    for col in &ds.columns {
        if cfg.exclude.contains(&col.name)
            || (!cfg.include.is_empty() && !cfg.include.contains(&col.name))
        {
            continue;
        }
        let mut cand = Candidate {
            name: col.name.clone(),
            kind: None,
            iv: None,
            bins: 0,
            missing_share: col.missing_count() as f64 / n.max(1) as f64,
            status: String::new(),
        };
        if let Some((all_missing, value)) = degenerate(col) {
            if cfg.degenerate_columns == DegeneratePolicy::Error {
                return Err(if all_missing {
                    Error::AllMissingColumn {
                        column: col.name.clone(),
                    }
                } else {
                    Error::SingleValuedColumn {
                        column: col.name.clone(),
                        value,
                    }
                });
            }
            cand.status = if all_missing {
                "dropped: all values missing 全部缺失".into()
            } else {
                format!("dropped: single value `{value}` 单一值")
            };
            candidates.push(cand);
            continue;
        }
        if cand.missing_share > sel.max_missing_frac {
            cand.status = format!(
                "dropped: missing share {:.3} > {} 缺失率过高",
                cand.missing_share, sel.max_missing_frac
            );
            candidates.push(cand);
            continue;
        }
        candidates.push(cand);
        to_bin.push(col);
    }
    // Bin the columns, in parallel when configured (each column is independent).
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.threads
    }
    .max(1)
    .min(to_bin.len().max(1));
    let bin_one = |col: &crate::data::Column| {
        let manual = cfg.overrides.iter().rev().find(|o| o.variable == col.name);
        bin_column(col, y, &cfg.binning, cfg.variables.get(&col.name), manual)
    };
    let results: Vec<Result<(VariableBinning, Vec<u16>)>> = if threads > 1 {
        let mut slots: Vec<Option<Result<(VariableBinning, Vec<u16>)>>> =
            (0..to_bin.len()).map(|_| None).collect();
        std::thread::scope(|sc| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let to_bin = &to_bin;
                    let bin_one = &bin_one;
                    sc.spawn(move || {
                        (t..to_bin.len())
                            .step_by(threads)
                            .map(|i| (i, bin_one(to_bin[i])))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for (i, r) in h.join().expect("binning thread panicked") {
                    slots[i] = Some(r);
                }
            }
        });
        slots
            .into_iter()
            .map(|r| r.expect("every column binned"))
            .collect()
    } else {
        to_bin.iter().map(|c| bin_one(c)).collect()
    };
    for r in results {
        let (vb, idx) = r?;
        if let Some(cand) = candidates.iter_mut().find(|c| c.name == vb.name) {
            cand.kind = Some(vb.kind);
            cand.iv = Some(vb.iv);
            cand.bins = vb.bins.len();
        }
        progress(&format!(
            "binned {:<32} {:>3} bins  IV {:.4}  ({})",
            vb.name,
            vb.bins.len(),
            vb.iv,
            vb.method
        ));
        binned.push(Binned {
            vb,
            idx,
            missing_share: 0.0,
        });
    }
    let _ = binned.iter().map(|b| b.missing_share).sum::<f64>();
    let status_of = |candidates: &mut Vec<Candidate>, name: &str, s: String| {
        if let Some(c) = candidates.iter_mut().find(|c| c.name == name) {
            c.status = s;
        }
    };
    // IV filter
    let mut keep: Vec<usize> = Vec::new();
    for (i, b) in binned.iter().enumerate() {
        let manual = b.vb.manual.is_some();
        if b.vb.iv < sel.min_iv && !manual {
            status_of(
                &mut candidates,
                &b.vb.name,
                format!("dropped: IV {:.4} < {} 信息值过低", b.vb.iv, sel.min_iv),
            );
        } else if sel.max_iv.is_some_and(|m| b.vb.iv > m) && !manual {
            status_of(
                &mut candidates,
                &b.vb.name,
                format!(
                    "dropped: IV {:.4} > {} 信息值过高（疑似泄露）",
                    b.vb.iv,
                    sel.max_iv.unwrap_or(0.0)
                ),
            );
        } else {
            keep.push(i);
        }
    }
    keep.sort_by(|&a, &b| binned[b].vb.iv.total_cmp(&binned[a].vb.iv));
    for &i in &keep {
        if binned[i].vb.iv > 0.5 {
            warnings.push(format!(
                "variable `{}` has IV {:.3} > 0.5: check it for leakage of the outcome",
                binned[i].vb.name, binned[i].vb.iv
            ));
        }
    }
    // WoE columns
    let woe_col = |b: &Binned| -> Vec<f64> {
        let w: Vec<f64> = b.vb.bins.iter().map(|x| x.woe).collect();
        b.idx.iter().map(|&k| w[k as usize]).collect()
    };
    let woes: Vec<Vec<f64>> = keep.iter().map(|&i| woe_col(&binned[i])).collect();
    progress(&format!(
        "{} variables with IV in range; checking WoE correlations",
        keep.len()
    ));
    // correlation filter, greedy by IV
    let refs: Vec<&[f64]> = woes.iter().map(|c| c.as_slice()).collect();
    let corr = correlation_matrix(&refs);
    let k = keep.len();
    let mut chosen: Vec<usize> = Vec::new(); // positions in keep
    for a in 0..k {
        let hit = chosen
            .iter()
            .find(|&&c| corr[a * k + c].abs() > sel.max_corr);
        if let Some(&c) = hit {
            let name = binned[keep[a]].vb.name.clone();
            let other = binned[keep[c]].vb.name.clone();
            status_of(
                &mut candidates,
                &name,
                format!(
                    "dropped: WoE correlation {:.3} with `{other}` (higher IV) 相关性过高",
                    corr[a * k + c]
                ),
            );
        } else {
            chosen.push(a);
        }
    }
    if let Some(m) = sel.max_vars {
        for &a in chosen.iter().skip(m) {
            status_of(
                &mut candidates,
                &binned[keep[a]].vb.name,
                format!("dropped: beyond max_vars = {m}"),
            );
        }
        chosen.truncate(m);
    }
    if chosen.is_empty() {
        return Err(Error::NoVariables(format!(
            "min_iv {}, max_corr {}",
            sel.min_iv, sel.max_corr
        )));
    }
    let rc = &cfg.regression;
    let fit_threads = if cfg.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.threads
    };
    let fit = |set: &[usize]| -> Result<LogitFit> {
        let cols: Vec<&[f64]> = set.iter().map(|&a| woes[a].as_slice()).collect();
        fit_logistic_threads(
            &cols,
            y,
            rc.l2,
            rc.max_iter,
            rc.tol,
            rc.warm_start_rows,
            fit_threads,
        )
    };
    // stepwise
    if sel.stepwise != Stepwise::None {
        progress(&format!(
            "stepwise ({:?}, {:?}) over {} variables",
            sel.stepwise,
            sel.criterion,
            chosen.len()
        ));
        let before = chosen.clone();
        chosen = stepwise(
            &chosen,
            sel.stepwise,
            sel.criterion,
            sel.p_enter,
            sel.p_remove,
            &fit,
        )?;
        for a in before {
            if !chosen.contains(&a) {
                status_of(
                    &mut candidates,
                    &binned[keep[a]].vb.name,
                    "dropped: stepwise 逐步回归剔除".into(),
                );
            }
        }
        if chosen.is_empty() {
            return Err(Error::NoVariables("stepwise selection kept none".into()));
        }
    }
    progress(&format!(
        "fitting logistic regression on {} variables",
        chosen.len()
    ));
    let mut lf = fit(&chosen)?;
    if sel.drop_wrong_sign {
        loop {
            let worst = (0..chosen.len())
                .filter(|&j| lf.coef[j + 1] < 0.0)
                .max_by(|&a, &b| lf.p_value[a + 1].total_cmp(&lf.p_value[b + 1]));
            match worst {
                Some(j) if chosen.len() > 1 => {
                    let a = chosen.remove(j);
                    status_of(
                        &mut candidates,
                        &binned[keep[a]].vb.name,
                        format!(
                            "dropped: wrong-sign coefficient {:.4} 系数符号错误",
                            lf.coef[j + 1]
                        ),
                    );
                    lf = fit(&chosen)?;
                }
                _ => break,
            }
        }
    }
    let scaling = Scaling::new(&cfg.points, lf.coef[0]);
    let mut variables = Vec::new();
    for (j, &a) in chosen.iter().enumerate() {
        let b = &binned[keep[a]];
        let coef = lf.coef[j + 1];
        if coef < 0.0 {
            warnings.push(format!(
                "variable `{}`: coefficient {:.4} has the wrong sign (expected > 0 with WoE = ln(event%/non-event%)); its points run against its event rates 系数符号错误",
                b.vb.name, coef
            ));
        }
        if lf.p_value[j + 1] > 0.05 {
            warnings.push(format!(
                "variable `{}`: p-value {:.3} > 0.05 (not significant at 5%)",
                b.vb.name,
                lf.p_value[j + 1]
            ));
        }
        let points: Vec<f64> =
            b.vb.bins
                .iter()
                .map(|bin| {
                    let p = -scaling.factor * coef * bin.woe;
                    let p = if cfg.points.round { p.round() } else { p };
                    if p == 0.0 {
                        0.0
                    } else {
                        p
                    }
                })
                .collect();
        status_of(&mut candidates, &b.vb.name, "selected 入模".into());
        variables.push(ModelVariable {
            binning: b.vb.clone(),
            coefficient: coef,
            std_error: lf.std_err[j + 1],
            p_value: lf.p_value[j + 1],
            points,
            unseen_points: 0.0,
        });
    }
    progress(&format!(
        "done: {} variables, log-likelihood {:.3}, {} Newton iterations",
        variables.len(),
        lf.loglik,
        lf.iterations
    ));
    Ok(Model {
        format: MODEL_FORMAT.into(),
        format_version: MODEL_FORMAT_VERSION,
        name: cfg.name.clone(),
        training: TrainingSummary {
            source: ds.source.clone(),
            rows: n,
            events,
            columns: ds.columns.len(),
            target: ds.target_name.clone(),
            event: ds.event.clone(),
            non_event: ds.non_event.clone(),
        },
        intercept: lf.coef[0],
        intercept_std_error: lf.std_err[0],
        intercept_p_value: lf.p_value[0],
        scaling,
        variables,
        candidates,
        warnings,
        config: cfg.clone(),
    })
}

fn crit(f: &LogitFit, c: Criterion) -> f64 {
    match c {
        Criterion::Bic => f.bic(),
        _ => f.aic(),
    }
}

fn stepwise(
    all: &[usize],
    mode: Stepwise,
    c: Criterion,
    p_enter: f64,
    p_remove: f64,
    fit: &dyn Fn(&[usize]) -> Result<LogitFit>,
) -> Result<Vec<usize>> {
    let mut cur: Vec<usize> = if mode == Stepwise::Backward {
        all.to_vec()
    } else {
        Vec::new()
    };
    let mut cur_fit = fit(&cur)?;
    let max_steps = all.len() * 4 + 4;
    for _ in 0..max_steps {
        let mut changed = false;
        if mode != Stepwise::Backward {
            // try to add
            let mut best: Option<(usize, LogitFit, f64)> = None;
            for &a in all.iter().filter(|a| !cur.contains(a)) {
                let mut s = cur.clone();
                s.push(a);
                let f = fit(&s)?;
                let score = if c == Criterion::PValue {
                    f.p_value[s.len()]
                } else {
                    crit(&f, c)
                };
                if best.as_ref().is_none_or(|b| score < b.2) {
                    best = Some((a, f, score));
                }
            }
            if let Some((a, f, score)) = best {
                let accept = if c == Criterion::PValue {
                    score < p_enter
                } else {
                    score < crit(&cur_fit, c) - 1e-9
                };
                if accept {
                    cur.push(a);
                    cur_fit = f;
                    changed = true;
                }
            }
        }
        if mode != Stepwise::Forward && !cur.is_empty() {
            // try to remove
            if c == Criterion::PValue {
                let (j, p) =
                    cur_fit.p_value[1..]
                        .iter()
                        .enumerate()
                        .fold(
                            (0, -1.0),
                            |acc, (j, &p)| if p > acc.1 { (j, p) } else { acc },
                        );
                if p > p_remove {
                    cur.remove(j);
                    cur_fit = fit(&cur)?;
                    changed = true;
                }
            } else {
                let mut best: Option<(usize, LogitFit)> = None;
                for j in 0..cur.len() {
                    let mut s = cur.clone();
                    s.remove(j);
                    let f = fit(&s)?;
                    if best.as_ref().is_none_or(|b| crit(&f, c) < crit(&b.1, c)) {
                        best = Some((j, f));
                    }
                }
                if let Some((j, f)) = best {
                    if crit(&f, c) < crit(&cur_fit, c) - 1e-9 {
                        cur.remove(j);
                        cur_fit = f;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    Ok(cur)
}
