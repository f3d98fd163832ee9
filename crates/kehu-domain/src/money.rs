//! Exact money: integer fen (分). Never floating point.
//!
//! Parsing accepts `1234.56`, `1,234.56`, `-12`, `¥1,234.5`, `１２３` is refused.
//! A value with more than two decimals is refused rather than rounded: an import
//! must not silently change an amount.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of money in fen (1 yuan = 100 fen).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
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
pub struct Fen(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("empty amount")]
    Empty,
    #[error("not an amount: expected digits with an optional sign, thousands separators and at most two decimals, like 1,234.56")]
    Syntax,
    #[error("more than two decimal places: amounts are exact to the fen")]
    TooPrecise,
    #[error("amount too large")]
    Overflow,
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub fn from_yuan(yuan: i64) -> Fen {
        Fen(yuan * 100)
    }

    /// Parse a yuan amount written by a person or another system.
    pub fn parse_yuan(input: &str) -> Result<Fen, MoneyError> {
        let s = input.trim();
        let s = s
            .strip_prefix('¥')
            .or_else(|| s.strip_prefix('￥'))
            .unwrap_or(s)
            .trim();
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (neg, s) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (int_part, frac_part) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        if int_part.is_empty() && frac_part.map_or(true, str::is_empty) {
            return Err(MoneyError::Syntax);
        }
        // Thousands separators: groups of exactly three digits after the first group.
        let mut yuan: i64 = 0;
        if int_part.contains(',') {
            let groups: Vec<&str> = int_part.split(',').collect();
            let first = groups[0];
            if first.is_empty() || first.len() > 3 || groups[1..].iter().any(|g| g.len() != 3) {
                return Err(MoneyError::Syntax);
            }
            for g in groups {
                yuan = push_digits(yuan, g)?;
            }
        } else {
            yuan = push_digits(yuan, int_part)?;
        }
        let mut fen: i64 = 0;
        if let Some(f) = frac_part {
            if f.len() > 2 {
                if f[2..].bytes().all(|b| b == b'0') && f.bytes().all(|b| b.is_ascii_digit()) {
                    // 12.3400 is exact; accept.
                } else if f.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(MoneyError::TooPrecise);
                } else {
                    return Err(MoneyError::Syntax);
                }
            }
            let f2 = &f[..f.len().min(2)];
            if !f2.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MoneyError::Syntax);
            }
            fen = push_digits(0, f2)?;
            if f2.len() == 1 {
                fen *= 10;
            }
        }
        let total = yuan
            .checked_mul(100)
            .and_then(|v| v.checked_add(fen))
            .ok_or(MoneyError::Overflow)?;
        Ok(Fen(if neg { -total } else { total }))
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Plain yuan with two decimals and no separators: `-1234.50`. The import/export form.
    pub fn to_plain(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", a / 100, a % 100)
    }

    /// For people: `¥1,234.50`.
    pub fn to_display(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let int = (a / 100).to_string();
        let mut grouped = String::with_capacity(int.len() + int.len() / 3);
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{sign}¥{grouped}.{:02}", a % 100)
    }
}

fn push_digits(mut acc: i64, digits: &str) -> Result<i64, MoneyError> {
    if digits.is_empty() {
        return Ok(acc);
    }
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return Err(MoneyError::Syntax);
        }
        acc = acc
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or(MoneyError::Overflow)?;
    }
    Ok(acc)
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_display())
    }
}

impl std::ops::Add for Fen {
    type Output = Fen;
    fn add(self, o: Fen) -> Fen {
        Fen(self.0 + o.0)
    }
}

impl std::iter::Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
    }
}

/// A rate in basis points (1 bp = 0.01%), exact. `3.85%` is `Bp(385)`.
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
pub struct Bp(pub i32);

impl Bp {
    /// Parse a percentage: `3.85`, `3.85%`, `0.5`. At most two decimals.
    pub fn parse_percent(input: &str) -> Result<Bp, MoneyError> {
        let s = input.trim().trim_end_matches('%').trim();
        let f = Fen::parse_yuan(s)?; // same grammar: integer part and two decimals
        i32::try_from(f.0).map(Bp).map_err(|_| MoneyError::Overflow)
    }

    pub fn to_percent_string(self) -> String {
        let s = Fen(i64::from(self.0)).to_plain();
        format!("{s}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(Fen::parse_yuan("1234.56"), Ok(Fen(123456)));
        assert_eq!(Fen::parse_yuan("1,234.56"), Ok(Fen(123456)));
        assert_eq!(Fen::parse_yuan("1,234,567"), Ok(Fen(123456700)));
        assert_eq!(Fen::parse_yuan("¥12.5"), Ok(Fen(1250)));
        assert_eq!(Fen::parse_yuan("-0.01"), Ok(Fen(-1)));
        assert_eq!(Fen::parse_yuan(".5"), Ok(Fen(50)));
        assert_eq!(Fen::parse_yuan("12.3400"), Ok(Fen(1234)));
    }

    #[test]
    fn refuses_bad_forms() {
        assert_eq!(Fen::parse_yuan(""), Err(MoneyError::Empty));
        assert_eq!(Fen::parse_yuan("12.345"), Err(MoneyError::TooPrecise));
        assert_eq!(Fen::parse_yuan("1,23"), Err(MoneyError::Syntax));
        assert_eq!(Fen::parse_yuan("12a"), Err(MoneyError::Syntax));
        assert_eq!(Fen::parse_yuan("1.2.3"), Err(MoneyError::Syntax));
        assert_eq!(Fen::parse_yuan("-"), Err(MoneyError::Syntax));
        assert_eq!(
            Fen::parse_yuan("99999999999999999999"),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn displays_with_separators() {
        assert_eq!(Fen(123456789).to_display(), "¥1,234,567.89");
        assert_eq!(Fen(-5).to_display(), "-¥0.05");
        assert_eq!(Fen(100).to_plain(), "1.00");
        assert_eq!(Bp::parse_percent("3.85%"), Ok(Bp(385)));
        assert_eq!(Bp(385).to_percent_string(), "3.85%");
    }

    proptest! {
        #[test]
        fn plain_and_display_round_trip(v in -10_000_000_000_000i64..10_000_000_000_000i64) {
            prop_assert_eq!(Fen::parse_yuan(&Fen(v).to_plain()), Ok(Fen(v)));
            prop_assert_eq!(Fen::parse_yuan(&Fen(v).to_display().replace("¥", "")), Ok(Fen(v)));
        }
    }
}
