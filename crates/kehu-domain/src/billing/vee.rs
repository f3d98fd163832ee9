//! Meter-read review (VEE: validation, editing, estimation).
//!
//! [`check_read`] looks at one read against the meter, the previous accepted read and the
//! meter's history, and returns the flags it raises. A read with any blocking flag goes to
//! the review queue and is not billed until a person accepts, corrects or estimates it.
//! A plausible register rollover is not blocking: the consumption is computed across it
//! and the read is billed, with the flag kept for the record.

use super::account::Meter;
use crate::code_enum;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

code_enum!(
    VeeFlag {
        FutureDate = "future_date", "抄表日期在未来", "read date in the future",
        BeforeInstall = "before_install", "早于装表日期", "read before the meter was installed",
        Duplicate = "duplicate", "重复抄表", "duplicate read",
        OutOfOrder = "out_of_order", "抄表日期早于上次", "read older than the previous read",
        Negative = "negative", "负电量", "negative consumption",
        Rollover = "rollover", "表码翻转", "register rollover",
        ZeroPeriods = "zero_periods", "连续零电量", "zero consumption for several periods",
        High = "high", "电量偏高", "consumption high against history",
        Low = "low", "电量偏低", "consumption low against history",
        Spike = "spike", "电量突增", "spike far above any previous period",
        OverCapacity = "over_capacity", "超容量(倍率可疑)", "more energy than the capacity allows (multiplier?)",
        MultiplierMismatch = "multiplier_mismatch", "倍率与互感器不符", "multiplier differs from CT × PT",
        DateGap = "date_gap", "抄表间隔过长", "too long since the previous read",
        Missing = "missing", "漏抄", "read missing for the period",
        BandMismatch = "band_mismatch", "分时示数与总示数不符", "peak, flat and valley do not add up to the total",
    }
);

impl VeeFlag {
    /// Whether the flag holds the read back from billing until reviewed.
    pub fn blocks_billing(self) -> bool {
        !matches!(self, VeeFlag::Rollover)
    }
}

/// Thresholds of the checks. Set by the supplier's 抄核收 practice; the defaults below are
/// kehu's starting point, not a regulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VeeRules {
    /// How many previous periods form the history mean. Default 6.
    pub history_periods: usize,
    /// Zero consumption this many periods in a row (this one included) is flagged. Default 3.
    pub zero_periods: usize,
    /// High when daily use exceeds this percentage of the history mean. Default 300 (3×).
    pub high_percent: u32,
    /// Low when daily use is under this percentage of the history mean. Default 20.
    pub low_percent: u32,
    /// Spike when daily use exceeds this percentage of the highest previous period. Default 500.
    pub spike_percent: u32,
    /// History mean below this many kWh a day is too small to judge high/low. Default 1.
    pub min_mean_kwh_per_day: u64,
    /// A rollover is plausible when the consumption across it is at most this percentage
    /// of what the capacity allows in the period. Default 100.
    pub rollover_capacity_percent: u32,
    /// Load factor for the capacity bound, percent of kVA × 24 h. Default 100 (a meter
    /// cannot record more than its capacity running flat out).
    pub capacity_load_percent: u32,
    /// Days between reads after which a gap is flagged. Default 45 (monthly reading).
    pub max_gap_days: i64,
    /// How far (register kWh, before the multiplier) the peak, flat and valley registers'
    /// differences may add up away from the total register's difference before the read
    /// is flagged `band_mismatch`. Default 3: each of the four registers shows whole kWh,
    /// so each difference can be off by less than 1 kWh.
    pub band_tolerance_kwh: u64,
}

impl Default for VeeRules {
    fn default() -> Self {
        VeeRules {
            history_periods: 6,
            zero_periods: 3,
            high_percent: 300,
            low_percent: 20,
            spike_percent: 500,
            min_mean_kwh_per_day: 1,
            rollover_capacity_percent: 100,
            capacity_load_percent: 100,
            max_gap_days: 45,
            band_tolerance_kwh: 3,
        }
    }
}

/// A register read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Read {
    pub read_on: NaiveDate,
    /// Register value in whole kWh (before the multiplier).
    pub value: u64,
}

