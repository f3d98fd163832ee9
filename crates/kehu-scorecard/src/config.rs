//! Training configuration. Every field has a documented default; a TOML file
//! may set any subset of them (see `docs/scorecard.md`).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// How the fine classes of a variable are merged into coarse bins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinningMethod {
    /// Bottom-up chi-square merging of adjacent fine classes (Kerber's ChiMerge).
    ChiMerge,
    /// Optimal monotonic binning: pool-adjacent-violators on the fine classes in
    /// the chosen (or detected) trend, then size/count constraints.
    Monotonic,
}

/// Shape imposed on the event rate (and so the WoE) across numeric bins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Ascending or descending, whichever keeps more information (IV).
    Auto,
    /// Like `auto`, but a single peak or valley is also allowed when it raises IV
    /// by more than `binning.shape_margin`.
    AutoShape,
    Ascending,
    Descending,
    Peak,
    Valley,
}

/// What to do with a column that is all missing or has a single value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DegeneratePolicy {
    /// Stop with an error naming the column.
    Error,
    /// Drop the column and record why in the model.
    Drop,
}

/// Stepwise selection on the logistic model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stepwise {
    None,
    Forward,
    Backward,
    Both,
}

/// Criterion of stepwise selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    Aic,
    Bic,
    PValue,
}

/// Binning settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BinningConfig {
    /// Merging method. Default `monotonic`.
    pub method: BinningMethod,
    /// Trend for `monotonic`. Default `auto_shape`.
    pub trend: Trend,
    /// Number of quantile fine classes before merging (numeric). Default 100.
    /// A variable with at most this many distinct values gets one class per value.
    pub fine_bins: usize,
    /// Most coarse bins of regular values (missing/special bins come on top). Default 10.
    pub max_bins: usize,
    /// Least rows in a regular bin, as a share of all training rows. Default 0.05.
    pub min_bin_frac: f64,
    /// ChiMerge also merges adjacent bins whose chi-square is below this value
    /// (e.g. 3.841 = 95% with one degree of freedom). Default 0 (only `max_bins` and `min_bin_frac`).
    pub min_chi2: f64,
    /// Relative IV gain a peak/valley shape needs over the best monotone one under `auto_shape`. Default 0.05.
    pub shape_margin: f64,
    /// Values of numeric variables that get bins of their own (e.g. -999 "not applicable"). Default none.
    pub special_values: Vec<f64>,
    /// Pseudo-count added to the event and non-event count of every bin before WoE. Default 0.5.
    pub woe_smoothing: f64,
    /// Quantile cut points are taken from at most this many regular values (an even
    /// stride through the column). Default 200000.
    pub quantile_sample: usize,
}

impl Default for BinningConfig {
    fn default() -> Self {
        BinningConfig {
            method: BinningMethod::Monotonic,
            trend: Trend::AutoShape,
            fine_bins: 100,
            max_bins: 10,
            min_bin_frac: 0.05,
            min_chi2: 0.0,
            shape_margin: 0.05,
            special_values: Vec::new(),
            woe_smoothing: 0.5,
            quantile_sample: 200_000,
        }
    }
}

/// Per-variable settings that replace the binning defaults for one variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VariableConfig {
    pub method: Option<BinningMethod>,
    pub trend: Option<Trend>,
    pub max_bins: Option<usize>,
    pub special_values: Option<Vec<f64>>,
}

/// Variable selection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectionConfig {
    /// Least information value to keep a variable. Default 0.02.
    pub min_iv: f64,
    /// Most information value (a higher IV often means leakage). Default none.
    pub max_iv: Option<f64>,
    /// Largest absolute Pearson correlation between the WoE values of two kept
    /// variables; of a pair above it the one with lower IV is dropped. Default 0.7.
    pub max_corr: f64,
    /// Largest share of missing values. Default 0.9.
    pub max_missing_frac: f64,
    /// Keep at most this many variables (highest IV first). Default none.
    pub max_vars: Option<usize>,
    /// Stepwise selection on the model. Default `none`.
    pub stepwise: Stepwise,
    /// Criterion of stepwise selection. Default `aic`.
    pub criterion: Criterion,
    /// p-value to enter (criterion `p_value`). Default 0.05.
    pub p_enter: f64,
    /// p-value to leave (criterion `p_value`). Default 0.10.
    pub p_remove: f64,
    /// Drop variables whose coefficient has the wrong sign (negative under this
    /// crate's WoE convention), refitting after each drop. Default false: warn only.
    pub drop_wrong_sign: bool,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        SelectionConfig {
            min_iv: 0.02,
            max_iv: None,
            max_corr: 0.7,
            max_missing_frac: 0.9,
            max_vars: None,
            stepwise: Stepwise::None,
            criterion: Criterion::Aic,
            p_enter: 0.05,
            p_remove: 0.10,
            drop_wrong_sign: false,
        }
    }
}

/// Logistic regression settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegressionConfig {
    /// L2 penalty λ on the coefficients (not the intercept): the fit maximises
    /// loglik − λ/2·Σβ². Default 1.0 (scikit-learn's default C = 1).
    pub l2: f64,
    /// Most Newton iterations. Default 100.
    pub max_iter: usize,
    /// Stop when no coefficient moves more than this. Default 1e-8.
    pub tol: f64,
    /// With more than twice this many rows, Newton starts on an even-stride sample
    /// of this many rows and then finishes on all rows (same optimum, fewer full passes).
    /// 0 disables. Default 100000.
    pub warm_start_rows: usize,
}

