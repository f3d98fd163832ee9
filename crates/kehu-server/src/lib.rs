//! kehu's HTTP API: a thin axum layer over the store. Personal data is masked in every
//! response unless the server is configured otherwise.

mod api;
pub mod api_auth;
pub mod behaviour;
pub mod billing;
mod error;
mod models;
pub mod web;

pub use models::ModelCache;

pub use api::{router, ApiDoc};
pub use behaviour::BehaviourConfig;
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
    pub behaviour: behaviour::BehaviourConfig,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cfg: ServerConfig,
    pub models: std::sync::Arc<ModelCache>,
    pub behaviour: std::sync::Arc<behaviour::Engine>,
    /// The web UI's settings and caches (`web::WebConfig::default()` unless set).
    pub web: std::sync::Arc<web::WebState>,
    /// Billing and collections rules (penalty rates, VEE thresholds, dunning gates).
    pub billing: std::sync::Arc<kehu_domain::billing::BillingRules>,
    /// API tokens: required on `/api/v1/*` unless configured off (`api_auth`).
    pub api_auth: std::sync::Arc<api_auth::ApiAuth>,
}

impl AppState {
    /// Panics on an invalid behaviour configuration; `try_new` says what is wrong.
    pub fn new(store: Store, cfg: ServerConfig) -> Self {
        Self::try_new(store, cfg).expect("valid behaviour configuration")
    }

    pub fn try_new(store: Store, cfg: ServerConfig) -> Result<Self, String> {
        let engine = behaviour::Engine::new(
            store.clone(),
            cfg.behaviour.clone(),
            cfg.offset.local_minus_utc(),
        )?;
        Ok(AppState {
            store,
            cfg,
            models: Default::default(),
            behaviour: std::sync::Arc::new(engine),
            web: Default::default(),
            billing: Default::default(),
            api_auth: Default::default(),
        })
    }

    /// Today in the business time zone (`cfg.offset`).
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().with_timezone(&self.cfg.offset).date_naive()
    }

    /// The same state with these web UI settings.
    pub fn with_web(mut self, cfg: web::WebConfig) -> Self {
        self.web = std::sync::Arc::new(web::WebState::new(cfg));
        self
    }

    /// Lets `/api/v1/*` be called without a token: only behind a gateway that
    /// authenticates every call (`api.require_token = false`).
    pub fn with_open_api(mut self) -> Self {
        self.api_auth = std::sync::Arc::new(api_auth::ApiAuth::open());
        self
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
    state
        .behaviour
        .start()
        .await
        .map_err(|e| std::io::Error::other(format!("starting the behaviour engine: {e}")))?;
    let engine = state.behaviour.clone();
    // The peer address goes to the audit trail of the web pages.
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
        .with_graceful_shutdown(shutdown)
        .await?;
    // Acknowledged events are already committed; this saves the derived state so the
    // next start replays less.
    if let Err(e) = engine.snapshot().await {
        tracing::error!(error = %e, "saving the behaviour snapshot at shutdown");
    }
    Ok(())
}
