//! Columnar, labelled data sets and a fast CSV reader with precise errors.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Code of a missing value in a categorical column.
pub const MISSING_CODE: u32 = u32::MAX;

/// The values of one column. Missing numeric values are `NaN`; missing
/// categorical values have the code [`MISSING_CODE`].
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Numeric(Vec<f64>),
    Categorical {
        codes: Vec<u32>,
        levels: Vec<String>,
    },
}

/// A named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

impl Column {
    /// A numeric column (`NaN` = missing).
    pub fn numeric(name: impl Into<String>, values: Vec<f64>) -> Self {
        Column {
            name: name.into(),
            data: ColumnData::Numeric(values),
        }
    }

    /// A categorical column from optional strings (`None` = missing).
    pub fn categorical<S: AsRef<str>>(name: impl Into<String>, values: &[Option<S>]) -> Self {
        let mut dict: HashMap<String, u32> = HashMap::new();
        let mut levels = Vec::new();
        let codes = values
            .iter()
            .map(|v| match v {
                None => MISSING_CODE,
                Some(s) => {
                    let s = s.as_ref();
                    if let Some(&c) = dict.get(s) {
                        c
                    } else {
                        let c = levels.len() as u32;
                        levels.push(s.to_string());
                        dict.insert(s.to_string(), c);
                        c
                    }
                }
            })
            .collect();
        Column {
            name: name.into(),
            data: ColumnData::Categorical { codes, levels },
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical { codes, .. } => codes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self.data, ColumnData::Numeric(_))
    }

    /// Number of missing values.
    pub fn missing_count(&self) -> usize {
        match &self.data {
            ColumnData::Numeric(v) => v.iter().filter(|x| x.is_nan()).count(),
            ColumnData::Categorical { codes, .. } => {
                codes.iter().filter(|&&c| c == MISSING_CODE).count()
            }
        }
    }

    fn take(&self, rows: &[usize]) -> Column {
        let data = match &self.data {
            ColumnData::Numeric(v) => ColumnData::Numeric(rows.iter().map(|&r| v[r]).collect()),
            ColumnData::Categorical { codes, levels } => ColumnData::Categorical {
                codes: rows.iter().map(|&r| codes[r]).collect(),
                levels: levels.clone(),
            },
        };
        Column {
            name: self.name.clone(),
            data,
        }
    }
}

/// How a CSV file is read. Serde-loadable (e.g. a `[csv]` table of a TOML file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvOptions {
    /// Cell values read as missing (after trimming spaces). An empty cell is always missing.
    pub missing_values: Vec<String>,
    /// Columns that must be numeric: any text in them is an error.
    pub numeric: Vec<String>,
    /// Columns read as categorical even if their values look like numbers.
    pub categorical: Vec<String>,
    /// Columns not read at all (ids, dates, leakage).
    pub ignore: Vec<String>,
    /// Field delimiter.
    pub delimiter: char,
    /// A column read automatically whose non-missing values are numbers in at
    /// least this share is taken as numeric, and its text values are reported as
    /// errors (they are usually data errors). Below this share the column is categorical.
    pub numeric_share_for_text_error: f64,
    /// Reader threads for large files without quoted fields (0 = one per core). Default 1.
    pub threads: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            missing_values: ["NA", "N/A", "NaN", "nan", "null", "NULL", "None", "-", "?"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            numeric: Vec::new(),
            categorical: Vec::new(),
            ignore: Vec::new(),
            delimiter: ',',
            numeric_share_for_text_error: 0.9,
            threads: 1,
        }
    }
}

/// A labelled data set held by columns. `target[i]` is 1 for the event (e.g. "bad",
/// "bought") and 0 otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub target_name: String,
    pub event: String,
    pub non_event: String,
    pub target: Vec<u8>,
    pub columns: Vec<Column>,
    /// Where the data came from (file path or a description).
    pub source: String,
}

impl Dataset {
    /// Reads a CSV file (UTF-8, header line) with the default [`CsvOptions`].
    /// `target` names the label column and `event` the value counted as the event.
    pub fn from_csv(path: impl AsRef<Path>, target: &str, event: &str) -> Result<Dataset> {
        Self::from_csv_with(path, target, event, &CsvOptions::default())
    }

    /// Reads a CSV file with explicit options.
    pub fn from_csv_with(
        path: impl AsRef<Path>,
        target: &str,
        event: &str,
        opts: &CsvOptions,
    ) -> Result<Dataset> {
        let path = path.as_ref();
        let io = |e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        };
        #[cfg(unix)]
        {
            // A large file with several reader threads is streamed: each thread
            // reads and parses its own part, and the file is never held whole.
            use std::os::unix::fs::FileExt;
            let threads = if opts.threads == 0 {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            } else {
                opts.threads
            };
            let file = std::fs::File::open(path).map_err(io)?;
            let len = file.metadata().map_err(io)?.len() as usize;
            if threads > 1 && len > (8 << 20) {
                let mut head = vec![0u8; len.min(1 << 20)];
                file.read_exact_at(&mut head, 0).map_err(io)?;
                if head.contains(&b'\n') && !head.contains(&b'"') {
                    let fb = FileBody { file: &file, len };
                    if let Some(ds) = read_csv_impl(&head, Some(fb), path, target, event, opts)? {
                        return Ok(ds);
                    }
                }
            }
        }
        let bytes = read_file(path, opts.threads).map_err(io)?;
        read_csv_bytes(&bytes, path, target, event, opts)
    }

    /// Reads CSV text held in memory (same rules as [`Dataset::from_csv_with`]).
    pub fn from_csv_bytes(
        bytes: &[u8],
        name: &str,
        target: &str,
        event: &str,
        opts: &CsvOptions,
    ) -> Result<Dataset> {
        read_csv_bytes(bytes, Path::new(name), target, event, opts)
    }

    /// Builds a data set from columns and a 0/1 target.
    pub fn from_columns(
        target_name: &str,
        target: Vec<u8>,
        columns: Vec<Column>,
    ) -> Result<Dataset> {
        for c in &columns {
            if c.len() != target.len() {
                return Err(Error::Config(format!(
                    "column `{}` has {} rows, the target has {}",
                    c.name,
                    c.len(),
                    target.len()
                )));
            }
        }
        if target.iter().any(|&t| t > 1) {
            return Err(Error::Config("target values must be 0 or 1".into()));
        }
        Ok(Dataset {
            target_name: target_name.to_string(),
            event: "1".into(),
            non_event: "0".into(),
            target,
            columns,
            source: "in memory".into(),
        })
    }

    pub fn n_rows(&self) -> usize {
        self.target.len()
    }

    pub fn n_events(&self) -> usize {
        self.target.iter().map(|&t| t as usize).sum()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// A new data set with the given rows (in that order).
    pub fn take_rows(&self, rows: &[usize]) -> Dataset {
        Dataset {
            target_name: self.target_name.clone(),
            event: self.event.clone(),
            non_event: self.non_event.clone(),
            target: rows.iter().map(|&r| self.target[r]).collect(),
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
            source: format!("{} ({} rows)", self.source, rows.len()),
        }
    }
}