/// The time-of-use registers of a read (分时示数: 峰 / 平 / 谷), whole kWh before the
/// multiplier, read beside the total register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BandRegisters {
    pub peak: u64,
    pub flat: u64,
    pub valley: u64,
}

/// The consumption of a read by time-of-use band, after the multiplier. The bands add up
/// to the read's total consumption exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BandUse {
    pub peak: u64,
    pub flat: u64,
    pub valley: u64,
}

impl BandUse {
    pub fn total(&self) -> u64 {
        self.peak + self.flat + self.valley
    }
}

/// Why a read's band registers do not give its band consumption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandMismatch {
    /// The three band differences added up (register kWh).
    pub bands_raw: u64,
    /// The total register's difference (register kWh).
    pub total_raw: u64,
}

/// The consumption by band of a read whose total consumption `total_kwh` (after the
/// multiplier, across a rollover too) is known, from the band registers of the previous
/// read and this one.
///
/// Each band register follows the total's rule: a register that went back has rolled over
/// at `10^digits` (the band registers have the total's digits). Peak and valley are their
/// registers' differences; flat is what is left of the total (总 − 峰 − 谷), so the bands
/// always add up to the total billed. The flat register checks the split: the three band
/// differences must add up to the total difference within `band_tolerance_kwh`, and peak
/// plus valley may not exceed the total; otherwise the bands are refused
/// ([`VeeFlag::BandMismatch`]). A band that went back without a real rollover comes out
/// near 10^digits and fails the same check.
pub fn band_use(
    rules: &VeeRules,
    meter: &Meter,
    previous: BandRegisters,
    current: BandRegisters,
    total_kwh: u64,
) -> Result<BandUse, BandMismatch> {
    let modulus = meter.register_modulus();
    let diff = |prev: u64, cur: u64| {
        if cur >= prev {
            cur - prev
        } else {
            modulus.saturating_sub(prev).saturating_add(cur)
        }
    };
    let mult = u64::from(meter.multiplier.max(1));
    let total_raw = total_kwh / mult;
    let (p, f, v) = (
        diff(previous.peak, current.peak),
        diff(previous.flat, current.flat),
        diff(previous.valley, current.valley),
    );
    let bands_raw = p.saturating_add(f).saturating_add(v);
    let mismatch = BandMismatch {
        bands_raw,
        total_raw,
    };
    if bands_raw.abs_diff(total_raw) > rules.band_tolerance_kwh || p.saturating_add(v) > total_raw {
        return Err(mismatch);
    }
    let (peak, valley) = (p * mult, v * mult);
    Ok(BandUse {
        peak,
        valley,
        flat: total_kwh - peak - valley,
    })
}

/// The billed consumption (after the multiplier) of one earlier period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeriodUse {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub kwh: u64,
}

impl PeriodUse {
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days().max(1)
    }
}

/// What [`check_read`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadCheck {
    pub flags: Vec<VeeFlag>,
    /// Consumption after the multiplier, when it can be computed (across a rollover too).
    pub kwh: Option<u64>,
}

impl ReadCheck {
    pub fn clean(&self) -> bool {
        !self.flags.iter().any(|f| f.blocks_billing())
    }
}

/// Everything a check needs to know about the read's context.
pub struct ReadContext<'a> {
    pub meter: &'a Meter,
    pub previous: Option<Read>,
    /// Earlier periods, oldest first.
    pub history: &'a [PeriodUse],
    /// The same period one year earlier, if known.
    pub last_year: Option<PeriodUse>,
    pub today: NaiveDate,
}

/// The most energy (after the multiplier) the meter's capacity allows over `days`.
fn capacity_kwh(rules: &VeeRules, meter: &Meter, days: i64) -> u64 {
    u64::from(meter.capacity_kva) * 24 * days.max(1) as u64 * u64::from(rules.capacity_load_percent)
        / 100
}

