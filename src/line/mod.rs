//! The LINE Messaging API: message objects and the client that sends them.

mod client;
pub mod message;
mod outcome;
pub mod richmenu;

pub use client::{LineClient, LineClientConfig, Quota, RetryPolicy};
pub use message::{Action, Message, QuickReply, QuickReplyItem};
pub use outcome::{Halt, SendOutcome};
