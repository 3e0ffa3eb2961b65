//! Rich menus: the definitions in `richmenus/` (`definition.rs`, checked offline), `yorisoi
//! richmenu sync` (`plan.rs` pure, `sync.rs` against LINE, `store.rs` what LINE holds for
//! yorisoi), and the menu of each reader by stage (`stage.rs` pure, `relink.rs` the task that
//! links and unlinks).

pub mod definition;
pub mod plan;
pub mod relink;
pub mod stage;
pub mod store;
pub mod sync;

pub use definition::{MENU_NAMES, MenuFile, Problem, alias_of, load_dir};
pub use relink::Relinker;
pub use stage::MenuStage;
