use serde::{Deserialize, Serialize};

/// Where a registration stands: pregnancy (due date) or raising a child (birthday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Registered with a due date.
    Pregnancy,
    /// Registered with the child's birthday.
    Child,
}

impl Stage {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pregnancy => "pregnancy",
            Stage::Child => "child",
        }
    }
    /// Parses the stored value.
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "pregnancy" => Some(Stage::Pregnancy),
            "child" => Some(Stage::Child),
            _ => None,
        }
    }
    /// The label a parent sees and may type.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Pregnancy => "妊娠中",
            Stage::Child => "子育て中",
        }
    }
    /// What the registered date is called.
    pub fn date_label(self) -> &'static str {
        match self {
            Stage::Pregnancy => "出産予定日",
            Stage::Child => "お子さんの誕生日",
        }
    }
}

/// A registration's delivery status, as municipalities count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// 配信中: receiving messages.
    Active,
    /// 完了: the programme reached its end.
    Completed,
    /// 停止: stopped from the chat.
    Stopped,
    /// 解除: the reader blocked the account.
    Blocked,
}

impl RegistrationStatus {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Stopped => "stopped",
            Self::Blocked => "blocked",
        }
    }
    /// Parses the stored value.
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "completed" => Some(Self::Completed),
            "stopped" => Some(Self::Stopped),
            "blocked" => Some(Self::Blocked),
            _ => None,
        }
    }
    /// The Japanese name staff use.
    pub fn label(self) -> &'static str {
        match self {
            Self::Active => "配信中",
            Self::Completed => "完了",
            Self::Stopped => "停止",
            Self::Blocked => "解除",
        }
    }
}
