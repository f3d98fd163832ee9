//! Streaming import: a reader thread decodes and validates rows in batches; the async side
//! upserts them in one store transaction. By default a file with any error changes nothing
//! and every error is reported (up to `max_errors`); with `skip_invalid` the good rows are
//! committed and the rejected ones are written to a rejects file with the reason.

use crate::read::{map_header, sniff, Counting, Format, Sniff};
use chrono::Utc;
use encoding_rs::{Encoding, UTF_8};
use encoding_rs_io::DecodeReaderBytesBuilder;
use kehu_domain::ingest::{EntityKind, ParseContext, Record};
use kehu_domain::state::*;
use kehu_store::load::LoadCounts;
use kehu_store::{LoadRecord, Store, StoreError};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Called with (bytes read, rows read) as the import goes.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

#[derive(Clone)]
pub struct ImportOptions {
    pub kind: EntityKind,
    /// From the file extension when not given.
    pub format: Option<Format>,
    /// Detected when not given.
    pub encoding: Option<&'static Encoding>,
    pub skip_invalid: bool,
    /// Where rejected rows go with `skip_invalid`; default `FILE.rejects.csv`.
    pub rejects_path: Option<PathBuf>,
    /// How many errors are listed (and, without `skip_invalid`, after how many to stop).
    pub max_errors: usize,
    pub batch_rows: usize,
    pub ctx: ParseContext,
    pub progress: Option<Progress>,
}

impl ImportOptions {
    pub fn new(kind: EntityKind, ctx: ParseContext) -> Self {
        ImportOptions {
            kind,
            format: None,
            encoding: None,
            skip_invalid: false,
            rejects_path: None,
            max_errors: 100,
            batch_rows: 2_000,
            ctx,
            progress: None,
        }
    }
}

