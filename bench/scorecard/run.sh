#!/usr/bin/env bash
# Benchmark of kehu-scorecard against the Python scorecard tools, in one script:
#  (a) German credit, fixed 70/30 split: test AUC / KS, wall time, peak RSS
#  (b) synthetic 1,000,000 x 30 file: CSV -> binning -> WoE -> LR -> AUC end to end
#  (c) scoring throughput: 10,000,000 records with a 15-variable scorecard, one core
# kehu's figures are printed beside toad's and optbinning's (installed from PyPI
# into a virtual environment here) with the speed ratio.
#
# Usage: bash bench/scorecard/run.sh            (env: SKIP_SYNTH=1, SKIP_OPTBINNING=1, THREADS=1)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CRATE="$ROOT/crates/kehu-scorecard"
DATA="${DATASETS:-$ROOT/../shared/datasets}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CRATE/target}"
WORK="${WORK:-$CARGO_TARGET_DIR/bench-scorecard}"
THREADS="${THREADS:-1}"
mkdir -p "$WORK"
[ -f "$DATA/germancredit.csv" ] || { echo "datasets not found in $DATA (set DATASETS=...)" >&2; exit 1; }

echo "== building kehu examples (release, -j1)"
(cd "$CRATE" && cargo build -j1 --release --examples -q)
KEHU="$CARGO_TARGET_DIR/release/examples/train_csv"
SCORE="$CARGO_TARGET_DIR/release/examples/score_bench"

VENV="$WORK/venv"
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating Python venv in $VENV (toad, optbinning, scikit-learn, pandas<3)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q "pandas<3" numpy scikit-learn toad optbinning
fi
PY="$VENV/bin/python"

cat > "$WORK/py_german.py" <<'PY'
import sys, time, json, resource, warnings
t0 = time.perf_counter()
warnings.filterwarnings("ignore")
import pandas as pd, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
tool, data, split = sys.argv[1], sys.argv[2], sys.argv[3]
df = pd.read_csv(data); sp = pd.read_csv(split)
df["creditability"] = (df["creditability"] == "bad").astype(int)
tr = df.iloc[sp.row_id[sp.set == "train"].values].reset_index(drop=True)
te = df.iloc[sp.row_id[sp.set == "test"].values].reset_index(drop=True)
y, yt = tr.pop("creditability"), te.pop("creditability")
if tool == "toad":
    import toad
    sel = toad.selection.select(tr.assign(creditability=y), target="creditability", empty=0.9, iv=0.02, corr=0.7)
    c = toad.transform.Combiner(); c.fit(sel, y="creditability", method="chi", min_samples=0.05)
    w = toad.transform.WOETransformer()
    Xtr = w.fit_transform(c.transform(sel), sel["creditability"], exclude=["creditability"]).drop(columns="creditability")
    Xte = w.transform(c.transform(te[Xtr.columns]))
else:
    from optbinning import BinningProcess
    cats = [col for col in tr.columns if tr[col].dtype == object]
    bp = BinningProcess(list(tr.columns), categorical_variables=cats, selection_criteria={"iv": {"min": 0.02, "max": 1}})
    bp.fit(tr, y)
    Xtr = bp.transform(tr, metric="woe"); Xte = bp.transform(te, metric="woe")
lr = LogisticRegression(max_iter=1000).fit(Xtr, y)
def ks(yv, p):
    f, t, _ = roc_curve(yv, p); return float(np.max(t - f))
