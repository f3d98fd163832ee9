//! `kehu model …`: train, report, score and PSI with the scorecard toolkit.

use anyhow::Context;
use clap::Subcommand;
use kehu_scorecard::{report_html, train, validate, Dataset, Model, TrainConfig};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Train a scorecard on a CSV file.
    Train {
        #[arg(long)]
        data: PathBuf,
        /// The binary target column.
        #[arg(long)]
        target: String,
        /// The target value that is the event ("bad", "1", "bought").
        #[arg(long)]
        event: String,
        /// Training options (TOML; see docs/scorecard.md).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the model (JSON) goes.
        #[arg(long)]
        out: PathBuf,
        /// A hold-out sample to validate on (same columns).
        #[arg(long)]
        test: Option<PathBuf>,
        /// Write the HTML report here too.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Write the HTML validation report of a model on one or two samples.
    Report {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        test: Option<PathBuf>,
        #[arg(long)]
        target: String,
        #[arg(long)]
        event: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a CSV: the rows with score, probability of the event and points per variable appended.
    Score {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Population stability of the score between two files (e.g. development vs this month).
    Psi {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        expected: PathBuf,
        #[arg(long)]
        actual: PathBuf,
        #[arg(long, default_value_t = 10)]
        bins: usize,
    },
}

fn step(msg: &str) {
    eprintln!("  · {msg}");
}

pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Train { data, target, event, config, out, test, report } => {
            let cfg = match &config {
                Some(p) => TrainConfig::from_toml_file(p)?,
                None => TrainConfig::default(),
            };
            eprintln!("reading {}", data.display());
            let train_ds = Dataset::from_csv(&data, &target, &event)?;
            let test_ds = test.as_ref().map(|t| Dataset::from_csv(t, &target, &event)).transpose()?;
            let model = train(&train_ds, &cfg, &mut |m: &str| step(m))?;
            model.save(&out)?;
            let mut samples = vec![("train", &train_ds)];
            if let Some(t) = &test_ds {
                samples.push(("test", t));
            }
            let v = validate(&model, &samples)?;
            for s in &v.samples {
                eprintln!("{}: AUC {:.4}  KS {:.4}  Gini {:.4}  ({} rows)", s.name, s.auc, s.ks, s.gini, s.rows);
            }
            if let Some(r) = report {
                std::fs::write(&r, report_html(&model, &v)).with_context(|| format!("writing {}", r.display()))?;
                eprintln!("report: {}", r.display());
            }
            eprintln!("model: {} ({} variables)", out.display(), model.variables.len());
        }
        ModelCommand::Report { model, data, test, target, event, out } => {
            let model = Model::load(&model)?;
            let a = Dataset::from_csv(&data, &target, &event)?;
            let b = test.as_ref().map(|t| Dataset::from_csv(t, &target, &event)).transpose()?;
            let mut samples = vec![("train", &a)];
            if let Some(b) = &b {
                samples.push(("test", b));
            }
            let v = validate(&model, &samples)?;
            std::fs::write(&out, report_html(&model, &v)).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("report: {}", out.display());
        }
        ModelCommand::Score { model, data, out } => {
            let model = Model::load(&model)?;
            let totals = model.score_csv(&data, &out, &mut |m: &str| step(m))?;
            eprintln!("scored {} rows into {}", totals.len(), out.display());
        }
        ModelCommand::Psi { model, expected, actual, bins } => {
            let model = Model::load(&model)?;
            let tmp = std::env::temp_dir().join(format!("kehu-psi-{}.csv", std::process::id()));
            let e = model.score_csv(&expected, &tmp, &mut |_: &str| {})?;
            let a = model.score_csv(&actual, &tmp, &mut |_: &str| {})?;
            let _ = std::fs::remove_file(&tmp);
            let r = kehu_scorecard::psi(&e, &a, bins);
            println!("PSI {:.4} ({})", r.psi, if r.psi < 0.1 { "stable" } else if r.psi < 0.25 { "some shift" } else { "significant shift" });
            for b in &r.bins {
                println!(
                    "  ({}, {}]  expected {:.3}  actual {:.3}  contribution {:.4}",
                    b.lower.map_or("-inf".into(), |v| format!("{v:.1}")),
                    b.upper.map_or("+inf".into(), |v| format!("{v:.1}")),
                    b.expected_share,
                    b.actual_share,
                    b.contribution
                );
            }
        }
    }
    Ok(())
}
