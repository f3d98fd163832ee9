//! Billing one period of one account: consumption → charge lines → total and due date.
//!
//! Rounding rule: each line is kWh × price exact in 0.01 fen, rounded half up to the fen;
//! the total is the sum of the rounded lines (so the printed lines add up to the total).
//! Tiered tariffs apply their thresholds cumulatively over the tier period: the caller
//! passes the kWh already billed in the same tier year (or month).

use super::tariff::{PricePerKwh, Tariff, TariffError, TierPeriod, TouBand};
use crate::money::Fen;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// A billing period: one calendar month, written `2026-10`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        let (y, m) = s.trim().split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let p = Period {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
        };
        NaiveDate::from_ymd_opt(p.year, p.month, 1).map(|_| p)
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid period")
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().expect("valid date")
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn prev(self) -> Period {
        if self.month == 1 {
            Period {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Period {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn containing(d: NaiveDate) -> Period {
        Period {
            year: d.year(),
            month: d.month(),
        }
    }

    /// Whether `other` lies in the same tier period as `self` (same year, or same month).
    pub fn same_tier_period(self, other: Period, tp: TierPeriod) -> bool {
        match tp {
            TierPeriod::Annual => self.year == other.year,
            TierPeriod::Monthly => self == other,
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl TryFrom<String> for Period {
    type Error = String;
    fn try_from(s: String) -> Result<Period, String> {
        Period::parse(&s).ok_or_else(|| format!("{s:?} is not a billing period: expected YYYY-MM"))
    }
}

impl From<Period> for String {
    fn from(p: Period) -> String {
        p.to_string()
    }
}

/// One line of a bill, as the customer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillLine {
    /// `energy`, `tier1`…, `peak`/`flat`/`valley`.
    pub item: String,
    /// Chinese label printed on the bill.
    pub label: String,
    pub kwh: u64,
    pub price: PricePerKwh,
    pub amount: Fen,
}

/// A computed bill before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillDraft {
    pub period: Period,
    pub kwh: u64,
    pub lines: Vec<BillLine>,
    pub total: Fen,
    pub due_on: NaiveDate,
}

/// The consumption of a period: a total, or a split by time-of-use band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumption {
    Total(u64),
    Bands { peak: u64, flat: u64, valley: u64 },
}

impl Consumption {
    pub fn total(self) -> u64 {
        match self {
            Consumption::Total(k) => k,
            Consumption::Bands { peak, flat, valley } => peak + flat + valley,
        }
    }
}

/// The label of the line that bills a time-of-use account's total at the flat price,
/// because the period's reads had no band registers.
pub const TOU_WITHOUT_BANDS_LABEL: &str = "平段电费(无分时电量)";

/// Bills `consumption` (already multiplied) for `period`. `used_before_in_tier_period` is
/// the kWh billed earlier in the same tier period (ignored by other tariffs). A
/// time-of-use tariff given a plain total bills it all at the flat price, on a line that
/// says so (item `flat`, label 平段电费(无分时电量)); other tariffs bill a split by band as
/// its total.
pub fn bill_period(
    tariff: &Tariff,
    period: Period,
    consumption: Consumption,
    used_before_in_tier_period: u64,
    due_days_after_period_end: u32,
) -> Result<BillDraft, TariffError> {
    tariff.validate()?;
    let line = |item: String, label: String, kwh: u64, price: PricePerKwh| BillLine {
        amount: price.charge(kwh),
        item,
        label,
        kwh,
        price,
    };
    let total_kwh = consumption.total();
    let lines = match tariff {
        Tariff::Flat { price } => vec![line("energy".into(), "电度电费".into(), total_kwh, *price)],
        Tariff::TimeOfUse { peak, flat, valley } => match consumption {
            Consumption::Total(k) => vec![line(
                "flat".into(),
                TOU_WITHOUT_BANDS_LABEL.into(),
                k,
                *flat,
            )],
            Consumption::Bands {
                peak: p,
                flat: f,
                valley: v,
            } => [
                (TouBand::Peak, p, *peak),
                (TouBand::Flat, f, *flat),
                (TouBand::Valley, v, *valley),
            ]
            .into_iter()
            .filter(|(_, k, _)| *k > 0)
            .map(|(b, k, price)| line(b.code().into(), format!("{}段电费", b.label_zh()), k, price))
            .collect(),
        },
        Tariff::Tiered { tiers, .. } => {
            Tariff::split_tiers(tiers, used_before_in_tier_period, total_kwh)
                .into_iter()
                .map(|(n, k, price)| line(format!("tier{n}"), format!("第{n}档电费"), k, price))
                .collect()
        }
    };
    let total = lines.iter().map(|l| l.amount).sum();
    let due_on = period.last_day() + chrono::Duration::days(i64::from(due_days_after_period_end));
    Ok(BillDraft {
        period,
        kwh: total_kwh,
        lines,
        total,
        due_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::tariff::Tier;
    use proptest::prelude::*;

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    #[test]
    fn periods() {
        assert_eq!(p("2026-10").to_string(), "2026-10");
        assert_eq!(p("2026-12").next(), p("2027-01"));
        assert_eq!(p("2026-01").prev(), p("2025-12"));
        assert_eq!(p("2024-02").last_day(), "2024-02-29".parse().unwrap());
        assert!(Period::parse("2026-13").is_none());
        assert!(Period::parse("2026-1").is_none());
        assert!(Period::parse("oct").is_none());
    }

    #[test]
    fn tiered_bill_lines_and_total() {
        let t = Tariff::default_residential_tiered();
        // 2,700 kWh billed earlier this year, 200 now: 60 × 0.5283 + 140 × 0.5783.
        let b = bill_period(&t, p("2026-10"), Consumption::Total(200), 2_700, 15).unwrap();
        assert_eq!(b.lines.len(), 2);
        assert_eq!(b.lines[0].amount, Fen(3_170)); // 31.698 → 31.70
        assert_eq!(b.lines[1].amount, Fen(8_096)); // 80.962 → 80.96
        assert_eq!(b.total, Fen(11_266));
        assert_eq!(b.due_on, "2026-11-15".parse().unwrap());
        assert_eq!(b.lines[1].label, "第2档电费");
    }

    #[test]
    fn time_of_use_and_flat() {
        let t = Tariff::TimeOfUse {
            peak: PricePerKwh(9_000),
            flat: PricePerKwh(6_000),
            valley: PricePerKwh(3_000),
        };
        let b = bill_period(
            &t,
            p("2026-10"),
            Consumption::Bands {
                peak: 100,
                flat: 0,
                valley: 50,
            },
            0,
            10,
        )
        .unwrap();
        assert_eq!(
            b.lines.iter().map(|l| l.item.as_str()).collect::<Vec<_>>(),
            vec!["peak", "valley"]
        );
        assert_eq!(b.total, Fen(9_000 + 1_500));
        assert_eq!(b.lines[0].label, "峰段电费");
        assert_eq!(b.kwh, 150);
        // Without band registers: all at the flat price, on a line that says so.
        let t2 = bill_period(&t, p("2026-10"), Consumption::Total(150), 0, 10).unwrap();
        assert_eq!(t2.lines.len(), 1);
        assert_eq!(
            (
                t2.lines[0].item.as_str(),
                t2.lines[0].label.as_str(),
                t2.total
            ),
            ("flat", TOU_WITHOUT_BANDS_LABEL, Fen(9_000))
        );
        // Exact fen per band, half up per line: 123 × 0.9851 = 121.1673 → 121.17;
        // 456 × 0.6322 = 288.2832 → 288.28; 78 × 0.3096 = 24.1488 → 24.15.
        let tou = Tariff::TimeOfUse {
            peak: PricePerKwh(9_851),
            flat: PricePerKwh(6_322),
            valley: PricePerKwh(3_096),
        };
        let b = bill_period(
            &tou,
            p("2026-10"),
            Consumption::Bands {
                peak: 123,
                flat: 456,
                valley: 78,
            },
            0,
            15,
        )
        .unwrap();
        assert_eq!(
            b.lines.iter().map(|l| l.amount.0).collect::<Vec<_>>(),
            vec![12_117, 28_828, 2_415]
        );
        assert_eq!(b.total, Fen(43_360));
        // Other tariffs bill the bands' sum.
        let flat = Tariff::Flat {
            price: PricePerKwh(6_500),
        };
        let f2 = bill_period(
            &flat,
            p("2026-10"),
            Consumption::Bands {
                peak: 1,
                flat: 1,
                valley: 1,
            },
            0,
            15,
        )
        .unwrap();
        assert_eq!((f2.kwh, f2.total), (3, Fen(195)));
        let f = bill_period(
            &Tariff::Flat {
                price: PricePerKwh(6_500),
            },
            p("2026-02"),
            Consumption::Total(3),
            0,
            0,
        )
        .unwrap();
        assert_eq!(f.total, Fen(195));
        assert_eq!(f.due_on, "2026-02-28".parse().unwrap());
    }

    #[test]
    fn invalid_tariff_is_refused() {
        let t = Tariff::Tiered {
            period: TierPeriod::Monthly,
            tiers: vec![
                Tier {
                    up_to_kwh: Some(200),
                    price: PricePerKwh(5_000),
                },
                Tier {
                    up_to_kwh: Some(100),
                    price: PricePerKwh(6_000),
                },
                Tier {
                    up_to_kwh: None,
                    price: PricePerKwh(9_000),
                },
            ],
        };
        assert!(bill_period(&t, p("2026-10"), Consumption::Total(10), 0, 15).is_err());
    }

    proptest! {
        /// Billing a year month by month gives the same kWh per tier as billing it at once.
        #[test]
        fn tiers_accumulate_over_the_year(months in proptest::collection::vec(0u64..1_500, 12)) {
            let t = Tariff::default_residential_tiered();
            let Tariff::Tiered { tiers, .. } = &t else { unreachable!() };
            let mut used = 0;
            let mut per_tier = [0u64; 3];
            for (i, &k) in months.iter().enumerate() {
                let b = bill_period(&t, Period { year: 2026, month: i as u32 + 1 }, Consumption::Total(k), used, 15).unwrap();
                prop_assert_eq!(b.lines.iter().map(|l| l.kwh).sum::<u64>(), k);
                prop_assert_eq!(b.total, b.lines.iter().map(|l| l.amount).sum::<Fen>());
                for l in &b.lines {
                    per_tier[l.item[4..].parse::<usize>().unwrap() - 1] += l.kwh;
                }
                used += k;
            }
            let whole: Vec<u64> = Tariff::split_tiers(tiers, 0, used).iter().map(|x| x.1).collect();
            let mut expected = [0u64; 3];
            for (i, k) in whole.iter().enumerate() { expected[Tariff::split_tiers(tiers, 0, used)[i].0 - 1] = *k; }
            prop_assert_eq!(per_tier, expected);
        }
    }
}
