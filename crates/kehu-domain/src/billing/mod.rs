//! Electricity billing and collections: supply accounts, meters, tariffs (flat,
//! time-of-use, tiered residential 阶梯电价), meter-read review (VEE) and estimation,
//! bills, payment allocation, late-payment penalties, ageing, the dunning ladder with its
//! legal gates, and rule-based credit grades.
//!
//! Everything here is pure: no database, no clock. Callers pass `today`/`now`. Every
//! number a regulation or a contract sets lives in [`BillingRules`] with its default and
//! source (see `docs/billing.md`).

pub mod account;
pub mod ageing;
pub mod allocation;
pub mod bill;
pub mod credit;
pub mod dunning;
pub mod penalty;
pub mod prepaid;
pub mod tariff;
pub mod vee;

pub use account::{CustomerClass, Meter, SupplyAccount};
pub use ageing::{AgeingBucket, AgeingTotals};
pub use allocation::{allocate, Allocation, AllocationOrder, OpenBill, PaymentResult};
pub use bill::{bill_period, BillDraft, BillLine, Consumption, Period};
pub use credit::{credit_grade, CreditGrade, CreditInputs, CreditRules};
pub use dunning::{DunningRules, DunningStep, TimelineEvent};
pub use penalty::{penalty, PenaltyRates};
pub use prepaid::PrepaidRules;
pub use tariff::{PricePerKwh, Tariff, TariffError, Tier, TierPeriod};
pub use vee::{BandRegisters, BandUse, VeeFlag, VeeRules};

use serde::{Deserialize, Serialize};

/// Every configurable number of billing and collections, with documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingRules {
    /// Days from the end of a billing period to the due date. Set by the supply contract
    /// (供用电合同); default 15.
    pub due_days_after_period_end: u32,
    pub penalty: PenaltyRates,
    pub allocation_order: AllocationOrder,
    pub vee: VeeRules,
    pub dunning: DunningRules,
    pub credit: CreditRules,
    pub prepaid: PrepaidRules,
}

impl Default for BillingRules {
    fn default() -> Self {
        BillingRules {
            due_days_after_period_end: 15,
            penalty: PenaltyRates::default(),
            allocation_order: AllocationOrder::default(),
            vee: VeeRules::default(),
            dunning: DunningRules::default(),
            credit: CreditRules::default(),
            prepaid: PrepaidRules::default(),
        }
    }
}
