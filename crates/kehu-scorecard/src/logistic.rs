//! Logistic regression by Newton's method (IRLS) with optional L2, and the small
//! dense linear algebra it needs (Cholesky of a p×p matrix).

use crate::error::{Error, Result};

/// Cholesky factor `L` (row-major, lower) of a symmetric positive definite matrix.
pub fn cholesky(a: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    Some(l)
}

/// Solves `L Lᵀ x = b`.
pub fn chol_solve(l: &[f64], p: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..p {
        let mut s = y[i];
        for k in 0..i {
            s -= l[i * p + k] * y[k];
        }
        y[i] = s / l[i * p + i];
    }
    for i in (0..p).rev() {
        let mut s = y[i];
        for k in i + 1..p {
            s -= l[k * p + i] * y[k];
        }
        y[i] = s / l[i * p + i];
    }
    y
}

/// Diagonal of the inverse from a Cholesky factor.
pub fn chol_inv_diag(l: &[f64], p: usize) -> Vec<f64> {
    (0..p)
        .map(|j| {
            let mut e = vec![0.0; p];
            e[j] = 1.0;
            chol_solve(l, p, &e)[j]
        })
        .collect()
}

/// Upper tail of the standard normal doubled: two-sided p-value of z.
pub fn p_value_two_sided(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Complementary error function (W. J. Cody's rational approximations are
/// overkill here; this is Numerical Recipes' erfc with relative error < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let i = c * 8;
        for k in 0..8 {
            acc[k] += a[i + k] * b[i + k];
        }
    }
    let mut s = 0.0;
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    s + acc.iter().sum::<f64>()
}

const CHUNK: usize = 1024;

/// Sums over the rows `rows` for one Newton step: log-likelihood, gradient and
/// the upper triangle of Xᵀ W X, with the design `[1, cols...]`.
fn pass_rows(
    cols: &[&[f64]],
    y: &[u8],
    beta: &[f64],
    want_hess: bool,
    rows: std::ops::Range<usize>,
) -> (f64, Vec<f64>, Vec<f64>) {
    let n = rows.end;
    let p = cols.len() + 1;
    let mut ll = 0.0;
    let mut grad = vec![0.0; p];
    let mut hess = vec![0.0; p * p];
    let mut eta = vec![0.0; CHUNK];
    let mut r = vec![0.0; CHUNK];
    let mut w = vec![0.0; CHUNK];
    let mut wx = vec![0.0; CHUNK * cols.len()];
    let mut start = rows.start;
    while start < n {
        let m = CHUNK.min(n - start);
        let eta = &mut eta[..m];
        eta.fill(beta[0]);
        for (j, c) in cols.iter().enumerate() {
            let bj = beta[j + 1];
            for (e, &x) in eta.iter_mut().zip(&c[start..start + m]) {
                *e += bj * x;
            }
        }
        let (mut sr, mut sw) = (0.0, 0.0);
        for i in 0..m {
            let e = eta[i];
            let yi = y[start + i] as f64;
            // log(1 + exp(e)) and the probability from one exponential, stable
            let z = (-e.abs()).exp();
            let sp = e.max(0.0) + z.ln_1p();
            ll += yi * e - sp;
            let pr = if e >= 0.0 {
                1.0 / (1.0 + z)
            } else {
                z / (1.0 + z)
            };
            r[i] = yi - pr;
            w[i] = pr * (1.0 - pr);
            sr += r[i];
            sw += w[i];
        }
        grad[0] += sr;
        if want_hess {
            hess[0] += sw;
        }
        for (j, c) in cols.iter().enumerate() {
            let cj = &c[start..start + m];
            grad[j + 1] += dot(cj, &r[..m]);
            if want_hess {
                let wxj = &mut wx[j * CHUNK..j * CHUNK + m];
                for ((o, &a), &b) in wxj.iter_mut().zip(cj).zip(&w[..m]) {
                    *o = a * b;
                }
                let wxj = &wx[j * CHUNK..j * CHUNK + m];
                hess[j + 1] += wxj.iter().sum::<f64>();
                for (l, cl) in cols.iter().enumerate().take(j + 1) {
                    hess[(l + 1) * p + (j + 1)] += dot(wxj, &cl[start..start + m]);
                }
            }
        }
        start += m;
    }
    (ll, grad, hess)
}

