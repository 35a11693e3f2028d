//! The one rule, on both forwarding paths, for sending a request to the shortener again
//! after it failed: pingora-proxy's own rule, made strict where it is loose, and the
//! reason a visitor's POST reaches the shortener once.

use pingora::http::RequestHeader;

/// The one rule, on both paths, for sending a request again after `e`: the request is
/// idempotent (RFC 9110 section 9.2.2), or carries `Idempotency-Key` (its sender asks
/// that a repeat be safe), and `e` is the failure of a connection to give any byte of an
/// answer head: pingora-core's HTTP/1 client marks exactly these `ReusedOnly` (the
/// connection closed, or an OS error, while reading the head) and names the bytes it had
/// read (`bytes already read: N`, client.rs in 0.9.1). A timeout, an invalid answer, a
/// 101, a connection that closed mid-head: never. The caller checks that the connection
/// was a reused one and that nothing, not even an interim answer, went to the visitor.
/// (Should Pingora's wording change, `tests/http11_reuse.rs` sees a GET on a closed
/// kept connection answered 502 instead of sent again.)
pub fn may_send_again(req: &RequestHeader, e: &pingora::Error) -> bool {
    let idempotent = req.method.is_idempotent() || req.headers.contains_key("idempotency-key");
    idempotent && no_answer_byte(e)
}

fn no_answer_byte(e: &pingora::Error) -> bool {
    let here = matches!(e.retry, pingora::RetryType::ReusedOnly)
        && e.context
            .as_ref()
            .is_some_and(|c| c.as_str().ends_with("bytes already read: 0"));
    // A cause added with more context is a boxed error, boxed once more.
    here || e.cause.as_ref().is_some_and(|c| {
        c.downcast_ref::<pingora::Error>()
            .or_else(|| c.downcast_ref::<Box<pingora::Error>>().map(|b| &**b))
            .is_some_and(no_answer_byte)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::{Error, ErrorType, RetryType};

    fn failure(etype: ErrorType, context: &'static str, retry: RetryType) -> Box<Error> {
        let mut e = Error::explain(etype, context);
        e.retry = retry;
        e
    }

    #[test]
    fn only_an_idempotent_request_whose_connection_gave_no_byte_goes_again() {
        let get = RequestHeader::build("GET", b"/r/x", None).unwrap();
        let mut post = RequestHeader::build("POST", b"/e", None).unwrap();
        let closed = || {
            failure(
                ErrorType::ConnectionClosed,
                "while reading response headers, bytes already read: 0",
                RetryType::ReusedOnly,
            )
        };
        assert!(may_send_again(&get, &closed()));
        assert!(may_send_again(&get, &closed().more_context("Peer: x")));
        assert!(!may_send_again(&post, &closed()));
        post.insert_header("Idempotency-Key", "k").unwrap();
        assert!(may_send_again(&post, &closed()));
        let cut = failure(
            ErrorType::ConnectionClosed,
            "while reading response headers, bytes already read: 14",
            RetryType::ReusedOnly,
        );
        assert!(!may_send_again(&get, &cut));
        let timeout = failure(
            ErrorType::ReadTimedout,
            "while reading response headers",
            RetryType::Decided(false),
        );
        assert!(!may_send_again(&get, &timeout));
    }
}
