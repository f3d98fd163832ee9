//! German credit (UCI Statlog) on the fixed 70/30 split of `shared/datasets`.
//! Fits on the train rows only with the default configuration and checks the
//! test figures against the issue's targets (the best Python tool on the same split).

use kehu_scorecard::{report_html, train, validate, Dataset, Model, TrainConfig};
use std::path::PathBuf;

fn datasets_dir() -> PathBuf {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())).join("../../../shared/datasets");
    assert!(
        dir.join("germancredit.csv").is_file() && dir.join("germancredit_split.csv").is_file(),
        "German credit fixtures not found at {} (expected shared/datasets next to the repository clone)",
        dir.display()
    );
    dir
}

fn split() -> (Dataset, Dataset) {
    let dir = datasets_dir();
    let ds = Dataset::from_csv(dir.join("germancredit.csv"), "creditability", "bad")
        .expect("read germancredit.csv");
    assert_eq!(ds.n_rows(), 1000);
    assert_eq!(ds.n_events(), 300);
    let text = std::fs::read_to_string(dir.join("germancredit_split.csv")).expect("read split");
    let (mut tr, mut te) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let r: usize = f[0].parse().expect("row_id");
        match f[1] {
            "train" => tr.push(r),
            "test" => te.push(r),
            s => panic!("unknown set {s}"),
        }
    }
    (ds.take_rows(&tr), ds.take_rows(&te))
}

/// O(n²) pair count: P(risk of event > risk of non-event), ties 1/2.
fn auc_by_pairs(risk: &[f64], y: &[u8]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for i in 0..risk.len() {
        if y[i] != 1 {
            continue;
        }
        for j in 0..risk.len() {
            if y[j] == 0 {
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

/// KS by brute force over every threshold.
fn ks_brute(risk: &[f64], y: &[u8]) -> f64 {
    let p = y.iter().filter(|&&v| v == 1).count() as f64;
    let n = y.len() as f64 - p;
    let mut best: f64 = 0.0;
    for &t in risk {
        let tp = risk
            .iter()
            .zip(y)
            .filter(|(r, &v)| **r >= t && v == 1)
            .count() as f64;
        let fp = risk
            .iter()
            .zip(y)
            .filter(|(r, &v)| **r >= t && v == 0)
            .count() as f64;
        best = best.max(tp / p - fp / n);
    }
    best
}

fn metric_in_html(html: &str, metric: &str, sample: &str) -> f64 {
    let key = format!(r#"data-metric="{metric}" data-sample="{sample}">"#);
    let i = html
        .find(&key)
        .unwrap_or_else(|| panic!("{metric}/{sample} not in report"))
        + key.len();
    let j = html[i..].find('<').unwrap() + i;
    html[i..j].parse().unwrap()
}

#[test]
fn german_credit_meets_targets_on_test_split() {
    let (tr, te) = split();
    assert_eq!((tr.n_rows(), tr.n_events()), (700, 210));
    assert_eq!((te.n_rows(), te.n_events()), (300, 90));
    let mut log = Vec::new();
    let model = train(&tr, &TrainConfig::default(), &mut |l| {
        log.push(l.to_string())
    })
    .expect("train");
    assert!(
        log.iter().any(|l| l.contains("binned")),
        "progress lines expected"
    );
    assert!(model.variables.len() >= 5);
    let v = validate(&model, &[("train", &tr), ("test", &te)]).expect("validate");
    let test = &v.samples[1];
    eprintln!(
        "German credit: {} variables, train AUC {:.4} KS {:.4}, test AUC {:.4} KS {:.4}",
        model.variables.len(),
        v.samples[0].auc,
        v.samples[0].ks,
        test.auc,
        test.ks
    );
    assert!(test.auc >= 0.8103, "test AUC {:.4} < 0.8103", test.auc);
    assert!(test.ks >= 0.5286, "test KS {:.4} < 0.5286", test.ks);
}

#[test]
fn report_figures_equal_independent_recomputation() {
    let (tr, te) = split();
    let model = train(&tr, &TrainConfig::default(), &mut |_| {}).expect("train");
    // round trip through JSON: the saved model scores the same
    let model = Model::from_json(&model.to_json().unwrap()).unwrap();
    let v = validate(&model, &[("train", &tr), ("test", &te)]).unwrap();
    let html = report_html(&model, &v);
    for (name, ds) in [("train", &tr), ("test", &te)] {
        let scores = model.score_dataset(ds).unwrap();
        let auc = auc_by_pairs(&scores.p_event, &ds.target);
        let ks = ks_brute(&scores.p_event, &ds.target);
        let rep_auc = metric_in_html(&html, "auc", name);
        let rep_ks = metric_in_html(&html, "ks", name);
        assert!(
            (rep_auc - auc).abs() < 6e-5,
            "{name}: report AUC {rep_auc} vs pair count {auc}"
        );
        assert!(
            (rep_ks - ks).abs() < 6e-5,
            "{name}: report KS {rep_ks} vs brute force {ks}"
        );
        let gini = metric_in_html(&html, "gini", name);
        assert!((gini - (2.0 * auc - 1.0)).abs() < 1e-4);
        assert_eq!(metric_in_html(&html, "rows", name) as usize, ds.n_rows());
        assert_eq!(
            metric_in_html(&html, "events", name) as usize,
            ds.n_events()
        );
        // every total equals base points + the per-variable points (the reasons)
        for i in 0..ds.n_rows() {
            let sum: f64 =
                model.scaling.base_points + scores.points.iter().map(|p| p[i]).sum::<f64>();
            assert_eq!(scores.total[i], sum);
        }
    }
    // the report is self-contained and has its charts
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    assert!(html.matches("<svg").count() >= 4 + model.variables.len());
    assert!(html.contains("ROC") && html.contains("KS") && html.contains("WoE"));
    // the PSI in the report is the PSI of the test totals against the train totals
    let psi = kehu_scorecard::psi(
        &model.score_dataset(&tr).unwrap().total,
        &model.score_dataset(&te).unwrap().total,
        10,
    );
    let key = r#"data-metric="psi">"#;
    let i = html.find(key).unwrap() + key.len();
    let rep: f64 = html[i..i + html[i..].find('<').unwrap()].parse().unwrap();
    assert!((rep - psi.psi).abs() < 6e-5);
}

#[test]
fn row_scoring_matches_dataset_scoring() {
    let (tr, te) = split();
    let model = train(&tr, &TrainConfig::default(), &mut |_| {}).unwrap();
    let scores = model.score_dataset(&te).unwrap();
    let dir = datasets_dir();
    let text = std::fs::read_to_string(dir.join("germancredit.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let hrefs: Vec<&str> = header.iter().map(|s| s.as_str()).collect();
    let scorer = model.row_scorer(&hrefs).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let split = std::fs::read_to_string(dir.join("germancredit_split.csv")).unwrap();
    let test_ids: Vec<usize> = split
        .lines()
        .skip(1)
        .filter(|l| l.contains(",test,"))
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    for (k, &r) in test_ids.iter().enumerate() {
        let fields: Vec<&str> = rows[r].iter().collect();
        let s = scorer.score_fields(&fields).unwrap();
        assert_eq!(s.total, scores.total[k]);
        assert!((s.p_event - scores.p_event[k]).abs() < 1e-12);
        let map: std::collections::HashMap<String, String> = header
            .iter()
            .cloned()
            .zip(fields.iter().map(|f| f.to_string()))
            .collect();
        assert_eq!(model.score_row(&map).unwrap().total, s.total);
    }
}
