//! The scorecard model: variables with bins, WoE, coefficients and points;
//! JSON (de)serialisation; scoring of rows, data sets, CSV files and columns.

use crate::binning::{level_variants, BinRule, VarKind, VariableBinning};
use crate::config::{PointsConfig, TrainConfig};
use crate::data::{parse_number, ColumnData, CsvOptions, Dataset, MISSING_CODE};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Name of the JSON format.
pub const MODEL_FORMAT: &str = "kehu-scorecard";
/// Version of the JSON format written by this crate.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// Points scaling of a model (see [`PointsConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub base_score: f64,
    pub base_odds: f64,
    pub pdo: f64,
    /// pdo / ln 2
    pub factor: f64,
    /// base_score − factor·ln(base_odds)
    pub offset: f64,
    /// offset − factor·intercept (rounded if `rounded`)
    pub base_points: f64,
    pub rounded: bool,
}

impl Scaling {
    pub fn new(p: &PointsConfig, intercept: f64) -> Scaling {
        let factor = p.pdo / std::f64::consts::LN_2;
        let offset = p.base_score - factor * p.base_odds.ln();
        let mut base_points = offset - factor * intercept;
        if p.round {
            base_points = base_points.round();
        }
        Scaling {
            base_score: p.base_score,
            base_odds: p.base_odds,
            pdo: p.pdo,
            factor,
            offset,
            base_points,
            rounded: p.round,
        }
    }

    /// Score of a log-odds of the event (unrounded): offset − factor·logit.
    pub fn score_of_logit(&self, logit: f64) -> f64 {
        self.offset - self.factor * logit
    }
}

/// One variable of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVariable {
    pub binning: VariableBinning,
    pub coefficient: f64,
    pub std_error: f64,
    pub p_value: f64,
    /// Points per bin, same order as `binning.bins`: −factor·coefficient·woe (rounded if configured).
    pub points: Vec<f64>,
    /// Points for a category level not seen in training (WoE 0 → 0 points).
    pub unseen_points: f64,
}

/// Why a candidate variable was kept or dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub name: String,
    pub kind: Option<VarKind>,
    pub iv: Option<f64>,
    pub bins: usize,
    pub missing_share: f64,
    /// "selected" or the reason of the drop.
    pub status: String,
}

/// Description of the training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub source: String,
    pub rows: usize,
    pub events: usize,
    pub columns: usize,
    pub target: String,
    pub event: String,
    pub non_event: String,
}

/// A trained scorecard. `P(event) = 1/(1+exp(−(intercept + Σ coefficient·woe)))`;
/// `score = base_points + Σ points` (higher = fewer events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub format_version: u32,
    pub name: String,
    pub training: TrainingSummary,
    pub intercept: f64,
    pub intercept_std_error: f64,
    pub intercept_p_value: f64,
    pub scaling: Scaling,
    pub variables: Vec<ModelVariable>,
    pub candidates: Vec<Candidate>,
    pub warnings: Vec<String>,
    pub config: TrainConfig,
}

/// The score of one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Total points: base points + Σ per-variable points.
    pub total: f64,
    /// Probability of the event from the exact (unrounded) logistic model.
    pub p_event: f64,
    /// Points of each model variable (same order as `Model::variables`): the reasons.
    pub points: Vec<f64>,
    /// Bin index of each variable (`None` = unseen category level).
    pub bins: Vec<Option<usize>>,
}

