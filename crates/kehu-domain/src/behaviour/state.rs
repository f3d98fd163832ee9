//! Behaviour state: per customer × product pair, per customer and per product, kept up to
//! date one event at a time. Compact on purpose (a bank has millions of customers and
//! hundreds of products): a pair takes 48 bytes.
//!
//! Interest (documented in `docs/behaviour.md`):
//! `interest(t) = Σ w(e) · 2^(−(t − t_e) / H)`, stored as its value at the pair's last
//! event time and decayed when read, so events may arrive in any order.

use super::event::EventKind;
/// Hash maps keyed by kehu's own ids: a fast, fixed hasher (the keys are not chosen by
/// outsiders).
pub type IdMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// Seconds from the Unix epoch to 2000-01-01, the origin of the compact times.
const EPOCH_2000: i64 = 946_684_800;
/// Days of distinct-day memory per customer.
pub const DAY_WINDOW: i64 = 64;
/// Days of distinct-day memory per pair.
pub const PAIR_DAY_WINDOW: i64 = 32;
/// Days of per-day view counts per pair ("viewed n times in the last 7 days").
pub const RECENT_DAYS: usize = 7;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateConfig {
    /// Interest halves every this many days.
    pub half_life_days: f64,
    /// Offset of the bank's time zone from UTC in seconds (days are local days).
    pub utc_offset_secs: i32,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            half_life_days: 14.0,
            utc_offset_secs: 8 * 3600,
        }
    }
}

impl StateConfig {
    fn day_of(&self, secs: i64) -> i64 {
        (secs + self.utc_offset_secs as i64).div_euclid(86_400)
    }
    fn decay(&self, dt_secs: f64) -> f64 {
        (-(dt_secs / (self.half_life_days * 86_400.0))).exp2()
    }
}

/// What a state update needs of an event, with ids already resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Touch {
    pub kind: EventKind,
    pub ts_ms: i64,
    pub product: Option<u32>,
    pub dwell_ms: u32,
    pub depth: u8,
    pub quantity: u32,
    pub amount_fen: i64,
}

/// The weight an event adds to interest.
pub fn interest_weight(t: &Touch) -> f64 {
    match t.kind {
        EventKind::ProductView => {
            1.0 + (t.dwell_ms as f64 / 60_000.0).min(2.0) + t.depth as f64 / 100.0
        }
        EventKind::Click | EventKind::CalculatorUse | EventKind::MessageClick => 0.5,
        _ => 0.0,
    }
}

/// One customer × product pair.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pair {
    pub amount_fen: i64,
    /// Interest at `last_seen`.
    pub interest: f32,
    /// Last event, seconds since 2000-01-01 UTC.
    pub last_seen: u32,
    /// Total visible dwell, ms (saturating).
    pub dwell_ms: u32,
    pub views: u32,
    pub quantity: u32,
    pub product: u32,
    /// Bit i: an event on the day `last_day − i` (`PAIR_DAY_WINDOW` days).
    pub day_bits: u32,
    pub purchases: u16,
    /// Distinct days with an event in the `PAIR_DAY_WINDOW` days up to the last event
    /// (exact whatever the order events arrive in).
    pub active_days: u16,
    pub max_depth: u8,
    /// Views per day: index i is the day `last_day − i`.
    pub recent: [u8; RECENT_DAYS],
}

impl Pair {
    pub fn last_seen_secs(&self) -> i64 {
        self.last_seen as i64 + EPOCH_2000
    }
    /// Interest at `now_secs` (decayed from the last event; never grows).
    pub fn interest_at(&self, cfg: &StateConfig, now_secs: i64) -> f64 {
        let dt = (now_secs - self.last_seen_secs()).max(0) as f64;
        self.interest as f64 * cfg.decay(dt)
    }
    pub fn mean_dwell_ms(&self) -> u32 {
        if self.views == 0 {
            0
        } else {
            self.dwell_ms / self.views
        }
    }
    /// Views during the last `RECENT_DAYS` local days up to and including `today`.
    pub fn views_recent(&self, cfg: &StateConfig, now_secs: i64) -> u32 {
        let today = cfg.day_of(now_secs);
        let last = cfg.day_of(self.last_seen_secs());
        let shift = (today - last).max(0) as usize;
        self.recent
            .iter()
            .take(RECENT_DAYS.saturating_sub(shift))
            .map(|&c| c as u32)
            .sum()
    }

