//! The state every handler receives.

use std::sync::Arc;

use ipnet::IpNet;
use tessera_app::App;

use crate::metrics::Metrics;

pub struct AppState<S> {
    pub app: App<S>,
    pub metrics: Arc<Metrics>,
    /// Peers whose `X-Forwarded-For` is believed (none by default).
    pub trusted_proxies: Arc<Vec<IpNet>>,
}

impl<S: Clone> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            app: self.app.clone(),
            metrics: Arc::clone(&self.metrics),
            trusted_proxies: Arc::clone(&self.trusted_proxies),
        }
    }
}

impl<S> AppState<S> {
    pub fn new(app: App<S>, trusted_proxies: Vec<IpNet>) -> Self {
        Self {
            app,
            metrics: Arc::new(Metrics::default()),
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }
}
