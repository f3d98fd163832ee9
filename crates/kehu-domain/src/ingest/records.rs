//! The import/export formats of each entity: columns, parsing, writing back.
//! `docs/import.md` documents the same columns; a test keeps them in step.

use super::fields::{Column, FieldError, Fields, ParseContext};
use crate::money::Fen;
use crate::state::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Customers,
    Staff,
    Products,
    Holdings,
    Transactions,
}

impl EntityKind {
    pub const ALL: [EntityKind; 5] = [
        EntityKind::Customers,
        EntityKind::Staff,
        EntityKind::Products,
        EntityKind::Holdings,
        EntityKind::Transactions,
    ];
    pub fn name(self) -> &'static str {
        match self {
            EntityKind::Customers => "customers",
            EntityKind::Staff => "staff",
            EntityKind::Products => "products",
            EntityKind::Holdings => "holdings",
            EntityKind::Transactions => "transactions",
        }
    }
    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.name() == s)
    }
    pub fn columns(self) -> &'static [Column] {
        match self {
            EntityKind::Customers => Customer::COLUMNS,
            EntityKind::Staff => Staff::COLUMNS,
            EntityKind::Products => Product::COLUMNS,
            EntityKind::Holdings => Holding::COLUMNS,
            EntityKind::Transactions => Transaction::COLUMNS,
        }
    }
}

/// A record kind that can be imported and exported.
pub trait Record: Sized + Send + Clone + 'static {
    const KIND: EntityKind;
    const COLUMNS: &'static [Column];
    /// Build a record from the values in `COLUMNS` order, or say every field that is wrong.
    fn parse(values: &[Option<&str>], ctx: ParseContext) -> Result<Self, Vec<FieldError>>;
    /// The values in `COLUMNS` order, as they would be written to a file.
    fn to_values(&self) -> Vec<String>;
    fn external_id(&self) -> &str;
}

