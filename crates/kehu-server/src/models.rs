//! Model registry over HTTP: list, report, and scoring with the active model of a purpose.

use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use kehu_scorecard::Model;
use kehu_store::ModelInfo;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Parsed active models by purpose, with their version: parsed once, reused until another
/// version is activated.
#[derive(Default)]
pub struct ModelCache(std::sync::RwLock<HashMap<String, (i64, Arc<Model>)>>);

#[derive(Deserialize, IntoParams)]
pub(crate) struct ModelParams {
    /// Only this purpose (e.g. credit_grade, propensity:fund).
    purpose: Option<String>,
}

/// Registered models, newest version first, with their validation figures.
#[utoipa::path(get, path = "/api/v1/models", params(ModelParams), responses((status = 200, body = [ModelInfo])))]
pub(crate) async fn list(
    State(s): State<AppState>,
    Query(p): Query<ModelParams>,
) -> Result<Json<Vec<ModelInfo>>, ApiError> {
    Ok(Json(s.store.list_models(p.purpose.as_deref()).await?))
}

/// The HTML validation report of the active model of a purpose.
#[utoipa::path(get, path = "/api/v1/models/{purpose}/report", params(("purpose" = String, Path)),
    responses((status = 200, content_type = "text/html", body = String), (status = 404, description = "no active model or no report")))]
pub(crate) async fn report(
    State(s): State<AppState>,
    Path(purpose): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let html = s
        .store
        .model_report(&purpose, None)
        .await?
        .ok_or(ApiError::NotFound {
            what: "model report",
            key: purpose,
        })?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Reason {
    variable: String,
    /// The bin the value fell in (its label), or none for a category never seen in training.
    bin: Option<String>,
    points: f64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ScoreOut {
    /// Total points (higher = fewer events).
    score: f64,
    /// Probability of the event.
    p_event: f64,
    /// Points per variable: the reasons for the score.
    reasons: Vec<Reason>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ScoreResponse {
    purpose: String,
    version: i64,
    scores: Vec<ScoreOut>,
}

async fn active(s: &AppState, purpose: &str) -> Result<(i64, Arc<Model>), ApiError> {
    let not_found = || ApiError::NotFound {
        what: "active model for purpose",
        key: purpose.to_string(),
    };
    let version = s
        .store
        .list_models(Some(purpose))
        .await?
        .into_iter()
        .find(|m| m.active)
        .map(|m| m.version);
    let version = version.ok_or_else(not_found)?;
    if let Some((v, m)) = s.models.0.read().expect("model cache").get(purpose) {
        if *v == version {
            return Ok((*v, m.clone()));
        }
    }
    let (info, json) = s.store.active_model(purpose).await?.ok_or_else(not_found)?;
    let model: Model = serde_json::from_str(&json).map_err(|e| {
        ApiError::BadRequest(format!(
            "stored model {purpose} v{} cannot be read: {e}",
            info.version
        ))
    })?;
    let model = Arc::new(model);
    s.models
        .0
        .write()
        .expect("model cache")
        .insert(purpose.to_string(), (info.version, model.clone()));
    Ok((info.version, model))
}

/// Scores one record or an array of records with the active model of `purpose`.
#[utoipa::path(post, path = "/api/v1/models/{purpose}/score", params(("purpose" = String, Path)),
    request_body(content = Object, description = "one record (field → string, number or boolean; null = missing) or an array of records"),
    responses((status = 200, body = ScoreResponse), (status = 400, description = "a value the model cannot use"),
              (status = 404, description = "no active model")))]
pub(crate) async fn score(
    State(s): State<AppState>,
    Path(purpose): Path<String>,
    Json(input): Json<serde_json::Value>,
) -> Result<Json<ScoreResponse>, ApiError> {
    let (version, model) = active(&s, &purpose).await?;
    let as_record = |v: serde_json::Value, i: usize| match v {
        serde_json::Value::Object(m) => Ok(m),
        other => Err(ApiError::BadRequest(format!(
            "record {i}: expected a JSON object of fields, found {other}"
        ))),
    };
    let records = match input {
        serde_json::Value::Array(v) => v
            .into_iter()
            .enumerate()
            .map(|(i, r)| as_record(r, i))
            .collect::<Result<Vec<_>, _>>()?,
        one => vec![as_record(one, 0)?],
    };
    if records.len() > 10_000 {
        return Err(ApiError::BadRequest(format!(
            "{} records: at most 10,000 per request",
            records.len()
        )));
    }
    let mut scores = Vec::with_capacity(records.len());
    for (i, rec) in records.into_iter().enumerate() {
        let mut row = HashMap::with_capacity(rec.len());
        for (k, v) in rec {
            let text = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(ApiError::BadRequest(format!(
                    "record {i}, field {k:?}: expected a string, number or boolean, found {other}"
                )))
                }
            };
            row.insert(k, text);
        }
        let sc = model
            .score_row(&row)
            .map_err(|e| ApiError::BadRequest(format!("record {i}: {e}")))?;
        let reasons = model
            .variables
            .iter()
            .zip(sc.points.iter().zip(&sc.bins))
            .map(|(v, (pts, bin))| Reason {
                variable: v.binning.name.clone(),
                bin: bin
                    .and_then(|b| v.binning.bins.get(b))
                    .map(|b| b.label.clone()),
                points: *pts,
            })
            .collect();
        scores.push(ScoreOut {
            score: sc.total,
            p_event: sc.p_event,
            reasons,
        });
    }
    Ok(Json(ScoreResponse {
        purpose,
        version,
        scores,
    }))
}
