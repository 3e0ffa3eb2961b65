//! The LINE Messaging API: message objects and the client that sends them.

mod client;
pub mod message;

pub use client::{LineClient, LineClientConfig, LineError, RetryPolicy, SendOk};
pub use message::{Action, Message, QuickReply, QuickReplyItem};
