//! Risk questionnaire and suitability (客户风险承受能力评估, 适当性管理).
//!
//! One rule, used by recommendation and by purchase alike (`check`): a customer assessed
//! at Cn may buy products at R1..Rn while the assessment is valid; without a valid
//! assessment nothing above `unassessed_max` (default R1: no risk product before an
//! assessment, 《商业银行理财业务监督管理办法》 2018 art. 26). Customers at or over
//! `elderly_age` buying above `elderly_confirm_above` need an extra confirmation, which
//! is recorded with the check.

use crate::code_enum;
use crate::state::RiskLevel;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

code_enum!(
    /// Customer risk tolerance C1 (lowest) … C5 (highest).
    RiskTolerance {
        C1 = "C1", "保守型", "conservative",
        C2 = "C2", "稳健型", "moderately conservative",
        C3 = "C3", "平衡型", "balanced",
        C4 = "C4", "成长型", "growth",
        C5 = "C5", "进取型", "aggressive",
    }
);

impl RiskTolerance {
    pub fn rank(self) -> u8 {
        self as u8 + 1
    }
    pub fn from_rank(r: u8) -> Option<RiskTolerance> {
        RiskTolerance::ALL.get((r as usize).checked_sub(1)?).copied()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuestionOption {
    /// Option key as the app sends it: "A", "B", …
    pub key: String,
    pub text_zh: String,
    pub text_en: String,
    pub score: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Question {
    /// Question id: "Q1", "Q2", …
    pub id: String,
    pub text_zh: String,
    pub text_en: String,
    pub options: Vec<QuestionOption>,
}

/// A band of total scores mapped to a level, with the bank's label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Band {
    /// Lowest total score of the band (inclusive).
    pub min_score: u32,
    pub level: RiskTolerance,
    pub label_zh: String,
    pub label_en: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Questionnaire {
    pub version: String,
    pub title_zh: String,
    pub title_en: String,
    pub questions: Vec<Question>,
    /// Bands by ascending `min_score`; the first starts at 0.
    pub bands: Vec<Band>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("question {0} is not answered")]
    Missing(String),
    #[error("question {question} has no option {option:?}; options are {options}")]
    NoSuchOption {
        question: String,
        option: String,
        options: String,
    },
    #[error("question {0} does not exist in this questionnaire")]
    NoSuchQuestion(String),
    #[error("question {0} is answered twice")]
    Twice(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuestionnaireError {
    #[error("the questionnaire has no questions")]
    Empty,
    #[error("bands must start at 0 and rise strictly, one per level C1..C5 in order")]
    Bands,
    #[error("question {0}: at least two options with distinct keys are needed")]
    Options(String),
    #[error("question id {0} is used twice")]
    DuplicateQuestion(String),
}

/// The outcome of answering the questionnaire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scored {
    pub score: u32,
    pub level: RiskTolerance,
    pub label_zh: String,
    pub label_en: String,
}

impl Questionnaire {
    pub fn check(&self) -> Result<(), QuestionnaireError> {
        if self.questions.is_empty() {
            return Err(QuestionnaireError::Empty);
        }
        let mut ids = std::collections::HashSet::new();
        for q in &self.questions {
            if !ids.insert(&q.id) {
                return Err(QuestionnaireError::DuplicateQuestion(q.id.clone()));
            }
            let keys: std::collections::HashSet<_> = q.options.iter().map(|o| &o.key).collect();
            if q.options.len() < 2 || keys.len() != q.options.len() {
                return Err(QuestionnaireError::Options(q.id.clone()));
            }
        }
        let ok = self.bands.len() == 5
            && self.bands[0].min_score == 0
            && self.bands.windows(2).all(|w| w[0].min_score < w[1].min_score)
            && self
                .bands
                .iter()
                .enumerate()
                .all(|(i, b)| b.level.rank() as usize == i + 1);
        if !ok {
            return Err(QuestionnaireError::Bands);
        }
        Ok(())
    }

    /// Scores a complete set of answers (question id → option key). Every question must be
    /// answered exactly once with one of its options.
    pub fn score(&self, answers: &[(String, String)]) -> Result<Scored, AnswerError> {
        let mut seen = std::collections::HashSet::new();
        for (q, _) in answers {
            if !self.questions.iter().any(|x| &x.id == q) {
                return Err(AnswerError::NoSuchQuestion(q.clone()));
            }
            if !seen.insert(q) {
                return Err(AnswerError::Twice(q.clone()));
            }
        }
        let mut total = 0;
        for q in &self.questions {
            let (_, key) = answers
                .iter()
                .find(|(id, _)| id == &q.id)
                .ok_or_else(|| AnswerError::Missing(q.id.clone()))?;
            let opt = q
                .options
                .iter()
                .find(|o| o.key.eq_ignore_ascii_case(key.trim()))
                .ok_or_else(|| AnswerError::NoSuchOption {
                    question: q.id.clone(),
                    option: key.clone(),
                    options: q.options.iter().map(|o| o.key.as_str()).collect::<Vec<_>>().join("|"),
                })?;
            total += opt.score;
        }
        let band = self
            .bands
            .iter()
            .rev()
            .find(|b| total >= b.min_score)
            .unwrap_or(&self.bands[0]);
        Ok(Scored {
            score: total,
            level: band.level,
            label_zh: band.label_zh.clone(),
            label_en: band.label_en.clone(),
        })
    }

    /// The default questionnaire: ten questions, answers scored 2/4/6/8/10 (a common bank
    /// form), total 20–100, banded 0–36 C1, 37–52 C2, 53–68 C3, 69–84 C4, 85+ C5.
    pub fn default_zh() -> Questionnaire {
        let q = |id: &str, zh: &str, en: &str, opts: [(&str, &str); 5]| Question {
            id: id.into(),
            text_zh: zh.into(),
            text_en: en.into(),
            options: opts
                .iter()
                .enumerate()
                .map(|(i, (z, e))| QuestionOption {
                    key: ((b'A' + i as u8) as char).to_string(),
                    text_zh: (*z).into(),
                    text_en: (*e).into(),
                    score: 2 * (i as u32 + 1),
                })
                .collect(),
        };
        let questions = vec![
            q("Q1", "您的年龄是？", "Your age?", [
                ("65岁以上", "over 65"), ("56–65岁", "56–65"), ("46–55岁", "46–55"),
                ("36–45岁", "36–45"), ("18–35岁", "18–35")]),
            q("Q2", "您的家庭年收入是？", "Your household's yearly income?", [
                ("5万元以下", "under ¥50,000"), ("5万–10万元", "¥50,000–100,000"),
                ("10万–30万元", "¥100,000–300,000"), ("30万–100万元", "¥300,000–1 million"),
                ("100万元以上", "over ¥1 million")]),
            q("Q3", "可用于投资的资产占家庭总资产的比例？", "Share of household assets available for investment?", [
                ("10%以下", "under 10%"), ("10%–25%", "10–25%"), ("25%–50%", "25–50%"),
                ("50%–75%", "50–75%"), ("75%以上", "over 75%")]),
            q("Q4", "您的投资经验有多少年？", "Years of investment experience?", [
                ("没有经验", "none"), ("1年以内", "under 1 year"), ("1–3年", "1–3 years"),
                ("3–5年", "3–5 years"), ("5年以上", "over 5 years")]),
            q("Q5", "您投资过哪些产品？", "Which products have you invested in?", [
                ("仅存款", "deposits only"), ("国债、货币基金", "government bonds, money-market funds"),
                ("债券基金、银行理财", "bond funds, bank wealth products"),
                ("股票、混合基金", "shares, mixed funds"), ("期货、衍生品", "futures, derivatives")]),
            q("Q6", "您计划的投资期限是？", "Planned investment horizon?", [
                ("3个月以内", "under 3 months"), ("3个月–1年", "3 months – 1 year"),
                ("1–3年", "1–3 years"), ("3–5年", "3–5 years"), ("5年以上", "over 5 years")]),
            q("Q7", "您的投资目的是？", "Your investment goal?", [
                ("保本，资产不受损失", "keep the capital intact"), ("获得稳定收益", "steady income"),
                ("稳健增值", "moderate growth"), ("较高收益", "high returns"),
                ("追求最大收益", "maximum returns")]),
            q("Q8", "您能承受的最大亏损是？", "Largest loss you could bear?", [
                ("不能承受亏损", "no loss"), ("5%以内", "up to 5%"), ("5%–15%", "5–15%"),
                ("15%–30%", "15–30%"), ("30%以上", "over 30%")]),
            q("Q9", "投资下跌20%时您会？", "If your investment fell 20%, you would…", [
                ("全部卖出", "sell everything"), ("卖出大部分", "sell most"),
                ("继续持有", "hold"), ("少量加仓", "buy a little more"),
                ("大量加仓", "buy a lot more")]),
            q("Q10", "您对金融产品的了解程度？", "Your knowledge of financial products?", [
                ("完全不了解", "none"), ("了解很少", "a little"), ("一般了解", "some"),
                ("比较了解", "good"), ("非常了解", "expert")]),
        ];
        let band = |min: u32, level: RiskTolerance| Band {
            min_score: min,
            level,
            label_zh: level.label_zh().into(),
            label_en: level.label_en().into(),
        };
        Questionnaire {
            version: "default-2026".into(),
            title_zh: "个人客户风险承受能力评估问卷".into(),
            title_en: "Personal risk tolerance questionnaire".into(),
            questions,
            bands: vec![
                band(0, RiskTolerance::C1),
                band(37, RiskTolerance::C2),
                band(53, RiskTolerance::C3),
                band(69, RiskTolerance::C4),
                band(85, RiskTolerance::C5),
            ],
        }
    }
}

/// Suitability configuration; defaults and sources in `docs/configuration.md`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuitabilityConfig {
    /// Days an assessment stays valid (default 365: one year).
    pub validity_days: i64,
    /// The highest product level open to a customer without a valid assessment.
    pub unassessed_max: RiskLevel,
    /// Age from which the elderly-customer rule applies (default 65).
    pub elderly_age: u32,
    /// Products above this level need the elderly customer's extra confirmation.
    pub elderly_confirm_above: RiskLevel,
}

impl Default for SuitabilityConfig {
    fn default() -> Self {
        SuitabilityConfig {
            validity_days: 365,
            unassessed_max: RiskLevel::R1,
            elderly_age: 65,
            elderly_confirm_above: RiskLevel::R2,
        }
    }
}

/// A customer's current assessment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assessment {
    pub level: RiskTolerance,
    pub assessed_on: NaiveDate,
}

impl Assessment {
    pub fn valid_until(&self, cfg: &SuitabilityConfig) -> NaiveDate {
        self.assessed_on + chrono::Days::new(cfg.validity_days.max(0) as u64)
    }
    pub fn valid_on(&self, cfg: &SuitabilityConfig, day: NaiveDate) -> bool {
        day < self.valid_until(cfg)
    }
}

/// Why a purchase or an offer is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No assessment on record and the product is above `unassessed_max`.
    NotAssessed,
    /// The assessment has expired: re-assessment needed.
    AssessmentExpired,
    /// The product's level is above the customer's.
    AboveLevel,
    /// An elderly customer has not given the extra confirmation.
    ElderlyConfirmationMissing,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NotAssessed => "not_assessed",
            Refusal::AssessmentExpired => "assessment_expired",
            Refusal::AboveLevel => "above_level",
            Refusal::ElderlyConfirmationMissing => "elderly_confirmation_missing",
        }
    }
}

