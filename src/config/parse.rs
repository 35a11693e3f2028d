//! Parsers for the string-typed values of the TOML file, each with an error that says
//! what a good value looks like.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// `"5s"`, `"250ms"`, `"24h"`, `"7d"`, `"0s"`.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("{s:?} is not a duration ({e}); write e.g. \"5s\", \"250ms\", \"24h\"")
    })
}

/// `"64MiB"`, `"4GiB"`, `"500KB"`, `"1048576"`.
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size; write e.g. \"64MiB\" or \"4GiB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "{s:?} has an unknown unit {other:?}; use B, KB, MB, GB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// `"127.0.0.1:8080"` or `"[::1]:8080"`: a literal address, no name lookup.
pub fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an address:port (e.g. \"0.0.0.0:8080\" or \"[::]:8080\")")
    })
}

/// `"127.0.0.1:8081"`, `"[::1]:8081"` or `"shortener.internal:80"`, resolved once now.
pub fn upstream_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !s.contains(':') {
        return Err(format!("{s:?} has no port; write host:port"));
    }
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{s:?} resolves to no address")),
        Err(e) => Err(format!("{s:?} does not resolve: {e}")),
    }
}

/// `"10.0.0.0/8"`, `"::1/128"`, or a bare address meaning that one address.
pub fn cidr(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    t.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!("{s:?} is not a CIDR (e.g. \"10.0.0.0/8\", \"fd00::/8\") or an address")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_operators_write_them() {
        assert_eq!(duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(duration("five").unwrap_err().contains("\"five\""));
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(size("64MiB").unwrap(), 64 << 20);
        assert_eq!(size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(size("4096").unwrap(), 4096);
        assert!(size("12 parsecs").unwrap_err().contains("unknown unit"));
        assert!(size("MiB").is_err());
    }

    #[test]
    fn cidrs_accept_bare_addresses_and_truncate_host_bits() {
        assert_eq!(cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(cidr("::1").unwrap().to_string(), "::1/128");
        assert!(cidr("10.0.0.0/33").is_err());
    }

    #[test]
    fn upstream_needs_a_port() {
        assert!(upstream_addr("localhost").unwrap_err().contains("no port"));
        assert_eq!(
            upstream_addr("127.0.0.1:81").unwrap(),
            "127.0.0.1:81".parse().unwrap()
        );
    }
}