impl Default for RegressionConfig {
    fn default() -> Self {
        RegressionConfig {
            l2: 1.0,
            max_iter: 100,
            tol: 1e-8,
            warm_start_rows: 100_000,
        }
    }
}

/// Points scaling: score = offset + factor·ln(odds of non-event),
/// factor = pdo / ln 2, offset = base_score − factor·ln(base_odds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PointsConfig {
    /// Score at `base_odds`. Default 600.
    pub base_score: f64,
    /// Odds non-event : event at `base_score`. Default 50 (50:1).
    pub base_odds: f64,
    /// Points to double the odds. Default 20.
    pub pdo: f64,
    /// Round base points and bin points to integers. Default true.
    pub round: bool,
}

impl Default for PointsConfig {
    fn default() -> Self {
        PointsConfig {
            base_score: 600.0,
            base_odds: 50.0,
            pdo: 20.0,
            round: true,
        }
    }
}

/// A manual edit of one variable's bins by an analyst, recorded in the model.
/// `when` is a string supplied by the caller (the library reads no clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinOverride {
    pub variable: String,
    /// Cut points of a numeric variable: bins are (-inf, c1), [c1, c2), ..., [ck, +inf).
    #[serde(default)]
    pub cuts: Option<Vec<f64>>,
    /// Groups of levels of a categorical variable; unlisted levels form one more group.
    #[serde(default)]
    pub groups: Option<Vec<Vec<String>>>,
    pub who: String,
    pub why: String,
    pub when: String,
}

/// Everything `train` needs besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Model name shown in the report. Default "scorecard".
    pub name: String,
    /// Columns never used as variables (ids, dates). Default none.
    pub exclude: Vec<String>,
    /// Use only these columns (empty = all). Default empty.
    pub include: Vec<String>,
    /// Least number of events and of non-events. Default 20.
    pub min_events: usize,
    /// All-missing or single-valued columns. Default `error`.
    pub degenerate_columns: DegeneratePolicy,
    pub binning: BinningConfig,
    /// Per-variable binning settings, by column name.
    pub variables: BTreeMap<String, VariableConfig>,
    pub selection: SelectionConfig,
    pub regression: RegressionConfig,
    pub points: PointsConfig,
    /// Manual bin edits.
    pub overrides: Vec<BinOverride>,
    /// Threads for binning (0 = one per core). Default 1.
    pub threads: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            name: "scorecard".into(),
            exclude: Vec::new(),
            include: Vec::new(),
            min_events: 20,
            degenerate_columns: DegeneratePolicy::Error,
            binning: BinningConfig::default(),
            variables: BTreeMap::new(),
            selection: SelectionConfig::default(),
            regression: RegressionConfig::default(),
            points: PointsConfig::default(),
            overrides: Vec::new(),
            threads: 1,
        }
    }
}

impl TrainConfig {
    /// Parses TOML text; missing fields take their defaults.
    pub fn from_toml_str(s: &str) -> Result<TrainConfig> {
        let c: TrainConfig = toml::from_str(s).map_err(|e| Error::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads a TOML file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<TrainConfig> {
        let path = path.as_ref();
        let s = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_toml_str(&s).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// The configuration as TOML (all fields, defaults included).
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks ranges of the numbers.
    pub fn validate(&self) -> Result<()> {
        let b = &self.binning;
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        if b.fine_bins < 2 || b.fine_bins > 10_000 {
            return bad("binning.fine_bins must be between 2 and 10000");
        }
        if b.max_bins < 1 {
            return bad("binning.max_bins must be at least 1");
        }
        if !(0.0..0.5).contains(&b.min_bin_frac) {
            return bad("binning.min_bin_frac must be in [0, 0.5)");
        }
        if b.woe_smoothing.is_nan() || b.woe_smoothing < 0.0 {
            return bad("binning.woe_smoothing must be >= 0");
        }
        if !(self.selection.max_corr > 0.0 && self.selection.max_corr <= 1.0) {
            return bad("selection.max_corr must be in (0, 1]");
        }
        if self.regression.l2.is_nan() || self.regression.l2 < 0.0 {
            return bad("regression.l2 must be >= 0");
        }
        let p = &self.points;
        if !(p.pdo > 0.0 && p.base_odds > 0.0 && p.base_score.is_finite()) {
            return bad("points.pdo and points.base_odds must be > 0");
        }
        for o in &self.overrides {
            if o.cuts.is_none() == o.groups.is_none() {
                return Err(Error::Config(format!(
                    "override of `{}` needs exactly one of `cuts` or `groups`",
                    o.variable
                )));
            }
            if let Some(c) = &o.cuts {
                if c.iter().any(|x| !x.is_finite()) {
                    return Err(Error::Config(format!(
                        "override of `{}`: cuts must be finite numbers",
                        o.variable
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_defaults() {
        let c = TrainConfig::from_toml_str(
            "[binning]\nmax_bins = 6\n[selection]\nstepwise = \"forward\"\n",
        )
        .unwrap();
        assert_eq!(c.binning.max_bins, 6);
        assert_eq!(c.binning.fine_bins, 100);
        assert_eq!(c.selection.stepwise, Stepwise::Forward);
        let back = TrainConfig::from_toml_str(&c.to_toml_string()).unwrap();
        assert_eq!(back, c);
        assert!(TrainConfig::from_toml_str("[binning]\nmax_binz = 6\n").is_err());
        assert!(TrainConfig::from_toml_str("[regression]\nl2 = -1\n").is_err());
    }
}