/// Rows per block of [`pass`]: blocks are summed in order, so the result does not
/// depend on the number of threads.
const BLOCK: usize = 1 << 15;

/// Log-likelihood, gradient and Xᵀ W X of some rows.
type Sums = (f64, Vec<f64>, Vec<f64>);

/// Sums over all rows for one Newton step: log-likelihood, gradient and Xᵀ W X,
/// with the design `[1, cols...]`; blocks of rows run on `threads` threads.
fn pass(
    cols: &[&[f64]],
    y: &[u8],
    beta: &[f64],
    want_hess: bool,
    threads: usize,
) -> (f64, Vec<f64>, Vec<f64>) {
    let n = y.len();
    let p = cols.len() + 1;
    let nb = n.div_ceil(BLOCK).max(1);
    let block = |b: usize| {
        pass_rows(
            cols,
            y,
            beta,
            want_hess,
            b * BLOCK..((b + 1) * BLOCK).min(n),
        )
    };
    let threads = threads.clamp(1, nb);
    let parts: Vec<Sums> = if threads > 1 {
        let mut slots: Vec<Option<Sums>> = (0..nb).map(|_| None).collect();
        std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    let block = &block;
                    sc.spawn(move || {
                        (t..nb)
                            .step_by(threads)
                            .map(|b| (b, block(b)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in hs {
                for (b, r) in h.join().expect("logistic pass thread panicked") {
                    slots[b] = Some(r);
                }
            }
        });
        slots
            .into_iter()
            .map(|r| r.expect("every block summed"))
            .collect()
    } else {
        (0..nb).map(block).collect()
    };
    let mut ll = 0.0;
    let mut grad = vec![0.0; p];
    let mut hess = vec![0.0; p * p];
    for (l, g, h) in parts {
        ll += l;
        for (a, b) in grad.iter_mut().zip(&g) {
            *a += b;
        }
        for (a, b) in hess.iter_mut().zip(&h) {
            *a += b;
        }
    }
    // symmetric fill
    for i in 0..p {
        for j in 0..i {
            hess[i * p + j] = hess[j * p + i];
        }
    }
    (ll, grad, hess)
}

/// A fitted logistic regression `P(event) = 1 / (1 + exp(−(β0 + Σ βj xj)))`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogitFit {
    /// Intercept first, then one coefficient per column.
    pub coef: Vec<f64>,
    pub std_err: Vec<f64>,
    pub p_value: Vec<f64>,
    /// Unpenalised log-likelihood at the solution.
    pub loglik: f64,
    pub iterations: usize,
    pub n: usize,
}

impl LogitFit {
    /// Akaike information criterion −2·loglik + 2k.
    pub fn aic(&self) -> f64 {
        -2.0 * self.loglik + 2.0 * self.coef.len() as f64
    }
    /// Bayesian information criterion −2·loglik + k·ln n.
    pub fn bic(&self) -> f64 {
        -2.0 * self.loglik + self.coef.len() as f64 * (self.n as f64).ln()
    }
}

/// Fits a logistic regression on the columns (an intercept is added).
/// `l2` penalises the coefficients, not the intercept.
pub fn fit_logistic(
    cols: &[&[f64]],
    y: &[u8],
    l2: f64,
    max_iter: usize,
    tol: f64,
    warm_start_rows: usize,
) -> Result<LogitFit> {
    fit_logistic_threads(cols, y, l2, max_iter, tol, warm_start_rows, 1)
}

/// [`fit_logistic`] with the sums over rows on `threads` threads (the result does
/// not depend on the number of threads).
pub fn fit_logistic_threads(
    cols: &[&[f64]],
    y: &[u8],
    l2: f64,
    max_iter: usize,
    tol: f64,
    warm_start_rows: usize,
    threads: usize,
) -> Result<LogitFit> {
    let n = y.len();
    let p = cols.len() + 1;
    let mut beta = vec![0.0; p];
    let ybar = y.iter().map(|&v| v as f64).sum::<f64>() / n.max(1) as f64;
    if ybar <= 0.0 || ybar >= 1.0 {
        return Err(Error::Fit("the target has a single class".into()));
    }
    beta[0] = (ybar / (1.0 - ybar)).ln();
    let mut total_iter = 0;
    if warm_start_rows > 0 && n > 2 * warm_start_rows {
        let stride = n / warm_start_rows;
        let sub_cols: Vec<Vec<f64>> = cols
            .iter()
            .map(|c| c.iter().step_by(stride).copied().collect())
            .collect();
        let sub_y: Vec<u8> = y.iter().step_by(stride).copied().collect();
        let refs: Vec<&[f64]> = sub_cols.iter().map(|c| c.as_slice()).collect();
        // the penalty scales with the sample so the warm start aims at the same optimum
        let scale = sub_y.len() as f64 / n as f64;
        let (b, it, _, _) = newton(
            &refs,
            &sub_y,
            beta.clone(),
            l2 * scale,
            max_iter,
            tol.max(1e-6),
            threads,
        )?;
        beta = b;
        total_iter += it;
    }
    let (beta, it, ll, mut h) = newton(cols, y, beta, l2, max_iter, tol, threads)?;
    total_iter += it;
    for j in 1..p {
        h[j * p + j] += l2;
    }
    let l = cholesky(&h, p).ok_or_else(|| {
        Error::Fit(
            "the information matrix is singular (a variable is constant or duplicated)".into(),
        )
    })?;
    let var = chol_inv_diag(&l, p);
    let std_err: Vec<f64> = var.iter().map(|v| v.max(0.0).sqrt()).collect();
    let p_value = beta
        .iter()
        .zip(&std_err)
        .map(|(b, s)| {
            if *s > 0.0 {
                p_value_two_sided(b / s)
            } else {
                1.0
            }
        })
        .collect();
    Ok(LogitFit {
        coef: beta,
        std_err,
        p_value,
        loglik: ll,
        iterations: total_iter,
        n,
    })
}

fn newton(
    cols: &[&[f64]],
    y: &[u8],
    mut beta: Vec<f64>,
    l2: f64,
    max_iter: usize,
    tol: f64,
    threads: usize,
) -> Result<(Vec<f64>, usize, f64, Vec<f64>)> {
    let p = beta.len();
    let pen = |b: &[f64]| 0.5 * l2 * b[1..].iter().map(|x| x * x).sum::<f64>();
    let (mut ll, mut g, mut h) = pass(cols, y, &beta, true, threads);
    let mut obj = ll - pen(&beta);
    for it in 0..max_iter {
        for j in 1..p {
            g[j] -= l2 * beta[j];
            h[j * p + j] += l2;
        }
        let l = match cholesky(&h, p) {
            Some(l) => l,
            None => {
                // ridge the step if the matrix is not positive definite
                let mut h2 = h.clone();
                for j in 0..p {
                    h2[j * p + j] += 1e-6 * (1.0 + h[j * p + j].abs());
                }
                cholesky(&h2, p).ok_or_else(|| Error::Fit("singular information matrix".into()))?
            }
        };
        let delta = chol_solve(&l, p, &g);
        let mut step = 1.0;
        loop {
            let cand: Vec<f64> = beta.iter().zip(&delta).map(|(b, d)| b + step * d).collect();
            let (ll2, g2, h2) = pass(cols, y, &cand, true, threads);
            let obj2 = ll2 - pen(&cand);
            if obj2 >= obj - 1e-12 * obj.abs().max(1.0) || step < 1e-6 {
                let moved = delta.iter().map(|d| (d * step).abs()).fold(0.0, f64::max);
                beta = cand;
                ll = ll2;
                obj = obj2;
                g = g2;
                h = h2;
                if moved < tol {
                    return Ok((beta, it + 1, ll, h));
                }
                break;
            }
            step *= 0.5;
        }
        if !beta.iter().all(|b| b.is_finite()) {
            return Err(Error::Fit(
                "coefficients diverged (perfect separation?)".into(),
            ));
        }
    }
    Ok((beta, max_iter, ll, h))
}

/// Weighted-free Gram statistics for Pearson correlations of columns.
pub fn correlation_matrix(cols: &[&[f64]]) -> Vec<f64> {
    let k = cols.len();
    if k == 0 {
        return Vec::new();
    }
    let n = cols[0].len() as f64;
    let means: Vec<f64> = cols.iter().map(|c| c.iter().sum::<f64>() / n).collect();
    let mut cov = vec![0.0; k * k];
    let mut centered = vec![0.0; CHUNK * k];
    let len = cols[0].len();
    let mut start = 0;
    while start < len {
        let m = CHUNK.min(len - start);
        for j in 0..k {
            let dst = &mut centered[j * CHUNK..j * CHUNK + m];
            for (d, &x) in dst.iter_mut().zip(&cols[j][start..start + m]) {
                *d = x - means[j];
            }
        }
        for j in 0..k {
            for l in 0..=j {
                cov[l * k + j] += dot(
                    &centered[j * CHUNK..j * CHUNK + m],
                    &centered[l * CHUNK..l * CHUNK + m],
                );
            }
        }
        start += m;
    }
    let mut corr = vec![0.0; k * k];
    for j in 0..k {
        for l in 0..=j {
            let d = (cov[j * k + j] * cov[l * k + l]).sqrt();
            let c = if d > 0.0 { cov[l * k + j] / d } else { 0.0 };
            corr[j * k + l] = c;
            corr[l * k + j] = c;
        }
    }
    corr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves() {
        let a = vec![4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        let x = chol_solve(&l, 3, &[1.0, 2.0, 3.0]);
        for i in 0..3 {
            let s: f64 = (0..3).map(|j| a[i * 3 + j] * x[j]).sum();
            assert!((s - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
    }

    #[test]
    fn erfc_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((p_value_two_sided(1.959964) - 0.05).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842700793).abs() < 1e-6);
    }

    #[test]
    fn logistic_recovers_coefficients_and_gradient_is_zero() {
        // deterministic pseudo-random data with known logit -1 + 1.5 x1 - 0.7 x2
        let n = 20000;
        let mut s: u64 = 42;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let x1: Vec<f64> = (0..n).map(|_| rnd() * 2.0 - 1.0).collect();
        let x2: Vec<f64> = (0..n).map(|_| rnd() * 2.0 - 1.0).collect();
        let y: Vec<u8> = (0..n)
            .map(|i| (rnd() < 1.0 / (1.0 + (-(-1.0 + 1.5 * x1[i] - 0.7 * x2[i])).exp())) as u8)
            .collect();
        let fit = fit_logistic(&[&x1, &x2], &y, 0.0, 50, 1e-10, 0).unwrap();
        assert!((fit.coef[1] - 1.5).abs() < 0.15, "{:?}", fit.coef);
        assert!((fit.coef[2] + 0.7).abs() < 0.15, "{:?}", fit.coef);
        let (_, g, _) = pass(&[&x1, &x2], &y, &fit.coef, false, 2);
        assert!(g.iter().all(|v| v.abs() < 1e-6), "{g:?}");
        // the warm start reaches the same optimum
        let fit2 = fit_logistic(&[&x1, &x2], &y, 0.0, 50, 1e-10, 5000).unwrap();
        for (a, b) in fit.coef.iter().zip(&fit2.coef) {
            assert!((a - b).abs() < 1e-8);
        }
        assert!(fit.p_value[1] < 1e-10);
        // L2 shrinks
        let fit3 = fit_logistic(&[&x1, &x2], &y, 5000.0, 50, 1e-10, 0).unwrap();
        assert!(fit3.coef[1].abs() < fit.coef[1].abs());
    }

    #[test]
    fn correlation_of_linear_columns() {
        let a: Vec<f64> = (0..3000).map(|i| i as f64).collect();
        let b: Vec<f64> = a.iter().map(|v| -2.0 * v + 1.0).collect();
        let c = correlation_matrix(&[&a, &b]);
        assert!((c[1] + 1.0).abs() < 1e-12);
        assert!((c[0] - 1.0).abs() < 1e-12);
    }
}
