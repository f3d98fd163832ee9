use crate::code_enum;
use crate::money::{Bp, Fen};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

code_enum!(ProductKind {
    Deposit = "deposit", "存款", "deposit",
    Wealth = "wealth", "理财", "wealth management",
    Fund = "fund", "基金", "fund",
    Insurance = "insurance", "保险", "insurance",
    Card = "card", "信用卡", "card",
    Loan = "loan", "贷款", "loan",
});

code_enum!(
    /// Product risk level R1 (lowest) … R5 (highest), per 《商业银行理财业务监督管理办法》.
    RiskLevel {
        R1 = "R1", "低风险", "low",
        R2 = "R2", "中低风险", "medium-low",
        R3 = "R3", "中风险", "medium",
        R4 = "R4", "中高风险", "medium-high",
        R5 = "R5", "高风险", "high",
    }
);

impl RiskLevel {
    pub fn rank(self) -> u8 {
        match self {
            RiskLevel::R1 => 1,
            RiskLevel::R2 => 2,
            RiskLevel::R3 => 3,
            RiskLevel::R4 => 4,
            RiskLevel::R5 => 5,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    /// The bank's product code (产品代码).
    pub code: String,
    pub name: String,
    pub kind: ProductKind,
    pub risk_level: RiskLevel,
    /// Minimum purchase amount (起购金额).
    pub min_purchase: Fen,
    /// Term in days (期限); none for open-ended products.
    pub term_days: Option<i32>,
    /// Expected or reference annual yield (业绩比较基准), in basis points.
    pub expected_yield: Option<Bp>,
    pub sale_start: Option<NaiveDate>,
    pub sale_end: Option<NaiveDate>,
    /// May a customer who holds it buy it again.
    pub repeatable: bool,
}

impl Product {
    /// On sale on `day` (both ends inclusive; an open end means no limit).
    pub fn on_sale(&self, day: NaiveDate) -> bool {
        self.sale_start.map_or(true, |s| s <= day) && self.sale_end.map_or(true, |e| day <= e)
    }
}
