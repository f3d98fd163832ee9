//! Next best product: candidates → eligibility and suitability → arbitration → reasons.
//!
//! Arbitration (documented in `docs/behaviour.md`):
//!
//! ```text
//! personal = propensity × value × context × lever
//! score    = h · personal + w_c · collab · value · lever + (1 − h) · w_p · popular · value · lever
//! collab   = max over held X of (P(Y | X) − P(Y)) / (1 − P(Y))   (added value, 0..1)
//! h        = min(1, product views of the customer ÷ cold_start_views)
//! ```
//!
//! With personalization off only `popular` (and newness) ranks the suitable candidates;
//! no behaviour or profile feature is read.

use super::suitability::{self, Assessment, SuitabilityConfig};
use crate::behaviour::state::{CustomerBehaviour, Pair, StateConfig};
use crate::money::Fen;
use crate::state::{IncomeBand, ProductKind, RiskLevel};
use chrono::NaiveDate;
use serde::Serialize;

/// A product as the recommender sees it (prepared once per catalogue refresh).
#[derive(Clone, Debug)]
pub struct Offer {
    pub id: u32,
    pub code: String,
    pub name: String,
    pub kind: ProductKind,
    pub risk: RiskLevel,
    pub min_purchase: Fen,
    pub repeatable: bool,
    pub sale_start: Option<NaiveDate>,
    pub sale_end: Option<NaiveDate>,
    /// Business lever (1.0 = neutral), set by marketers.
    pub lever: f64,
}

/// Products with their popularity and co-purchases.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    pub offers: Vec<Offer>,
    /// Index in `offers` by product id.
    pub index: std::collections::HashMap<u32, usize>,
    /// Buyers (customers holding or having bought) per offer.
    pub buyers: Vec<u32>,
    /// co[i * n + j]: customers who bought both i and j.
    pub co: Vec<u32>,
    pub max_buyers: u32,
    /// Customers with at least one product (the baskets counted).
    pub customers: u32,
}

impl Catalogue {
    /// `baskets`: per customer, the product ids bought or held.
    pub fn new(offers: Vec<Offer>, baskets: impl IntoIterator<Item = Vec<u32>>) -> Catalogue {
        let n = offers.len();
        let index: std::collections::HashMap<u32, usize> =
            offers.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
        let mut buyers = vec![0u32; n];
        let mut co = vec![0u32; n * n];
        let mut idx = Vec::new();
        let mut customers = 0u32;
        for basket in baskets {
            customers += 1;
            idx.clear();
            idx.extend(basket.iter().filter_map(|p| index.get(p).copied()));
            idx.sort_unstable();
            idx.dedup();
            for (a, &i) in idx.iter().enumerate() {
                buyers[i] += 1;
                for &j in &idx[a + 1..] {
                    co[i * n + j] += 1;
                    co[j * n + i] += 1;
                }
            }
        }
        let max_buyers = buyers.iter().copied().max().unwrap_or(0);
        Catalogue {
            offers,
            index,
            buyers,
            co,
            max_buyers,
            customers,
        }
    }
    pub fn offer(&self, id: u32) -> Option<&Offer> {
        self.index.get(&id).map(|&i| &self.offers[i])
    }
}

/// What is known about the customer for this decision.
#[derive(Clone, Debug)]
pub struct CustomerView<'a> {
    pub customer_id: u32,
    pub age: Option<u32>,
    pub income: Option<IncomeBand>,
    /// Current deposits available at once.
    pub liquid: Fen,
    /// Product ids held, sorted.
    pub held: &'a [u32],
    pub assessment: Option<Assessment>,
    pub personalization: bool,
    pub behaviour: Option<&'a CustomerBehaviour>,
    /// Product ids whose derived interest the customer deleted (sorted).
    pub forgotten: &'a [u32],
}

