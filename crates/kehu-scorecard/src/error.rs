//! One error type for the scorecard layer. Every variant says what was found,
//! where (file, line, column) and what was expected, so a user can fix the data.

use std::path::PathBuf;

/// Errors of the scorecard toolkit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}, line {line}: {message}")]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },

    #[error("{path}: column `{column}` not found; the header has: {available}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        available: String,
    },

    #[error("{path}, line {line}, column `{column}`: target value is missing; every row needs `{event}` or the other class")]
    MissingTarget {
        path: PathBuf,
        line: u64,
        column: String,
        event: String,
    },

    #[error("target column `{column}` is not binary: expected exactly two values (the event `{event}` and one other), found {found}")]
    TargetNotBinary {
        column: String,
        event: String,
        found: String,
    },

    #[error("{path}, line {line}, column `{column}`: text `{value}` in a numeric column (most values are numbers); expected a number, an empty cell or a missing-value marker ({missing_markers}), or declare the column categorical")]
    TextInNumeric {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
        missing_markers: String,
    },

    #[error("column `{column}` has a single value (`{value}`) and no missing values: it cannot separate events from non-events; drop it (config `exclude`) or set `degenerate_columns = \"drop\"`")]
    SingleValuedColumn { column: String, value: String },

    #[error("column `{column}` is missing on every row; drop it (config `exclude`) or set `degenerate_columns = \"drop\"`")]
    AllMissingColumn { column: String },

    #[error("too few {which}: {found} rows with target {label}, at least {required} needed (config `min_events`)")]
    TooFewEvents {
        which: &'static str,
        label: String,
        found: usize,
        required: usize,
    },

    #[error("{path}: not UTF-8 text at line {line}; convert GBK/GB18030 files to UTF-8 first (e.g. `iconv -f GB18030 -t UTF-8`)")]
    NotUtf8 { path: PathBuf, line: u64 },

    #[error("configuration: {0}")]
    Config(String),

    #[error("no variable passed the selection ({0}); loosen `selection.min_iv` / `selection.max_corr` or check the data")]
    NoVariables(String),

    #[error("model: {0}")]
    Model(String),

    #[error("model JSON: {0}")]
    Json(#[from] serde_json::Error),

    #[error("the regression did not converge: {0}")]
    Fit(String),
}

impl Error {
    /// The same error with its line number (if any) moved down by `by` lines
    /// (a part of a file read on its own counts lines from 0).
    pub(crate) fn shift_line(mut self, by: u64) -> Error {
        match &mut self {
            Error::Csv { line, .. }
            | Error::MissingTarget { line, .. }
            | Error::TextInNumeric { line, .. }
            | Error::NotUtf8 { line, .. } => *line += by,
            _ => {}
        }
        self
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
