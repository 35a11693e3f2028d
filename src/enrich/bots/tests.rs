//! The rules on real user agents.

use super::*;
use BotKind::{Crawler, Preview, Tool};

fn found(ua: &str) -> Option<(&str, BotKind)> {
    detect(ua).map(|d| (d.name, d.kind))
}

#[test]
fn a_specific_name_wins_over_a_later_rule_found_earlier_in_the_agent() {
    // Apache-HttpClient and the URL come later in the table than LinkedInBot.
    assert_eq!(
        found(
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"
        ),
        Some(("LinkedInBot", Preview))
    );
    assert_eq!(
        found("TelegramBot (like TwitterBot)"),
        Some(("TelegramBot", Preview))
    );
}

#[test]
fn matching_ignores_case() {
    assert_eq!(found("SLACKBOT 1.0"), Some(("Slackbot", Preview)));
    assert_eq!(
        found("Mozilla/5.0 (compatible; GoogleBot/2.1)"),
        Some(("Googlebot", Crawler))
    );
}

#[test]
fn a_generic_word_names_the_bot_by_the_word_it_sits_in() {
    assert_eq!(
        found("Mozilla/5.0 (compatible; FooBot/1.2; +https://example.com/bot)"),
        Some(("FooBot", Crawler))
    );
    assert_eq!(
        found("acme-link-preview/3"),
        Some(("acme-link-preview", Preview))
    );
    assert_eq!(found("AcmeHttpClient/2.0"), Some(("AcmeHttpClient", Tool)));
}

#[test]
fn a_bare_generic_word_names_the_bot_by_the_agent_product() {
    assert_eq!(found("Acme/2.0 (Crawler)"), Some(("Acme", Crawler)));
    assert_eq!(
        found("Mozilla/5.0 (compatible; Acme; +http://acme.example/bot.html)"),
        Some(("Acme", Crawler))
    );
}

#[test]
fn bot_must_end_a_word_and_cubot_phones_are_not_bots() {
    assert_eq!(found("Bottle/1.0"), None);
    assert_eq!(
        found(
            "Mozilla/5.0 (Linux; Android 4.2.2; CUBOT ONE Build/JDQ39) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/27.0.1453.90 Mobile Safari/537.36"
        ),
        None
    );
}

#[test]
fn app_names_count_only_where_the_fetcher_puts_them() {
    assert_eq!(found("WhatsApp/2.23.20.0 A"), Some(("WhatsApp", Preview)));
    assert_eq!(found("Viber"), Some(("Viber", Preview)));
    assert_eq!(
        found("facebookexternalhit/1.1;line-poker/1.0"),
        Some(("Line", Preview))
    );
    let in_app = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.0.0 Mobile Safari/537.36 Line/14.5.0 Viber WhatsApp";
    assert_eq!(found(in_app), None);
}

#[test]
fn an_email_address_is_a_sign_but_an_at_in_a_build_name_is_not() {
    assert_eq!(
        found(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0 Safari/537.36 (Test from Acme, contact ops@acme.example)"
        ),
        Some((OTHER, Crawler))
    );
    assert_eq!(
        found(
            "Mozilla/5.0 (Linux; Android 4.0.3; ARCHOS 101G9 Build/ICS@ROM_04.06.2012) AppleWebKit/535.19 (KHTML, like Gecko) Chrome/18.0.1025.166 Safari/535.19"
        ),
        None
    );
    assert_eq!(
        found(
            "Mozilla/5.0 (Linux; Android 4.1.1; @TAB-NINE-X2-B Build/JRO03H) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/28.0.1500.63 Safari/537.36"
        ),
        None
    );
}

#[test]
fn compatible_is_a_sign_unless_a_browser_follows() {
    assert_eq!(
        found("Mozilla/5.0 (compatible; Dataprovider.com)"),
        Some(("Dataprovider.com", Crawler))
    );
    assert_eq!(
        found("Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)"),
        None
    );
    assert_eq!(
        found("Mozilla/5.0 (compatible; Konqueror/4.5; Linux) KHTML/4.5.4 (like Gecko)"),
        None
    );
    assert_eq!(
        found("Mozilla/4.0 (compatible; Linux 2.6.10) NetFront/3.3 Kindle/1.0 (screen 600x800)"),
        None
    );
}

#[test]
fn mainstream_browsers_match_nothing() {
    for ua in [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "",
    ] {
        assert_eq!(found(ua), None, "{ua}");
    }
}

#[test]
fn product_name_takes_the_leading_or_compatible_token() {
    assert_eq!(product_name("Klaviyo/1.0"), "Klaviyo");
    assert_eq!(product_name("Hello World"), "Hello");
    assert_eq!(
        product_name("Mozilla/5.0 (compatible; Uptimia; www.uptimia.com)"),
        "Uptimia"
    );
    assert_eq!(
        product_name("Mozilla/5.0 (compatible; +https://www.acme.example/bot)"),
        "acme.example"
    );
    assert_eq!(product_name("Mozilla/5.0 (X11; Linux x86_64)"), OTHER);
    assert_eq!(product_name("(((("), OTHER);
    assert_eq!(product_name(&"a".repeat(100)).len(), MAX_NAME);
}

#[test]
fn non_browser_agents_are_bots_unless_they_are_phone_or_text_browsers() {
    assert_eq!(non_browser("Zabbix").map(|d| d.name), Some("Zabbix"));
    assert_eq!(
        non_browser("SendGrid Event API").map(|d| d.name),
        Some("SendGrid")
    );
    assert_eq!(
        non_browser("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
        None
    );
    assert_eq!(
        non_browser(
            "Alcatel-OT-800/1.0 Profile/MIDP-2.0 Configuration/CLDC-1.1 ObigoInternetBrowser/Q05A"
        ),
        None
    );
    assert_eq!(non_browser("w3m/0.5.3+git20230121"), None);
    assert_eq!(non_browser(""), None);
}

#[test]
fn names_never_split_a_multibyte_character() {
    for ua in [
        "ÄÖÜbot/1.0 ÿ",
        "crawlerü",
        "éé@éé.com",
        "Mozilla/5.0 (compatible; ü)",
    ] {
        let _ = detect(ua);
        let _ = product_name(ua);
        let _ = non_browser(ua);
    }
}
