//! Sending a turn's requests: up to `concurrency` at once, each in a task of its own,
//! so that one slow receiver's answer does not hold up the next request.
//!
//! Whatever becomes of a task, its events are settled ([`super::settle`]): an answer or
//! a failure is settled as it comes back; a task that panics is a failed attempt with
//! the panic's message (retried, dead-lettered after the last attempt), never a lost
//! event; and on a stop, requests in flight get `delivery.stop_timeout` to finish,
//! after which they are cut short and, with the requests not yet started, recorded as
//! retries due at once. So a stop takes at most that long here, whatever receivers,
//! token endpoints or name servers do.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::task::JoinSet;

use super::attempt::Outcome;
use super::member::Member;
use super::settle::Ending;
use super::webhook::Webhook;
use crate::shutdown::Stop;

impl Webhook {
    /// Sends `groups` (a request each) and settles each as it ends. Returns whether
    /// every event's outcome was recorded, so that the caller may move the cursor.
    pub(super) async fn dispatch(
        self: &Arc<Self>,
        groups: Vec<Vec<Member>>,
        stop: &mut Stop,
    ) -> bool {
        let mut waiting: VecDeque<Arc<Vec<Member>>> = groups.into_iter().map(Arc::new).collect();
        let mut running: JoinSet<Outcome> = JoinSet::new();
        let mut sent: HashMap<tokio::task::Id, Arc<Vec<Member>>> = HashMap::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut cut_short = false;
        let mut recorded = true;
        loop {
            while deadline.is_none() && !stop.is_stopped() && running.len() < self.cfg.concurrency {
                let Some(group) = waiting.pop_front() else {
                    break;
                };
                let (me, members) = (self.clone(), group.clone());
                let task = running.spawn(async move { me.send(&members).await });
                sent.insert(task.id(), group);
            }
            if running.is_empty() {
                break;
            }
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                joined = running.join_next_with_id() => {
                    let Some(joined) = joined else { break };
                    let (id, ending) = match joined {
                        Ok((id, outcome)) => (id, Ending::Answered(outcome)),
                        Err(e) if e.is_panic() => {
                            let id = e.id();
                            (id, Ending::Failed(panic_message(e.into_panic())))
                        }
                        Err(e) => (e.id(), Ending::Interrupted { started: true }),
                    };
                    if let Some(group) = sent.remove(&id) {
                        recorded &= self.settle(&group, ending);
                    }
                }
                _ = stop.stopped(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + self.delivery.stop_timeout);
                }
                _ = until_deadline, if !cut_short => {
                    tracing::warn!(
                        webhook = self.id(),
                        requests = running.len(),
                        stop_timeout = ?self.delivery.stop_timeout,
                        "stopping: requests still in flight are cut short and retried after the restart"
                    );
                    running.abort_all();
                    cut_short = true;
                }
            }
        }
        for group in waiting {
            recorded &= self.settle(&group, Ending::Interrupted { started: false });
        }
        self.flush_log();
        recorded
    }
}

/// The text of a panic, for the delivery log and the dead letter.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("the delivery task failed (a bug in clicktap): {text}")
}
