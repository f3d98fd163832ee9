//! Export: the same formats the import reads, streamed page by page.

use crate::read::Format;
use kehu_domain::ingest::EntityKind;
use kehu_store::{Store, StoreError};
use std::io::Write;

/// Writes every row of `kind` to `out`; returns the number of rows.
pub async fn export<W: Write>(
    store: &Store,
    kind: EntityKind,
    format: Format,
    out: W,
) -> Result<u64, ExportError> {
    let cols: Vec<&str> = kind.columns().iter().map(|c| c.name).collect();
    let mut n = 0u64;
    let mut after = 0i64;
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&cols)?;
            loop {
                let (last, page) = store.export_page(kind, after, 5_000).await?;
                if page.is_empty() {
                    break;
                }
                for row in &page {
                    w.write_record(row)?;
                }
                n += page.len() as u64;
                after = last;
            }
            w.flush()?;
        }
        Format::JsonLines => {
            let mut w = std::io::BufWriter::new(out);
            loop {
                let (last, page) = store.export_page(kind, after, 5_000).await?;
                if page.is_empty() {
                    break;
                }
                for row in &page {
                    let obj: serde_json::Map<String, serde_json::Value> = cols
                        .iter()
                        .zip(row)
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(c, v)| (c.to_string(), serde_json::Value::String(v.clone())))
                        .collect();
                    serde_json::to_writer(&mut w, &obj).map_err(std::io::Error::other)?;
                    w.write_all(b"\n")?;
                }
                n += page.len() as u64;
                after = last;
            }
            w.flush()?;
        }
    }
    Ok(n)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the export failed: {0}")]
    Csv(#[from] csv::Error),
}
