//! Supply accounts and meters.

use crate::code_enum;
use crate::money::Fen;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

code_enum!(
    /// The customer class of a supply account. Important customers (重要用户: hospitals,
    /// mines, …) are non-residential for the penalty and need the extra report to the
    /// authority before a disconnection (供电营业规则 art. 67).
    CustomerClass {
        Residential = "residential", "居民", "residential",
        NonResidential = "non_residential", "非居民", "non-residential",
        Important = "important", "重要用户", "important customer",
    }
);

impl CustomerClass {
    /// Parses also the spelling with a hyphen (`non-residential`).
    pub fn parse_loose(s: &str) -> Option<CustomerClass> {
        CustomerClass::parse(&s.trim().replace('-', "_"))
    }

    pub fn is_residential(self) -> bool {
        self == CustomerClass::Residential
    }
}

/// A supply account (用电户). `external_id` is the supplier's account number (户号).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SupplyAccount {
    pub external_id: String,
    pub name: String,
    pub class: CustomerClass,
    /// Transformer area (台区) code.
    pub area: Option<String>,
    pub tariff: String,
    /// Contract daily penalty rate in parts per million (1‰ = 1000) when it differs from
    /// the configured default for the class.
    pub penalty_ppm: Option<u32>,
    /// Deposit or guarantee held (电费保证金 / 担保).
    pub deposit: Fen,
    pub prepaid: bool,
    pub opened_on: NaiveDate,
}

/// An electricity meter. Consumption billed = register difference × multiplier, where the
/// multiplier (倍率) is the CT ratio times the PT ratio.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Meter {
    pub external_id: String,
    pub account: String,
    pub ct_ratio: u32,
    pub pt_ratio: u32,
    /// The multiplier recorded for billing; should equal `ct_ratio * pt_ratio`.
    pub multiplier: u32,
    /// Digits of the register (whole kWh): a 6-digit register rolls over after 999,999.
    pub register_digits: u8,
    pub installed_on: NaiveDate,
    /// Contracted capacity (kVA); bounds the energy the meter can plausibly record.
    pub capacity_kva: u32,
    /// The meter is configured in prepaid mode (预付费状态).
    pub prepaid_mode: bool,
}

impl Meter {
    /// The register value after which the meter rolls over to zero (`10^digits`).
    pub fn register_modulus(&self) -> u64 {
        10u64.saturating_pow(u32::from(self.register_digits.clamp(1, 18)))
    }

    pub fn multiplier_consistent(&self) -> bool {
        u64::from(self.ct_ratio) * u64::from(self.pt_ratio) == u64::from(self.multiplier)
    }

    /// A prepaid account whose meter is not in prepaid mode: the seed's case of a card
    /// meter left in postpaid mode, so the customer used far more than was bought.
    pub fn prepaid_mode_mismatch(&self, account: &SupplyAccount) -> bool {
        account.prepaid && !self.prepaid_mode
    }
}
