//! Clients that reach the server from other addresses.

use std::net::IpAddr;

/// A client whose requests leave from another loopback address: another real peer IP.
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}
