//! `POST /api/v1/reload`: the configuration file read again and applied, as on SIGHUP.
//! A refusal lists every problem, as `clicktap check` prints them; the running
//! configuration stays.

use http::StatusCode;
use serde_json::json;

use super::answer::{Answer, json, ok};
use crate::live::{Live, Refused};

pub fn reload(live: &Live) -> Answer {
    match live.reload() {
        Ok(r) => ok(
            &json!({ "reloaded": true, "hash": r.hash, "webhooks": r.webhooks, "geoip": r.geoip }),
        ),
        Err(refused) => {
            let (status, code, message) = match &refused {
                Refused::Invalid(_) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_config",
                    "the file does not validate; the running configuration stays",
                ),
                Refused::NeedsRestart(_) => (
                    StatusCode::CONFLICT,
                    "needs_restart",
                    "the file changes settings only a new process takes (restart, or run --upgrade); the running configuration stays",
                ),
                Refused::Failed(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "reload_failed",
                    "applying the file failed",
                ),
                Refused::NotRunning => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "clicktap is still starting",
                ),
            };
            json(
                status,
                &json!({ "error": code, "message": message, "problems": refused.lines() }),
            )
        }
    }
}