    fn apply(&mut self, cfg: &StateConfig, t: &Touch) {
        let secs = t.ts_ms.div_euclid(1000);
        let compact = (secs - EPOCH_2000).clamp(0, u32::MAX as i64) as u32;
        let fresh = self.last_seen == 0 && self.day_bits == 0;
        let day = cfg.day_of(secs);
        // Move the window forward if this event is later than any before.
        if fresh {
            self.last_seen = compact;
        } else if compact > self.last_seen {
            let old_day = cfg.day_of(self.last_seen_secs());
            let shift = (day - old_day) as u32;
            if shift > 0 {
                self.day_bits = self.day_bits.checked_shl(shift).unwrap_or(0);
                let s = (shift as usize).min(RECENT_DAYS);
                self.recent.copy_within(0..RECENT_DAYS - s, s);
                self.recent[..s].fill(0);
            }
            let dt = (compact - self.last_seen) as f64;
            self.interest = (self.interest as f64 * cfg.decay(dt)) as f32;
            self.last_seen = compact;
        }
        let last_day = cfg.day_of(self.last_seen_secs());
        let back = last_day - day;
        if back < PAIR_DAY_WINDOW {
            self.day_bits |= 1 << back;
        }
        self.active_days = self.day_bits.count_ones() as u16;
        let w = interest_weight(t);
        if w > 0.0 {
            let age = (self.last_seen as i64 - (secs - EPOCH_2000)).max(0) as f64;
            self.interest = (self.interest as f64 + w * cfg.decay(age)) as f32;
        }
        match t.kind {
            EventKind::ProductView => {
                self.views = self.views.saturating_add(1);
                self.dwell_ms = self.dwell_ms.saturating_add(t.dwell_ms);
                self.max_depth = self.max_depth.max(t.depth);
                if (back as usize) < RECENT_DAYS {
                    let c = &mut self.recent[back as usize];
                    *c = c.saturating_add(1);
                }
            }
            EventKind::Purchase => {
                self.purchases = self.purchases.saturating_add(1);
                self.quantity = self.quantity.saturating_add(t.quantity.max(1));
                self.amount_fen = self.amount_fen.saturating_add(t.amount_fen);
            }
            _ => {}
        }
    }
}

/// Per customer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerBehaviour {
    /// Pairs, sorted by product id.
    pub pairs: Vec<Pair>,
    pub events: u32,
    pub product_views: u32,
    pub purchases: u32,
    /// Distinct days with an event in the `DAY_WINDOW` days up to the last event.
    pub active_days: u16,
    pub day_bits: u64,
    pub last_seen: u32,
}

impl CustomerBehaviour {
    pub fn pair(&self, product: u32) -> Option<&Pair> {
        self.pairs
            .binary_search_by_key(&product, |p| p.product)
            .ok()
            .map(|i| &self.pairs[i])
    }
    /// Behaviour conversion rate: purchases ÷ product views.
    pub fn conversion(&self) -> Option<f64> {
        (self.product_views > 0).then(|| self.purchases as f64 / self.product_views as f64)
    }
    pub fn last_seen_secs(&self) -> i64 {
        self.last_seen as i64 + EPOCH_2000
    }
}

/// Per product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProductBehaviour {
    pub views: u64,
    pub viewers: u32,
    pub purchases: u64,
    pub buyers: u32,
    pub amount_fen: i64,
}

impl ProductBehaviour {
    /// Buyers ÷ viewers.
    pub fn conversion(&self) -> Option<f64> {
        (self.viewers > 0).then(|| self.buyers as f64 / self.viewers as f64)
    }
}

/// Cache lines of a customer's pairs fetched ahead (12 lines: 16 pairs).
const PREFETCH_LINES: usize = 12;

/// A hint to the processor to bring the line of `p` into the cache; it never faults and
/// has no effect on results.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it reads nothing the program sees and does not
    // fault on any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Customers by kehu's internal id, which is dense (assigned in order): a slot per id up
/// to the highest seen, no hashing. A customer without events takes an empty slot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerTable {
    slots: Vec<CustomerBehaviour>,
    count: usize,
}

