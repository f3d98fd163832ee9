//! kehu's domain: plain data and pure rules. No database, no HTTP, no clock: callers pass
//! `today`/`now` in. Modules follow the data flow: `ingest` (rows → records),
//! `state` (what kehu knows), `behaviour` (events and the state kept from them),
//! `decide` (suitability, recommendation).

pub mod behaviour;
pub mod billing;
pub mod codes;
pub mod decide;
pub mod ingest;
pub mod mask;
pub mod money;
pub mod state;

pub use money::{Bp, Fen};
