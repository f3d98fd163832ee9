//! Ingest: streaming import of CSV / JSON Lines files into the store, export back to the
//! same formats, and the synthetic demo bank. Validation rules are the domain's
//! (`kehu_domain::ingest`); this crate reads bytes and moves batches.

pub mod billing_import;
pub mod demo;
pub mod demo_events;
pub mod demo_power;
pub mod export;
pub mod import;
pub mod read;

pub use import::{import_file, ImportError, ImportOptions, ImportReport, RowError};
