//! A per-thread memo of link readings, kept as the JSON the event stores.
//!
//! Most clicks land on a few hot links, and reading one (rebuilding its URL, decoding
//! its query, resolving the destination) and serialising the parts costs more than
//! the rest of an event's enrichment. The memo key is everything the reading depends
//! on: the scheme, the Host header, the request URI and the Location header.

use http::{HeaderValue, Uri};
use serde_json::value::{RawValue, to_raw_value};
use std::cell::RefCell;
use std::rc::Rc;

use super::memo::{Memo, Weight, push_part};
use super::request;

/// The bytes of link readings remembered per thread: about 3,000 links of common
/// length (an entry, key and JSON, is about 700 bytes); a reading over 32 KiB (a link
/// or destination of several kilobytes) is not kept.
pub const BUDGET: usize = 2 << 20;

/// A link's reading: the event's `link`, `params` and `destination` fields, as JSON.
pub struct LinkReading {
    pub link: Box<RawValue>,
    pub params: Box<RawValue>,
    pub destination: Box<RawValue>,
}

impl Weight for Rc<LinkReading> {
    fn weight(&self) -> usize {
        self.link.get().len() + self.params.get().len() + self.destination.get().len()
    }
}

thread_local! {
    static SEEN: RefCell<(Memo<Rc<LinkReading>>, Vec<u8>)> =
        RefCell::new((Memo::new(BUDGET), Vec::new()));
}

/// The link clicked, its query parameters and where it sent the visitor.
pub fn read(
    scheme: &str,
    host: Option<&HeaderValue>,
    uri: &Uri,
    location: Option<&HeaderValue>,
) -> serde_json::Result<Rc<LinkReading>> {
    SEEN.with_borrow_mut(|(seen, key)| {
        key.clear();
        push_part(key, Some(scheme.as_bytes()));
        push_part(key, host.map(HeaderValue::as_bytes));
        push_part(key, uri.authority().map(|a| a.as_str().as_bytes()));
        push_part(key, Some(uri.path().as_bytes()));
        push_part(key, uri.query().map(str::as_bytes));
        push_part(key, location.map(HeaderValue::as_bytes));
        seen.get_or_read(key, || {
            let link = request::link(scheme, host, uri);
            let params = request::params(link.query.as_deref());
            let destination = request::destination(location, &link);
            Ok(Rc::new(LinkReading {
                link: to_raw_value(&link)?,
                params: to_raw_value(&params)?,
                destination: to_raw_value(&destination)?,
            }))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_read_once_per_thread_and_each_input_counts() {
        let host = HeaderValue::from_static("sho.rt");
        let uri: Uri = "/abc?utm_source=x".parse().unwrap();
        let to = HeaderValue::from_static("https://example.com/landing");
        let first = read("https", Some(&host), &uri, Some(&to)).unwrap();
        assert!(
            first
                .link
                .get()
                .contains(r#""url":"https://sho.rt/abc?utm_source=x""#)
        );
        assert_eq!(first.params.get(), r#"{"utm_source":"x"}"#);
        assert!(first.destination.get().contains(r#""host":"example.com""#));
        let again = read("https", Some(&host), &uri, Some(&to)).unwrap();
        assert!(Rc::ptr_eq(&first, &again));

        let other_to = HeaderValue::from_static("/relative");
        let relative = read("https", Some(&host), &uri, Some(&other_to)).unwrap();
        assert!(
            relative
                .destination
                .get()
                .contains(r#""url":"https://sho.rt/relative""#)
        );
        let http = read("http", Some(&host), &uri, Some(&to)).unwrap();
        assert!(
            http.link
                .get()
                .contains(r#""url":"http://sho.rt/abc?utm_source=x""#)
        );
        let none = read("https", Some(&host), &uri, None).unwrap();
        assert_eq!(none.destination.get(), "null");
    }
}
