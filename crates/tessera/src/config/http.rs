//! How HTTP is served: the address (`TESSERA_LISTEN`), which proxies are believed
//! (`TESSERA_TRUSTED_PROXIES`) and the bounds on every client (`TESSERA_HTTP_*`).

use std::net::SocketAddr;

use anyhow::Context;
use ipnet::IpNet;
use tessera_core::defaults;

use super::source::Source;
use crate::edge::HttpLimits;

pub(super) fn listen(src: &Source, from_file: Option<String>) -> anyhow::Result<SocketAddr> {
    let raw = src
        .text("TESSERA_LISTEN", from_file)
        .unwrap_or_else(|| defaults::LISTEN.into());
    raw.parse()
        .with_context(|| format!("TESSERA_LISTEN / listen: {raw:?} is not an address:port"))
}

/// The variable (comma-separated) replaces the file's list.
pub(super) fn trusted_proxies(
    src: &Source,
    from_file: Option<Vec<String>>,
) -> anyhow::Result<Vec<IpNet>> {
    match src.text("TESSERA_TRUSTED_PROXIES", None) {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        None => from_file.unwrap_or_default(),
    }
    .iter()
    .map(|s| parse_net(s))
    .collect()
}

fn parse_net(s: &str) -> anyhow::Result<IpNet> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .with_context(|| format!("TESSERA_TRUSTED_PROXIES: {s:?} is not a CIDR or an address"))
}

/// `from_file`: the file's `http_header_timeout`, `http_request_timeout`,
/// `http_body_timeout`, `http_keepalive_timeout` and `http_max_connections`, in that order.
pub(super) fn limits(src: &Source, from_file: [Option<i64>; 5]) -> anyhow::Result<HttpLimits> {
    let [header, request, body, keepalive, max_connections] = from_file;
    HttpLimits::checked(
        src.secs("TESSERA_HTTP_HEADER_TIMEOUT", header, 10, 1)?,
        src.secs("TESSERA_HTTP_REQUEST_TIMEOUT", request, 30, 1)?,
        src.secs("TESSERA_HTTP_BODY_TIMEOUT", body, 15, 1)?,
        src.secs("TESSERA_HTTP_KEEPALIVE_TIMEOUT", keepalive, 5, 0)?,
        src.count("TESSERA_HTTP_MAX_CONNECTIONS", max_connections, 512)?,
    )
}
