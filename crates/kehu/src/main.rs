//! The `kehu` command: serve, import, export, demo.

mod api_token_cmd;
mod behaviour_cmd;
mod billing_cmd;
mod config;
mod model_cmd;
mod staff_cmd;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use config::Config;
use indicatif::{ProgressBar, ProgressStyle};
use kehu_domain::ingest::{EntityKind, ParseContext};
use kehu_ingest::demo::{DemoProgress, DemoSpec};
use kehu_ingest::read::{encoding_by_name, Format};
use kehu_store::{Store, StoreOptions};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "kehu",
    version,
    about = "kehu 客户 — customer operations for banks and power suppliers"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Configuration file (default: kehu.toml in the data directory, if present). Give it
    /// before the command (`kehu --config kehu.toml serve`): `model train --config` is the
    /// training options.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory for the embedded database (default ./data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// postgres://USER:PASSWORD@HOST:PORT/DB to use PostgreSQL instead of SQLite.
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Generate a demo bank first if the database has no customers.
        #[arg(long)]
        demo: bool,
        /// Customers in the demo bank.
        #[arg(long, default_value_t = 2_000)]
        demo_customers: u64,
    },
    /// Import a CSV or JSON Lines file (see docs/import.md).
    Import {
        /// customers | staff | products | holdings | transactions
        kind: String,
        file: PathBuf,
        /// csv | jsonl (default: from the file name)
        #[arg(long)]
        format: Option<String>,
        /// utf-8 | gbk | gb18030 (default: detected)
        #[arg(long)]
        encoding: Option<String>,
        /// Load the valid rows; write the rejected ones with the reason to --rejects.
        #[arg(long)]
        skip_invalid: bool,
        /// Where rejected rows go (default FILE.rejects.csv).
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// How many errors to list (and without --skip-invalid, after how many to stop).
        #[arg(long)]
        max_errors: Option<usize>,
    },
    /// Export rows in the import format.
    Export {
        kind: String,
        /// csv | jsonl
        #[arg(long, default_value = "csv")]
        format: String,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Generate a synthetic demo bank (deterministic by seed).
    Demo {
        #[arg(long, default_value_t = 2_000)]
        customers: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Average spending transactions per customer and month (salary and loan payments come on top).
        #[arg(long, default_value_t = 1)]
        spend_per_month: u32,
        /// Write import files into this directory instead of the database.
        #[arg(long)]
        csv_dir: Option<PathBuf>,
        /// With --csv-dir: write customers.csv only.
        #[arg(long, requires = "csv_dir")]
        customers_only: bool,
        /// Average app events per customer over the last 30 days (0: none), with risk
        /// assessments for most customers.
        #[arg(long, default_value_t = 10)]
        events: u32,
    },
    /// Scorecards and propensity models: train, report, score, psi.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Keys for apps that send behaviour events.
    #[command(subcommand, name = "app-key")]
    AppKey(behaviour_cmd::AppKeyCommand),
    /// Tokens for integrations that call the HTTP API.
    #[command(subcommand, name = "api-token")]
    ApiToken(api_token_cmd::ApiTokenCommand),
    /// The behaviour state (features) derived from events.
    #[command(subcommand)]
    Features(behaviour_cmd::FeaturesCommand),
    /// Staff logins for the web workbench.
    #[command(subcommand)]
    Staff(staff_cmd::StaffCommand),
    /// Electricity billing and collections: penalty, billing run, review, ageing, dunning.
    #[command(subcommand)]
    Billing(billing_cmd::BillingCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEHU_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let mut cfg = Config::load(cli.global.config.as_deref(), cli.global.data_dir.as_deref())
        .map_err(anyhow::Error::msg)?;
    if let Some(d) = cli.global.data_dir {
        cfg.data_dir = d;
    }
    if let Some(u) = cli.global.database_url {
        cfg.database_url = Some(u);
    }
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let today = chrono::Utc::now().with_timezone(&offset).date_naive();
    let ctx = ParseContext { today, offset };
    let ok = std::process::ExitCode::SUCCESS;

    if let Command::Demo {
        csv_dir: Some(dir),
        customers,
        seed,
        spend_per_month,
        customers_only,
        ..
    } = &cli.command
    {
        let mut spec = DemoSpec::new(*customers, *seed, today);
        spec.spend_per_month = *spend_per_month;
        let sum = kehu_ingest::demo::write_csv(dir, &spec, *customers_only, Some(demo_progress()))
            .with_context(|| format!("writing demo files to {}", dir.display()))?;
        eprintln!("wrote {} with {sum:?}", dir.display());
        return Ok(ok);
    }

    let command = match cli.command {
        Command::Billing(b) => return billing_cmd::run(b, &cfg).await,
        Command::Model(
            m @ (model_cmd::ModelCommand::List { .. } | model_cmd::ModelCommand::Activate { .. }),
        ) => {
            let store = open_store(&cfg).await?;
            model_cmd::registry(&store, Some(m), None).await?;
            return Ok(ok);
        }
        Command::Model(m) => {
            if let Some(trained) = tokio::task::spawn_blocking(move || model_cmd::run(m)).await?? {
                let store = open_store(&cfg).await?;
                model_cmd::registry(&store, None, Some(trained)).await?;
            }
            return Ok(ok);
        }
        other => other,
    };
    let store = open_store(&cfg).await?;
    match command {
        Command::Serve {
            listen,
            demo,
            demo_customers,
        } => {
            if demo {
                let has = store
                    .counts()
                    .await?
                    .iter()
                    .any(|(k, n)| *k == EntityKind::Customers && *n > 0);
                if !has {
                    eprintln!("generating a demo bank with {demo_customers} customers (seed 42)…");
                    let sum = kehu_ingest::demo::load(
                        &store,
                        &DemoSpec::new(demo_customers, 42, today),
                        Some(demo_progress()),
                    )
                    .await?;
                    eprintln!("demo bank ready: {sum:?}");
                    demo_behaviour(&store, &cfg, &DemoSpec::new(demo_customers, 42, today), 20, offset).await?;
                }
                // The collections pages need a power supplier: a small demo one, once.
                if store.supply_account_count().await? == 0 {
                    let spec = kehu_ingest::demo_power::PowerSpec::new(DEMO_POWER_ACCOUNTS, 42, today);
                    let sum = kehu_ingest::demo_power::load(&store, &spec, &cfg.billing, chrono::Utc::now()).await?;
                    eprintln!("demo power supplier ready: {} accounts, {} bills", sum.accounts, sum.bills);
                }
            }
            if demo {
                store.ensure_app_key(DEMO_APP, DEMO_APP_KEY).await?;
                eprintln!("demo app {DEMO_APP:?}: send events with  Authorization: Bearer {DEMO_APP_KEY}");
                store.ensure_api_token(DEMO_API, DEMO_API_TOKEN).await?;
                eprintln!("demo API token {DEMO_API:?}: call /api/v1/* with  Authorization: Bearer {DEMO_API_TOKEN}");
            }
            let addr = listen.unwrap_or(cfg.listen.clone());
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = listener.local_addr()?;
            if demo {
                let spec = DemoSpec::new(demo_customers, 42, today);
                staff_cmd::demo_logins(&store, &spec, &format!("http://{local}")).await?;
            }
            eprintln!(
                "kehu is serving on http://{local}  (database: {})",
                store.url()
            );
            let auth = if demo {
                format!("-H 'Authorization: Bearer {DEMO_API_TOKEN}' ")
            } else {
                "-H 'Authorization: Bearer TOKEN' ".to_string()
            };
            eprintln!("  try: curl {auth}http://{local}/api/v1/customers?limit=5   ·   API description: http://{local}/api/openapi.json");
            let state = kehu_server::AppState::try_new(
                store.clone(),
                kehu_server::ServerConfig {
                    mask_personal_data: cfg.mask_personal_data,
                    recent_transactions: cfg.recent_transactions,
                    spool_dir: cfg.data_dir.join("spool"),
                    import_max_errors: cfg.import.max_errors,
                    offset,
                    behaviour: cfg.behaviour.clone(),
                },
            )
            .map_err(anyhow::Error::msg)?
            .with_web(cfg.web.to_server(demo))
            .with_billing_rules(cfg.billing.clone());
            let state = if cfg.api.require_token {
                state
            } else {
                eprintln!("warning: api.require_token is off: /api/v1/* answers without a token");
                state.with_open_api()
            };
            kehu_server::serve(listener, state, shutdown_signal()).await?;
            store.close().await;
            eprintln!("kehu stopped");
            Ok(ok)
        }
        Command::Import {
            kind,
            file,
            format,
            encoding,
            skip_invalid,
            rejects,
            max_errors,
        } => {
            let kind = parse_kind(&kind)?;
            let mut opts = kehu_ingest::ImportOptions::new(kind, ctx);
            opts.format = match format.as_deref() {
                Some(f) => Some(
                    Format::parse(f)
                        .with_context(|| format!("--format {f:?}: expected csv or jsonl"))?,
                ),
                None => None,
            };
            opts.encoding = match encoding.as_deref() {
                Some(e) => Some(encoding_by_name(e).with_context(|| {
                    format!("--encoding {e:?}: expected utf-8, gbk or gb18030")
                })?),
                None => None,
            };
            opts.skip_invalid = skip_invalid;
            opts.rejects_path = rejects;
            opts.max_errors = max_errors.unwrap_or(cfg.import.max_errors);
            opts.batch_rows = cfg.import.batch_rows;
            let total = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} {wide_bar} {per_sec} eta {eta} {msg}",
                )
                .expect("template"),
            );
            let b = bar.clone();
            opts.progress = Some(Arc::new(move |bytes, rows| {
                b.inc(bytes);
                b.set_message(format!("{rows} rows"));
            }));
            let started = std::time::Instant::now();
            let report = kehu_ingest::import_file(&store, &file, &opts).await;
            bar.finish_and_clear();
            let report = report?;
            for e in &report.errors {
                eprintln!("{e}");
            }
            if report.rows_rejected as usize > report.errors.len() {
                eprintln!(
                    "… {} more errors not listed",
                    report.rows_rejected as usize - report.errors.len()
                );
            }
            let secs = started.elapsed().as_secs_f64();
            let rate = report.rows_read as f64 / secs.max(1e-9);
            if report.committed {
                eprintln!(
                    "imported {} {}: {} rows read, {} loaded, {} rejected ({}, {:.1} s, {:.0} rows/s){}",
                    report.file,
                    kind.name(),
                    report.rows_read,
                    report.rows_loaded,
                    report.rows_rejected,
                    report.encoding,
                    secs,
                    rate,
                    report.rejects_file.as_ref().map(|f| format!("; rejected rows in {f}")).unwrap_or_default()
                );
                Ok(if report.rows_rejected > 0 {
                    std::process::ExitCode::from(1)
                } else {
                    ok
                })
            } else {
                eprintln!(
                    "nothing imported from {}: {} rows read, {} with errors{}; fix them, or pass --skip-invalid to load the valid rows",
                    report.file,
                    report.rows_read,
                    report.rows_rejected,
                    if report.stopped_early { " (stopped at --max-errors)" } else { "" }
                );
                Ok(std::process::ExitCode::from(1))
            }
        }
        Command::Export { kind, format, out } => {
            let kind = parse_kind(&kind)?;
            let format = Format::parse(&format)
                .with_context(|| format!("--format {format:?}: expected csv or jsonl"))?;
            let n = match out {
                Some(path) => {
                    let f = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    kehu_ingest::export::export(&store, kind, format, f).await?
                }
                None => {
                    kehu_ingest::export::export(&store, kind, format, std::io::stdout().lock())
                        .await?
                }
            };
            eprintln!("exported {n} {}", kind.name());
            Ok(ok)
        }
        Command::Demo {
            customers,
            seed,
            spend_per_month,
            csv_dir: None,
            events,
            ..
        } => {
            let mut spec = DemoSpec::new(customers, seed, today);
            spec.spend_per_month = spend_per_month;
            let started = std::time::Instant::now();
            let sum = kehu_ingest::demo::load(&store, &spec, Some(demo_progress())).await?;
            eprintln!(
                "demo bank generated in {:.1} s: {sum:?} (database: {})",
                started.elapsed().as_secs_f64(),
                store.url()
            );
            if events > 0 {
                demo_behaviour(&store, &cfg, &spec, events, offset).await?;
            }
            staff_cmd::demo_logins(&store, &spec, &format!("http://{}", cfg.listen)).await?;
            Ok(ok)
        }
        Command::AppKey(cmd) => {
            behaviour_cmd::app_key(&store, cmd).await?;
            Ok(ok)
        }
        Command::ApiToken(cmd) => {
            api_token_cmd::api_token(&store, cmd).await?;
            Ok(ok)
        }
        Command::Features(cmd) => {
            let state_cfg = kehu_domain::behaviour::state::StateConfig {
                half_life_days: cfg.behaviour.half_life_days,
                utc_offset_secs: offset.local_minus_utc(),
            };
            behaviour_cmd::features(&store, cmd, state_cfg).await?;
            Ok(ok)
        }
        Command::Staff(cmd) => {
            staff_cmd::run(&store, cmd).await?;
            Ok(ok)
        }
        Command::Demo {
            csv_dir: Some(_), ..
        }
        | Command::Model(_)
        | Command::Billing(_) => unreachable!("handled above"),
    }
}

