//! Decoding rows into domain records, shared by both backends through `RowExt`.

use crate::{Result, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use kehu_domain::money::{Bp, Fen};
use kehu_domain::state::*;
use sqlx::Row;

pub(crate) trait RowExt {
    fn s(&self, c: &str) -> Result<String>;
    fn os(&self, c: &str) -> Result<Option<String>>;
    fn i(&self, c: &str) -> Result<i64>;
    fn oi(&self, c: &str) -> Result<Option<i64>>;
    fn b(&self, c: &str) -> Result<bool>;
    fn od(&self, c: &str) -> Result<Option<NaiveDate>>;
    fn d(&self, c: &str) -> Result<NaiveDate>;
    fn t(&self, c: &str) -> Result<DateTime<Utc>>;
    fn f(&self, c: &str) -> Result<f64>;
}

macro_rules! row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn s(&self, c: &str) -> Result<String> {
                Ok(self.try_get(c)?)
            }
            fn os(&self, c: &str) -> Result<Option<String>> {
                Ok(self.try_get(c)?)
            }
            fn i(&self, c: &str) -> Result<i64> {
                Ok(self.try_get(c)?)
            }
            fn oi(&self, c: &str) -> Result<Option<i64>> {
                Ok(self.try_get(c)?)
            }
            fn b(&self, c: &str) -> Result<bool> {
                Ok(self.try_get(c)?)
            }
            fn od(&self, c: &str) -> Result<Option<NaiveDate>> {
                Ok(self.try_get(c)?)
            }
            fn d(&self, c: &str) -> Result<NaiveDate> {
                Ok(self.try_get(c)?)
            }
            fn t(&self, c: &str) -> Result<DateTime<Utc>> {
                Ok(self.try_get(c)?)
            }
            fn f(&self, c: &str) -> Result<f64> {
                Ok(self.try_get(c)?)
            }
        }
    };
}
row_ext!(sqlx::sqlite::SqliteRow);
row_ext!(sqlx::postgres::PgRow);

pub(crate) fn code<T>(
    table: &'static str,
    column: &'static str,
    v: String,
    parse: fn(&str) -> Option<T>,
) -> Result<T> {
    parse(&v).ok_or(StoreError::Corrupt {
        table,
        column,
        value: v,
    })
}

pub(crate) fn customer(r: &impl RowExt) -> Result<Customer> {
    Ok(Customer {
        external_id: r.s("external_id")?,
        name: r.s("name")?,
        gender: code("customers", "gender", r.s("gender")?, Gender::parse)?,
        birth_date: r.od("birth_date")?,
        phone: r.os("phone")?,
        id_number: r.os("id_number")?,
        income_band: r
            .os("income_band")?
            .map(|v| code("customers", "income_band", v, IncomeBand::parse))
            .transpose()?,
        occupation: r.os("occupation")?,
        branch: r.os("branch")?,
        manager_id: r.os("manager_id")?,
        vip_tier: code("customers", "vip_tier", r.s("vip_tier")?, VipTier::parse)?,
        consent_sms: r.b("consent_sms")?,
        consent_push: r.b("consent_push")?,
        consent_call: r.b("consent_call")?,
        personalization: r.b("personalization")?,
    })
}

pub(crate) fn staff(r: &impl RowExt) -> Result<Staff> {
    Ok(Staff {
        external_id: r.s("external_id")?,
        name: r.s("name")?,
        role: code("staff", "role", r.s("role")?, Role::parse)?,
        branch: r.os("branch")?,
    })
}

pub(crate) fn product(r: &impl RowExt) -> Result<Product> {
    Ok(Product {
        code: r.s("code")?,
        name: r.s("name")?,
        kind: code("products", "kind", r.s("kind")?, ProductKind::parse)?,
        risk_level: code(
            "products",
            "risk_level",
            r.s("risk_level")?,
            RiskLevel::parse,
        )?,
        min_purchase: Fen(r.i("min_purchase_fen")?),
        term_days: r.oi("term_days")?.map(|v| v as i32),
        expected_yield: r.oi("expected_yield_bp")?.map(|v| Bp(v as i32)),
        sale_start: r.od("sale_start")?,
        sale_end: r.od("sale_end")?,
        repeatable: r.b("repeatable")?,
    })
}

/// Expects the holding's columns plus `customer_ext` and `product_code`.
pub(crate) fn holding(r: &impl RowExt) -> Result<Holding> {
    Ok(Holding {
        external_id: r.s("external_id")?,
        customer_id: r.s("customer_ext")?,
        product_code: r.os("product_code")?,
        asset_class: code(
            "holdings",
            "asset_class",
            r.s("asset_class")?,
            AssetClass::parse,
        )?,
        balance: Fen(r.i("balance_fen")?),
        opened_on: r.od("opened_on")?,
        as_of: r.d("as_of")?,
    })
}

/// Expects the transaction's columns plus `customer_ext` and `product_code`.
pub(crate) fn transaction(r: &impl RowExt) -> Result<Transaction> {
    Ok(Transaction {
        external_id: r.s("external_id")?,
        customer_id: r.s("customer_ext")?,
        amount: Fen(r.i("amount_fen")?),
        direction: code(
            "transactions",
            "direction",
            r.s("direction")?,
            Direction::parse,
        )?,
        category: code(
            "transactions",
            "category",
            r.s("category")?,
            TxnCategory::parse,
        )?,
        channel: code("transactions", "channel", r.s("channel")?, Channel::parse)?,
        occurred_at: r.t("occurred_at")?,
        product_code: r.os("product_code")?,
        description: r.os("description")?,
    })
}
