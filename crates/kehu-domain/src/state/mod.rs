//! State: what kehu knows about customers, staff, products, holdings and transactions.
//! Plain data; invariants are checked where records enter (see `ingest`).

pub mod customer;
pub mod holding;
pub mod product;
pub mod staff;
pub mod transaction;

pub use customer::*;
pub use holding::*;
pub use product::*;
pub use staff::*;
pub use transaction::*;
