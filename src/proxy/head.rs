//! Which path a request head takes, decided on its bytes before anything else reads
//! them: the gate every HTTP/1 head passes on either forwarding path. It refuses what
//! nginx refuses with a 400 (or 414/431 for a head over the size limit) before any byte
//! reaches the shortener; the lean path forwards only the ordinary request, whose
//! framing and fields it can pass on without judgement; anything else goes to the full
//! Pingora proxy, which reads the same bytes from the start. A head goes nowhere before
//! it is whole, so a head that trickles in is the gate's to time out, never a proxy's.

/// The most header lines the lean path reads; a head with more goes the full way.
const MAX_LINES: usize = 96;

/// The largest request body the lean path forwards: it reads a body whole before it
/// contacts the shortener, and keeps it to send again on another upstream connection
/// when a reused one turns out closed. Larger uploads, which a shortener seldom gets, go
/// the full way, where both directions stream at once.
pub const MAX_BODY: u64 = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// More bytes are needed to decide.
    Partial,
    /// An ordinary request: the lean path forwards it, removing the [`HOP_BY_HOP`]
    /// fields when it has any. Its head is `head` bytes long, its body `body`.
    Lean {
        hop_by_hop: bool,
        head: usize,
        body: u64,
    },
    /// Anything else, named for the log and the tests.
    Full(&'static str),
    /// Answered with this status and the connection closed; nothing is forwarded.
    Refuse(u16, &'static str),
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

/// Decides the route of the head at the start of `buf`. `max` is the largest head
/// (`proxy.max_request_head`); a line may take a quarter of it, as in nginx's
/// `large_client_header_buffers 4 8k`.
pub fn route(buf: &[u8], max: usize) -> Route {
    let mut lines = [httparse::EMPTY_HEADER; MAX_LINES];
    let mut req = httparse::Request::new(&mut lines);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => judge(&req, n, max),
        Ok(httparse::Status::Partial) => partial(buf, max),
        // Decided only on a whole head: the full proxy must not be left reading the
        // rest of it on its own terms.
        Err(httparse::Error::TooManyHeaders) if whole(buf) => {
            Route::Full("more header lines than the lean path reads")
        }
        Err(httparse::Error::TooManyHeaders) => partial(buf, max),
        Err(httparse::Error::Version) if buf.starts_with(b"PRI * HTTP/2.0") => {
            if whole(buf) {
                Route::Full("HTTP/2 with prior knowledge")
            } else {
                partial(buf, max)
            }
        }
        Err(_) => Route::Refuse(400, "a head that does not parse"),
    }
}

/// Whether the head's end is in `buf`.
fn whole(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// A head not yet whole: more is read unless it is already over a limit.
fn partial(buf: &[u8], max: usize) -> Route {
    let line_start = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let first_line = line_start == 0;
    if buf.len() - line_start > max / 4 {
        return over_line(first_line);
    }
    if buf.len() >= max {
        return Route::Refuse(431, "a head over proxy.max_request_head");
    }
    Route::Partial
}

fn over_line(request_line: bool) -> Route {
    if request_line {
        Route::Refuse(
            414,
            "a request line over a quarter of proxy.max_request_head",
        )
    } else {
        Route::Refuse(
            431,
            "a header line over a quarter of proxy.max_request_head",
        )
    }
}

/// Bytes a `Host` value may hold: a host name, an IP literal, a port (RFC 3986
/// reg-name, IP-literal and port). No spaces, slashes, backslashes or userinfo.
fn host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b)
}

