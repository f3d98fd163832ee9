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
