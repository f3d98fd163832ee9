//! Trains a scorecard on a CSV file and prints AUC / KS / time / peak RSS.
//!
//! ```text
//! cargo run --release --example train_csv -- --data FILE.csv --target y --event 1
//!     [--split SPLIT.csv]   # row_id,set (train/test): fit on train rows, report test
//!     [--config model.toml] [--out model.json] [--report report.html] [--threads N] [--quiet]
//! ```
//! Prints one JSON line with the figures at the end (read by bench/scorecard/run.sh).

use kehu_scorecard::{report_html, train, validate, Dataset, TrainConfig};
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let quiet = args.iter().any(|a| a == "--quiet");
    let data = get("--data").expect("--data FILE.csv");
    let target = get("--target").expect("--target COLUMN");
    let event = get("--event").expect("--event VALUE");
    let t0 = Instant::now();
    let mut cfg = match get("--config") {
        Some(p) => TrainConfig::from_toml_file(&p).unwrap_or_else(|e| panic!("{e}")),
        None => TrainConfig::default(),
    };
    let threads: usize = get("--threads")
        .map(|t| t.parse().expect("--threads N"))
        .unwrap_or(1);
    cfg.threads = threads;
    let opts = kehu_scorecard::CsvOptions {
        threads,
        ..Default::default()
    };
    let ds = Dataset::from_csv_with(&data, &target, &event, &opts).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let t_read = t0.elapsed().as_secs_f64();
    let (tr, te) = match get("--split") {
        Some(sp) => {
            let text = std::fs::read_to_string(&sp).expect("split file");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split(',').collect();
                let r: usize = f[0].parse().expect("row_id");
                if f[1] == "train" {
                    a.push(r)
                } else {
                    b.push(r)
                }
            }
            (ds.take_rows(&a), Some(ds.take_rows(&b)))
        }
        None => (ds, None),
    };
    let mut prog = |l: &str| {
        if !quiet {
            eprintln!("[{:7.3}s] {l}", t0.elapsed().as_secs_f64())
        }
    };
    let t1 = Instant::now();
    let model = train(&tr, &cfg, &mut prog).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let t_train = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let samples: Vec<(&str, &Dataset)> = match &te {
        Some(te) => vec![("train", &tr), ("test", te)],
        None => vec![("train", &tr)],
    };
    let v = validate(&model, &samples).expect("validate");
    let t_val = t2.elapsed().as_secs_f64();
    let total = t0.elapsed().as_secs_f64();
    if let Some(o) = get("--out") {
        model.save(&o).expect("save");
    }
    if let Some(r) = get("--report") {
        std::fs::write(&r, report_html(&model, &v)).expect("report");
    }
    if !quiet {
        for mv in &model.variables {
            eprintln!(
                "  {:<50} iv {:.4} coef {:+.4} p {:.4} bins {}",
                mv.binning.name,
                mv.binning.iv,
                mv.coefficient,
                mv.p_value,
                mv.binning.bins.len()
            );
        }
        for w in &model.warnings {
            eprintln!("  warning: {w}");
        }
    }
    let last = v.samples.last().unwrap();
    let first = &v.samples[0];
    println!(
        "{{\"tool\":\"kehu\",\"threads\":{},\"vars\":{},\"train_auc\":{:.4},\"train_ks\":{:.4},\"auc\":{:.4},\"ks\":{:.4},\"read_s\":{:.3},\"train_s\":{:.3},\"validate_s\":{:.3},\"wall_s\":{:.3},\"peak_rss_mb\":{:.0}}}",
        threads, model.variables.len(), first.auc, first.ks, last.auc, last.ks, t_read, t_train, t_val, total, peak_rss_mb()
    );
}
