//! The configuration error shared by the sparse crates.

use std::fmt;

/// A configuration value outside its accepted range, or a selection that matches nothing.
///
/// The message names the field and what was expected:
///
/// ```
/// use sparse_reg::SelectiveDecayConfig;
/// let err = SelectiveDecayConfig::new().with_gamma(-1.0).validate().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid SelectiveDecayConfig.gamma: expected a finite number >= 0, got -1"
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, as `Struct.field[.sub]`.
    pub field: String,
    /// What was expected, and what was found.
    pub message: String,
}

impl ConfigError {
    /// An error for `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Check `value` is finite and `>= 0`.
    pub fn non_negative(field: &str, value: f64) -> Result<(), ConfigError> {
        if value.is_finite() && value >= 0.0 {
            Ok(())
        } else {
            Err(Self::new(
                field,
                format!("expected a finite number >= 0, got {value}"),
            ))
        }
    }

    /// Check `value` is finite and `> 0`.
    pub fn positive(field: &str, value: f64) -> Result<(), ConfigError> {
        if value.is_finite() && value > 0.0 {
            Ok(())
        } else {
            Err(Self::new(
                field,
                format!("expected a finite number > 0, got {value}"),
            ))
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.message)
    }
}

/// The message, so that `.unwrap()` and `.expect()` print what to fix.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ConfigError {}