fn judge(req: &httparse::Request<'_, '_>, head: usize, max: usize) -> Route {
    let line = max / 4;
    let (method, path) = (req.method.unwrap_or(""), req.path.unwrap_or(""));
    if method.len() + path.len() + 11 > line {
        return over_line(true);
    }
    if req
        .headers
        .iter()
        .any(|h| h.name.len() + h.value.len() + 4 > line)
    {
        return over_line(false);
    }
    let (mut hosts, mut lengths, mut hop_by_hop, mut chunked) = (0, 0, false, false);
    let mut body = 0;
    let mut full = None;
    for h in req.headers.iter() {
        let name = h.name;
        hop_by_hop |= HOP_BY_HOP.iter().any(|f| name.eq_ignore_ascii_case(f));
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if h.value.is_empty() || !h.value.iter().copied().all(host_byte) {
                return Route::Refuse(400, "a Host that is not a host");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            let v = h.value;
            if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
                return Route::Refuse(400, "a Content-Length that is not one number");
            }
            body = v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if body > MAX_BODY {
                full = full.or(Some("a body larger than the lean path forwards"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            let plain = h.value.split(|b| *b == b',').all(|t| {
                let t = t.trim_ascii();
                t.eq_ignore_ascii_case(b"keep-alive") || t.eq_ignore_ascii_case(b"close")
            });
            if !plain {
                full = full.or(Some("Connection names other fields"));
            }
        } else if FULL_FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            chunked |= name.eq_ignore_ascii_case("transfer-encoding");
            full = full.or(Some("a field the full proxy handles"));
        }
    }
    // RFC 9112 sections 3.2 and 6.3: a request with no Host (HTTP/1.1) or more than
    // one, several Content-Lengths, or Content-Length with Transfer-Encoding (a
    // smuggling attempt more often than not) is refused, as nginx refuses it.
    let http11 = req.version == Some(1);
    if hosts > 1 || (hosts == 0 && http11) {
        return Route::Refuse(400, "not exactly one Host");
    }
    if lengths > 1 {
        return Route::Refuse(400, "more than one Content-Length");
    }
    if lengths == 1 && chunked {
        return Route::Refuse(400, "Content-Length with Transfer-Encoding");
    }
    if method == "CONNECT" {
        return Route::Full("CONNECT");
    }
    if !path.starts_with('/') {
        // Absolute form (the full proxy checks its authority against Host and sends
        // the shortener the origin form), or `OPTIONS *`.
        return Route::Full("a target not in origin form");
    }
    if hosts == 0 {
        return Route::Full("HTTP/1.0 without Host");
    }
    match full {
        Some(why) => Route::Full(why),
        None => Route::Lean {
            hop_by_hop,
            head,
            body,
        },
    }
}

/// The authority of an absolute-form target (`http://sho.rt/r/x` gives `sho.rt`);
/// `None` for any other form.
pub fn absolute_authority(target: &[u8]) -> Option<&str> {
    if target.first() == Some(&b'/') {
        return None;
    }
    let text = std::str::from_utf8(target).ok()?;
    let (_, rest) = text.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 32 * 1024;

    fn head(lines: &str) -> Vec<u8> {
        format!("{lines}\r\n\r\n").into_bytes()
    }

    #[test]
    fn ordinary_requests_are_lean() {
        for h in [
            "GET /r/x HTTP/1.1\r\nHost: sho.rt",
            "GET /r/x?a=1 HTTP/1.0\r\nHost: sho.rt\r\nConnection: keep-alive",
            "HEAD / HTTP/1.1\r\nhost: a\r\nConnection: Keep-Alive, close",
            "POST /e HTTP/1.1\r\nHost: a:8080\r\nContent-Length: 12\r\nX-Any: 1",
            "DELETE /x HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0",
            "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 65536",
        ] {
            let want = h.to_ascii_lowercase().contains("connection");
            let bytes = head(h);
            assert!(
                matches!(route(&bytes, MAX), Route::Lean { hop_by_hop, head, .. }
                    if hop_by_hop == want && head == bytes.len()),
                "{h}"
            );
        }
    }

    #[test]
    fn everything_else_goes_the_full_way() {
        for h in [
            "GET http://a/x HTTP/1.1\r\nHost: a",
            "GET /x HTTP/1.0",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443",
            "OPTIONS * HTTP/1.1\r\nHost: a",
            "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 65537",
            "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3",
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket",
            "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret",
            "GET /x HTTP/1.1\r\nHost: a\r\nTE: trailers",
            "PRI * HTTP/2.0\r\n\r\nSM",
        ] {
            assert!(matches!(route(&head(h), MAX), Route::Full(_)), "{h}");
        }
        let many: String = (0..MAX_LINES).map(|i| format!("\r\nX-{i}: v")).collect();
        let h = format!("GET /x HTTP/1.1\r\nHost: a{many}");
        assert!(matches!(route(&head(&h), MAX), Route::Full(_)));
        // Not before the head is whole.
        assert_eq!(route(h.as_bytes(), MAX), Route::Partial);
    }

    #[test]
    fn invalid_requests_are_refused_with_400() {
        for h in [
            "GET /x HTTP/1.1",
            "GET /x HTTP/1.1\r\nHost: a\r\nHost: b",
            "GET /x HTTP/1.1\r\nHost: u@a",
            "GET /x HTTP/1.1\r\nHost: sho.rt x",
            "GET /x HTTP/1.1\r\nHost: sho.rt/phish",
            "GET /x HTTP/1.1\r\nHost: sho.rt\\x",
            "GET /x HTTP/1.1\r\nHost: ",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +3",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999",
            "GET /x HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b",
            "GET /x HTTP/1.1\r\nHost: a\r\nBad Name: 1",
            "GET  /ok  HTTP/1.1\r\nHost: a",
        ] {
            assert!(matches!(route(&head(h), MAX), Route::Refuse(400, _)), "{h}");
        }
    }

    #[test]
    fn the_authority_of_an_absolute_form_target() {
        assert_eq!(absolute_authority(b"http://sho.rt/r/x?a=1"), Some("sho.rt"));
        assert_eq!(
            absolute_authority(b"https://sho.rt:8443"),
            Some("sho.rt:8443")
        );
        assert_eq!(absolute_authority(b"http://sho.rt?a"), Some("sho.rt"));
        assert_eq!(absolute_authority(b"/r/x"), None);
        assert_eq!(absolute_authority(b"*"), None);
        assert_eq!(absolute_authority(b"sho.rt:443"), None);
        assert_eq!(absolute_authority(b"http:///x"), None);
    }

    #[test]
    fn a_head_is_read_to_its_end_or_to_the_limit() {
        assert_eq!(
            route(b"GET /x HTTP/1.1\r\nHost: a\r\n", MAX),
            Route::Partial
        );
        assert_eq!(route(b"", MAX), Route::Partial);
        let long = format!("GET /x HTTP/1.1\r\nX-Long: {}", "v".repeat(MAX / 4));
        assert!(matches!(route(long.as_bytes(), MAX), Route::Refuse(431, _)));
        let line = format!("GET /{} HTTP/1.1", "v".repeat(MAX / 4));
        assert!(matches!(route(line.as_bytes(), MAX), Route::Refuse(414, _)));
        let lines: String = (0..MAX / 32)
            .map(|i| format!("X-{i}: {:50}\r\n", 1))
            .collect();
        let many = format!("GET /x HTTP/1.1\r\n{lines}");
        assert!(matches!(route(many.as_bytes(), MAX), Route::Refuse(431, _)));
        let whole = head(&format!(
            "GET /x HTTP/1.1\r\nHost: a\r\nX: {}",
            "v".repeat(MAX / 4)
        ));
        assert!(matches!(route(&whole, MAX), Route::Refuse(431, _)));
    }
}
