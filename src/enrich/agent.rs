//! (stub until the user-agent module lands)
use crate::click::{Agent, Bot};
pub fn classify(_user_agent: Option<&str>) -> (Agent, Option<Bot>) {
    (Agent::default(), None)
}
