//! Capture: once a redirect, or a bio page (`[[pages]]`), has been written back to the
//! visitor, a [`RawClick`] is built from the request and answer heads and `try_send` to
//! enrichment. Both forwarding paths (the lean one and Pingora's full proxy) end a
//! request here.
//!
//! It never waits, locks or does I/O, so a stalled pipeline cannot slow a visitor: a few
//! small copies, each within its [`cap`], and one `try_send`. A full channel is a counted
//! drop. Whether a 200 answer is a page view is one atomic load of the pages in use and
//! string comparisons ([`crate::config::Page::shows`]); which type an event is, is
//! decided later, on the enrichment threads.

use crossbeam_channel::{Sender, TrySendError};
use http::header::{self, GetAll};
use http::{HeaderValue, Method, Uri};
use pingora::http::{RequestHeader, ResponseHeader};
use std::net::IpAddr;
use std::time::SystemTime;

use super::forwarded::joined_forwarded_for;
use crate::click::{Cut, RawClick, cap};
use crate::live::Pages;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Capture {
    tx: Sender<RawClick>,
    /// Indexed by `status - 300`; only 3xx statuses can be captured.
    statuses: [bool; 9],
    /// Bio pages: a 200 answer to a GET or HEAD of one is captured too.
    pages: Pages,
}

/// What a finished request leaves for capture.
pub struct Exchange<'a> {
    pub req: &'a RequestHeader,
    /// The answer as written to the visitor; `None` when none was.
    pub resp: Option<&'a ResponseHeader>,
    pub peer: Option<IpAddr>,
    pub tls: bool,
}

impl Capture {
    pub fn new(tx: Sender<RawClick>, wanted: &[u16], pages: Pages) -> Capture {
        let mut statuses = [false; 9];
        for s in wanted {
            if let Some(slot) = s
                .checked_sub(300)
                .and_then(|i| statuses.get_mut(i as usize))
            {
                *slot = true;
            }
        }
        Capture {
            tx,
            statuses,
            pages,
        }
    }

    /// Hot path: hands the click to enrichment when the answer is a captured redirect
    /// or a page view.
    pub fn take(&self, x: &Exchange<'_>, metrics: &Metrics) {
        let Some(resp) = x.resp else {
            return;
        };
        let status = resp.status.as_u16();
        let wanted = status
            .checked_sub(300)
            .and_then(|i| self.statuses.get(i as usize))
            .copied()
            .unwrap_or(false);
        if !(wanted || status == 200 && self.is_page_view(x.req)) {
            return;
        }
        let mut cut = Cut::default();
        let location = resp.headers.get(header::LOCATION);
        let location = location.map(|v| keep(v, cap::LOCATION, Cut::DESTINATION, &mut cut));
        let req = x.req;
        let h = &req.headers;
        let purpose = h
            .get("sec-purpose")
            .or_else(|| h.get("purpose"))
            .or_else(|| h.get("x-purpose"))
            .or_else(|| h.get("x-moz"));
        let user_agent = h.get(header::USER_AGENT);
        let referer = h.get(header::REFERER);
        let click = RawClick {
            at: SystemTime::now(),
            method: keep_method(&req.method, &mut cut),
            tls: x.tls,
            host: keep_short(h.get(header::HOST), cap::HOST),
            uri: keep_target(&req.uri, &mut cut),
            status,
            location,
            user_agent: user_agent.map(|v| keep(v, cap::USER_AGENT, Cut::USER_AGENT, &mut cut)),
            referer: referer.map(|v| keep(v, cap::REFERER, Cut::REFERRER, &mut cut)),
            peer: x.peer,
            forwarded_for: keep_forwarded_for(h.get_all("x-forwarded-for"), &mut cut),
            forwarded_proto: keep_short(h.get("x-forwarded-proto"), cap::SHORT),
            real_ip: keep_short(h.get("x-real-ip"), cap::SHORT),
            purpose: keep_short(purpose, cap::SHORT),
            cut,
        };
        match self.tx.try_send(click) {
            Ok(()) => metrics.capture_clicks.inc(),
            Err(TrySendError::Full(_)) => metrics.capture_dropped_full.inc(),
            Err(TrySendError::Disconnected(_)) => metrics.capture_dropped_closed.inc(),
        }
    }
}

