//! Dashboard sessions: the admin token given once through the sign-in form, then a
//! cookie that names a session, so that the token never lives in the page.
//!
//! The cookie carries a random 256-bit id, never the token; it is `HttpOnly` (no
//! script reads it), `SameSite=Strict` (no other site's page sends it) and expires
//! after [`LIFETIME`]. Sessions are kept in memory, at most [`MAX_SESSIONS`], so a
//! restart signs everyone out; each remembers a digest of the token it was opened
//! with, so a reload that changes the token ends every session at its next request.
//!
//! A request that changes something and is authorized by the cookie must also come
//! from the dashboard's own origin (see [`same_origin`]): `SameSite=Strict` already
//! keeps the cookie off cross-site requests, the check is the second lock.
//!
//! Failed sign-ins are counted and each one waits longer, up to [`MAX_DELAY`], while
//! failures keep coming: guessing gets slow, and the operator who mistyped is delayed,
//! never locked out.

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "clicktap_session";
/// How long a session lasts from sign-in.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; past this, the oldest is ended.
pub const MAX_SESSIONS: usize = 64;
/// The longest a failed sign-in waits before its answer.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Failures older than this no longer slow the next sign-in.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);

struct Session {
    opened: Instant,
    /// SHA-256 of the token the session was opened with.
    token: [u8; 32],
}

struct Failures {
    recent: u32,
    last: Option<Instant>,
    total: u64,
}

pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    failures: Mutex<Failures>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            open: Mutex::new(HashMap::new()),
            failures: Mutex::new(Failures {
                recent: 0,
                last: None,
                total: 0,
            }),
        }
    }
}

impl Sessions {
    /// Opens a session for the holder of `token` (already checked); returns its id.
    pub fn open(&self, token: &str) -> String {
        let id = crate::hex::encode(&rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut open = self.open.lock();
        open.retain(|_, s| now.duration_since(s.opened) < LIFETIME);
        while open.len() >= MAX_SESSIONS {
            let oldest = open
                .iter()
                .min_by_key(|(_, s)| s.opened)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => open.remove(&k),
                None => break,
            };
        }
        open.insert(
            id.clone(),
            Session {
                opened: now,
                token: digest(token),
            },
        );
        id
    }

    /// Whether `id` names a live session opened with the token in force now.
    pub fn valid(&self, id: &str, token: &str) -> bool {
        let mut open = self.open.lock();
        let Some(s) = open.get(id) else {
            return false;
        };
        if s.opened.elapsed() >= LIFETIME || !super::constant_time_eq(&s.token, &digest(token)) {
            open.remove(id);
            return false;
        }
        true
    }

    pub fn close(&self, id: &str) {
        self.open.lock().remove(id);
    }

    pub fn count(&self) -> usize {
        self.open.lock().len()
    }

    /// Records a failed sign-in; returns how long its answer waits and the failures
    /// counted since the start.
    pub fn failed(&self) -> (Duration, u64) {
        let mut f = self.failures.lock();
        let now = Instant::now();
        if f.last
            .is_some_and(|at| now.duration_since(at) > FAILURE_MEMORY)
        {
            f.recent = 0;
        }
        f.recent = f.recent.saturating_add(1);
        f.last = Some(now);
        f.total += 1;
        let delay = Duration::from_millis(250)
            .saturating_mul(f.recent)
            .min(MAX_DELAY);
        (delay, f.total)
    }
}

/// The session id in a `Cookie` header, if any.
pub fn cookie(header: Option<&str>) -> Option<&str> {
    header?
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that hands the browser session `id`.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// Whether a request comes from a page of this listener's own origin: the browser's
/// `Sec-Fetch-Site: same-origin`, or, from a browser that does not send it, an
/// `Origin` equal to `http://` and the `Host` it was sent to. Neither header, no.
pub fn same_origin(sec_fetch_site: Option<&str>, origin: Option<&str>, host: Option<&str>) -> bool {
    match (sec_fetch_site, origin, host) {
        (Some(site), _, _) => site == "same-origin",
        (None, Some(origin), Some(host)) => origin
            .strip_prefix("http://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// Whether a sign-in may go on: from the dashboard's own page ([`same_origin`]), or
/// from a client that is not a browser (neither `Sec-Fetch-Site` nor `Origin`: every
/// browser sends `Origin` with a form's POST, same-origin or not, so a forged
/// cross-site sign-in always carries one). A sign-in without them is no risk either: it
/// opens a session only for whoever already holds the token.
pub fn sign_in_allowed(
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    host: Option<&str>,
) -> bool {
    (sec_fetch_site.is_none() && origin.is_none()) || same_origin(sec_fetch_site, origin, host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_the_token_changes_or_it_is_closed() {
        let s = Sessions::default();
        let id = s.open("first-token-0123456789");
        assert_eq!(id.len(), 64, "256 bits in hex");
        assert!(s.valid(&id, "first-token-0123456789"));
        assert!(!s.valid("not-a-session", "first-token-0123456789"));
        assert!(!s.valid(&id, "second-token-0123456789"));
        assert!(
            !s.valid(&id, "first-token-0123456789"),
            "ended for good, not only under the new token"
        );
        let id = s.open("first-token-0123456789");
        s.close(&id);
        assert!(!s.valid(&id, "first-token-0123456789"));
    }

    #[test]
    fn sessions_are_bounded_and_the_oldest_goes_first() {
        let s = Sessions::default();
        let first = s.open("t");
        let ids: Vec<String> = (0..MAX_SESSIONS).map(|_| s.open("t")).collect();
        assert_eq!(s.count(), MAX_SESSIONS);
        assert!(!s.valid(&first, "t"));
        assert!(ids.iter().all(|id| s.valid(id, "t")));
    }

    #[test]
    fn failed_sign_ins_wait_longer_and_longer_up_to_a_bound() {
        let s = Sessions::default();
        let delays: Vec<Duration> = (0..40).map(|_| s.failed().0).collect();
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert!(delays[1] > delays[0]);
        assert_eq!(*delays.last().unwrap(), MAX_DELAY);
        assert_eq!(s.failed().1, 41);
    }

    #[test]
    fn the_cookie_is_found_among_others_and_the_origin_is_checked() {
        assert_eq!(cookie(Some("a=1; clicktap_session=abc; b=2")), Some("abc"));
        assert_eq!(cookie(Some("clicktap_session=")), None);
        assert_eq!(cookie(Some("other=1")), None);
        assert_eq!(cookie(None), None);
        assert!(set_cookie("x").contains("HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"));
        assert!(same_origin(Some("same-origin"), None, None));
        assert!(!same_origin(
            Some("cross-site"),
            Some("http://h:1"),
            Some("h:1")
        ));
        assert!(!same_origin(Some("same-site"), None, Some("h:1")));
        assert!(same_origin(None, Some("http://h:1"), Some("h:1")));
        assert!(!same_origin(None, Some("http://evil:1"), Some("h:1")));
        assert!(!same_origin(None, None, Some("h:1")));
        assert!(sign_in_allowed(None, None, Some("h:1")), "not a browser");
        assert!(sign_in_allowed(None, Some("http://h:1"), Some("h:1")));
        assert!(!sign_in_allowed(None, Some("http://evil:1"), Some("h:1")));
        assert!(!sign_in_allowed(Some("cross-site"), None, Some("h:1")));
    }
}
