use crate::code_enum;
use crate::money::Fen;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

code_enum!(Direction {
    In = "in", "收入", "in",
    Out = "out", "支出", "out",
});

code_enum!(TxnCategory {
    Salary = "salary", "工资", "salary",
    Transfer = "transfer", "转账", "transfer",
    Dining = "dining", "餐饮", "dining",
    Shopping = "shopping", "购物", "shopping",
    Groceries = "groceries", "日用", "groceries",
    Travel = "travel", "出行", "travel",
    Utilities = "utilities", "水电燃气", "utilities",
    Housing = "housing", "住房", "housing",
    Education = "education", "教育", "education",
    Health = "health", "医疗", "health",
    Investment = "investment", "投资理财", "investment",
    LoanRepayment = "loan_repayment", "还贷", "loan repayment",
    Interest = "interest", "利息", "interest",
    Other = "other", "其他", "other",
});

code_enum!(Channel {
    App = "app", "手机银行", "mobile app",
    Web = "web", "网上银行", "web",
    Branch = "branch", "网点柜面", "branch",
    Atm = "atm", "自助设备", "ATM",
    Pos = "pos", "POS刷卡", "POS",
    Phone = "phone", "电话银行", "phone",
    Other = "other", "其他", "other",
});

/// A posted transaction. The amount is positive; the direction says which way it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transaction {
    pub external_id: String,
    pub customer_id: String,
    pub amount: Fen,
    pub direction: Direction,
    pub category: TxnCategory,
    pub channel: Channel,
    pub occurred_at: DateTime<Utc>,
    pub product_code: Option<String>,
    pub description: Option<String>,
}