/// One rejected row: where, which field, what value, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(c) = &self.column {
            write!(f, "column {c}")?;
            if let Some(v) = &self.value {
                write!(f, ", value {v:?}")?;
            }
            write!(f, ": expected {}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

/// A problem with the file as a whole; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: the file is empty: expected a header line and rows")]
    Empty { file: String },
    #[error("{file}: not a text file (it contains NUL bytes): expected CSV or JSON Lines")]
    Binary { file: String },
    #[error("{file}: the text is neither UTF-8 nor GBK/GB18030; convert it or pass --encoding")]
    Encoding { file: String },
    #[error("{file}: cannot tell the format from the name; use a .csv or .jsonl name or pass --format csv|jsonl")]
    UnknownFormat { file: String },
    #[error("{file}:{line}: {message}")]
    Header {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{file}: {source}")]
    Store { file: String, source: StoreError },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    pub file: String,
    pub kind: EntityKind,
    pub encoding: &'static str,
    pub rows_read: u64,
    /// Rows inserted or updated (0 when rolled back).
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    /// The first `max_errors` errors.
    pub errors: Vec<RowError>,
    /// Reading stopped early because `max_errors` was reached.
    pub stopped_early: bool,
    pub committed: bool,
    pub rejects_file: Option<String>,
}

pub async fn import_file(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    match opts.kind {
        EntityKind::Customers => run::<Customer>(store, path, opts).await,
        EntityKind::Staff => run::<Staff>(store, path, opts).await,
        EntityKind::Products => run::<Product>(store, path, opts).await,
        EntityKind::Holdings => run::<Holding>(store, path, opts).await,
        EntityKind::Transactions => run::<Transaction>(store, path, opts).await,
    }
}

/// What the reader thread sends.
enum Msg<R> {
    Chunk(Chunk<R>),
    Fatal(ImportError),
}

struct Chunk<R> {
    rows: Vec<R>,
    lines: Vec<u64>,
    /// The raw text of each row (for the rejects file), only with `skip_invalid`.
    raws: Vec<String>,
    errors: Vec<(RowError, String)>,
    bytes: u64,
    read: u64,
}

impl<R> Chunk<R> {
    fn new(cap: usize) -> Self {
        Chunk {
            rows: Vec::with_capacity(cap),
            lines: Vec::with_capacity(cap),
            raws: Vec::new(),
            errors: Vec::new(),
            bytes: 0,
            read: 0,
        }
    }
}

async fn run<R: LoadRecord>(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let file_name = path.display().to_string();
    let io_err = |source| ImportError::Io {
        file: file_name.clone(),
        source,
    };
    let format = match opts.format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None => return Err(ImportError::UnknownFormat { file: file_name }),
    };
    let mut f = File::open(path).map_err(io_err)?;
    let mut sample = vec![0u8; 64 * 1024];
    let n = read_full(&mut f, &mut sample).map_err(io_err)?;
    sample.truncate(n);
    let at_eof = n < 64 * 1024;
    let detected = match sniff(&sample, at_eof) {
        Sniff::Empty => return Err(ImportError::Empty { file: file_name }),
        Sniff::Binary => return Err(ImportError::Binary { file: file_name }),
        Sniff::Unknown => None,
        Sniff::Text(e) => Some(e),
    };
    let encoding = match opts.encoding.or(detected) {
        Some(e) => e,
        None => return Err(ImportError::Encoding { file: file_name }),
    };
    drop(f);

    let file = File::open(path).map_err(io_err)?;
    let counting = Counting::new(file);
    let counter = counting.count.clone();
    let decoded = DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .utf8_passthru(encoding == UTF_8)
        .bom_override(true)
        .build(counting);

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg<R>>(4);
    let stop = Arc::new(AtomicBool::new(false));
    let reader_stop = stop.clone();
    let ctx = opts.ctx;
    let keep_raw = opts.skip_invalid;
    let batch = opts.batch_rows.max(1);
    let fname = file_name.clone();
    let reader = std::thread::spawn(move || {
        let send = |m: Msg<R>| tx.blocking_send(m).is_ok();
        let sink = Sink {
            file: &fname,
            ctx,
            keep_raw,
            batch,
            counter: &counter,
            stop: &reader_stop,
            send: &send,
            chunk: Chunk::new(batch),
            last_bytes: 0,
        };
        let result = match format {
            Format::Csv => read_csv::<R, _>(decoded, sink),
            Format::JsonLines => read_jsonl::<R, _>(decoded, sink),
        };
        if let Err(e) = result {
            send(Msg::Fatal(e));
        }
    });

    let store_err = |source| ImportError::Store {
        file: file_name.clone(),
        source,
    };
    let mut load = store
        .begin_load(opts.kind, &file_name, Utc::now())
        .await
        .map_err(store_err)?;
    let mut report = ImportReport {
        file: file_name.clone(),
        kind: opts.kind,
        encoding: encoding.name(),
        rows_read: 0,
        rows_loaded: 0,
        rows_rejected: 0,
        errors: Vec::new(),
        stopped_early: false,
        committed: false,
        rejects_file: None,
    };
    let mut rejects: Option<csv::Writer<File>> = None;
    let mut fatal = None;
    let mut failure: Option<StoreError> = None;

    while let Some(msg) = rx.recv().await {
        let chunk = match msg {
            Msg::Fatal(e) => {
                fatal = Some(e);
                break;
            }
            Msg::Chunk(c) => c,
        };
        report.rows_read += chunk.read;
        let mut rejected: Vec<(RowError, String)> = chunk.errors;
        if !chunk.rows.is_empty() {
            match load.write(&chunk.rows).await {
                Ok(skips) => {
                    report.rows_loaded += (chunk.rows.len() - skips.len()) as u64;
                    for s in skips {
                        let r = &chunk.rows[s.index];
                        let value = match &s.reason {
                            kehu_store::SkipReason::DuplicateInFile => r.external_id().to_string(),
                            kehu_store::SkipReason::UnknownCustomer(c) => c.clone(),
                            kehu_store::SkipReason::UnknownProduct(p) => p.clone(),
                        };
                        let err = RowError {
                            file: file_name.clone(),
                            line: chunk.lines[s.index],
                            column: Some(s.reason.column().to_string()),
                            value: Some(value),
                            message: s.reason.message(),
                        };
                        let raw = chunk.raws.get(s.index).cloned().unwrap_or_default();
                        rejected.push((err, raw));
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        rejected.sort_by_key(|(e, _)| e.line);
        report.rows_rejected += rejected.len() as u64;
        if opts.skip_invalid && !rejected.is_empty() {
            let w = match &mut rejects {
                Some(w) => w,
                None => {
                    let p = opts
                        .rejects_path
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(format!("{file_name}.rejects.csv")));
                    let mut w = csv::Writer::from_path(&p).map_err(|e| ImportError::Io {
                        file: p.display().to_string(),
                        source: std::io::Error::other(e),
                    })?;
                    let _ = w.write_record(["line", "column", "value", "error", "record"]);
                    report.rejects_file = Some(p.display().to_string());
                    rejects.insert(w)
                }
            };
            for (e, raw) in &rejected {
                let line = e.line.to_string();
                let col = e.column.clone().unwrap_or_default();
                let val = e.value.clone().unwrap_or_default();
                w.write_record([line.as_str(), &col, &val, &e.message, raw])
                    .map_err(|err| ImportError::Io {
                        file: report.rejects_file.clone().unwrap_or_default(),
                        source: std::io::Error::other(err),
                    })?;
            }
        }
        for (e, _) in rejected {
            if report.errors.len() < opts.max_errors {
                report.errors.push(e);
            }
        }
        if !opts.skip_invalid && report.rows_rejected as usize >= opts.max_errors {
            report.stopped_early = true;
            stop.store(true, Ordering::Relaxed);
            break;
        }
        if let Some(p) = &opts.progress {
            p(chunk.bytes, report.rows_read);
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    let _ = reader.join();
    if let Some(w) = &mut rejects {
        let _ = w.flush();
    }

    let commit =
        fatal.is_none() && failure.is_none() && (report.rows_rejected == 0 || opts.skip_invalid);
    let counts = LoadCounts {
        read: report.rows_read,
        loaded: report.rows_loaded,
        rejected: report.rows_rejected,
    };
    load.finish(commit, counts).await.map_err(store_err)?;
    if let Some(e) = fatal {
        return Err(e);
    }
    if let Some(e) = failure {
        return Err(store_err(e));
    }
    report.committed = commit;
    if !commit {
        report.rows_loaded = 0;
    }
    Ok(report)
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// What both readers share: the file, the parse context, and where full chunks go.
struct Sink<'a, R> {
    file: &'a str,
    ctx: ParseContext,
    keep_raw: bool,
    batch: usize,
    counter: &'a std::sync::atomic::AtomicU64,
    stop: &'a AtomicBool,
    send: &'a dyn Fn(Msg<R>) -> bool,
    chunk: Chunk<R>,
    last_bytes: u64,
}

impl<R> Sink<'_, R> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn take(&mut self) -> Chunk<R> {
        let bytes = self.counter.load(Ordering::Relaxed);
        let mut c = std::mem::replace(&mut self.chunk, Chunk::new(self.batch));
        c.bytes = bytes - self.last_bytes;
        self.last_bytes = bytes;
        c
    }

    /// Sends the chunk once it is full; false when nobody listens any more.
    fn flush_if_full(&mut self) -> bool {
        if self.chunk.rows.len() + self.chunk.errors.len() < self.batch {
            return true;
        }
        let c = self.take();
        (self.send)(Msg::Chunk(c))
    }

    fn finish(mut self) {
        let c = self.take();
        (self.send)(Msg::Chunk(c));
    }
}

fn read_csv<R: Record, S: Read>(src: S, mut sink: Sink<'_, R>) -> Result<(), ImportError> {
    let (file, ctx, keep_raw) = (sink.file, sink.ctx, sink.keep_raw);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(src);
    let mut rec = csv::StringRecord::new();
    let header_err = |line: u64, message: String| ImportError::Header {
        file: file.to_string(),
        line,
        message,
    };
    // Header
    match rdr.read_record(&mut rec) {
        Ok(true) => {}
        Ok(false) => {
            return Err(ImportError::Empty {
                file: file.to_string(),
            })
        }
        Err(e) => return Err(header_err(1, csv_message(&e))),
    }
    let header: Vec<&str> = rec.iter().collect();
    let map = map_header(&header, R::COLUMNS).map_err(|m| header_err(1, m))?;
    let width = header.len();
    loop {
        if sink.stopped() {
            return Ok(());
        }
        let chunk = &mut sink.chunk;
        let res = rdr.read_record(&mut rec);
        let line = rec.position().map_or(0, |p| p.line());
        match res {
            Ok(false) => break,
            Ok(true) => {
                chunk.read += 1;
                let raw = if keep_raw {
                    raw_csv(&rec)
                } else {
                    String::new()
                };
                if rec.len() != width {
                    let e = RowError {
                        file: file.to_string(),
                        line,
                        column: None,
                        value: None,
                        message: format!(
                            "expected {width} fields as in the header, found {} (check quotes and commas)",
                            rec.len()
                        ),
                    };
                    chunk.errors.push((e, raw));
                } else {
                    let values: Vec<Option<&str>> =
                        map.iter().map(|m| m.and_then(|i| rec.get(i))).collect();
                    push_parsed(chunk, R::parse(&values, ctx), line, raw, file, keep_raw);
                }
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(ImportError::Io {
                        file: file.to_string(),
                        source: std::io::Error::other(e.to_string()),
                    });
                }
                chunk.read += 1;
                let msg = if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    "text that is not valid UTF-8: is the file in GBK? pass --encoding gbk"
                        .to_string()
                } else {
                    csv_message(&e)
                };
                let err = RowError {
                    file: file.to_string(),
                    line,
                    column: None,
                    value: None,
                    message: msg,
                };
                chunk.errors.push((err, String::new()));
            }
        }
        if !sink.flush_if_full() {
            return Ok(());
        }
    }
    sink.finish();
    Ok(())
}

fn push_parsed<R>(
    chunk: &mut Chunk<R>,
    parsed: Result<R, Vec<kehu_domain::ingest::FieldError>>,
    line: u64,
    raw: String,
    file: &str,
    keep_raw: bool,
) {
    match parsed {
        Ok(r) => {
            chunk.rows.push(r);
            chunk.lines.push(line);
            if keep_raw {
                chunk.raws.push(raw);
            }
        }
        Err(errs) => {
            for fe in errs {
                let e = RowError {
                    file: file.to_string(),
                    line,
                    column: Some(fe.column),
                    value: Some(fe.value),
                    message: fe.expected,
                };
                chunk.errors.push((e, raw.clone()));
            }
        }
    }
}

fn raw_csv(rec: &csv::StringRecord) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b' '))
        .from_writer(Vec::new());
    let _ = w.write_record(rec);
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            "text that is not valid UTF-8: is the file in GBK? pass --encoding gbk".into()
        }
        _ => format!("malformed CSV: {e}"),
    }
}

