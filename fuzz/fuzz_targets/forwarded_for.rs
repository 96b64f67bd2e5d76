//! The client-IP resolver behind trusted proxies (`X-Forwarded-For`).
//!
//! Contract: an untrusted peer is the client whatever it forwards; behind a trusted peer
//! the answer is the peer or a forwarded hop, and every hop to its right (nearer to us)
//! is a well-formed trusted proxy, so nobody left of the first untrusted hop chooses it.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tessera_server::extract::client_ip;

fn ip(u: &mut Unstructured<'_>) -> Result<IpAddr> {
    Ok(match u.int_in_range(0u8..=2)? {
        0 => IpAddr::V4(Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?)),
        1 => IpAddr::V6(Ipv6Addr::from(u.arbitrary::<[u8; 16]>()?)),
        // IPv4-mapped IPv6, which must count as the IPv4 address.
        _ => IpAddr::V6(Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?).to_ipv6_mapped()),
    })
}

fn net(u: &mut Unstructured<'_>) -> Result<IpNet> {
    Ok(match ip(u)? {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new_assert(a, u.int_in_range(0..=32)?)),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new_assert(a, u.int_in_range(0..=128)?)),
    })
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let peer = ip(&mut u)?;
    let trusted: Vec<IpNet> = (0..u.int_in_range(0..=3)?)
        .map(|_| net(&mut u))
        .collect::<Result<_>>()?;
    // Header values: generated addresses (some trusted) mixed with raw text.
    let mut headers = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let mut hops = Vec::new();
        for _ in 0..u.int_in_range(0..=4)? {
            hops.push(match u.int_in_range(0u8..=2)? {
                0 => ip(&mut u)?.to_string(),
                1 => format!(" {} ", trusted.first().map_or(peer, |n| n.addr())),
                _ => u.arbitrary::<String>()?,
            });
        }
        headers.push(hops.join(","));
    }
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let client = client_ip(peer, &refs, &trusted);

    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        assert_eq!(client, peer);
        return Ok(());
    }
    assert_eq!(client, client.to_canonical(), "answers are canonical");
    if client == peer {
        return Ok(());
    }
    let flat: Vec<&str> = refs.iter().flat_map(|h| h.split(',')).collect();
    let vouched = (0..flat.len()).rev().any(|i| {
        flat[i].trim().parse::<IpAddr>().map(|a| a.to_canonical()) == Ok(client)
            && flat[i + 1..].iter().all(|h| {
                h.trim()
                    .parse::<IpAddr>()
                    .is_ok_and(|a| is_trusted(&a.to_canonical()))
            })
    });
    assert!(vouched, "{client} from {refs:?} behind {trusted:?}");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