/// Runs every check on `read`.
pub fn check_read(rules: &VeeRules, read: Read, ctx: &ReadContext<'_>) -> ReadCheck {
    let mut flags = Vec::new();
    let meter = ctx.meter;
    if read.read_on > ctx.today {
        flags.push(VeeFlag::FutureDate);
    }
    if read.read_on < meter.installed_on {
        flags.push(VeeFlag::BeforeInstall);
    }
    if !meter.multiplier_consistent() {
        flags.push(VeeFlag::MultiplierMismatch);
    }
    let Some(prev) = ctx.previous else {
        // The first read of a meter only sets the start of the register.
        return ReadCheck { flags, kwh: None };
    };
    if read.read_on == prev.read_on {
        flags.push(VeeFlag::Duplicate);
        return ReadCheck { flags, kwh: None };
    }
    if read.read_on < prev.read_on {
        flags.push(VeeFlag::OutOfOrder);
        return ReadCheck { flags, kwh: None };
    }
    let days = (read.read_on - prev.read_on).num_days();
    if days > rules.max_gap_days {
        flags.push(VeeFlag::DateGap);
    }
    let mult = u64::from(meter.multiplier.max(1));
    let cap = capacity_kwh(rules, meter, days);
    let raw = if read.value >= prev.value {
        read.value - prev.value
    } else {
        let across = meter.register_modulus().saturating_sub(prev.value) + read.value;
        let plausible = prev.value < meter.register_modulus()
            && across.saturating_mul(mult)
                <= cap * u64::from(rules.rollover_capacity_percent) / 100;
        if plausible {
            flags.push(VeeFlag::Rollover);
            across
        } else {
            flags.push(VeeFlag::Negative);
            return ReadCheck { flags, kwh: None };
        }
    };
    let kwh = raw.saturating_mul(mult);
    if meter.capacity_kva > 0 && kwh > cap {
        flags.push(VeeFlag::OverCapacity);
    }
    // Zero for N periods in a row, this one included.
    if kwh == 0 && rules.zero_periods > 0 {
        let earlier_zeros = ctx.history.iter().rev().take_while(|p| p.kwh == 0).count();
        if earlier_zeros + 1 >= rules.zero_periods {
            flags.push(VeeFlag::ZeroPeriods);
        }
    }
    // High / low against the mean daily use of the last N periods, or the same period last
    // year when there is no history. Compared in kWh × days to stay in integers.
    let window: Vec<&PeriodUse> = ctx
        .history
        .iter()
        .rev()
        .take(rules.history_periods)
        .collect();
    let (hist_kwh, hist_days) = if window.is_empty() {
        ctx.last_year.map_or((0, 0), |p| (p.kwh, p.days()))
    } else {
        window
            .iter()
            .fold((0u64, 0i64), |(k, d), p| (k + p.kwh, d + p.days()))
    };
    if hist_days > 0 && hist_kwh >= rules.min_mean_kwh_per_day * hist_days as u64 {
        // daily = kwh / days; mean = hist_kwh / hist_days.
        let lhs = u128::from(kwh) * hist_days as u128 * 100;
        let mean_scaled = u128::from(hist_kwh) * days as u128;
        if lhs > mean_scaled * u128::from(rules.high_percent) {
            flags.push(VeeFlag::High);
        } else if kwh > 0 && lhs < mean_scaled * u128::from(rules.low_percent) {
            flags.push(VeeFlag::Low);
        }
        // Spike: far above the highest previous period's daily use.
        if let Some(max) = window
            .iter()
            .map(|p| (p.kwh, p.days()))
            .max_by(|a, b| (u128::from(a.0) * b.1 as u128).cmp(&(u128::from(b.0) * a.1 as u128)))
        {
            if max.0 > 0
                && u128::from(kwh) * max.1 as u128 * 100
                    > u128::from(max.0) * days as u128 * u128::from(rules.spike_percent)
            {
                flags.push(VeeFlag::Spike);
            }
        }
    }
    ReadCheck {
        flags,
        kwh: Some(kwh),
    }
}

/// Whether a meter read on `last_read_on` misses the period ending `period_end`.
pub fn read_missing(last_read_on: Option<NaiveDate>, period_start: NaiveDate) -> bool {
    last_read_on.map_or(true, |d| d < period_start)
}

/// Whether two reads are the same (a file sent twice, a read keyed twice).
pub fn is_duplicate(a: &Read, b: &Read) -> bool {
    a.read_on == b.read_on
}

