//! The demo bank: a synthetic, deterministic (by seed) retail bank — staff, a product shelf,
//! customers with plausible age, gender, income and occupation, holdings and twelve months
//! of transactions with habits (monthly salary, spending by category). Every customer is
//! generated from its own index and the seed, so the bank streams: holdings and
//! transactions are produced in later passes without keeping customers in memory.

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use kehu_domain::ingest::fields::id_check_char;
use kehu_domain::money::{Bp, Fen};
use kehu_domain::state::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How big and which bank.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub customers: u64,
    pub seed: u64,
    /// The last day of the twelve months of history.
    pub today: NaiveDate,
    /// Average spending transactions per customer and month (salary comes on top).
    pub spend_per_month: u32,
    pub offset: FixedOffset,
}

impl DemoSpec {
    pub fn new(customers: u64, seed: u64, today: NaiveDate) -> Self {
        DemoSpec {
            customers,
            seed,
            today,
            spend_per_month: 1,
            offset: FixedOffset::east_opt(8 * 3600).expect("UTC+8"),
        }
    }

    pub fn branches(&self) -> u64 {
        (self.customers / 20_000).clamp(3, 200)
    }

    /// Customer managers per branch.
    pub fn managers_per_branch(&self) -> u64 {
        (self.customers / self.branches() / 2_000).clamp(2, 50)
    }
}

const SURNAMES: &[(&str, u32)] = &[
    ("王", 72),
    ("李", 71),
    ("张", 68),
    ("刘", 54),
    ("陈", 47),
    ("杨", 32),
    ("黄", 24),
    ("赵", 22),
    ("吴", 20),
    ("周", 19),
    ("徐", 15),
    ("孙", 14),
    ("马", 13),
    ("朱", 12),
    ("胡", 12),
    ("郭", 11),
    ("何", 11),
    ("林", 10),
    ("高", 10),
    ("罗", 9),
    ("郑", 9),
    ("梁", 8),
    ("谢", 7),
    ("宋", 6),
    ("唐", 6),
    ("许", 6),
    ("韩", 5),
    ("冯", 5),
    ("邓", 5),
    ("曹", 5),
    ("彭", 5),
    ("曾", 4),
    ("肖", 4),
    ("田", 4),
    ("董", 4),
    ("潘", 3),
    ("袁", 3),
    ("蔡", 3),
    ("蒋", 3),
    ("余", 3),
    ("于", 3),
    ("杜", 3),
    ("叶", 3),
    ("程", 3),
    ("魏", 3),
    ("苏", 3),
    ("吕", 3),
    ("丁", 3),
    ("任", 2),
    ("卢", 2),
    ("姚", 2),
    ("沈", 2),
    ("钟", 2),
    ("姜", 2),
    ("崔", 2),
    ("谭", 2),
    ("陆", 2),
    ("范", 2),
    ("欧阳", 1),
    ("司马", 1),
    ("上官", 1),
];
const GIVEN_M: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林", "阳", "建国",
    "志强", "文博", "子轩", "浩然", "宇航", "俊杰", "振华", "国栋", "海涛",
];
const GIVEN_F: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀英", "玲", "桂英", "丹", "萍", "红", "玉兰",
    "燕", "琳", "婷", "雪", "慧", "颖", "倩", "欣怡", "梓涵", "诗涵", "思琪", "雨欣", "佳怡",
    "晓燕", "海燕", "春梅", "淑珍",
];
const REGIONS: &[&str] = &[
    "110105", "110108", "310104", "310115", "440305", "440106", "330106", "320102", "510107",
    "420106", "610113", "370202", "120101", "500103", "430104", "350203",
];
/// (occupation, weight, income band weights lt5k..50k+)
const OCCUPATIONS: &[(&str, u32, [u32; 5])] = &[
    ("企业职员", 30, [20, 45, 25, 8, 2]),
    ("工程师", 10, [3, 25, 45, 22, 5]),
    ("教师", 6, [8, 50, 35, 6, 1]),
    ("医生", 4, [3, 25, 42, 25, 5]),
    ("公务员", 6, [5, 45, 40, 9, 1]),
    ("个体工商户", 10, [15, 35, 28, 15, 7]),
    ("企业主", 3, [2, 10, 25, 33, 30]),
    ("自由职业", 7, [30, 35, 22, 10, 3]),
    ("农民", 6, [60, 32, 7, 1, 0]),
    ("金融从业者", 3, [2, 15, 40, 30, 13]),
];

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| *w).sum();
    let mut x = rng.gen_range(0..total);
    for (t, w) in items {
        if x < *w {
            return t;
        }
        x -= *w;
    }
    &items[items.len() - 1].0
}

