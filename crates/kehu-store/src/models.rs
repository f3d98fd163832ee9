//! The model registry: versioned models (their JSON, metrics and HTML report) per
//! purpose — `credit_grade`, `propensity:fund`, … — with exactly one active version per
//! purpose, which is what scoring uses. The store keeps the model as text; reading it is
//! the model toolkit's business.

use crate::BeginWrite;
use crate::rows::RowExt;
use crate::{with_pool, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A registered model, without its body and report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub purpose: String,
    pub version: i64,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// The validation figures recorded at registration (JSON).
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
    pub active: bool,
}

/// What is registered.
pub struct NewModel<'a> {
    pub purpose: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub metrics: serde_json::Value,
    pub model_json: &'a str,
    pub report_html: Option<&'a str>,
}

/// A purpose names what a model is for: lower-case letters, digits, `_`, `-`, `.`, `:`.
pub fn valid_purpose(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 64
        && p.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.' | ':')
        })
}

fn info(r: &impl RowExt) -> Result<ModelInfo> {
    let metrics = r.s("metrics")?;
    Ok(ModelInfo {
        purpose: r.s("purpose")?,
        version: r.i("version")?,
        name: r.s("name")?,
        description: r.s("description")?,
        created_at: r.t("created_at")?,
        metrics: serde_json::from_str(&metrics).map_err(|_| StoreError::Corrupt {
            table: "models",
            column: "metrics",
            value: metrics,
        })?,
        active: r.b("active")?,
    })
}

const INFO_COLS: &str = "purpose, version, name, description, created_at, metrics, active";

impl Store {
    /// Registers a new version (the next number for its purpose); returns it. With
    /// `activate`, it becomes the active version at once.
    pub async fn register_model(
        &self,
        m: &NewModel<'_>,
        activate: bool,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let metrics = m.metrics.to_string();
        let insert = "INSERT INTO models (purpose, version, name, description, created_at, metrics, model, report) \
             VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE purpose = $1), $2, $3, $4, $5, $6, $7) \
             RETURNING version";
        let version: i64 = with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let v: i64 = sqlx::query_scalar(insert)
                .bind(m.purpose)
                .bind(m.name)
                .bind(m.description)
                .bind(now)
                .bind(&metrics)
                .bind(m.model_json)
                .bind(m.report_html)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            v
        });
        if activate {
            self.activate_model(m.purpose, version).await?;
        }
        Ok(version)
    }

    /// Makes `version` the active one of its purpose; false if there is no such version.
    pub async fn activate_model(&self, purpose: &str, version: i64) -> Result<bool> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM models WHERE purpose = $1 AND version = $2")
                .bind(purpose)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(false);
            }
            sqlx::query("UPDATE models SET active = false WHERE purpose = $1 AND active")
                .bind(purpose)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE models SET active = true WHERE purpose = $1 AND version = $2")
                .bind(purpose)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn list_models(&self, purpose: Option<&str>) -> Result<Vec<ModelInfo>> {
        let sql = format!("SELECT {INFO_COLS} FROM models WHERE ($1 IS NULL OR purpose = $1) ORDER BY purpose, version DESC");
        with_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(purpose).fetch_all(p).await?;
            rows.iter().map(|r| info(r)).collect()
        })
    }

    /// The active model of a purpose: its summary and its JSON.
    pub async fn active_model(&self, purpose: &str) -> Result<Option<(ModelInfo, String)>> {
        let sql = format!("SELECT {INFO_COLS}, model FROM models WHERE purpose = $1 AND active");
        with_pool!(self, p => {
            match sqlx::query(&sql).bind(purpose).fetch_optional(p).await? {
                Some(r) => Ok(Some((info(&r)?, r.s("model")?))),
                None => Ok(None),
            }
        })
    }

    /// The HTML report of a version (the active one when `version` is none).
    pub async fn model_report(
        &self,
        purpose: &str,
        version: Option<i64>,
    ) -> Result<Option<String>> {
        let sql = "SELECT report FROM models WHERE purpose = $1 AND (($2 IS NULL AND active) OR version = $2)";
        with_pool!(self, p => {
            let r: Option<Option<String>> = sqlx::query_scalar(sql).bind(purpose).bind(version).fetch_optional(p).await?;
            Ok(r.flatten())
        })
    }
}
