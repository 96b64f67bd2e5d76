//! Multi-factor authentication: TOTP (RFC 6238), recovery codes, the enrolment QR code.

pub mod qr;
pub mod recovery;
pub mod totp;
