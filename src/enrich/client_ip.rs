//! Who clicked: the client address from the socket, or from the forwarding headers of
//! a proxy the operator trusts.
//!
//! `X-Forwarded-For` is read right to left, skipping trusted proxies, and the first
//! address that is not one of them is the client: the leftmost entries are whatever
//! the client chose to send and cannot be believed. The chain is every line of the
//! header, in order (the proxy joins them). Headers from an untrusted peer are ignored
//! entirely.

use http::HeaderValue;
use ipnet::IpNet;
use std::net::IpAddr;

/// Where the address came from, as written into the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpSource {
    Socket,
    ForwardedFor,
    RealIp,
}

impl IpSource {
    pub fn as_str(self) -> &'static str {
        match self {
            IpSource::Socket => "socket",
            IpSource::ForwardedFor => "x-forwarded-for",
            IpSource::RealIp => "x-real-ip",
        }
    }
}

pub fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client address and its source. `forwarded_for` is the whole chain.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&[u8]>,
    real_ip: Option<&HeaderValue>,
    trusted: &[IpNet],
) -> (Option<IpAddr>, IpSource) {
    let Some(peer) = peer.map(|p| p.to_canonical()) else {
        return (None, IpSource::Socket);
    };
    if !is_trusted(trusted, peer) {
        return (Some(peer), IpSource::Socket);
    }
    if let Some(xff) = forwarded_for {
        let mut leftmost = None;
        let mut any = false;
        for entry in xff.rsplit(|b| *b == b',') {
            let Some(ip) = parse_entry(entry) else {
                // A malformed entry breaks the chain: nothing left of it can be trusted.
                break;
            };
            any = true;
            leftmost = Some(ip);
            if !is_trusted(trusted, ip) {
                return (Some(ip), IpSource::ForwardedFor);
            }
        }
        if any {
            // Every hop is a trusted proxy: the leftmost is the best we know.
            return (leftmost, IpSource::ForwardedFor);
        }
    }
    if let Some(ip) = real_ip.and_then(|v| parse_entry(v.as_bytes())) {
        return (Some(ip), IpSource::RealIp);
    }
    (Some(peer), IpSource::Socket)
}

/// One hop: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`, with
/// surrounding spaces; IPv6 zone ids are dropped.
fn parse_entry(raw: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    let s = s.trim_matches('"');
    let host = if let Some(rest) = s.strip_prefix('[') {
        rest.split(']').next()?
    } else if s.matches(':').count() == 1 {
        s.split(':').next()?
    } else {
        s
    };
    let host = host.split('%').next()?;
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let (ip, src) = client_ip(
            Some("203.0.113.9".parse().unwrap()),
            Some(b"1.1.1.1"),
            Some(&hv("2.2.2.2")),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(src, IpSource::Socket);
    }

    #[test]
    fn trusted_peer_gives_rightmost_untrusted_hop() {
        let (ip, src) = client_ip(
            Some("10.0.0.2".parse().unwrap()),
            Some(b"6.6.6.6, 81.2.69.142, 10.0.0.7"),
            None,
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(ip, Some("81.2.69.142".parse().unwrap()));
        assert_eq!(src, IpSource::ForwardedFor);
    }

    #[test]
    fn ports_brackets_and_zones_are_stripped() {
        let t = nets(&["127.0.0.1/32"]);
        let peer = Some("127.0.0.1".parse().unwrap());
        let cases = [
            ("81.2.69.142:5555", "81.2.69.142"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("fe80::1%eth0", "fe80::1"),
            ("::ffff:81.2.69.142", "81.2.69.142"),
        ];
        for (header, want) in cases {
            let (ip, _) = client_ip(peer, Some(header.as_bytes()), None, &t);
            assert_eq!(ip, Some(want.parse().unwrap()), "{header}");
        }
    }

    #[test]
    fn garbage_forwarded_for_falls_back_to_real_ip_then_socket() {
        let t = nets(&["127.0.0.1/32"]);
        let peer = Some("127.0.0.1".parse().unwrap());
        let (ip, src) = client_ip(peer, Some(b"not-an-ip"), Some(&hv("81.2.69.1")), &t);
        assert_eq!(
            (ip, src),
            (Some("81.2.69.1".parse().unwrap()), IpSource::RealIp)
        );
        let (ip, src) = client_ip(peer, Some(b"unknown"), None, &t);
        assert_eq!((ip, src), (peer, IpSource::Socket));
    }
}
