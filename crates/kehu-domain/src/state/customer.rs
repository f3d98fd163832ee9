use crate::code_enum;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

code_enum!(Gender {
    Male = "M", "男", "male",
    Female = "F", "女", "female",
    Unknown = "U", "未知", "unknown",
});

code_enum!(
    /// Monthly income band (税前月收入).
    IncomeBand {
        Under5k = "lt5k", "5千以下", "under ¥5,000",
        From5kTo10k = "5k-10k", "5千-1万", "¥5,000–10,000",
        From10kTo20k = "10k-20k", "1万-2万", "¥10,000–20,000",
        From20kTo50k = "20k-50k", "2万-5万", "¥20,000–50,000",
        Over50k = "50k+", "5万以上", "over ¥50,000",
    }
);

impl IncomeBand {
    /// A representative monthly income for the band, in fen (used for ability-to-buy estimates).
    pub fn midpoint_fen(self) -> i64 {
        match self {
            IncomeBand::Under5k => 350_000,
            IncomeBand::From5kTo10k => 750_000,
            IncomeBand::From10kTo20k => 1_500_000,
            IncomeBand::From20kTo50k => 3_000_000,
            IncomeBand::Over50k => 8_000_000,
        }
    }
}

code_enum!(
    /// Customer tier by assets under management, as retail banks commonly grade them.
    VipTier {
        Standard = "standard", "普通", "standard",
        Gold = "gold", "金卡", "gold",
        Platinum = "platinum", "白金", "platinum",
        Diamond = "diamond", "钻石", "diamond",
        Private = "private", "私人银行", "private banking",
    }
);

/// A retail customer. `external_id` is the bank's customer number (客户号) and the key of
/// every import; `id` is kehu's internal key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customer {
    pub external_id: String,
    pub name: String,
    pub gender: Gender,
    pub birth_date: Option<NaiveDate>,
    pub phone: Option<String>,
    pub id_number: Option<String>,
    pub income_band: Option<IncomeBand>,
    pub occupation: Option<String>,
    pub branch: Option<String>,
    /// External id of the assigned customer manager (a staff member).
    pub manager_id: Option<String>,
    pub vip_tier: VipTier,
    /// Consent to marketing SMS (工信部令第31号: none without consent).
    pub consent_sms: bool,
    pub consent_push: bool,
    pub consent_call: bool,
    /// Personalized recommendations on (PIPL art. 24: the customer may switch them off).
    pub personalization: bool,
}

impl Customer {
    /// Age in whole years on `today`.
    pub fn age_on(&self, today: NaiveDate) -> Option<u32> {
        self.birth_date.and_then(|b| today.years_since(b))
    }
}