/// Estimate: the average daily use of the last `n` periods times `days`, half up.
pub fn estimate_average_daily(history: &[PeriodUse], n: usize, days: i64) -> Option<u64> {
    let window = &history[history.len().saturating_sub(n)..];
    let (k, d) = window
        .iter()
        .fold((0u64, 0i64), |(k, d), p| (k + p.kwh, d + p.days()));
    if d <= 0 || days <= 0 {
        return None;
    }
    let num = u128::from(k) * days as u128;
    Some(((num * 2 + d as u128) / (2 * d as u128)) as u64)
}

/// The read dates that count as "the same period last year" for a read on `read_on`: 365
/// days back, 15 days either side (inclusive).
pub fn last_year_window(read_on: NaiveDate) -> (NaiveDate, NaiveDate) {
    let ly = read_on - chrono::Duration::days(365);
    (ly - chrono::Duration::days(15), ly + chrono::Duration::days(15))
}

/// Estimate: the same period last year, scaled to `days`, half up.
pub fn estimate_same_period_last_year(last_year: &PeriodUse, days: i64) -> Option<u64> {
    estimate_average_daily(std::slice::from_ref(last_year), 1, days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn meter() -> Meter {
        Meter {
            external_id: "M1".into(),
            account: "A1".into(),
            ct_ratio: 1,
            pt_ratio: 1,
            multiplier: 1,
            register_digits: 6,
            installed_on: d("2020-01-01"),
            capacity_kva: 8,
            prepaid_mode: false,
        }
    }

    fn monthly(kwhs: &[u64]) -> Vec<PeriodUse> {
        // 30-day periods ending 2026-09-01, oldest first.
        let end = d("2026-09-01");
        let n = kwhs.len() as i64;
        kwhs.iter()
            .enumerate()
            .map(|(i, &kwh)| {
                let to = end - chrono::Duration::days(30 * (n - 1 - i as i64));
                PeriodUse {
                    from: to - chrono::Duration::days(30),
                    to,
                    kwh,
                }
            })
            .collect()
    }

    fn check(m: &Meter, prev: u64, value: u64, history: &[PeriodUse]) -> ReadCheck {
        let ctx = ReadContext {
            meter: m,
            previous: Some(Read {
                read_on: d("2026-09-01"),
                value: prev,
            }),
            history,
            last_year: None,
            today: d("2026-10-05"),
        };
        check_read(
            &VeeRules::default(),
            Read {
                read_on: d("2026-10-01"),
                value,
            },
            &ctx,
        )
    }

    #[test]
    fn a_normal_read_is_clean() {
        let h = monthly(&[200, 210, 190, 205, 220, 200]);
        let c = check(&meter(), 10_000, 10_210, &h);
        assert_eq!(c.flags, vec![]);
        assert_eq!(c.kwh, Some(210));
        assert!(c.clean());
    }

    #[test]
    fn negative_and_rollover() {
        let h = monthly(&[200; 6]);
        // Register went back: negative.
        let c = check(&meter(), 10_000, 9_000, &h);
        assert_eq!(c.flags, vec![VeeFlag::Negative]);
        assert!(!c.clean());
        // 999,900 → 100 on a 6-digit register: 200 kWh across the rollover.
        let c = check(&meter(), 999_900, 100, &h);
        assert_eq!(c.flags, vec![VeeFlag::Rollover]);
        assert_eq!(c.kwh, Some(200));
        assert!(c.clean());
        // 500,000 → 100: would be 500,100 kWh in a month on 8 kVA: not a rollover.
        let c = check(&meter(), 500_000, 100, &h);
        assert_eq!(c.flags, vec![VeeFlag::Negative]);
    }

    #[test]
    fn zero_high_low_spike() {
        let c = check(
            &meter(),
            10_000,
            10_000,
            &monthly(&[200, 200, 200, 200, 0, 0]),
        );
        assert!(c.flags.contains(&VeeFlag::ZeroPeriods), "{:?}", c.flags);
        let c = check(
            &meter(),
            10_000,
            10_000,
            &monthly(&[200, 200, 200, 200, 200, 0]),
        );
        assert!(!c.flags.contains(&VeeFlag::ZeroPeriods));
        let c = check(&meter(), 10_000, 10_700, &monthly(&[200; 6]));
        assert_eq!(c.flags, vec![VeeFlag::High]);
        let c = check(&meter(), 10_000, 10_020, &monthly(&[200; 6]));
        assert_eq!(c.flags, vec![VeeFlag::Low]);
        let c = check(&meter(), 10_000, 11_500, &monthly(&[200; 6]));
        assert_eq!(c.flags, vec![VeeFlag::High, VeeFlag::Spike]);
        // No history: same period last year is the reference.
        let m = meter();
        let ctx = ReadContext {
            meter: &m,
            previous: Some(Read {
                read_on: d("2026-09-01"),
                value: 0,
            }),
            history: &[],
            last_year: Some(PeriodUse {
                from: d("2025-09-01"),
                to: d("2025-10-01"),
                kwh: 100,
            }),
            today: d("2026-10-05"),
        };
        let c = check_read(
            &VeeRules::default(),
            Read {
                read_on: d("2026-10-01"),
                value: 400,
            },
            &ctx,
        );
        assert_eq!(c.flags, vec![VeeFlag::High]);
    }

    #[test]
    fn dates_duplicates_and_multiplier() {
        let h = monthly(&[200; 6]);
        let m = meter();
        let ctx = ReadContext {
            meter: &m,
            previous: Some(Read {
                read_on: d("2026-09-01"),
                value: 100,
            }),
            history: &h,
            last_year: None,
            today: d("2026-09-10"),
        };
        let r = |on: &str, v| {
            check_read(
                &VeeRules::default(),
                Read {
                    read_on: d(on),
                    value: v,
                },
                &ctx,
            )
        };
        assert!(r("2026-10-01", 300).flags.contains(&VeeFlag::FutureDate));
        assert_eq!(r("2026-09-01", 300).flags, vec![VeeFlag::Duplicate]);
        assert_eq!(r("2026-08-01", 300).flags, vec![VeeFlag::OutOfOrder]);
        let mut old = meter();
        old.installed_on = d("2026-09-05");
        let ctx2 = ReadContext {
            meter: &old,
            previous: None,
            history: &[],
            last_year: None,
            today: d("2026-09-10"),
        };
        assert_eq!(
            check_read(
                &VeeRules::default(),
                Read {
                    read_on: d("2026-09-01"),
                    value: 0
                },
                &ctx2
            )
            .flags,
            vec![VeeFlag::BeforeInstall]
        );
        // Multiplier recorded as 40 but CT 200/5 × PT 1 = 40 ✓; recorded 80 ✗, and 80 × 150
        // kWh in a month is more than 8 kVA allows.
        let mut ct = meter();
        ct.ct_ratio = 40;
        ct.multiplier = 80;
        let c = check(&ct, 10_000, 10_150, &monthly(&[12_000; 6]));
        assert!(
            c.flags.contains(&VeeFlag::MultiplierMismatch),
            "{:?}",
            c.flags
        );
        assert!(c.flags.contains(&VeeFlag::OverCapacity), "{:?}", c.flags);
        assert_eq!(c.kwh, Some(12_000));
        // A 70-day gap.
        let ctx3 = ReadContext {
            meter: &m,
            previous: Some(Read {
                read_on: d("2026-07-01"),
                value: 100,
            }),
            history: &h,
            last_year: None,
            today: d("2026-10-05"),
        };
        assert!(check_read(
            &VeeRules::default(),
            Read {
                read_on: d("2026-09-09"),
                value: 560
            },
            &ctx3
        )
        .flags
        .contains(&VeeFlag::DateGap));
        assert!(read_missing(Some(d("2026-08-30")), d("2026-09-01")));
        assert!(!read_missing(Some(d("2026-09-30")), d("2026-09-01")));
        assert!(read_missing(None, d("2026-09-01")));
    }

    fn bands(peak: u64, flat: u64, valley: u64) -> BandRegisters {
        BandRegisters { peak, flat, valley }
    }

    #[test]
    fn band_use_splits_the_total_and_checks_the_flat_register() {
        let rules = VeeRules::default();
        let m = meter();
        // 100 kWh in total: peak 30, valley 10, flat the rest (60, as its register says).
        let prev = bands(100, 200, 50);
        assert_eq!(
            band_use(&rules, &m, prev, bands(130, 260, 60), 100),
            Ok(BandUse {
                peak: 30,
                flat: 60,
                valley: 10
            })
        );
        // The flat register 2 kWh off (whole-kWh registers): within the tolerance, and flat
        // is still total − peak − valley, so the bands add up to the total billed.
        assert_eq!(
            band_use(&rules, &m, prev, bands(130, 262, 60), 100),
            Ok(BandUse {
                peak: 30,
                flat: 60,
                valley: 10
            })
        );
        // 10 kWh off: refused, with both sums.
        assert_eq!(
            band_use(&rules, &m, prev, bands(130, 270, 60), 100),
            Err(BandMismatch {
                bands_raw: 110,
                total_raw: 100
            })
        );
        // Peak and valley above the total (even within the tolerance): refused.
        assert_eq!(
            band_use(&rules, &m, prev, bands(108, 200, 54), 10),
            Err(BandMismatch {
                bands_raw: 12,
                total_raw: 10
            })
        );
        // After the multiplier (CT 40): each band × 40, adding up to the total kWh.
        let mut ct = meter();
        ct.ct_ratio = 40;
        ct.multiplier = 40;
        assert_eq!(
            band_use(&rules, &ct, prev, bands(130, 260, 60), 4_000),
            Ok(BandUse {
                peak: 1_200,
                flat: 2_400,
                valley: 400
            })
        );
    }

    #[test]
    fn band_registers_roll_over_like_the_total() {
        let rules = VeeRules::default();
        let m = meter();
        // The total went 999,900 → 100 (200 kWh across the rollover, see
        // `negative_and_rollover`); the peak register rolled over too: 999,950 → 30 is 80.
        let h = monthly(&[200; 6]);
        let c = check(&m, 999_900, 100, &h);
        assert_eq!(c.kwh, Some(200));
        let got = band_use(
            &rules,
            &m,
            bands(999_950, 1_000, 500),
            bands(30, 1_100, 520),
            c.kwh.unwrap(),
        );
        assert_eq!(
            got,
            Ok(BandUse {
                peak: 80,
                flat: 100,
                valley: 20
            })
        );
        // A band register that went back without rolling over is about 10^6 kWh across:
        // the bands no longer add up to the total.
        let e = band_use(
            &rules,
            &m,
            bands(500, 1_000, 500),
            bands(400, 1_150, 550),
            100,
        )
        .unwrap_err();
        assert_eq!(e.bands_raw, 999_900 + 150 + 50);
    }

    proptest::proptest! {
        /// Whatever the registers (rolling over or not) and the multiplier, consistent band
        /// registers give their differences × multiplier, adding up to the total.
        #[test]
        fn consistent_bands_add_up_to_the_total(
            prev in proptest::array::uniform3(0u64..1_000_000),
            used in proptest::array::uniform3(0u64..50_000),
            mult in 1u32..200,
        ) {
            let mut m = meter();
            m.ct_ratio = mult;
            m.multiplier = mult;
            let cur = |i: usize| (prev[i] + used[i]) % 1_000_000;
            let total = (used[0] + used[1] + used[2]) * u64::from(mult);
            let got = band_use(
                &VeeRules::default(),
                &m,
                bands(prev[0], prev[1], prev[2]),
                bands(cur(0), cur(1), cur(2)),
                total,
            ).unwrap();
            let k = u64::from(mult);
            proptest::prop_assert_eq!(got, BandUse { peak: used[0] * k, flat: used[1] * k, valley: used[2] * k });
            proptest::prop_assert_eq!(got.total(), total);
        }
    }

    #[test]
    fn estimates() {
        let h = monthly(&[300, 150, 150]);
        // 600 kWh over 90 days, for 31 days: 206.67 → 207.
        assert_eq!(estimate_average_daily(&h, 3, 31), Some(207));
        assert_eq!(estimate_average_daily(&h, 1, 30), Some(150));
        assert_eq!(estimate_average_daily(&[], 3, 30), None);
        let ly = PeriodUse {
            from: d("2025-09-01"),
            to: d("2025-10-01"),
            kwh: 301,
        };
        assert_eq!(estimate_same_period_last_year(&ly, 31), Some(311)); // 311.03
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(last_year_window(d("2026-10-31")), (d("2025-10-16"), d("2025-11-15")));
    }
}