/// Reads a whole file; a large one is read in parallel pieces (positioned
/// reads into disjoint parts of one buffer) when more than one thread is asked for.
fn read_file(path: &Path, threads: usize) -> std::io::Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len() as usize;
        if threads > 1 && len > (8 << 20) {
            let mut buf = vec![0u8; len];
            let piece = len.div_ceil(threads);
            let res: Vec<std::io::Result<()>> = std::thread::scope(|sc| {
                let hs: Vec<_> = buf
                    .chunks_mut(piece)
                    .enumerate()
                    .map(|(i, part)| {
                        let file = &file;
                        sc.spawn(move || file.read_exact_at(part, (i * piece) as u64))
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().expect("file reader thread panicked"))
                    .collect()
            });
            for r in res {
                r?;
            }
            // the file grew while being read: read it again in one go
            if file.metadata()?.len() as usize == len {
                return Ok(buf);
            }
        }
    }
    let _ = threads;
    std::fs::read(path)
}

const POW10_U64: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The value of the leading ASCII digits of `b[p..p + 8]` (at most 8 of them) and
/// their count, in a few word operations. Needs `p + 8 <= b.len()`.
#[inline(always)]
fn digits8(b: &[u8], p: usize) -> (u64, usize) {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[p..p + 8]);
    let d = u64::from_le_bytes(w).wrapping_sub(0x3030_3030_3030_3030);
    // a byte is a digit iff (c - '0') <= 9; borrows and carries only reach bytes
    // after the first non-digit, which are not used
    let non_digit = (d.wrapping_add(0x7676_7676_7676_7676) | d) & 0x8080_8080_8080_8080;
    let n = (non_digit.trailing_zeros() / 8) as usize;
    if n == 0 {
        return (0, 0);
    }
    // keep the n digits, most significant first, as the high bytes of an 8-digit number
    let mut v = d << (8 * (8 - n) as u32);
    v = (v.wrapping_mul(10)).wrapping_add(v >> 8) & 0x00FF_00FF_00FF_00FF;
    v = (v.wrapping_mul(100)).wrapping_add(v >> 16) & 0x0000_FFFF_0000_FFFF;
    v = (v.wrapping_mul(10_000)).wrapping_add(v >> 32) & 0x0000_0000_FFFF_FFFF;
    (v, n)
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a decimal number. Returns `None` for text and for non-finite values.
/// Short decimals take an exact fast path (mantissa < 2^53, |exponent| <= 22:
/// one correctly rounded multiplication or division); anything else goes to
/// the standard library parser, so results are always correctly rounded.
pub fn parse_number(b: &[u8]) -> Option<f64> {
    let b = trim_ascii(b);
    if b.is_empty() {
        return None;
    }
    let mut i = 0;
    let neg = match b[0] {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut mant: u64 = 0;
    let mut nd = 0u32;
    let mut exp10: i32 = 0;
    let mut any = false;
    let mut slow = false;
    while i < b.len() && b[i].is_ascii_digit() {
        let d = (b[i] - b'0') as u64;
        if nd < 19 {
            mant = mant * 10 + d;
            if mant > 0 {
                nd += 1;
            }
        } else {
            slow = true;
        }
        any = true;
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            let d = (b[i] - b'0') as u64;
            if nd < 19 {
                mant = mant * 10 + d;
                if mant > 0 {
                    nd += 1;
                }
                exp10 -= 1;
            } else {
                slow = true;
            }
            any = true;
            i += 1;
        }
    }
    if !any {
        return slow_parse(b);
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let mut eneg = false;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            eneg = b[i] == b'-';
            i += 1;
        }
        let mut e: i32 = 0;
        let mut edig = false;
        while i < b.len() && b[i].is_ascii_digit() {
            if e < 10000 {
                e = e * 10 + (b[i] - b'0') as i32;
            }
            edig = true;
            i += 1;
        }
        if !edig {
            return None;
        }
        exp10 += if eneg { -e } else { e };
    }
    if i != b.len() {
        return slow_parse(b);
    }
    if slow || mant >= (1u64 << 53) || !(-22..=22).contains(&exp10) {
        return slow_parse(b);
    }
    let mut v = mant as f64;
    if exp10 < 0 {
        v /= POW10[(-exp10) as usize];
    } else {
        v *= POW10[exp10 as usize];
    }
    Some(if neg { -v } else { v })
}

