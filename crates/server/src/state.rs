//! The state every handler receives.

use std::sync::Arc;

use ipnet::IpNet;
use tessera_app::App;

use crate::metrics::Metrics;
use crate::ui::session::RefreshFlights;

pub struct AppState<S> {
    pub app: App<S>,
    pub metrics: Arc<Metrics>,
    /// Peers whose `X-Forwarded-For` is believed (none by default).
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// Browser sessions' refresh rotations in flight on this node.
    pub web: Arc<RefreshFlights>,
}

impl<S: Clone> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            app: self.app.clone(),
            metrics: Arc::clone(&self.metrics),
            trusted_proxies: Arc::clone(&self.trusted_proxies),
            web: Arc::clone(&self.web),
        }
    }
}

impl<S> AppState<S> {
    pub fn new(app: App<S>, trusted_proxies: Vec<IpNet>) -> Self {
        Self {
            app,
            metrics: Arc::new(Metrics::default()),
            trusted_proxies: Arc::new(trusted_proxies),
            web: Arc::default(),
        }
    }
}