const fn col(
    name: &'static str,
    aliases: &'static [&'static str],
    required: bool,
    doc: &'static str,
) -> Column {
    Column {
        name,
        aliases,
        required,
        doc,
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn yes(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

fn finish<T>(f: Fields<'_>, value: T) -> Result<T, Vec<FieldError>> {
    if f.errors.is_empty() {
        Ok(value)
    } else {
        Err(f.errors)
    }
}

impl Record for Customer {
    const KIND: EntityKind = EntityKind::Customers;
    const COLUMNS: &'static [Column] = &[
        col(
            "external_id",
            &["客户号", "customer_id"],
            true,
            "the bank's customer number",
        ),
        col("name", &["姓名"], true, "full name, at most 64 characters"),
        col("gender", &["性别"], false, "M|F|U or 男|女 (default U)"),
        col(
            "birth_date",
            &["出生日期"],
            false,
            "date of birth, not in the future",
        ),
        col(
            "phone",
            &["手机号", "电话"],
            false,
            "11-digit mobile or landline with area code",
        ),
        col(
            "id_number",
            &["证件号码", "身份证号"],
            false,
            "18-character resident ID with check digit",
        ),
        col(
            "income_band",
            &["收入区间"],
            false,
            "lt5k|5k-10k|10k-20k|20k-50k|50k+ (monthly)",
        ),
        col("occupation", &["职业"], false, "free text"),
        col("branch", &["网点", "所属机构"], false, "branch code"),
        col(
            "manager_id",
            &["客户经理"],
            false,
            "staff external id of the assigned customer manager",
        ),
        col(
            "vip_tier",
            &["客户等级"],
            false,
            "standard|gold|platinum|diamond|private (default standard)",
        ),
        col(
            "consent_sms",
            &["短信营销同意"],
            false,
            "true|false (default false)",
        ),
        col(
            "consent_push",
            &["推送同意"],
            false,
            "true|false (default false)",
        ),
        col(
            "consent_call",
            &["电话营销同意"],
            false,
            "true|false (default false)",
        ),
        col(
            "personalization",
            &["个性化推荐"],
            false,
            "true|false (default true)",
        ),
    ];

    fn parse(values: &[Option<&str>], ctx: ParseContext) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::new(Self::COLUMNS, values, ctx);
        let c = Customer {
            external_id: f.id(0),
            name: f.text(1, 64),
            gender: f
                .code(2, Gender::parse, Gender::expected, Some(Gender::Unknown))
                .unwrap_or(Gender::Unknown),
            birth_date: f.opt_past_date(3),
            phone: f.opt_phone(4),
            id_number: f.opt_id_number(5),
            income_band: f.opt_code(6, IncomeBand::parse, IncomeBand::expected),
            occupation: f.opt_text(7, 64),
            branch: f.opt_id(8),
            manager_id: f.opt_id(9),
            vip_tier: f
                .code(
                    10,
                    VipTier::parse,
                    VipTier::expected,
                    Some(VipTier::Standard),
                )
                .unwrap_or(VipTier::Standard),
            consent_sms: f.flag(11, false),
            consent_push: f.flag(12, false),
            consent_call: f.flag(13, false),
            personalization: f.flag(14, true),
        };
        finish(f, c)
    }

    fn to_values(&self) -> Vec<String> {
        vec![
            self.external_id.clone(),
            self.name.clone(),
            self.gender.code().into(),
            opt(&self.birth_date),
            opt(&self.phone),
            opt(&self.id_number),
            self.income_band
                .map(|b| b.code().to_string())
                .unwrap_or_default(),
            opt(&self.occupation),
            opt(&self.branch),
            opt(&self.manager_id),
            self.vip_tier.code().into(),
            yes(self.consent_sms),
            yes(self.consent_push),
            yes(self.consent_call),
            yes(self.personalization),
        ]
    }

    fn external_id(&self) -> &str {
        &self.external_id
    }
}

impl Record for Staff {
    const KIND: EntityKind = EntityKind::Staff;
    const COLUMNS: &'static [Column] = &[
        col("external_id", &["工号", "staff_id"], true, "staff number"),
        col("name", &["姓名"], true, "full name"),
        col(
            "role",
            &["角色"],
            true,
            "admin|customer_manager|marketer|service_agent|collector|analyst|branch_head",
        ),
        col("branch", &["网点", "所属机构"], false, "branch code"),
    ];

    fn parse(values: &[Option<&str>], ctx: ParseContext) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::new(Self::COLUMNS, values, ctx);
        let s = Staff {
            external_id: f.id(0),
            name: f.text(1, 64),
            role: f
                .code(2, Role::parse, Role::expected, None)
                .unwrap_or(Role::CustomerManager),
            branch: f.opt_id(3),
        };
        finish(f, s)
    }

    fn to_values(&self) -> Vec<String> {
        vec![
            self.external_id.clone(),
            self.name.clone(),
            self.role.code().into(),
            opt(&self.branch),
        ]
    }

    fn external_id(&self) -> &str {
        &self.external_id
    }
}

impl Record for Product {
    const KIND: EntityKind = EntityKind::Products;
    const COLUMNS: &'static [Column] = &[
        col("code", &["产品代码", "external_id"], true, "product code"),
        col("name", &["产品名称"], true, "product name"),
        col(
            "kind",
            &["产品类型"],
            true,
            "deposit|wealth|fund|insurance|card|loan",
        ),
        col("risk_level", &["风险等级"], true, "R1|R2|R3|R4|R5"),
        col(
            "min_purchase",
            &["起购金额"],
            false,
            "yuan, zero or more (default 0)",
        ),
        col("term_days", &["期限天数"], false, "whole days, 1 to 36500"),
        col(
            "expected_yield",
            &["业绩比较基准"],
            false,
            "annual percentage like 3.85",
        ),
        col("sale_start", &["募集开始"], false, "first day on sale"),
        col(
            "sale_end",
            &["募集结束"],
            false,
            "last day on sale, not before sale_start",
        ),
        col(
            "repeatable",
            &["可重复购买"],
            false,
            "true|false (default true)",
        ),
    ];

    fn parse(values: &[Option<&str>], ctx: ParseContext) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::new(Self::COLUMNS, values, ctx);
        let min_purchase = if values
            .get(4)
            .copied()
            .flatten()
            .is_some_and(|v| !v.trim().is_empty())
        {
            f.money_non_negative(4, false)
        } else {
            Fen::ZERO
        };
        let p = Product {
            code: f.id(0),
            name: f.text(1, 128),
            kind: f
                .code(2, ProductKind::parse, ProductKind::expected, None)
                .unwrap_or(ProductKind::Deposit),
            risk_level: f
                .code(3, RiskLevel::parse, RiskLevel::expected, None)
                .unwrap_or(RiskLevel::R1),
            min_purchase,
            term_days: f.opt_int(5, 1, 36_500).map(|n| n as i32),
            expected_yield: f.opt_percent(6),
            sale_start: f.opt_date(7),
            sale_end: f.opt_date(8),
            repeatable: f.flag(9, true),
        };
        if let (Some(s), Some(e)) = (p.sale_start, p.sale_end) {
            if e < s {
                f.fail(
                    8,
                    &e.to_string(),
                    format!("a date not before sale_start ({s})"),
                );
            }
        }
        finish(f, p)
    }

    fn to_values(&self) -> Vec<String> {
        vec![
            self.code.clone(),
            self.name.clone(),
            self.kind.code().into(),
            self.risk_level.code().into(),
            self.min_purchase.to_plain(),
            opt(&self.term_days),
            self.expected_yield
                .map(|b| Fen(i64::from(b.0)).to_plain())
                .unwrap_or_default(),
            opt(&self.sale_start),
            opt(&self.sale_end),
            yes(self.repeatable),
        ]
    }

    fn external_id(&self) -> &str {
        &self.code
    }
}