/// Scores of many rows, by column.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub total: Vec<f64>,
    pub p_event: Vec<f64>,
    /// `points[v][i]`: points of variable `v` for row `i`.
    pub points: Vec<Vec<f64>>,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Model {
    /// Serialises the model as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a model from JSON, checking the format name and version.
    pub fn from_json(s: &str) -> Result<Model> {
        let v: serde_json::Value = serde_json::from_str(s)?;
        let fmt = v.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if fmt != MODEL_FORMAT {
            return Err(Error::Model(format!(
                "not a kehu scorecard model (format `{fmt}`, expected `{MODEL_FORMAT}`)"
            )));
        }
        let ver = v
            .get("format_version")
            .and_then(|f| f.as_u64())
            .unwrap_or(0);
        if ver == 0 || ver > MODEL_FORMAT_VERSION as u64 {
            return Err(Error::Model(format!("model format version {ver} is not supported (this build reads 1..={MODEL_FORMAT_VERSION})")));
        }
        let m: Model = serde_json::from_value(v)?;
        Ok(m)
    }

    /// Writes the model JSON to a file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()?).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })
    }

    /// Reads a model JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let s = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_json(&s)
    }

    /// Names of the model variables, in order.
    pub fn variable_names(&self) -> Vec<&str> {
        self.variables
            .iter()
            .map(|v| v.binning.name.as_str())
            .collect()
    }

    fn assemble(&self, bins: Vec<Option<usize>>) -> Score {
        let mut total = self.scaling.base_points;
        let mut logit = self.intercept;
        let mut points = Vec::with_capacity(bins.len());
        for (v, b) in self.variables.iter().zip(&bins) {
            let (pt, woe) = match b {
                Some(i) => (v.points[*i], v.binning.bins[*i].woe),
                None => (v.unseen_points, 0.0),
            };
            total += pt;
            logit += v.coefficient * woe;
            points.push(pt);
        }
        Score {
            total,
            p_event: sigmoid(logit),
            points,
            bins,
        }
    }

    /// Scores one record given as column name → cell text. A missing key or an
    /// empty cell is a missing value.
    pub fn score_row(&self, row: &HashMap<String, String>) -> Result<Score> {
        let missing = CsvOptions::default().missing_values;
        let mut bins = Vec::with_capacity(self.variables.len());
        for v in &self.variables {
            let cell = row
                .get(&v.binning.name)
                .map(|s| s.trim())
                .filter(|s| !s.is_empty() && !missing.iter().any(|m| m == s));
            bins.push(bin_of_cell(v, cell).map_err(|value| {
                Error::Model(format!(
                    "variable `{}`: `{value}` is not a number",
                    v.binning.name
                ))
            })?);
        }
        Ok(self.assemble(bins))
    }

    /// A scorer for CSV records with this header.
    pub fn row_scorer(&self, header: &[&str]) -> Result<RowScorer<'_>> {
        let mut idx = Vec::new();
        for v in &self.variables {
            let i = header
                .iter()
                .position(|h| h.trim() == v.binning.name)
                .ok_or_else(|| Error::MissingColumn {
                    path: "input".into(),
                    column: v.binning.name.clone(),
                    available: header.join(", "),
                })?;
            idx.push(i);
        }
        Ok(RowScorer {
            model: self,
            idx,
            missing: CsvOptions::default().missing_values,
        })
    }

    /// Scores every row of a data set (columns are matched by name).
    pub fn score_dataset(&self, ds: &Dataset) -> Result<Scores> {
        self.score_rows(ds, true)
    }

    /// Scores every row; `points` is left empty unless `keep_points`.
    pub(crate) fn score_rows(&self, ds: &Dataset, keep_points: bool) -> Result<Scores> {
        let n = ds.n_rows();
        let mut total = vec![self.scaling.base_points; n];
        let mut logit = vec![self.intercept; n];
        let mut points = Vec::with_capacity(self.variables.len());
        for v in &self.variables {
            let col = ds
                .column(&v.binning.name)
                .ok_or_else(|| Error::MissingColumn {
                    path: ds.source.clone().into(),
                    column: v.binning.name.clone(),
                    available: ds
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            let (pts, woes): (Vec<f64>, Vec<f64>) = match (&col.data, v.binning.kind) {
                (ColumnData::Numeric(x), VarKind::Numeric) => {
                    let sc = NumericVar::new(v);
                    x.iter()
                        .map(|&xv| {
                            let b = sc.bin(xv);
                            (v.points[b], v.binning.bins[b].woe)
                        })
                        .unzip()
                }
                (ColumnData::Categorical { codes, levels }, VarKind::Categorical) => {
                    let table: Vec<Option<usize>> =
                        levels.iter().map(|l| bin_of_level_text(v, l)).collect();
                    let mb = v.binning.bin_of_level(None);
                    codes
                        .iter()
                        .map(|&c| {
                            let b = if c == MISSING_CODE {
                                mb
                            } else {
                                table[c as usize]
                            };
                            match b {
                                Some(b) => (v.points[b], v.binning.bins[b].woe),
                                None => (v.unseen_points, 0.0),
                            }
                        })
                        .unzip()
                }
                (ColumnData::Numeric(x), VarKind::Categorical) => x
                    .iter()
                    .map(|&xv| {
                        let b = if xv.is_nan() {
                            v.binning.bin_of_level(None)
                        } else {
                            bin_of_level_text(v, &crate::data::number_to_level(xv))
                        };
                        match b {
                            Some(b) => (v.points[b], v.binning.bins[b].woe),
                            None => (v.unseen_points, 0.0),
                        }
                    })
                    .unzip(),
                (ColumnData::Categorical { .. }, VarKind::Numeric) => {
                    return Err(Error::Model(format!(
                        "variable `{}` is numeric in the model but the data column holds text",
                        v.binning.name
                    )))
                }
            };
            for i in 0..n {
                total[i] += pts[i];
                logit[i] += v.coefficient * woes[i];
            }
            if keep_points {
                points.push(pts);
            }
        }
        Ok(Scores {
            total,
            p_event: logit.into_iter().map(sigmoid).collect(),
            points,
        })
    }

    /// A fast scorer of numeric columns (every model variable must be numeric);
    /// see [`NumericScorer::score_columns`].
    pub fn numeric_scorer(&self) -> Result<NumericScorer> {
        let mut vars = Vec::new();
        for v in &self.variables {
            if v.binning.kind != VarKind::Numeric {
                return Err(Error::Model(format!(
                    "variable `{}` is categorical; the numeric scorer takes numeric variables only",
                    v.binning.name
                )));
            }
            vars.push(NumericVar::new(v));
        }
        Ok(NumericScorer {
            base: self.scaling.base_points,
            vars,
        })
    }

    /// Scores a CSV file and writes the input rows with `score`, `p_event` and
    /// `points_<variable>` columns appended. Returns the totals (e.g. for PSI).
    pub fn score_csv(
        &self,
        input: &Path,
        output: &Path,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<f64>> {
        let f = std::fs::File::open(input).map_err(|e| Error::Io {
            path: input.to_path_buf(),
            source: e,
        })?;
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(std::io::BufReader::new(f));
        let to_err = |e: csv::Error| Error::Csv {
            path: input.to_path_buf(),
            line: e.position().map(|p| p.line()).unwrap_or(0),
            message: e.to_string(),
        };
        let header: Vec<String> = rdr
            .headers()
            .map_err(to_err)?
            .iter()
            .map(|s| s.to_string())
            .collect();
        let hrefs: Vec<&str> = header.iter().map(|s| s.as_str()).collect();
        let scorer = self.row_scorer(&hrefs).map_err(|e| match e {
            Error::MissingColumn {
                column, available, ..
            } => Error::MissingColumn {
                path: input.to_path_buf(),
                column,
                available,
            },
            e => e,
        })?;
        let out = std::fs::File::create(output).map_err(|e| Error::Io {
            path: output.to_path_buf(),
            source: e,
        })?;
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(out));
        let mut h2 = header.clone();
        h2.push("score".into());
        h2.push("p_event".into());
        for v in &self.variables {
            h2.push(format!("points_{}", v.binning.name));
        }
        let werr = |e: csv::Error| Error::Io {
            path: output.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        };
        w.write_record(&h2).map_err(werr)?;
        let mut rec = csv::StringRecord::new();
        let mut totals = Vec::new();
        let mut fields: Vec<String> = Vec::new();
        while rdr.read_record(&mut rec).map_err(to_err)? {
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let s = scorer
                .score_record(&rec)
                .map_err(|(var, value)| Error::TextInNumeric {
                    path: input.to_path_buf(),
                    line,
                    column: var,
                    value,
                    missing_markers: scorer.missing.join(" "),
                })?;
            fields.clear();
            fields.extend(rec.iter().map(|s| s.to_string()));
            fields.push(fmt_points(s.total));
            fields.push(format!("{:.6}", s.p_event));
            for p in &s.points {
                fields.push(fmt_points(*p));
            }
            w.write_record(&fields).map_err(werr)?;
            totals.push(s.total);
            if totals.len() % 1_000_000 == 0 {
                progress(&format!("scored {} rows", totals.len()));
            }
        }
        w.flush().map_err(|e| Error::Io {
            path: output.to_path_buf(),
            source: e,
        })?;
        progress(&format!(
            "scored {} rows → {}",
            totals.len(),
            output.display()
        ));
        Ok(totals)
    }

    /// The scorecard as a table: (variable, bin label, points).
    pub fn card(&self) -> Vec<(String, String, f64)> {
        let mut out = vec![(
            "(base)".to_string(),
            "基础分 base points".to_string(),
            self.scaling.base_points,
        )];
        for v in &self.variables {
            for (b, p) in v.binning.bins.iter().zip(&v.points) {
                out.push((v.binning.name.clone(), b.label.clone(), *p));
            }
        }
        out
    }
}

fn fmt_points(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p:.4}")
    }
}

