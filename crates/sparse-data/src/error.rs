//! The data error: which file, and what was expected.

use std::fmt;

/// A data file that is missing, unreadable or not what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError {
    /// The file (or directory) concerned.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

impl DataError {
    /// An error about `path`.
    pub fn new(path: impl AsRef<std::path::Path>, message: impl Into<String>) -> Self {
        Self {
            path: path.as_ref().display().to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for DataError {}
