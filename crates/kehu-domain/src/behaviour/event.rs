//! Behaviour events as apps send them, and their validation. The schema is documented in
//! `docs/behaviour.md`; every rejection names the field and says what was expected.

use crate::code_enum;
use crate::money::Fen;
use serde_json::{Map, Value};

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

fn text(obj: &Map<String, Value>, field: &str, max: usize) -> Result<Option<String>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                Ok(None)
            } else if t.chars().count() > max {
                Err(Rejection::new(field, format!("at most {max} characters")))
            } else {
                Ok(Some(t.to_string()))
            }
        }
        Some(v) => Err(Rejection::new(field, format!("a string, not {}", kind_of(v)))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn int(obj: &Map<String, Value>, field: &str, min: i64, max: i64) -> Result<Option<i64>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
            _ => Err(Rejection::new(
                field,
                format!("a whole number from {min} to {max}, not {n}"),
            )),
        },
        Some(v) => Err(Rejection::new(
            field,
            format!("a whole number from {min} to {max}, not {}", kind_of(v)),
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

/// Validates one event object.
pub fn validate(v: &Value, limits: EventLimits) -> Result<Event, Rejection> {
    let obj = v
        .as_object()
        .ok_or_else(|| Rejection::new("", format!("an event object, not {}", kind_of(v))))?;
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(Rejection::new(
            k,
            format!("unknown field; known fields: {}", KNOWN.join(", ")),
        ));
    }
    let id = match obj.get("id") {
        Some(Value::String(s)) if valid_event_id(s) => s.clone(),
        Some(Value::String(_)) => {
            return Err(Rejection::new(
                "id",
                "1 to 64 characters of A-Z a-z 0-9 _ - . :",
            ))
        }
        _ => return Err(Rejection::new("id", "required: a string made by the client")),
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) => EventKind::parse(s).ok_or_else(|| {
            Rejection::new(
                "type",
                format!("unknown event type {s:?}; expected {}", EventKind::expected()),
            )
        })?,
        _ => return Err(Rejection::new("type", format!("required: {}", EventKind::expected()))),
    };
    let ts_ms = match obj.get("ts") {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| Rejection::new("ts", "epoch milliseconds as a whole number"))?,
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s.trim())
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
    let device = text(obj, "device", 64)?;
    let customer = text(obj, "customer", 64)?;
    if device.is_none() && customer.is_none() {
        return Err(Rejection::new("device", "a device or a customer is required"));
    }
    if kind == EventKind::Identify {
        required(customer.as_ref(), "customer", kind)?;
        required(device.as_ref(), "device", kind)?;
    }
    let product = text(obj, "product", 64)?;
    if kind.needs_product() {
        required(product.as_ref(), "product", kind)?;
    }
    let dwell_ms = int(obj, "dwell_ms", 0, 86_400_000)?.map(|v| v as u32);
    let depth = int(obj, "depth", 0, 100)?.map(|v| v as u8);
    let query = text(obj, "query", 200)?;
    let element = text(obj, "element", 100)?;
    let message = text(obj, "message", 64)?;
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
    let quantity = int(obj, "quantity", 1, 1_000_000_000)?.map(|v| v as u32);
    let amount = match obj.get("amount") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            Fen::parse_yuan(s).map_err(|e| Rejection::new("amount", format!("{e}: {s:?}")))?,
        ),
        Some(Value::Number(n)) => Some(
            Fen::parse_yuan(&n.to_string())
                .map_err(|e| Rejection::new("amount", format!("{e}: {n}")))?,
        ),
        Some(v) => {
            return Err(Rejection::new(
                "amount",
                format!("yuan as a string or number, not {}", kind_of(v)),
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
        page: text(obj, "page", 500)?,
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
}
