//! Behaviour events as apps send them, and their validation. The schema is documented in
//! `docs/behaviour.md`; every rejection names the field and says what was expected.

use crate::code_enum;
use crate::money::Fen;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;

code_enum!(
    /// What a customer did.
    EventKind {
        AppOpen = "app_open", "打开应用", "app open",
        PageView = "page_view", "浏览页面", "page view",
        ProductView = "product_view", "浏览产品", "product view",
        Search = "search", "搜索", "search",
        Click = "click", "点击", "click",
        CalculatorUse = "calculator_use", "使用计算器", "calculator use",
        Purchase = "purchase", "购买", "purchase",
        MessageOpen = "message_open", "打开消息", "message open",
        MessageClick = "message_click", "点击消息", "message click",
        Identify = "identify", "登录识别", "identify",
    }
);

impl EventKind {
    /// The product field is required for this kind.
    pub fn needs_product(self) -> bool {
        matches!(self, EventKind::ProductView | EventKind::Purchase)
    }
}

/// A validated event. Times are epoch milliseconds (UTC).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: EventKind,
    pub ts_ms: i64,
    pub device: Option<String>,
    /// Customer external id as sent.
    pub customer: Option<String>,
    /// Product code as sent.
    pub product: Option<String>,
    pub dwell_ms: Option<u32>,
    pub depth: Option<u8>,
    pub page: Option<String>,
    pub query: Option<String>,
    pub element: Option<String>,
    pub quantity: Option<u32>,
    pub amount: Option<Fen>,
    pub message: Option<String>,
}

/// Why an event was refused: the field and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    pub field: String,
    pub reason: String,
}

impl Rejection {
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        Rejection {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// Limits for validation; `now_ms` is the server clock at receipt.
#[derive(Clone, Copy, Debug)]
pub struct EventLimits {
    pub now_ms: i64,
    /// How far ahead of the server clock an event time may be (clock skew).
    pub max_future_ms: i64,
}

/// 2000-01-01T00:00:00Z: events before it are refused.
pub const EARLIEST_MS: i64 = 946_684_800_000;

const KNOWN: &[&str] = &[
    "id", "type", "ts", "device", "customer", "product", "dwell_ms", "depth", "page", "query",
    "element", "quantity", "amount", "message",
];

/// A field as sent. JSON `null` counts as missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Sent<'a> {
    #[default]
    Missing,
    Str(Cow<'a, str>),
    Num(serde_json::Number),
    /// Anything else, by what it is ("a boolean", "an array", "an object").
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Sent<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sent<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Sent<'de>, E> {
                Ok(Sent::Missing)
            }
            fn visit_none<E>(self) -> Result<Sent<'de>, E> {
                Ok(Sent::Missing)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Sent<'de>, D::Error> {
                Sent::deserialize(d)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Sent<'de>, E> {
                Ok(Sent::Other("a boolean"))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Sent<'de>, E> {
                Ok(Sent::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Sent<'de>, E> {
                Ok(Sent::Num(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Sent<'de>, E> {
                Ok(serde_json::Number::from_f64(v).map_or(Sent::Other("a number"), Sent::Num))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Sent<'de>, E> {
                Ok(Sent::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Sent<'de>, E> {
                Ok(Sent::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Sent<'de>, E> {
                Ok(Sent::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Sent<'de>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Sent::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Sent<'de>, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Sent::Other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One element of a batch as sent, read in one pass straight from the request body
/// (strings borrowed from it): the known fields, the first unknown field name (in byte
/// order, as a JSON object's keys sort), or what the element is if not an object. What
/// `validate_sent` checks; `validate` reads the same from a `serde_json::Value`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SentEvent<'a> {
    fields: [Sent<'a>; 14],
    unknown: Option<Cow<'a, str>>,
    not_object: Option<&'static str>,
}

impl<'a> SentEvent<'a> {
    fn get(&self, field: &str) -> &Sent<'a> {
        let i = KNOWN.iter().position(|k| *k == field).expect("a known field");
        &self.fields[i]
    }
}

impl<'de> Deserialize<'de> for SentEvent<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SentEvent<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<SentEvent<'de>, A::Error> {
                let mut e = SentEvent::default();
                while let Some(key) = a.next_key::<Sent<'de>>()? {
                    let Sent::Str(key) = key else {
                        a.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    match KNOWN.iter().position(|k| *k == key) {
                        Some(i) => e.fields[i] = a.next_value()?,
                        None => {
                            a.next_value::<IgnoredAny>()?;
                            if e.unknown.as_ref().is_none_or(|u| key < *u) {
                                e.unknown = Some(key);
                            }
                        }
                    }
                }
                Ok(e)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<SentEvent<'de>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SentEvent { not_object: Some("an array"), ..Default::default() })
            }
            fn visit_unit<E>(self) -> Result<SentEvent<'de>, E> {
                Ok(SentEvent { not_object: Some("null"), ..Default::default() })
            }
            fn visit_bool<E>(self, _: bool) -> Result<SentEvent<'de>, E> {
                Ok(SentEvent { not_object: Some("a boolean"), ..Default::default() })
            }
            fn visit_i64<E>(self, _: i64) -> Result<SentEvent<'de>, E> {
                Ok(SentEvent { not_object: Some("a number"), ..Default::default() })
            }
            fn visit_u64<E>(self, _: u64) -> Result<SentEvent<'de>, E> {
                Ok(SentEvent { not_object: Some("a number"), ..Default::default() })
            }
            fn visit_f64<E>(self, _: f64) -> Result<SentEvent<'de>, E> {
                Ok(SentEvent { not_object: Some("a number"), ..Default::default() })
            }
            fn visit_str<E>(self, _: &str) -> Result<SentEvent<'de>, E> {
                Ok(SentEvent { not_object: Some("a string"), ..Default::default() })
            }
        }
        d.deserialize_any(V)
    }
}

