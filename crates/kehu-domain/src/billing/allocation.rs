//! Payment allocation.
//!
//! A payment pays the account's open bills **oldest first** (by due date, then bill id).
//! Within a bill the configured [`AllocationOrder`] decides whether the penalty or the
//! principal is paid first; the default is penalty first, following the order of the
//! Civil Code (《民法典》 art. 561: costs, then interest, then the principal debt) unless
//! the contract says otherwise. Partial payments pay what they can; anything left over is
//! kept as credit on the account. A reversal undoes exactly the allocations of one payment.
//! Money is conserved: the allocations plus the credit always equal the payment.

use crate::money::Fen;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllocationOrder {
    /// Penalty, then principal of the same bill (民法典 art. 561). Default.
    #[default]
    PenaltyFirst,
    /// Principal, then penalty: stops the penalty growing sooner.
    PrincipalFirst,
}

/// What is still owed on one bill at the payment date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpenBill {
    pub bill_id: i64,
    pub due_on: NaiveDate,
    pub principal: Fen,
    /// Penalty owed at the payment date (see `penalty::accrued_penalty`), less any paid.
    pub penalty: Fen,
}

/// The part of a payment that went to one bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Allocation {
    pub bill_id: i64,
    pub principal: Fen,
    pub penalty: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentResult {
    pub allocations: Vec<Allocation>,
    /// Left over after every open bill was paid: kept as credit on the account.
    pub credit: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("payment amount {0} is not positive: a payment must be more than ¥0.00")]
    NotPositive(String),
    #[error("bill {bill_id} has a negative amount owed ({what} {amount})")]
    NegativeOwed {
        bill_id: i64,
        what: &'static str,
        amount: String,
    },
}

/// Allocates `amount` over `open` bills. Bills are sorted here; the input order does not
/// matter.
pub fn allocate(
    amount: Fen,
    open: &[OpenBill],
    order: AllocationOrder,
) -> Result<PaymentResult, AllocationError> {
    if amount.0 <= 0 {
        return Err(AllocationError::NotPositive(amount.to_plain()));
    }
    for b in open {
        for (what, v) in [("principal", b.principal), ("penalty", b.penalty)] {
            if v.is_negative() {
                return Err(AllocationError::NegativeOwed {
                    bill_id: b.bill_id,
                    what,
                    amount: v.to_plain(),
                });
            }
        }
    }
    let mut bills: Vec<&OpenBill> = open.iter().collect();
    bills.sort_by_key(|b| (b.due_on, b.bill_id));
    let mut left = amount.0;
    let mut allocations = Vec::new();
    for b in bills {
        if left == 0 {
            break;
        }
        let (first, second) = match order {
            AllocationOrder::PenaltyFirst => (b.penalty.0, b.principal.0),
            AllocationOrder::PrincipalFirst => (b.principal.0, b.penalty.0),
        };
        let a = first.min(left);
        left -= a;
        let c = second.min(left);
        left -= c;
        if a + c == 0 {
            continue;
        }
        let (penalty, principal) = match order {
            AllocationOrder::PenaltyFirst => (a, c),
            AllocationOrder::PrincipalFirst => (c, a),
        };
        allocations.push(Allocation {
            bill_id: b.bill_id,
            principal: Fen(principal),
            penalty: Fen(penalty),
        });
    }
    Ok(PaymentResult {
        allocations,
        credit: Fen(left),
    })
}

/// Applies a reversal: the open amounts after undoing `result` on `open` bills (bills
/// already settled come back with what the payment had paid).
pub fn reverse(open: &mut Vec<OpenBill>, result: &PaymentResult, settled: &[OpenBill]) {
    for a in &result.allocations {
        if let Some(b) = open.iter_mut().find(|b| b.bill_id == a.bill_id) {
            b.principal = b.principal + a.principal;
            b.penalty = b.penalty + a.penalty;
        } else if let Some(s) = settled.iter().find(|s| s.bill_id == a.bill_id) {
            open.push(OpenBill {
                principal: a.principal,
                penalty: a.penalty,
                ..*s
            });
        }
    }
}

