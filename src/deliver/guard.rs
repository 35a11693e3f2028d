//! SSRF guard: webhooks go to public addresses only, unless the operator says
//! otherwise (`delivery.allow_private_targets`).
//!
//! The check is made on the address actually connected to: names are resolved by
//! [`GuardedResolver`], which drops private addresses, so a name that resolves (or
//! rebinds) to 127.0.0.1 is refused at connect time. IP literals never reach a
//! resolver, so [`check_url`] refuses them before a request is built; the URL parser
//! has already normalised obfuscated forms (0x7f.1, 2130706433, [::ffff:127.0.0.1]).

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a target was refused, as recorded in the delivery log.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "refused: {0} is a private or reserved address (delivery.allow_private_targets = false)"
    )]
    Private(IpAddr),
    #[error(
        "refused: {0} resolves only to private or reserved addresses (delivery.allow_private_targets = false)"
    )]
    PrivateName(String),
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, String),
}

/// Whether `ip` is anything but a public unicast address.
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => private_v6(v6),
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
}

/// IPv6 forms that carry an IPv4 address reach that address: they are as private as
/// it is. Forms that cannot be checked are refused.
fn private_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // NAT64, well-known prefix 64:ff9b::/96: the IPv4 address in the last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return private_v4(v4_of(s[6], s[7]));
    }
    // NAT64 for local use, 64:ff9b:1::/48 (RFC 8215): a network's own translator,
    // which reaches that network's private addresses.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return true;
    }
    // 6to4, 2002::/16: the IPv4 address in bits 16-48 (2002:a9fe:a9fe:: is
    // 169.254.169.254).
    if s[0] == 0x2002 {
        return private_v4(v4_of(s[1], s[2]));
    }
    // Teredo, 2001:0::/32: the client's IPv4 address, inverted, in the last 32 bits,
    // the server's in bits 32-64.
    if s[0] == 0x2001 && s[1] == 0 {
        return private_v4(v4_of(!s[6], !s[7])) || private_v4(v4_of(s[2], s[3]));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard 100::/64
        || s[0] == 0 // the rest of ::/16: IPv4-compatible and reserved
}

/// Refuses a URL whose host is a private IP literal.
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), Refused> {
    if allow_private {
        return Ok(());
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if is_private(ip) {
        return Err(Refused::Private(ip));
    }
    Ok(())
}

/// The longest a name lookup may take. Requests have their own deadline too; this
/// one keeps a hanging name server from holding a connection attempt that has none.
pub const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A resolver that keeps only public addresses.
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lookup =
                tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), 0)))
                    .await
                    .map_err(|_| {
                        Refused::Resolve(
                            host.clone(),
                            format!("no answer within {RESOLVE_TIMEOUT:?}"),
                        )
                    })?;
            let addrs: Vec<SocketAddr> = lookup
                .map_err(|e| Refused::Resolve(host.clone(), e.to_string()))?
                .collect();
            let public: Vec<SocketAddr> =
                addrs.into_iter().filter(|a| !is_private(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(Refused::PrivateName(host))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "224.0.0.1",
            // 6to4 of 169.254.169.254, 127.0.0.1 and 10.0.0.1
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            // NAT64 for local use
            "64:ff9b:1::a00:1",
            "64:ff9b:1::808:808",
            // Teredo with a private client (10.0.0.1 inverted) or server
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2001:0:a00:1::",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in [
            "8.8.8.8",
            "81.2.69.142",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "172.32.0.1",
            // 6to4 of 8.8.8.8; Teredo between public addresses
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn obfuscated_literals_are_normalised_then_refused() {
        for u in [
            "https://127.0.0.1/x",
            "https://0x7f.1/x",
            "https://2130706433/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[::1]:8443/x",
            "https://0177.0.0.1/x",
        ] {
            let url = Url::parse(u).unwrap();
            assert!(check_url(&url, false).is_err(), "{u} should be refused");
            assert!(check_url(&url, true).is_ok());
        }
        assert!(check_url(&Url::parse("https://hooks.example.com/x").unwrap(), false).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let err = GuardedResolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("private"), "{err}");
    }
}
