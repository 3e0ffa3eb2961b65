//! Which menu a reader sees: pure.

/// The menu of a stage (its name in `richmenus/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuStage {
    /// No registration: the default menu (no per-user link).
    Registering,
    /// An active pregnancy registration.
    Pregnancy,
    /// An active child registration (and no active pregnancy).
    Child,
    /// Registrations, none active: stopped, completed, blocked, closed or paused.
    Stopped,
}

impl MenuStage {
    /// The menu's name in `richmenus/`.
    pub fn menu_name(self) -> &'static str {
        match self {
            MenuStage::Registering => "registering",
            MenuStage::Pregnancy => "pregnancy",
            MenuStage::Child => "child",
            MenuStage::Stopped => "stopped",
        }
    }
}

/// What decides a reader's menu, read from the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// The reader follows the account (a blocked account shows no menu).
    pub following: bool,
    /// They read an active, open pregnancy registration they have not paused.
    pub active_pregnancy: bool,
    /// They read an active, open child registration they have not paused.
    pub active_child: bool,
    /// They read any registration at all.
    pub any: bool,
}

/// The menu a reader should see; `None` for one who blocked the account (nothing to link).
pub fn stage(r: Reading) -> Option<MenuStage> {
    if !r.following {
        None
    } else if r.active_pregnancy {
        Some(MenuStage::Pregnancy)
    } else if r.active_child {
        Some(MenuStage::Child)
    } else if r.any {
        Some(MenuStage::Stopped)
    } else {
        Some(MenuStage::Registering)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_rule() {
        let r = |following, active_pregnancy, active_child, any| Reading {
            following,
            active_pregnancy,
            active_child,
            any,
        };
        let cases = [
            ("blocked", r(false, true, true, true), None),
            (
                "nothing registered",
                r(true, false, false, false),
                Some(MenuStage::Registering),
            ),
            (
                "pregnancy",
                r(true, true, false, true),
                Some(MenuStage::Pregnancy),
            ),
            (
                "pregnancy wins over a child",
                r(true, true, true, true),
                Some(MenuStage::Pregnancy),
            ),
            ("child", r(true, false, true, true), Some(MenuStage::Child)),
            (
                "stopped or paused",
                r(true, false, false, true),
                Some(MenuStage::Stopped),
            ),
        ];
        for (what, reading, expected) in cases {
            assert_eq!(stage(reading), expected, "{what}");
        }
    }
}
