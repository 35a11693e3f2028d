//! URLs fit for logs, answers and pages: a webhook URL may carry credentials in its
//! userinfo or an API key in its query, and neither may leave the process that way.

/// What a value taken out for being secret reads.
pub const REDACTED: &str = "[redacted]";

/// The URL without userinfo and with its query replaced by `?…`.
pub fn url(url: &url::Url) -> String {
    shown(url, |_| "…".into())
}

/// The URL without userinfo, its query's names kept and each value `[redacted]`
/// (`?api_key=[redacted]`): what the delivery log shows of a request sent.
pub fn url_with_query_names(url: &url::Url) -> String {
    shown(url, |u| {
        u.query_pairs()
            .map(|(k, _)| format!("{k}={REDACTED}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// `url` without userinfo and query, and `?` with what `query` makes of the query when
/// it had one.
fn shown(url: &url::Url, query: impl Fn(&url::Url) -> String) -> String {
    if url.username().is_empty() && url.password().is_none() && url.query().is_none() {
        // Nothing to take out (most webhook URLs): as it is, without parsing it again.
        return url.as_str().to_string();
    }
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    match url.query() {
        Some(_) => format!("{u}?{}", query(url)),
        None => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_and_queries_are_left_out() {
        let u = url::Url::parse("https://user:pw@hooks.example/x?api_key=s3cret").unwrap();
        let shown = super::url(&u);
        assert_eq!(shown, "https://hooks.example/x?…");
        assert!(!shown.contains("s3cret") && !shown.contains("pw"));
    }
}
