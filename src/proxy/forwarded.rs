//! The forwarding headers every request reaches the shortener with, on either path:
//! `X-Forwarded-For` (every line the request had, in order, then the peer, as one line)
//! and `X-Forwarded-Proto` (kept from a trusted proxy, set otherwise), as reverse proxies
//! conventionally do.

use http::HeaderValue;
use http::header::GetAll;
use pingora::http::RequestHeader;
use std::io::Write;
use std::net::IpAddr;

use crate::enrich::is_trusted;

/// Adds the forwarding headers for a request from `peer`.
pub fn add(
    req: &mut RequestHeader,
    peer: IpAddr,
    tls: bool,
    trusted: &crate::live::Trusted,
) -> pingora::Result<()> {
    let ip = peer.to_canonical();
    // The peer's address, formatted once into a stack buffer.
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cursor, "{ip}");
    let len = cursor.position() as usize;
    let xff = joined_forwarded_for(req.headers.get_all("x-forwarded-for"), &buf[..len]);
    req.insert_header("x-forwarded-for", xff)?;
    let keep_proto =
        is_trusted(&trusted.load(), ip) && req.headers.contains_key("x-forwarded-proto");
    if !keep_proto {
        req.insert_header("x-forwarded-proto", if tls { "https" } else { "http" })?;
    }
    Ok(())
}

/// Every `X-Forwarded-For` line, in order, as one list (RFC 9110 section 5.3: lines of a
/// list field combine in order), with `last` appended. HAProxy's `option forwardfor`, for
/// one, adds a line of its own rather than extending the client's, so the hop a trusted
/// proxy vouches for can be on any line.
pub fn joined_forwarded_for(lines: GetAll<'_, HeaderValue>, last: &[u8]) -> Vec<u8> {
    let present = || {
        lines
            .iter()
            .filter(|l| !l.as_bytes().trim_ascii().is_empty())
    };
    let len: usize = present().map(|l| l.len() + 2).sum::<usize>() + last.len();
    let mut out = Vec::with_capacity(len);
    for line in present() {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b", ");
    }
    if last.is_empty() {
        out.truncate(out.len().saturating_sub(2));
    } else {
        out.extend_from_slice(last);
    }
    out
}

/// A header map with one `X-Forwarded-For` line per value, for tests.
#[cfg(test)]
pub fn lines(values: &[&str]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for v in values {
        h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_lines_join_in_order_with_the_peer_last() {
        let cases: [(&[&str], &str); 5] = [
            (&[], "10.0.0.1"),
            (&["6.6.6.6"], "6.6.6.6, 10.0.0.1"),
            (
                &["6.6.6.6", "81.2.69.142"],
                "6.6.6.6, 81.2.69.142, 10.0.0.1",
            ),
            (&["a, b", "", "  ", "c"], "a, b, c, 10.0.0.1"),
            (&[""], "10.0.0.1"),
        ];
        for (values, want) in cases {
            let h = lines(values);
            let got = joined_forwarded_for(h.get_all("x-forwarded-for"), b"10.0.0.1");
            assert_eq!(String::from_utf8(got).unwrap(), want, "{values:?}");
        }
        let h = lines(&["a", "b"]);
        assert_eq!(
            joined_forwarded_for(h.get_all("x-forwarded-for"), b""),
            b"a, b"
        );
    }
}