impl CustomerTable {
    fn occupied(c: &CustomerBehaviour) -> bool {
        c.events > 0 || !c.pairs.is_empty()
    }
    pub fn get(&self, id: &u32) -> Option<&CustomerBehaviour> {
        self.slots.get(*id as usize).filter(|c| Self::occupied(c))
    }
    /// The slot of `id`, created empty if needed (it counts once it has an event).
    pub fn slot(&mut self, id: u32) -> &mut CustomerBehaviour {
        let i = id as usize;
        if i >= self.slots.len() {
            let want = (i + 1).max(self.slots.len() + self.slots.len() / 8);
            self.slots.resize_with(want, Default::default);
        }
        &mut self.slots[i]
    }
    pub fn insert(&mut self, id: u32, c: CustomerBehaviour) {
        let was = self.get(&id).is_some();
        let now = Self::occupied(&c);
        *self.slot(id) = c;
        self.count = self.count + now as usize - was as usize;
    }
    /// Asks the processor to start fetching the slot of `id` (see `BehaviourState::apply_all`).
    fn prefetch_slot(&self, id: u32) {
        let i = id as usize;
        if i < self.slots.len() {
            let p = self.slots.as_ptr().wrapping_add(i) as *const u8;
            prefetch(p);
            prefetch(p.wrapping_add(std::mem::size_of::<CustomerBehaviour>() - 1));
        }
    }
    /// Asks the processor to start fetching the pairs of `id` (its slot should be in the
    /// cache by now): the lines a search for a product reads, up to `PREFETCH_LINES`.
    fn prefetch_pairs(&self, id: u32) {
        if let Some(c) = self.slots.get(id as usize) {
            let bytes = std::mem::size_of_val(c.pairs.as_slice()).min(PREFETCH_LINES * 64);
            let p = c.pairs.as_ptr() as *const u8;
            let mut off = 0;
            while off < bytes {
                prefetch(p.wrapping_add(off));
                off += 64;
            }
        }
    }
    /// Customers with behaviour.
    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = (u32, &CustomerBehaviour)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, c)| Self::occupied(c))
            .map(|(i, c)| (i as u32, c))
    }
    pub fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter().map(|(i, _)| i)
    }
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut CustomerBehaviour> {
        self.slots.iter_mut()
    }
    /// Takes every customer out, in id order.
    pub fn drain(&mut self) -> Vec<(u32, CustomerBehaviour)> {
        self.count = 0;
        std::mem::take(&mut self.slots)
            .into_iter()
            .enumerate()
            .filter(|(_, c)| Self::occupied(c))
            .map(|(i, c)| (i as u32, c))
            .collect()
    }
}

impl std::ops::Index<&u32> for CustomerTable {
    type Output = CustomerBehaviour;
    fn index(&self, id: &u32) -> &CustomerBehaviour {
        self.get(id).expect("a customer with behaviour")
    }
}

/// The whole state, keyed by kehu's internal customer and product ids.
#[derive(Clone, Debug, Default)]
pub struct BehaviourState {
    pub cfg: StateConfig,
    pub customers: CustomerTable,
    pub products: IdMap<u32, ProductBehaviour>,
}

impl BehaviourState {
    pub fn new(cfg: StateConfig) -> Self {
        BehaviourState {
            cfg,
            ..Default::default()
        }
    }

    pub fn customer(&self, id: u32) -> Option<&CustomerBehaviour> {
        self.customers.get(&id)
    }

    /// Applies attributed events in order: the same state as `apply` one by one, faster
    /// on a large bank. A bank's state does not fit in the processor's caches, and an
    /// update mostly waits for two reads from memory (the customer's slot, then their
    /// pairs); here the slot of the event `AHEAD` places on and the pairs of the event
    /// `AHEAD / 2` places on are fetched while the current one is applied.
    pub fn apply_all(&mut self, events: &[(u32, Touch)]) {
        const AHEAD: usize = 16;
        for (i, (c, t)) in events.iter().enumerate() {
            if let Some((c2, _)) = events.get(i + AHEAD) {
                self.customers.prefetch_slot(*c2);
            }
            if let Some((c1, t1)) = events.get(i + AHEAD / 2) {
                if t1.product.is_some() {
                    self.customers.prefetch_pairs(*c1);
                }
            }
            self.apply(*c, t);
        }
    }

