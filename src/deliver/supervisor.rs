//! The webhooks' tasks while delivery runs: started, stopped, replaced by a reload, and
//! started again when one fails.
//!
//! A webhook is changed by stopping its task (its requests in flight get
//! `delivery.stop_timeout`, then they are recorded as retries) and starting the new
//! one once the old has ended, never both at once: two loops on one cursor would send
//! events twice. A webhook removed from the configuration loses what the queue holds
//! for it once its task has ended. A task that fails (a panic, a bug) is logged and
//! started again after [`RESTART_AFTER`]; its cursor moves only past settled events,
//! so nothing is lost meanwhile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::{Id, JoinSet};

use super::webhook::Webhook;
use crate::shutdown::{Stop, Stopper};

/// A webhook task that failed is started again after this long.
const RESTART_AFTER: Duration = Duration::from_secs(1);

pub enum Command {
    /// Starts the webhook, or replaces the running one of the same id.
    Start(Arc<Webhook>),
    /// Stops the webhook; `forget`: also removes its cursor, retries, dead letters,
    /// health and delivery log (it left the configuration).
    Stop { id: String, forget: bool },
}

/// What to do once a stopped task has ended.
enum Then {
    Start(Arc<Webhook>),
    Forget,
    Nothing,
}

struct Running {
    webhook: Arc<Webhook>,
    stopper: Stopper,
    task: Id,
}

pub struct Supervisor {
    stop: Stop,
    tasks: JoinSet<()>,
    running: HashMap<String, Running>,
    then: HashMap<String, Then>,
    forget: Box<dyn Fn(&str) + Send>,
}

impl Supervisor {
    pub fn new(stop: Stop, forget: Box<dyn Fn(&str) + Send>) -> Supervisor {
        Supervisor {
            stop,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            then: HashMap::new(),
            forget,
        }
    }

    fn spawn(&mut self, w: Arc<Webhook>, after: Option<Duration>) {
        let (stopper, mut stop) = self.stop.child();
        let run = w.clone();
        let task = self.tasks.spawn(async move {
            if let Some(d) = after {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = stop.stopped() => return,
                }
            }
            run.run(stop).await
        });
        let id = w.id().to_string();
        self.running.insert(
            id,
            Running {
                webhook: w,
                stopper,
                task: task.id(),
            },
        );
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Start(w) => match self.running.get(w.id()) {
                Some(r) => {
                    r.stopper.stop();
                    self.then.insert(w.id().to_string(), Then::Start(w));
                }
                None => self.spawn(w, None),
            },
            Command::Stop { id, forget } => match self.running.get(&id) {
                Some(r) => {
                    r.stopper.stop();
                    let then = if forget { Then::Forget } else { Then::Nothing };
                    self.then.insert(id, then);
                }
                None if forget => (self.forget)(&id),
                None => {}
            },
        }
    }

    fn ended(&mut self, task: Id, failure: Option<String>) {
        let Some(id) = self
            .running
            .iter()
            .find(|(_, r)| r.task == task)
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        let Some(r) = self.running.remove(&id) else {
            return;
        };
        match self.then.remove(&id) {
            Some(Then::Start(w)) => self.spawn(w, None),
            Some(Then::Forget) => (self.forget)(&id),
            Some(Then::Nothing) => {}
            None => {
                if let Some(why) = failure
                    && !self.stop.is_stopped()
                {
                    tracing::error!(
                        webhook = id,
                        error = why,
                        "webhook delivery failed (a bug in clicktap); starting it again"
                    );
                    self.spawn(r.webhook, Some(RESTART_AFTER));
                }
            }
        }
    }

    /// Runs until the stop, then waits for every task to end (each ends within
    /// `delivery.stop_timeout` of the stop).
    pub async fn run(
        mut self,
        initial: Vec<Arc<Webhook>>,
        mut commands: UnboundedReceiver<Command>,
    ) {
        for w in initial {
            self.spawn(w, None);
        }
        let mut stop = self.stop.clone();
        let mut open = true;
        loop {
            tokio::select! {
                c = commands.recv(), if open => match c {
                    Some(c) => self.command(c),
                    None => open = false,
                },
                Some(ended) = self.tasks.join_next_with_id() => match ended {
                    Ok((task, ())) => self.ended(task, None),
                    Err(e) => self.ended(e.id(), Some(e.to_string())),
                },
                _ = stop.stopped() => break,
            }
        }
        while self.tasks.join_next().await.is_some() {}
    }
}
