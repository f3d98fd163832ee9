//! Reads for the collections workbench pages: one supply account with its meters, and the
//! size of the review queue. The writes and the billing rules stay in `billing`.

use crate::billing::{BResult, BillingError};
use crate::{with_pool, StoreError};
use chrono::NaiveDate;
use kehu_domain::billing::{CustomerClass, SupplyAccount};
use kehu_domain::Fen;
use serde::Serialize;

/// A supply account as the account page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountView {
    pub account: SupplyAccount,
    /// Overpayments kept for the next bills.
    pub credit: Fen,
    pub last_theft_on: Option<NaiveDate>,
    /// The account's meters: number, multiplier, whether the meter is in prepaid mode.
    pub meters: Vec<(String, u32, bool)>,
}

type AccountRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
    i64,
    bool,
    NaiveDate,
    i64,
    Option<NaiveDate>,
);

impl crate::Store {
    /// One supply account by its number (户号); `None` when there is none.
    pub async fn supply_account(&self, external_id: &str) -> BResult<Option<AccountView>> {
        let row: Option<AccountRow> = with_pool!(self, p => {
            sqlx::query_as("SELECT external_id, name, class, area, tariff, penalty_ppm, deposit_fen, prepaid, \
                            opened_on, credit_fen, last_theft_on FROM billing_accounts WHERE external_id = $1")
                .bind(external_id).fetch_optional(p).await.map_err(StoreError::from)?
        });
        let Some((ext, name, class, area, tariff, ppm, deposit, prepaid, opened, credit, theft)) = row
        else {
            return Ok(None);
        };
        let class = CustomerClass::parse(&class).ok_or_else(|| {
            BillingError::Store(StoreError::Corrupt {
                table: "billing_accounts",
                column: "class",
                value: class.clone(),
            })
        })?;
        let meters: Vec<(String, i64, bool)> = with_pool!(self, p => {
            sqlx::query_as("SELECT m.external_id, m.multiplier, m.prepaid_mode FROM billing_meters m \
                            JOIN billing_accounts a ON a.id = m.account_id WHERE a.external_id = $1 ORDER BY m.external_id")
                .bind(external_id).fetch_all(p).await.map_err(StoreError::from)?
        });
        Ok(Some(AccountView {
            account: SupplyAccount {
                external_id: ext,
                name,
                class,
                area,
                tariff,
                penalty_ppm: ppm.map(|v| v as u32),
                deposit: Fen(deposit),
                prepaid,
                opened_on: opened,
            },
            credit: Fen(credit),
            last_theft_on: theft,
            meters: meters
                .into_iter()
                .map(|(m, mult, mode)| (m, mult as u32, mode))
                .collect(),
        }))
    }

    /// How many reads wait for review.
    pub async fn review_count(&self) -> BResult<i64> {
        Ok(with_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM billing_reads WHERE status = 'review'")
                .fetch_one(p).await.map_err(StoreError::from)?
        }))
    }

    /// How many supply accounts there are.
    pub async fn supply_account_count(&self) -> BResult<i64> {
        Ok(with_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM billing_accounts")
                .fetch_one(p).await.map_err(StoreError::from)?
        }))
    }
}