/// Default propensity weights (a logistic model; see `docs/behaviour.md`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PropensityWeights {
    pub intercept: f64,
    pub ln_interest: f64,
    pub views_7d: f64,
    pub ln_dwell_min: f64,
    pub depth: f64,
    pub same_kind_held: f64,
    pub ability: f64,
}

impl Default for PropensityWeights {
    fn default() -> Self {
        PropensityWeights {
            intercept: -3.0,
            ln_interest: 0.9,
            views_7d: 0.25,
            ln_dwell_min: 0.3,
            depth: 0.6,
            same_kind_held: 0.6,
            ability: 0.8,
        }
    }
}

/// The features of one customer × product, named as a trained model's columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Features {
    pub interest: f64,
    pub views_7d: f64,
    pub views: f64,
    pub active_days: f64,
    pub dwell_min: f64,
    pub depth: f64,
    pub same_kind_held: f64,
    pub ability: f64,
    pub age: f64,
    pub income: f64,
}

impl Features {
    pub const NAMES: [&'static str; 10] = [
        "interest", "views_7d", "views", "active_days", "dwell_min", "depth", "same_kind_held",
        "ability", "age", "income",
    ];
    pub fn values(&self) -> [f64; 10] {
        [
            self.interest, self.views_7d, self.views, self.active_days, self.dwell_min, self.depth,
            self.same_kind_held, self.ability, self.age, self.income,
        ]
    }
}

/// Anything that turns features into a purchase probability.
pub trait Propensity: Send + Sync {
    fn probability(&self, kind: ProductKind, f: &Features) -> f64;
    fn name(&self) -> String;
}