/// The demo app and its key (demo data only: a real app gets `kehu app-key create`).
const DEMO_APP: &str = "demo-app";
const DEMO_APP_KEY: &str = "kehu_demo_app_key";
/// The demo's API token (demo data only: an integration gets `kehu api-token create`).
const DEMO_API: &str = "demo-api";
const DEMO_API_TOKEN: &str = "kehu_demo_api_token";
/// Supply accounts of the demo power supplier that `serve --demo` adds.
const DEMO_POWER_ACCOUNTS: u64 = 500;

/// Demo behaviour: the demo app's key, app events and assessments, then the behaviour
/// state rebuilt from them.
async fn demo_behaviour(
    store: &Store,
    cfg: &Config,
    spec: &DemoSpec,
    events: u32,
    offset: chrono::FixedOffset,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let app = store.ensure_app_key(DEMO_APP, DEMO_APP_KEY).await?;
    let (n, a) =
        kehu_ingest::demo_events::load(store, spec, events, app, Some(demo_progress())).await?;
    eprintln!(
        "demo behaviour: {n} app events and {a} risk assessments in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let state_cfg = kehu_domain::behaviour::state::StateConfig {
        half_life_days: cfg.behaviour.half_life_days,
        utc_offset_secs: offset.local_minus_utc(),
    };
    behaviour_cmd::features(store, behaviour_cmd::FeaturesCommand::Rebuild, state_cfg).await
}

async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let opts = StoreOptions {
        max_connections: cfg.store.max_connections,
        sqlite_cache_kib: cfg.store.sqlite_cache_kib,
        sqlite_wal_checkpoint_pages: cfg.store.sqlite_wal_checkpoint_pages,
        sqlite_timeline_batch_events: cfg.store.sqlite_timeline_batch_events,
        ..StoreOptions::default()
    };
    Ok(Store::open(&cfg.database_url(), &opts).await?)
}

fn parse_kind(k: &str) -> anyhow::Result<EntityKind> {
    match EntityKind::parse(k) {
        Some(kind) => Ok(kind),
        None => bail!(
            "unknown kind {k:?}: expected customers, staff, products, holdings or transactions"
        ),
    }
}

fn demo_progress() -> DemoProgress {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} {wide_bar} {pos}/{len} customers eta {eta}")
            .expect("template"),
    );
    Arc::new(move |stage: &str, done, total| {
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(stage.to_string());
        if done == total {
            bar.finish_and_clear();
            bar.reset();
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    eprintln!("shutting down: finishing requests in flight…");
}
