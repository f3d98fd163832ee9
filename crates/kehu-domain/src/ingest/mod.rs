//! Ingest: turning a raw row (from CSV, JSON Lines or the API) into a valid domain record,
//! or into precise field errors. Pure: the reader and the store live elsewhere.

pub mod fields;
pub mod records;

pub use fields::{Column, FieldError, Fields, ParseContext};
pub use records::{EntityKind, Record};
