//! UI language: one TOML catalog per language (`i18n/zh-CN.toml`, `i18n/en.toml`, compiled
//! in), flattened to dotted keys; formatting of numbers, money and dates per language.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use kehu_domain::money::Fen;
use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    ZhCn,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim() {
            "zh-CN" | "zh" | "zh-cn" => Some(Lang::ZhCn),
            "en" | "en-US" | "en-GB" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::ZhCn => Lang::En,
            Lang::En => Lang::ZhCn,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::ZhCn => include_str!("../../i18n/zh-CN.toml"),
            Lang::En => include_str!("../../i18n/en.toml"),
        }
    }
}

pub type Catalog = BTreeMap<String, String>;

fn flatten(prefix: &str, v: &toml::Value, out: &mut Catalog) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Parses a catalog; a broken catalog is a build defect, caught by the tests.
pub fn parse_catalog(src: &str) -> Result<Catalog, String> {
    let v: toml::Value = src.parse().map_err(|e| format!("{e}"))?;
    let mut out = Catalog::new();
    flatten("", &v, &mut out);
    Ok(out)
}

pub fn catalog(lang: Lang) -> &'static Catalog {
    static ZH: OnceLock<Catalog> = OnceLock::new();
    static EN: OnceLock<Catalog> = OnceLock::new();
    let cell = match lang {
        Lang::ZhCn => &ZH,
        Lang::En => &EN,
    };
    cell.get_or_init(|| parse_catalog(lang.source()).expect("UI catalog parses (tested)"))
}

/// The translator handed to every template.
#[derive(Clone, Copy, Debug)]
pub struct Tr {
    pub lang: Lang,
    pub offset: FixedOffset,
}

impl Tr {
    pub fn new(lang: Lang, offset: FixedOffset) -> Tr {
        Tr { lang, offset }
    }

    /// The string for `key`; a missing key shows itself (and fails the catalog test).
    pub fn s<'a>(&self, key: &'a str) -> &'a str
    where
        'static: 'a,
    {
        match catalog(self.lang).get(key) {
            Some(v) => v.as_str(),
            None => key,
        }
    }

    /// The string for `key` with `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.s(key).to_string();
        for (k, v) in args {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    /// A code list label in this language.
    pub fn label(&self, zh: &'static str, en: &'static str) -> &'static str {
        match self.lang {
            Lang::ZhCn => zh,
            Lang::En => en,
        }
    }

    /// A text given in both languages (data, not the catalog), in this language.
    pub fn label_owned<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self.lang {
            Lang::ZhCn => zh,
            Lang::En => en,
        }
    }

    pub fn money(&self, f: Fen) -> String {
        f.to_display()
    }

    /// Whole yuan with separators (charts, cards): `¥1,234`.
    pub fn yuan(&self, f: Fen) -> String {
        let yuan = Fen((f.0 / 100) * 100).to_display();
        yuan.trim_end_matches(".00").to_string()
    }

    pub fn int(&self, n: i64) -> String {
        group(n)
    }

    pub fn date(&self, d: NaiveDate) -> String {
        match self.lang {
            Lang::ZhCn => format!("{}年{}月{}日", d.year(), d.month(), d.day()),
            Lang::En => d.format("%-d %b %Y").to_string(),
        }
    }

    pub fn month(&self, d: NaiveDate) -> String {
        match self.lang {
            Lang::ZhCn => format!("{}年{}月", d.year(), d.month()),
            Lang::En => d.format("%b %Y").to_string(),
        }
    }

    pub fn short_month(&self, d: NaiveDate) -> String {
        match self.lang {
            Lang::ZhCn => format!("{}月", d.month()),
            Lang::En => d.format("%b").to_string(),
        }
    }

    pub fn datetime(&self, t: DateTime<Utc>) -> String {
        let local = t.with_timezone(&self.offset);
        format!(
            "{} {}",
            self.date(local.date_naive()),
            local.format("%H:%M")
        )
    }

    pub fn opt_date(&self, d: &Option<NaiveDate>) -> String {
        d.map(|d| self.date(d)).unwrap_or_else(|| "—".into())
    }
}

/// `1234567` → `1,234,567`.
pub fn group(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_have_the_same_keys_and_no_empty_strings() {
        let zh = parse_catalog(Lang::ZhCn.source()).unwrap();
        let en = parse_catalog(Lang::En.source()).unwrap();
        let only_zh: Vec<_> = zh.keys().filter(|k| !en.contains_key(*k)).collect();
        let only_en: Vec<_> = en.keys().filter(|k| !zh.contains_key(*k)).collect();
        assert!(only_zh.is_empty(), "missing in en.toml: {only_zh:?}");
        assert!(only_en.is_empty(), "missing in zh-CN.toml: {only_en:?}");
        for (k, v) in zh.iter().chain(en.iter()) {
            assert!(!v.trim().is_empty(), "empty string for {k}");
        }
        assert!(zh.len() > 50, "catalog has {} keys", zh.len());
    }

    /// Every `t.s("…")` / `t.f("…"` / `s("…")` key used in a template or in the web code
    /// is in the catalog.
    #[test]
    fn every_key_used_is_in_the_catalog() {
        let zh = catalog(Lang::ZhCn);
        let root = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()));
        let mut files = Vec::new();
        for dir in ["templates", "templates/app", "src/web"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() && !p.ends_with("i18n.rs") {
                    files.push(p);
                }
            }
        }
        let mut used = 0;
        let mut missing = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for pat in ["s(\"", "f(\"", "key: \""] {
                let mut rest = text.as_str();
                while let Some(i) = rest.find(pat) {
                    rest = &rest[i + pat.len()..];
                    let Some(end) = rest.find('"') else { break };
                    let key = &rest[..end];
                    let plain = key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
                    if plain && key.contains('.') && !key.ends_with(".html") {
                        used += 1;
                        if !zh.contains_key(key) {
                            missing.push(format!("{}: {key}", f.display()));
                        }
                    }
                }
            }
        }
        assert!(used > 50, "found only {used} keys in use");
        assert!(missing.is_empty(), "keys not in the catalog: {missing:#?}");
    }

    #[test]
    fn money_dates_and_numbers_follow_the_language() {
        let off = FixedOffset::east_opt(8 * 3600).unwrap();
        let zh = Tr::new(Lang::ZhCn, off);
        let en = Tr::new(Lang::En, off);
        assert_eq!(zh.money(Fen(123456789)), "¥1,234,567.89");
        assert_eq!(zh.yuan(Fen(123456789)), "¥1,234,567");
        assert_eq!(group(-1234567), "-1,234,567");
        let d = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
        assert_eq!(zh.date(d), "2026年3月5日");
        assert_eq!(en.date(d), "5 Mar 2026");
        let t = DateTime::parse_from_rfc3339("2026-03-04T17:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(zh.datetime(t), "2026年3月5日 01:30");
        assert_eq!(en.s("nav.customers"), "Customers");
        assert_eq!(zh.s("nav.customers"), "客户");
        assert_eq!(zh.s("no.such.key"), "no.such.key");
    }
}
