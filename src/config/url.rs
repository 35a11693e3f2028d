//! URLs clicktap sends to: the one rule that webhook URLs and OAuth token URLs share,
//! and the credentials a URL carries in its userinfo.
//!
//! Both kinds of URL carry secrets (events and signatures, client credentials), so both
//! pass through [`outbound`]: https, plain http only where the operator said
//! `delivery.allow_http = true`, nothing else. Where the address may point (public or
//! private) is checked when connecting, by delivery's guard, because a name can resolve
//! differently then.

use reqwest::Url;

use super::DeliveryConfig;

/// Parses a URL clicktap will send to, refusing what would leak or cannot be reached.
pub(super) fn outbound(s: &str, delivery: &DeliveryConfig) -> Result<Url, String> {
    if s.is_empty() {
        return Err("is missing".into());
    }
    let url = Url::parse(s).map_err(|e| format!("is not a URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if delivery.allow_http => {}
        "http" => {
            return Err(
                "is http, which would send in clear text; use https, or set \
                        delivery.allow_http = true on a closed network"
                    .into(),
            );
        }
        other => return Err(format!("has scheme {other:?}; use https")),
    }
    if url.host().is_none() {
        return Err("has no host".into());
    }
    Ok(url)
}

/// The username and password of `https://user:pass@host/`, percent-decoded: the URL
/// keeps them encoded (`us%40er`), and a receiver expects the text the operator meant
/// (`us@er`). Empty parts are `None`.
pub(super) fn credentials(url: &Url) -> Result<(Option<String>, Option<String>), String> {
    let decode = |part: &str, what: &str| -> Result<Option<String>, String> {
        if part.is_empty() {
            return Ok(None);
        }
        String::from_utf8(percent_decode(part))
            .map(Some)
            .map_err(|_| format!("the {what} in the URL is not UTF-8 once percent-decoded"))
    };
    Ok((
        decode(url.username(), "username")?,
        decode(url.password().unwrap_or(""), "password")?,
    ))
}

/// `%XX` to its byte; a `%` not followed by two hex digits stays as it is, as the URL
/// standard's percent-decode does.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_takes_pairs_of_hex_digits_and_keeps_the_rest() {
        assert_eq!(percent_decode("us%40er"), b"us@er");
        assert_eq!(percent_decode("%C3%B6%3a"), "ö:".as_bytes());
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
    }

    #[test]
    fn credentials_come_out_decoded() {
        let url = Url::parse("https://us%40er:p%3Ass%20w%C3%B6rd@host/").unwrap();
        assert_eq!(
            credentials(&url).unwrap(),
            (Some("us@er".into()), Some("p:ss wörd".into()))
        );
        let none = Url::parse("https://host/").unwrap();
        assert_eq!(credentials(&none).unwrap(), (None, None));
        let latin1 = Url::parse("https://user:p%E9@host/").unwrap();
        assert!(credentials(&latin1).unwrap_err().contains("password"));
    }
}
