/*! kehu.js: kehu web behaviour tracker, no dependencies. See docs/tracker.md. */
(() => {
  'use strict';
  const w = window, d = document, nav = navigator;
  const warn = (...a) => console.warn('kehu:', ...a);
  const safe = f => function () { try { return f.apply(this, arguments); } catch (e) { warn(e); } };
  try {
    if (w.kehu) return; // loaded twice
    const cfg = (d.currentScript || {}).dataset || {};
    const key = cfg.key, endpoint = cfg.endpoint || '/api/v1/events', off = cfg.disabled === 'true';
    if (off || !key) {
      if (!off) warn('no data-key: disabled');
      const no = () => {};
      w.kehu = { track: no, identify: no, flush: () => Promise.resolve(), queue: () => [] };
      return;
    }
    const QK = 'kehu.queue', CK = 'kehu.customer', CAP = 500, BATCH = 50, SOON = 20, DELAY = 1000;
    const now = () => Date.now();

    // ---- storage: localStorage when usable, else memory (this page only) ----
    const get = k => { try { return localStorage.getItem(k); } catch (_) {} }; // undefined: unusable
    const put = (k, v) => {
      try { if (v == null) localStorage.removeItem(k); else localStorage.setItem(k, v); return 1; } catch (_) {}
    };
    let mem = [], lsq = get(QK) !== undefined;
    // Queue entries: {e: event, b: epoch ms when beaconed (absent if never)}.
    const load = () => {
      try { if (lsq) return JSON.parse(get(QK) || '[]').filter(x => x && x.e); } catch (_) {} // not an array: throws
      return mem.slice();
    };
    const save = q => {
      mem = q = q.slice(-CAP); // drop the oldest
      lsq = lsq && put(QK, JSON.stringify(q)); // quota exceeded: memory from now on
    };

    const c = w.crypto; // randomUUID needs a secure context (https); getRandomValues does not
    const uuid = () => c.randomUUID ? c.randomUUID()
      : Array.from(c.getRandomValues(new Uint8Array(16)), b => (b + 256).toString(16).slice(1)).join('');
    // Event ids start with the time, so the server's unique index grows at its end.
    const eid = () => now().toString(36) + '-' + uuid().replace(/-/g, '').slice(0, 16);
    let device = cfg.device || get('kehu.device');
    if (!device) put('kehu.device', device = uuid());
    let customer = get(CK) || null;
    const page = () => location.pathname;

    // ---- queue and sending ----
    let t0 = now(), timer = 0, due = 0, fails = 0, dead = 0, busy = null;
    let inflight = []; // ids of the batch being sent (one request at a time)
    // Sendable: not in flight, and never beaconed, or beaconed before this page (re)started or over 60 s ago.
    const ready = () => load().filter(x => !inflight.includes(x.e.id) && (!x.b || x.b < t0 || now() - x.b > 6e4));
    const later = (ms, force) => {
      const at = now() + ms;
      if (timer && due <= at && !force) return;
      clearTimeout(timer); due = at;
      timer = setTimeout(() => { timer = 0; run(); }, ms);
    };
    const kick = () => { if (!fails && !dead) later(ready().length >= SOON ? 0 : DELAY); };
    const run = () => busy || (busy = drain().catch(warn).then(() => { busy = null; }));

    async function drain() {
      while (!dead) {
        const batch = ready().slice(0, BATCH);
        if (!batch.length) return;
        const ids = batch.map(x => x.e.id), body = JSON.stringify(batch.map(x => x.e));
        inflight = ids;
        let r = null;
        try {
          r = await fetch(endpoint, {
            method: 'POST', keepalive: body.length < 21000, // keepalive bodies are limited to 64 KiB
            headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + key }, body,
          });
        } catch (_) {} finally { inflight = []; }
        const st = r ? r.status : 0;
        if (!st || st > 499 || st === 429 || st === 408) {
          // back-off with jitter: 1 s, 2 s, 4 s, ... capped at 60 s (each wait in [max/2, max))
          const max = Math.min(6e4, DELAY * 2 ** fails++);
          return later(max * (1 + Math.random()) / 2, 1);
        }
        if (r.ok) {
          let res = null;
          try { res = await r.json(); } catch (_) {}
          ((res && res.results) || []).forEach(x => {
            if (x && x.status === 'rejected') warn('rejected', x.field, x.reason, (batch[x.index] || {}).e);
          });
        } else {
          warn('HTTP ' + st + ': batch of ' + ids.length + ' dropped');
          if (st === 401 || st === 403) dead = 1; // bad key: stop sending from this page
        }
        save(load().filter(x => !ids.includes(x.e.id))); // accepted, duplicate, rejected or refused: done
        fails = 0;
      }
    }

    const beacon = () => {
      if (dead || !nav.sendBeacon) return;
      const q = load(), t = now(), todo = q.filter(x => !x.b && !inflight.includes(x.e.id));
      const url = endpoint + (endpoint.indexOf('?') < 0 ? '?' : '&') + 'key=' + encodeURIComponent(key);
      for (let i = 0; i < todo.length; i += BATCH) {
        const part = todo.slice(i, i + BATCH);
        let ok = 0;
        try {
          ok = nav.sendBeacon(url, new Blob([JSON.stringify(part.map(x => x.e))], { type: 'text/plain;charset=UTF-8' }));
        } catch (_) {}
        if (!ok) break; // left unmarked: sent by fetch later
        part.forEach(x => { x.b = t; });
      }
      save(q);
    };

    const track = (type, fields) => {
      if (!type) return;
      const e = Object.assign({ id: eid(), ts: now(), device }, customer && { customer }, fields, { type: String(type) });
      for (const k in e) if (e[k] == null) delete e[k];
      const q = load(); q.push({ e }); save(q);
      kick();
      return e.id;
    };
    const identify = id => {
      if (id == null || id === '') { customer = null; put(CK); return; } // forget (log-out)
      put(CK, customer = String(id));
      return track('identify', { customer });
    };

    // ---- product view: visible dwell time and maximum scroll depth ----
    const prod = cfg.product;
    let vis = 0, since = null, depth = 0, pvDone = 1, raf = 0;
    const pnow = () => performance.now();
    const visible = () => d.visibilityState === 'visible';
    const measure = () => {
      const h = (d.scrollingElement || d.documentElement).scrollHeight, vh = w.innerHeight;
      depth = Math.max(depth, h - vh < 2 ? 100 : Math.min(100, Math.round((w.scrollY + vh) / h * 100)));
    };
    const emitPV = () => {
      if (pvDone) return;
      pvDone = 1; measure();
      track('product_view', { product: prod, dwell_ms: Math.round(vis + (since == null ? 0 : pnow() - since)), depth, page: page() });
    };
    const onHide = () => {
      if (since != null) { vis += pnow() - since; since = null; }
      emitPV(); beacon();
    };
    const start = () => {
      t0 = now();
      if (cfg.customer && cfg.customer !== customer) identify(cfg.customer);
      track('page_view', { page: page() });
      if (prod) { vis = depth = pvDone = 0; since = visible() ? pnow() : null; }
    };

    const on = (t, ev, f, o) => t.addEventListener(ev, safe(f), o);
    on(d, 'visibilitychange', () => { if (!visible()) onHide(); else if (since == null && !pvDone) since = pnow(); });
    on(w, 'pagehide', onHide);
    on(w, 'pageshow', e => { if (e.persisted) start(); }); // restored from the back/forward cache
    on(w, 'scroll', () => { if (!pvDone && !raf) raf = requestAnimationFrame(safe(() => { raf = 0; measure(); })); }, { passive: true });
    on(w, 'online', () => { if (fails) later(0, 1); });
    on(d, 'click', ev => {
      const t = ev.target, el = t && t.closest && t.closest('[data-kehu-click],[data-kehu-event]');
      if (!el) return;
      const ds = el.dataset, type = ds.kehuEvent || 'click', f = { page: page(), product: ds.kehuProduct };
      if (type === 'click') { if (!ds.kehuClick) return; f.element = ds.kehuClick; }
      track(type, f);
    }, true);

    w.kehu = {
      track: safe(track),
      identify: safe(identify),
      flush: () => { safe(emitPV)(); return busy ? busy.then(run) : run(); }, // run() never throws
      queue: () => load().map(x => Object.assign({}, x.e)),
    };
    start();
  } catch (e) { warn(e); }
})();
