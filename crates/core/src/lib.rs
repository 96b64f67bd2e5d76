//! Tessera's pure domain. Nothing here performs I/O, reads the clock or draws randomness:
//! time (`now`) and fresh secret bytes are arguments, so every rule is a plain function
//! that tests drive directly.
//!
//! - `defaults`: the built-in defaults several layers read (configuration, use cases,
//!   policies), each written once.
//! - `ids`, `secret`: newtypes for identifiers and for secrets (redacted `Debug`,
//!   constant-time comparison of token hashes).
//! - `email`, `password`: parse-don't-validate input types, the password policy and
//!   Argon2id hashing.
//! - `crypto`: AEAD sealing under the master key (secrets at rest), and the key ring that
//!   opens values sealed under a previous master key while they are re-sealed.
//! - `jwt`: EdDSA access tokens and their JWKS form.
//! - `session`: the session aggregate, expiry, and the refresh-rotation state machine.
//! - `mfa`: TOTP, recovery codes and the enrolment QR code.
//! - `policy`: the step-up policy (which role and how recent an MFA an action needs).
//! - `ratelimit`: sliding-window rate-limit decisions.
//! - `device`: readable device labels from user agents.
//! - `known_device`: signed known-device tokens (their own login budget).
//! - `event`: the kinds of security event.

pub mod crypto;
pub mod defaults;
pub mod device;
pub mod email;
pub mod event;
pub mod ids;
pub mod jwt;
pub mod known_device;
pub mod mfa;
pub mod password;
pub mod policy;
pub mod ratelimit;
pub mod secret;
pub mod session;

pub use email::Email;
pub use ids::{DeviceId, DeviceName, Role, SessionId, UserId};
