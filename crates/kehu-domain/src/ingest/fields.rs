use crate::money::{Bp, Fen};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// One column of an import format.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// Other accepted header names (Chinese headers as banks write them).
    pub aliases: &'static [&'static str],
    pub required: bool,
    /// What a valid value looks like, for docs and errors.
    pub doc: &'static str,
}

/// A field that failed validation: which column, what value, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub column: String,
    pub value: String,
    pub expected: String,
}

/// What parsing needs from outside: today's date (for "not in the future") and the local
/// zone for timestamps written without one.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    pub today: NaiveDate,
    pub offset: FixedOffset,
}

/// The values of one row, in the order of the format's columns, with the errors found so
/// far. Empty strings count as missing.
pub struct Fields<'a> {
    columns: &'static [Column],
    values: &'a [Option<&'a str>],
    pub ctx: ParseContext,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(
        columns: &'static [Column],
        values: &'a [Option<&'a str>],
        ctx: ParseContext,
    ) -> Self {
        Fields {
            columns,
            values,
            ctx,
            errors: Vec::new(),
        }
    }

    fn raw(&self, i: usize) -> Option<&'a str> {
        self.values
            .get(i)
            .copied()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    pub fn fail(&mut self, i: usize, value: &str, expected: impl Into<String>) {
        self.errors.push(FieldError {
            column: self.columns[i].name.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        });
    }

    fn missing(&mut self, i: usize) {
        let doc = self.columns[i].doc;
        self.fail(i, "", format!("a value (required): {doc}"));
    }

    /// Free text, required. Control characters are refused; at most `max` characters.
    pub fn text(&mut self, i: usize, max: usize) -> String {
        match self.opt_text(i, max) {
            Some(s) => s,
            None => {
                if self.raw(i).is_none() {
                    self.missing(i);
                }
                String::new()
            }
        }
    }

    pub fn opt_text(&mut self, i: usize, max: usize) -> Option<String> {
        let v = self.raw(i)?;
        if v.chars().any(char::is_control) {
            self.fail(i, v, "text without control characters");
            return None;
        }
        if v.chars().count() > max {
            self.fail(i, v, format!("at most {max} characters"));
            return None;
        }
        Some(v.to_string())
    }

    /// An identifier: letters, digits, `-`, `_`, `.`, at most 64 characters.
    pub fn id(&mut self, i: usize) -> String {
        match self.opt_id(i) {
            Some(s) => s,
            None => {
                if self.raw(i).is_none() {
                    self.missing(i);
                }
                String::new()
            }
        }
    }

    pub fn opt_id(&mut self, i: usize) -> Option<String> {
        let v = self.raw(i)?;
        if v.len() > 64
            || !v
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            self.fail(i, v, "an identifier: letters, digits, - _ . (at most 64)");
            return None;
        }
        Some(v.to_string())
    }

    pub fn opt_date(&mut self, i: usize) -> Option<NaiveDate> {
        let v = self.raw(i)?;
        match parse_date(v) {
            Some(d) => Some(d),
            None => {
                self.fail(i, v, "a date like 2023-03-01, 2023/3/1 or 20230301");
                None
            }
        }
    }

    pub fn date(&mut self, i: usize) -> NaiveDate {
        if self.raw(i).is_none() {
            self.missing(i);
        }
        self.opt_date(i).unwrap_or_default()
    }

    /// A date that must not be after today.
    pub fn opt_past_date(&mut self, i: usize) -> Option<NaiveDate> {
        let d = self.opt_date(i)?;
        if d > self.ctx.today {
            let v = self.raw(i).unwrap_or_default();
            self.fail(i, v, format!("a date not after today ({})", self.ctx.today));
            return None;
        }
        Some(d)
    }

    pub fn timestamp(&mut self, i: usize) -> DateTime<Utc> {
        let Some(v) = self.raw(i) else {
            self.missing(i);
            return DateTime::<Utc>::default();
        };
        match parse_timestamp(v, self.ctx.offset) {
            Some(t) => t,
            None => {
                self.fail(
                    i,
                    v,
                    "a time like 2023-03-01 14:05:00 (local), 2023-03-01T06:05:00Z or a date",
                );
                DateTime::<Utc>::default()
            }
        }
    }

    pub fn opt_money(&mut self, i: usize) -> Option<Fen> {
        let v = self.raw(i)?;
        match Fen::parse_yuan(v) {
            Ok(f) => Some(f),
            Err(e) => {
                self.fail(i, v, format!("an amount in yuan like 1,234.56 ({e})"));
                None
            }
        }
    }

    /// A required amount that must be ≥ 0 (or > 0 with `positive`).
    pub fn money_non_negative(&mut self, i: usize, positive: bool) -> Fen {
        if self.raw(i).is_none() {
            self.missing(i);
            return Fen::ZERO;
        }
        match self.opt_money(i) {
            Some(f) if f.0 < 0 || (positive && f.0 == 0) => {
                let v = self.raw(i).unwrap_or_default();
                let what = if positive {
                    "greater than zero"
                } else {
                    "zero or more (negative balances are not allowed here)"
                };
                self.fail(i, v, format!("an amount {what}"));
                Fen::ZERO
            }
            Some(f) => f,
            None => Fen::ZERO,
        }
    }

    pub fn opt_percent(&mut self, i: usize) -> Option<Bp> {
        let v = self.raw(i)?;
        match Bp::parse_percent(v) {
            Ok(b) => Some(b),
            Err(e) => {
                self.fail(i, v, format!("a percentage like 3.85 or 3.85% ({e})"));
                None
            }
        }
    }

    pub fn opt_int(&mut self, i: usize, min: i64, max: i64) -> Option<i64> {
        let v = self.raw(i)?;
        match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.fail(i, v, format!("a whole number from {min} to {max}"));
                None
            }
        }
    }

    /// Yes/no: true/false, 1/0, yes/no, y/n, 是/否. Missing gives `default`.
    pub fn flag(&mut self, i: usize, default: bool) -> bool {
        let Some(v) = self.raw(i) else { return default };
        match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "是" | "t" => true,
            "false" | "0" | "no" | "n" | "否" | "f" => false,
            _ => {
                self.fail(i, v, "yes or no: true/false, 1/0, yes/no, 是/否");
                default
            }
        }
    }

    /// A value from a code list (see `code_enum!`). Missing gives `default` or an error.
    pub fn code<T: Copy>(
        &mut self,
        i: usize,
        parse: fn(&str) -> Option<T>,
        expected: fn() -> String,
        default: Option<T>,
    ) -> Option<T> {
        match self.raw(i) {
            None => {
                if default.is_none() {
                    self.missing(i);
                }
                default
            }
            Some(v) => match parse(v) {
                Some(t) => Some(t),
                None => {
                    self.fail(i, v, format!("one of {}", expected()));
                    default
                }
            },
        }
    }

    pub fn opt_code<T: Copy>(
        &mut self,
        i: usize,
        parse: fn(&str) -> Option<T>,
        expected: fn() -> String,
    ) -> Option<T> {
        let v = self.raw(i)?;
        let r = parse(v);
        if r.is_none() {
            self.fail(i, v, format!("one of {}", expected()));
        }
        r
    }

    /// A mainland mobile or landline number: digits with optional `+86`, spaces or dashes.
    /// Stored as digits only.
    pub fn opt_phone(&mut self, i: usize) -> Option<String> {
        let v = self.raw(i)?;
        let body = v
            .strip_prefix("+86")
            .or_else(|| v.strip_prefix("0086"))
            .unwrap_or(v);
        let digits: String = body.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let ok = digits.chars().all(|c| c.is_ascii_digit())
            && ((digits.len() == 11 && digits.starts_with('1'))
                || (7..=12).contains(&digits.len()) && digits.starts_with('0'));
        if !ok {
            self.fail(
                i,
                v,
                "a phone number: 11-digit mobile starting with 1, or a landline with area code",
            );
            return None;
        }
        Some(digits)
    }

    /// A resident identity card number (GB 11643-1999): 18 characters with a valid check digit.
    pub fn opt_id_number(&mut self, i: usize) -> Option<String> {
        let v = self.raw(i)?;
        let up = v.to_ascii_uppercase();
        if !id_number_valid(&up) {
            self.fail(
                i,
                v,
                "an 18-character resident ID number with a valid check digit (GB 11643)",
            );
            return None;
        }
        Some(up)
    }
}

