//! Points in time as the admin API takes them: RFC 3339 (`2026-12-04T10:00:00Z`, any
//! offset, any fraction) or milliseconds since the Unix epoch, as a number or a string
//! of digits. Times before 1970 read as 1970.

use serde_json::Value;

const HINT: &str = "give milliseconds since 1970 or RFC 3339 (2026-12-04T10:00:00Z)";

/// Milliseconds since the Unix epoch; an error says what a good value looks like.
pub fn parse(v: &Value) -> Result<u64, String> {
    match v {
        // A whole number written with a fraction (`1700000000000.0`) is a whole number.
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && (0.0..1.8e19).contains(f))
                    .map(|f| f as u64)
            })
            .ok_or_else(|| format!("{n} is not a time: {HINT}")),
        Value::String(s) => parse_text(s),
        other => Err(format!("{other} is not a time: {HINT}")),
    }
}

pub fn parse_text(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| format!("{s:?} is too large a time"));
    }
    rfc3339(t).ok_or_else(|| format!("{s:?} is not a time: {HINT}"))
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian), H. Hinnant's algorithm.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (h, mi, sec) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let first3: String = frac[..n].chars().chain("000".chars()).take(3).collect();
        ms = digits(&first3)?;
        rest = &frac[n..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(&o[0..1], "+" | "-") && &o[3..4] == ":" => {
            let (oh, om) = (digits(&o[1..3])?, digits(&o[4..6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if o.starts_with('-') { -m } else { m }
        }
        _ => return None,
    };
    let secs =
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_min * 60;
    Some((secs * 1000 + ms).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_every_shape() {
        assert_eq!(
            parse(&serde_json::json!(1_700_000_000_000u64)),
            Ok(1_700_000_000_000)
        );
        assert_eq!(parse_text("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_text("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_text("2023-11-14t22:13:20.5z"), Ok(1_700_000_000_500));
        assert_eq!(
            parse_text("2023-11-14T23:13:20.123456789+01:00"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_text("2023-11-14T17:13:20-05:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_text("1969-12-31T23:59:59Z"),
            Ok(0),
            "before 1970 reads as 1970"
        );
        assert_eq!(parse_text("0001-01-01T00:00:00Z"), Ok(0));
        assert!(parse_text("2024-02-29T00:00:00Z").is_ok());
        for bad in [
            "yesterday",
            "",
            "2023-02-29T00:00:00Z",
            "2023-11-14T25:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20+0100",
        ] {
            assert!(
                parse_text(bad).unwrap_err().contains("RFC 3339") || bad.is_empty(),
                "{bad}"
            );
        }
        assert!(parse(&serde_json::json!(-1)).is_err());
        assert_eq!(
            parse(&serde_json::json!(68_535_899_457.0)),
            Ok(68_535_899_457)
        );
        assert!(parse(&serde_json::json!(1.5)).is_err());
        assert!(parse(&serde_json::json!([1])).is_err());
        assert!(parse_text("99999999999999999999999").is_err());
    }
}