impl Capture {
    /// Hot path: whether a 200 answer to `req` is a view of a bio page: a GET or HEAD
    /// of a page's path on its host. One atomic load, string comparisons.
    fn is_page_view(&self, req: &RequestHeader) -> bool {
        if req.method != Method::GET && req.method != Method::HEAD {
            return false;
        }
        let pages = self.pages.load();
        if pages.is_empty() {
            return false;
        }
        let host = req
            .headers
            .get(header::HOST)
            .map(HeaderValue::as_bytes)
            .or_else(|| req.uri.authority().map(|a| a.as_str().as_bytes()));
        let path = req.uri.path();
        pages.iter().any(|p| p.shows(host, path))
    }
}

/// A header value in its own small allocation. Pingora's header values are slices of the
/// buffer the whole request (or response) head was read into; a clone would keep that
/// buffer alive until the enrichment thread drops the click, so every request would
/// need a fresh one and every buffer would be freed on another thread. Copying the few
/// bytes clicktap keeps lets the proxy thread free and reuse its buffer at once: at
/// saturation this took the proxy threads from 95-104 to 78-95 µs of CPU per request
/// and the enrichment thread from 7.2-7.5 to 4.8-5.9 µs per click.
fn detach(v: &HeaderValue) -> HeaderValue {
    HeaderValue::from_bytes(v.as_bytes()).unwrap_or_else(|_| v.clone())
}

/// At most the first `max` bytes of `v`, detached, and whether it was cut. A prefix of a
/// valid value is valid: the fallback never runs, and keeps the bound if it did.
fn keep(v: &HeaderValue, max: usize, part: Cut, cut: &mut Cut) -> HeaderValue {
    let bytes = v.as_bytes();
    if bytes.len() <= max {
        return detach(v);
    }
    *cut = cut.mark(part, true);
    HeaderValue::from_bytes(&bytes[..max]).unwrap_or(HeaderValue::from_static(""))
}

/// `v`, detached, when it is no longer than `max`: over it, it is no value clicktap
/// reads (a host, a protocol, an address), and it is not kept.
fn keep_short(v: Option<&HeaderValue>, max: usize) -> Option<HeaderValue> {
    v.filter(|v| v.len() <= max).map(detach)
}

/// The request target, up to [`cap::TARGET`]. A `Uri` clone shares only the `Uri`'s own
/// buffer (Pingora builds the `Uri` from a copy of the target, not from a slice of the
/// request head), so an ordinary target costs a reference count; only an oversized one
/// is copied, cut at a character boundary.
fn keep_target(uri: &Uri, cut: &mut Cut) -> Uri {
    let Some(pq) = uri
        .path_and_query()
        .filter(|pq| pq.as_str().len() > cap::TARGET)
    else {
        return uri.clone();
    };
    *cut = cut.mark(Cut::LINK, true);
    let pq = pq.as_str();
    let end = pq.floor_char_boundary(cap::TARGET);
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = pq[..end].parse().ok();
    Uri::from_parts(parts).unwrap_or_default()
}

/// The method; an extension method longer than [`cap::METHOD`] is cut.
fn keep_method(method: &Method, cut: &mut Cut) -> Method {
    let name = method.as_str().as_bytes();
    if name.len() <= cap::METHOD {
        return method.clone();
    }
    *cut = cut.mark(Cut::METHOD, true);
    Method::from_bytes(&name[..cap::METHOD]).unwrap_or(Method::GET)
}

