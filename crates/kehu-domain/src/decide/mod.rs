//! Decide: suitability (who may buy what) and the next best product.

pub mod recommend;
pub mod suitability;