fn slow_parse(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    // Only plain decimal syntax: reject words like "inf" or "nan" (handled as text/missing).
    if !s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn trim_ascii(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Formats a number the way a converted numeric cell is shown as a category level.
pub(crate) fn number_to_level(v: f64) -> String {
    format!("{v}")
}

enum Builder {
    Num(Vec<f64>),
    Text {
        codes: Vec<u32>,
        dict: HashMap<String, u32>,
        levels: Vec<String>,
        numeric_like: usize,
        non_missing: usize,
        first_text: Option<(u64, String)>,
    },
}

impl Builder {
    fn to_text(&mut self) {
        if let Builder::Num(v) = self {
            let mut dict = HashMap::new();
            let mut levels = Vec::new();
            let mut codes = Vec::with_capacity(v.capacity());
            let mut nm = 0;
            for &x in v.iter() {
                if x.is_nan() {
                    codes.push(MISSING_CODE);
                } else {
                    nm += 1;
                    let s = number_to_level(x);
                    let c = *dict.entry(s.clone()).or_insert_with(|| {
                        levels.push(s);
                        (levels.len() - 1) as u32
                    });
                    codes.push(c);
                }
            }
            *self = Builder::Text {
                codes,
                dict,
                levels,
                numeric_like: nm,
                non_missing: nm,
                first_text: None,
            };
        }
    }
}

fn read_csv_bytes(
    bytes: &[u8],
    path: &Path,
    target: &str,
    event: &str,
    opts: &CsvOptions,
) -> Result<Dataset> {
    read_csv_impl(bytes, None, path, target, event, opts)
        .map(|d| d.expect("in-memory reading always completes"))
}

/// A file read in parallel pieces straight from disk: each reader thread streams
/// its byte range through a small buffer, so the file is never held whole.
struct FileBody<'a> {
    file: &'a std::fs::File,
    len: usize,
}

/// Reads CSV text: all of it in `bytes`, or (with `file`) only the head in
/// `bytes` and the body streamed from the file. `Ok(None)`: the streamed file
/// holds a quote, read it whole instead.
fn read_csv_impl(
    bytes: &[u8],
    file: Option<FileBody>,
    path: &Path,
    target: &str,
    event: &str,
    opts: &CsvOptions,
) -> Result<Option<Dataset>> {
    let pathbuf: PathBuf = path.to_path_buf();
    let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let bytes = &bytes[bom..];
    if !opts.delimiter.is_ascii() {
        return Err(Error::Config(format!(
            "delimiter `{}` must be an ASCII character",
            opts.delimiter
        )));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter as u8)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let csv_err = |e: csv::Error, pathbuf: &PathBuf| -> Error {
        let line = e.position().map(|p| p.line()).unwrap_or(0);
        let message = match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => {
                format!("row has {len} fields, the header has {expected_len}")
            }
            _ => e.to_string(),
        };
        Error::Csv {
            path: pathbuf.clone(),
            line,
            message,
        }
    };
    let header = rdr
        .byte_headers()
        .map_err(|e| csv_err(e, &pathbuf))?
        .clone();
    let mut names = Vec::with_capacity(header.len());
    for (i, h) in header.iter().enumerate() {
        let s = std::str::from_utf8(h).map_err(|_| Error::NotUtf8 {
            path: pathbuf.clone(),
            line: 1,
        })?;
        let s = s.trim().to_string();
        if s.is_empty() {
            return Err(Error::Csv {
                path: pathbuf.clone(),
                line: 1,
                message: format!("header field {} is empty", i + 1),
            });
        }
        if names.contains(&s) {
            return Err(Error::Csv {
                path: pathbuf.clone(),
                line: 1,
                message: format!("column `{s}` appears twice in the header"),
            });
        }
        names.push(s);
    }
    let available = || names.join(", ");
    let tidx = names
        .iter()
        .position(|n| n == target)
        .ok_or_else(|| Error::MissingColumn {
            path: pathbuf.clone(),
            column: target.to_string(),
            available: available(),
        })?;
    for c in opts
        .numeric
        .iter()
        .chain(&opts.categorical)
        .chain(&opts.ignore)
    {
        if !names.contains(c) {
            return Err(Error::MissingColumn {
                path: pathbuf.clone(),
                column: c.clone(),
                available: available(),
            });
        }
    }
    let missing: Vec<Vec<u8>> = opts
        .missing_values
        .iter()
        .map(|s| s.trim().as_bytes().to_vec())
        .collect();
    let missing_markers = opts.missing_values.join(" ");

    // Estimate the row count from the first rows to size the vectors once.
    let total_len = file.as_ref().map_or(bytes.len(), |f| f.len);
    let est_rows = {
        let sample = &bytes[..bytes.len().min(1 << 16)];
        let nl = sample.iter().filter(|&&c| c == b'\n').count().max(1);
        (total_len as f64 / (sample.len() as f64 / nl as f64)) as usize + 16
    };

    // slot per field: None = ignored / target
    let mut slots: Vec<Option<Slot>> = Vec::with_capacity(names.len());
    let mut col_names = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if i == tidx || opts.ignore.contains(n) {
            slots.push(None);
            continue;
        }
        let col = col_names.len();
        col_names.push(n.clone());
        slots.push(Some(Slot {
            col,
            declared_numeric: opts.numeric.contains(n),
            declared_categorical: opts.categorical.contains(n),
        }));
    }
    let body_start = rdr.position().byte() as usize;
    let body = &bytes[body_start.min(bytes.len())..];
    let ctx = ChunkCtx {
        path: &pathbuf,
        slots: &slots,
        col_names: &col_names,
        tidx,
        target,
        event,
        delimiter: opts.delimiter as u8,
        missing: &missing,
        missing_markers: &missing_markers,
        n_fields: names.len(),
    };
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.threads
    };
    // Parallel only for large files without quotes (then every newline ends a record).
    let parts: Vec<Result<Chunk>> = if let Some(fb) = &file {
        let start = bom + body_start;
        match read_file_parts(fb, start, threads.max(1), &ctx, est_rows)? {
            Some(parts) => parts,
            None => return Ok(None),
        }
    } else {
        read_bytes_parts(body, threads, &ctx, est_rows)
    };
    assemble(
        parts,
        &col_names,
        &pathbuf,
        target,
        event,
        opts,
        &missing_markers,
        path,
    )
    .map(Some)
}

/// Reads the body in memory, in parallel chunks for large files without quotes.
fn read_bytes_parts(
    body: &[u8],
    threads: usize,
    ctx: &ChunkCtx,
    est_rows: usize,
) -> Vec<Result<Chunk>> {
    let chunks: Vec<(&[u8], u64)> =
        if threads > 1 && body.len() > (4 << 20) && !body.contains(&b'"') {
            let mut out = Vec::new();
            let mut start = 0usize;
            let mut line = 2u64;
            for t in 1..=threads {
                let mut end = if t == threads {
                    body.len()
                } else {
                    (body.len() * t / threads).max(start)
                };
                while end < body.len() && body[end - 1] != b'\n' {
                    end += 1;
                }
                out.push((&body[start..end], line));
                line += body[start..end].iter().filter(|&&c| c == b'\n').count() as u64;
                start = end;
            }
            out
        } else {
            vec![(body, 2)]
        };
    // The first chunk's vectors get room for every row, so the merge appends the
    // other chunks to them instead of copying all columns once more.
    let parts: Vec<Result<Chunk>> = if chunks.len() > 1 {
        // newlines per chunk, from the line numbers the split counted
        let mut nl: Vec<usize> = chunks
            .windows(2)
            .map(|w| (w[1].1 - w[0].1) as usize)
            .collect();
        nl.push(
            chunks
                .last()
                .map_or(0, |c| c.0.iter().filter(|&&b| b == b'\n').count()),
        );
        let rows_ub: usize = nl.iter().sum::<usize>() + 1;
        std::thread::scope(|sc| {
            let hs: Vec<_> = chunks
                .iter()
                .enumerate()
                .map(|(i, &(c, l))| {
                    let ctx = &ctx;
                    let nl = &nl;
                    let est = if i == 0 { rows_ub } else { nl[i] + 1 };
                    sc.spawn(move || parse_chunk(c, l, ctx, est))
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("CSV reader thread panicked"))
                .collect()
        })
    } else {
        vec![parse_chunk(chunks[0].0, chunks[0].1, ctx, est_rows)]
    };
    parts
}

#[cfg(unix)]
/// The start of the line holding byte `pos` of the file (after the previous
/// newline), not before `min`.
fn line_start_at(f: &std::fs::File, min: usize, pos: usize, len: usize) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    if pos <= min {
        return Ok(min);
    }
    // the newline at or after pos - 1 ends the previous chunk
    let mut at = pos - 1;
    let mut probe = vec![0u8; 1 << 16];
    while at < len {
        let n = probe.len().min(len - at);
        f.read_exact_at(&mut probe[..n], at as u64)?;
        if let Some(i) = probe[..n].iter().position(|&c| c == b'\n') {
            return Ok(at + i + 1);
        }
        at += n;
    }
    Ok(len)
}

#[cfg(not(unix))]
fn read_file_parts(
    _fb: &FileBody,
    _start: usize,
    _threads: usize,
    _ctx: &ChunkCtx,
    _est_rows: usize,
) -> Result<Option<Vec<Result<Chunk>>>> {
    Ok(None)
}

