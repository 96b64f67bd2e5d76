//! One multi-threaded runtime per test binary for property tests: proptest runs each case
//! as a plain closure, and a runtime built per case would cost more than a short case.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// Runs `f` to completion on the shared runtime (never from inside a runtime).
pub fn block_on<F: Future>(f: F) -> F::Output {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a test runtime")
    })
    .block_on(f)
}