fn weighted_index(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= *w;
    }
    weights.len() - 1
}

/// A log-normal-ish multiplier with median 1 (product of uniforms; cheap and bounded).
fn spread(rng: &mut ChaCha8Rng, sigma: f64) -> f64 {
    let z: f64 = (0..4).map(|_| rng.gen::<f64>()).sum::<f64>() - 2.0; // ~N(0, 1/3)
    (z * sigma * 1.732).exp()
}

fn rng_for(seed: u64, index: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.set_stream(stream);
    r
}

/// The staff of the demo bank: per branch a head, customer managers, a service agent and
/// a collector; at head office an administrator, marketers and analysts.
pub fn staff(spec: &DemoSpec) -> Vec<Staff> {
    let mut rng = rng_for(spec.seed, u64::MAX, 9);
    let mut out = Vec::new();
    let mut person = |rng: &mut ChaCha8Rng, id: String, role: Role, branch: Option<String>| {
        let surname = *pick(rng, SURNAMES);
        let given = if rng.gen_bool(0.5) {
            GIVEN_M[rng.gen_range(0..GIVEN_M.len())]
        } else {
            GIVEN_F[rng.gen_range(0..GIVEN_F.len())]
        };
        out.push(Staff {
            external_id: id,
            name: format!("{surname}{given}"),
            role,
            branch,
        });
    };
    person(&mut rng, "S0001".into(), Role::Admin, None);
    for k in 1..=3 {
        person(&mut rng, format!("S00{}", 10 + k), Role::Marketer, None);
        person(&mut rng, format!("S00{}", 20 + k), Role::Analyst, None);
    }
    for b in 1..=spec.branches() {
        let br = branch_code(b);
        person(
            &mut rng,
            format!("S{b:03}H"),
            Role::BranchHead,
            Some(br.clone()),
        );
        for m in 1..=spec.managers_per_branch() {
            person(
                &mut rng,
                manager_code(b, m),
                Role::CustomerManager,
                Some(br.clone()),
            );
        }
        person(
            &mut rng,
            format!("S{b:03}A"),
            Role::ServiceAgent,
            Some(br.clone()),
        );
        person(
            &mut rng,
            format!("S{b:03}C"),
            Role::Collector,
            Some(br.clone()),
        );
    }
    out
}

fn branch_code(b: u64) -> String {
    format!("B{b:03}")
}

fn manager_code(b: u64, m: u64) -> String {
    format!("S{b:03}M{m:02}")
}

