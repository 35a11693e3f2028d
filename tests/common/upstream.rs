//! The shortener stand-in: redirects, pages, 404s, an echo, as a real HTTP server.

use super::server::{Handler, Seen, TestServer, handler, reply};

/// Routes:
/// - `/r/<slug>`: 302 to `https://example.com/<slug>`; `/p/<slug>` 301; `/t/<slug>` 307;
///   `/s/<slug>` 303; `/rel/<slug>` 302 to a relative `/landing/<slug>`
/// - `/cookie`: 302 with two Set-Cookie headers
/// - `/ok`: 200 "hello"; `/echo`: 200 with the request body; anything else 404.
pub fn routes() -> Handler {
    handler(|s: Seen| async move {
        let path = s.uri.path().to_string();
        let slug = |prefix: &str| path.strip_prefix(prefix).map(str::to_string);
        if let Some(x) = slug("/r/") {
            return reply(
                302,
                &[
                    ("Location", &format!("https://example.com/{x}")),
                    ("X-Shortener", "test"),
                ],
                "",
            );
        }
        if let Some(x) = slug("/p/") {
            return reply(
                301,
                &[("Location", &format!("https://example.com/{x}"))],
                "",
            );
        }
        if let Some(x) = slug("/t/") {
            return reply(
                307,
                &[("Location", &format!("https://example.com/{x}"))],
                "",
            );
        }
        if let Some(x) = slug("/s/") {
            return reply(
                303,
                &[("Location", &format!("https://example.com/{x}"))],
                "",
            );
        }
        if let Some(x) = slug("/rel/") {
            return reply(302, &[("Location", &format!("/landing/{x}"))], "");
        }
        match path.as_str() {
            "/cookie" => reply(
                302,
                &[
                    ("Location", "https://example.com/c"),
                    ("Set-Cookie", "a=1; Path=/; HttpOnly"),
                    ("Set-Cookie", "b=2; Path=/"),
                ],
                "",
            ),
            "/ok" => reply(
                200,
                &[("Content-Type", "text/plain"), ("X-Big", &"v".repeat(6000))],
                "hello",
            ),
            "/echo" => {
                let len = s.body.len().to_string();
                reply(200, &[("X-Body-Len", &len)], s.body.clone())
            }
            _ => reply(404, &[("Content-Type", "text/plain")], "no such link"),
        }
    })
}

pub fn start() -> TestServer {
    TestServer::start("127.0.0.1:0", routes())
}
