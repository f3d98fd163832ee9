//! Tariffs: flat, time-of-use (分时电价) and tiered residential (阶梯电价).
//!
//! Prices are exact in units of 0.0001 yuan per kWh (Chinese tariffs are published with
//! four decimals, e.g. 0.5283 元/kWh). A charge line is kWh × price, exact in 0.01 fen,
//! then rounded half up to the fen; a bill's total is the sum of its rounded lines, so the
//! lines a customer reads add up to the total.

use crate::code_enum;
use crate::money::Fen;
use serde::{Deserialize, Serialize};

/// A price in 0.0001 yuan per kWh: `PricePerKwh(5283)` is 0.5283 元/kWh.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct PricePerKwh(pub i64);

impl PricePerKwh {
    /// The exact charge for `kwh`, rounded half up to the fen.
    pub fn charge(self, kwh: u64) -> Fen {
        let exact = i128::from(self.0) * i128::from(kwh); // 0.01 fen
        Fen(i64::try_from((exact + 50).div_euclid(100)).unwrap_or(i64::MAX))
    }

    /// Parses `0.5283` (yuan per kWh, at most four decimals).
    pub fn parse_yuan(s: &str) -> Option<PricePerKwh> {
        let s = s.trim();
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        if i.is_empty() && f.is_empty() || f.len() > 4 {
            return None;
        }
        if !i.bytes().all(|b| b.is_ascii_digit()) || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let int: i64 = if i.is_empty() { 0 } else { i.parse().ok()? };
        let frac: i64 = if f.is_empty() {
            0
        } else {
            format!("{f:0<4}").parse().ok()?
        };
        int.checked_mul(10_000)?.checked_add(frac).map(PricePerKwh)
    }

    pub fn to_yuan_string(self) -> String {
        format!("{}.{:04}", self.0 / 10_000, self.0 % 10_000)
    }
}

code_enum!(
    /// Over which period tier thresholds accumulate.
    TierPeriod {
        Annual = "annual", "年", "annual",
        Monthly = "monthly", "月", "monthly",
    }
);

code_enum!(
    /// Time-of-use band.
    TouBand {
        Peak = "peak", "峰", "peak",
        Flat = "flat", "平", "flat",
        Valley = "valley", "谷", "valley",
    }
);

/// One tier: consumption up to `up_to_kwh` (inclusive, cumulative over the tier period;
/// `None` for the last, open tier) at `price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tier {
    pub up_to_kwh: Option<u64>,
    pub price: PricePerKwh,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tariff {
    Flat {
        price: PricePerKwh,
    },
    TimeOfUse {
        peak: PricePerKwh,
        flat: PricePerKwh,
        valley: PricePerKwh,
    },
    Tiered {
        period: TierPeriod,
        tiers: Vec<Tier>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    #[error("tariff has no tiers: give at least one tier, the last without an upper bound")]
    NoTiers,
    #[error("tier {index} (up to {up_to} kWh) does not lie above the tier before it (up to {previous} kWh): tiers must be sorted by their upper bound and may not overlap")]
    Overlapping {
        index: usize,
        up_to: u64,
        previous: u64,
    },
    #[error(
        "tier {index} has no upper bound but is not the last tier: only the last tier is open"
    )]
    OpenTierNotLast { index: usize },
    #[error("the last tier (number {index}) has an upper bound of {up_to} kWh: the last tier must be open so every kWh has a price")]
    LastTierBounded { index: usize, up_to: u64 },
    #[error("tier {index} has a negative price {price}")]
    NegativePrice { index: usize, price: String },
    #[error("tier {index} has an upper bound of 0 kWh")]
    EmptyTier { index: usize },
}

impl Tariff {
    /// The common three-tier residential scheme (国家发展改革委《关于居民生活用电试行阶梯
    /// 电价的指导意见》, 发改价格〔2011〕2617号): tier 1 covers about 80% of households at the
    /// base price, tier 2 up to about 95% at +0.05 元/kWh, tier 3 the rest at +0.30 元/kWh.
    /// Thresholds and the base price are set per province; this default uses Jiangsu's
    /// annual thresholds (2,760 and 4,800 kWh a year) and base price 0.5283 元/kWh.
    /// Verify against the current provincial notice before use.
    pub fn default_residential_tiered() -> Tariff {
        Tariff::Tiered {
            period: TierPeriod::Annual,
            tiers: vec![
                Tier {
                    up_to_kwh: Some(2_760),
                    price: PricePerKwh(5_283),
                },
                Tier {
                    up_to_kwh: Some(4_800),
                    price: PricePerKwh(5_783),
                },
                Tier {
                    up_to_kwh: None,
                    price: PricePerKwh(8_283),
                },
            ],
        }
    }