/// Streams the body `[start, len)` of a file through per-thread buffers, each
/// thread parsing its own range of whole lines. `Ok(None)` when a quote is seen.
#[cfg(unix)]
fn read_file_parts(
    fb: &FileBody,
    start: usize,
    threads: usize,
    ctx: &ChunkCtx,
    est_rows: usize,
) -> Result<Option<Vec<Result<Chunk>>>> {
    use std::os::unix::fs::FileExt;
    let io = |e: std::io::Error| Error::Io {
        path: ctx.path.clone(),
        source: e,
    };
    let body = fb.len - start;
    let mut bounds = Vec::with_capacity(threads + 1);
    for t in 0..=threads {
        let nominal = start + body * t / threads;
        let b = if t == threads {
            fb.len
        } else {
            line_start_at(fb.file, start, nominal, fb.len).map_err(io)?
        };
        bounds.push(b.max(*bounds.last().unwrap_or(&start)));
    }
    const BLOCK: usize = 1 << 22;
    // (chunk, lines read, quote seen)
    let run = |t: usize| -> Result<(Chunk, u64, bool)> {
        let (lo, hi) = (bounds[t], bounds[t + 1]);
        let est = if t == 0 {
            est_rows + est_rows / 16
        } else {
            est_rows / threads + est_rows / 16
        };
        let mut st = new_chunk(ctx, est);
        let first = if t == 0 { 2 } else { 0 };
        let mut line = first;
        let mut buf = vec![0u8; BLOCK.min(hi - lo + 1).max(1)];
        let mut carry = 0usize;
        let mut at = lo;
        while at < hi || carry > 0 {
            if carry == buf.len() {
                buf.resize(buf.len() * 2, 0); // a line longer than the buffer
            }
            let n = (buf.len() - carry).min(hi - at);
            fb.file
                .read_exact_at(&mut buf[carry..carry + n], at as u64)
                .map_err(io)?;
            at += n;
            let filled = carry + n;
            if buf[carry..filled].contains(&b'"') {
                return Ok((st, line - first, true));
            }
            let cut = if at >= hi {
                filled
            } else {
                match buf[..filled].iter().rposition(|&c| c == b'\n') {
                    Some(i) => i + 1,
                    None => {
                        carry = filled;
                        continue;
                    }
                }
            };
            line = parse_unquoted(&mut st, &buf[..cut], line, ctx)?;
            buf.copy_within(cut..filled, 0);
            carry = filled - cut;
            if at >= hi && carry == 0 {
                break;
            }
        }
        Ok((st, line - first, false))
    };
    let res: Vec<Result<(Chunk, u64, bool)>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let run = &run;
                sc.spawn(move || run(t))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("CSV reader thread panicked"))
            .collect()
    });
    if res.iter().any(|r| matches!(r, Ok((_, _, true)))) {
        return Ok(None);
    }
    // Threads after the first counted lines from 0: shift their line numbers.
    let mut offset = 2u64;
    let mut parts = Vec::with_capacity(threads);
    for (t, r) in res.into_iter().enumerate() {
        let shift = if t == 0 { 0 } else { offset };
        match r {
            Ok((mut c, lines, _)) => {
                for b in &mut c.builders {
                    if let Builder::Text {
                        first_text: Some((l, _)),
                        ..
                    } = b
                    {
                        *l += shift;
                    }
                }
                offset += lines;
                parts.push(Ok(c));
            }
            Err(e) => {
                parts.push(Err(e.shift_line(shift)));
                break;
            }
        }
    }
    Ok(Some(parts))
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    parts: Vec<Result<Chunk>>,
    col_names: &[String],
    pathbuf: &Path,
    target: &str,
    event: &str,
    opts: &CsvOptions,
    missing_markers: &str,
    path: &Path,
) -> Result<Dataset> {
    let pathbuf: PathBuf = pathbuf.to_path_buf();
    let missing_markers = missing_markers.to_string();
    let mut parts = parts.into_iter().collect::<Result<Vec<Chunk>>>()?;
    // merge target information
    let mut other: Option<String> = None;
    let mut seen_event = false;
    let mut extra_values: Vec<String> = Vec::new();
    for p in &parts {
        seen_event |= p.seen_event;
        for v in p.other.iter().chain(&p.extra_values) {
            match &other {
                None => other = Some(v.clone()),
                Some(o) if o == v => {}
                Some(_) => {
                    if !extra_values.contains(v) && extra_values.len() < 5 {
                        extra_values.push(v.clone());
                    }
                }
            }
        }
    }
    let target_vals: Vec<u8> = if parts.len() == 1 {
        std::mem::take(&mut parts[0].target)
    } else {
        parts
            .iter()
            .flat_map(|p| p.target.iter().copied())
            .collect()
    };
    let builders: Vec<Builder> = merge_builders(parts.into_iter().map(|p| p.builders).collect());
    let n = target_vals.len();
    if !extra_values.is_empty() || other.is_none() || !seen_event {
        let mut found: Vec<String> = Vec::new();
        if seen_event {
            found.push(format!("`{event}`"));
        }
        if let Some(o) = &other {
            found.push(format!("`{o}`"));
        }
        found.extend(extra_values.iter().map(|v| format!("`{v}`")));
        let mut msg = if found.is_empty() {
            "no rows".to_string()
        } else {
            found.join(", ")
        };
        if !seen_event && n > 0 {
            msg.push_str(&format!(" (the event value `{event}` never occurs)"));
        }
        return Err(Error::TargetNotBinary {
            column: target.to_string(),
            event: event.to_string(),
            found: msg,
        });
    }
    let mut columns = Vec::with_capacity(builders.len());
    for (ci, b) in builders.into_iter().enumerate() {
        let name = col_names[ci].clone();
        match b {
            Builder::Num(v) => columns.push(Column::numeric(name, v)),
            Builder::Text {
                codes,
                levels,
                numeric_like,
                non_missing,
                first_text,
                ..
            } => {
                let declared_cat = opts.categorical.contains(&name);
                if !declared_cat
                    && non_missing > 0
                    && numeric_like as f64 / non_missing as f64 >= opts.numeric_share_for_text_error
                {
                    let (line, value) = first_text.unwrap_or((0, String::new()));
                    return Err(Error::TextInNumeric {
                        path: pathbuf,
                        line,
                        column: name,
                        value,
                        missing_markers,
                    });
                }
                columns.push(Column {
                    name,
                    data: ColumnData::Categorical { codes, levels },
                });
            }
        }
    }
    Ok(Dataset {
        target_name: target.to_string(),
        event: event.to_string(),
        non_event: other.unwrap_or_default(),
        target: target_vals,
        columns,
        source: path.display().to_string(),
    })
}

struct Slot {
    col: usize,
    declared_numeric: bool,
    declared_categorical: bool,
}

struct ChunkCtx<'a> {
    path: &'a PathBuf,
    slots: &'a [Option<Slot>],
    col_names: &'a [String],
    tidx: usize,
    target: &'a str,
    event: &'a str,
    delimiter: u8,
    missing: &'a [Vec<u8>],
    missing_markers: &'a str,
    n_fields: usize,
}

