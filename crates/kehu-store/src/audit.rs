//! The audit trail: security-relevant staff actions (logins, failures, lock-outs,
//! logouts, views of personal data in full), one row each, never changed afterwards.
//! Writing is one `INSERT`; reading pages backwards by id with optional filters.

use crate::rows::RowExt;
use crate::{with_pool, Result, Store};
use chrono::{DateTime, Utc};

/// What a staff member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A successful login.
    Login,
    /// A wrong password or an unknown staff id.
    LoginFailed,
    /// A failed login that locked the account, or a login tried while it was locked.
    LoginLocked,
    Logout,
    /// Personal data (phone, ID number, birth date) shown in full.
    Unmask,
    /// An app key created (`detail`: the app name).
    AppKeyCreate,
    /// An app key revoked (`detail`: the app name).
    AppKeyRevoke,
    /// An API token created (`detail`: its name).
    ApiTokenCreate,
    /// An API token revoked (`detail`: its name).
    ApiTokenRevoke,
    /// A payment taken at the collections desk (`detail`: payment id, account, amount).
    PaymentRecord,
    /// A period billed from the workbench (`detail`: period, bills, total).
    BillingRun,
    /// A payment reversed at the collections desk (`detail`: payment id, account, amount,
    /// reason).
    PaymentReverse,
}

impl AuditAction {
    pub const ALL: &'static [AuditAction] = &[
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::LoginLocked,
        AuditAction::Logout,
        AuditAction::Unmask,
        AuditAction::AppKeyCreate,
        AuditAction::AppKeyRevoke,
        AuditAction::ApiTokenCreate,
        AuditAction::ApiTokenRevoke,
        AuditAction::PaymentRecord,
        AuditAction::BillingRun,
        AuditAction::PaymentReverse,
    ];

    pub fn code(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::LoginLocked => "login_locked",
            AuditAction::Logout => "logout",
            AuditAction::Unmask => "unmask",
            AuditAction::AppKeyCreate => "app_key_create",
            AuditAction::AppKeyRevoke => "app_key_revoke",
            AuditAction::ApiTokenCreate => "api_token_create",
            AuditAction::ApiTokenRevoke => "api_token_revoke",
            AuditAction::PaymentRecord => "payment_record",
            AuditAction::BillingRun => "billing_run",
            AuditAction::PaymentReverse => "payment_reverse",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.iter().copied().find(|a| a.code() == s)
    }
}

/// One row of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// 0 for an entry not yet stored.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The staff id (as typed, for a failed login).
    pub staff_id: String,
    /// The staff member's branch at the time, when known.
    pub branch: Option<String>,
    pub action: AuditAction,
    /// The customer number whose data was shown.
    pub customer: Option<String>,
    /// The fields shown in full (`phone`, `id_number`, `birth_date`).
    pub fields: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// What else the action concerns (the app of an app key).
    pub detail: Option<String>,
}

/// Filters and keyset paging of the audit trail (newest first).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub staff_id: Option<String>,
    pub action: Option<AuditAction>,
    /// From this instant (inclusive) …
    pub from: Option<DateTime<Utc>>,
    /// … to this one (exclusive).
    pub to: Option<DateTime<Utc>>,
    /// Only entries with an id below this one (the next page).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Longest user agent kept; the rest is cut (a header can be kilobytes).
const MAX_AGENT: usize = 256;

impl Store {
    /// Appends one entry to the audit trail.
    pub async fn record_audit(&self, e: &AuditEntry) -> Result<()> {
        let sql = "INSERT INTO audit_log (occurred_at, staff_id, branch, action, customer, fields, ip, user_agent, detail) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let fields = (!e.fields.is_empty()).then(|| e.fields.join(","));
        let agent = e
            .user_agent
            .as_deref()
            .map(|a| a.chars().take(MAX_AGENT).collect::<String>());
        let staff: String = e.staff_id.chars().take(64).collect();
        with_pool!(self, p => {
            sqlx::query(sql)
                .bind(e.at)
                .bind(&staff)
                .bind(&e.branch)
                .bind(e.action.code())
                .bind(&e.customer)
                .bind(&fields)
                .bind(&e.ip)
                .bind(&agent)
                .bind(&e.detail)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Entries matching the filters, newest first, at most `limit` (1..=1000).
    pub async fn audit_entries(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let sql = "SELECT id, occurred_at, staff_id, branch, action, customer, fields, ip, user_agent, detail FROM audit_log \
            WHERE ($1 IS NULL OR staff_id = $1) AND ($2 IS NULL OR action = $2) \
            AND ($3 IS NULL OR occurred_at >= $3) AND ($4 IS NULL OR occurred_at < $4) \
            AND ($5 IS NULL OR id < $5) ORDER BY id DESC LIMIT $6";
        with_pool!(self, p => {
            let rows = sqlx::query(sql)
                .bind(q.staff_id.as_deref())
                .bind(q.action.map(AuditAction::code))
                .bind(q.from)
                .bind(q.to)
                .bind(q.before)
                .bind(q.limit.clamp(1, 1000))
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| {
                    let action = r.s("action")?;
                    Ok(AuditEntry {
                        id: r.i("id")?,
                        at: r.t("occurred_at")?,
                        staff_id: r.s("staff_id")?,
                        branch: r.os("branch")?,
                        action: AuditAction::parse(&action).ok_or(crate::StoreError::Corrupt {
                            table: "audit_log",
                            column: "action",
                            value: action,
                        })?,
                        customer: r.os("customer")?,
                        fields: r
                            .os("fields")?
                            .map(|f| f.split(',').map(str::to_string).collect())
                            .unwrap_or_default(),
                        ip: r.os("ip")?,
                        user_agent: r.os("user_agent")?,
                        detail: r.os("detail")?,
                    })
                })
                .collect()
        })
    }
}
