//! Error type of the crate.

use std::path::PathBuf;

/// Every failure of parsing or capturing a trace.
///
/// Input errors carry the file and the 1-based line number, and display as
/// `file:line: cause`.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Opening, reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The input is invalid at a given line (bad syntax in strict mode, a
    /// truncated gzip stream, a CPU number above the limit, ...).
    #[error("{}:{line}: {cause}", path.display())]
    Input {
        /// The file involved.
        path: PathBuf,
        /// 1-based line number (for a truncated stream: the line after the
        /// last complete one).
        line: u64,
        /// What is wrong.
        cause: String,
    },
    /// The file as a whole is not a usable trace (no switch event, more
    /// unreadable lines than events).
    #[error("{}: {cause}", path.display())]
    Content {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        cause: String,
    },
    /// A capture could not run (missing `perf`, missing permissions, the
    /// command failed, ...).
    #[error("capture: {0}")]
    Capture(String),
}

impl TraceError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TraceError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn input(path: impl Into<PathBuf>, line: u64, cause: impl Into<String>) -> Self {
        TraceError::Input {
            path: path.into(),
            line,
            cause: cause.into(),
        }
    }

    /// The 1-based line number the error refers to, if any.
    pub fn line(&self) -> Option<u64> {
        match self {
            TraceError::Input { line, .. } => Some(*line),
            _ => None,
        }
    }
}
