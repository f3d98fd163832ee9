//! Configuration: defaults, then a TOML file (`--config`, or `kehu.toml` in the data
//! directory), then `KEHU_*` environment variables (`__` for nesting, e.g.
//! `KEHU_IMPORT__MAX_ERRORS=50`), then command-line flags. See docs/configuration.md.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database and spooled files live.
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL; empty for SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// A file holding the database URL (for secrets); used when `database_url` is empty.
    pub database_url_file: Option<PathBuf>,
    pub listen: String,
    /// The business time zone as a UTC offset (China Standard Time, no daylight saving).
    pub utc_offset: String,
    /// Mask phone and ID numbers in API responses.
    pub mask_personal_data: bool,
    pub recent_transactions: i64,
    pub import: ImportConfig,
    pub store: StoreConfig,
    /// Behaviour events, state, suitability and recommendation (docs/behaviour.md).
    #[serde(default)]
    pub behaviour: kehu_server::BehaviourConfig,
    pub web: WebSettings,
    /// Electricity billing and collections: penalty rates, VEE thresholds, dunning gates,
    /// credit grades (docs/billing.md).
    #[serde(default)]
    pub billing: kehu_domain::billing::BillingRules,
    /// The HTTP API (`[api]`).
    #[serde(default)]
    pub api: ApiSettings,
}

/// The HTTP API (`[api]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// `/api/v1/*` needs `Authorization: Bearer TOKEN` (`kehu api-token create`). Turn
    /// off only behind a gateway that authenticates every call. Default on.
    pub require_token: bool,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            require_token: true,
        }
    }
}

/// The web workbench (`[web]`): sessions, lock-out, cookies, the demo app login.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    pub session_hours: i64,
    pub max_failed_logins: i64,
    pub lockout_minutes: i64,
    /// Mark cookies Secure: set when kehu is served over HTTPS (directly or by a proxy).
    pub secure_cookies: bool,
    /// Let visitors open /app as a demo customer picked from a list (`serve --demo` turns it on).
    pub app_demo_login: bool,
    pub dashboard_cache_secs: u64,
}

impl WebSettings {
    pub fn to_server(&self, demo: bool) -> kehu_server::web::WebConfig {
        kehu_server::web::WebConfig {
            session_hours: self.session_hours,
            max_failed_logins: self.max_failed_logins,
            lockout_minutes: self.lockout_minutes,
            secure_cookies: self.secure_cookies,
            app_demo_login: self.app_demo_login || demo,
            dashboard_cache_secs: self.dashboard_cache_secs,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    pub max_errors: usize,
    pub batch_rows: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub max_connections: u32,
    pub sqlite_cache_kib: u32,
    #[serde(default = "default_wal_checkpoint_pages")]
    pub sqlite_wal_checkpoint_pages: u32,
    #[serde(default = "default_timeline_batch_events")]
    pub sqlite_timeline_batch_events: u32,
}

fn default_wal_checkpoint_pages() -> u32 {
    kehu_store::StoreOptions::default().sqlite_wal_checkpoint_pages
}

fn default_timeline_batch_events() -> u32 {
    kehu_store::StoreOptions::default().sqlite_timeline_batch_events
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_url_file: None,
            listen: "127.0.0.1:8080".into(),
            utc_offset: "+08:00".into(),
            mask_personal_data: true,
            recent_transactions: 20,
            import: ImportConfig {
                max_errors: 100,
                batch_rows: 2_000,
            },
            store: StoreConfig {
                max_connections: 8,
                sqlite_cache_kib: 65_536,
                sqlite_wal_checkpoint_pages: default_wal_checkpoint_pages(),
                sqlite_timeline_batch_events: default_timeline_batch_events(),
            },
            behaviour: kehu_server::BehaviourConfig::default(),
            web: {
                let w = kehu_server::web::WebConfig::default();
                WebSettings {
                    session_hours: w.session_hours,
                    max_failed_logins: w.max_failed_logins,
                    lockout_minutes: w.lockout_minutes,
                    secure_cookies: w.secure_cookies,
                    app_demo_login: w.app_demo_login,
                    dashboard_cache_secs: w.dashboard_cache_secs,
                }
            },
            billing: kehu_domain::billing::BillingRules::default(),
            api: ApiSettings::default(),
        }
    }
}

impl Config {
    pub fn load(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Config, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let candidate = match file {
            Some(f) => {
                if !f.exists() {
                    return Err(format!("config file {} does not exist", f.display()));
                }
                Some(f.to_path_buf())
            }
            None => {
                let dir = data_dir
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| Config::default().data_dir);
                Some(dir.join("kehu.toml")).filter(|p| p.exists())
            }
        };
        if let Some(f) = candidate {
            fig = fig.merge(Toml::file(f));
        }
        // Only kehu's own settings: other KEHU_* variables (KEHU_LOG, test and benchmark
        // variables) are not configuration.
        // The settings' names come from the struct itself, so the list cannot drift.
        let keys: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        };
        let env = Env::prefixed("KEHU_").split("__").filter(move |k| {
            let top = k.as_str().split('.').next().unwrap_or_default();
            keys.iter().any(|key| key.eq_ignore_ascii_case(top))
        });
        fig = fig.merge(env);
        let mut cfg: Config = fig.extract().map_err(|e| format!("configuration: {e}"))?;
        if cfg.database_url.as_deref().map_or(true, str::is_empty) {
            if let Some(f) = &cfg.database_url_file {
                let url = std::fs::read_to_string(f)
                    .map_err(|e| format!("database_url_file {}: {e}", f.display()))?;
                cfg.database_url = Some(url.trim().to_string());
            }
        }
        Ok(cfg)
    }

    pub fn offset(&self) -> Result<chrono::FixedOffset, String> {
        let s = self.utc_offset.trim();
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(format!("utc_offset {s:?}: expected like +08:00")),
        };
        let (h, m) = rest
            .split_once(':')
            .ok_or_else(|| format!("utc_offset {s:?}: expected like +08:00"))?;
        let secs = h
            .parse::<i32>()
            .ok()
            .zip(m.parse::<i32>().ok())
            .map(|(h, m)| sign * (h * 3600 + m * 60));
        secs.and_then(chrono::FixedOffset::east_opt)
            .ok_or_else(|| format!("utc_offset {s:?}: expected like +08:00"))
    }

    pub fn database_url(&self) -> String {
        match self.database_url.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => u.to_string(),
            None => kehu_store::Store::sqlite_url_for_dir(&self.data_dir),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_then_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "k.toml",
                "listen = \"0.0.0.0:9000\"\n[import]\nmax_errors = 5\nbatch_rows = 10\n",
            )?;
            jail.set_env("KEHU_IMPORT__MAX_ERRORS", "7");
            jail.set_env("KEHU_TEST_DATABASE_URL", "postgres://not-config");
            jail.set_env("KEHU_LOG", "debug");
            let c = Config::load(Some(Path::new("k.toml")), None).map_err(figment::Error::from)?;
            assert_eq!(c.listen, "0.0.0.0:9000");
            assert_eq!((c.import.max_errors, c.import.batch_rows), (7, 10));
            assert_eq!(c.utc_offset, "+08:00");
            assert_eq!(c.offset().unwrap().local_minus_utc(), 8 * 3600);
            jail.create_file("bad.toml", "lisen = \"x\"\n")?;
            let e = Config::load(Some(Path::new("bad.toml")), None).unwrap_err();
            assert!(e.contains("lisen"), "{e}");
            Ok(())
        });
    }
}
