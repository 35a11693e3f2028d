//! Which `Host` values name a host: the only ones an event takes as its link's host.
//!
//! `Host` is whatever the visitor typed, and many shorteners answer whatever it is (nginx
//! refuses a `Host` with `/` or spaces; Python's http.server and many app servers do not).
//! Taken verbatim, `Host: evil.example/phish?x=` would make the event's link
//! `http://evil.example/phish?x=/r/x`, a URL of the visitor's choosing in every webhook
//! and dashboard. So a host is taken only when it is an authority a browser could have
//! sent: a DNS-style name, an IPv4 address or a bracketed IPv6 address, with an optional
//! numeric port. Anything else counts as no host at all.

use std::net::Ipv6Addr;

use crate::click::cap;

/// Whether `authority` is `host[:port]` with a DNS-style name or an IPv4 address, or
/// `[IPv6][:port]`. Names are ASCII letters, digits, `-` and `_` in dot-separated labels
/// of 1 to 63 characters (a trailing dot allowed), 253 characters at most.
pub fn is_valid_authority(authority: &[u8]) -> bool {
    if authority.is_empty() || authority.len() > cap::HOST {
        return false;
    }
    if let Some(rest) = authority.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|b| *b == b']') else {
            return false;
        };
        let (ip, after) = (&rest[..close], &rest[close + 1..]);
        let is_v6 = std::str::from_utf8(ip).is_ok_and(|ip| ip.parse::<Ipv6Addr>().is_ok());
        return is_v6 && (after.is_empty() || after.strip_prefix(b":").is_some_and(is_port));
    }
    let (name, port) = match authority.iter().rposition(|b| *b == b':') {
        Some(colon) => (&authority[..colon], Some(&authority[colon + 1..])),
        None => (authority, None),
    };
    is_name(name) && port.is_none_or(is_port)
}

fn is_port(port: &[u8]) -> bool {
    (1..=5).contains(&port.len())
        && port.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(port).is_ok_and(|p| p.parse::<u16>().is_ok())
}

/// A DNS-style name; an IPv4 address is one too (its labels are digits).
fn is_name(name: &[u8]) -> bool {
    let name = name.strip_suffix(b".").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split(|b| *b == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
                && label.first() != Some(&b'-')
                && label.last() != Some(&b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_a_browser_sends_are_valid() {
        for host in [
            "sho.rt",
            "Sho.RT",
            "go.example.com:8080",
            "localhost",
            "my_host.example",
            "xn--bcher-kva.example",
            "sho.rt.",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[2001:db8::1]:443",
            "a",
        ] {
            assert!(is_valid_authority(host.as_bytes()), "{host}");
        }
    }

    #[test]
    fn anything_else_is_not_a_host() {
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = ["abcdefghi."; 26].concat();
        for host in [
            "",
            "evil.example/phish?x=",
            "sho.rt evil",
            "user@evil.example",
            "user:pw@evil.example",
            "evil.example#x",
            "evil.example?x",
            "sho.rt:",
            "sho.rt:http",
            "sho.rt:65536",
            "sho.rt:123456",
            "sho.rt:80:80",
            "-sho.rt",
            "sho-.rt",
            "sho..rt",
            ".sho.rt",
            "bücher.example",
            "::1",
            "[::1",
            "[fe80::1%eth0]",
            "[not-ip]",
            "[::1]x",
            "[::1]:",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(!is_valid_authority(host.as_bytes()), "{host}");
        }
        assert!(!is_valid_authority(b"sho.rt\xff"));
    }
}
