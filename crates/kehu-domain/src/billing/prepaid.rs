//! Prepaid accounts (预付费): the bought balance pays each bill as it is issued; a low
//! balance raises an alert so the customer buys before the meter cuts off.

use crate::money::Fen;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PrepaidRules {
    /// Alert when the balance after a bill is below this. Default ¥20 (kehu's choice;
    /// suppliers set their own).
    pub low_balance: Fen,
}

impl Default for PrepaidRules {
    fn default() -> Self {
        PrepaidRules {
            low_balance: Fen(2_000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrepaidAlert {
    /// The balance is low but still covers the bill.
    Low { balance: Fen },
    /// The balance did not cover the bill: this much is owed.
    Exhausted { owed: Fen },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepaidSettlement {
    /// Taken from the balance for the bill.
    pub paid: Fen,
    pub balance_after: Fen,
    pub alert: Option<PrepaidAlert>,
}

/// Pays `bill` from `balance` as far as it goes.
pub fn settle(balance: Fen, bill: Fen, rules: &PrepaidRules) -> PrepaidSettlement {
    let paid = Fen(bill.0.max(0).min(balance.0.max(0)));
    let balance_after = Fen(balance.0 - paid.0);
    let owed = Fen(bill.0 - paid.0);
    let alert = if owed.0 > 0 {
        Some(PrepaidAlert::Exhausted { owed })
    } else if balance_after < rules.low_balance {
        Some(PrepaidAlert::Low {
            balance: balance_after,
        })
    } else {
        None
    };
    PrepaidSettlement {
        paid,
        balance_after,
        alert,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pays_alerts_and_owes() {
        let r = PrepaidRules::default();
        assert_eq!(
            settle(Fen(10_000), Fen(3_000), &r),
            PrepaidSettlement {
                paid: Fen(3_000),
                balance_after: Fen(7_000),
                alert: None
            }
        );
        assert_eq!(
            settle(Fen(4_000), Fen(3_000), &r).alert,
            Some(PrepaidAlert::Low {
                balance: Fen(1_000)
            })
        );
        assert_eq!(
            settle(Fen(1_000), Fen(3_000), &r),
            PrepaidSettlement {
                paid: Fen(1_000),
                balance_after: Fen(0),
                alert: Some(PrepaidAlert::Exhausted { owed: Fen(2_000) })
            }
        );
    }

    proptest! {
        #[test]
        fn conserves_money(balance in 0i64..10_000_000, bill in 0i64..10_000_000) {
            let s = settle(Fen(balance), Fen(bill), &PrepaidRules::default());
            prop_assert_eq!(s.paid.0 + s.balance_after.0, balance);
            prop_assert!(s.paid.0 <= bill && s.balance_after.0 >= 0);
        }
    }
}
