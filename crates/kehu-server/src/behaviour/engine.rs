//! The live behaviour engine: one writer task commits event batches (grouping concurrent
//! requests into one transaction) and then applies them to the in-memory state; a
//! snapshot task saves what changed; recommendations read the state under a read lock.

use kehu_domain::behaviour::event::EventKind;
use kehu_domain::behaviour::state::{BehaviourState, StateConfig, Touch};
use kehu_domain::decide::recommend::{
    self, Catalogue, CustomerView, Decision, Offer, Placement, RecommendConfig,
};
use kehu_domain::decide::suitability::{Assessment, Questionnaire, RiskTolerance, SuitabilityConfig};
use kehu_domain::money::Fen;
use kehu_domain::state::{IncomeBand, ProductKind};
use super::profiles::ProfileTable;
use kehu_store::behaviour::{DecisionLog, DecisionProfile, Inserted, NewEvent, ProfileMarks, StoredEvent};
use kehu_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

/// Behaviour settings (the `[behaviour]` section of the configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviourConfig {
    /// Most events in one request.
    pub max_batch: usize,
    /// How far ahead of the server clock an event time may be, seconds.
    pub max_future_secs: i64,
    /// Interest half-life, days.
    pub half_life_days: f64,
    /// Seconds between snapshots of the behaviour state.
    pub snapshot_secs: u64,
    /// A product view counts as a detail read from this visible time (ms)…
    pub detail_dwell_ms: i64,
    /// …or this scroll depth (%).
    pub detail_depth: i64,
    /// Interest from which a product becomes a tag ("my tags").
    pub tag_min_interest: f64,
    /// Seconds between looks for changes of customers' decision profiles (profile,
    /// holdings, assessment, personalization) made by other processes: such changes take
    /// effect within this time; changes through this server take effect at once.
    pub profile_cache_secs: u64,
    /// A file with a questionnaire (JSON) replacing the default one.
    pub questionnaire_file: Option<std::path::PathBuf>,
    pub suitability: SuitabilityConfig,
    pub recommend: RecommendConfig,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        BehaviourConfig {
            max_batch: 1000,
            max_future_secs: 300,
            half_life_days: 14.0,
            snapshot_secs: 30,
            detail_dwell_ms: 10_000,
            detail_depth: 50,
            tag_min_interest: 0.5,
            profile_cache_secs: 60,
            questionnaire_file: None,
            suitability: SuitabilityConfig::default(),
            recommend: RecommendConfig::default(),
        }
    }
}

/// A deleted tag: `product:CODE` or `kind:CODE`, with when it was deleted.
#[derive(Clone, Debug, PartialEq)]
struct Deletion {
    tag: String,
    deleted_ms: i64,
}

struct Live {
    state: BehaviourState,
    /// Highest event sequence applied.
    watermark: i64,
    dirty: HashSet<u32>,
    devices: HashMap<String, i64>,
    deletions: HashMap<u32, Vec<Deletion>>,
}

/// The products as the engine knows them.
pub struct Shelf {
    pub catalogue: Catalogue,
    pub by_code: HashMap<String, u32>,
}