fn text(e: &SentEvent, field: &str, max: usize) -> Result<Option<String>, Rejection> {
    match e.get(field) {
        Sent::Missing => Ok(None),
        Sent::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                Ok(None)
            } else if t.chars().count() > max {
                Err(Rejection::new(field, format!("at most {max} characters")))
            } else {
                Ok(Some(t.to_string()))
            }
        }
        other => Err(Rejection::new(field, format!("a string, not {}", kind_of(other)))),
    }
}

fn kind_of(v: &Sent) -> &'static str {
    match v {
        Sent::Missing => "null",
        Sent::Num(_) => "a number",
        Sent::Str(_) => "a string",
        Sent::Other(k) => k,
    }
}

fn int(e: &SentEvent, field: &str, min: i64, max: i64) -> Result<Option<i64>, Rejection> {
    match e.get(field) {
        Sent::Missing => Ok(None),
        Sent::Num(n) => match n.as_i64() {
            Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
            _ => Err(Rejection::new(
                field,
                format!("a whole number from {min} to {max}, not {n}"),
            )),
        },
        other => Err(Rejection::new(
            field,
            format!("a whole number from {min} to {max}, not {}", kind_of(other)),
        )),
    }
}

fn required<T>(v: Option<T>, field: &str, kind: EventKind) -> Result<T, Rejection> {
    v.ok_or_else(|| Rejection::new(field, format!("required for {}", kind.code())))
}

/// An id made by the client: 1–64 of `A–Z a–z 0–9 _ - . :`.
pub fn valid_event_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// Validates one event given as a JSON value.
pub fn validate(v: &Value, limits: EventLimits) -> Result<Event, Rejection> {
    let sent = SentEvent::deserialize(v).map_err(|e| Rejection::new("", e.to_string()))?;
    validate_sent(&sent, limits)
}