    /// Applies one attributed event.
    pub fn apply(&mut self, customer: u32, t: &Touch) {
        let cfg = self.cfg;
        if self.customers.get(&customer).is_none() {
            self.customers.count += 1;
        }
        let c = self.customers.slot(customer);
        c.events = c.events.saturating_add(1);
        // Customer-level distinct days and last seen.
        let secs = t.ts_ms.div_euclid(1000);
        let compact = (secs - EPOCH_2000).clamp(0, u32::MAX as i64) as u32;
        let day = cfg.day_of(secs);
        if c.day_bits == 0 && c.last_seen == 0 {
            c.last_seen = compact;
        } else if compact > c.last_seen {
            let shift = (day - cfg.day_of(c.last_seen_secs())) as u32;
            c.day_bits = c.day_bits.checked_shl(shift).unwrap_or(0);
            c.last_seen = compact;
        }
        let back = cfg.day_of(c.last_seen_secs()) - day;
        if back < DAY_WINDOW {
            c.day_bits |= 1 << back;
        }
        c.active_days = c.day_bits.count_ones() as u16;
        match t.kind {
            EventKind::ProductView => c.product_views = c.product_views.saturating_add(1),
            EventKind::Purchase => c.purchases = c.purchases.saturating_add(1),
            _ => {}
        }
        let Some(product) = t.product else { return };
        let i = match c.pairs.binary_search_by_key(&product, |p| p.product) {
            Ok(i) => i,
            Err(i) => {
                c.pairs.reserve_exact(1);
                c.pairs.insert(
                    i,
                    Pair {
                        product,
                        ..Default::default()
                    },
                );
                i
            }
        };
        let pair = &mut c.pairs[i];
        let (had_view, had_purchase) = (pair.views > 0, pair.purchases > 0);
        pair.apply(&cfg, t);
        let p = self.products.entry(product).or_default();
        match t.kind {
            EventKind::ProductView => {
                p.views += 1;
                if !had_view {
                    p.viewers += 1;
                }
            }
            EventKind::Purchase => {
                p.purchases += 1;
                p.amount_fen += t.amount_fen;
                if !had_purchase {
                    p.buyers += 1;
                }
            }
            _ => {}
        }
    }

    /// Forgets what was derived about these products for a customer (a deleted tag).
    pub fn forget(&mut self, customer: u32, products: &[u32]) {
        if self.customers.get(&customer).is_none() {
            return;
        }
        let c = self.customers.slot(customer);
        for &product in products {
            if let Ok(i) = c.pairs.binary_search_by_key(&product, |p| p.product) {
                let pair = c.pairs.remove(i);
                if let Some(p) = self.products.get_mut(&product) {
                    p.views -= pair.views as u64;
                    p.viewers -= (pair.views > 0) as u32;
                    p.purchases -= pair.purchases as u64;
                    p.buyers -= (pair.purchases > 0) as u32;
                    p.amount_fen -= pair.amount_fen;
                    if *p == ProductBehaviour::default() {
                        self.products.remove(&product);
                    }
                }
            }
        }
    }

    pub fn pair_count(&self) -> usize {
        self.customers.iter().map(|(_, c)| c.pairs.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY_MS: i64 = 86_400_000;
    const T0: i64 = 1_795_000_000_000;

    fn view(ts_ms: i64, product: u32, dwell_ms: u32, depth: u8) -> Touch {
        Touch {
            kind: EventKind::ProductView,
            ts_ms,
            product: Some(product),
            dwell_ms,
            depth,
            quantity: 0,
            amount_fen: 0,
        }
    }
    fn buy(ts_ms: i64, product: u32, amount_fen: i64) -> Touch {
        Touch {
            kind: EventKind::Purchase,
            ts_ms,
            product: Some(product),
            dwell_ms: 0,
            depth: 0,
            quantity: 1,
            amount_fen,
        }
    }

    #[test]
    fn a_pair_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Pair>(), 48);
    }

    #[test]
    fn views_dwell_days_and_purchases_add_up() {
        let mut s = BehaviourState::new(StateConfig::default());
        s.apply(1, &view(T0, 7, 30_000, 40));
        s.apply(1, &view(T0 + 1000, 7, 10_000, 90));
        s.apply(1, &view(T0 + 2 * DAY_MS, 7, 20_000, 10));
        s.apply(1, &buy(T0 + 2 * DAY_MS + 5, 7, 1_000_000));
        s.apply(2, &view(T0, 7, 0, 0));
        let c = s.customer(1).unwrap();
        let p = c.pair(7).unwrap();
        assert_eq!((p.views, p.dwell_ms, p.max_depth), (3, 60_000, 90));
        assert_eq!(p.mean_dwell_ms(), 20_000);
        assert_eq!(p.active_days, 2);
        assert_eq!((p.purchases, p.quantity, p.amount_fen), (1, 1, 1_000_000));
        assert_eq!(p.views_recent(&s.cfg, (T0 + 2 * DAY_MS) / 1000), 3);
        // Six days later only the last day's view is within seven days.
        assert_eq!(p.views_recent(&s.cfg, (T0 + 8 * DAY_MS) / 1000), 1);
        assert_eq!(p.views_recent(&s.cfg, (T0 + 30 * DAY_MS) / 1000), 0);
        assert_eq!(c.conversion(), Some(1.0 / 3.0));
        let prod = s.products[&7];
        assert_eq!((prod.viewers, prod.buyers, prod.views), (2, 1, 4));
        assert_eq!(prod.conversion(), Some(0.5));
    }