/// The product shelf: deposits, wealth products R1–R5, funds, insurance, cards, loans.
pub fn products(today: NaiveDate) -> Vec<Product> {
    let d = |days: i64| Some(today + Duration::days(days));
    #[allow(clippy::type_complexity)]
    let rows: &[(
        &str,
        &str,
        ProductKind,
        RiskLevel,
        i64,
        Option<i32>,
        Option<i32>,
        Option<i64>,
        Option<i64>,
        bool,
    )] = &[
        (
            "DEP-CUR",
            "活期储蓄",
            ProductKind::Deposit,
            RiskLevel::R1,
            0,
            None,
            Some(20),
            None,
            None,
            true,
        ),
        (
            "DEP-3M",
            "整存整取3个月",
            ProductKind::Deposit,
            RiskLevel::R1,
            50,
            Some(90),
            Some(105),
            None,
            None,
            true,
        ),
        (
            "DEP-1Y",
            "整存整取1年",
            ProductKind::Deposit,
            RiskLevel::R1,
            50,
            Some(365),
            Some(135),
            None,
            None,
            true,
        ),
        (
            "DEP-3Y",
            "整存整取3年",
            ProductKind::Deposit,
            RiskLevel::R1,
            50,
            Some(1095),
            Some(175),
            None,
            None,
            true,
        ),
        (
            "DEP-CD3Y",
            "大额存单3年期",
            ProductKind::Deposit,
            RiskLevel::R1,
            200_000,
            Some(1095),
            Some(215),
            Some(-30),
            Some(60),
            false,
        ),
        (
            "WM-CASH",
            "天天利现金管理",
            ProductKind::Wealth,
            RiskLevel::R1,
            1,
            None,
            Some(185),
            None,
            None,
            true,
        ),
        (
            "WM-R2-90",
            "安盈90天持有期",
            ProductKind::Wealth,
            RiskLevel::R2,
            10_000,
            Some(90),
            Some(260),
            None,
            None,
            true,
        ),
        (
            "WM-R2-180",
            "稳享半年定开",
            ProductKind::Wealth,
            RiskLevel::R2,
            10_000,
            Some(180),
            Some(285),
            Some(-10),
            Some(20),
            false,
        ),
        (
            "WM-R3-1Y",
            "睿远一年持有",
            ProductKind::Wealth,
            RiskLevel::R3,
            10_000,
            Some(365),
            Some(340),
            None,
            None,
            true,
        ),
        (
            "WM-R3-2Y",
            "鑫享两年封闭",
            ProductKind::Wealth,
            RiskLevel::R3,
            50_000,
            Some(730),
            Some(380),
            Some(-5),
            Some(10),
            false,
        ),
        (
            "WM-R4-EQ",
            "权益增强一年",
            ProductKind::Wealth,
            RiskLevel::R4,
            50_000,
            Some(365),
            Some(450),
            None,
            None,
            true,
        ),
        (
            "WM-R5-PE",
            "私募股权优选",
            ProductKind::Wealth,
            RiskLevel::R5,
            1_000_000,
            Some(1095),
            Some(800),
            Some(-20),
            Some(40),
            false,
        ),
        (
            "FD-MMF",
            "货币市场基金A",
            ProductKind::Fund,
            RiskLevel::R1,
            1,
            None,
            Some(170),
            None,
            None,
            true,
        ),
        (
            "FD-BOND",
            "纯债债券基金",
            ProductKind::Fund,
            RiskLevel::R2,
            10,
            None,
            Some(310),
            None,
            None,
            true,
        ),
        (
            "FD-MIX",
            "均衡混合基金",
            ProductKind::Fund,
            RiskLevel::R3,
            10,
            None,
            None,
            None,
            None,
            true,
        ),
        (
            "FD-HS300",
            "沪深300指数基金",
            ProductKind::Fund,
            RiskLevel::R4,
            10,
            None,
            None,
            None,
            None,
            true,
        ),
        (
            "FD-GROWTH",
            "成长精选股票基金",
            ProductKind::Fund,
            RiskLevel::R4,
            10,
            None,
            None,
            None,
            None,
            true,
        ),
        (
            "FD-QDII",
            "全球科技QDII基金",
            ProductKind::Fund,
            RiskLevel::R5,
            10,
            None,
            None,
            None,
            None,
            true,
        ),
        (
            "INS-ANN",
            "金福年金保险",
            ProductKind::Insurance,
            RiskLevel::R1,
            10_000,
            Some(3650),
            Some(250),
            None,
            None,
            false,
        ),
        (
            "INS-CI",
            "安康重大疾病保险",
            ProductKind::Insurance,
            RiskLevel::R1,
            3_000,
            Some(7300),
            None,
            None,
            None,
            false,
        ),
        (
            "INS-ULI",
            "万能型两全保险",
            ProductKind::Insurance,
            RiskLevel::R2,
            20_000,
            Some(1825),
            Some(300),
            None,
            None,
            false,
        ),
        (
            "CARD-STD",
            "标准信用卡",
            ProductKind::Card,
            RiskLevel::R1,
            0,
            None,
            None,
            None,
            None,
            false,
        ),
        (
            "CARD-GOLD",
            "白金信用卡",
            ProductKind::Card,
            RiskLevel::R1,
            0,
            None,
            None,
            None,
            None,
            false,
        ),
        (
            "CARD-TRAVEL",
            "出行联名信用卡",
            ProductKind::Card,
            RiskLevel::R1,
            0,
            None,
            None,
            None,
            None,
            false,
        ),
        (
            "LN-CONS",
            "个人消费贷",
            ProductKind::Loan,
            RiskLevel::R1,
            10_000,
            Some(1095),
            Some(385),
            None,
            None,
            true,
        ),
        (
            "LN-MORT",
            "个人住房贷款",
            ProductKind::Loan,
            RiskLevel::R1,
            100_000,
            Some(10950),
            Some(310),
            None,
            None,
            false,
        ),
        (
            "LN-BIZ",
            "小微经营贷",
            ProductKind::Loan,
            RiskLevel::R1,
            50_000,
            Some(1095),
            Some(420),
            None,
            None,
            true,
        ),
    ];
    rows.iter()
        .map(
            |&(code, name, kind, risk, min_yuan, term, bp, start, end, rep)| Product {
                code: code.into(),
                name: name.into(),
                kind,
                risk_level: risk,
                min_purchase: Fen::from_yuan(min_yuan),
                term_days: term,
                expected_yield: bp.map(Bp),
                sale_start: start.and_then(d),
                sale_end: end.and_then(d),
                repeatable: rep,
            },
        )
        .collect()
}