/// Validates one event as read from a request body.
pub fn validate_sent(e: &SentEvent, limits: EventLimits) -> Result<Event, Rejection> {
    if let Some(k) = e.not_object {
        return Err(Rejection::new("", format!("an event object, not {k}")));
    }
    if let Some(k) = &e.unknown {
        return Err(Rejection::new(
            k,
            format!("unknown field; known fields: {}", KNOWN.join(", ")),
        ));
    }
    let id = match e.get("id") {
        Sent::Str(s) if valid_event_id(s) => s.to_string(),
        Sent::Str(_) => {
            return Err(Rejection::new(
                "id",
                "1 to 64 characters of A-Z a-z 0-9 _ - . :",
            ))
        }
        _ => return Err(Rejection::new("id", "required: a string made by the client")),
    };
    let kind = match e.get("type") {
        Sent::Str(s) => EventKind::parse(s).ok_or_else(|| {
            Rejection::new(
                "type",
                format!("unknown event type {s:?}; expected {}", EventKind::expected()),
            )
        })?,
        _ => return Err(Rejection::new("type", format!("required: {}", EventKind::expected()))),
    };
    let ts_ms = match e.get("ts") {
        Sent::Num(n) => n
            .as_i64()
            .ok_or_else(|| Rejection::new("ts", "epoch milliseconds as a whole number"))?,
        Sent::Str(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map_err(|_| {
                Rejection::new(
                    "ts",
                    format!("an RFC 3339 time with offset like 2026-11-28T10:00:00+08:00, not {s:?}"),
                )
            })?
            .timestamp_millis(),
        _ => {
            return Err(Rejection::new(
                "ts",
                "required: epoch milliseconds or an RFC 3339 time",
            ))
        }
    };
    if ts_ms < EARLIEST_MS {
        return Err(Rejection::new("ts", "before 2000-01-01"));
    }
    if ts_ms > limits.now_ms + limits.max_future_ms {
        return Err(Rejection::new(
            "ts",
            format!(
                "{} s ahead of the server clock (at most {} s allowed)",
                (ts_ms - limits.now_ms) / 1000,
                limits.max_future_ms / 1000
            ),
        ));
    }
    let device = text(e, "device", 64)?;
    let customer = text(e, "customer", 64)?;
    if device.is_none() && customer.is_none() {
        return Err(Rejection::new("device", "a device or a customer is required"));
    }
    if kind == EventKind::Identify {
        required(customer.as_ref(), "customer", kind)?;
        required(device.as_ref(), "device", kind)?;
    }
    let product = text(e, "product", 64)?;
    if kind.needs_product() {
        required(product.as_ref(), "product", kind)?;
    }
    let dwell_ms = int(e, "dwell_ms", 0, 86_400_000)?.map(|v| v as u32);
    let depth = int(e, "depth", 0, 100)?.map(|v| v as u8);
    let query = text(e, "query", 200)?;
    let element = text(e, "element", 100)?;
    let message = text(e, "message", 64)?;
    match kind {
        EventKind::Search => {
            required(query.as_ref(), "query", kind)?;
        }
        EventKind::Click => {
            required(element.as_ref(), "element", kind)?;
        }
        EventKind::MessageOpen | EventKind::MessageClick => {
            required(message.as_ref(), "message", kind)?;
        }
        _ => {}
    }
    let quantity = int(e, "quantity", 1, 1_000_000_000)?.map(|v| v as u32);
    let amount = match e.get("amount") {
        Sent::Missing => None,
        Sent::Str(s) => Some(
            Fen::parse_yuan(s).map_err(|x| Rejection::new("amount", format!("{x}: {s:?}")))?,
        ),
        Sent::Num(n) => Some(
            Fen::parse_yuan(&n.to_string())
                .map_err(|x| Rejection::new("amount", format!("{x}: {n}")))?,
        ),
        other => {
            return Err(Rejection::new(
                "amount",
                format!("yuan as a string or number, not {}", kind_of(other)),
            ))
        }
    };
    if let Some(a) = amount {
        if a.0 <= 0 {
            return Err(Rejection::new("amount", "more than zero"));
        }
    }
    if kind == EventKind::Purchase {
        required(amount, "amount", kind)?;
    }
    Ok(Event {
        id,
        kind,
        ts_ms,
        device,
        customer,
        product,
        dwell_ms,
        depth,
        page: text(e, "page", 500)?,
        query,
        element,
        quantity: if kind == EventKind::Purchase {
            Some(quantity.unwrap_or(1))
        } else {
            quantity
        },
        amount,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_795_000_000_000;
    fn lim() -> EventLimits {
        EventLimits {
            now_ms: NOW,
            max_future_ms: 300_000,
        }
    }
    fn rej(v: Value) -> Rejection {
        validate(&v, lim()).unwrap_err()
    }

    #[test]
    fn a_product_view_with_dwell_and_depth() {
        let e = validate(
            &json!({"id":"e1","type":"product_view","ts":"2026-11-17T10:00:00+08:00",
                    "device":"d1","product":"WM001","dwell_ms":12000,"depth":80}),
            lim(),
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::ProductView);
        let utc = chrono::DateTime::parse_from_rfc3339("2026-11-17T02:00:00Z").unwrap();
        assert_eq!(e.ts_ms, utc.timestamp_millis());
        assert_eq!((e.dwell_ms, e.depth), (Some(12000), Some(80)));
    }

    #[test]
    fn purchases_parse_yuan_amounts_exactly() {
        let e = validate(
            &json!({"id":"p","type":"purchase","ts":NOW,"customer":"C1","product":"F1","amount":"10,000.50"}),
            lim(),
        )
        .unwrap();
        assert_eq!(e.amount, Some(Fen(1_000_050)));
        assert_eq!(e.quantity, Some(1));
    }

    #[test]
    fn every_bad_field_is_named() {
        let base = json!({"id":"e","type":"product_view","ts":NOW,"device":"d","product":"P"});
        let with = |k: &str, v: Value| {
            let mut o = base.clone();
            o[k] = v;
            rej(o)
        };
        assert_eq!(with("type", json!("teleport")).field, "type");
        assert!(with("type", json!("teleport")).reason.contains("unknown event type"));
        assert_eq!(with("depth", json!(101)).field, "depth");
        assert_eq!(with("dwell_ms", json!(-5)).field, "dwell_ms");
        assert_eq!(with("ts", json!(NOW + 3_600_000)).field, "ts");
        assert!(with("ts", json!("1999-12-31T23:59:59Z")).reason.contains("2000"));
        assert_eq!(with("ts", json!("yesterday")).field, "ts");
        assert_eq!(with("id", json!("has space")).field, "id");
        assert_eq!(with("colour", json!("red")).field, "colour");
        let mut o = base.clone();
        o.as_object_mut().unwrap().remove("product");
        assert_eq!(rej(o).field, "product");
        let mut o = base.clone();
        o.as_object_mut().unwrap().remove("device");
        assert_eq!(rej(o).field, "device");
        assert_eq!(rej(json!([1])).reason, "an event object, not an array");
        let p = json!({"id":"p","type":"purchase","ts":NOW,"customer":"C","product":"P","amount":"0"});
        assert_eq!(rej(p).field, "amount");
        let s = json!({"id":"s","type":"search","ts":NOW,"device":"d"});
        assert_eq!(rej(s).field, "query");
        let i = json!({"id":"i","type":"identify","ts":NOW,"device":"d"});
        assert_eq!(rej(i).field, "customer");
    }
    /// Reads a batch both ways: straight from the text (the collector) and through a
    /// `serde_json::Value` (the reference), and validates each element.
    type Judged = Vec<Result<Event, Rejection>>;

    fn both(text: &str) -> (Judged, Judged) {
        let direct: Vec<SentEvent> = serde_json::from_str(text).unwrap();
        let values: Vec<Value> = serde_json::from_str(text).unwrap();
        (
            direct.iter().map(|e| validate_sent(e, lim())).collect(),
            values.iter().map(|v| validate(v, lim())).collect(),
        )
    }

    #[test]
    fn reading_from_the_body_agrees_with_reading_a_json_value() {
        let text = format!(
            r#"[{{"id":"a","type":"product_view","ts":{NOW},"device":"d","product":"P","dwell_ms":5,"depth":7}},
               {{"id":"b\u0031","type":"search","ts":{NOW},"customer":"\u738b C","query":"  \"基金\"  "}},
               {{"zeta":1,"id":"c","alpha":[1,{{"x":2}}],"type":"app_open","ts":{NOW},"device":"d"}},
               {{"id":"d","type":"app_open","ts":{NOW},"device":"d","depth":1.5}},
               {{"id":"e","type":"app_open","ts":{NOW},"device":"d","dwell_ms":true}},
               {{"id":"f","type":"purchase","ts":{NOW},"customer":"C","product":"P","amount":12.5}},
               {{"id":"g","type":"purchase","ts":{NOW},"customer":"C","product":"P","amount":{{"y":1}}}},
               {{"id":"h","type":"app_open","ts":{NOW},"device":null,"customer":"C","page":null}},
               {{"id":"i","type":"app_open","ts":1.5e12,"device":"d"}},
               {{"id":"j","type":"app_open","ts":"2026-11-28T10:00:00+08:00","device":"d","ts":{NOW}}},
               {{"id":"k","type":"app_open","ts":18446744073709551615,"device":"d"}},
               {{"id":"l","type":"app_open","ts":{NOW},"device":"d","quantity":-3}},
               [1,2], "text", 7, null, true, {{}}]"#
        );
        let (direct, reference) = both(&text);
        assert_eq!(direct, reference);
        // The cases do what they say (so the agreement is not between two failures).
        assert!(direct[0].is_ok() && direct[1].is_ok() && direct[7].is_ok() && direct[9].is_ok());
        assert_eq!(direct[1].as_ref().unwrap().query.as_deref(), Some("\"基金\""));
        assert_eq!(direct[1].as_ref().unwrap().customer.as_deref(), Some("王 C"));
        assert_eq!(direct[2].as_ref().unwrap_err().field, "alpha");
        assert_eq!(direct[3].as_ref().unwrap_err().reason, "a whole number from 0 to 100, not 1.5");
        assert_eq!(direct[4].as_ref().unwrap_err().reason, "a whole number from 0 to 86400000, not a boolean");
        assert_eq!(direct[5].as_ref().unwrap().amount, Some(Fen(1250)));
        assert_eq!(direct[6].as_ref().unwrap_err().reason, "yuan as a string or number, not an object");
        assert_eq!(direct[8].as_ref().unwrap_err().field, "ts");
        assert_eq!(direct[9].as_ref().unwrap().ts_ms, NOW, "the last of a repeated field counts");
        assert_eq!(direct[10].as_ref().unwrap_err().field, "ts");
        assert_eq!(direct[12].as_ref().unwrap_err().reason, "an event object, not an array");
        assert_eq!(direct[15].as_ref().unwrap_err().reason, "an event object, not null");
        assert_eq!(direct[17].as_ref().unwrap_err().field, "id");
    }

    proptest::proptest! {
        /// Any object over the known fields and a few others, with values of every JSON
        /// kind, is judged the same both ways.
        #[test]
        fn any_object_is_judged_the_same_both_ways(
            fields in proptest::collection::vec((0usize..17, 0usize..9), 0..12)
        ) {
            let names = ["id", "type", "ts", "device", "customer", "product", "dwell_ms", "depth",
                "page", "query", "element", "quantity", "amount", "message", "extra", "Zed", "é"];
            let values = [
                "\"e1\"".to_string(), "\"product_view\"".into(), NOW.to_string(), "\"  \"".into(),
                "null".into(), "12".into(), "-1".into(), "[true]".into(), "\"10.50\"".into(),
            ];
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{}\":{}", names[*k], values[*v])).collect();
            let text = format!("[{{{}}}]", body.join(","));
            let (direct, reference) = both(&text);
            proptest::prop_assert_eq!(direct, reference, "{}", text);
        }
    }
}
