use crate::code_enum;
use crate::money::Fen;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

code_enum!(
    /// Asset class of an account or holding. `loan` is a liability.
    AssetClass {
        CurrentDeposit = "current_deposit", "活期存款", "current deposit",
        TimeDeposit = "time_deposit", "定期存款", "time deposit",
        Wealth = "wealth", "理财", "wealth management",
        Fund = "fund", "基金", "funds",
        Insurance = "insurance", "保险", "insurance",
        Loan = "loan", "贷款", "loans",
        Other = "other", "其他", "other",
    }
);

impl AssetClass {
    pub fn is_liability(self) -> bool {
        matches!(self, AssetClass::Loan)
    }
    /// Available at once for a purchase.
    pub fn is_liquid(self) -> bool {
        matches!(self, AssetClass::CurrentDeposit)
    }
}

/// An account or a position a customer holds: a deposit account, a wealth product, a fund,
/// a policy, a loan. The balance is never negative; a loan's balance is what is owed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Holding {
    /// Account or position number (账号/持仓编号).
    pub external_id: String,
    /// The customer's external id.
    pub customer_id: String,
    /// The product held, if any (a plain current account has none).
    pub product_code: Option<String>,
    pub asset_class: AssetClass,
    pub balance: Fen,
    pub opened_on: Option<NaiveDate>,
    pub as_of: NaiveDate,
}

/// Total per asset class; the input of "my assets" and the 360 view.
pub fn totals_by_class<'a>(
    holdings: impl IntoIterator<Item = &'a Holding>,
) -> Vec<(AssetClass, Fen)> {
    let mut totals: Vec<(AssetClass, Fen)> = Vec::new();
    for h in holdings {
        match totals.iter_mut().find(|(c, _)| *c == h.asset_class) {
            Some((_, t)) => *t = *t + h.balance,
            None => totals.push((h.asset_class, h.balance)),
        }
    }
    totals.sort_by_key(|(c, _)| *c);
    totals
}

/// Assets minus liabilities.
pub fn net_worth(totals: &[(AssetClass, Fen)]) -> Fen {
    Fen(totals
        .iter()
        .map(|(c, f)| if c.is_liability() { -f.0 } else { f.0 })
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(class: AssetClass, fen: i64) -> Holding {
        Holding {
            external_id: format!("{class}-{fen}"),
            customer_id: "C1".into(),
            product_code: None,
            asset_class: class,
            balance: Fen(fen),
            opened_on: None,
            as_of: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        }
    }

    #[test]
    fn totals_group_and_net_worth_subtracts_loans() {
        let hs = [
            h(AssetClass::CurrentDeposit, 100),
            h(AssetClass::Fund, 50),
            h(AssetClass::CurrentDeposit, 25),
            h(AssetClass::Loan, 70),
        ];
        let t = totals_by_class(&hs);
        assert_eq!(
            t,
            vec![
                (AssetClass::CurrentDeposit, Fen(125)),
                (AssetClass::Fund, Fen(50)),
                (AssetClass::Loan, Fen(70))
            ]
        );
        assert_eq!(net_worth(&t), Fen(105));
    }
}