struct WriteJob {
    received_ms: i64,
    /// Moved into the writer's combined batch; `count` says how many were sent.
    events: Vec<NewEvent>,
    count: usize,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// The app name of the server's own customer app pages (`/app`).
pub const WEB_APP: &str = "kehu-web-app";

pub struct Engine {
    pub store: Store,
    pub cfg: BehaviourConfig,
    pub state_cfg: StateConfig,
    pub questionnaire: Questionnaire,
    live: RwLock<Live>,
    shelf: RwLock<Arc<Shelf>>,
    /// Every customer's decision profile (see `profiles`).
    profiles: RwLock<ProfileTable>,
    /// While the table is read again in bulk: customers changed meanwhile, to be read
    /// again after the swap.
    reloading: Mutex<Option<Vec<i64>>>,
    /// Where the look for other processes' changes has read up to.
    profile_marks: tokio::sync::Mutex<ProfileMarks>,
    keys: Mutex<HashMap<String, (i64, std::time::Instant)>>,
    /// Customer numbers seen by event collection → kehu ids. Only found customers are
    /// kept: a customer's number and id never change and customers are not deleted, so an
    /// entry stays right; an unknown number is asked again (it may be imported later).
    /// Bounded by `CUSTOMER_IDS_MAX` (cleared when full).
    customer_ids: RwLock<HashMap<String, i64>>,
    writer: mpsc::Sender<WriteJob>,
    writer_rx: Mutex<Option<mpsc::Receiver<WriteJob>>>,
    log_tx: mpsc::UnboundedSender<DecisionLog>,
    log_rx: Mutex<Option<mpsc::UnboundedReceiver<DecisionLog>>>,
    /// The app id of kehu itself (purchases made through the API are events too).
    pub self_app: Mutex<i64>,
    /// The key of the web app (`/app` pages' tracker tag), set by `start`.
    web_key: Mutex<Option<String>>,
    /// The active model of purpose `propensity`, replacing the default weights.
    trained: RwLock<Option<Arc<TrainedPropensity>>>,
}

/// Customer numbers kept by `Engine::customer_ids` before the map starts over (~100 bytes
/// each).
const CUSTOMER_IDS_MAX: usize = 500_000;

/// The purpose under which a trained purchase-propensity model is registered.
pub const PROPENSITY_PURPOSE: &str = "propensity";

/// A scorecard trained on behaviour features (`kehu features export` → `kehu model
/// train --register propensity`), used instead of the default weights.
pub struct TrainedPropensity {
    version: i64,
    model: kehu_scorecard::Model,
    /// Per model variable, its index in `Features::NAMES`.
    idx: Vec<usize>,
}

impl TrainedPropensity {
    pub fn new(version: i64, model: kehu_scorecard::Model) -> Result<Self, String> {
        let mut idx = Vec::new();
        for v in &model.variables {
            let name = &v.binning.name;
            let i = recommend::Features::NAMES
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| format!("model variable {name:?} is not a behaviour feature ({})", recommend::Features::NAMES.join(", ")))?;
            if v.binning.kind != kehu_scorecard::binning::VarKind::Numeric {
                return Err(format!("model variable {name:?} must be numeric"));
            }
            idx.push(i);
        }
        Ok(TrainedPropensity { version, model, idx })
    }
}

impl recommend::Propensity for TrainedPropensity {
    fn probability(&self, _kind: ProductKind, f: &recommend::Features) -> f64 {
        let vals = f.values();
        let mut z = self.model.intercept;
        for (v, &i) in self.model.variables.iter().zip(&self.idx) {
            if let Some(b) = v.binning.bin_of_number(vals[i]) {
                z += v.coefficient * v.binning.bins[b].woe;
            }
        }
        1.0 / (1.0 + (-z).exp())
    }
    fn name(&self) -> String {
        format!("{PROPENSITY_PURPOSE} v{}", self.version)
    }
}

