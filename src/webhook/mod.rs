//! The webhook edge: raw body first, signature second, JSON third; store, then acknowledge.

mod event;
mod handler;
mod signature;

pub use event::{Event, EventKind, Incoming, parse_callback};
pub use handler::{MAX_BODY_BYTES, webhook};
pub use signature::{sign, verify};