/// The open amounts after `result` was applied (fully paid bills drop out).
pub fn apply(open: &[OpenBill], result: &PaymentResult) -> Vec<OpenBill> {
    open.iter()
        .map(|b| {
            let (p, q) = result
                .allocations
                .iter()
                .filter(|a| a.bill_id == b.bill_id)
                .fold((0, 0), |(p, q), a| (p + a.principal.0, q + a.penalty.0));
            OpenBill {
                principal: Fen(b.principal.0 - p),
                penalty: Fen(b.penalty.0 - q),
                ..*b
            }
        })
        .filter(|b| b.principal.0 > 0 || b.penalty.0 > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bill(id: i64, due: &str, principal: i64, penalty: i64) -> OpenBill {
        OpenBill {
            bill_id: id,
            due_on: due.parse().unwrap(),
            principal: Fen(principal),
            penalty: Fen(penalty),
        }
    }

    #[test]
    fn oldest_first_penalty_first_then_credit() {
        let open = [
            bill(2, "2026-09-15", 10_000, 0),
            bill(1, "2026-08-15", 20_000, 500),
        ];
        let r = allocate(Fen(25_000), &open, AllocationOrder::PenaltyFirst).unwrap();
        assert_eq!(
            r.allocations,
            vec![
                Allocation {
                    bill_id: 1,
                    principal: Fen(20_000),
                    penalty: Fen(500)
                },
                Allocation {
                    bill_id: 2,
                    principal: Fen(4_500),
                    penalty: Fen(0)
                },
            ]
        );
        assert_eq!(r.credit, Fen(0));
        let r = allocate(Fen(40_000), &open, AllocationOrder::PenaltyFirst).unwrap();
        assert_eq!(r.credit, Fen(9_500));
        // Principal first: a payment of 20,100 leaves the penalty of the first bill partly open.
        let r = allocate(Fen(20_100), &open, AllocationOrder::PrincipalFirst).unwrap();
        assert_eq!(
            r.allocations,
            vec![Allocation {
                bill_id: 1,
                principal: Fen(20_000),
                penalty: Fen(100)
            }]
        );
    }

    #[test]
    fn refuses_zero_and_negative() {
        assert!(allocate(Fen(0), &[], AllocationOrder::PenaltyFirst).is_err());
        let e = allocate(Fen(-5), &[], AllocationOrder::PenaltyFirst).unwrap_err();
        assert!(e.to_string().contains("-0.05"), "{e}");
        // No open bills: everything is credit.
        assert_eq!(
            allocate(Fen(300), &[], AllocationOrder::PenaltyFirst)
                .unwrap()
                .credit,
            Fen(300)
        );
    }

    #[test]
    fn reversal_restores_the_open_amounts() {
        let open = vec![
            bill(1, "2026-08-15", 20_000, 500),
            bill(2, "2026-09-15", 10_000, 0),
        ];
        let r = allocate(Fen(25_000), &open, AllocationOrder::PenaltyFirst).unwrap();
        let mut after = apply(&open, &r);
        assert_eq!(after, vec![bill(2, "2026-09-15", 5_500, 0)]);
        reverse(&mut after, &r, &open);
        after.sort_by_key(|b| b.bill_id);
        assert_eq!(after, open);
    }

    fn open_bills() -> impl Strategy<Value = Vec<OpenBill>> {
        proptest::collection::vec((0i64..400, 0i64..1_000_000, 0i64..50_000), 0..8).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (day, p, q))| OpenBill {
                    bill_id: i as i64 + 1,
                    due_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
                        + chrono::Duration::days(day),
                    principal: Fen(p),
                    penalty: Fen(q),
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn money_is_conserved(open in open_bills(), amount in 1i64..5_000_000, pf in any::<bool>()) {
            let order = if pf { AllocationOrder::PenaltyFirst } else { AllocationOrder::PrincipalFirst };
            let r = allocate(Fen(amount), &open, order).unwrap();
            let allocated: i64 = r.allocations.iter().map(|a| a.principal.0 + a.penalty.0).sum();
            prop_assert_eq!(allocated + r.credit.0, amount);
            prop_assert!(r.credit.0 >= 0);
            let owed: i64 = open.iter().map(|b| b.principal.0 + b.penalty.0).sum();
            // Credit only when everything owed is paid.
            prop_assert!(r.credit.0 == 0 || allocated == owed);
            for a in &r.allocations {
                let b = open.iter().find(|b| b.bill_id == a.bill_id).unwrap();
                prop_assert!(a.principal.0 >= 0 && a.principal <= b.principal);
                prop_assert!(a.penalty.0 >= 0 && a.penalty <= b.penalty);
            }
            // Oldest first: a bill is touched only when every older bill is paid in full.
            let after = apply(&open, &r);
            for a in &r.allocations {
                let b = open.iter().find(|b| b.bill_id == a.bill_id).unwrap();
                for older in open.iter().filter(|o| (o.due_on, o.bill_id) < (b.due_on, b.bill_id)) {
                    prop_assert!(!after.iter().any(|x| x.bill_id == older.bill_id));
                }
            }
            // Reversal restores what was owed.
            let mut back = after.clone();
            reverse(&mut back, &r, &open);
            let back_owed: i64 = back.iter().map(|b| b.principal.0 + b.penalty.0).sum();
            prop_assert_eq!(back_owed, owed);
        }
    }
}
