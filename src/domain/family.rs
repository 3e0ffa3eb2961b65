//! Who reads a registration, as the conversation and the store both see it: its owner or a
//! family member, and the invitations that share it.

use crate::domain::{RegistrationId, UserId};
use serde::{Deserialize, Serialize};

/// How a reader reads a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderRole {
    /// Registered it.
    Owner,
    /// Joined it with an invitation.
    Family,
}

/// A family member a registration is shared with, as its owner sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyReader {
    /// Their internal user id.
    pub user: UserId,
    /// Their nickname.
    pub nickname: String,
}

/// An invitation as the processor found it.
#[derive(Debug, Clone, PartialEq)]
pub enum InvitationCheck {
    /// Usable by this reader.
    Valid {
        /// Its hash (the code itself is never stored).
        code_hash: String,
        /// The registrations it shares.
        registrations: Vec<RegistrationId>,
        /// The owner's nickname.
        owner: String,
        /// This reader created it.
        own: bool,
        /// This reader already reads every registration it shares.
        already: bool,
    },
    /// Past its 7 days.
    Expired,
    /// Used already.
    Used,
    /// No such code.
    Unknown,
}
