//! Points in time as the admin API takes them: RFC 3339 (`2026-12-04T10:00:00Z`) or
//! milliseconds since the Unix epoch, as a number or a string of digits.

use serde_json::Value;

/// Milliseconds since the Unix epoch; an error says what a good value looks like.
pub fn parse(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a time: give milliseconds since 1970 or RFC 3339")),
        Value::String(s) => parse_text(s),
        other => Err(format!(
            "{other} is not a time: give milliseconds since 1970 or RFC 3339"
        )),
    }
}

pub fn parse_text(s: &str) -> Result<u64, String> {
    if let Ok(ms) = s.trim().parse::<u64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(s.trim())
        .map(crate::clock::ms_of)
        .map_err(|_| {
            format!("{s:?} is not a time: give milliseconds since 1970 or RFC 3339 (2026-12-04T10:00:00Z)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_both_shapes() {
        assert_eq!(
            parse(&serde_json::json!(1_700_000_000_000u64)),
            Ok(1_700_000_000_000)
        );
        assert_eq!(parse_text("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_text("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_text("2023-11-14T22:13:20.5Z"), Ok(1_700_000_000_500));
        assert!(parse_text("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(parse(&serde_json::json!(-1)).is_err());
        assert!(parse(&serde_json::json!([1])).is_err());
    }
}
