//! Library error type: every failure names the file, field or shape a user has to fix.

use std::path::PathBuf;

/// Errors returned by the scoregen library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A data file whose content is malformed (bad number, ragged row, NaN, wrong header...).
    #[error("{path}: {message}")]
    Data {
        /// The offending file.
        path: PathBuf,
        /// What is wrong, with line/column where known.
        message: String,
    },
    /// A checkpoint that is missing, truncated, corrupt or inconsistent.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An invalid configuration value.
    #[error("config field `{field}`: {message}")]
    Config {
        /// The configuration field (TOML key or CLI flag).
        field: String,
        /// Why the value is not accepted.
        message: String,
    },
    /// Tensor or data shapes that do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Training diverged (NaN or infinite loss).
    #[error("training diverged: {0}")]
    Diverged(String),
    /// Sampling ended with NaN or infinite values.
    #[error("sampling diverged: {0}")]
    Sampling(String),
    /// A requested feature is not available for this combination (sampler × SDE, device...).
    #[error("{0}")]
    Unsupported(String),
}

/// Convenience alias used throughout the library.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A data-format error for `path`.
    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A checkpoint error for `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Ok for a finite `v > 0`, else a configuration error for `field`.
    pub fn require_positive(field: &str, v: f64) -> Result<()> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(Error::config(
                field,
                format!("must be a positive number, not {v}"),
            ))
        }
    }

    /// A configuration error for `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}
