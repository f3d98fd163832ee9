//! Credentials for the HTTP API. Integrations (the bank's app backend, a nightly load, a
//! reporting job) call `/api/v1/*` with `Authorization: Bearer kehu_api_…`; behaviour
//! events keep their own app keys, which can only write events. Only the SHA-256 of a
//! token is stored; the token itself is shown once, when it is made.

use crate::rows::RowExt;
use crate::{with_pool, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A named API token (never the token itself).
#[derive(Clone, Debug, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// The staff member the token acts for, if any (see `create_api_token`).
    pub staff: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
}

/// `prefix` and `bytes` random bytes from the operating system, in hex: the shape of
/// every secret kehu hands out (app keys, API tokens).
pub(crate) fn random_secret(prefix: &str, bytes: usize) -> String {
    use rand::RngCore;
    let mut raw = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let mut s = String::with_capacity(prefix.len() + 2 * bytes);
    s.push_str(prefix);
    for b in raw {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The digest kept for a secret (hex SHA-256): app keys and API tokens are looked up by it.
pub fn api_token_digest(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> String {
    random_secret("kehu_api_", 32)
}

impl Store {
    /// Makes a token named `name`; returns it (shown once: only its digest is kept). With
    /// `staff`, the token acts for that staff member: the API records them as the one who
    /// did what the call does, within their role's permissions.
    pub async fn create_api_token(&self, name: &str, staff: Option<&str>) -> Result<String> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(StoreError::Conflict(format!(
                "an API token needs a name of 1 to 64 characters, got {name:?}"
            )));
        }
        let staff = staff.map(str::trim).filter(|s| !s.is_empty());
        if let Some(id) = staff {
            if self.staff_member(id).await?.is_none() {
                return Err(StoreError::Conflict(format!(
                    "no staff member {id:?}: an API token can only act for a known staff member"
                )));
            }
        }
        let token = new_token();
        let sql = "INSERT INTO api_tokens (name, token_hash, created_at, staff_id) VALUES ($1, $2, $3, $4)";
        with_pool!(self, p => {
            sqlx::query(sql).bind(name).bind(api_token_digest(&token)).bind(Utc::now()).bind(staff).execute(p).await.map(|_| ())
        })
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(format!("an API token named {name:?} exists already"))
            }
            e => e.into(),
        })?;
        Ok(token)
    }

    /// Stores a token chosen elsewhere (the demo's fixed token) if the name is new.
    pub async fn ensure_api_token(&self, name: &str, token: &str) -> Result<()> {
        let sql = "INSERT INTO api_tokens (name, token_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
        with_pool!(self, p => {
            sqlx::query(sql).bind(name).bind(api_token_digest(token)).bind(Utc::now()).execute(p).await?;
        });
        Ok(())
    }

    /// The name of the token with this digest and the staff member it acts for, unless
    /// unknown or revoked.
    pub async fn api_token_by_digest(&self, digest: &str) -> Result<Option<(String, Option<String>)>> {
        let sql = "SELECT name, staff_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL";
        with_pool!(self, p => Ok(sqlx::query_as::<_, (String, Option<String>)>(sql).bind(digest).fetch_optional(p).await?))
    }

    pub async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        let sql = "SELECT id, name, staff_id, created_at, revoked_at FROM api_tokens ORDER BY id";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).fetch_all(p).await?;
            rows.iter().map(|r| {
                use sqlx::Row;
                Ok(ApiToken {
                    id: r.i("id")?, name: r.s("name")?, staff: r.try_get::<Option<String>, _>("staff_id")?,
                    created_at: r.t("created_at")?,
                    revoked: r.try_get::<Option<DateTime<Utc>>, _>("revoked_at")?.is_some(),
                })
            }).collect()
        })
    }

    /// Revokes the token named `name`; false when there is no such live token.
    pub async fn revoke_api_token(&self, name: &str) -> Result<bool> {
        let sql = "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL";
        with_pool!(self, p => Ok(sqlx::query(sql).bind(Utc::now()).bind(name).execute(p).await?.rows_affected() > 0))
    }
}