/// What the later passes need to know of a customer.
struct Profile {
    customer: Customer,
    age: u32,
    income_fen: i64,
    employed: bool,
    retired: bool,
    /// Financial assets, in fen.
    assets: i64,
    risk_appetite: u8,
    has_loan: bool,
}

fn profile(spec: &DemoSpec, i: u64) -> Profile {
    let mut rng = rng_for(spec.seed, i, 1);
    let age_bucket = weighted_index(&mut rng, &[12, 22, 20, 18, 15, 13]);
    let (lo, hi) = [(18, 25), (26, 35), (36, 45), (46, 55), (56, 65), (66, 85)][age_bucket];
    let age: u32 = rng.gen_range(lo..=hi);
    let male = rng.gen_bool(0.51);
    let surname = *pick(&mut rng, SURNAMES);
    let given = if male {
        GIVEN_M[rng.gen_range(0..GIVEN_M.len())]
    } else {
        GIVEN_F[rng.gen_range(0..GIVEN_F.len())]
    };
    let retired = age >= 60 && rng.gen_bool(0.85);
    let student = age <= 22 && rng.gen_bool(0.6);
    let (occupation, band) = if retired {
        ("退休", weighted_index(&mut rng, &[45, 40, 12, 3, 0]))
    } else if student {
        ("学生", weighted_index(&mut rng, &[95, 5, 0, 0, 0]))
    } else {
        let occ_weights: Vec<u32> = OCCUPATIONS.iter().map(|o| o.1).collect();
        let o = &OCCUPATIONS[weighted_index(&mut rng, &occ_weights)];
        (o.0, weighted_index(&mut rng, &o.2))
    };
    let income_band = IncomeBand::ALL[band];
    let income_fen = (income_band.midpoint_fen() as f64 * spread(&mut rng, 0.25)) as i64;
    let years = rng.gen_range(0..=28u32);
    let birth =
        spec.today - Duration::days(i64::from(age) * 365 + i64::from(rng.gen_range(0..365u32)));
    let region = REGIONS[rng.gen_range(0..REGIONS.len())];
    let seq: u32 = rng.gen_range(0..500) * 2 + u32::from(male);
    let first17 = format!("{region}{}{seq:03}", birth.format("%Y%m%d"));
    let id_number = format!("{first17}{}", id_check_char(&first17).unwrap_or('0'));
    let phone = format!(
        "1{}{:09}",
        [3, 5, 7, 8, 9][rng.gen_range(0..5)],
        rng.gen_range(0..1_000_000_000u64)
    );
    // Savings grow with income and age; a few customers are wealthy.
    let months_saved = 3.0 + f64::from(age.saturating_sub(20)) * 1.2 + f64::from(years) * 0.1;
    // A quarter of income is saved, and only part of it is kept at this bank.
    let share_here = rng.gen_range(0.1..0.6);
    let mut assets =
        (income_fen as f64 * months_saved * 0.25 * share_here * spread(&mut rng, 0.9)) as i64;
    if rng.gen_bool(0.01) {
        assets *= rng.gen_range(10..40);
    }
    let aum_yuan = assets / 100;
    let vip_tier = match aum_yuan {
        a if a >= 6_000_000 => VipTier::Private,
        a if a >= 2_000_000 => VipTier::Diamond,
        a if a >= 500_000 => VipTier::Platinum,
        a if a >= 50_000 => VipTier::Gold,
        _ => VipTier::Standard,
    };
    let b = 1 + rng.gen_range(0..spec.branches());
    let manager_id = (vip_tier >= VipTier::Gold || rng.gen_bool(0.05))
        .then(|| manager_code(b, 1 + rng.gen_range(0..spec.managers_per_branch())));
    let risk_appetite = match age {
        a if a < 30 => rng.gen_range(2..=5),
        a if a < 50 => rng.gen_range(2..=4),
        a if a < 65 => rng.gen_range(1..=3),
        _ => rng.gen_range(1..=2),
    };
    let has_loan = (25..=55).contains(&age) && rng.gen_bool(0.3);
    let customer = Customer {
        external_id: format!("C{:09}", i + 1),
        name: format!("{surname}{given}"),
        gender: if male { Gender::Male } else { Gender::Female },
        birth_date: Some(birth),
        phone: Some(phone),
        id_number: Some(id_number),
        income_band: Some(income_band),
        occupation: Some(occupation.into()),
        branch: Some(branch_code(b)),
        manager_id,
        vip_tier,
        consent_sms: rng.gen_bool(0.6),
        consent_push: rng.gen_bool(0.7),
        consent_call: rng.gen_bool(0.35),
        personalization: rng.gen_bool(0.95),
    };
    Profile {
        customer,
        age,
        income_fen,
        employed: !retired && !student,
        retired,
        assets,
        risk_appetite,
        has_loan,
    }
}

