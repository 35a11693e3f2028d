//! `GET /api/v1/status`: what is running, since when, on which configuration, and how
//! far behind each webhook and each sink is.

use serde_json::json;

use super::answer::{Answer, ok};
use crate::clock::ms_of;
use crate::deliver::Handle;
use crate::live::Live;
use crate::queue::Queue;
use crate::sink::SinksHandle;

pub fn status(live: &Live, d: &Handle, sinks: &SinksHandle, queue: &Queue) -> Answer {
    let loaded = live.loaded();
    let cfg = &loaded.cfg;
    let started = ms_of(live.started);
    let webhooks: Vec<_> = d
        .webhooks()
        .iter()
        .map(|w| {
            let head = queue.head();
            let cursor = queue.cursor(&w.consumer).ok().flatten().unwrap_or(head);
            let oldest = w.oldest_undelivered().ok().flatten();
            let health = w.health();
            json!({
                "id": w.id(),
                "state": if w.cfg.enabled { json!(health.state) } else { json!("paused") },
                "disabled_reason": health.disabled_reason,
                "backoff_until_ms": health.backoff_until_ms,
                "lag": head.saturating_sub(cursor),
                "retries": w.retries().ok(),
                "dead_letters": w.dead_letters().ok(),
                "oldest_undelivered_age_ms": oldest.map(|o| o.1),
                "oldest_dead_letter_age_ms": super::webhooks::oldest_dead_letter_age(w, queue),
            })
        })
        .collect();
    let sinks: Vec<_> = sinks
        .list()
        .into_iter()
        .map(|(id, consumer, health)| {
            let head = queue.head();
            let cursor = queue.cursor(&consumer).ok().flatten().unwrap_or(head);
            json!({
                "id": id,
                "state": health.state,
                "since_ms": health.since_ms,
                "last_error": health.last_error,
                "lag": head.saturating_sub(cursor),
            })
        })
        .collect();
    ok(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "started_ms": started,
        "uptime_ms": live.running_since.elapsed().as_millis() as u64,
        "config": {
            "path": cfg.source.display().to_string(),
            "hash": cfg.hash,
            "loaded_ms": loaded.at_ms,
        },
        "listeners": {
            "proxy": cfg.proxy.listen.to_string(),
            "admin": cfg.admin.as_ref().map(|a| a.listen.to_string()),
        },
        "queue": {
            "available": queue.size_on_disk().is_ok(),
            "depth": queue.depth(),
            "bytes": queue.bytes(),
            "first_seq": queue.first(),
            "next_seq": queue.head(),
        },
        "webhooks": webhooks,
        "sinks": sinks,
    }))
}
