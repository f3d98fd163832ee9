//! Late-payment penalty (电费违约金), 《供电营业规则》 (1996) art. 98 as kehu applies it:
//!
//! - days overdue = payment date − due date, in calendar days; nothing when paid on or
//!   before the due date;
//! - charged per day on the unpaid principal only (never on penalties);
//! - residential: 1‰ a day, every day;
//! - non-residential (and important customers): 2‰ for each overdue day that falls in the
//!   calendar year the bill fell due, 3‰ for each overdue day in a later year;
//! - the exact sum is rounded half up to the fen once, at the end;
//! - a positive penalty under ¥1 is charged as ¥1.
//!
//! The rates are configuration (a 2024 revision of the rules exists) and a contract may
//! set its own; see [`PenaltyRates`].

use super::account::CustomerClass;
use crate::money::Fen;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Daily penalty rates in parts per million (1‰ = 1000 ppm) and the minimum charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PenaltyRates {
    /// Residential, every overdue day. Default 1000 (1‰), 供电营业规则 art. 98.
    pub residential_ppm: u32,
    /// Non-residential, overdue days in the year the bill fell due. Default 2000 (2‰).
    pub current_year_ppm: u32,
    /// Non-residential, overdue days in later years. Default 3000 (3‰).
    pub later_years_ppm: u32,
    /// A positive penalty below this is charged as this. Default 100 fen (¥1).
    pub minimum: Fen,
}

impl Default for PenaltyRates {
    fn default() -> Self {
        PenaltyRates {
            residential_ppm: 1000,
            current_year_ppm: 2000,
            later_years_ppm: 3000,
            minimum: Fen(100),
        }
    }
}

impl PenaltyRates {
    /// The rates for an account whose contract sets its own daily rate: that rate replaces
    /// the residential rate, or both non-residential rates.
    pub fn with_contract_ppm(self, class: CustomerClass, ppm: Option<u32>) -> PenaltyRates {
        match ppm {
            None => self,
            Some(p) if class.is_residential() => PenaltyRates {
                residential_ppm: p,
                ..self
            },
            Some(p) => PenaltyRates {
                current_year_ppm: p,
                later_years_ppm: p,
                ..self
            },
        }
    }
}

/// An exact, not yet rounded penalty: fen × ppm (divide by 1,000,000 for fen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExactPenalty(pub i128);

impl ExactPenalty {
    /// Rounded half up to the fen, then the minimum applied to a positive result.
    pub fn settle(self, rates: &PenaltyRates) -> Fen {
        if self.0 <= 0 {
            return Fen::ZERO;
        }
        let fen = (self.0 + 500_000) / 1_000_000;
        let fen = i64::try_from(fen).unwrap_or(i64::MAX);
        Fen(fen.max(rates.minimum.0))
    }
}

impl std::ops::Add for ExactPenalty {
    type Output = ExactPenalty;
    fn add(self, o: ExactPenalty) -> ExactPenalty {
        ExactPenalty(self.0 + o.0)
    }
}

/// Overdue days between `due` and `paid`, split into (days in the due year, days in later
/// years).
pub fn overdue_days(due: NaiveDate, paid: NaiveDate) -> (i64, i64) {
    let total = (paid - due).num_days();
    if total <= 0 {
        return (0, 0);
    }
    let year_end = NaiveDate::from_ymd_opt(due.year(), 12, 31).expect("valid date");
    let in_due_year = (year_end - due).num_days().min(total);
    (in_due_year, total - in_due_year)
}

/// The exact penalty on `principal` unpaid from the day after `due` through `paid`.
pub fn exact_penalty(
    rates: &PenaltyRates,
    class: CustomerClass,
    principal: Fen,
    due: NaiveDate,
    paid: NaiveDate,
) -> ExactPenalty {
    if principal.0 <= 0 {
        return ExactPenalty(0);
    }
    let (in_year, later) = overdue_days(due, paid);
    let p = i128::from(principal.0);
    let units = if class.is_residential() {
        i128::from(in_year + later) * i128::from(rates.residential_ppm)
    } else {
        i128::from(in_year) * i128::from(rates.current_year_ppm)
            + i128::from(later) * i128::from(rates.later_years_ppm)
    };
    ExactPenalty(p * units)
}

/// The penalty for `principal` due on `due` and paid in full on `paid`.
pub fn penalty(
    rates: &PenaltyRates,
    class: CustomerClass,
    principal: Fen,
    due: NaiveDate,
    paid: NaiveDate,
) -> Fen {
    exact_penalty(rates, class, principal, due, paid).settle(rates)
}

