//! Rule-based credit grade of a supply customer: a score from payment behaviour, graded
//! A (≥ 90) / B (70–89) / C (< 70), with overrides that win over the score. A scorecard
//! from `kehu-scorecard` can replace the score later; the overrides stay.

use crate::code_enum;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

code_enum!(CreditGrade {
    A = "A", "A级", "A",
    B = "B", "B级", "B",
    C = "C", "C级", "C",
});

/// Weights and thresholds (kehu's defaults; the supplier sets its own).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CreditRules {
    /// Score at or above: grade A. Default 90.
    pub a_from: i64,
    /// Score at or above: grade B. Default 70.
    pub b_from: i64,
    /// Points lost for a 0% on-time ratio (scaled linearly). Default 40.
    pub late_ratio_points: i64,
    /// Points lost per day of the worst overdue in the last 12 months, capped. Default 0.5
    /// per day written as 50 (per 100 days), cap 30.
    pub points_per_100_days_overdue: i64,
    pub max_days_overdue_points: i64,
    /// Points lost per arrears episode in 12 months, capped. Default 5, cap 25.
    pub points_per_arrears: i64,
    pub max_arrears_points: i64,
    /// Points for a deposit or guarantee held. Default 5.
    pub deposit_points: i64,
    /// Points for tenure of at least `long_tenure_months`. Default 5 for 36 months.
    pub long_tenure_points: i64,
    pub long_tenure_months: u32,
    /// Customers newer than this are B at most and at least. Default 12 months.
    pub new_customer_months: u32,
    /// After electricity theft: C for this many months, no upgrade. Default 24.
    pub theft_months: u32,
    /// Months with arrears in the current year that force C. Default 3.
    pub arrears_months_for_c: u32,
    /// Deposit (电费保证金) or guarantee asked for, in months of average bill, by grade.
    /// Defaults A 0, B 1, C 2 (kehu's starting point; the supply contract decides).
    pub deposit_months_a: u32,
    pub deposit_months_b: u32,
    pub deposit_months_c: u32,
}

impl Default for CreditRules {
    fn default() -> Self {
        CreditRules {
            a_from: 90,
            b_from: 70,
            late_ratio_points: 40,
            points_per_100_days_overdue: 50,
            max_days_overdue_points: 30,
            points_per_arrears: 5,
            max_arrears_points: 25,
            deposit_points: 5,
            long_tenure_points: 5,
            long_tenure_months: 36,
            new_customer_months: 12,
            theft_months: 24,
            arrears_months_for_c: 3,
            deposit_months_a: 0,
            deposit_months_b: 1,
            deposit_months_c: 2,
        }
    }
}

/// Payment behaviour of one customer, counted by the caller on `today`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreditInputs {
    pub bills_last_12m: u32,
    pub paid_on_time_last_12m: u32,
    pub max_days_overdue_last_12m: u32,
    pub arrears_episodes_last_12m: u32,
    pub tenure_months: u32,
    pub has_deposit: bool,
    pub last_theft_on: Option<NaiveDate>,
    /// Months of the current calendar year in which the customer was in arrears.
    pub arrears_months_this_year: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreditResult {
    pub score: i64,
    pub grade: CreditGrade,
    /// Why the grade is what it is (score band or the override that applied).
    pub reason: String,
}

pub fn credit_score(rules: &CreditRules, i: &CreditInputs) -> i64 {
    let mut score = 100i64;
    if i.bills_last_12m > 0 {
        let late = i64::from(i.bills_last_12m.saturating_sub(i.paid_on_time_last_12m));
        score -= rules.late_ratio_points * late / i64::from(i.bills_last_12m);
    }
    score -= (i64::from(i.max_days_overdue_last_12m) * rules.points_per_100_days_overdue / 100)
        .min(rules.max_days_overdue_points);
    score -= (i64::from(i.arrears_episodes_last_12m) * rules.points_per_arrears)
        .min(rules.max_arrears_points);
    if i.has_deposit {
        score += rules.deposit_points;
    }
    if i.tenure_months >= rules.long_tenure_months {
        score += rules.long_tenure_points;
    }
    score.clamp(0, 100)
}

fn months_between(from: NaiveDate, to: NaiveDate) -> i64 {
    use chrono::Datelike;
    let m =
        i64::from(to.year() - from.year()) * 12 + i64::from(to.month()) - i64::from(from.month());
    if to.day() < from.day() {
        m - 1
    } else {
        m
    }
}

pub fn credit_grade(rules: &CreditRules, i: &CreditInputs, today: NaiveDate) -> CreditResult {
    let score = credit_score(rules, i);
    if let Some(theft) = i.last_theft_on {
        if theft <= today && months_between(theft, today) < i64::from(rules.theft_months) {
            return CreditResult {
                score,
                grade: CreditGrade::C,
                reason: format!(
                    "electricity theft on {theft}: C for {} months",
                    rules.theft_months
                ),
            };
        }
    }
    if i.arrears_months_this_year >= rules.arrears_months_for_c {
        return CreditResult {
            score,
            grade: CreditGrade::C,
            reason: format!(
                "arrears in {} months of this year (C from {})",
                i.arrears_months_this_year, rules.arrears_months_for_c
            ),
        };
    }
    if i.tenure_months < rules.new_customer_months {
        return CreditResult {
            score,
            grade: CreditGrade::B,
            reason: format!(
                "new customer ({} months): B in the first {}",
                i.tenure_months, rules.new_customer_months
            ),
        };
    }
    let grade = if score >= rules.a_from {
        CreditGrade::A
    } else if score >= rules.b_from {
        CreditGrade::B
    } else {
        CreditGrade::C
    };
    CreditResult {
        score,
        grade,
        reason: format!("score {score}"),
    }
}