struct Chunk {
    builders: Vec<Builder>,
    target: Vec<u8>,
    other: Option<String>,
    seen_event: bool,
    extra_values: Vec<String>,
}

fn new_chunk(ctx: &ChunkCtx, est_rows: usize) -> Chunk {
    let mut st = Chunk {
        builders: Vec::with_capacity(ctx.slots.len()),
        target: Vec::with_capacity(est_rows),
        other: None,
        seen_event: false,
        extra_values: Vec::new(),
    };
    for slot in ctx.slots.iter().flatten() {
        if slot.declared_categorical {
            let mut b = Builder::Num(Vec::new());
            b.to_text();
            if let Builder::Text { codes, .. } = &mut b {
                codes.reserve(est_rows);
            }
            st.builders.push(b);
        } else {
            st.builders.push(Builder::Num(Vec::with_capacity(est_rows)));
        }
    }
    st
}

fn parse_chunk(bytes: &[u8], first_line: u64, ctx: &ChunkCtx, est_rows: usize) -> Result<Chunk> {
    let mut st = new_chunk(ctx, est_rows);
    if !bytes.contains(&b'"') {
        parse_unquoted(&mut st, bytes, first_line, ctx)?;
    } else {
        let pathbuf = ctx.path;
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(ctx.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut rec = csv::ByteRecord::new();
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(1) + first_line - 1;
                    return Err(Error::Csv {
                        path: pathbuf.clone(),
                        line,
                        message: e.to_string(),
                    });
                }
            }
            let line = rec.position().map(|p| p.line()).unwrap_or(1) + first_line - 1;
            let fields: Vec<&[u8]> = rec.iter().collect();
            handle_record(&mut st, &fields, line, ctx)?;
        }
    }
    Ok(st)
}

