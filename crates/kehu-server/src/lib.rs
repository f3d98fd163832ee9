//! kehu's HTTP API: a thin axum layer over the store. Personal data is masked in every
//! response unless the server is configured otherwise.

mod api;
pub mod billing;
mod error;
mod models;

pub use models::ModelCache;

pub use api::{router, ApiDoc};
pub use error::ApiError;

use kehu_store::Store;
use std::future::Future;
use std::path::PathBuf;
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Mask phone and ID numbers in responses (default on).
    pub mask_personal_data: bool,
    /// Transactions shown in the 360 view.
    pub recent_transactions: i64,
    /// Where uploaded import files are spooled.
    pub spool_dir: PathBuf,
    pub import_max_errors: usize,
    pub offset: chrono::FixedOffset,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cfg: ServerConfig,
    pub models: std::sync::Arc<ModelCache>,
    /// Billing and collections rules (penalty rates, VEE thresholds, dunning gates).
    pub billing: std::sync::Arc<kehu_domain::billing::BillingRules>,
}

impl AppState {
    pub fn new(store: Store, cfg: ServerConfig) -> Self {
        AppState {
            store,
            cfg,
            models: Default::default(),
            billing: Default::default(),
        }
    }

    /// Uses these billing rules instead of the defaults.
    pub fn with_billing_rules(mut self, rules: kehu_domain::billing::BillingRules) -> Self {
        self.billing = std::sync::Arc::new(rules);
        self
    }
}

/// Serves on an already bound listener until `shutdown` resolves; in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
