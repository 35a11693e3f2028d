//! User agents, bots and link previews, classified on real strings through the proxy.

mod common;

use common::{Clicktap, Options, raw_exchange, upstream};

/// (user agent, kind, bot name, browser, os, device type)
type Row = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

const TABLE: &[Row] = &[
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "human",
        None,
        Some("Chrome"),
        Some("Windows 10"),
        "desktop",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "human",
        None,
        Some("Safari"),
        Some("iPhone"),
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
        "human",
        None,
        Some("Chrome"),
        Some("Android"),
        "tablet",
    ),
    (
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "preview",
        Some("Slackbot"),
        None,
        None,
        "bot",
    ),
    (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "preview",
        Some("facebookexternalhit"),
        None,
        None,
        "bot",
    ),
    (
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "preview",
        Some("Discordbot"),
        None,
        None,
        "bot",
    ),
    (
        "TelegramBot (like TwitterBot)",
        "preview",
        Some("TelegramBot"),
        None,
        None,
        "bot",
    ),
    (
        "WhatsApp/2.23.20.0 A",
        "preview",
        Some("WhatsApp"),
        None,
        None,
        "bot",
    ),
    (
        "Mastodon/4.2.1 (http.rb/5.1.1; +https://mastodon.social/)",
        "preview",
        Some("Mastodon"),
        None,
        None,
        "bot",
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "bot",
        Some("Googlebot"),
        None,
        None,
        "bot",
    ),
    ("curl/8.4.0", "bot", Some("curl"), None, None, "bot"),
    (
        "python-requests/2.31.0",
        "bot",
        Some("python-requests"),
        None,
        None,
        "bot",
    ),
];

#[test]
fn user_agents_bots_and_previews_are_classified() {
    let up = upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let ct = Clicktap::start(dir.path(), up.addr, &Options::default());
    for (i, (ua, ..)) in TABLE.iter().enumerate() {
        let req = format!(
            "GET /r/{i} HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: {ua}\r\nConnection: close\r\n\r\n"
        );
        raw_exchange(ct.proxy, req.as_bytes());
    }
    let events = ct.wait_events(TABLE.len());
    assert_eq!(events.len(), TABLE.len());
    for (i, (ua, kind, bot, browser, os, device)) in TABLE.iter().enumerate() {
        let e = events
            .iter()
            .find(|e| e["link"]["path"] == format!("/r/{i}"))
            .unwrap();
        let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
        assert_eq!(e["kind"], *kind, "{ua}");
        assert_eq!(s(&e["bot"]["name"]).as_deref(), *bot, "{ua}");
        assert_eq!(e["agent"]["device_type"], *device, "{ua}");
        if let Some(b) = browser {
            assert_eq!(e["agent"]["browser"], *b, "{ua}");
        }
        if let Some(o) = os {
            assert_eq!(e["agent"]["os"], *o, "{ua}");
        }
    }
}