/// Dates as `2023-03-01`, `2023/3/1`, `2023.3.1` or `20230301`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        let y = s[0..4].parse().ok()?;
        let m = s[4..6].parse().ok()?;
        let d = s[6..8].parse().ok()?;
        return NaiveDate::from_ymd_opt(y, m, d);
    }
    let sep = s.chars().find(|c| matches!(c, '-' | '/' | '.'))?;
    let mut parts = s.split(sep);
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1000..=9999).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

/// A timestamp: RFC 3339 with a zone, or a local `date time` / bare date in `offset`.
pub fn parse_timestamp(s: &str, offset: FixedOffset) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return offset
                .from_local_datetime(&n)
                .single()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    let d = parse_date(s)?;
    offset
        .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// GB 11643-1999 check: 17 digits, then a check character from ISO 7064 MOD 11-2, and a
/// plausible birth date in positions 7–14.
pub fn id_number_valid(id: &str) -> bool {
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    if parse_date(&id[6..14]).is_none() {
        return false;
    }
    id_check_char(&id[..17]) == Some(b[17] as char)
}

/// The check character for the first 17 digits of an ID number.
pub fn id_check_char(first17: &str) -> Option<char> {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (i, ch) in first17.chars().enumerate() {
        sum += ch.to_digit(10)? * W[i];
    }
    Some(C[(sum % 11) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_three_forms() {
        let d = NaiveDate::from_ymd_opt(2023, 3, 1).unwrap();
        assert_eq!(parse_date("2023-03-01"), Some(d));
        assert_eq!(parse_date("2023/3/1"), Some(d));
        assert_eq!(parse_date("20230301"), Some(d));
        assert_eq!(parse_date("2023-02-30"), None);
        assert_eq!(parse_date("01/03/2023"), None);
        assert_eq!(parse_date("2023-3"), None);
    }

    #[test]
    fn local_times_are_converted_to_utc() {
        let cst = FixedOffset::east_opt(8 * 3600).unwrap();
        let t = parse_timestamp("2023-03-01 08:00:00", cst).unwrap();
        assert_eq!(t.to_rfc3339(), "2023-03-01T00:00:00+00:00");
        let z = parse_timestamp("2023-03-01T08:00:00Z", cst).unwrap();
        assert_eq!(z.to_rfc3339(), "2023-03-01T08:00:00+00:00");
    }

    #[test]
    fn id_number_check_digit() {
        // 11010519491231002X is the standard's worked example.
        assert!(id_number_valid("11010519491231002X"));
        assert!(!id_number_valid("110105194912310021"));
        assert!(!id_number_valid("11010519491331002X"));
        assert_eq!(id_check_char("11010519491231002"), Some('X'));
    }
}