fn bin_of_level_text(v: &ModelVariable, l: &str) -> Option<usize> {
    v.binning
        .bin_of_level(Some(l))
        .or_else(|| level_variants(l).and_then(|n| v.binning.bin_of_level(Some(&n))))
}

/// Bin of a cell (None = missing). Err(value) when text is in a numeric variable.
fn bin_of_cell(
    v: &ModelVariable,
    cell: Option<&str>,
) -> std::result::Result<Option<usize>, String> {
    match v.binning.kind {
        VarKind::Numeric => {
            let x = match cell {
                None => f64::NAN,
                Some(s) => parse_number(s.as_bytes()).ok_or_else(|| s.to_string())?,
            };
            Ok(v.binning.bin_of_number(x))
        }
        VarKind::Categorical => Ok(match cell {
            None => v.binning.bin_of_level(None),
            Some(s) => bin_of_level_text(v, s),
        }),
    }
}

/// Scores CSV records with a fixed header (see [`Model::row_scorer`]).
pub struct RowScorer<'a> {
    model: &'a Model,
    idx: Vec<usize>,
    missing: Vec<String>,
}

impl RowScorer<'_> {
    /// Scores the fields of one record. Err((variable, value)) for text in a numeric variable.
    pub fn score_fields(&self, fields: &[&str]) -> std::result::Result<Score, (String, String)> {
        let mut bins = Vec::with_capacity(self.idx.len());
        for (v, &i) in self.model.variables.iter().zip(&self.idx) {
            let cell = fields
                .get(i)
                .map(|s| s.trim())
                .filter(|s| !s.is_empty() && !self.missing.iter().any(|m| m == s));
            bins.push(bin_of_cell(v, cell).map_err(|val| (v.binning.name.clone(), val))?);
        }
        Ok(self.model.assemble(bins))
    }

    fn score_record(
        &self,
        rec: &csv::StringRecord,
    ) -> std::result::Result<Score, (String, String)> {
        let f: Vec<&str> = rec.iter().collect();
        self.score_fields(&f)
    }
}

