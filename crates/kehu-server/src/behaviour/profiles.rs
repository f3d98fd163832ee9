//! Every customer's decision profile in memory: what a decision needs besides behaviour
//! (age, income band, current deposits, held products, latest assessment, the
//! personalization switch), one compact record per customer indexed by customer id.
//! Loaded in bulk at start, refreshed by kehu's own writes at once and by other
//! processes' writes within `behaviour.profile_cache_secs` (see docs/behaviour.md).

use chrono::{Datelike, NaiveDate};
use kehu_store::behaviour::{DecisionProfile, ProfileRow};

/// No date (birth date or assessment).
const NO_DATE: i32 = i32::MIN;
const PRESENT: u8 = 1;
const PERSONALIZED: u8 = 2;

/// One customer: 40 bytes, plus 4 bytes per held product on the heap.
#[derive(Clone, Debug, Default)]
struct Slot {
    /// Current deposits, fen.
    liquid_fen: i64,
    /// Held product ids, sorted, distinct.
    held: Box<[u32]>,
    /// Days since 0001-01-01 (CE), or `NO_DATE`.
    birth: i32,
    assessed_on: i32,
    /// 0: none; else 1 + index into `ProfileTable::bands`.
    income: u8,
    /// 0: no assessment; else 1 + index into `ProfileTable::levels`.
    level: u8,
    flags: u8,
}

/// The decision profiles of all customers.
#[derive(Default)]
pub struct ProfileTable {
    slots: Vec<Slot>,
    /// Income band and assessment level codes as stored (a handful of distinct strings).
    bands: Vec<String>,
    levels: Vec<String>,
    count: usize,
}

fn days(d: Option<NaiveDate>) -> i32 {
    d.map(|d| d.num_days_from_ce()).unwrap_or(NO_DATE)
}

fn date(days: i32) -> Option<NaiveDate> {
    if days == NO_DATE {
        None
    } else {
        NaiveDate::from_num_days_from_ce_opt(days)
    }
}

fn intern(list: &mut Vec<String>, s: &str) -> u8 {
    if let Some(i) = list.iter().position(|x| x == s) {
        return i as u8 + 1;
    }
    if list.len() >= 254 {
        // Not a band or level code (there are a handful); kept as unknown.
        return 0;
    }
    list.push(s.to_string());
    list.len() as u8
}

impl ProfileTable {
    /// Builds the table from the store's bulk read.
    pub async fn load(store: &kehu_store::Store) -> Result<ProfileTable, kehu_store::StoreError> {
        let mut t = ProfileTable::default();
        // Holdings arrive in no particular order: held ids are collected per customer
        // in one flat list first and put into the records at the end.
        let mut held: Vec<(u32, u32)> = Vec::new();
        store
            .scan_decision_profiles(&mut |row| match row {
                ProfileRow::Customer { id, birth_date, income_band, personalization } => {
                    let Some(s) = t.slot_mut(id) else { return };
                    if s.flags & PRESENT == 0 {
                        t.count += 1;
                    }
                    let income = income_band.map(|b| intern(&mut t.bands, b)).unwrap_or(0);
                    let s = t.slot_mut(id).expect("in range");
                    s.birth = days(birth_date);
                    s.income = income;
                    s.flags = PRESENT | if personalization { PERSONALIZED } else { 0 };
                    s.assessed_on = NO_DATE;
                }
                ProfileRow::Holding { customer_id, product_id, current_deposit, balance_fen } => {
                    let Some(s) = t.slot_mut(customer_id) else { return };
                    if current_deposit {
                        s.liquid_fen += balance_fen;
                    }
                    if let Some(p) = product_id {
                        held.push((customer_id as u32, p as u32));
                    }
                }
                ProfileRow::Assessment { customer_id, level, assessed_on } => {
                    let l = intern(&mut t.levels, level);
                    let Some(s) = t.slot_mut(customer_id) else { return };
                    s.level = l;
                    s.assessed_on = days(Some(assessed_on));
                }
            })
            .await?;
        held.sort_unstable();
        held.dedup();
        let mut i = 0;
        while i < held.len() {
            let c = held[i].0;
            let mut j = i;
            while j < held.len() && held[j].0 == c {
                j += 1;
            }
            if let Some(s) = t.slots.get_mut(c as usize) {
                s.held = held[i..j].iter().map(|h| h.1).collect();
            }
            i = j;
        }
        // Slots touched by holdings or assessments of a customer that is not there.
        for s in &mut t.slots {
            if s.flags & PRESENT == 0 && (s.liquid_fen != 0 || !s.held.is_empty() || s.level != 0) {
                *s = Slot::default();
            }
        }
        t.slots.shrink_to_fit();
        Ok(t)
    }

