//! A sink's health as the operator sees it: publishing, connecting (NATS down, or
//! backing off after a failure) or refused (the stream does not match the config), with
//! the last error and since when. Shared between the sink's task, `status` and metrics.

use parking_lot::Mutex;
use serde::Serialize;

use crate::clock::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Connecting,
    Publishing,
    Refused,
    Stopped,
}

impl State {
    /// The value of `clicktap_sink_state`.
    pub fn gauge(self) -> i64 {
        match self {
            State::Publishing => 0,
            State::Connecting | State::Stopped => 1,
            State::Refused => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub state: State,
    /// Milliseconds since the Unix epoch when the state last changed.
    pub since_ms: u64,
    /// The last failure (no secret: NATS errors and stream mismatches only).
    pub last_error: Option<String>,
}

pub struct Health(Mutex<Snapshot>);

impl Health {
    pub fn new() -> Health {
        Health(Mutex::new(Snapshot {
            state: State::Connecting,
            since_ms: now_ms(),
            last_error: None,
        }))
    }

    pub fn snapshot(&self) -> Snapshot {
        self.0.lock().clone()
    }

    /// Moves to `state`; returns whether it changed (what is worth a log line).
    pub fn set(&self, state: State, error: Option<String>) -> bool {
        let mut s = self.0.lock();
        let changed = s.state != state;
        if changed {
            s.state = state;
            s.since_ms = now_ms();
        }
        if error.is_some() {
            s.last_error = error;
        }
        changed
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}
