//! Which path a request head takes, decided on its bytes before anything else reads
//! them: the lean path forwards only the ordinary request, whose framing and fields it
//! can pass on without judgement; anything else goes to the full Pingora proxy, which
//! reads the same bytes from the start.

/// The most header lines the lean path reads; a head with more goes the full way.
const MAX_LINES: usize = 96;

/// The largest request body the lean path forwards: it sends a body whole before it
/// reads the answer, and keeps it to send again on another upstream connection when a
/// reused one turns out closed (Pingora's retry buffer holds 64 KiB). Larger uploads,
/// which a shortener seldom gets, go the full way, where both directions stream at once.
pub const MAX_BODY: u64 = 64 * 1024;

/// The most bytes of a head the lean path reads; a longer one goes the full way, where
/// Pingora reads on up to its own limit.
pub const MAX_BYTES: usize = 32 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// More bytes are needed to decide.
    Partial,
    /// An ordinary request: the lean path forwards it, removing the [`HOP_BY_HOP`]
    /// fields when it has any.
    Lean { hop_by_hop: bool },
    /// Anything else, named for the log and the tests.
    Full(&'static str),
}

/// Fields the lean path does not forward itself: framing it does not stream
/// (`Transfer-Encoding`), interim answers it does not ask for (`Expect`), protocol
/// changes (`Upgrade`, `HTTP2-Settings`) and hop-by-hop fields whose handling is
/// Pingora's (`TE`, `Trailer`).
const FULL_FIELDS: [&str; 6] = [
    "transfer-encoding",
    "expect",
    "upgrade",
    "http2-settings",
    "te",
    "trailer",
];

/// Hop-by-hop fields the lean path removes, as pingora-proxy does for HTTP/1 upstreams.
/// (`Transfer-Encoding`, `TE`, `Trailer`, `Upgrade` and a `Connection` naming other
/// fields send a request the full way.)
pub const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Decides the route of the head at the start of `buf`.
pub fn route(buf: &[u8]) -> Route {
    let mut lines = [httparse::EMPTY_HEADER; MAX_LINES];
    let mut req = httparse::Request::new(&mut lines);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => judge(&req),
        Ok(httparse::Status::Partial) if buf.len() < MAX_BYTES => Route::Partial,
        Ok(httparse::Status::Partial) => Route::Full("a head longer than the lean path reads"),
        Err(httparse::Error::TooManyHeaders) => {
            Route::Full("more header lines than the lean path reads")
        }
        Err(_) => Route::Full("a head the lean path cannot parse"),
    }
}

fn judge(req: &httparse::Request<'_, '_>) -> Route {
    if !matches!(req.version, Some(0 | 1)) {
        return Route::Full("not HTTP/1.0 or 1.1");
    }
    if req.method == Some("CONNECT") {
        return Route::Full("CONNECT");
    }
    if !req.path.is_some_and(|p| p.starts_with('/')) {
        return Route::Full("a target not in origin form");
    }
    let (mut hosts, mut lengths, mut hop_by_hop) = (0, 0, false);
    for h in req.headers.iter() {
        let name = h.name;
        hop_by_hop |= HOP_BY_HOP.iter().any(|f| name.eq_ignore_ascii_case(f));
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if h.value.contains(&b'@') {
                return Route::Full("userinfo in Host");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            let v = h.value;
            if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
                return Route::Full("a Content-Length that is not one number");
            }
            let len = v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if len > MAX_BODY {
                return Route::Full("a body larger than the lean path forwards");
            }
        } else if name.eq_ignore_ascii_case("connection") {
            let plain = h.value.split(|b| *b == b',').all(|t| {
                let t = t.trim_ascii();
                t.eq_ignore_ascii_case(b"keep-alive") || t.eq_ignore_ascii_case(b"close")
            });
            if !plain {
                return Route::Full("Connection names other fields");
            }
        } else if FULL_FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            return Route::Full("a field the full proxy handles");
        }
    }
    match (hosts, lengths) {
        (1, 0 | 1) => Route::Lean { hop_by_hop },
        (1, _) => Route::Full("more than one Content-Length"),
        _ => Route::Full("not exactly one Host"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(lines: &str) -> Vec<u8> {
        format!("{lines}\r\n\r\n").into_bytes()
    }

    #[test]
    fn ordinary_requests_are_lean() {
        for h in [
            "GET /r/x HTTP/1.1\r\nHost: sho.rt",
            "GET /r/x?a=1 HTTP/1.0\r\nHost: sho.rt\r\nConnection: keep-alive",
            "HEAD / HTTP/1.1\r\nhost: a\r\nConnection: Keep-Alive, close",
            "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-Any: 1",
            "DELETE /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0",
            "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 65536",
        ] {
            let hop_by_hop = h.to_ascii_lowercase().contains("connection");
            assert_eq!(route(&head(h)), Route::Lean { hop_by_hop }, "{h}");
        }
    }

    #[test]
    fn everything_else_goes_the_full_way() {
        for h in [
            "GET /x HTTP/1.1",
            "GET /x HTTP/1.1\r\nHost: a\r\nHost: b",
            "GET http://a/x HTTP/1.1\r\nHost: a",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443",
            "OPTIONS * HTTP/1.1\r\nHost: a",
            "GET /x HTTP/1.1\r\nHost: u@a",
            "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +3",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 65537",
            "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3",
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket",
            "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret",
            "GET /x HTTP/1.1\r\nHost: a\r\nTE: trailers",
            "GET /x HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b",
            "PRI * HTTP/2.0\r\n\r\nSM",
            "GET /x HTTP/1.1\r\nHost: a\r\nBad Name: 1",
        ] {
            assert!(matches!(route(&head(h)), Route::Full(_)), "{h}");
        }
        let many: String = (0..MAX_LINES).map(|i| format!("\r\nX-{i}: v")).collect();
        let h = format!("GET /x HTTP/1.1\r\nHost: a{many}");
        assert!(matches!(route(&head(&h)), Route::Full(_)));
    }

    #[test]
    fn a_head_is_read_to_its_end_or_to_the_limit() {
        assert_eq!(route(b"GET /x HTTP/1.1\r\nHost: a\r\n"), Route::Partial);
        assert_eq!(route(b""), Route::Partial);
        let long = format!("GET /x HTTP/1.1\r\nX-Long: {}", "v".repeat(MAX_BYTES));
        assert!(matches!(route(long.as_bytes()), Route::Full(_)));
    }
}