impl Propensity for PropensityWeights {
    fn probability(&self, _kind: ProductKind, f: &Features) -> f64 {
        let z = self.intercept
            + self.ln_interest * f.interest.ln_1p()
            + self.views_7d * f.views_7d.min(10.0)
            + self.ln_dwell_min * f.dwell_min.ln_1p()
            + self.depth * f.depth
            + self.same_kind_held * f.same_kind_held
            + self.ability * f.ability;
        1.0 / (1.0 + (-z).exp())
    }
    fn name(&self) -> String {
        "default-weights".into()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RecommendConfig {
    pub weights: PropensityWeights,
    /// Value weight per product kind (deposit, wealth, fund, insurance, card, loan).
    pub value_deposit: f64,
    pub value_wealth: f64,
    pub value_fund: f64,
    pub value_insurance: f64,
    pub value_card: f64,
    pub value_loan: f64,
    /// Weight of the collaborative signal.
    pub collab_weight: f64,
    /// Minimum co-buyers before "customers who bought X also bought Y" counts.
    pub collab_min_support: u32,
    /// Weight of popularity for customers with little history.
    pub popular_weight: f64,
    /// Product views after which a customer counts as having full history.
    pub cold_start_views: u32,
    /// A product on sale for at most this many days counts as new.
    pub new_days: i64,
    pub new_bonus: f64,
    /// Context: same-kind boost on a product page placement.
    pub same_kind_context: f64,
    /// Weight of a repeatable product the customer holds already (buying more of it is
    /// less likely news than a product they do not have).
    pub held_repeat_weight: f64,
    /// Business levers: a weight per product code (1 = neutral; 0 keeps a product out of
    /// recommendations without taking it off sale).
    #[serde(default)]
    pub levers: std::collections::BTreeMap<String, f64>,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        RecommendConfig {
            weights: PropensityWeights::default(),
            value_deposit: 0.6,
            value_wealth: 1.0,
            value_fund: 1.0,
            value_insurance: 1.2,
            value_card: 0.5,
            value_loan: 0.8,
            collab_weight: 0.3,
            collab_min_support: 3,
            popular_weight: 0.5,
            cold_start_views: 5,
            new_days: 30,
            new_bonus: 0.2,
            same_kind_context: 1.2,
            held_repeat_weight: 0.3,
            levers: Default::default(),
        }
    }
}

impl RecommendConfig {
    pub fn value(&self, k: ProductKind) -> f64 {
        match k {
            ProductKind::Deposit => self.value_deposit,
            ProductKind::Wealth => self.value_wealth,
            ProductKind::Fund => self.value_fund,
            ProductKind::Insurance => self.value_insurance,
            ProductKind::Card => self.value_card,
            ProductKind::Loan => self.value_loan,
        }
    }
}

/// Where the recommendation is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    Home,
    /// On a product's page: the same kind is a little more relevant.
    ProductPage(ProductKind),
    Message,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reason {
    pub code: &'static str,
    pub zh: String,
    pub en: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Components {
    pub propensity: f64,
    pub value: f64,
    pub context: f64,
    pub lever: f64,
    pub collab: f64,
    pub popular: f64,
    pub history: f64,
    pub ability: f64,
    pub interest: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Item {
    pub product_id: u32,
    pub code: String,
    pub name: String,
    pub kind: ProductKind,
    pub risk_level: RiskLevel,
    pub score: f64,
    pub components: Components,
    pub reasons: Vec<Reason>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub personalized: bool,
    pub model: String,
    pub items: Vec<Item>,
    /// Candidates left out and why (counts): not on sale, held, unsuitable.
    pub not_on_sale: u32,
    pub held: u32,
    pub unsuitable: u32,
    pub notes: Vec<Reason>,
}

/// Ability to buy: 1 when current deposits cover the minimum purchase, 0.5 when three
/// months of income would, else 0.
pub fn ability(liquid: Fen, income: Option<IncomeBand>, min_purchase: Fen) -> f64 {
    if liquid >= min_purchase {
        1.0
    } else if liquid.0 + 3 * income.map_or(0, |b| b.midpoint_fen()) >= min_purchase.0 {
        0.5
    } else {
        0.0
    }
}

/// The features of a customer × product at `now_secs` (also what a propensity model is
/// trained on: `kehu features export`).
pub fn features(
    pair: Option<&Pair>,
    sc: &StateConfig,
    now_secs: i64,
    same_kind_held: bool,
    ability: f64,
    age: Option<u32>,
    income: Option<IncomeBand>,
) -> Features {
    let mut f = Features {
        same_kind_held: same_kind_held as u8 as f64,
        ability,
        age: age.unwrap_or(0) as f64,
        income: income.map_or(0.0, |b| b.midpoint_fen() as f64 / 100.0),
        ..Default::default()
    };
    if let Some(p) = pair {
        f.interest = p.interest_at(sc, now_secs);
        f.views_7d = p.views_recent(sc, now_secs) as f64;
        f.views = p.views as f64;
        f.active_days = p.active_days as f64;
        f.dwell_min = p.dwell_ms as f64 / 60_000.0;
        f.depth = p.max_depth as f64 / 100.0;
    }
    f
}

/// Everything the decision reads besides the customer.
pub struct Context<'a> {
    pub catalogue: &'a Catalogue,
    pub cfg: &'a RecommendConfig,
    pub suitability: &'a SuitabilityConfig,
    pub state: &'a StateConfig,
    pub propensity: &'a dyn Propensity,
    pub today: NaiveDate,
    pub now_secs: i64,
}

/// Ranks the eligible, suitable products for one customer and explains the top `n`.
pub fn recommend(ctx: &Context, c: &CustomerView, placement: &Placement, n: usize) -> Decision {
    let cat = ctx.catalogue;
    let cfg = ctx.cfg;
    let personal = c.personalization;
    let nprod = cat.offers.len();
    let held_idx: Vec<usize> = c.held.iter().filter_map(|p| cat.index.get(p).copied()).collect();
    let mut held_kinds = [false; 6];
    for &i in &held_idx {
        held_kinds[cat.offers[i].kind as usize] = true;
    }
    let views = c.behaviour.map_or(0, |b| b.product_views);
    let history = if personal {
        (views as f64 / cfg.cold_start_views.max(1) as f64).min(1.0)
    } else {
        0.0
    };
    let (mut not_on_sale, mut held, mut unsuitable) = (0, 0, 0);
    // Validity once per decision: an expired assessment refuses exactly what no
    // assessment refuses (only the wording differs, and that is made for the top items).
    let valid = c.assessment.filter(|a| a.valid_on(ctx.suitability, ctx.today));
    let mut scored: Vec<(f64, usize, Components, usize)> = Vec::with_capacity(nprod);
    for (i, o) in cat.offers.iter().enumerate() {
        if !(o.sale_start.map_or(true, |s| s <= ctx.today) && o.sale_end.map_or(true, |e| ctx.today <= e)) {
            not_on_sale += 1;
            continue;
        }
        if o.lever <= 0.0 {
            continue;
        }
        let holds = c.held.binary_search(&o.id).is_ok();
        if holds && !o.repeatable {
            held += 1;
            continue;
        }
        // Suitability: the same rule as at purchase (age is not personalization but a
        // legal rule, so it applies either way; confirmation is asked at purchase).
        if suitability::refusal(ctx.suitability, valid, c.age, o.risk, ctx.today, true).is_some() {
            unsuitable += 1;
            continue;
        }
        let value = cfg.value(o.kind) * if holds { cfg.held_repeat_weight } else { 1.0 };
        let popular = if cat.max_buyers > 0 {
            cat.buyers[i] as f64 / cat.max_buyers as f64
        } else {
            0.0
        };
        let is_new = o
            .sale_start
            .is_some_and(|s| (ctx.today - s).num_days() <= cfg.new_days);
        let popular = popular + if is_new { cfg.new_bonus } else { 0.0 };
        let mut comp = Components {
            value,
            lever: o.lever,
            popular,
            context: 1.0,
            ..Default::default()
        };
        let mut best_collab = usize::MAX;
        let score = if personal {
            let pair = if c.forgotten.binary_search(&o.id).is_ok() {
                None
            } else {
                c.behaviour.and_then(|b| b.pair(o.id))
            };
            let ab = ability(c.liquid, c.income, o.min_purchase);
            let f = features(pair, ctx.state, ctx.now_secs, held_kinds[o.kind as usize], ab, c.age, c.income);
            comp.propensity = ctx.propensity.probability(o.kind, &f);
            comp.ability = ab;
            comp.interest = f.interest;
            comp.context = match placement {
                Placement::ProductPage(k) if *k == o.kind => cfg.same_kind_context,
                _ => 1.0,
            };
            // Added value of holding X for buying Y: how much more likely Y is among
            // holders of X than among all customers, scaled to 0..1. A product everyone
            // holds adds nothing.
            let base = cat.buyers[i] as f64 / cat.customers.max(1) as f64;
            for &h in &held_idx {
                let co = cat.co[h * nprod + i];
                if co >= cfg.collab_min_support && cat.buyers[h] > 0 && base < 1.0 {
                    let conf = co as f64 / cat.buyers[h] as f64;
                    let added = ((conf - base) / (1.0 - base)).max(0.0);
                    if added > comp.collab {
                        comp.collab = added;
                        best_collab = h;
                    }
                }
            }
            comp.history = history;
            history * comp.propensity * value * comp.context * o.lever
                + cfg.collab_weight * comp.collab * value * o.lever
                + (1.0 - history) * cfg.popular_weight * popular * value * o.lever
        } else {
            popular * value * o.lever
        };
        scored.push((score, i, comp, best_collab));
    }
    let k = n.min(scored.len());
    if k > 0 && k < scored.len() {
        scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(k);
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let items = scored
        .into_iter()
        .map(|(score, i, comp, collab_from)| {
            let o = &cat.offers[i];
            let reasons = explain(ctx, c, o, &comp, i, collab_from);
            Item {
                product_id: o.id,
                code: o.code.clone(),
                name: o.name.clone(),
                kind: o.kind,
                risk_level: o.risk,
                score,
                components: comp,
                reasons,
            }
        })
        .collect();
    let mut notes = Vec::new();
    if !personal {
        notes.push(Reason {
            code: "personalization_off",
            zh: "您已关闭个性化推荐：以下结果未使用您的个人特征，按产品热度排序".into(),
            en: "Personalization is off: these results use none of your personal features and are ranked by popularity".into(),
        });
    }
    Decision {
        personalized: personal,
        model: if personal { ctx.propensity.name() } else { "popularity".into() },
        items,
        not_on_sale,
        held,
        unsuitable,
        notes,
    }
}

fn yuan(f: Fen) -> String {
    let y = f.0 / 100;
    let s = y.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn explain(ctx: &Context, c: &CustomerView, o: &Offer, comp: &Components, i: usize, collab_from: usize) -> Vec<Reason> {
    let mut r = Vec::new();
    let cat = ctx.catalogue;
    if c.personalization {
        if let Some(p) = c
            .behaviour
            .filter(|_| c.forgotten.binary_search(&o.id).is_err())
            .and_then(|b| b.pair(o.id))
        {
            let v7 = p.views_recent(ctx.state, ctx.now_secs);
            if v7 > 0 {
                r.push(Reason {
                    code: "recent_views",
                    zh: format!("近7天浏览{v7}次"),
                    en: format!("viewed {v7} times in the last 7 days"),
                });
            } else if p.views > 0 {
                r.push(Reason {
                    code: "views",
                    zh: format!("曾浏览{}次", p.views),
                    en: format!("viewed {} times before", p.views),
                });
            }
            let minutes = p.dwell_ms / 60_000;
            if minutes >= 1 {
                r.push(Reason {
                    code: "dwell",
                    zh: format!("累计停留{minutes}分钟"),
                    en: format!("{minutes} min spent on it"),
                });
            }
        }
        if comp.collab > 0.0 && collab_from != usize::MAX {
            let x = &cat.offers[collab_from];
            r.push(Reason {
                code: "similar_customers",
                zh: format!("与您相似的客户（持有{}）也购买了此产品", x.name),
                en: format!("customers who hold {} also bought this", x.name),
            });
        }
        if comp.ability >= 1.0 {
            r.push(Reason {
                code: "ability",
                zh: format!("您的可用资金满足起购金额¥{}", yuan(o.min_purchase)),
                en: format!("your available funds cover the ¥{} minimum", yuan(o.min_purchase)),
            });
        }
    }
    let s = suitability::check(ctx.suitability, c.assessment, c.age, o.risk, ctx.today, true);
    r.push(Reason {
        code: "suitable",
        zh: s.reason_zh,
        en: s.reason_en,
    });
    if o.sale_start.is_some_and(|s| (ctx.today - s).num_days() <= ctx.cfg.new_days) {
        r.push(Reason {
            code: "new",
            zh: "新发产品".into(),
            en: "newly launched".into(),
        });
    }
    if cat.buyers[i] > 0 && (!c.personalization || comp.history < 1.0) {
        r.push(Reason {
            code: "popular",
            zh: format!("热门产品：{}位客户持有或购买", cat.buyers[i]),
            en: format!("popular: held or bought by {} customers", cat.buyers[i]),
        });
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::event::EventKind;
    use crate::behaviour::state::{BehaviourState, Touch};
    use crate::decide::suitability::RiskTolerance;
    use proptest::prelude::*;

    const NOW: i64 = 1_795_000_000; // 2026-11-18
    fn today() -> NaiveDate {
        chrono::DateTime::from_timestamp(NOW, 0).unwrap().date_naive()
    }

    fn offer(id: u32, kind: ProductKind, risk: RiskLevel, min: i64) -> Offer {
        Offer {
            id,
            code: format!("P{id}"),
            name: format!("产品{id}"),
            kind,
            risk,
            min_purchase: Fen(min),
            repeatable: kind != ProductKind::Card,
            sale_start: None,
            sale_end: None,
            lever: 1.0,
        }
    }

    fn shelf() -> Catalogue {
        let offers = vec![
            offer(1, ProductKind::Deposit, RiskLevel::R1, 5_000_00),
            offer(2, ProductKind::Wealth, RiskLevel::R2, 10_000_00),
            offer(3, ProductKind::Wealth, RiskLevel::R3, 50_000_00),
            offer(4, ProductKind::Fund, RiskLevel::R4, 100_00),
            offer(5, ProductKind::Fund, RiskLevel::R5, 100_00),
            offer(6, ProductKind::Card, RiskLevel::R1, 0),
        ];
        // Many customers hold 1, several hold 1 and 2 together.
        let mut baskets = vec![vec![1u32]; 20];
        baskets.extend(std::iter::repeat(vec![1u32, 2]).take(8));
        baskets.extend(std::iter::repeat(vec![6u32]).take(5));
        Catalogue::new(offers, baskets)
    }

    fn ctx<'a>(cat: &'a Catalogue, cfg: &'a RecommendConfig, s: &'a SuitabilityConfig, st: &'a StateConfig, p: &'a PropensityWeights) -> Context<'a> {
        Context { catalogue: cat, cfg, suitability: s, state: st, propensity: p, today: today(), now_secs: NOW }
    }

    fn view(ts: i64, product: u32) -> Touch {
        Touch { kind: EventKind::ProductView, ts_ms: ts * 1000, product: Some(product), dwell_ms: 90_000, depth: 80, quantity: 0, amount_fen: 0 }
    }

    #[test]
    fn views_move_a_product_up_with_a_reason() {
        let (cat, cfg, s, st, p) = (shelf(), RecommendConfig::default(), SuitabilityConfig::default(), StateConfig::default(), PropensityWeights::default());
        let ctx = ctx(&cat, &cfg, &s, &st, &p);
        let a = Assessment { level: RiskTolerance::C3, assessed_on: today() };
        let mut state = BehaviourState::new(st);
        let held = [1u32];
        let view_of = |state: &BehaviourState| -> Decision {
            let c = CustomerView { customer_id: 9, age: Some(40), income: Some(IncomeBand::From10kTo20k), liquid: Fen(60_000_00), held: &held, assessment: Some(a), personalization: true, behaviour: state.customer(9), forgotten: &[] };
            recommend(&ctx, &c, &Placement::Home, 10)
        };
        let before = view_of(&state);
        let rank = |d: &Decision, id: u32| d.items.iter().position(|i| i.product_id == id).unwrap();
        for k in 0..5 {
            state.apply(9, &view(NOW - 3600 * (k + 1), 3));
        }
        let after = view_of(&state);
        assert!(rank(&after, 3) < rank(&before, 3), "{before:#?}\n{after:#?}");
        assert_eq!(rank(&after, 3), 0);
        let item = &after.items[0];
        assert!(item.reasons.iter().any(|r| r.zh == "近7天浏览5次" && r.en == "viewed 5 times in the last 7 days"), "{:?}", item.reasons);
        assert!(item.reasons.iter().any(|r| r.zh.contains("符合您的风险等级C3")));
        // R4 and R5 are above C3; the card is held and not repeatable.
        assert!(after.items.iter().all(|i| i.risk_level.rank() <= 3));
        assert!(after.items.iter().all(|i| i.product_id != 6 || !held.contains(&6)));
        assert_eq!(after.unsuitable, 2);
        // The collaborative signal: holders of 1 also bought 2.
        let two = after.items.iter().find(|i| i.product_id == 2).unwrap();
        assert!(two.components.collab > 0.0);
        assert!(two.reasons.iter().any(|r| r.code == "similar_customers" && r.zh.contains("产品1")));
    }

    #[test]
    fn personalization_off_uses_no_behaviour_and_says_so() {
        let (cat, cfg, s, st, p) = (shelf(), RecommendConfig::default(), SuitabilityConfig::default(), StateConfig::default(), PropensityWeights::default());
        let ctx = ctx(&cat, &cfg, &s, &st, &p);
        let a = Assessment { level: RiskTolerance::C5, assessed_on: today() };
        let mut state = BehaviourState::new(st);
        for k in 0..9 {
            state.apply(9, &view(NOW - 60 * k, 5));
        }
        let mk = |on: bool| CustomerView { customer_id: 9, age: Some(30), income: None, liquid: Fen(0), held: &[], assessment: Some(a), personalization: on, behaviour: state.customer(9), forgotten: &[] };
        let on = recommend(&ctx, &mk(true), &Placement::Home, 3);
        let off = recommend(&ctx, &mk(false), &Placement::Home, 3);
        assert_eq!(on.items[0].product_id, 5);
        assert!(!off.personalized && on.personalized);
        assert_eq!(off.notes[0].code, "personalization_off");
        // Off: the same as a customer with no behaviour at all.
        let blank = CustomerView { behaviour: None, ..mk(false) };
        let ids = |d: &Decision| d.items.iter().map(|i| i.product_id).collect::<Vec<_>>();
        assert_eq!(ids(&off), ids(&recommend(&ctx, &blank, &Placement::Home, 3)));
        assert!(off.items.iter().all(|i| i.components.propensity == 0.0 && i.reasons.iter().all(|r| r.code != "recent_views")));
        assert_eq!(off.items[0].product_id, 1, "the most popular first");
    }

    #[test]
    fn a_forgotten_interest_is_not_used() {
        let (cat, cfg, s, st, p) = (shelf(), RecommendConfig::default(), SuitabilityConfig::default(), StateConfig::default(), PropensityWeights::default());
        let ctx = ctx(&cat, &cfg, &s, &st, &p);
        let mut state = BehaviourState::new(st);
        for k in 0..5 {
            state.apply(9, &view(NOW - 60 * k, 6));
        }
        let c = CustomerView { customer_id: 9, age: None, income: None, liquid: Fen(0), held: &[], assessment: None, personalization: true, behaviour: state.customer(9), forgotten: &[6] };
        let d = recommend(&ctx, &c, &Placement::Home, 6);
        let card = d.items.iter().find(|i| i.product_id == 6).unwrap();
        assert_eq!(card.components.interest, 0.0);
        assert!(card.reasons.iter().all(|r| r.code != "recent_views"));
    }

    proptest! {
        /// Whatever the behaviour, profile and personalization, no item is above the
        /// customer's level, and without a valid assessment nothing above R1.
        #[test]
        fn never_recommends_an_unsuitable_product(level in 0u8..=5, age in 18u32..95, days_ago in 0u64..800,
                                                  on in any::<bool>(), views in prop::collection::vec(1u32..7, 0..20)) {
            let (cat, cfg, s, st, p) = (shelf(), RecommendConfig::default(), SuitabilityConfig::default(), StateConfig::default(), PropensityWeights::default());
            let ctx = ctx(&cat, &cfg, &s, &st, &p);
            let mut state = BehaviourState::new(st);
            for (k, v) in views.iter().enumerate() { state.apply(9, &view(NOW - 100 * k as i64, *v)); }
            let assessment = RiskTolerance::from_rank(level).map(|l| Assessment { level: l, assessed_on: today() - chrono::Days::new(days_ago) });
            let c = CustomerView { customer_id: 9, age: Some(age), income: None, liquid: Fen(1_000_000_00), held: &[], assessment, personalization: on, behaviour: state.customer(9), forgotten: &[] };
            let d = recommend(&ctx, &c, &Placement::Home, 10);
            let max = match assessment.filter(|a| a.valid_on(&s, today())) { Some(a) => a.level.rank(), None => 1 };
            for i in &d.items { prop_assert!(i.risk_level.rank() <= max); }
        }
    }
}
