//! Errors of the format: each names the file (or tensor) and what was expected.

/// A file that cannot be written, read or applied, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportError {
    /// The file, or `file: tensor path`.
    pub what: String,
    /// What was wrong, and what was expected.
    pub message: String,
}

impl ExportError {
    pub(crate) fn new(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.message)
    }
}

impl std::error::Error for ExportError {}
