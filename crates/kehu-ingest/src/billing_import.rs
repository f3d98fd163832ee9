//! Import of meter reads and payments (CSV or JSON Lines, UTF-8 or GBK/GB18030).
//!
//! Two passes: the whole file is first read and checked — every field, the meter or
//! account it names, the order of reads per meter (in the file and against what is
//! stored), positive amounts — and only a file without errors is written (or, with
//! `skip_invalid`, its valid rows). Each read goes through the review checks (VEE) as it
//! is stored; re-importing a file is harmless (reads and payments keep their ids).

use crate::import::{ImportError, RowError};
use crate::read::{map_header, sniff, Format, Sniff};
use chrono::{DateTime, NaiveDate, Utc};
use kehu_domain::billing::BillingRules;
use kehu_domain::ingest::{Column, Fields, ParseContext};
use kehu_store::billing::{BillingError, NewPayment, NewRead, ReadStatus};
use kehu_store::Store;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingKind {
    Reads,
    Payments,
}

impl BillingKind {
    pub fn parse(s: &str) -> Option<BillingKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reads" | "meter_reads" => Some(BillingKind::Reads),
            "payments" => Some(BillingKind::Payments),
            _ => None,
        }
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            BillingKind::Reads => READ_COLUMNS,
            BillingKind::Payments => PAYMENT_COLUMNS,
        }
    }
}

/// Payments recorded per transaction by an import (each still answered on its own).
pub(crate) const PAYMENT_BATCH: usize = 1_000;

const fn col(
    name: &'static str,
    aliases: &'static [&'static str],
    required: bool,
    doc: &'static str,
) -> Column {
    Column {
        name,
        aliases,
        required,
        doc,
    }
}

pub const READ_COLUMNS: &[Column] = &[
    col(
        "meter",
        &["meter_id", "表号", "电能表号"],
        true,
        "the meter number",
    ),
    col(
        "read_on",
        &["date", "抄表日期"],
        true,
        "the read date, like 2026-10-31",
    ),
    col(
        "value",
        &["reading", "示数", "本次示数"],
        true,
        "the register value in whole kWh, like 12345",
    ),
    col(
        "external_id",
        &["read_id", "抄表流水号"],
        false,
        "the read's id (default METER@DATE)",
    ),
    col(
        "peak",
        &["peak_value", "峰", "峰段示数", "峰示数"],
        false,
        "the peak (峰) register in whole kWh, like 4321; peak, flat and valley come together or not at all",
    ),
    col(
        "flat",
        &["flat_value", "平", "平段示数", "平示数"],
        false,
        "the flat (平) register in whole kWh, like 5678; peak, flat and valley come together or not at all",
    ),
    col(
        "valley",
        &["valley_value", "谷", "谷段示数", "谷示数"],
        false,
        "the valley (谷) register in whole kWh, like 2345; peak, flat and valley come together or not at all",
    ),
];

pub const PAYMENT_COLUMNS: &[Column] = &[
    col(
        "external_id",
        &["payment_id", "缴费流水号"],
        true,
        "the payment's id",
    ),
    col(
        "account",
        &["account_id", "户号"],
        true,
        "the supply account number",
    ),
    col(
        "amount",
        &["金额", "缴费金额"],
        true,
        "the amount in yuan, more than zero, like 356.80",
    ),
    col(
        "paid_on",
        &["date", "缴费日期"],
        true,
        "the payment date, like 2026-11-03",
    ),
    col(
        "channel",
        &["渠道"],
        false,
        "counter, bank, app, … (default import)",
    ),
];