/// Handles one record (its fields) with the general rules and error messages.
fn handle_record(st: &mut Chunk, rec: &[&[u8]], line: u64, ctx: &ChunkCtx) -> Result<()> {
    let pathbuf = ctx.path;
    let is_missing =
        |f: &[u8]| -> bool { f.is_empty() || ctx.missing.iter().any(|m| m.as_slice() == f) };
    let event_b = ctx.event.trim().as_bytes();
    let tidx = ctx.tidx;
    {
        if rec.len() != ctx.n_fields {
            if rec.len() == 1 && rec[0].is_empty() {
                return Ok(()); // blank line
            }
            return Err(Error::Csv {
                path: pathbuf.clone(),
                line,
                message: format!(
                    "row has {} fields, the header has {}",
                    rec.len(),
                    ctx.n_fields
                ),
            });
        }
        let tv = trim_ascii(rec[tidx]);
        if is_missing(tv) {
            return Err(Error::MissingTarget {
                path: pathbuf.clone(),
                line,
                column: ctx.target.to_string(),
                event: ctx.event.to_string(),
            });
        }
        if tv == event_b {
            st.seen_event = true;
            st.target.push(1);
        } else {
            let s = std::str::from_utf8(tv).map_err(|_| Error::NotUtf8 {
                path: pathbuf.clone(),
                line,
            })?;
            match &st.other {
                None => st.other = Some(s.to_string()),
                Some(o) if o == s => {}
                Some(_) => {
                    if !st.extra_values.iter().any(|x| x == s) && st.extra_values.len() < 5 {
                        st.extra_values.push(s.to_string());
                    }
                }
            }
            st.target.push(0);
        }
        for (fi, slot) in ctx.slots.iter().enumerate() {
            let Some(slot) = slot else { continue };
            let raw = trim_ascii(rec[fi]);
            let b = &mut st.builders[slot.col];
            match b {
                Builder::Num(v) => {
                    if raw.is_empty() {
                        v.push(f64::NAN);
                    } else if let Some(x) = parse_number(raw) {
                        v.push(x);
                    } else if is_missing(raw) {
                        v.push(f64::NAN);
                    } else {
                        let s = std::str::from_utf8(raw).map_err(|_| Error::NotUtf8 {
                            path: pathbuf.clone(),
                            line,
                        })?;
                        if slot.declared_numeric {
                            return Err(Error::TextInNumeric {
                                path: pathbuf.clone(),
                                line,
                                column: ctx.col_names[slot.col].clone(),
                                value: s.to_string(),
                                missing_markers: ctx.missing_markers.to_string(),
                            });
                        }
                        b.to_text();
                        push_text(b, s, false, line);
                    }
                }
                Builder::Text { codes, .. } => {
                    if is_missing(raw) {
                        codes.push(MISSING_CODE);
                    } else {
                        let s = std::str::from_utf8(raw).map_err(|_| Error::NotUtf8 {
                            path: pathbuf.clone(),
                            line,
                        })?;
                        let numeric = parse_number(raw).is_some();
                        push_text(b, s, numeric, line);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Parses lines without quotes; returns the line number after the last line.
fn parse_unquoted(st: &mut Chunk, bytes: &[u8], first_line: u64, ctx: &ChunkCtx) -> Result<u64> {
    let event_b = ctx.event.trim().as_bytes();
    let tidx = ctx.tidx;
    {
        // No quoting anywhere: split lines and fields directly (much faster than a CSV
        // state machine; the parallel reader only hands out such chunks).
        // Lines of plain numbers take a fused scan-and-parse path; any other line
        // (text, missing markers, spaces, wrong field count, a new target value)
        // goes through `handle`, which has the general rules and the error messages.
        let delim = ctx.delimiter;
        let kinds: Vec<FastField> = ctx
            .slots
            .iter()
            .enumerate()
            .map(|(fi, s)| match s {
                Some(s) => FastField::Num(s.col),
                None if fi == tidx => FastField::Target,
                None => FastField::Skip,
            })
            .collect();
        let delim_ok = !matches!(
            delim,
            b'\n' | b'\r' | b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E'
        );
        let all_num = |st: &Chunk| st.builders.iter().all(|b| matches!(b, Builder::Num(_)));
        let mut fast = delim_ok && !kinds.is_empty() && all_num(st);
        let mut vals = vec![0.0f64; ctx.col_names.len()];
        let mut fields: Vec<&[u8]> = Vec::with_capacity(ctx.n_fields);
        let mut p = 0usize;
        let mut line = first_line;
        while p < bytes.len() {
            if fast {
                let other = st.other.as_deref().map(str::as_bytes);
                if let Some((q, t)) =
                    fast_record(bytes, p, &kinds, delim, &mut vals, event_b, other)
                {
                    st.target.push(t);
                    st.seen_event |= t == 1;
                    for (b, &v) in st.builders.iter_mut().zip(&vals) {
                        if let Builder::Num(col) = b {
                            col.push(v);
                        }
                    }
                    p = q;
                    line += 1;
                    continue;
                }
            }
            let e = bytes[p..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(bytes.len(), |i| p + i);
            let raw = &bytes[p..e];
            let l = raw.strip_suffix(b"\r").unwrap_or(raw);
            if !l.is_empty() {
                fields.clear();
                fields.extend(l.split(|&b| b == delim));
                handle_record(st, &fields, line, ctx)?;
                fast = delim_ok && all_num(st);
            }
            p = e + 1;
            line += 1;
        }
        Ok(line)
    }
}

#[derive(Clone, Copy)]
enum FastField {
    Num(usize),
    Target,
    Skip,
}

/// Parses one record of plain numbers starting at `p` (fields in `kinds` order).
/// Returns the start of the next line and the target (1 event, 0 the known
/// non-event value), or `None` when the line needs the general path.
#[inline]
fn fast_record(
    b: &[u8],
    mut p: usize,
    kinds: &[FastField],
    delim: u8,
    vals: &mut [f64],
    event: &[u8],
    other: Option<&[u8]>,
) -> Option<(usize, u8)> {
    let last = kinds.len() - 1;
    let mut t = 0u8;
    for (fi, k) in kinds.iter().enumerate() {
        match *k {
            FastField::Num(c) => {
                let (v, q) = fast_number(b, p)?;
                vals[c] = v;
                p = q;
            }
            FastField::Target | FastField::Skip => {
                let s = p;
                while p < b.len() && b[p] != delim && b[p] != b'\n' && b[p] != b'\r' {
                    p += 1;
                }
                if let FastField::Target = k {
                    let f = &b[s..p];
                    if f.is_empty() {
                        return None;
                    }
                    if f == event {
                        t = 1;
                    } else if other != Some(f) {
                        return None;
                    }
                }
            }
        }
        if fi < last {
            if p < b.len() && b[p] == delim {
                p += 1;
            } else {
                return None;
            }
        }
    }
    if p < b.len() && b[p] == b'\r' {
        p += 1;
    }
    if p == b.len() {
        Some((p, t))
    } else if b[p] == b'\n' {
        Some((p + 1, t))
    } else {
        None
    }
}

/// The exact fast path of [`parse_number`] for an untrimmed field starting at `p`:
/// `-?digits[.digits][e[+-]digits]` with at most 19 digits, a mantissa below 2^53
/// and a power of ten within ±22 (one correctly rounded operation, the same value
/// `parse_number` gives). Returns the value and the end of the number, or `None`.
#[inline]
fn fast_number(b: &[u8], mut p: usize) -> Option<(f64, usize)> {
    let neg = p < b.len() && b[p] == b'-';
    if neg {
        p += 1;
    }
    // Eight bytes at a time when there is room: up to 7 integer and 7 fraction digits.
    if p + 16 <= b.len() {
        let (iv, ni) = digits8(b, p);
        if ni < 8 {
            let mut q = p + ni;
            let (mut mant, mut nf) = (iv, 0usize);
            if b[q] == b'.' {
                let (fv, k) = digits8(b, q + 1);
                if k < 8 {
                    mant = iv * POW10_U64[k] + fv;
                    nf = k;
                    q += 1 + k;
                } else {
                    q = usize::MAX;
                }
            }
            if q != usize::MAX && ni + nf > 0 && (b[q] | 0x20) != b'e' {
                // mantissa below 10^14 < 2^53 and at most 7 fraction digits: exact
                let v = mant as f64 / POW10[nf];
                return Some((if neg { -v } else { v }, q));
            }
        }
    }
    let mut mant = 0u64;
    let s = p;
    while p < b.len() {
        let d = b[p].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mant = mant.wrapping_mul(10).wrapping_add(d as u64);
        p += 1;
    }
    let int_digits = p - s;
    let mut frac = 0usize;
    if p < b.len() && b[p] == b'.' {
        p += 1;
        let fs = p;
        while p < b.len() {
            let d = b[p].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            mant = mant.wrapping_mul(10).wrapping_add(d as u64);
            p += 1;
        }
        frac = p - fs;
    }
    let nd = int_digits + frac;
    if nd == 0 || nd > 19 {
        return None;
    }
    let mut e = -(frac as i32);
    if p < b.len() && (b[p] | 0x20) == b'e' {
        p += 1;
        let eneg = p < b.len() && b[p] == b'-';
        if p < b.len() && (b[p] == b'-' || b[p] == b'+') {
            p += 1;
        }
        let es = p;
        let mut x = 0i32;
        while p < b.len() && b[p].is_ascii_digit() && p - es < 4 {
            x = x * 10 + (b[p] - b'0') as i32;
            p += 1;
        }
        if p == es || (p < b.len() && b[p].is_ascii_digit()) {
            return None;
        }
        e += if eneg { -x } else { x };
    }
    if mant >= (1u64 << 53) || !(-22..=22).contains(&e) {
        return None;
    }
    let mut v = mant as f64;
    if e < 0 {
        v /= POW10[(-e) as usize];
    } else {
        v *= POW10[e as usize];
    }
    Some((if neg { -v } else { v }, p))
}

/// Concatenates the column builders of consecutive chunks.
fn merge_builders(mut parts: Vec<Vec<Builder>>) -> Vec<Builder> {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let ncol = parts[0].len();
    let mut out = Vec::with_capacity(ncol);
    let mut cols: Vec<Vec<Builder>> = (0..ncol).map(|_| Vec::new()).collect();
    for p in parts {
        for (c, b) in p.into_iter().enumerate() {
            cols[c].push(b);
        }
    }
    for mut bs in cols {
        if bs.iter().all(|b| matches!(b, Builder::Num(_))) {
            let total: usize = bs
                .iter()
                .map(|b| if let Builder::Num(v) = b { v.len() } else { 0 })
                .sum();
            let mut it = bs.into_iter();
            let mut v = match it.next() {
                Some(Builder::Num(v)) => v,
                _ => Vec::new(),
            };
            v.reserve_exact(total - v.len());
            for b in it {
                if let Builder::Num(x) = b {
                    v.extend_from_slice(&x);
                }
            }
            out.push(Builder::Num(v));
            continue;
        }
        for b in bs.iter_mut() {
            b.to_text();
        }
        let mut it = bs.into_iter();
        let mut acc = it.next().unwrap();
        for b in it {
            if let (
                Builder::Text {
                    codes,
                    dict,
                    levels,
                    numeric_like,
                    non_missing,
                    first_text,
                },
                Builder::Text {
                    codes: c2,
                    levels: l2,
                    numeric_like: n2,
                    non_missing: m2,
                    first_text: f2,
                    ..
                },
            ) = (&mut acc, b)
            {
                let remap: Vec<u32> = l2
                    .iter()
                    .map(|l| match dict.get(l) {
                        Some(&c) => c,
                        None => {
                            levels.push(l.clone());
                            let c = (levels.len() - 1) as u32;
                            dict.insert(l.clone(), c);
                            c
                        }
                    })
                    .collect();
                codes.extend(c2.iter().map(|&c| {
                    if c == MISSING_CODE {
                        MISSING_CODE
                    } else {
                        remap[c as usize]
                    }
                }));
                *numeric_like += n2;
                *non_missing += m2;
                if first_text.is_none() {
                    *first_text = f2;
                }
            }
        }
        out.push(acc);
    }
    out
}

fn push_text(b: &mut Builder, s: &str, numeric: bool, line: u64) {
    if let Builder::Text {
        codes,
        dict,
        levels,
        numeric_like,
        non_missing,
        first_text,
    } = b
    {
        *non_missing += 1;
        if numeric {
            *numeric_like += 1;
        } else if first_text.is_none() {
            *first_text = Some((line, s.to_string()));
        }
        let c = match dict.get(s) {
            Some(&c) => c,
            None => {
                levels.push(s.to_string());
                let c = (levels.len() - 1) as u32;
                dict.insert(s.to_string(), c);
                c
            }
        };
        codes.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_number_matches_std() {
        for s in [
            "0",
            "-0",
            "1",
            "1.5",
            "-2.25",
            "1e3",
            "1.23456e-7",
            "123456789012345678901234",
            "0.1",
            "3.14159",
            "+7",
            ".5",
            "5.",
            "1E+2",
            "9007199254740993",
        ] {
            let want: f64 = s.parse().unwrap();
            assert_eq!(parse_number(s.as_bytes()), Some(want), "{s}");
        }
        for s in ["abc", "1,000", "inf", "NaN", "", "1e", "--1", "1.2.3"] {
            assert_eq!(parse_number(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn reads_types_and_target() {
        let csv = "a,b,y\n1,x,bad\n2,,good\n,z,good\n";
        let ds =
            Dataset::from_csv_bytes(csv.as_bytes(), "t.csv", "y", "bad", &CsvOptions::default())
                .unwrap();
        assert_eq!(ds.target, vec![1, 0, 0]);
        assert_eq!(ds.non_event, "good");
        match &ds.columns[0].data {
            ColumnData::Numeric(v) => {
                assert_eq!(v[0], 1.0);
                assert!(v[2].is_nan());
            }
            _ => panic!("a should be numeric"),
        }
        match &ds.columns[1].data {
            ColumnData::Categorical { codes, levels } => {
                assert_eq!(levels, &vec!["x".to_string(), "z".to_string()]);
                assert_eq!(codes[1], MISSING_CODE);
            }
            _ => panic!("b should be categorical"),
        }
    }

    #[test]
    fn errors_are_precise() {
        let o = CsvOptions::default();
        let e =
            Dataset::from_csv_bytes(b"a,y\n1,0\n2,1\n3,2\n", "t.csv", "y", "1", &o).unwrap_err();
        assert!(matches!(e, Error::TargetNotBinary { .. }), "{e}");
        let e = Dataset::from_csv_bytes(b"a,y\n1,0\n", "t.csv", "z", "1", &o).unwrap_err();
        assert!(matches!(e, Error::MissingColumn { .. }), "{e}");
        let mut text = String::from("a,y\n");
        for i in 0..30 {
            text.push_str(&format!("{i},{}\n", i % 2));
        }
        text.push_str("oops,1\n");
        let e = Dataset::from_csv_bytes(text.as_bytes(), "t.csv", "y", "1", &o).unwrap_err();
        match e {
            Error::TextInNumeric {
                line,
                column,
                value,
                ..
            } => {
                assert_eq!(line, 32);
                assert_eq!(column, "a");
                assert_eq!(value, "oops");
            }
            other => panic!("unexpected {other}"),
        }
        let e = Dataset::from_csv_bytes(b"a,y\n1,0\n2\n", "t.csv", "y", "1", &o).unwrap_err();
        match e {
            Error::Csv { line, .. } => assert_eq!(line, 3),
            other => panic!("unexpected {other}"),
        }
        let e = Dataset::from_csv_bytes(b"a,y\n1,0\n2,\n", "t.csv", "y", "1", &o).unwrap_err();
        assert!(matches!(e, Error::MissingTarget { line: 3, .. }), "{e}");
        let e = Dataset::from_csv_bytes(b"a,y\n1,0\n2,0\n", "t.csv", "y", "1", &o).unwrap_err();
        assert!(matches!(e, Error::TargetNotBinary { .. }), "{e}");
    }

    #[test]
    fn fast_number_agrees_with_parse_number() {
        for t in [
            "0",
            "-0",
            "12",
            "-3.25",
            "0.00752295",
            "2320.39",
            "1e5",
            "1E-05",
            "-2.5e+3",
            "5.",
            ".5",
            "123456789012345678",
            "1234567890123456789",
            "12345678901234567890",
            "9007199254740993",
            "1e23",
            "1e-23",
            "1e",
            "1e+",
            "-",
            ".",
            "1.2.3",
            "+1",
            "1e00001",
        ] {
            let b = t.as_bytes();
            if let Some((v, end)) = fast_number(b, 0) {
                if end == b.len() {
                    let w = parse_number(b).unwrap();
                    assert_eq!(v.to_bits(), w.to_bits(), "{t}");
                }
            }
        }
    }

    #[test]
    fn fast_number_word_path_agrees_with_parse_number() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let r = next();
            let int_len = (r % 10) as usize;
            let frac_len = ((r >> 8) % 10) as usize;
            let mut t = String::new();
            if r >> 20 & 1 == 1 {
                t.push('-');
            }
            for i in 0..int_len {
                t.push((b'0' + ((r >> (24 + i * 3)) % 10) as u8) as char);
            }
            if r >> 21 & 1 == 1 || frac_len > 0 {
                t.push('.');
            }
            let f = next();
            for i in 0..frac_len {
                t.push((b'0' + ((f >> (i * 5)) % 10) as u8) as char);
            }
            if r >> 22 & 3 == 0 {
                t.push_str(&format!("e{}", (f >> 50) % 30));
            }
            let tail = [
                ",1.5,2,3,4,5,6,7,8,9",
                "\n1,2,3,4,5,6,7,8,9,0",
                "x1234567890123456",
            ][(r >> 60) as usize % 3];
            let line = format!("{t}{tail}");
            let b = line.as_bytes();
            let got = fast_number(b, 0);
            if let Some((v, end)) = got {
                assert_eq!(&line[..end], t, "{line}");
                assert_eq!(
                    Some(v.to_bits()),
                    parse_number(t.as_bytes()).map(f64::to_bits),
                    "{line}"
                );
            } else if !t.is_empty() && t != "-" && t != "." && t != "-." {
                // the general path may refuse only what parse_number cannot do exactly fast
                assert!(t.len() > 15 || t.contains('e'), "{line}");
            }
        }
    }

    #[test]
    fn fast_line_path_matches_the_csv_state_machine() {
        // All-numeric columns take the fused path; odd lines in between must give
        // the same data as the general reader.
        let mut text = String::from("a,b,skip,y\n");
        for i in 0..20_000u32 {
            let line = match i % 997 {
                1 => format!(" {i}.5 ,NA,z,0\r\n"),
                2 => format!("+{i},,z,1\n"),
                3 => "\n".to_string(),
                4 => format!("{i}e-3,1.5E2,z,1 \n"),
                5 => format!("12345678901234567890,{i},z,0\n"),
                _ => format!(
                    "{}.{:03},-{},w{},{}\n",
                    i,
                    i % 1000,
                    i % 17,
                    i % 3,
                    (i % 7 == 0) as u8
                ),
            };
            text.push_str(&line);
        }
        text.push_str("7,8,z,1"); // no final newline
        let opts = CsvOptions {
            ignore: vec!["skip".into()],
            ..Default::default()
        };
        let fast = Dataset::from_csv_bytes(text.as_bytes(), "t.csv", "y", "1", &opts).unwrap();
        let quoted_text = text.replacen("a,b", "\"a\",b", 1);
        let slow =
            Dataset::from_csv_bytes(quoted_text.as_bytes(), "t.csv", "y", "1", &opts).unwrap();
        assert_eq!(fast.target, slow.target);
        assert_eq!(fast.columns.len(), 2);
        for (a, b) in fast.columns.iter().zip(&slow.columns) {
            match (&a.data, &b.data) {
                (ColumnData::Numeric(x), ColumnData::Numeric(y)) => {
                    assert_eq!(x.len(), y.len());
                    for (u, v) in x.iter().zip(y) {
                        assert!(u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()));
                    }
                }
                _ => panic!("numeric columns expected"),
            }
        }
        // a row with a wrong field count is still reported with its line number
        let bad = "a,b,y\n1,2,0\n3,4,1\n5,1\n";
        let e = Dataset::from_csv_bytes(bad.as_bytes(), "t.csv", "y", "1", &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains('4') && e.contains("fields"), "{e}");
    }

    #[test]
    fn streamed_file_gives_the_same_data_and_line_numbers() {
        let mut text = String::from("a,b,y\n");
        let n = 700_000;
        for i in 0..n {
            let b = if i % 50_000 == 7 {
                "NA".to_string()
            } else {
                format!("{}", i % 13)
            };
            text.push_str(&format!("{}.{},{b},{}\n", i, i % 10, (i % 3 == 0) as u8));
        }
        assert!(text.len() > 8 << 20);
        let dir = std::env::temp_dir().join(format!("kehu-sc-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t.csv");
        std::fs::write(&f, &text).unwrap();
        let two = CsvOptions {
            threads: 3,
            ..Default::default()
        };
        let mem =
            Dataset::from_csv_bytes(text.as_bytes(), "t.csv", "y", "1", &CsvOptions::default())
                .unwrap();
        let streamed = Dataset::from_csv_with(&f, "y", "1", &two).unwrap();
        assert_eq!(mem.target, streamed.target);
        assert_eq!(mem.columns.len(), streamed.columns.len());
        for (a, b) in mem.columns.iter().zip(&streamed.columns) {
            match (&a.data, &b.data) {
                (ColumnData::Numeric(x), ColumnData::Numeric(y)) => {
                    assert_eq!(x.len(), y.len());
                    assert!(x.iter().zip(y).all(|(u, v)| u.to_bits() == v.to_bits()));
                }
                _ => panic!("numeric columns expected"),
            }
        }
        // an error late in the file names its line in the whole file
        let mut bad = text.clone();
        bad.push_str("1,2,3,4\n");
        std::fs::write(&f, &bad).unwrap();
        let e = Dataset::from_csv_with(&f, "y", "1", &two)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("line {}", n + 2)), "{e}");
        // a quote anywhere: read whole, same data
        let quoted = text.replacen("\n5.5,", "\n\"5.5\",", 1);
        std::fs::write(&f, &quoted).unwrap();
        let q = Dataset::from_csv_with(&f, "y", "1", &two).unwrap();
        assert_eq!(q.target, mem.target);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn parallel_reader_gives_the_same_data() {
        let mut text = String::from("a,b,c,y\n");
        let n = 400_000;
        for i in 0..n {
            // column b turns to text only in the second half; c is categorical throughout
            let b = if i > n / 2 && i % 2 == 0 {
                "x".to_string()
            } else {
                format!("{}", i % 13)
            };
            let a = if i % 11 == 0 {
                String::new()
            } else {
                format!("{}.{}", i, i % 10)
            };
            text.push_str(&format!("{a},{b},k{},{}\n", i % 5, (i % 3 == 0) as u8));
        }
        assert!(text.len() > 4 << 20);
        let one =
            Dataset::from_csv_bytes(text.as_bytes(), "t.csv", "y", "1", &CsvOptions::default())
                .unwrap();
        let two = Dataset::from_csv_bytes(
            text.as_bytes(),
            "t.csv",
            "y",
            "1",
            &CsvOptions {
                threads: 2,
                ..Default::default()
            },
        )
        .unwrap();
        // A quote anywhere sends the file through the CSV state machine instead of the
        // direct splitter: the same data must come out.
        let quoted_text = text.replacen("a,b,c,y", "\"a\",b,c,y", 1);
        let quoted = Dataset::from_csv_bytes(
            quoted_text.as_bytes(),
            "t.csv",
            "y",
            "1",
            &CsvOptions::default(),
        )
        .unwrap();
        assert_eq!(one.n_rows(), n);
        assert_eq!(one.target, two.target);
        assert_eq!(one.target, quoted.target);
        assert_eq!(
            format!("{:?}", one.columns),
            format!("{:?}", quoted.columns)
        );
        assert_eq!(one.columns.len(), 3);
        // numeric columns equal (NaN-aware)
        match (&one.columns[0].data, &two.columns[0].data) {
            (ColumnData::Numeric(x), ColumnData::Numeric(z)) => {
                assert!(x
                    .iter()
                    .zip(z)
                    .all(|(p, q)| p == q || (p.is_nan() && q.is_nan())));
                assert!(x[0].is_nan() && x[1] == 1.1);
            }
            _ => panic!("a numeric"),
        }
        // categorical columns decode to the same strings
        for c in 1..3 {
            let decode = |d: &ColumnData| -> Vec<String> {
                match d {
                    ColumnData::Categorical { codes, levels } => codes
                        .iter()
                        .map(|&k| {
                            if k == MISSING_CODE {
                                "<NA>".to_string()
                            } else {
                                levels[k as usize].clone()
                            }
                        })
                        .collect(),
                    _ => panic!("categorical expected"),
                }
            };
            assert_eq!(decode(&one.columns[c].data), decode(&two.columns[c].data));
        }
        // a line error in the second chunk reports the right line
        let mut bad = text.clone();
        bad.push_str("1,2\n");
        for threads in [1, 2] {
            match Dataset::from_csv_bytes(
                bad.as_bytes(),
                "t.csv",
                "y",
                "1",
                &CsvOptions {
                    threads,
                    ..Default::default()
                },
            ) {
                Err(Error::Csv { line, .. }) => assert_eq!(line as usize, n + 2),
                other => panic!("expected a CSV error, got {other:?}"),
            }
        }
    }
}