/// Compiled lookup of a numeric variable.
#[derive(Debug, Clone)]
pub struct NumericVar {
    /// Sorted cut points: interval k is cuts[k-1] <= x < cuts[k].
    cuts: Vec<f64>,
    /// Bin index of interval k.
    interval_bin: Vec<usize>,
    missing_bin: usize,
    specials: Vec<(f64, usize, f64)>,
    /// Points of interval k (same as points[interval_bin[k]]).
    interval_points: Vec<f64>,
    missing_points: f64,
}

impl NumericVar {
    fn new(v: &ModelVariable) -> NumericVar {
        let mut ranges: Vec<(Option<f64>, usize)> = Vec::new();
        let mut missing_bin = usize::MAX;
        let mut specials = Vec::new();
        for (i, b) in v.binning.bins.iter().enumerate() {
            match &b.rule {
                BinRule::Range { lo, .. } => ranges.push((*lo, i)),
                BinRule::Missing => missing_bin = i,
                BinRule::Special { value } => specials.push((*value, i, v.points[i])),
                BinRule::Levels { .. } => {}
            }
        }
        ranges.sort_by(|a, b| {
            a.0.unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&b.0.unwrap_or(f64::NEG_INFINITY))
        });
        let cuts: Vec<f64> = ranges
            .iter()
            .skip(1)
            .map(|r| r.0.unwrap_or(f64::NEG_INFINITY))
            .collect();
        let interval_bin: Vec<usize> = ranges.iter().map(|r| r.1).collect();
        if missing_bin == usize::MAX {
            missing_bin = interval_bin[0];
        }
        let interval_points = interval_bin.iter().map(|&b| v.points[b]).collect();
        NumericVar {
            cuts,
            interval_bin,
            missing_bin,
            specials,
            interval_points,
            missing_points: v.points[missing_bin],
        }
    }

    #[inline]
    fn interval(&self, x: f64) -> usize {
        // branch-free count of cuts <= x (cut lists are short)
        self.cuts.iter().map(|&c| (c <= x) as usize).sum()
    }

    #[inline]
    fn bin(&self, x: f64) -> usize {
        if x.is_nan() {
            return self.missing_bin;
        }
        for &(s, b, _) in &self.specials {
            if s == x {
                return b;
            }
        }
        self.interval_bin[self.interval(x)]
    }
}

