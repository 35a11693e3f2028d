//! URLs fit for logs, answers and pages: a webhook URL may carry credentials in its
//! userinfo or an API key in its query, and neither may leave the process that way.

/// The URL without userinfo and with its query replaced by `?…`.
pub fn url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let had_query = u.query().is_some();
    u.set_query(None);
    if had_query {
        format!("{u}?…")
    } else {
        u.to_string()
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
