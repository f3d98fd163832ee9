//! Compares configurations on German credit: 5-fold cross-validation on the
//! train rows only (used to choose defaults) and, for information, the test rows.
//! `cargo run --release --example cv_german -- [config.toml ...]`
use kehu_scorecard::{train, validate, Dataset, TrainConfig};

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets/");
    let ds = Dataset::from_csv(format!("{dir}germancredit.csv"), "creditability", "bad").unwrap();
    let split = std::fs::read_to_string(format!("{dir}germancredit_split.csv")).unwrap();
    let (mut tr, mut te) = (Vec::new(), Vec::new());
    for l in split.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let r: usize = f[0].parse().unwrap();
        if f[1] == "train" {
            tr.push(r)
        } else {
            te.push(r)
        }
    }
    let mut configs: Vec<(String, TrainConfig)> = vec![("default".into(), TrainConfig::default())];
    for a in std::env::args().skip(1) {
        let c = if a.ends_with(".toml") {
            TrainConfig::from_toml_file(&a).unwrap()
        } else {
            TrainConfig::from_toml_str(&a.replace(';', "\n")).unwrap()
        };
        configs.push((a, c));
    }
    let trd = ds.take_rows(&tr);
    for (name, cfg) in &configs {
        // 5-fold CV on train rows (stratified by position within class)
        let (mut aucs, mut kss) = (0.0, 0.0);
        let reps = 4;
        for rep in 0..reps {
            for k in 0..5 {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let (mut ci, mut cj) = (0usize, 0usize);
                for i in 0..trd.n_rows() {
                    let c = if trd.target[i] == 1 {
                        ci += 1;
                        ci
                    } else {
                        cj += 1;
                        cj
                    };
                    if (c * 7 + rep * 3) % 5 == k {
                        b.push(i)
                    } else {
                        a.push(i)
                    }
                }
                let (da, db) = (trd.take_rows(&a), trd.take_rows(&b));
                let m = train(&da, cfg, &mut |_| {}).unwrap();
                let v = validate(&m, &[("cv", &db)]).unwrap();
                aucs += v.samples[0].auc;
                kss += v.samples[0].ks;
            }
        }
        let m = train(&trd, cfg, &mut |_| {}).unwrap();
        let v = validate(&m, &[("train", &trd), ("test", &ds.take_rows(&te))]).unwrap();
        println!(
            "{:<70} cv auc {:.4} ks {:.4} | vars {:2} test auc {:.4} ks {:.4}",
            name,
            aucs / (5.0 * reps as f64),
            kss / (5.0 * reps as f64),
            m.variables.len(),
            v.samples[1].auc,
            v.samples[1].ks
        );
    }
}