/// The `X-Forwarded-For` chain the click keeps: its last [`cap::FORWARDED_FOR`] bytes,
/// the hops nearest clicktap. Either way it is one copy: of the one line, the usual case,
/// or of the lines joined.
fn keep_forwarded_for(lines: GetAll<'_, HeaderValue>, cut: &mut Cut) -> Option<HeaderValue> {
    let mut iter = lines.iter();
    let first = iter.next()?;
    let tail = |chain: &[u8]| chain.len().saturating_sub(cap::FORWARDED_FOR);
    if iter.next().is_none() {
        let start = tail(first.as_bytes());
        *cut = cut.mark(Cut::FORWARDED_FOR, start > 0);
        return HeaderValue::from_bytes(&first.as_bytes()[start..]).ok();
    }
    let chain = joined_forwarded_for(lines, b"");
    let start = tail(&chain);
    *cut = cut.mark(Cut::FORWARDED_FOR, start > 0);
    if start == 0 {
        // The joined chain is the click's own allocation already.
        HeaderValue::from_maybe_shared(bytes::Bytes::from(chain)).ok()
    } else {
        HeaderValue::from_bytes(&chain[start..]).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::forwarded::lines;
    use super::*;

    #[test]
    fn the_kept_forwarded_for_is_the_chains_tail() {
        let mut cut = Cut::default();
        let h = lines(&["6.6.6.6", "81.2.69.142"]);
        let kept = keep_forwarded_for(h.get_all("x-forwarded-for"), &mut cut).unwrap();
        assert_eq!(kept, "6.6.6.6, 81.2.69.142");
        assert_eq!(cut, Cut::default());
        let long = vec!["1.1.1.1"; 1000].join(", ");
        let h = lines(&[&long, "81.2.69.142"]);
        let kept = keep_forwarded_for(h.get_all("x-forwarded-for"), &mut cut).unwrap();
        assert_eq!(kept.len(), cap::FORWARDED_FOR);
        assert!(kept.to_str().unwrap().ends_with(", 81.2.69.142"));
        assert!(cut.contains(Cut::FORWARDED_FOR));
        assert_eq!(
            keep_forwarded_for(lines(&[]).get_all("x-forwarded-for"), &mut cut),
            None
        );
    }

    #[test]
    fn values_are_kept_up_to_their_cap() {
        let mut cut = Cut::default();
        let ua = HeaderValue::from_str(&"u".repeat(cap::USER_AGENT)).unwrap();
        assert_eq!(keep(&ua, cap::USER_AGENT, Cut::USER_AGENT, &mut cut), ua);
        assert_eq!(cut, Cut::default(), "a value at its cap is whole");
        let long = HeaderValue::from_str(&"u".repeat(cap::USER_AGENT + 1)).unwrap();
        let kept = keep(&long, cap::USER_AGENT, Cut::USER_AGENT, &mut cut);
        assert_eq!(kept.len(), cap::USER_AGENT);
        assert_eq!(cut, Cut::USER_AGENT);

        let short: Uri = "/r/x?a=1".parse().unwrap();
        assert_eq!(keep_target(&short, &mut cut), short);
        // Cut on a character boundary: `é` is two bytes and the cap falls inside one.
        let target = format!("/r/x?{}", "é".repeat(cap::TARGET));
        let uri: Uri = target.parse().unwrap();
        let kept = keep_target(&uri, &mut cut);
        let pq = kept.path_and_query().unwrap().as_str();
        assert_eq!(pq.len(), cap::TARGET - 1);
        assert!(uri.path_and_query().unwrap().as_str().starts_with(pq));
        assert!(cut.contains(Cut::LINK));

        let mut cut = Cut::default();
        let method = Method::from_bytes("M".repeat(100).as_bytes()).unwrap();
        assert_eq!(keep_method(&method, &mut cut).as_str().len(), cap::METHOD);
        assert_eq!(cut, Cut::METHOD);
        assert_eq!(keep_method(&Method::GET, &mut cut), Method::GET);

        let host = HeaderValue::from_str(&"h".repeat(cap::HOST + 1)).unwrap();
        assert_eq!(keep_short(Some(&host), cap::HOST), None);
    }
}
