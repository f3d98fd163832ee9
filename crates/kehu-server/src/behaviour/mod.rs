//! Behaviour over HTTP: the event collector and everything built on the behaviour
//! state (see docs/behaviour.md). `engine` holds the live state and its writer;
//! `http` the routes.

pub mod engine;
pub mod http;
pub mod profiles;

pub use engine::{rebuild, rebuild_until, BehaviourConfig, Engine, PROPENSITY_PURPOSE};
