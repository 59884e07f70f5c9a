//! Integration tests of the carrier simulator, on a manual clock, against a local webhook receiver.

mod calls;
mod conformance;
mod credentials;
mod delivery;
mod load;
mod races;
mod recordings;
mod scenarios;
mod support;
mod timeline_events;
