//! The process's one TLS crypto provider.

/// Installs ring as the process-wide rustls provider, unless one is installed already.
/// Every rustls user here (sqlx, redis's `rediss://`) builds its configuration from the
/// process default; rustls picks one by itself only while exactly one provider is compiled
/// in, and panics at the first handshake otherwise (a dependency enabling aws-lc-rs would
/// be enough). The binary calls this first thing; the Redis adapters call it too, so a
/// library user cannot meet that panic. Idempotent.
pub fn install_tls_provider() {
    // An error only says a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
