//! Broadcasts: messages the staff send to everyone or to a segment. The audience and quiet
//! hours are pure (`audience.rs`, `quiet.rs`); `engine.rs` records a broadcast's batches as
//! sends and delivers them by multicast, exactly once, like the daily push.

pub mod audience;
pub mod engine;
pub mod quiet;

pub use audience::{Audience, BadAudience, Selection};
pub use quiet::QuietHours;