/// Bills the average monthly bill of `deposit_required` is taken over: the latest twelve.
pub const DEPOSIT_AVERAGE_BILLS: usize = 12;

/// The average monthly bill a deposit is measured in: the mean of the totals of the latest
/// `DEPOSIT_AVERAGE_BILLS` bills (`totals` holds at most that many), rounded half up to the
/// fen; zero without bills.
pub fn average_bill(totals: &[crate::money::Fen]) -> crate::money::Fen {
    if totals.is_empty() {
        return crate::money::Fen::ZERO;
    }
    let n = totals.len() as i64;
    let sum: i64 = totals.iter().map(|t| t.0).sum();
    crate::money::Fen((2 * sum + n).div_euclid(2 * n))
}

/// The deposit or guarantee the grade calls for, given the average monthly bill, and what
/// is still to be asked for on top of what is held.
pub fn deposit_required(
    rules: &CreditRules,
    grade: CreditGrade,
    average_bill: crate::money::Fen,
    held: crate::money::Fen,
) -> (crate::money::Fen, crate::money::Fen) {
    let months = match grade {
        CreditGrade::A => rules.deposit_months_a,
        CreditGrade::B => rules.deposit_months_b,
        CreditGrade::C => rules.deposit_months_c,
    };
    let required = crate::money::Fen(average_bill.0.max(0) * i64::from(months));
    (required, crate::money::Fen((required.0 - held.0).max(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> CreditInputs {
        CreditInputs {
            bills_last_12m: 12,
            paid_on_time_last_12m: 12,
            max_days_overdue_last_12m: 0,
            arrears_episodes_last_12m: 0,
            tenure_months: 60,
            has_deposit: false,
            last_theft_on: None,
            arrears_months_this_year: 0,
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_average_bill_rounds_half_up_to_the_fen() {
        use crate::money::Fen;
        assert_eq!(average_bill(&[]), Fen::ZERO);
        assert_eq!(average_bill(&[Fen(100), Fen(201)]), Fen(151)); // 150.5 → 151
        assert_eq!(average_bill(&[Fen(100), Fen(200), Fen(200)]), Fen(167)); // 166.67
        assert_eq!(average_bill(&[Fen(100), Fen(100), Fen(101)]), Fen(100)); // 100.33
        // A credit (negative total) counts as it is; half rounds towards +∞.
        assert_eq!(average_bill(&[Fen(-3), Fen(0)]), Fen(-1)); // −1.5 → −1
    }

    #[test]
    fn deposits_follow_the_grade() {
        use crate::money::Fen;
        let r = CreditRules::default();
        assert_eq!(
            deposit_required(&r, CreditGrade::A, Fen(50_000), Fen::ZERO),
            (Fen::ZERO, Fen::ZERO)
        );
        assert_eq!(
            deposit_required(&r, CreditGrade::B, Fen(50_000), Fen(20_000)),
            (Fen(50_000), Fen(30_000))
        );
        assert_eq!(
            deposit_required(&r, CreditGrade::C, Fen(50_000), Fen(200_000)),
            (Fen(100_000), Fen::ZERO)
        );
    }

    #[test]
    fn grades_and_overrides() {
        let r = CreditRules::default();
        let today = d("2026-10-31");
        assert_eq!(credit_grade(&r, &good(), today).grade, CreditGrade::A);
        // 6 of 12 late (−20), worst 40 days (−20), 3 episodes (−15), tenure (+5): 50 → C.
        let bad = CreditInputs {
            paid_on_time_last_12m: 6,
            max_days_overdue_last_12m: 40,
            arrears_episodes_last_12m: 3,
            ..good()
        };
        assert_eq!(credit_score(&r, &bad), 50);
        assert_eq!(credit_grade(&r, &bad, today).grade, CreditGrade::C);
        // 2 of 12 late (−6), worst 10 days (−5), 2 episodes (−10), tenure +5: 84 → B.
        let mid = CreditInputs {
            paid_on_time_last_12m: 10,
            max_days_overdue_last_12m: 10,
            arrears_episodes_last_12m: 2,
            ..good()
        };
        assert_eq!(credit_score(&r, &mid), 84);
        assert_eq!(credit_grade(&r, &mid, today).grade, CreditGrade::B);
        // New customer: B whatever the score.
        assert_eq!(
            credit_grade(
                &r,
                &CreditInputs {
                    tenure_months: 5,
                    ..good()
                },
                today
            )
            .grade,
            CreditGrade::B
        );
        // Theft 23 months ago: C, a perfect record notwithstanding; 24 months ago: free again.
        let theft = CreditInputs {
            last_theft_on: Some(d("2024-11-30")),
            ..good()
        };
        assert_eq!(credit_grade(&r, &theft, today).grade, CreditGrade::C);
        let old_theft = CreditInputs {
            last_theft_on: Some(d("2024-10-31")),
            ..good()
        };
        assert_eq!(credit_grade(&r, &old_theft, today).grade, CreditGrade::A);
        // Arrears in 3 months of this year: C.
        let r3 = credit_grade(
            &r,
            &CreditInputs {
                arrears_months_this_year: 3,
                ..good()
            },
            today,
        );
        assert_eq!(r3.grade, CreditGrade::C);
        assert!(r3.reason.contains("3 months"));
    }
}
