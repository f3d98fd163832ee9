//! `kehu app-key …` and `kehu features …`: app keys for the event collector, and the
//! behaviour state recomputed from the event log.

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use kehu_store::Store;

#[derive(Subcommand)]
pub enum AppKeyCommand {
    /// Create a key for an app; prints it once (only its hash is stored).
    Create { name: String },
    /// List the apps with keys.
    List,
    /// Revoke an app's key.
    Revoke { name: String },
}

#[derive(Subcommand)]
pub enum FeaturesCommand {
    /// Recompute the behaviour state from the stored events and save it (run it while
    /// the server is stopped: a running server keeps its own state and saves it).
    Rebuild,
    /// Write a propensity training sample: the features of every customer × product with
    /// behaviour as of the end of a day, and whether the customer bought that product in
    /// the following days. Two dates give a time-based split (train on the earlier,
    /// validate with `kehu model train --test` on the later).
    Export {
        /// The day the features are taken at (its end, in the business time zone).
        #[arg(long)]
        as_of: String,
        /// Days after it in which a purchase counts as the event.
        #[arg(long, default_value_t = 30)]
        horizon_days: i64,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

pub async fn app_key(store: &Store, cmd: AppKeyCommand) -> anyhow::Result<()> {
    match cmd {
        AppKeyCommand::Create { name } => {
            let (_, key) = store.create_app_key(&name).await?;
            eprintln!("app key for {name:?} (shown once; send it as Authorization: Bearer KEY):");
            println!("{key}");
        }
        AppKeyCommand::List => {
            for k in store.list_app_keys().await? {
                println!(
                    "{}\t{}\t{}",
                    k.name,
                    k.created_at.format("%Y-%m-%d %H:%M"),
                    if k.revoked { "revoked" } else { "active" }
                );
            }
        }
        AppKeyCommand::Revoke { name } => {
            if !store.revoke_app_key(&name).await? {
                anyhow::bail!("no active app key named {name:?}");
            }
            eprintln!("revoked the key of {name:?}");
        }
    }
    Ok(())
}

pub async fn features(
    store: &Store,
    cmd: FeaturesCommand,
    cfg: kehu_domain::behaviour::state::StateConfig,
) -> anyhow::Result<()> {
    match cmd {
        FeaturesCommand::Export { as_of, horizon_days, out } => export(store, cfg, &as_of, horizon_days, &out).await?,
        FeaturesCommand::Rebuild => {
            let started = std::time::Instant::now();
            let total = store.max_event_seq().await?;
            let bar = ProgressBar::new(total.max(0) as u64);
            bar.set_style(
                ProgressStyle::with_template("rebuilding {wide_bar} {pos}/{len} events eta {eta}")
                    .expect("template"),
            );
            let b = bar.clone();
            let (state, watermark) =
                kehu_server::behaviour::rebuild(store, cfg, &move |seq| b.set_position(seq as u64))
                    .await?;
            bar.finish_and_clear();
            let mut state = state;
            let customers = state.customers.drain();
            let products: Vec<_> = state.products.into_iter().collect();
            let pairs: usize = customers.iter().map(|(_, c)| c.pairs.len()).sum();
            store
                .save_behaviour(&customers, &products, watermark, true)
                .await?;
            eprintln!(
                "behaviour state rebuilt from {watermark} events in {:.1} s: {} customers, {pairs} customer × product pairs, {} products",
                started.elapsed().as_secs_f64(),
                customers.len(),
                products.len()
            );
        }
    }
    Ok(())
}

async fn export(
    store: &Store,
    cfg: kehu_domain::behaviour::state::StateConfig,
    as_of: &str,
    horizon_days: i64,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use kehu_domain::decide::recommend::{ability, features, Features};
    use kehu_domain::state::IncomeBand;
    let day = kehu_domain::ingest::fields::parse_date(as_of)
        .ok_or_else(|| anyhow::anyhow!("--as-of {as_of:?}: expected a date like 2026-09-30"))?;
    if horizon_days < 1 {
        anyhow::bail!("--horizon-days {horizon_days}: at least 1");
    }
    let offset = chrono::FixedOffset::east_opt(cfg.utc_offset_secs).expect("offset");
    let end_ms = (day + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_local_timezone(offset)
        .single()
        .expect("fixed offset")
        .timestamp_millis()
        - 1;
    let (state, _) = kehu_server::behaviour::rebuild_until(store, cfg, end_ms, &|_| {}).await?;
    let bought: std::collections::HashSet<(i64, i64)> = store
        .purchases_between(end_ms, end_ms + horizon_days * 86_400_000)
        .await?
        .into_iter()
        .collect();
    let products: std::collections::HashMap<u32, kehu_store::ProductRow> = store
        .list_products(None)
        .await?
        .into_iter()
        .map(|p| (p.id as u32, p))
        .collect();
    let mut w = csv::Writer::from_path(out)?;
    let mut header = vec!["customer_id", "product"];
    header.extend(Features::NAMES);
    header.push("bought");
    w.write_record(&header)?;
    let bar = ProgressBar::new(state.customers.len() as u64);
    bar.set_style(ProgressStyle::with_template("exporting {wide_bar} {pos}/{len} customers eta {eta}").expect("template"));
    let (mut rows, mut events) = (0u64, 0u64);
    for (cid, c) in state.customers.iter() {
        bar.inc(1);
        let Some(prof) = store.decision_profile(cid as i64).await? else { continue };
        let age = prof.birth_date.and_then(|b| day.years_since(b));
        let income = prof.income_band.as_deref().and_then(IncomeBand::parse);
        let held_kinds: std::collections::HashSet<_> = prof.held.iter().filter_map(|p| products.get(p)).map(|p| p.product.kind).collect();
        for pair in &c.pairs {
            let Some(p) = products.get(&pair.product) else { continue };
            let ab = ability(kehu_domain::money::Fen(prof.liquid_fen), income, p.product.min_purchase);
            let f = features(Some(pair), &cfg, end_ms / 1000, held_kinds.contains(&p.product.kind), ab, age, income);
            let label = bought.contains(&(cid as i64, p.id));
            let mut rec = vec![cid.to_string(), p.product.code.clone()];
            rec.extend(f.values().iter().map(|v| format!("{v:.6}")));
            rec.push(if label { "1" } else { "0" }.into());
            w.write_record(&rec)?;
            rows += 1;
            events += label as u64;
        }
    }
    w.flush()?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {}: {rows} customer × product rows as of {day}, {events} bought within {horizon_days} days",
        out.display()
    );
    Ok(())
}
