//! Arrears ageing: each outstanding bill falls in one bucket by the days since its due
//! date on `today`. Totals are exact sums of the bills' outstanding amounts.

use crate::code_enum;
use crate::money::Fen;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

code_enum!(AgeingBucket {
    Current = "current", "未到期", "current",
    D1To30 = "1-30", "逾期1-30天", "1–30 days",
    D31To60 = "31-60", "逾期31-60天", "31–60 days",
    D61To90 = "61-90", "逾期61-90天", "61–90 days",
    Over90 = "90+", "逾期90天以上", "over 90 days",
});

impl AgeingBucket {
    /// The bucket of an amount due on `due_on`, seen on `today`. Due today is current.
    pub fn of(due_on: NaiveDate, today: NaiveDate) -> AgeingBucket {
        Self::of_days((today - due_on).num_days())
    }

    pub fn of_days(days_overdue: i64) -> AgeingBucket {
        match days_overdue {
            i64::MIN..=0 => AgeingBucket::Current,
            1..=30 => AgeingBucket::D1To30,
            31..=60 => AgeingBucket::D31To60,
            61..=90 => AgeingBucket::D61To90,
            _ => AgeingBucket::Over90,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Outstanding amounts per bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgeingTotals {
    pub current: Fen,
    pub d1_30: Fen,
    pub d31_60: Fen,
    pub d61_90: Fen,
    pub over_90: Fen,
}

impl AgeingTotals {
    pub fn add(&mut self, bucket: AgeingBucket, amount: Fen) {
        let slot = match bucket {
            AgeingBucket::Current => &mut self.current,
            AgeingBucket::D1To30 => &mut self.d1_30,
            AgeingBucket::D31To60 => &mut self.d31_60,
            AgeingBucket::D61To90 => &mut self.d61_90,
            AgeingBucket::Over90 => &mut self.over_90,
        };
        *slot = *slot + amount;
    }

    pub fn add_bill(&mut self, due_on: NaiveDate, outstanding: Fen, today: NaiveDate) {
        self.add(AgeingBucket::of(due_on, today), outstanding);
    }

    pub fn merge(&mut self, o: &AgeingTotals) {
        self.current = self.current + o.current;
        self.d1_30 = self.d1_30 + o.d1_30;
        self.d31_60 = self.d31_60 + o.d31_60;
        self.d61_90 = self.d61_90 + o.d61_90;
        self.over_90 = self.over_90 + o.over_90;
    }

    pub fn total(&self) -> Fen {
        self.current + self.d1_30 + self.d31_60 + self.d61_90 + self.over_90
    }

    /// Overdue only (everything but current).
    pub fn overdue(&self) -> Fen {
        self.d1_30 + self.d31_60 + self.d61_90 + self.over_90
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bucket_edges() {
        let cases = [
            (-5, "current"),
            (0, "current"),
            (1, "1-30"),
            (30, "1-30"),
            (31, "31-60"),
            (60, "31-60"),
            (61, "61-90"),
            (90, "61-90"),
            (91, "90+"),
        ];
        for (days, code) in cases {
            assert_eq!(AgeingBucket::of_days(days).code(), code, "{days} days");
        }
    }

    proptest! {
        #[test]
        fn totals_match_the_bills(bills in proptest::collection::vec((-40i64..400, 0i64..10_000_000), 0..50)) {
            let today = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
            let mut t = AgeingTotals::default();
            for (age, amount) in &bills {
                t.add_bill(today - chrono::Duration::days(*age), Fen(*amount), today);
            }
            prop_assert_eq!(t.total().0, bills.iter().map(|b| b.1).sum::<i64>());
            prop_assert_eq!(t.overdue().0, bills.iter().filter(|b| b.0 > 0).map(|b| b.1).sum::<i64>());
        }
    }
}