/// The penalty accrued through `until` on a bill whose principal was paid down in parts:
/// each `(date, amount)` in `principal_paid` stops the penalty on that amount from that
/// date; what remains unpaid accrues through `until`. One rounding at the end.
pub fn accrued_penalty(
    rates: &PenaltyRates,
    class: CustomerClass,
    principal: Fen,
    due: NaiveDate,
    principal_paid: &[(NaiveDate, Fen)],
    until: NaiveDate,
) -> Fen {
    let mut remaining = principal.0;
    let mut exact = ExactPenalty(0);
    for &(date, amount) in principal_paid {
        let amount = amount.0.min(remaining).max(0);
        let date = date.min(until);
        exact = exact + exact_penalty(rates, class, Fen(amount), due, date);
        remaining -= amount;
    }
    exact = exact + exact_penalty(rates, class, Fen(remaining), due, until);
    exact.settle(rates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// The worked examples; the same table is in docs/billing.md.
    const EXAMPLES: &[(&str, &str, &str, &str, &str)] = &[
        // class, principal (yuan), due, paid, penalty (yuan)
        ("residential", "100.00", "2026-01-10", "2026-01-20", "1.00"),
        ("residential", "100.00", "2026-01-10", "2026-01-15", "1.00"), // 0.50 → minimum ¥1
        ("residential", "123.45", "2026-03-01", "2026-03-01", "0.00"), // paid on the due date
        ("residential", "123.45", "2026-03-01", "2026-02-20", "0.00"), // paid early
        ("residential", "123.45", "2026-03-01", "2026-06-09", "12.35"), // 1234.5 fen: half up
        (
            "residential",
            "1234.56",
            "2026-05-20",
            "2026-07-04",
            "55.56",
        ), // 45 days, 5555.52 fen
        ("residential", "500.00", "2025-12-20", "2026-01-09", "10.00"), // 20 days, no year rule
        (
            "non_residential",
            "5000.00",
            "2026-03-15",
            "2026-04-14",
            "300.00",
        ), // 30 days at 2‰
        (
            "non_residential",
            "10000.00",
            "2025-12-25",
            "2026-01-04",
            "240.00",
        ), // 6 at 2‰ + 4 at 3‰
        (
            "non_residential",
            "1000.00",
            "2024-12-31",
            "2026-01-01",
            "1098.00",
        ), // 366 days at 3‰
        (
            "non_residential",
            "20.00",
            "2026-06-30",
            "2026-07-02",
            "1.00",
        ), // 0.08 → ¥1
        (
            "important",
            "88888.88",
            "2026-11-30",
            "2027-01-15",
            "9511.11",
        ), // 31 at 2‰ + 15 at 3‰: 951111.016 fen
    ];

    #[test]
    fn worked_examples() {
        let rates = PenaltyRates::default();
        for (class, amount, due, paid, expected) in EXAMPLES {
            let class = CustomerClass::parse(class).unwrap();
            let got = penalty(
                &rates,
                class,
                Fen::parse_yuan(amount).unwrap(),
                d(due),
                d(paid),
            );
            assert_eq!(
                got.to_plain(),
                *expected,
                "{class} ¥{amount} due {due} paid {paid}"
            );
        }
    }

    #[test]
    fn splits_days_at_the_year_end() {
        assert_eq!(overdue_days(d("2025-12-25"), d("2026-01-04")), (6, 4));
        assert_eq!(overdue_days(d("2025-12-31"), d("2026-01-01")), (0, 1));
        assert_eq!(overdue_days(d("2026-01-01"), d("2026-01-01")), (0, 0));
        assert_eq!(overdue_days(d("2024-02-28"), d("2024-03-01")), (2, 0));
    }

    #[test]
    fn contract_rate_replaces_the_default() {
        let rates =
            PenaltyRates::default().with_contract_ppm(CustomerClass::NonResidential, Some(500));
        // 10,000 yuan, 10 days at 0.5‰ = 50 yuan, across a year end as well.
        let p = penalty(
            &rates,
            CustomerClass::NonResidential,
            Fen(1_000_000),
            d("2025-12-25"),
            d("2026-01-04"),
        );
        assert_eq!(p, Fen(5_000));
    }

    #[test]
    fn partial_payments_stop_the_penalty_on_what_was_paid() {
        let rates = PenaltyRates::default();
        // ¥1000 residential due 1 March; ¥600 paid on 11 March, rest on 31 March.
        // 600 × 10 days × 1‰ = 6.00; 400 × 30 days × 1‰ = 12.00.
        let p = accrued_penalty(
            &rates,
            CustomerClass::Residential,
            Fen(100_000),
            d("2026-03-01"),
            &[(d("2026-03-11"), Fen(60_000))],
            d("2026-03-31"),
        );
        assert_eq!(p, Fen(1_800));
    }

    proptest! {
        #[test]
        fn penalty_is_zero_or_at_least_the_minimum(
            principal in 0i64..100_000_000, days in -30i64..2000, res in any::<bool>()
        ) {
            let rates = PenaltyRates::default();
            let class = if res { CustomerClass::Residential } else { CustomerClass::NonResidential };
            let due = d("2026-06-15");
            let p = penalty(&rates, class, Fen(principal), due, due + chrono::Duration::days(days));
            prop_assert!(p == Fen::ZERO || p >= rates.minimum);
            prop_assert_eq!(p == Fen::ZERO, principal == 0 || days <= 0);
        }

        #[test]
        fn paying_later_never_costs_less(principal in 1i64..10_000_000, a in 0i64..800, b in 0i64..800) {
            let rates = PenaltyRates::default();
            let due = d("2026-10-20");
            let (x, y) = (a.min(b), a.max(b));
            let px = penalty(&rates, CustomerClass::NonResidential, Fen(principal), due, due + chrono::Duration::days(x));
            let py = penalty(&rates, CustomerClass::NonResidential, Fen(principal), due, due + chrono::Duration::days(y));
            prop_assert!(px <= py);
        }
    }
}