    #[test]
    fn interest_halves_every_half_life() {
        let cfg = StateConfig::default();
        let mut s = BehaviourState::new(cfg);
        s.apply(1, &view(T0, 3, 0, 0));
        let p = *s.customer(1).unwrap().pair(3).unwrap();
        let at = |days: f64| p.interest_at(&cfg, T0 / 1000 + (days * 86_400.0) as i64);
        assert!((at(0.0) - 1.0).abs() < 1e-6);
        assert!((at(14.0) - 0.5).abs() < 1e-6);
        assert!((at(28.0) - 0.25).abs() < 1e-6);
        // Weight: 1 + min(dwell/60s, 2) + depth/100.
        let mut s = BehaviourState::new(cfg);
        s.apply(1, &view(T0, 3, 300_000, 100));
        assert!((s.customer(1).unwrap().pair(3).unwrap().interest - 4.0).abs() < 1e-6);
    }

    #[test]
    fn forgetting_a_product_removes_it_everywhere() {
        let mut s = BehaviourState::new(StateConfig::default());
        s.apply(1, &view(T0, 3, 0, 0));
        s.apply(1, &buy(T0, 3, 100));
        s.apply(1, &view(T0, 4, 0, 0));
        s.forget(1, &[3]);
        assert!(s.customer(1).unwrap().pair(3).is_none());
        assert!(!s.products.contains_key(&3));
        assert!(s.customer(1).unwrap().pair(4).is_some());
    }

    fn touches() -> impl Strategy<Value = Vec<(u32, Touch)>> {
        prop::collection::vec(
            (1u32..4, 0i64..40 * DAY_MS, 1u32..5, 0u32..200_000, 0u8..=100, any::<bool>()),
            1..60,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(c, dt, p, dwell, depth, is_buy)| {
                    let t = if is_buy { buy(T0 + dt, p, 100) } else { view(T0 + dt, p, dwell, depth) };
                    (c, t)
                })
                .collect()
        })
    }

    proptest! {
        /// Applying a batch at once (fetching ahead) gives exactly the state of applying
        /// its events one by one.
        #[test]
        fn a_batch_is_its_events_one_by_one(ts in touches(), cut in 0usize..60) {
            let cfg = StateConfig::default();
            let mut a = BehaviourState::new(cfg);
            for (c, t) in &ts { a.apply(*c, t); }
            let mut b = BehaviourState::new(cfg);
            let (x, y) = ts.split_at(cut.min(ts.len()));
            b.apply_all(x);
            b.apply_all(y);
            prop_assert_eq!(&a.customers, &b.customers);
            prop_assert_eq!(&a.products, &b.products);
        }

        /// Events arriving out of order (late batches, identify stitching) give the same
        /// state as in order, within float rounding of the interest.
        #[test]
        fn order_does_not_matter(ts in touches(), seed in any::<u64>()) {
            let cfg = StateConfig::default();
            let mut a = BehaviourState::new(cfg);
            for (c, t) in &ts { a.apply(*c, t); }
            let mut shuffled = ts.clone();
            let n = shuffled.len();
            let mut x = seed;
            for i in (1..n).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (x >> 33) as usize % (i + 1));
            }
            let mut b = BehaviourState::new(cfg);
            for (c, t) in &shuffled { b.apply(*c, t); }
            prop_assert_eq!(a.products.clone(), b.products.clone());
            prop_assert_eq!(a.customers.len(), b.customers.len());
            for (id, ca) in a.customers.iter() {
                let cb = &b.customers[&id];
                prop_assert_eq!((ca.events, ca.product_views, ca.purchases, ca.active_days, ca.day_bits, ca.last_seen),
                                (cb.events, cb.product_views, cb.purchases, cb.active_days, cb.day_bits, cb.last_seen));
                prop_assert_eq!(ca.pairs.len(), cb.pairs.len());
                for (pa, pb) in ca.pairs.iter().zip(&cb.pairs) {
                    let mut pa2 = *pa; let mut pb2 = *pb;
                    prop_assert!((pa.interest - pb.interest).abs() <= 1e-4 * pa.interest.abs().max(1.0));
                    pa2.interest = 0.0; pb2.interest = 0.0;
                    prop_assert_eq!(pa2, pb2);
                }
            }
        }
    }
}
