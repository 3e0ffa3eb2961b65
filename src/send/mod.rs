//! The send engine: every message to LINE is a recorded send, claimed before it leaves, its
//! outcome (LINE's answer classified once, [`crate::line::SendOutcome`]) committed as it comes.
//! Replies go through [`replies::ReplySender`]; the daily pushes through `delivery/`, with
//! retry keys from [`keys::Installation`]. All of them share one `LineClient`: one connection
//! pool, one rate limiter, one view of whether LINE takes messages at all.

pub mod keys;
pub mod replies;

pub use keys::Installation;
pub use replies::{ReplyPass, ReplySender};