/// Customer number `i` (0-based) of the demo bank.
pub fn customer(spec: &DemoSpec, i: u64) -> Customer {
    profile(spec, i).customer
}

fn round_yuan(fen: f64, unit_yuan: i64) -> i64 {
    let unit = unit_yuan * 100;
    ((fen / unit as f64).round() as i64).max(1) * unit
}

/// The accounts and positions of customer `i`.
pub fn holdings(spec: &DemoSpec, i: u64) -> Vec<Holding> {
    let p = profile(spec, i);
    let mut rng = rng_for(spec.seed, i, 2);
    let cid = p.customer.external_id.clone();
    let mut out = Vec::new();
    let assets = p.assets.max(10_000) as f64;
    let opened = spec.today - Duration::days(rng.gen_range(30..3650));
    let mut push = |rng: &mut ChaCha8Rng, class: AssetClass, product: Option<&str>, fen: i64| {
        let n = out.len();
        out.push(Holding {
            external_id: format!("A{:09}{:02}", i + 1, n + 1),
            customer_id: cid.clone(),
            product_code: product.map(str::to_string),
            asset_class: class,
            balance: Fen(fen.max(0)),
            opened_on: Some(opened + Duration::days(rng.gen_range(0..30))),
            as_of: spec.today,
        });
    };
    let current_share = rng.gen_range(0.15..0.6);
    push(
        &mut rng,
        AssetClass::CurrentDeposit,
        Some("DEP-CUR"),
        (assets * current_share) as i64,
    );
    let mut rest = assets * (1.0 - current_share);
    if rng.gen_bool(if p.age > 45 { 0.6 } else { 0.3 }) {
        let share = rng.gen_range(0.3..0.8);
        let code = ["DEP-3M", "DEP-1Y", "DEP-3Y"][rng.gen_range(0..3)];
        let code = if rest * share > 20_000_000.0 {
            "DEP-CD3Y"
        } else {
            code
        };
        push(
            &mut rng,
            AssetClass::TimeDeposit,
            Some(code),
            round_yuan(rest * share, 100),
        );
        rest *= 1.0 - share;
    }
    if rest > 1_000_000.0 && rng.gen_bool(0.5) {
        let choices: Vec<&str> = [
            ("WM-CASH", 1),
            ("WM-R2-90", 2),
            ("WM-R3-1Y", 3),
            ("WM-R4-EQ", 4),
        ]
        .iter()
        .filter(|(_, r)| *r <= p.risk_appetite)
        .map(|(c, _)| *c)
        .collect();
        let code = choices[rng.gen_range(0..choices.len())];
        let share = rng.gen_range(0.3..0.7);
        push(
            &mut rng,
            AssetClass::Wealth,
            Some(code),
            round_yuan(rest * share, 1_000),
        );
        rest *= 1.0 - share;
    }
    if rng.gen_bool(if p.age < 45 { 0.35 } else { 0.15 }) {
        let funds = [
            "FD-MMF",
            "FD-BOND",
            "FD-MIX",
            "FD-HS300",
            "FD-GROWTH",
            "FD-QDII",
        ];
        let max = usize::from(p.risk_appetite).min(funds.len());
        let code = funds[rng.gen_range(0..max.max(1))];
        let v = (rest * rng.gen_range(0.2..0.8)) as i64;
        push(&mut rng, AssetClass::Fund, Some(code), v);
    }
    if rng.gen_bool(0.2) {
        let code = ["INS-ANN", "INS-CI", "INS-ULI"][rng.gen_range(0..3)];
        let v = round_yuan(p.income_fen as f64 * rng.gen_range(2.0..12.0), 100);
        push(&mut rng, AssetClass::Insurance, Some(code), v);
    }
    if p.has_loan {
        let (code, months) = if p.age < 45 && rng.gen_bool(0.6) {
            ("LN-MORT", 120.0)
        } else {
            ("LN-CONS", 12.0)
        };
        let v = round_yuan(p.income_fen as f64 * months * spread(&mut rng, 0.4), 100);
        push(&mut rng, AssetClass::Loan, Some(code), v);
    }
    out
}

