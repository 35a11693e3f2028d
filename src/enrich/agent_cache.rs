//! A per-thread memo of user-agent readings, kept as the JSON the event stores.
//!
//! A shortener's clicks come from few distinct user agents (the current browser
//! versions, a handful of preview bots), and reading one costs a few microseconds
//! (woothee plus the bot rules) against a fraction of one to look it up. The reading is
//! kept already serialised, so a remembered agent costs neither its strings nor their
//! escaping again.

use serde_json::value::{RawValue, to_raw_value};
use std::cell::RefCell;
use std::rc::Rc;

use super::agent;
use super::memo::{Memo, Weight, push_part};
use crate::click::BotKind;

/// The bytes of user-agent readings remembered per thread: about 2,500 agents (an
/// entry, key and JSON, is about 400 bytes); a reading over 16 KiB is not kept.
pub const BUDGET: usize = 1 << 20;

/// A user agent's reading: the event's `agent` and `bot` fields, as JSON.
pub struct AgentReading {
    pub bot_kind: Option<BotKind>,
    pub agent: Box<RawValue>,
    pub bot: Box<RawValue>,
}

impl Weight for Rc<AgentReading> {
    fn weight(&self) -> usize {
        self.agent.get().len() + self.bot.get().len()
    }
}

thread_local! {
    static SEEN: RefCell<(Memo<Rc<AgentReading>>, Vec<u8>)> =
        RefCell::new((Memo::new(BUDGET), Vec::new()));
}

/// [`agent::classify`], serialised and remembered.
pub fn classify(user_agent: Option<&str>) -> serde_json::Result<Rc<AgentReading>> {
    SEEN.with_borrow_mut(|(seen, key)| {
        key.clear();
        push_part(key, user_agent.map(str::as_bytes));
        seen.get_or_read(key, || {
            let (agent, bot) = agent::classify(user_agent);
            Ok(Rc::new(AgentReading {
                bot_kind: bot.as_ref().map(|b| b.kind),
                agent: to_raw_value(&agent)?,
                bot: to_raw_value(&bot)?,
            }))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::{Agent, Bot};

    fn parsed(r: &AgentReading) -> (Agent, Option<Bot>) {
        (
            serde_json::from_str(r.agent.get()).unwrap(),
            serde_json::from_str(r.bot.get()).unwrap(),
        )
    }

    #[test]
    fn a_remembered_reading_is_the_same_reading() {
        let ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let first = classify(Some(ua)).unwrap();
        assert_eq!(parsed(&first), agent::classify(Some(ua)));
        assert_eq!(first.bot_kind, Some(BotKind::Crawler));
        let again = classify(Some(ua)).unwrap();
        assert!(Rc::ptr_eq(&first, &again), "read once");
        assert_eq!(parsed(&classify(None).unwrap()), agent::classify(None));
    }
}