/// Scores numeric columns fast (one pass per variable over contiguous data).
#[derive(Debug, Clone)]
pub struct NumericScorer {
    base: f64,
    vars: Vec<NumericVar>,
}

impl NumericScorer {
    /// Adds the total points of each row to `out` (which is overwritten).
    /// `cols[v]` holds the values of model variable `v` (`NaN` = missing).
    pub fn score_columns(&self, cols: &[&[f64]], out: &mut [f64]) {
        assert_eq!(cols.len(), self.vars.len(), "one column per model variable");
        // Rows in blocks small enough that the block's totals stay in L1 while every
        // variable adds to them: the totals make one trip through memory, not one per
        // variable.
        const BLOCK: usize = 2048;
        let n = out.len();
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK).min(n);
            let block = &mut out[start..end];
            block.fill(self.base);
            for (v, col) in self.vars.iter().zip(cols) {
                let col = &col[start..end];
                if v.specials.is_empty() {
                    for (t, &x) in block.iter_mut().zip(col) {
                        let p = if x.is_nan() {
                            v.missing_points
                        } else {
                            v.interval_points[v.interval(x)]
                        };
                        *t += p;
                    }
                } else {
                    for (t, &x) in block.iter_mut().zip(col) {
                        *t += v.points_of(x);
                    }
                }
            }
            start = end;
        }
    }
}

impl NumericVar {
    #[inline]
    fn points_of(&self, x: f64) -> f64 {
        if x.is_nan() {
            return self.missing_points;
        }
        for &(s, _, p) in &self.specials {
            if s == x {
                return p;
            }
        }
        self.interval_points[self.interval(x)]
    }
}
