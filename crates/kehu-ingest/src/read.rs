//! Reading rows from files: encoding detection (UTF-8, GBK/GB18030), CSV and JSON Lines,
//! header mapping onto a format's columns.

use encoding_rs::{Encoding, GB18030, UTF_8};
use kehu_domain::ingest::Column;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" | "txt" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::JsonLines),
            _ => None,
        }
    }
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "jsonlines" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// Accepts `utf-8`, `gbk`, `gb18030`, `gb2312` (all GB variants decode as GB18030, their superset).
pub fn encoding_by_name(name: &str) -> Option<&'static Encoding> {
    match name.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Some(UTF_8),
        "gbk" | "gb18030" | "gb2312" | "cp936" => Some(GB18030),
        _ => None,
    }
}

/// What the first bytes of a file say about it.
pub enum Sniff {
    Text(&'static Encoding),
    Empty,
    Binary,
    Unknown,
}

/// Decides the encoding from a sample of the file's start: a UTF-8 BOM or valid UTF-8 is
/// UTF-8; otherwise text that decodes cleanly as GB18030 is GB18030.
pub fn sniff(sample: &[u8], at_eof: bool) -> Sniff {
    if sample.is_empty() || sample.iter().all(|b| b.is_ascii_whitespace()) {
        return Sniff::Empty;
    }
    if sample.contains(&0) {
        return Sniff::Binary;
    }
    let body = sample.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(sample);
    match std::str::from_utf8(body) {
        Ok(_) => return Sniff::Text(UTF_8),
        // A sample cut in the middle of a character is still UTF-8.
        Err(e) if e.error_len().is_none() && !at_eof => return Sniff::Text(UTF_8),
        Err(_) => {}
    }
    let mut dec = GB18030.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(body.len() * 2);
    let (res, _read) = dec.decode_to_string_without_replacement(body, &mut out, at_eof);
    match res {
        encoding_rs::DecoderResult::Malformed(_, _) => Sniff::Unknown,
        _ => Sniff::Text(GB18030),
    }
}

/// Counts the bytes read, for progress.
pub struct Counting<R> {
    inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R> Counting<R> {
    pub fn new(inner: R) -> Self {
        Counting {
            inner,
            count: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Maps a header row onto a format's columns: for each column, the index of its cell.
/// Refuses unknown, repeated and missing required columns, naming them.
pub fn map_header(header: &[&str], columns: &[Column]) -> Result<Vec<Option<usize>>, String> {
    let mut map = vec![None; columns.len()];
    let mut unknown = Vec::new();
    for (cell_i, cell) in header.iter().enumerate() {
        let h = cell.trim().trim_start_matches('\u{feff}');
        let found = columns.iter().position(|c| {
            c.name.eq_ignore_ascii_case(h) || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(h))
        });
        match found {
            Some(ci) if map[ci].is_some() => {
                return Err(format!(
                    "column {:?} appears twice (as {:?})",
                    columns[ci].name, h
                ));
            }
            Some(ci) => map[ci] = Some(cell_i),
            None => unknown.push(h.to_string()),
        }
    }
    let expected = || columns.iter().map(|c| c.name).collect::<Vec<_>>().join(",");
    if !unknown.is_empty() {
        return Err(format!(
            "unknown column(s) {unknown:?}; the columns of this format are: {}",
            expected()
        ));
    }
    let missing: Vec<&str> = columns
        .iter()
        .zip(&map)
        .filter(|(c, m)| c.required && m.is_none())
        .map(|(c, _)| c.name)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "required column(s) {missing:?} missing; the columns of this format are: {}",
            expected()
        ));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_utf8_gbk_binary_and_empty() {
        assert!(matches!(sniff("客户号,姓名\n".as_bytes(), true), Sniff::Text(e) if e == UTF_8));
        let (gbk, _, _) = GB18030.encode("客户号,姓名\nC1,张三\n");
        assert!(matches!(sniff(&gbk, true), Sniff::Text(e) if e == GB18030));
        assert!(matches!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0", true),
            Sniff::Binary
        ));
        assert!(matches!(sniff(b"  \n", true), Sniff::Empty));
        // Cut in the middle of a three-byte character: still UTF-8.
        let s = "张三".as_bytes();
        assert!(matches!(sniff(&s[..4], false), Sniff::Text(e) if e == UTF_8));
    }

    #[test]
    fn header_errors_name_the_columns() {
        use kehu_domain::ingest::Record;
        let cols = kehu_domain::state::Staff::COLUMNS;
        assert_eq!(
            map_header(&["工号", "name", "ROLE"], cols).unwrap(),
            vec![Some(0), Some(1), Some(2), None]
        );
        let e = map_header(&["external_id", "name", "role", "salary"], cols).unwrap_err();
        assert!(e.contains("\"salary\""), "{e}");
        let e = map_header(&["external_id", "name"], cols).unwrap_err();
        assert!(e.contains("[\"role\"]"), "{e}");
        let e = map_header(&["external_id", "工号", "role", "name"], cols).unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }
}