impl Record for Holding {
    const KIND: EntityKind = EntityKind::Holdings;
    const COLUMNS: &'static [Column] = &[
        col(
            "external_id",
            &["账号", "持仓编号"],
            true,
            "account or position number",
        ),
        col(
            "customer_id",
            &["客户号"],
            true,
            "external id of a known customer",
        ),
        col(
            "product_code",
            &["产品代码"],
            false,
            "code of a known product",
        ),
        col(
            "asset_class",
            &["资产类别"],
            true,
            "current_deposit|time_deposit|wealth|fund|insurance|loan|other",
        ),
        col(
            "balance",
            &["余额"],
            true,
            "yuan, zero or more (a loan's balance is what is owed)",
        ),
        col("opened_on", &["开户日期"], false, "date, not in the future"),
        col(
            "as_of",
            &["余额日期"],
            true,
            "date of the balance, not in the future",
        ),
    ];

    fn parse(values: &[Option<&str>], ctx: ParseContext) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::new(Self::COLUMNS, values, ctx);
        let h = Holding {
            external_id: f.id(0),
            customer_id: f.id(1),
            product_code: f.opt_id(2),
            asset_class: f
                .code(3, AssetClass::parse, AssetClass::expected, None)
                .unwrap_or(AssetClass::Other),
            balance: f.money_non_negative(4, false),
            opened_on: f.opt_past_date(5),
            as_of: {
                let missing = values
                    .get(6)
                    .copied()
                    .flatten()
                    .map_or(true, |v| v.trim().is_empty());
                if missing {
                    f.date(6)
                } else {
                    f.opt_past_date(6).unwrap_or_default()
                }
            },
        };
        finish(f, h)
    }

    fn to_values(&self) -> Vec<String> {
        vec![
            self.external_id.clone(),
            self.customer_id.clone(),
            opt(&self.product_code),
            self.asset_class.code().into(),
            self.balance.to_plain(),
            opt(&self.opened_on),
            self.as_of.to_string(),
        ]
    }

    fn external_id(&self) -> &str {
        &self.external_id
    }
}

