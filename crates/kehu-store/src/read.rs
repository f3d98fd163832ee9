//! Reads for the API, the UI and exports. Paging is by keyset (`after` the last id seen),
//! so page 10,000 costs the same as page 1.

use crate::rows::{self, RowExt};
use crate::{with_pool, Result, Store};
use kehu_domain::ingest::EntityKind;
use kehu_domain::money::Fen;
use kehu_domain::state::*;
use serde::Serialize;

/// A customer search. `text` is matched against the external id (exact), the last four
/// digits of the phone number (exact) and the name (prefix).
#[derive(Debug, Clone, Default)]
pub struct CustomerQuery {
    pub text: Option<String>,
    pub manager_id: Option<String>,
    pub branch: Option<String>,
    pub after: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerRow {
    pub id: i64,
    #[serde(flatten)]
    pub customer: Customer,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HoldingView {
    #[serde(flatten)]
    pub holding: Holding,
    pub product_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClassTotal {
    pub asset_class: AssetClass,
    pub label_zh: &'static str,
    pub label_en: &'static str,
    /// In fen.
    pub total: Fen,
}

/// The 360 basics: profile, holdings with totals by class, recent transactions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Customer360 {
    pub id: i64,
    pub customer: Customer,
    pub holdings: Vec<HoldingView>,
    pub totals: Vec<ClassTotal>,
    /// Assets minus liabilities, in fen.
    pub net_worth: Fen,
    pub recent_transactions: Vec<Transaction>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductRow {
    pub id: i64,
    #[serde(flatten)]
    pub product: Product,
}

pub(crate) const CUSTOMER_COLS: &str =
    "id, external_id, name, gender, birth_date, phone, id_number, income_band, occupation, \
    branch, manager_id, vip_tier, consent_sms, consent_push, consent_call, personalization";
const HOLDING_SELECT: &str = "SELECT h.id, h.external_id, c.external_id AS customer_ext, p.code AS product_code, \
    p.name AS product_name, h.asset_class, h.balance_fen, h.opened_on, h.as_of \
    FROM holdings h JOIN customers c ON c.id = h.customer_id LEFT JOIN products p ON p.id = h.product_id";
const TXN_SELECT: &str = "SELECT t.id, t.external_id, c.external_id AS customer_ext, t.amount_fen, t.direction, \
    t.category, t.channel, t.occurred_at, p.code AS product_code, t.description \
    FROM transactions t JOIN customers c ON c.id = t.customer_id LEFT JOIN products p ON p.id = t.product_id";

/// How a search text is read: digits-only of length 4 may be a phone suffix.
/// Returns (the text, as a phone suffix if it can be one, the upper end of the name-prefix
/// range); the text itself is both the exact key and the range's lower end.
fn search_terms(text: &str) -> (String, Option<String>, String) {
    let t = text.trim().to_string();
    let last4 = (t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.clone());
    let hi = format!("{t}\u{10FFFF}");
    (t, last4, hi)
}

impl Store {
    pub async fn search_customers(&self, q: &CustomerQuery) -> Result<Vec<CustomerRow>> {
        let limit = q.limit.clamp(1, 1000);
        let after = q.after.unwrap_or(0);
        let text = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
        // Each search term uses its own index; the union keeps the planner honest on both
        // backends, then the page is cut by id.
        let filters = "($5 IS NULL OR manager_id = $5) AND ($6 IS NULL OR branch = $6) AND id > $7 ORDER BY id LIMIT $8";
        // Each search term uses its own index; the union keeps the planner honest on both
        // backends, then the page is cut by id. Without a text, $1–$4 are null and unused.
        let sql = match text {
            Some(_) => format!(
                "SELECT {CUSTOMER_COLS} FROM customers WHERE id IN (\
                   SELECT id FROM customers WHERE external_id = $1 \
                   UNION SELECT id FROM customers WHERE phone_last4 = $2 \
                   UNION SELECT id FROM customers WHERE name >= $3 AND name < $4) AND {filters}"
            ),
            None => format!(
                "SELECT {CUSTOMER_COLS} FROM customers WHERE $1 IS NULL AND $2 IS NULL AND $3 IS NULL \
                 AND $4 IS NULL AND {filters}"
            ),
        };
        let (exact, last4, hi) = match text {
            Some(t) => {
                let (t, last4, hi) = search_terms(t);
                (Some(t), last4, Some(hi))
            }
            None => (None, None, None),
        };
        with_pool!(self, p => {
            let rows = sqlx::query(&sql)
                .bind(&exact)
                .bind(last4)
                .bind(&exact)
                .bind(hi)
                .bind(q.manager_id.as_deref())
                .bind(q.branch.as_deref())
                .bind(after)
                .bind(limit)
                .fetch_all(p)
                .await?;
            rows.iter().map(|r| Ok(CustomerRow { id: r.i("id")?, customer: rows::customer(r)? })).collect()
        })
    }

    /// Finds a customer by internal id or, failing that, by external id.
    pub async fn customer_id(&self, key: &str) -> Result<Option<i64>> {
        let by_id = key.parse::<i64>().ok();
        let sql = "SELECT id FROM customers WHERE id = $1 UNION ALL SELECT id FROM customers WHERE external_id = $2 LIMIT 1";
        with_pool!(self, p => {
            Ok(sqlx::query_scalar::<_, i64>(sql).bind(by_id.unwrap_or(-1)).bind(key).fetch_optional(p).await?)
        })
    }

    pub async fn customer_360(&self, id: i64, recent: i64) -> Result<Option<Customer360>> {
        let csql = format!("SELECT {CUSTOMER_COLS} FROM customers WHERE id = $1");
        let hsql =
            format!("{HOLDING_SELECT} WHERE h.customer_id = $1 ORDER BY h.asset_class, h.id");
        let tsql = format!(
            "{TXN_SELECT} WHERE t.customer_id = $1 ORDER BY t.occurred_at DESC, t.id DESC LIMIT $2"
        );
        with_pool!(self, p => {
            let Some(row) = sqlx::query(&csql).bind(id).fetch_optional(p).await? else { return Ok(None) };
            let customer = rows::customer(&row)?;
            let holdings: Vec<HoldingView> = sqlx::query(&hsql)
                .bind(id)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok(HoldingView { holding: rows::holding(r)?, product_name: r.os("product_name")? }))
                .collect::<Result<_>>()?;
            let recent_transactions = sqlx::query(&tsql)
                .bind(id)
                .bind(recent)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| rows::transaction(r))
                .collect::<Result<_>>()?;
            let by_class = totals_by_class(holdings.iter().map(|h| &h.holding));
            let net = net_worth(&by_class);
            let totals = by_class
                .into_iter()
                .map(|(c, t)| ClassTotal { asset_class: c, label_zh: c.label_zh(), label_en: c.label_en(), total: t })
                .collect();
            Ok(Some(Customer360 { id, customer, holdings, totals, net_worth: net, recent_transactions }))
        })
    }

    pub async fn list_products(&self, kind: Option<ProductKind>) -> Result<Vec<ProductRow>> {
        let sql = "SELECT * FROM products WHERE ($1 IS NULL OR kind = $1) ORDER BY kind, code";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(kind.map(|k| k.code())).fetch_all(p).await?;
            rows.iter().map(|r| Ok(ProductRow { id: r.i("id")?, product: rows::product(r)? })).collect()
        })
    }

    pub async fn product(&self, code: &str) -> Result<Option<ProductRow>> {
        let sql = "SELECT * FROM products WHERE code = $1";
        with_pool!(self, p => {
            match sqlx::query(sql).bind(code).fetch_optional(p).await? {
                Some(r) => Ok(Some(ProductRow { id: r.i("id")?, product: rows::product(&r)? })),
                None => Ok(None),
            }
        })
    }

    /// Rows of a kind in id order after `after`, as the values of their import format.
    /// Returns the last id of the page with the rows.
    pub async fn export_page(
        &self,
        kind: EntityKind,
        after: i64,
        limit: i64,
    ) -> Result<(i64, Vec<Vec<String>>)> {
        use kehu_domain::ingest::Record;
        let sql = match kind {
            EntityKind::Customers => {
                format!("SELECT {CUSTOMER_COLS} FROM customers WHERE id > $1 ORDER BY id LIMIT $2")
            }
            EntityKind::Staff => "SELECT * FROM staff WHERE id > $1 ORDER BY id LIMIT $2".into(),
            EntityKind::Products => {
                "SELECT * FROM products WHERE id > $1 ORDER BY id LIMIT $2".into()
            }
            EntityKind::Holdings => {
                format!("{HOLDING_SELECT} WHERE h.id > $1 ORDER BY h.id LIMIT $2")
            }
            EntityKind::Transactions => {
                format!("{TXN_SELECT} WHERE t.id > $1 ORDER BY t.id LIMIT $2")
            }
        };
        with_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(after).bind(limit).fetch_all(p).await?;
            let mut last = after;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                last = r.i("id")?;
                out.push(match kind {
                    EntityKind::Customers => rows::customer(r)?.to_values(),
                    EntityKind::Staff => rows::staff(r)?.to_values(),
                    EntityKind::Products => rows::product(r)?.to_values(),
                    EntityKind::Holdings => rows::holding(r)?.to_values(),
                    EntityKind::Transactions => rows::transaction(r)?.to_values(),
                });
            }
            Ok((last, out))
        })
    }

    /// Number of rows of each kind.
    pub async fn counts(&self) -> Result<Vec<(EntityKind, i64)>> {
        let mut out = Vec::new();
        for kind in EntityKind::ALL {
            let sql = format!("SELECT COUNT(*) FROM {}", kind.name());
            let n: i64 = with_pool!(self, p => sqlx::query_scalar(&sql).fetch_one(p).await?);
            out.push((kind, n));
        }
        Ok(out)
    }

    pub async fn staff_list(&self, role: Option<Role>) -> Result<Vec<Staff>> {
        let sql = "SELECT * FROM staff WHERE ($1 IS NULL OR role = $1) ORDER BY external_id";
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(role.map(|r| r.code())).fetch_all(p).await?;
            rows.iter().map(|r| rows::staff(r)).collect()
        })
    }
}