#[derive(Debug, Clone)]
pub struct BillingImportOptions {
    pub kind: BillingKind,
    pub ctx: ParseContext,
    pub format: Option<Format>,
    pub skip_invalid: bool,
    pub max_errors: usize,
    pub rules: BillingRules,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BillingImportReport {
    pub file: String,
    pub kind: BillingKind,
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    /// Reads stored into the review queue.
    pub to_review: u64,
    pub errors: Vec<RowError>,
    pub committed: bool,
}

enum Row {
    Read(NewRead),
    Payment(NewPayment),
}

/// Rows of the file as (line, values in the kind's column order).
fn rows_of(
    text: &str,
    format: Format,
    columns: &[Column],
    file: &str,
) -> Result<Vec<(u64, Vec<Option<String>>)>, ImportError> {
    let header_err = |line: u64, message: String| ImportError::Header {
        file: file.to_string(),
        line,
        message,
    };
    let mut out = Vec::new();
    match format {
        Format::Csv => {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            let mut map: Option<Vec<Option<usize>>> = None;
            for rec in rdr.records() {
                let rec = rec.map_err(|e| {
                    header_err(
                        e.position().map_or(0, |p| p.line()),
                        format!("not valid CSV: {e}"),
                    )
                })?;
                let line = rec.position().map_or(0, |p| p.line());
                match &map {
                    None => {
                        let cells: Vec<&str> = rec.iter().collect();
                        map = Some(map_header(&cells, columns).map_err(|m| header_err(line, m))?);
                    }
                    Some(m) => {
                        if rec.iter().all(|c| c.trim().is_empty()) {
                            continue;
                        }
                        out.push((
                            line,
                            m.iter()
                                .map(|i| i.and_then(|i| rec.get(i)).map(str::to_string))
                                .collect(),
                        ));
                    }
                }
            }
        }
        Format::JsonLines => {
            for (i, l) in text.lines().enumerate() {
                let line = i as u64 + 1;
                if l.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(l)
                    .map_err(|e| header_err(line, format!("not a JSON object: {e}")))?;
                let Some(obj) = v.as_object() else {
                    return Err(header_err(line, "not a JSON object".into()));
                };
                let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
                let map = map_header(&keys, columns).map_err(|m| header_err(line, m))?;
                let vals: Vec<Option<String>> = map
                    .iter()
                    .map(|i| {
                        i.and_then(|i| match &obj[keys[i]] {
                            serde_json::Value::Null => None,
                            serde_json::Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        })
                    })
                    .collect();
                out.push((line, vals));
            }
        }
    }
    Ok(out)
}

/// Imports reads or payments from `path`.
pub async fn import_billing_file(
    store: &Store,
    path: &Path,
    opts: &BillingImportOptions,
    now: DateTime<Utc>,
) -> Result<BillingImportReport, ImportError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        file: file.clone(),
        source,
    })?;
    let encoding = match sniff(&bytes, true) {
        Sniff::Empty => return Err(ImportError::Empty { file }),
        Sniff::Binary => return Err(ImportError::Binary { file }),
        Sniff::Unknown => return Err(ImportError::Encoding { file }),
        Sniff::Text(e) => e,
    };
    let (text, _, _) = encoding.decode(&bytes);
    let format = match opts.format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None => return Err(ImportError::UnknownFormat { file }),
    };
    let columns = opts.kind.columns();
    let raw_rows = rows_of(&text, format, columns, &file)?;
    let mut report = BillingImportReport {
        file: file.clone(),
        kind: opts.kind,
        rows_read: raw_rows.len() as u64,
        rows_loaded: 0,
        rows_rejected: 0,
        to_review: 0,
        errors: Vec::new(),
        committed: false,
    };
    let push_err = |report: &mut BillingImportReport, e: RowError| {
        if report.errors.len() < opts.max_errors {
            report.errors.push(e);
        }
    };
    let row_err = |line: u64, column: &str, value: &str, message: String| RowError {
        file: file.clone(),
        line,
        column: Some(column.to_string()),
        value: Some(value.to_string()),
        message,
    };
    // Pass 1: parse and check everything.
    let mut valid: Vec<(u64, Row)> = Vec::new();
    let mut meters: HashMap<String, Option<Option<NaiveDate>>> = HashMap::new();
    let mut last_in_file: HashMap<String, NaiveDate> = HashMap::new();
    let mut accounts: HashMap<String, bool> = HashMap::new();
    let store_err = |e: BillingError| ImportError::Store {
        file: file.clone(),
        source: match e {
            BillingError::Store(s) => s,
            other => kehu_store::StoreError::Corrupt {
                table: "billing",
                column: "",
                value: other.to_string(),
            },
        },
    };
    for (line, vals) in &raw_rows {
        let refs: Vec<Option<&str>> = vals.iter().map(|v| v.as_deref()).collect();
        let mut f = Fields::new(columns, &refs, opts.ctx);
        let row = match opts.kind {
            BillingKind::Reads => {
                let meter = f.id(0);
                let read_on = f.date(1);
                let value = f.opt_int(2, 0, i64::MAX).map(|v| v as u64);
                if value.is_none() && refs[2].map_or(true, |v| v.trim().is_empty()) {
                    f.fail(2, "", "a value (required): the register value in whole kWh");
                }
                let external_id = f.opt_id(3);
                // Band registers: whole kWh, all three or none.
                let given: Vec<bool> = (4..=6)
                    .map(|i| refs[i].is_some_and(|v| !v.trim().is_empty()))
                    .collect();
                let [peak, flat, valley] =
                    [4, 5, 6].map(|i| f.opt_int(i, 0, i64::MAX).map(|v| v as u64));
                if given.iter().any(|g| *g) {
                    for (k, g) in given.iter().enumerate() {
                        if !g {
                            f.fail(
                                4 + k,
                                "",
                                "a value: peak, flat and valley registers come together (give all three, or none)",
                            );
                        }
                    }
                }
                Row::Read(NewRead {
                    external_id,
                    meter,
                    read_on,
                    value: value.unwrap_or(0),
                    peak,
                    flat,
                    valley,
                })
            }
            BillingKind::Payments => {
                let external_id = f.id(0);
                let account = f.id(1);
                let amount = f.money_non_negative(2, true);
                let paid_on = f.date(3);
                let channel = f.opt_text(4, 32).unwrap_or_else(|| "import".into());
                Row::Payment(NewPayment {
                    external_id,
                    account,
                    amount,
                    paid_on,
                    channel,
                })
            }
        };
        if !f.errors.is_empty() {
            report.rows_rejected += 1;
            for e in f.errors {
                push_err(&mut report, row_err(*line, &e.column, &e.value, e.expected));
            }
            continue;
        }
        // References and order.
        let problem = match &row {
            Row::Read(r) => {
                if !meters.contains_key(&r.meter) {
                    let latest = store.meter_latest_read(&r.meter).await.map_err(store_err)?;
                    meters.insert(r.meter.clone(), latest);
                }
                match &meters[&r.meter] {
                    None => Some(row_err(
                        *line,
                        "meter",
                        &r.meter,
                        "a known meter (import the meter first)".into(),
                    )),
                    Some(latest) => {
                        let last = last_in_file.get(&r.meter).copied().max(*latest);
                        match last {
                            Some(l) if r.read_on < l => Some(row_err(
                                *line,
                                "read_on",
                                &r.read_on.to_string(),
                                format!("a date not before meter {}'s previous read of {l}: reads arrive in date order", r.meter),
                            )),
                            _ => {
                                last_in_file.insert(r.meter.clone(), r.read_on);
                                None
                            }
                        }
                    }
                }
            }
            Row::Payment(p) => {
                if !accounts.contains_key(&p.account) {
                    let known = match store.account_credit(&p.account).await {
                        Ok(_) => true,
                        Err(BillingError::UnknownAccount { .. }) => false,
                        Err(e) => return Err(store_err(e)),
                    };
                    accounts.insert(p.account.clone(), known);
                }
                if accounts[&p.account] {
                    None
                } else {
                    Some(row_err(
                        *line,
                        "account",
                        &p.account,
                        "a known supply account".into(),
                    ))
                }
            }
        };
        match problem {
            Some(e) => {
                report.rows_rejected += 1;
                push_err(&mut report, e);
            }
            None => valid.push((*line, row)),
        }
    }
    if report.rows_rejected > 0 && !opts.skip_invalid {
        return Ok(report);
    }
    // Pass 2: write. Reads go in one transaction: all of them or none. Payments go in file
    // order, `PAYMENT_BATCH` to a transaction; each is answered on its own.
    let mut reads = Vec::new();
    let mut payments = Vec::new();
    for (line, row) in valid {
        match row {
            Row::Read(r) => reads.push((line, r)),
            Row::Payment(p) => payments.push((line, p)),
        }
    }
    for batch in payments.chunks(PAYMENT_BATCH) {
        let pays: Vec<NewPayment> = batch.iter().map(|(_, p)| p.clone()).collect();
        let answers = match store.record_payments(&pays, &opts.rules, now).await {
            Ok(a) => a,
            Err(BillingError::Store(s)) => {
                return Err(ImportError::Store {
                    file: file.clone(),
                    source: s,
                })
            }
            // Only storage fails a whole batch; anything else is a payment's own answer.
            Err(e) => {
                return Err(ImportError::Store {
                    file: file.clone(),
                    source: kehu_store::StoreError::Conflict(e.to_string()),
                })
            }
        };
        for ((line, _), answer) in batch.iter().zip(answers) {
            match answer {
                Ok(_) => report.rows_loaded += 1,
                Err(e) => {
                    report.rows_rejected += 1;
                    push_err(
                        &mut report,
                        RowError {
                            file: file.clone(),
                            line: *line,
                            column: None,
                            value: None,
                            message: e.to_string(),
                        },
                    );
                }
            }
        }
    }
    if !reads.is_empty() {
        let rows: Vec<NewRead> = reads.iter().map(|(_, r)| r.clone()).collect();
        match store
            .add_reads(&rows, &opts.rules.vee, opts.ctx.today, now)
            .await
        {
            Ok(outcomes) => {
                report.rows_loaded += outcomes.len() as u64;
                report.to_review += outcomes
                    .iter()
                    .filter(|o| o.status == ReadStatus::Review)
                    .count() as u64;
            }
            Err(BillingError::Store(s)) => {
                return Err(ImportError::Store {
                    file: file.clone(),
                    source: s,
                })
            }
            Err(e) => {
                // Checked in pass 1, so only a conflicting re-send lands here; nothing was written.
                report.rows_rejected += reads.len() as u64;
                push_err(
                    &mut report,
                    RowError {
                        file: file.clone(),
                        line: 0,
                        column: None,
                        value: None,
                        message: format!("nothing written: {e}"),
                    },
                );
                return Ok(report);
            }
        }
    }
    report.committed = true;
    Ok(report)
}