impl Record for Transaction {
    const KIND: EntityKind = EntityKind::Transactions;
    const COLUMNS: &'static [Column] = &[
        col("external_id", &["流水号"], true, "transaction id"),
        col("customer_id", &["客户号"], true, "external id of a known customer"),
        col("amount", &["金额"], true, "yuan, greater than zero"),
        col("direction", &["收支"], true, "in|out or 收入|支出"),
        col("category", &["类别"], false, "salary|transfer|dining|shopping|groceries|travel|utilities|housing|education|health|investment|loan_repayment|interest|other (default other)"),
        col("channel", &["渠道"], false, "app|web|branch|atm|pos|phone|other (default other)"),
        col("occurred_at", &["交易时间"], true, "local time 2023-03-01 14:05:00, or RFC 3339 with zone"),
        col("product_code", &["产品代码"], false, "code of a known product"),
        col("description", &["摘要"], false, "free text, at most 200 characters"),
    ];

    fn parse(values: &[Option<&str>], ctx: ParseContext) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::new(Self::COLUMNS, values, ctx);
        let t = Transaction {
            external_id: f.id(0),
            customer_id: f.id(1),
            amount: f.money_non_negative(2, true),
            direction: f
                .code(3, Direction::parse, Direction::expected, None)
                .unwrap_or(Direction::In),
            category: f
                .code(
                    4,
                    TxnCategory::parse,
                    TxnCategory::expected,
                    Some(TxnCategory::Other),
                )
                .unwrap_or(TxnCategory::Other),
            channel: f
                .code(5, Channel::parse, Channel::expected, Some(Channel::Other))
                .unwrap_or(Channel::Other),
            occurred_at: f.timestamp(6),
            product_code: f.opt_id(7),
            description: f.opt_text(8, 200),
        };
        finish(f, t)
    }

    fn to_values(&self) -> Vec<String> {
        vec![
            self.external_id.clone(),
            self.customer_id.clone(),
            self.amount.to_plain(),
            self.direction.code().into(),
            self.category.code().into(),
            self.channel.code().into(),
            self.occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            opt(&self.product_code),
            opt(&self.description),
        ]
    }

    fn external_id(&self) -> &str {
        &self.external_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, NaiveDate};

    fn ctx() -> ParseContext {
        ParseContext {
            today: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            offset: FixedOffset::east_opt(8 * 3600).unwrap(),
        }
    }

    fn parse<R: Record>(vals: &[&str]) -> Result<R, Vec<FieldError>> {
        let v: Vec<Option<&str>> = vals.iter().map(|s| Some(*s)).collect();
        R::parse(&v, ctx())
    }

    #[test]
    fn customer_round_trips_through_values() {
        let c: Customer = parse(&[
            "C001",
            "张三",
            "男",
            "1990/1/2",
            "+86 138-1234-5678",
            "11010519491231002x",
            "10k-20k",
            "教师",
            "B01",
            "S01",
            "金卡",
            "是",
            "0",
            "no",
            "",
        ])
        .unwrap();
        assert_eq!(c.gender, Gender::Male);
        assert_eq!(c.phone.as_deref(), Some("13812345678"));
        assert_eq!(c.id_number.as_deref(), Some("11010519491231002X"));
        assert_eq!(c.vip_tier, VipTier::Gold);
        assert!(c.consent_sms && !c.consent_push && c.personalization);
        let back: Vec<String> = c.to_values();
        let again: Customer = parse(&back.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn every_bad_field_is_reported_with_column_value_and_expectation() {
        let errs = parse::<Customer>(&[
            "",
            "李四",
            "X",
            "2030-01-01",
            "12345",
            "110105194912310021",
            "rich",
            "",
            "",
            "",
            "",
            "maybe",
            "",
            "",
            "",
        ])
        .unwrap_err();
        let cols: Vec<&str> = errs.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(
            cols,
            [
                "external_id",
                "gender",
                "birth_date",
                "phone",
                "id_number",
                "income_band",
                "consent_sms"
            ]
        );
        assert!(errs[1].expected.contains("M|F|U"), "{:?}", errs[1]);
        assert_eq!(errs[2].value, "2030-01-01");
        assert!(errs[2].expected.contains("not after today"));
    }

    #[test]
    fn holdings_refuse_negative_balances_and_transactions_zero_amounts() {
        let e = parse::<Holding>(&["A1", "C1", "", "current_deposit", "-5.00", "", "2026-01-01"])
            .unwrap_err();
        assert_eq!(e[0].column, "balance");
        assert!(e[0].expected.contains("negative"));
        let e =
            parse::<Transaction>(&["T1", "C1", "0", "in", "", "", "2026-01-01 10:00:00", "", ""])
                .unwrap_err();
        assert_eq!(e[0].column, "amount");
    }

    #[test]
    fn product_sale_window_must_be_ordered() {
        let e = parse::<Product>(&[
            "P1",
            "稳利",
            "wealth",
            "R2",
            "1,000",
            "90",
            "3.1",
            "2026-02-01",
            "2026-01-01",
            "",
        ])
        .unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].column, "sale_end");
        let p: Product = parse(&[
            "P1", "稳利", "理财", "r2", "1,000", "90", "3.1%", "", "", "否",
        ])
        .unwrap();
        assert_eq!(p.min_purchase, Fen(100_000));
        assert!(!p.repeatable);
        assert_eq!(p.risk_level, RiskLevel::R2);
    }
}
