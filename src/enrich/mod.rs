//! Enrichment: turns a [`crate::click::RawClick`] into a [`crate::click::ClickEvent`]
//! on plain threads, off the request path.

pub mod agent;
pub mod bots;
pub mod geo;