p, pt = lr.predict_proba(Xtr)[:, 1], lr.predict_proba(Xte)[:, 1]
print(json.dumps({"tool": tool, "vars": int(Xtr.shape[1]), "train_auc": round(roc_auc_score(y, p), 4), "train_ks": round(ks(y, p), 4),
                  "auc": round(roc_auc_score(yt, pt), 4), "ks": round(ks(yt, pt), 4), "wall_s": round(time.perf_counter() - t0, 3),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
PY

cat > "$WORK/py_synth.py" <<'PY'
import sys, time, json, resource, warnings
t0 = time.perf_counter()
warnings.filterwarnings("ignore")
import pandas as pd, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
tool, data = sys.argv[1], sys.argv[2]
df = pd.read_csv(data); y = df.pop("y")
if tool == "toad":
    import toad
    c1 = toad.transform.Combiner(); c1.fit(df, y, method="quantile", n_bins=100)
    Xb = c1.transform(df)
    c2 = toad.transform.Combiner(); c2.fit(Xb, y, method="chi", min_samples=0.05)
    X = toad.transform.WOETransformer().fit_transform(c2.transform(Xb), y)
else:
    from optbinning import BinningProcess
    bp = BinningProcess(list(df.columns), n_jobs=1)
    X = bp.fit_transform(df, y, metric="woe")
lr = LogisticRegression(max_iter=1000).fit(X, y)
p = lr.predict_proba(X)[:, 1]
f, t, _ = roc_curve(y, p)
print(json.dumps({"tool": tool, "vars": int(X.shape[1]), "auc": round(roc_auc_score(y, p), 4), "ks": round(float(np.max(t - f)), 4),
                  "wall_s": round(time.perf_counter() - t0, 3), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
PY

RES="$WORK/results.jsonl"; : > "$RES"
run() { # label, command...
  local label="$1"; shift
  local out; out="$("$@" 2>/dev/null | tail -1)" || { echo "  $label: FAILED" >&2; return 0; }
  echo "$out" | sed "s/^{/{\"case\":\"$label\",/" >> "$RES"; echo "  $label: $out"
}

echo "== (a) German credit, fixed split (fit on 700 train rows, figures on 300 test rows)"
run german "$KEHU" --data "$DATA/germancredit.csv" --target creditability --event bad --split "$DATA/germancredit_split.csv" --quiet
run german "$PY" "$WORK/py_german.py" toad "$DATA/germancredit.csv" "$DATA/germancredit_split.csv"
[ "${SKIP_OPTBINNING:-0}" = 1 ] || run german "$PY" "$WORK/py_german.py" optbinning "$DATA/germancredit.csv" "$DATA/germancredit_split.csv"

if [ "${SKIP_SYNTH:-0}" != 1 ]; then
  SYN="$WORK/synth_1m.csv"
  if [ ! -f "$SYN" ]; then
    echo "== generating $SYN"
    (cd "$WORK" && "$PY" "$DATA/make_synth_scorecard.py" 1000000 "$SYN")
  fi
  echo "== (b) synthetic 1,000,000 x 30 (fit and scored on all rows), kehu with bench/scorecard/large.toml"
  run synth "$KEHU" --data "$SYN" --target y --event 1 --config "$HERE/large.toml" --threads "$THREADS" --quiet
  run synth "$PY" "$WORK/py_synth.py" toad "$SYN"
  [ "${SKIP_OPTBINNING:-0}" = 1 ] || run synth "$PY" "$WORK/py_synth.py" optbinning "$SYN"
fi

echo "== (c) scoring throughput"
"$SCORE" 10000000 | tee "$WORK/score.txt"

echo
echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
"$PY" - "$RES" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for case in ["german", "synth"]:
    rs = [r for r in rows if r["case"] == case]
    if not rs: continue
    k = next((r for r in rs if r["tool"] == "kehu"), None)
    py = [r for r in rs if r["tool"] != "kehu"]
    fastest = min((r["wall_s"] for r in py), default=None)
    print(f"{case}: {'tool':<11} {'vars':>4} {'AUC':>7} {'KS':>7} {'wall s':>8} {'peak MB':>8}  kehu speed-up")
    for r in rs:
        ratio = "" if r["tool"] == "kehu" or not k else f"{r['wall_s'] / k['wall_s']:.1f}x"
        print(f"{'':<{len(case)+1}} {r['tool']:<11} {r['vars']:>4} {r['auc']:>7.4f} {r['ks']:>7.4f} {r['wall_s']:>8.2f} {r['peak_rss_mb']:>8}  {ratio}")
    if k and fastest:
        print(f"{'':<{len(case)+1}} kehu vs fastest Python tool: {fastest / k['wall_s']:.1f}x faster")
PY
