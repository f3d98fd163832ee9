//! Scoring throughput: a 15-variable scorecard over N records (default 10,000,000)
//! on one core. Prints records/s of the compiled columnar scorer beside two
//! baselines measured in the same run: a straightforward per-record scorer
//! (binary search of each value's bin, as one would first write it) and a plain
//! sum of the 15 columns (the memory-bandwidth floor).
//! `cargo run --release --example score_bench -- [N]`

use kehu_scorecard::{train, Column, Dataset, TrainConfig};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("N"))
        .unwrap_or(10_000_000);
    let k = 15;
    let mut s: u64 = 20240917;
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    // 15 columns; 2% missing values in each
    let cols: Vec<Vec<f64>> = (0..k)
        .map(|_| {
            (0..n)
                .map(|_| {
                    if rnd() < 0.02 {
                        f64::NAN
                    } else {
                        (rnd() * 1000.0).round() / 10.0
                    }
                })
                .collect()
        })
        .collect();
    // train on the first 200k rows with a known logit so that all 15 variables enter
    let m = 200_000.min(n);
    let y: Vec<u8> = (0..m)
        .map(|i| {
            let logit = -2.0
                + (0..k)
                    .map(|j| {
                        if cols[j][i].is_nan() {
                            0.5
                        } else {
                            0.01 * cols[j][i] * if j % 2 == 0 { 1.0 } else { -1.0 }
                        }
                    })
                    .sum::<f64>()
                    * 0.5;
            (rnd() < 1.0 / (1.0 + (-logit).exp())) as u8
        })
        .collect();
    let train_cols: Vec<Column> = (0..k)
        .map(|j| Column::numeric(format!("v{j:02}"), cols[j][..m].to_vec()))
        .collect();
    let ds = Dataset::from_columns("y", y, train_cols).unwrap();
    let mut cfg = TrainConfig::default();
    cfg.selection.min_iv = 0.0;
    cfg.selection.max_corr = 1.0;
    let model = train(&ds, &cfg, &mut |_| {}).unwrap();
    assert_eq!(
        model.variables.len(),
        k,
        "all 15 variables in the scorecard"
    );
    let bins: usize = model.variables.iter().map(|v| v.binning.bins.len()).sum();
    let names = model.variable_names();
    let refs: Vec<&[f64]> = names
        .iter()
        .map(|nm| cols[nm[1..].parse::<usize>().unwrap()].as_slice())
        .collect();

    // 1. compiled columnar scorer
    let scorer = model.numeric_scorer().unwrap();
    let mut out = vec![0.0; n];
    let t = Instant::now();
    scorer.score_columns(&refs, &mut out);
    let fast = t.elapsed().as_secs_f64();
    let checksum: f64 = black_box(&out).iter().sum();

    // 2. baseline: per record, per variable, binary search of the bin
    struct Var {
        cuts: Vec<f64>,
        pts: Vec<f64>,
        missing: f64,
    }
    let vars: Vec<Var> = model
        .variables
        .iter()
        .map(|v| {
            let mut ranges: Vec<(f64, f64)> = Vec::new();
            let mut missing = 0.0;
            for (b, p) in v.binning.bins.iter().zip(&v.points) {
                match &b.rule {
                    kehu_scorecard::BinRule::Range { lo, .. } => {
                        ranges.push((lo.unwrap_or(f64::NEG_INFINITY), *p))
                    }
                    kehu_scorecard::BinRule::Missing => missing = *p,
                    _ => {}
                }
            }
            ranges.sort_by(|a, b| a.0.total_cmp(&b.0));
            Var {
                cuts: ranges[1..].iter().map(|r| r.0).collect(),
                pts: ranges.iter().map(|r| r.1).collect(),
                missing,
            }
        })
        .collect();
    let mut out2 = vec![0.0; n];
    let t = Instant::now();
    for i in 0..n {
        let mut tot = model.scaling.base_points;
        for (v, c) in vars.iter().zip(&refs) {
            let x = c[i];
            tot += if x.is_nan() {
                v.missing
            } else {
                v.pts[v.cuts.partition_point(|&cut| cut <= x)]
            };
        }
        out2[i] = tot;
    }
    let base = t.elapsed().as_secs_f64();
    assert_eq!(out, out2, "both scorers agree");

    // 3. floor: plain column sum
    let mut out3 = vec![0.0; n];
    let t = Instant::now();
    for c in &refs {
        for (o, &x) in out3.iter_mut().zip(c.iter()) {
            *o += x;
        }
    }
    let floor = t.elapsed().as_secs_f64();
    black_box(&out3);

    let rate = |s: f64| n as f64 / s;
    println!("scoring {n} records x {k} variables ({bins} bins in all), one thread; checksum {checksum:.0}");
    println!(
        "  kehu columnar scorer      {:>8.3} s  {:>12.0} records/s",
        fast,
        rate(fast)
    );
    println!(
        "  baseline per-record bsearch {:>6.3} s  {:>12.0} records/s  (kehu is {:.2}x)",
        base,
        rate(base),
        base / fast
    );
    println!("  floor: sum of 15 columns  {:>8.3} s  {:>12.0} records/s  (kehu at {:.0}% of the floor's speed)", floor, rate(floor), 100.0 * floor / fast);
    println!("{{\"bench\":\"score\",\"records\":{n},\"vars\":{k},\"records_per_s\":{:.0},\"baseline_records_per_s\":{:.0},\"speedup_vs_baseline\":{:.2}}}", rate(fast), rate(base), base / fast);
}
