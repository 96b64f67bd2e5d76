//! The JSON API, one module per resource; each exposes `router()`.

pub mod admin;
pub mod auth;
pub mod authorize;
pub mod me;
pub mod mfa;
pub mod ops;
pub mod reset;
pub mod sessions;

use tessera_app::AppError;
use tessera_core::ids::InvalidField;

/// Turns a domain parse failure into a 400 naming the JSON field.
pub(crate) fn field(name: &'static str) -> impl FnOnce(InvalidField) -> AppError {
    move |e| AppError::invalid(name, e.0)
}