/// The result of the one suitability rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    pub allowed: bool,
    pub refusal: Option<Refusal>,
    /// The customer's level if a valid assessment exists.
    pub level: Option<RiskTolerance>,
    pub product_level: RiskLevel,
    /// The elderly rule applies to this purchase.
    pub elderly_rule: bool,
    pub reason_zh: String,
    pub reason_en: String,
}

/// The suitability rule alone (no wording): `None` when the customer may buy.
/// `elderly_confirmed` is the customer's extra confirmation (only asked at purchase; a
/// recommendation passes `true` since it sells nothing).
pub fn refusal(
    cfg: &SuitabilityConfig,
    assessment: Option<Assessment>,
    age: Option<u32>,
    product: RiskLevel,
    today: NaiveDate,
    elderly_confirmed: bool,
) -> Option<Refusal> {
    let valid = assessment.filter(|a| a.valid_on(cfg, today));
    match valid {
        None if product.rank() > cfg.unassessed_max.rank() => {
            return Some(if assessment.is_some() {
                Refusal::AssessmentExpired
            } else {
                Refusal::NotAssessed
            })
        }
        Some(a) if product.rank() > a.level.rank() => return Some(Refusal::AboveLevel),
        _ => {}
    }
    let elderly = age.is_some_and(|a| a >= cfg.elderly_age)
        && product.rank() > cfg.elderly_confirm_above.rank();
    (elderly && !elderly_confirmed).then_some(Refusal::ElderlyConfirmationMissing)
}

