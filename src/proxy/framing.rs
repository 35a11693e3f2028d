//! How an answer is framed for its visitor, on both forwarding paths, as nginx frames
//! it (RFC 9112 section 6.1, RFC 9110 section 15.2): a visitor always knows where an
//! answer ends, and an HTTP/1.0 visitor is sent nothing it cannot read.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use pingora::http::{RequestHeader, ResponseHeader};

/// Frames the final answer `resp` to `req`: a body with no length of its own is chunked
/// for an HTTP/1.1 visitor (as pingora-proxy does; the upstream connection it ended is
/// not kept); an HTTP/1.0 visitor, who reads no chunks, gets such a body, and a chunked
/// one, decoded as it comes and ended by the close. `true`: the visitor's connection
/// must close after this answer.
pub fn frame(req: &RequestHeader, resp: &mut ResponseHeader) -> pingora::Result<bool> {
    let bodiless = req.method == http::Method::HEAD
        || resp.status.is_informational()
        || matches!(resp.status.as_u16(), 204 | 304);
    if bodiless {
        return Ok(false);
    }
    let chunked = resp.headers.contains_key(TRANSFER_ENCODING);
    let sized = resp.headers.contains_key(CONTENT_LENGTH);
    if req.version == http::Version::HTTP_10 {
        if chunked || !sized {
            resp.remove_header(&TRANSFER_ENCODING);
            return Ok(true);
        }
    } else if !chunked && !sized {
        resp.set_version(http::Version::HTTP_11);
        resp.insert_header(TRANSFER_ENCODING, "chunked")?;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(version: http::Version, answer: &[(&str, &str)]) -> (bool, Option<String>) {
        let mut req = RequestHeader::build("GET", b"/x", None).unwrap();
        req.set_version(version);
        let mut resp = ResponseHeader::build(200, None).unwrap();
        for (k, v) in answer {
            resp.insert_header(k.to_string(), *v).unwrap();
        }
        let close = frame(&req, &mut resp).unwrap();
        let te = resp
            .headers
            .get(TRANSFER_ENCODING)
            .map(|v| v.to_str().unwrap().to_string());
        (close, te)
    }

    #[test]
    fn every_visitor_can_tell_where_an_answer_ends() {
        const HTTP_10: http::Version = http::Version::HTTP_10;
        const HTTP_11: http::Version = http::Version::HTTP_11;
        let chunked = [("Transfer-Encoding", "chunked")];
        let sized = [("Content-Length", "2")];
        assert_eq!(framed(HTTP_11, &[]), (false, Some("chunked".into())));
        assert_eq!(framed(HTTP_11, &chunked), (false, Some("chunked".into())));
        assert_eq!(framed(HTTP_11, &sized), (false, None));
        assert_eq!(framed(HTTP_10, &[]), (true, None));
        assert_eq!(framed(HTTP_10, &chunked), (true, None));
        assert_eq!(framed(HTTP_10, &sized), (false, None));
    }
}
