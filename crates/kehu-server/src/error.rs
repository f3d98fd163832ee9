use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Every API error, turned into a JSON body `{"error": {"code": …, "message": …}}` in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{what} {key:?} not found")]
    NotFound { what: &'static str, key: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooLarge(String),
    /// Refused by a business rule; the body is `{"code": …, "message": …}`.
    #[error("{0}")]
    Unprocessable(serde_json::Value),
    #[error(transparent)]
    Store(#[from] kehu_store::StoreError),
    #[error(transparent)]
    Import(#[from] kehu_ingest::ImportError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::Store(kehu_store::StoreError::Conflict(_)) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unprocessable(v) => {
                let body = serde_json::json!({ "error": v });
                return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
            }
            ApiError::Import(kehu_ingest::ImportError::Store { .. }) | ApiError::Store(_) => {
                tracing::error!(error = %self, "store error");
                (StatusCode::INTERNAL_SERVER_ERROR, "store_error")
            }
            ApiError::Import(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_file"),
        };
        let body = serde_json::json!({ "error": { "code": code, "message": self.to_string() } });
        (status, Json(body)).into_response()
    }
}