fn read_jsonl<R: Record, S: Read>(src: S, mut sink: Sink<'_, R>) -> Result<(), ImportError> {
    let (file, ctx, keep_raw) = (sink.file, sink.ctx, sink.keep_raw);
    let mut rdr = BufReader::with_capacity(256 * 1024, src);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut any = false;
    loop {
        if sink.stopped() {
            return Ok(());
        }
        let chunk = &mut sink.chunk;
        buf.clear();
        let n = rdr
            .read_until(b'\n', &mut buf)
            .map_err(|e| ImportError::Io {
                file: file.to_string(),
                source: e,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let err = |message: String| RowError {
            file: file.to_string(),
            line: line_no,
            column: None,
            value: None,
            message,
        };
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(_) => {
                chunk.read += 1;
                chunk.errors.push((
                    err(
                        "text that is not valid UTF-8: is the file in GBK? pass --encoding gbk"
                            .into(),
                    ),
                    String::new(),
                ));
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        any = true;
        chunk.read += 1;
        let raw = if keep_raw {
            text.to_string()
        } else {
            String::new()
        };
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
            Err(e) => chunk
                .errors
                .push((err(format!("a JSON object on one line: {e}")), raw)),
            Ok(obj) => match json_values(&obj, R::COLUMNS) {
                Err(m) => chunk.errors.push((err(m), raw)),
                Ok(vals) => {
                    let values: Vec<Option<&str>> = vals.iter().map(|v| v.as_deref()).collect();
                    push_parsed(chunk, R::parse(&values, ctx), line_no, raw, file, keep_raw);
                }
            },
        }
        if !sink.flush_if_full() {
            return Ok(());
        }
    }
    if !any && sink.chunk.errors.is_empty() {
        return Err(ImportError::Empty {
            file: file.to_string(),
        });
    }
    sink.finish();
    Ok(())
}

/// The values of a JSON object in the format's column order. Unknown keys are refused.
fn json_values(
    obj: &serde_json::Map<String, serde_json::Value>,
    columns: &[kehu_domain::ingest::Column],
) -> Result<Vec<Option<String>>, String> {
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    let map = map_header(&keys, columns)?;
    let mut out = Vec::with_capacity(columns.len());
    for (ci, m) in map.iter().enumerate() {
        let v = match m.map(|i| &obj[keys[i]]) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
            Some(other) => {
                return Err(format!(
                    "field {:?}: expected a string, number or boolean, found {other}",
                    columns[ci].name
                ));
            }
        };
        out.push(v);
    }
    Ok(out)
}
