//! Visitor privacy: addresses are cut to a network prefix before they are stored or
//! sent, unless the operator keeps raw addresses on purpose.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address with everything after `v4_prefix` / `v6_prefix` bits zeroed.
pub fn anonymize(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if v4_prefix == 0 {
                0
            } else {
                u32::MAX << (32 - v4_prefix.min(32) as u32)
            };
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if v6_prefix == 0 {
                0
            } else {
                u128::MAX << (128 - v6_prefix.min(128) as u32)
            };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_keeps_the_first_24_bits() {
        assert_eq!(
            anonymize("81.2.69.142".parse().unwrap(), 24, 48).to_string(),
            "81.2.69.0"
        );
    }

    #[test]
    fn ipv6_keeps_the_first_48_bits() {
        assert_eq!(
            anonymize("2001:db8:abcd:12::1".parse().unwrap(), 24, 48).to_string(),
            "2001:db8:abcd::"
        );
    }

    #[test]
    fn mapped_ipv4_is_treated_as_ipv4() {
        assert_eq!(
            anonymize("::ffff:81.2.69.142".parse().unwrap(), 24, 48).to_string(),
            "81.2.69.0"
        );
    }

    #[test]
    fn full_prefixes_keep_the_address() {
        assert_eq!(
            anonymize("1.2.3.4".parse().unwrap(), 32, 128).to_string(),
            "1.2.3.4"
        );
        assert_eq!(
            anonymize("1.2.3.4".parse().unwrap(), 0, 0).to_string(),
            "0.0.0.0"
        );
    }
}