/// The suitability rule with its reasons in both languages, as recorded and shown.
pub fn check(
    cfg: &SuitabilityConfig,
    assessment: Option<Assessment>,
    age: Option<u32>,
    product: RiskLevel,
    today: NaiveDate,
    elderly_confirmed: bool,
) -> Check {
    let valid = assessment.filter(|a| a.valid_on(cfg, today));
    let elderly_rule =
        age.is_some_and(|a| a >= cfg.elderly_age) && product.rank() > cfg.elderly_confirm_above.rank();
    let refused = refusal(cfg, assessment, age, product, today, elderly_confirmed);
    let (zh, en) = match (refused, valid, assessment) {
        (Some(Refusal::AssessmentExpired), _, Some(a)) => (
            format!("风险评估已于{}过期，请重新评估后购买{}产品", a.valid_until(cfg), product.code()),
            format!(
                "the risk assessment expired on {}; re-assess before buying an {} product",
                a.valid_until(cfg),
                product.code()
            ),
        ),
        (Some(Refusal::AssessmentExpired | Refusal::NotAssessed), _, _) => (
            format!("尚未进行风险评估，不能购买{}产品", product.code()),
            format!("no risk assessment yet: an {} product cannot be bought", product.code()),
        ),
        (Some(Refusal::AboveLevel), Some(a), _) => (
            format!(
                "产品风险等级{}高于您的风险承受能力{}（{}），只能购买R1–R{}",
                product.code(),
                a.level.code(),
                a.level.label_zh(),
                a.level.rank()
            ),
            format!(
                "product level {} is above your risk tolerance {} ({}): R1–R{} only",
                product.code(),
                a.level.code(),
                a.level.label_en(),
                a.level.rank()
            ),
        ),
        (Some(_), _, _) => (
            format!(
                "{}岁及以上客户购买{}以上产品需再次确认",
                cfg.elderly_age,
                cfg.elderly_confirm_above.code()
            ),
            format!(
                "customers aged {} or more need to confirm again for products above {}",
                cfg.elderly_age,
                cfg.elderly_confirm_above.code()
            ),
        ),
        (None, Some(a), _) => (
            format!("符合您的风险等级{}（产品{}）", a.level.code(), product.code()),
            format!("matches your risk level {} (product {})", a.level.code(), product.code()),
        ),
        (None, None, _) => (
            format!("{}产品无需风险评估", product.code()),
            format!("an {} product needs no assessment", product.code()),
        ),
    };
    Check {
        allowed: refused.is_none(),
        refusal: refused,
        level: valid.map(|a| a.level),
        product_level: product,
        elderly_rule,
        reason_zh: zh,
        reason_en: en,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_questionnaire_is_well_formed_and_bands_as_documented() {
        let q = Questionnaire::default_zh();
        q.check().unwrap();
        assert!(q.questions.len() >= 10);
        let all = |k: &str| -> Vec<(String, String)> {
            q.questions.iter().map(|x| (x.id.clone(), k.to_string())).collect()
        };
        assert_eq!(q.score(&all("A")).unwrap().level, RiskTolerance::C1);
        assert_eq!(q.score(&all("A")).unwrap().score, 20);
        assert_eq!(q.score(&all("C")).unwrap().level, RiskTolerance::C3);
        assert_eq!(q.score(&all("E")).unwrap().level, RiskTolerance::C5);
        assert_eq!(q.score(&all("E")).unwrap().label_zh, "进取型");
    }

    #[test]
    fn bad_answers_name_the_question() {
        let q = Questionnaire::default_zh();
        let mut a: Vec<(String, String)> =
            q.questions.iter().map(|x| (x.id.clone(), "B".to_string())).collect();
        a.remove(3);
        assert_eq!(q.score(&a), Err(AnswerError::Missing("Q4".into())));
        a.insert(3, ("Q4".into(), "Z".into()));
        assert!(matches!(q.score(&a), Err(AnswerError::NoSuchOption { question, .. }) if question == "Q4"));
        a[3].1 = "b".into();
        a.push(("Q99".into(), "A".into()));
        assert_eq!(q.score(&a), Err(AnswerError::NoSuchQuestion("Q99".into())));
        a.pop();
        a.push(("Q1".into(), "A".into()));
        assert_eq!(q.score(&a), Err(AnswerError::Twice("Q1".into())));
    }

    #[test]
    fn expiry_elderly_and_unassessed() {
        let cfg = SuitabilityConfig::default();
        let a = Assessment { level: RiskTolerance::C3, assessed_on: d("2025-11-28") };
        assert!(check(&cfg, Some(a), Some(40), RiskLevel::R3, d("2026-11-27"), false).allowed);
        let c = check(&cfg, Some(a), Some(40), RiskLevel::R3, d("2026-11-28"), false);
        assert_eq!(c.refusal, Some(Refusal::AssessmentExpired));
        assert!(check(&cfg, Some(a), Some(40), RiskLevel::R1, d("2027-01-01"), false).allowed);
        assert_eq!(check(&cfg, None, None, RiskLevel::R2, d("2026-01-01"), true).refusal, Some(Refusal::NotAssessed));
        let old = check(&cfg, Some(a), Some(70), RiskLevel::R3, d("2026-01-01"), false);
        assert_eq!(old.refusal, Some(Refusal::ElderlyConfirmationMissing));
        assert!(old.elderly_rule);
        assert!(check(&cfg, Some(a), Some(70), RiskLevel::R3, d("2026-01-01"), true).allowed);
        assert!(check(&cfg, Some(a), Some(70), RiskLevel::R2, d("2026-01-01"), false).allowed);
        let above = check(&cfg, Some(a), Some(40), RiskLevel::R4, d("2026-01-01"), true);
        assert_eq!(above.refusal, Some(Refusal::AboveLevel));
        assert!(above.reason_zh.contains("R4") && above.reason_zh.contains("C3"));
    }

    proptest! {
        /// Cn may buy R1..Rn and nothing above, whatever else holds.
        #[test]
        fn never_above_the_customer_level(c in 1u8..=5, r in 1u8..=5, age in 18u32..100,
                                          days in 0i64..800, confirmed in any::<bool>()) {
            let cfg = SuitabilityConfig::default();
            let level = RiskTolerance::from_rank(c).unwrap();
            let product = RiskLevel::ALL[(r - 1) as usize];
            let a = Assessment { level, assessed_on: d("2025-01-01") };
            let today = d("2025-01-01") + chrono::Days::new(days as u64);
            let res = check(&cfg, Some(a), Some(age), product, today, confirmed);
            if res.allowed {
                prop_assert!(r <= 1 || (r <= c && a.valid_on(&cfg, today)));
            }
            if r > c { prop_assert!(!res.allowed); }
        }
    }
}