    fn slot_mut(&mut self, id: i64) -> Option<&mut Slot> {
        if !(0..=u32::MAX as i64).contains(&id) {
            return None;
        }
        let i = id as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || Slot { birth: NO_DATE, assessed_on: NO_DATE, ..Default::default() });
        }
        Some(&mut self.slots[i])
    }

    /// The profile of a customer, if the table has it.
    pub fn get(&self, id: i64) -> Option<DecisionProfile> {
        let s = self.slots.get(usize::try_from(id).ok()?)?;
        if s.flags & PRESENT == 0 {
            return None;
        }
        Some(DecisionProfile {
            birth_date: date(s.birth),
            income_band: (s.income > 0).then(|| self.bands[s.income as usize - 1].clone()),
            personalization: s.flags & PERSONALIZED != 0,
            liquid_fen: s.liquid_fen,
            held: s.held.to_vec(),
            assessment: match (s.level, date(s.assessed_on)) {
                (l, Some(on)) if l > 0 => Some((self.levels[l as usize - 1].clone(), on)),
                _ => None,
            },
        })
    }

    /// Whether the table has this customer.
    pub fn contains(&self, id: i64) -> bool {
        usize::try_from(id).ok().and_then(|i| self.slots.get(i)).is_some_and(|s| s.flags & PRESENT != 0)
    }

    /// Puts (or, with `None`, removes) a customer's profile.
    pub fn set(&mut self, id: i64, p: Option<&DecisionProfile>) {
        let Some(p) = p else {
            if let Some(s) = usize::try_from(id).ok().and_then(|i| self.slots.get_mut(i)) {
                if s.flags & PRESENT != 0 {
                    self.count -= 1;
                }
                *s = Slot { birth: NO_DATE, assessed_on: NO_DATE, ..Default::default() };
            }
            return;
        };
        let income = p.income_band.as_deref().map(|b| intern(&mut self.bands, b)).unwrap_or(0);
        let (level, assessed_on) = match &p.assessment {
            Some((l, on)) => (intern(&mut self.levels, l), days(Some(*on))),
            None => (0, NO_DATE),
        };
        let mut held = p.held.clone();
        held.sort_unstable();
        held.dedup();
        let Some(s) = self.slot_mut(id) else { return };
        let was = s.flags & PRESENT != 0;
        *s = Slot {
            liquid_fen: p.liquid_fen,
            held: held.into_boxed_slice(),
            birth: days(p.birth_date),
            assessed_on,
            income,
            level,
            flags: PRESENT | if p.personalization { PERSONALIZED } else { 0 },
        };
        if !was {
            self.count += 1;
        }
    }

    /// Customers in the table.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes held: the records (by capacity) and the held-product lists (without the
    /// allocator's own overhead).
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.slots.iter().map(|s| s.held.len() * 4).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_goes_in_and_comes_out_the_same() {
        let mut t = ProfileTable::default();
        assert!(t.get(7).is_none());
        let p = DecisionProfile {
            birth_date: NaiveDate::from_ymd_opt(1960, 2, 29),
            income_band: Some("10k-20k".into()),
            personalization: true,
            liquid_fen: 1_234_500,
            held: vec![9, 3, 3],
            assessment: Some(("C3".into(), NaiveDate::from_ymd_opt(2026, 1, 5).unwrap())),
        };
        t.set(7, Some(&p));
        let q = t.get(7).unwrap();
        assert_eq!(q.birth_date, p.birth_date);
        assert_eq!(q.income_band, p.income_band);
        assert!(q.personalization);
        assert_eq!(q.liquid_fen, 1_234_500);
        assert_eq!(q.held, vec![3, 9]);
        assert_eq!(q.assessment, p.assessment);
        assert_eq!(t.len(), 1);
        assert!(t.contains(7) && !t.contains(6) && !t.contains(-1));
        t.set(7, Some(&DecisionProfile::default()));
        let q = t.get(7).unwrap();
        assert!(q.birth_date.is_none() && q.income_band.is_none() && q.assessment.is_none() && q.held.is_empty());
        assert_eq!(t.len(), 1);
        t.set(7, None);
        assert!(t.get(7).is_none());
        assert_eq!(t.len(), 0);
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }
}
