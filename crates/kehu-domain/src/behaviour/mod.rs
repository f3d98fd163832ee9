//! Behaviour: events as apps send them (`event`) and the state kept from them (`state`).

pub mod event;
pub mod state;