impl Engine {
    pub fn new(store: Store, cfg: BehaviourConfig, utc_offset_secs: i32) -> Result<Engine, String> {
        let state_cfg = StateConfig {
            half_life_days: cfg.half_life_days,
            utc_offset_secs,
        };
        if !(cfg.half_life_days > 0.0) {
            return Err(format!("behaviour.half_life_days must be more than 0, not {}", cfg.half_life_days));
        }
        let questionnaire = match &cfg.questionnaire_file {
            None => Questionnaire::default_zh(),
            Some(f) => {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| format!("behaviour.questionnaire_file {}: {e}", f.display()))?;
                let q: Questionnaire = serde_json::from_str(&text)
                    .map_err(|e| format!("behaviour.questionnaire_file {}: {e}", f.display()))?;
                q.check().map_err(|e| format!("behaviour.questionnaire_file {}: {e}", f.display()))?;
                q
            }
        };
        let (writer, rx) = mpsc::channel(256);
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        Ok(Engine {
            store,
            cfg,
            state_cfg,
            questionnaire,
            live: RwLock::new(Live {
                state: BehaviourState::new(state_cfg),
                watermark: 0,
                dirty: HashSet::new(),
                devices: HashMap::new(),
                deletions: HashMap::new(),
            }),
            shelf: RwLock::new(Arc::new(Shelf {
                catalogue: Catalogue::default(),
                by_code: HashMap::new(),
            })),
            profiles: RwLock::new(ProfileTable::default()),
            reloading: Mutex::new(None),
            profile_marks: tokio::sync::Mutex::new(ProfileMarks::default()),
            keys: Mutex::new(HashMap::new()),
            customer_ids: RwLock::new(HashMap::new()),
            writer,
            writer_rx: Mutex::new(Some(rx)),
            log_tx,
            log_rx: Mutex::new(Some(log_rx)),
            self_app: Mutex::new(0),
            web_key: Mutex::new(None),
            trained: RwLock::new(None),
        })
    }

    /// Loads the snapshot, replays later events, loads the shelf, starts the writer, the
    /// decision logger and the snapshot task. Idempotent.
    pub async fn start(self: &Arc<Self>) -> Result<(), StoreError> {
        let Some(rx) = self.writer_rx.lock().expect("lock").take() else {
            return Ok(());
        };
        // kehu's own app (purchases through the API): a random key nobody is given.
        let (own, _) = self.store.ensure_own_app_key("kehu").await?;
        *self.self_app.lock().expect("lock") = own;
        let (_, web_key) = self.store.ensure_own_app_key(WEB_APP).await?;
        *self.web_key.lock().expect("lock") = Some(web_key);
        self.refresh_shelf().await?;
        self.refresh_model().await?;
        // Marks first: what other processes change during the bulk read is found later.
        self.store.profile_changes(&mut *self.profile_marks.lock().await).await?;
        self.reload_profiles().await?;
        let (mut state, watermark) = self.store.load_behaviour(self.state_cfg).await?;
        let deletions = load_deletions(&self.store).await?;
        let shelf = self.shelf();
        for e in self.store.attributed_after(watermark).await? {
            apply_stored(&mut state, &deletions, &shelf, &e);
        }
        let wm = replay(&self.store, &mut state, &deletions, &shelf, watermark, i64::MAX, &|_| {}).await?;
        let devices = self.store.device_links().await?.into_iter().collect();
        {
            let mut live = self.live.write().expect("lock");
            live.dirty = if wm > watermark { state.customers.keys().collect() } else { HashSet::new() };
            live.state = state;
            live.watermark = wm;
            live.devices = devices;
            live.deletions = deletions;
        }
        let me = self.clone();
        tokio::spawn(async move { me.write_loop(rx).await });
        if let Some(mut lrx) = self.log_rx.lock().expect("lock").take() {
            let store = self.store.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(l) = lrx.recv().await {
                    buf.push(l);
                    while buf.len() < 1000 {
                        match lrx.try_recv() {
                            Ok(l) => buf.push(l),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = store.log_decisions(&buf).await {
                        tracing::error!(error = %e, "writing the decision log");
                    }
                    buf.clear();
                }
            });
        }
        let me = self.clone();
        let every = std::time::Duration::from_secs(self.cfg.profile_cache_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = me.follow_profile_changes().await {
                    tracing::error!(error = %e, "reading changes of decision profiles");
                }
            }
        });
        let me = self.clone();
        let every = std::time::Duration::from_secs(self.cfg.snapshot_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = me.refresh_model().await {
                    tracing::error!(error = %e, "reading the active propensity model");
                }
                if let Err(e) = me.snapshot().await {
                    tracing::error!(error = %e, "saving the behaviour snapshot");
                }
            }
        });
        Ok(())
    }

    /// Saves what changed since the last snapshot.
    pub async fn snapshot(&self) -> Result<(), StoreError> {
        let (customers, products, watermark) = {
            let mut live = self.live.write().expect("lock");
            if live.dirty.is_empty() {
                return Ok(());
            }
            let dirty = std::mem::take(&mut live.dirty);
            let customers: Vec<_> = dirty
                .iter()
                .map(|id| (*id, live.state.customers.get(id).cloned().unwrap_or_default()))
                .collect();
            let products: Vec<_> = live.state.products.iter().map(|(k, v)| (*k, *v)).collect();
            (customers, products, live.watermark)
        };
        self.store.save_behaviour(&customers, &products, watermark, false).await
    }

    /// Picks up the active `propensity` model (or its removal); an unusable model is
    /// logged and the default weights stay.
    pub async fn refresh_model(&self) -> Result<(), StoreError> {
        let active = self.store.active_model(PROPENSITY_PURPOSE).await?;
        let current = self.trained.read().expect("lock").as_ref().map(|t| t.version);
        match active {
            None => *self.trained.write().expect("lock") = None,
            Some((info, _)) if Some(info.version) == current => {}
            Some((info, json)) => {
                let parsed = kehu_scorecard::Model::from_json(&json)
                    .map_err(|e| e.to_string())
                    .and_then(|m| TrainedPropensity::new(info.version, m));
                match parsed {
                    Ok(t) => {
                        tracing::info!(version = info.version, "using the trained propensity model");
                        *self.trained.write().expect("lock") = Some(Arc::new(t));
                    }
                    Err(e) => tracing::error!(version = info.version, error = %e, "the active propensity model cannot be used; default weights stay"),
                }
            }
        }
        Ok(())
    }

    pub fn shelf(&self) -> Arc<Shelf> {
        self.shelf.read().expect("lock").clone()
    }

    /// Reloads products and co-purchases (after imports and purchases).
    pub async fn refresh_shelf(&self) -> Result<(), StoreError> {
        let offers = offers(&self.store.list_products(None).await?, &self.cfg.recommend.levers);
        let by_code = offers.iter().map(|o| (o.code.clone(), o.id)).collect();
        let baskets = self.store.baskets().await?;
        let catalogue = Catalogue::new(offers, baskets);
        *self.shelf.write().expect("lock") = Arc::new(Shelf { catalogue, by_code });
        Ok(())
    }

    /// Forgets the cached app keys, so a revoked key is refused from the next request.
    pub fn forget_app_keys(&self) {
        self.keys.lock().expect("lock").clear();
    }

    /// The version of the trained propensity model in use, if one replaces the default
    /// weights.
    pub fn trained_model_version(&self) -> Option<i64> {
        self.trained.read().expect("lock").as_ref().map(|t| t.version)
    }

    /// The app of a key (cached for a minute).
    pub async fn app_for_key(&self, key: &str) -> Result<Option<i64>, StoreError> {
        if let Some((id, at)) = self.keys.lock().expect("lock").get(key) {
            if at.elapsed().as_secs() < 60 {
                return Ok(Some(*id));
            }
        }
        let id = self.store.app_for_key(key).await?;
        if let Some(id) = id {
            self.keys
                .lock()
                .expect("lock")
                .insert(key.to_string(), (id, std::time::Instant::now()));
        }
        Ok(id)
    }

    /// kehu ids of customer numbers (`ext`, repeats allowed), in the same order (none:
    /// unknown): from memory, and the store for those not seen yet (one statement).
    pub async fn customer_ids(&self, ext: &[&str]) -> Result<Vec<Option<i64>>, StoreError> {
        let mut out = Vec::with_capacity(ext.len());
        let mut missing: Vec<&str> = Vec::new();
        {
            let known = self.customer_ids.read().expect("lock");
            for e in ext {
                let id = known.get(*e).copied();
                if id.is_none() {
                    missing.push(e);
                }
                out.push(id);
            }
        }
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            let found = self.store.customer_ids_by_external(&missing).await?;
            for (e, id) in ext.iter().zip(out.iter_mut()) {
                if id.is_none() {
                    *id = found.get(*e).copied();
                }
            }
            let mut known = self.customer_ids.write().expect("lock");
            if known.len() + found.len() > CUSTOMER_IDS_MAX {
                known.clear();
            }
            known.extend(found);
        }
        Ok(out)
    }

    /// The customer a device is linked to.
    pub fn device_customer(&self, device: &str) -> Option<i64> {
        self.live.read().expect("lock").devices.get(device).copied()
    }

    /// Commits a batch (durably) and applies it to the state; returns per event its
    /// sequence number (none: duplicate).
    pub async fn write(&self, received_ms: i64, events: Vec<NewEvent>) -> Result<Vec<Option<i64>>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(WriteJob { received_ms, count: events.len(), events, reply })
            .await
            .map_err(|_| StoreError::Conflict("the event writer has stopped".into()))?;
        let inserted = rx
            .await
            .map_err(|_| StoreError::Conflict("the event writer has stopped".into()))??;
        Ok(inserted.seqs)
    }

    /// Commits the waiting batches together; a second task applies each committed group
    /// to the state and then answers its batches, in commit order, while the next group
    /// is being written (the answer still follows both the commit and the state update).
    async fn write_loop(self: Arc<Self>, mut rx: mpsc::Receiver<WriteJob>) {
        let (applied_tx, mut applied_rx) = mpsc::channel::<(Vec<NewEvent>, Inserted, Vec<WriteJob>)>(2);
        let me = self.clone();
        tokio::spawn(async move {
            while let Some((all, ins, jobs)) = applied_rx.recv().await {
                me.apply_inserted(&all, &ins);
                let mut at = 0;
                for j in jobs {
                    let k = j.count;
                    let part = Inserted {
                        seqs: ins.seqs[at..at + k].to_vec(),
                        attributed: Vec::new(),
                    };
                    at += k;
                    let _ = j.reply.send(Ok(part));
                }
            }
        });
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            let mut n = jobs[0].events.len();
            while n < 5000 {
                match rx.try_recv() {
                    Ok(j) => {
                        n += j.events.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
            let received = jobs.iter().map(|j| j.received_ms).max().unwrap_or(0);
            let mut all: Vec<NewEvent> = Vec::with_capacity(n);
            for j in &mut jobs {
                all.append(&mut j.events);
            }
            let result = self.store.insert_events(received, &all).await;
            match result {
                Ok(ins) => {
                    if let Err(mpsc::error::SendError((_, _, jobs))) = applied_tx.send((all, ins, jobs)).await {
                        for j in jobs {
                            let _ = j.reply.send(Err(StoreError::Conflict("the event writer has stopped".into())));
                        }
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for j in jobs {
                        let _ = j.reply.send(Err(StoreError::Conflict(format!("writing events failed: {msg}"))));
                    }
                }
            }
        }
    }

    fn apply_inserted(&self, events: &[NewEvent], ins: &Inserted) {
        let shelf = self.shelf();
        let mut live = self.live.write().expect("lock");
        let live = &mut *live;
        let mut touches = Vec::with_capacity(events.len() + ins.attributed.len());
        for (e, seq) in events.iter().zip(&ins.seqs) {
            let Some(seq) = seq else { continue };
            live.watermark = live.watermark.max(*seq);
            if e.kind == EventKind::Identify {
                if let (Some(d), Some(c)) = (&e.device, e.customer_id) {
                    live.devices.insert(d.clone(), c);
                }
            }
            if let Some(c) = e.customer_id {
                let s = StoredEvent {
                    seq: *seq,
                    customer_id: Some(c),
                    kind: e.kind,
                    ts_ms: e.ts_ms,
                    product_id: e.product_id,
                    dwell_ms: e.dwell_ms,
                    depth: e.depth,
                    quantity: e.quantity,
                    amount_fen: e.amount_fen,
                };
                touches.extend(touch_of(&live.deletions, &shelf, &s));
                live.dirty.insert(c as u32);
            }
        }
        for s in &ins.attributed {
            touches.extend(touch_of(&live.deletions, &shelf, s));
            if let Some(c) = s.customer_id {
                live.dirty.insert(c as u32);
            }
        }
        live.state.apply_all(&touches);
    }

    /// Reads the state.
    pub fn with_state<T>(&self, f: impl FnOnce(&BehaviourState, i64) -> T) -> T {
        let live = self.live.read().expect("lock");
        f(&live.state, live.watermark)
    }

    /// Product ids whose interest the customer deleted.
    fn forgotten(&self, live: &Live, shelf: &Shelf, customer: u32) -> Vec<u32> {
        let mut out: Vec<u32> = live
            .deletions
            .get(&customer)
            .map(|ds| {
                shelf
                    .catalogue
                    .offers
                    .iter()
                    .filter(|o| ds.iter().any(|d| tag_matches(&d.tag, o)))
                    .map(|o| o.id)
                    .collect()
            })
            .unwrap_or_default();
        out.sort_unstable();
        out
    }

    /// Deletes a derived tag: its interest is forgotten now and events on it up to now
    /// are not used again (also by a rebuild).
    pub async fn delete_tag(&self, customer: i64, tag: &str, now_ms: i64) -> Result<(), StoreError> {
        self.store.delete_tag(customer, tag, now_ms).await?;
        let shelf = self.shelf();
        let products: Vec<u32> = shelf
            .catalogue
            .offers
            .iter()
            .filter(|o| tag_matches(tag, o))
            .map(|o| o.id)
            .collect();
        let mut live = self.live.write().expect("lock");
        live.state.forget(customer as u32, &products);
        let ds = live.deletions.entry(customer as u32).or_default();
        ds.retain(|d| d.tag != tag);
        ds.push(Deletion { tag: tag.to_string(), deleted_ms: now_ms });
        live.dirty.insert(customer as u32);
        Ok(())
    }

    /// The app key the web app's pages give the tracker (`None` before `start`).
    pub fn web_app_key(&self) -> Option<String> {
        self.web_key.lock().expect("lock").clone()
    }

    /// Reads a customer's profile again from the store into the table: every write of
    /// this server that changes a profile (purchase, assessment, personalization) calls
    /// it after its commit.
    pub async fn refresh_profile(&self, customer: i64) -> Result<(), StoreError> {
        if let Some(touched) = self.reloading.lock().expect("lock").as_mut() {
            touched.push(customer);
        }
        let p = self.store.decision_profile(customer).await?;
        self.profiles.write().expect("lock").set(customer, p.as_ref());
        Ok(())
    }

    /// Reads every customer's profile again in bulk (at start and after an import of
    /// customers or holdings); decisions meanwhile use the old table.
    pub async fn reload_profiles(&self) -> Result<(), StoreError> {
        *self.reloading.lock().expect("lock") = Some(Vec::new());
        let t = std::time::Instant::now();
        let table = ProfileTable::load(&self.store).await;
        let table = match table {
            Ok(table) => table,
            Err(e) => {
                *self.reloading.lock().expect("lock") = None;
                return Err(e);
            }
        };
        let (n, bytes) = (table.len(), table.bytes());
        *self.profiles.write().expect("lock") = table;
        let touched = self.reloading.lock().expect("lock").take().unwrap_or_default();
        for c in touched {
            self.refresh_profile(c).await?;
        }
        tracing::info!(customers = n, bytes, secs = t.elapsed().as_secs_f64(), "decision profiles loaded");
        Ok(())
    }

    /// Customers in the profile table and the bytes it holds.
    pub fn profile_stats(&self) -> (usize, usize) {
        let t = self.profiles.read().expect("lock");
        (t.len(), t.bytes())
    }

    /// Picks up profile changes made by other processes (or other servers on the same
    /// database): new assessments, purchases and personalization switches by id, and
    /// committed customer or holding imports (then everything is read again).
    pub async fn follow_profile_changes(&self) -> Result<(), StoreError> {
        let changes = {
            let mut marks = self.profile_marks.lock().await;
            self.store.profile_changes(&mut marks).await?
        };
        if changes.reload {
            self.refresh_shelf().await?;
            self.reload_profiles().await?;
        } else {
            for c in changes.customers {
                self.refresh_profile(c).await?;
            }
        }
        Ok(())
    }

    /// A customer's decision profile, from memory; a customer not in the table yet (added
    /// by another process since the last bulk read) is read from the store and kept.
    pub async fn profile(&self, customer: i64) -> Result<Option<Arc<DecisionProfile>>, StoreError> {
        if let Some(p) = self.profiles.read().expect("lock").get(customer) {
            return Ok(Some(Arc::new(p)));
        }
        let Some(p) = self.store.decision_profile(customer).await? else {
            return Ok(None);
        };
        self.profiles.write().expect("lock").set(customer, Some(&p));
        Ok(Some(Arc::new(p)))
    }

    /// Whether the customer id is one the profile table knows (no store read).
    pub fn known_customer(&self, customer: i64) -> bool {
        self.profiles.read().expect("lock").contains(customer)
    }

    /// One decision: ranks, explains and logs.
    pub fn decide(
        &self,
        customer: i64,
        profile: &DecisionProfile,
        placement: &Placement,
        n: usize,
        now: chrono::DateTime<chrono::Utc>,
        today: chrono::NaiveDate,
        placement_name: &str,
    ) -> Decision {
        let shelf = self.shelf();
        let weights = self.cfg.recommend.weights;
        let trained = self.trained.read().expect("lock").clone();
        let propensity: &dyn recommend::Propensity = match &trained {
            Some(t) => &**t,
            None => &weights,
        };
        let live = self.live.read().expect("lock");
        let forgotten = self.forgotten(&live, &shelf, customer as u32);
        let view = CustomerView {
            customer_id: customer as u32,
            age: profile.birth_date.and_then(|b| today.years_since(b)),
            income: profile.income_band.as_deref().and_then(IncomeBand::parse),
            liquid: Fen(profile.liquid_fen),
            held: &profile.held,
            assessment: assessment(profile),
            personalization: profile.personalization,
            behaviour: live.state.customer(customer as u32),
            forgotten: &forgotten,
        };
        let ctx = recommend::Context {
            catalogue: &shelf.catalogue,
            cfg: &self.cfg.recommend,
            suitability: &self.cfg.suitability,
            state: &self.state_cfg,
            propensity,
            today,
            now_secs: now.timestamp(),
        };
        let d = recommend::recommend(&ctx, &view, placement, n);
        let inputs = serde_json::json!({
            "n": n,
            "age": view.age,
            "income_band": profile.income_band,
            "liquid_fen": profile.liquid_fen,
            "held": profile.held,
            "assessment": view.assessment.map(|a| (a.level.code(), a.assessed_on)),
            "personalization": profile.personalization,
            "product_views": view.behaviour.map(|b| b.product_views),
            "forgotten": forgotten,
        });
        drop(live);
        let _ = self.log_tx.send(DecisionLog {
            customer_id: customer,
            decided_at: now,
            placement: placement_name.to_string(),
            personalized: d.personalized,
            model: d.model.clone(),
            inputs: inputs.to_string(),
            items: serde_json::to_string(&d.items).unwrap_or_default(),
        });
        d
    }
}

pub fn assessment(p: &DecisionProfile) -> Option<Assessment> {
    p.assessment.as_ref().and_then(|(level, on)| {
        Some(Assessment {
            level: RiskTolerance::parse(level)?,
            assessed_on: *on,
        })
    })
}

fn tag_matches(tag: &str, o: &Offer) -> bool {
    match tag.split_once(':') {
        Some(("product", code)) => o.code == code,
        Some(("kind", kind)) => o.kind.code() == kind,
        _ => false,
    }
}

async fn load_deletions(store: &Store) -> Result<HashMap<u32, Vec<Deletion>>, StoreError> {
    let mut out: HashMap<u32, Vec<Deletion>> = HashMap::new();
    for (c, tag, deleted_ms) in store.tag_deletions().await? {
        out.entry(c as u32).or_default().push(Deletion { tag, deleted_ms });
    }
    Ok(out)
}

/// Applies one stored event, unless the customer deleted the tag it would feed.
fn apply_stored(state: &mut BehaviourState, deletions: &HashMap<u32, Vec<Deletion>>, shelf: &Shelf, e: &StoredEvent) {
    if let Some((c, t)) = touch_of(deletions, shelf, e) {
        state.apply(c, &t);
    }
}

/// What a stored event does to the state (none: not attributed to a customer); its
/// product left out if the customer deleted the tag it would feed.
fn touch_of(deletions: &HashMap<u32, Vec<Deletion>>, shelf: &Shelf, e: &StoredEvent) -> Option<(u32, Touch)> {
    let c = e.customer_id?;
    let c = c as u32;
    let mut product = e.product_id.map(|p| p as u32);
    if let (Some(p), Some(ds)) = (product, deletions.get(&c)) {
        if let Some(o) = shelf.catalogue.offer(p) {
            if ds.iter().any(|d| e.ts_ms <= d.deleted_ms && tag_matches(&d.tag, o)) {
                product = None;
            }
        }
    }
    Some((
        c,
        Touch {
            kind: e.kind,
            ts_ms: e.ts_ms,
            product,
            dwell_ms: e.dwell_ms.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
            depth: e.depth.unwrap_or(0).clamp(0, 100) as u8,
            quantity: e.quantity.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
            amount_fen: e.amount_fen.unwrap_or(0),
        },
    ))
}

/// Recomputes the whole state from the event log alone (`kehu features rebuild`), with
/// the same rules as the live path; returns it and the sequence it covers.
pub async fn rebuild(
    store: &Store,
    cfg: StateConfig,
    progress: &(dyn Fn(i64) + Sync),
) -> Result<(BehaviourState, i64), StoreError> {
    rebuild_until(store, cfg, i64::MAX, progress).await
}

/// The state as it was at `until_ms` (events after it left out): the features of a
/// training sample as of a date.
pub async fn rebuild_until(
    store: &Store,
    cfg: StateConfig,
    until_ms: i64,
    progress: &(dyn Fn(i64) + Sync),
) -> Result<(BehaviourState, i64), StoreError> {
    let deletions = load_deletions(store).await?;
    // Only codes and kinds matter here (for deleted tags): no co-purchases needed.
    let shelf = Shelf {
        catalogue: Catalogue::new(offers(&store.list_products(None).await?, &Default::default()), Vec::<Vec<u32>>::new()),
        by_code: HashMap::new(),
    };
    let mut state = BehaviourState::new(cfg);
    let wm = replay(store, &mut state, &deletions, &shelf, 0, until_ms, progress).await?;
    Ok((state, wm.max(store.max_event_seq().await?)))
}

/// The products as the recommender sees them, with the configured levers.
fn offers(products: &[kehu_store::ProductRow], levers: &std::collections::BTreeMap<String, f64>) -> Vec<Offer> {
    products
        .iter()
        .map(|p| Offer {
            id: p.id as u32,
            code: p.product.code.clone(),
            name: p.product.name.clone(),
            kind: p.product.kind,
            risk: p.product.risk_level,
            min_purchase: p.product.min_purchase,
            repeatable: p.product.repeatable,
            sale_start: p.product.sale_start,
            sale_end: p.product.sale_end,
            lever: levers.get(&p.product.code).copied().unwrap_or(1.0).max(0.0),
        })
        .collect()
}

/// Applies the attributed events after sequence `after` (and at or before `until_ms`) in
/// sequence order, a page at a time; returns the last sequence read. The one replay loop
/// of the start-up and of a rebuild.
async fn replay(
    store: &Store,
    state: &mut BehaviourState,
    deletions: &HashMap<u32, Vec<Deletion>>,
    shelf: &Shelf,
    after: i64,
    until_ms: i64,
    progress: &(dyn Fn(i64) + Sync),
) -> Result<i64, StoreError> {
    let mut wm = after;
    loop {
        let page = store.events_after(wm, 50_000).await?;
        let Some(last) = page.last() else { break };
        wm = last.seq;
        let touches: Vec<(u32, Touch)> = page
            .iter()
            .filter(|e| e.ts_ms <= until_ms)
            .filter_map(|e| touch_of(deletions, shelf, e))
            .collect();
        state.apply_all(&touches);
        progress(wm);
    }
    Ok(wm)
}

/// The kind of holding a purchase of this product creates.
pub fn asset_class_for(kind: ProductKind) -> &'static str {
    match kind {
        ProductKind::Deposit => "time_deposit",
        ProductKind::Wealth => "wealth",
        ProductKind::Fund => "fund",
        ProductKind::Insurance => "insurance",
        ProductKind::Loan => "loan",
        ProductKind::Card => "other",
    }
}