/// Twelve months of transactions of customer `i`, oldest first.
pub fn transactions(spec: &DemoSpec, i: u64) -> Vec<Transaction> {
    let p = profile(spec, i);
    let mut rng = rng_for(spec.seed, i, 3);
    let cid = &p.customer.external_id;
    let mut out = Vec::new();
    let pay_day = [5, 10, 15, 25][rng.gen_range(0..4)];
    let prefers_app = p.age < 50 || rng.gen_bool(0.3);
    let first = spec.today - Duration::days(364);
    let mut seq = 0u32;
    let push = |t: Transaction, out: &mut Vec<Transaction>| out.push(t);
    for m in 0..12 {
        let (y, mo) = {
            let base = first.year() * 12 + first.month0() as i32 + m;
            (base / 12, base % 12 + 1)
        };
        let at = |day: u32, hour: u32, rng: &mut ChaCha8Rng| {
            let d = NaiveDate::from_ymd_opt(y, mo as u32, day.min(28)).expect("valid day");
            let local = d
                .and_hms_opt(hour, rng.gen_range(0..60), rng.gen_range(0..60))
                .expect("valid time");
            spec.offset
                .from_local_datetime(&local)
                .single()
                .expect("fixed offset")
                .with_timezone(&Utc)
        };
        if p.employed || p.retired {
            seq += 1;
            let occurred_at = at(pay_day, 9, &mut rng);
            if occurred_at.date_naive() <= spec.today {
                push(
                    Transaction {
                        external_id: format!("T{:09}{seq:04}", i + 1),
                        customer_id: cid.clone(),
                        amount: Fen(
                            (p.income_fen as f64 * spread(&mut rng, 0.05)) as i64 / 100 * 100
                        ),
                        direction: Direction::In,
                        category: TxnCategory::Salary,
                        channel: Channel::Other,
                        occurred_at,
                        product_code: None,
                        description: Some(
                            if p.retired {
                                "养老金"
                            } else {
                                "代发工资"
                            }
                            .into(),
                        ),
                    },
                    &mut out,
                );
            }
        }
        let n = rng.gen_range(0..=spec.spend_per_month * 2);
        for _ in 0..n {
            seq += 1;
            let weights: [u32; 8] = if p.age < 35 {
                [30, 25, 15, 12, 5, 5, 5, 3]
            } else {
                [18, 15, 22, 8, 10, 8, 10, 9]
            };
            let cat = [
                TxnCategory::Dining,
                TxnCategory::Shopping,
                TxnCategory::Groceries,
                TxnCategory::Travel,
                TxnCategory::Utilities,
                TxnCategory::Housing,
                TxnCategory::Education,
                TxnCategory::Health,
            ][weighted_index(&mut rng, &weights)];
            let scale = match cat {
                TxnCategory::Dining | TxnCategory::Groceries => 0.02,
                TxnCategory::Utilities => 0.03,
                TxnCategory::Shopping => 0.06,
                TxnCategory::Travel | TxnCategory::Health => 0.08,
                _ => 0.2,
            };
            let amount = ((p.income_fen as f64 * scale * spread(&mut rng, 0.7)) as i64).max(100);
            let channel = if prefers_app {
                [Channel::App, Channel::App, Channel::Pos, Channel::Web][rng.gen_range(0..4)]
            } else {
                [Channel::Pos, Channel::Branch, Channel::Atm, Channel::App][rng.gen_range(0..4)]
            };
            let occurred_at = at(rng.gen_range(1..=28), rng.gen_range(8..23), &mut rng);
            if occurred_at.date_naive() > spec.today {
                continue;
            }
            push(
                Transaction {
                    external_id: format!("T{:09}{seq:04}", i + 1),
                    customer_id: cid.clone(),
                    amount: Fen(amount),
                    direction: Direction::Out,
                    category: cat,
                    channel,
                    occurred_at,
                    product_code: None,
                    description: None,
                },
                &mut out,
            );
        }
        if p.has_loan {
            seq += 1;
            let occurred_at = at(pay_day + 2, 10, &mut rng);
            if occurred_at.date_naive() <= spec.today {
                push(
                    Transaction {
                        external_id: format!("T{:09}{seq:04}", i + 1),
                        customer_id: cid.clone(),
                        amount: Fen(p.income_fen / 300 * 100),
                        direction: Direction::Out,
                        category: TxnCategory::LoanRepayment,
                        channel: Channel::Other,
                        occurred_at,
                        product_code: None,
                        description: Some("贷款还款".into()),
                    },
                    &mut out,
                );
            }
        }
        if p.assets > 5_000_000 && rng.gen_bool(0.15) {
            seq += 1;
            let code = ["WM-R2-90", "WM-R3-1Y", "FD-MIX", "FD-BOND"][rng.gen_range(0..4)];
            let occurred_at = at(rng.gen_range(1..=28), rng.gen_range(9..21), &mut rng);
            if occurred_at.date_naive() <= spec.today {
                push(
                    Transaction {
                        external_id: format!("T{:09}{seq:04}", i + 1),
                        customer_id: cid.clone(),
                        amount: Fen::from_yuan(rng.gen_range(1..=10) * 10_000),
                        direction: Direction::Out,
                        category: TxnCategory::Investment,
                        channel: if prefers_app {
                            Channel::App
                        } else {
                            Channel::Branch
                        },
                        occurred_at,
                        product_code: Some(code.into()),
                        description: Some("购买理财/基金".into()),
                    },
                    &mut out,
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kehu_domain::ingest::fields::id_number_valid;

    fn spec() -> DemoSpec {
        DemoSpec::new(10_000, 7, NaiveDate::from_ymd_opt(2026, 11, 28).unwrap())
    }

    #[test]
    fn same_seed_same_bank_other_seed_other_bank() {
        let s = spec();
        assert_eq!(customer(&s, 42), customer(&s, 42));
        assert_eq!(transactions(&s, 42), transactions(&s, 42));
        let other = DemoSpec { seed: 8, ..spec() };
        assert_ne!(customer(&s, 42), customer(&other, 42));
    }

    #[test]
    fn generated_records_are_valid_and_plausible() {
        let s = spec();
        let shelf = products(s.today);
        let managers: Vec<String> = staff(&s)
            .into_iter()
            .filter(|p| p.role == Role::CustomerManager)
            .map(|p| p.external_id)
            .collect();
        let mut males = 0;
        let mut with_salary = 0;
        for i in 0..2_000 {
            let c = customer(&s, i);
            assert!(
                id_number_valid(c.id_number.as_deref().unwrap()),
                "{:?}",
                c.id_number
            );
            let age = c.age_on(s.today).unwrap();
            assert!((18..=86).contains(&age), "age {age}");
            if let Some(m) = &c.manager_id {
                assert!(managers.contains(m), "unknown manager {m}");
            }
            males += u32::from(c.gender == Gender::Male);
            for h in holdings(&s, i) {
                assert!(h.balance.0 >= 0);
                if let Some(code) = &h.product_code {
                    assert!(
                        shelf.iter().any(|p| &p.code == code),
                        "unknown product {code}"
                    );
                }
            }
            let txns = transactions(&s, i);
            with_salary += u32::from(txns.iter().any(|t| t.category == TxnCategory::Salary));
            for t in txns {
                assert!(t.amount.0 > 0);
                assert!(t.occurred_at.date_naive() <= s.today);
            }
        }
        assert!((900..1_150).contains(&males), "males {males} of 2000");
        // Tiers as a retail bank's book looks: most customers standard, few private.
        let mut tiers = std::collections::HashMap::new();
        for i in 0..2_000 {
            *tiers.entry(customer(&s, i).vip_tier).or_insert(0u32) += 1;
        }
        let share = |t| f64::from(*tiers.get(&t).unwrap_or(&0)) / 2_000.0;
        assert!(share(VipTier::Standard) > 0.6, "{tiers:?}");
        assert!(
            share(VipTier::Gold) > 0.05 && share(VipTier::Private) < 0.02,
            "{tiers:?}"
        );
        assert!(with_salary > 1_500, "salaried {with_salary} of 2000");
    }
}

/// Called with (stage, done, total) as the generation goes.
pub type DemoProgress = std::sync::Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DemoSummary {
    pub staff: u64,
    pub products: u64,
    pub customers: u64,
    pub holdings: u64,
    pub transactions: u64,
}

/// Generates the bank into the store: staff, products, then customers, holdings and
/// transactions in three streaming passes (generation on a worker thread, writing here).
pub async fn load(
    store: &kehu_store::Store,
    spec: &DemoSpec,
    progress: Option<DemoProgress>,
) -> Result<DemoSummary, kehu_store::StoreError> {
    use kehu_domain::ingest::EntityKind;
    let mut sum = DemoSummary::default();
    let staff = staff(spec);
    let products = products(spec.today);
    sum.staff = write_all(store, EntityKind::Staff, &staff).await?;
    sum.products = write_all(store, EntityKind::Products, &products).await?;
    sum.customers = stream(
        store,
        spec,
        EntityKind::Customers,
        &progress,
        |s, i, out: &mut Vec<Customer>| out.push(customer(s, i)),
    )
    .await?;
    sum.holdings = stream(
        store,
        spec,
        EntityKind::Holdings,
        &progress,
        |s, i, out: &mut Vec<Holding>| out.extend(holdings(s, i)),
    )
    .await?;
    sum.transactions = stream(
        store,
        spec,
        EntityKind::Transactions,
        &progress,
        |s, i, out: &mut Vec<Transaction>| out.extend(transactions(s, i)),
    )
    .await?;
    Ok(sum)
}

async fn write_all<R: kehu_store::LoadRecord>(
    store: &kehu_store::Store,
    kind: kehu_domain::ingest::EntityKind,
    rows: &[R],
) -> Result<u64, kehu_store::StoreError> {
    let mut l = store.begin_load(kind, "demo", Utc::now()).await?;
    let skips = l.write(rows).await?;
    let n = (rows.len() - skips.len()) as u64;
    l.finish(
        true,
        kehu_store::load::LoadCounts {
            read: rows.len() as u64,
            loaded: n,
            rejected: skips.len() as u64,
        },
    )
    .await?;
    Ok(n)
}

async fn stream<R: kehu_store::LoadRecord>(
    store: &kehu_store::Store,
    spec: &DemoSpec,
    kind: kehu_domain::ingest::EntityKind,
    progress: &Option<DemoProgress>,
    gen: fn(&DemoSpec, u64, &mut Vec<R>),
) -> Result<u64, kehu_store::StoreError> {
    const PER_BATCH: u64 = 2_000;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, Vec<R>)>(4);
    let s = spec.clone();
    let worker = std::thread::spawn(move || {
        let mut i = 0;
        while i < s.customers {
            let end = (i + PER_BATCH).min(s.customers);
            let mut out = Vec::new();
            for k in i..end {
                gen(&s, k, &mut out);
            }
            if tx.blocking_send((end, out)).is_err() {
                return;
            }
            i = end;
        }
    });
    let mut load = store.begin_load(kind, "demo", Utc::now()).await?;
    let mut n = 0u64;
    let mut result = Ok(());
    while let Some((done, rows)) = rx.recv().await {
        match load.write(&rows).await {
            Ok(skips) => n += (rows.len() - skips.len()) as u64,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        if let Some(p) = progress {
            p(kind.name(), done, spec.customers);
        }
    }
    drop(rx);
    let _ = worker.join();
    let ok = result.is_ok();
    load.finish(
        ok,
        kehu_store::load::LoadCounts {
            read: n,
            loaded: n,
            rejected: 0,
        },
    )
    .await?;
    result.map(|_| n)
}

/// Writes the bank as import files (`staff.csv`, `products.csv`, `customers.csv`,
/// `holdings.csv`, `transactions.csv`) into `dir`: the samples and the import benchmark input.
/// With `customers_only`, only `customers.csv` is written (the import benchmark's input).
pub fn write_csv(
    dir: &std::path::Path,
    spec: &DemoSpec,
    customers_only: bool,
    progress: Option<DemoProgress>,
) -> std::io::Result<DemoSummary> {
    use kehu_domain::ingest::Record;
    std::fs::create_dir_all(dir)?;
    fn file<R: Record>(dir: &std::path::Path) -> std::io::Result<csv::Writer<std::fs::File>> {
        let mut w = csv::Writer::from_path(dir.join(format!("{}.csv", R::KIND.name())))?;
        w.write_record(R::COLUMNS.iter().map(|c| c.name))?;
        Ok(w)
    }
    let mut sum = DemoSummary::default();
    // With `customers_only`, only customers.csv is written.
    let mut others = None;
    if !customers_only {
        let mut w = file::<Staff>(dir)?;
        for s in staff(spec) {
            w.write_record(s.to_values())?;
            sum.staff += 1;
        }
        w.flush()?;
        let mut w = file::<Product>(dir)?;
        for p in products(spec.today) {
            w.write_record(p.to_values())?;
            sum.products += 1;
        }
        w.flush()?;
        others = Some((file::<Holding>(dir)?, file::<Transaction>(dir)?));
    }
    let mut wc = file::<Customer>(dir)?;
    for i in 0..spec.customers {
        wc.write_record(customer(spec, i).to_values())?;
        sum.customers += 1;
        if let Some((wh, wt)) = &mut others {
            for h in holdings(spec, i) {
                wh.write_record(h.to_values())?;
                sum.holdings += 1;
            }
            for t in transactions(spec, i) {
                wt.write_record(t.to_values())?;
                sum.transactions += 1;
            }
        }
        if let Some(p) = &progress {
            if (i + 1) % 10_000 == 0 || i + 1 == spec.customers {
                p("files", i + 1, spec.customers);
            }
        }
    }
    wc.flush()?;
    if let Some((mut wh, mut wt)) = others {
        wh.flush()?;
        wt.flush()?;
    }
    Ok(sum)
}
