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
        /// Also register the model in the kehu database under this purpose
        /// (credit_grade, propensity:fund, …), with its metrics and report.
        #[arg(long)]
        register: Option<String>,
        /// With --register: make it the active version at once.
        #[arg(long, requires = "register")]
        activate: bool,
        /// With --register: what the training data was.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List registered models.
    List {
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Make a registered version the active one of its purpose.
    Activate {
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        version: i64,
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

/// What a trained model leaves for the registry.
pub struct Trained {
    pub purpose: String,
    pub activate: bool,
    pub description: String,
    pub name: String,
    pub model_json: String,
    pub metrics: serde_json::Value,
    pub report: String,
}

/// Runs the commands that need no database; the registry commands come back as `Err(cmd)`.
pub fn run(cmd: ModelCommand) -> anyhow::Result<Option<Trained>> {
    match cmd {
        ModelCommand::List { .. } | ModelCommand::Activate { .. } => {
            unreachable!("registry commands run with a store")
        }
        ModelCommand::Train {
            data,
            target,
            event,
            config,
            out,
            test,
            report,
            register,
            activate,
            description,
        } => {
            if let Some(p) = &register {
                anyhow::ensure!(
                    kehu_store::models::valid_purpose(p),
                    "--register {p:?}: a purpose is lower-case letters, digits, _ - . : (like credit_grade or propensity:fund)"
                );
            }
            let cfg = match &config {
                Some(p) => TrainConfig::from_toml_file(p)?,
                None => TrainConfig::default(),
            };
            eprintln!("reading {}", data.display());
            let train_ds = Dataset::from_csv(&data, &target, &event)?;
            let test_ds = test
                .as_ref()
                .map(|t| Dataset::from_csv(t, &target, &event))
                .transpose()?;
            let model = train(&train_ds, &cfg, &mut |m: &str| step(m))?;
            model.save(&out)?;
            let mut samples = vec![("train", &train_ds)];
            if let Some(t) = &test_ds {
                samples.push(("test", t));
            }
            let v = validate(&model, &samples)?;
            for s in &v.samples {
                eprintln!(
                    "{}: AUC {:.4}  KS {:.4}  Gini {:.4}  ({} rows)",
                    s.name, s.auc, s.ks, s.gini, s.rows
                );
            }
            let html = report_html(&model, &v);
            if let Some(r) = report {
                std::fs::write(&r, &html).with_context(|| format!("writing {}", r.display()))?;
                eprintln!("report: {}", r.display());
            }
            eprintln!(
                "model: {} ({} variables)",
                out.display(),
                model.variables.len()
            );
            if let Some(purpose) = register {
                let metrics = serde_json::json!(v
                    .samples
                    .iter()
                    .map(
                        |s| serde_json::json!({"sample": s.name, "rows": s.rows, "events": s.events,
                        "auc": s.auc, "ks": s.ks, "gini": s.gini})
                    )
                    .collect::<Vec<_>>());
                let description = if description.is_empty() {
                    format!(
                        "{} ({} rows, target {} = {})",
                        data.display(),
                        train_ds.n_rows(),
                        target,
                        event
                    )
                } else {
                    description
                };
                return Ok(Some(Trained {
                    purpose,
                    activate,
                    description,
                    name: out
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    model_json: serde_json::to_string(&model)?,
                    metrics,
                    report: html,
                }));
            }
        }
        ModelCommand::Report {
            model,
            data,
            test,
            target,
            event,
            out,
        } => {
            let model = Model::load(&model)?;
            let a = Dataset::from_csv(&data, &target, &event)?;
            let b = test
                .as_ref()
                .map(|t| Dataset::from_csv(t, &target, &event))
                .transpose()?;
            let mut samples = vec![("train", &a)];
            if let Some(b) = &b {
                samples.push(("test", b));
            }
            let v = validate(&model, &samples)?;
            std::fs::write(&out, report_html(&model, &v))
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("report: {}", out.display());
        }
        ModelCommand::Score { model, data, out } => {
            let model = Model::load(&model)?;
            let totals = model.score_csv(&data, &out, &mut |m: &str| step(m))?;
            eprintln!("scored {} rows into {}", totals.len(), out.display());
        }
        ModelCommand::Psi {
            model,
            expected,
            actual,
            bins,
        } => {
            let model = Model::load(&model)?;
            let tmp = std::env::temp_dir().join(format!("kehu-psi-{}.csv", std::process::id()));
            let e = model.score_csv(&expected, &tmp, &mut |_: &str| {})?;
            let a = model.score_csv(&actual, &tmp, &mut |_: &str| {})?;
            let _ = std::fs::remove_file(&tmp);
            let r = kehu_scorecard::psi(&e, &a, bins);
            println!(
                "PSI {:.4} ({})",
                r.psi,
                if r.psi < 0.1 {
                    "stable"
                } else if r.psi < 0.25 {
                    "some shift"
                } else {
                    "significant shift"
                }
            );
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
    Ok(None)
}

/// The registry commands and the registration after training.
pub async fn registry(
    store: &kehu_store::Store,
    cmd: Option<ModelCommand>,
    trained: Option<Trained>,
) -> anyhow::Result<()> {
    if let Some(t) = trained {
        let m = kehu_store::NewModel {
            purpose: &t.purpose,
            name: &t.name,
            description: &t.description,
            metrics: t.metrics,
            model_json: &t.model_json,
            report_html: Some(&t.report),
        };
        let v = store
            .register_model(&m, t.activate, chrono::Utc::now())
            .await?;
        eprintln!(
            "registered {} version {v}{}",
            t.purpose,
            if t.activate { " (active)" } else { "" }
        );
    }
    match cmd {
        Some(ModelCommand::List { purpose }) => {
            for m in store.list_models(purpose.as_deref()).await? {
                println!(
                    "{:<24} v{:<4} {} {:<6} {}  {}",
                    m.purpose,
                    m.version,
                    m.created_at.format("%Y-%m-%d %H:%M"),
                    if m.active { "active" } else { "" },
                    m.name,
                    m.metrics
                );
            }
        }
        Some(ModelCommand::Activate { purpose, version }) => {
            anyhow::ensure!(
                store.activate_model(&purpose, version).await?,
                "no model {purpose} version {version}"
            );
            eprintln!("{purpose} version {version} is now active");
        }
        _ => {}
    }
    Ok(())
}