    /// Checks the tariff: tiers sorted, not overlapping, last one open, prices ≥ 0.
    pub fn validate(&self) -> Result<(), TariffError> {
        let check_price = |index: usize, p: PricePerKwh| {
            if p.0 < 0 {
                Err(TariffError::NegativePrice {
                    index,
                    price: p.to_yuan_string(),
                })
            } else {
                Ok(())
            }
        };
        match self {
            Tariff::Flat { price } => check_price(1, *price),
            Tariff::TimeOfUse { peak, flat, valley } => {
                check_price(1, *peak)?;
                check_price(2, *flat)?;
                check_price(3, *valley)
            }
            Tariff::Tiered { tiers, .. } => {
                if tiers.is_empty() {
                    return Err(TariffError::NoTiers);
                }
                let mut previous: Option<u64> = None;
                for (i, t) in tiers.iter().enumerate() {
                    let index = i + 1;
                    check_price(index, t.price)?;
                    let last = index == tiers.len();
                    match (t.up_to_kwh, last) {
                        (None, false) => return Err(TariffError::OpenTierNotLast { index }),
                        (Some(up_to), true) => {
                            return Err(TariffError::LastTierBounded { index, up_to })
                        }
                        (Some(0), _) => return Err(TariffError::EmptyTier { index }),
                        (Some(up_to), false) => {
                            if let Some(prev) = previous {
                                if up_to <= prev {
                                    return Err(TariffError::Overlapping {
                                        index,
                                        up_to,
                                        previous: prev,
                                    });
                                }
                            }
                            previous = Some(up_to);
                        }
                        (None, true) => {}
                    }
                }
                Ok(())
            }
        }
    }

    /// Splits `kwh` used in this bill over the tiers, given `used_before` kWh already
    /// billed in the same tier period: `(tier number, kWh, price)` for each non-empty part.
    /// The tariff must be valid.
    pub fn split_tiers(
        tiers: &[Tier],
        used_before: u64,
        kwh: u64,
    ) -> Vec<(usize, u64, PricePerKwh)> {
        let mut out = Vec::with_capacity(tiers.len());
        let mut from = used_before;
        let end = used_before.saturating_add(kwh);
        let mut lower = 0u64;
        for (i, t) in tiers.iter().enumerate() {
            let upper = t.up_to_kwh.unwrap_or(u64::MAX);
            if from < upper && from < end {
                let to = end.min(upper);
                if to > from.max(lower) {
                    out.push((i + 1, to - from.max(lower), t.price));
                }
                from = to;
            }
            lower = upper;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(bounds: &[Option<u64>]) -> Tariff {
        Tariff::Tiered {
            period: TierPeriod::Monthly,
            tiers: bounds
                .iter()
                .map(|b| Tier {
                    up_to_kwh: *b,
                    price: PricePerKwh(5_000),
                })
                .collect(),
        }
    }

    #[test]
    fn refuses_bad_tiers_with_a_clear_error() {
        assert_eq!(tiers(&[]).validate(), Err(TariffError::NoTiers));
        assert_eq!(
            tiers(&[Some(200), Some(180), None]).validate(),
            Err(TariffError::Overlapping {
                index: 2,
                up_to: 180,
                previous: 200
            })
        );
        assert_eq!(
            tiers(&[Some(200), Some(200), None]).validate(),
            Err(TariffError::Overlapping {
                index: 2,
                up_to: 200,
                previous: 200
            })
        );
        assert_eq!(
            tiers(&[None, Some(200)]).validate(),
            Err(TariffError::OpenTierNotLast { index: 1 })
        );
        assert_eq!(
            tiers(&[Some(200), Some(400)]).validate(),
            Err(TariffError::LastTierBounded {
                index: 2,
                up_to: 400
            })
        );
        let msg = tiers(&[Some(200), Some(180), None])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("tier 2") && msg.contains("180") && msg.contains("overlap"),
            "{msg}"
        );
        assert_eq!(Tariff::default_residential_tiered().validate(), Ok(()));
    }

    #[test]
    fn splits_cumulatively_over_the_tier_period() {
        let Tariff::Tiered { tiers, .. } = Tariff::default_residential_tiered() else {
            unreachable!()
        };
        // 2,700 used this year; 200 more: 60 in tier 1, 140 in tier 2.
        let parts = Tariff::split_tiers(&tiers, 2_700, 200);
        assert_eq!(
            parts,
            vec![(1, 60, PricePerKwh(5_283)), (2, 140, PricePerKwh(5_783))]
        );
        // Crossing all three at once.
        let parts = Tariff::split_tiers(&tiers, 0, 5_000);
        assert_eq!(
            parts.iter().map(|p| p.1).collect::<Vec<_>>(),
            vec![2_760, 2_040, 200]
        );
        // Already in tier 3.
        assert_eq!(
            Tariff::split_tiers(&tiers, 6_000, 10),
            vec![(3, 10, PricePerKwh(8_283))]
        );
        assert!(Tariff::split_tiers(&tiers, 100, 0).is_empty());
    }

    #[test]
    fn prices_parse_and_charge_exactly() {
        assert_eq!(PricePerKwh::parse_yuan("0.5283"), Some(PricePerKwh(5_283)));
        assert_eq!(PricePerKwh::parse_yuan("1.2"), Some(PricePerKwh(12_000)));
        assert_eq!(PricePerKwh::parse_yuan("0.52831"), None);
        assert_eq!(PricePerKwh::parse_yuan("abc"), None);
        // 150 kWh × 0.5283 = 79.245 yuan → 79.25 (half up).
        assert_eq!(PricePerKwh(5_283).charge(150), Fen(7_925));
        // 10 kWh × 0.5283 = 5.283 → 5.28.
        assert_eq!(PricePerKwh(5_283).charge(10), Fen(528));
    }
}
