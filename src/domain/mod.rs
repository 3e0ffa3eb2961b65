//! Domain types: what arrives from outside is parsed once at the edge and trusted afterwards.

mod date_input;
mod family;
mod ids;
mod line_user_id;
mod nickname;
mod position;
mod stage;
mod subject;

pub use date_input::{DateError, DateKind, DateRange, check_range, format_date_ja, parse_date};
pub use family::{FamilyReader, InvitationCheck, ReaderRole};
pub use ids::{RegistrationId, UserId};
pub use line_user_id::LineUserId;
pub use nickname::{NICKNAME_MAX, NICKNAME_MAX_UTF16, Nickname, NicknameError};
pub use position::{ChildAge, Position, PregnancyPosition};
pub use stage::{RegistrationStatus, Stage};
pub use subject::Subject;
