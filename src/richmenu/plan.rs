//! What a sync has to do, from the definitions, what yorisoi recorded and what LINE holds: pure.

use super::definition::alias_of;
use super::store::Recorded;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A definition as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The menu's name.
    pub name: String,
    /// Its hash (definition and image).
    pub hash: String,
}

/// What LINE holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnLine {
    /// Rich menu ids.
    pub menus: BTreeSet<String>,
    /// alias → rich menu id.
    pub aliases: BTreeMap<String, String>,
    /// The default menu.
    pub default: Option<String>,
}

/// Which menu a step points at: one that exists, or the one this sync creates for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An existing menu.
    Existing(String),
    /// The menu created for this name in this sync.
    New(String),
}

/// One step of a sync, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Validate, create, upload the image, make it the name's menu.
    Create {
        /// The menu.
        name: String,
    },
    /// Create the alias `yorisoi-<name>`, or point it at the name's menu.
    Alias {
        /// The menu.
        name: String,
        /// Whether the alias exists already (update) or not (create).
        exists: bool,
        /// The menu it points to.
        target: Target,
    },
    /// Make the `registering` menu the default.
    Default {
        /// The menu.
        target: Target,
    },
    /// Link readers to the new menus (before the old ones go).
    Relink,
    /// Delete an alias of a menu no longer defined.
    DeleteAlias {
        /// The alias.
        alias: String,
    },
    /// Delete a menu yorisoi created that no definition stands for any more.
    Delete {
        /// LINE's id.
        rich_menu_id: String,
        /// Its name.
        name: String,
        /// LINE still has it (else only the record goes).
        on_line: bool,
    },
}

impl Step {
    /// Whether LINE counts it against the 100 creations and deletions an hour.
    pub fn counted(&self) -> bool {
        matches!(
            self,
            Step::Create { .. } | Step::Delete { on_line: true, .. }
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Existing(id) => write!(f, "{id}"),
            Target::New(name) => write!(f, "the new {name} menu"),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Create { name } => write!(f, "create {name}: validate, create, upload its image"),
            Step::Alias {
                name,
                exists: false,
                target,
            } => write!(f, "alias: create {} → {target}", alias_of(name)),
            Step::Alias { name, target, .. } => {
                write!(f, "alias: point {} at {target}", alias_of(name))
            }
            Step::Default { target } => write!(f, "default: {target}"),
            Step::Relink => write!(f, "relink readers to the new menus"),
            Step::DeleteAlias { alias } => write!(f, "alias: delete {alias}"),
            Step::Delete {
                rich_menu_id,
                name,
                on_line: true,
            } => write!(f, "delete {rich_menu_id} (was {name})"),
            Step::Delete {
                rich_menu_id,
                name,
                on_line: false,
            } => write!(
                f,
                "forget {rich_menu_id} (was {name}; LINE no longer has it)"
            ),
        }
    }
}

/// The steps that bring LINE to the definitions; none when it is there already.
pub fn plan(wanted: &[Wanted], recorded: &[Recorded], line: &OnLine) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut kept = BTreeSet::new();
    let mut targets = Vec::new();
    for w in wanted {
        let current = recorded.iter().find(|r| {
            r.current
                && r.name == w.name
                && r.hash == w.hash
                && r.image_uploaded
                && line.menus.contains(&r.rich_menu_id)
        });
        let target = match current {
            Some(r) => {
                kept.insert(r.rich_menu_id.clone());
                Target::Existing(r.rich_menu_id.clone())
            }
            None => {
                steps.push(Step::Create {
                    name: w.name.clone(),
                });
                Target::New(w.name.clone())
            }
        };
        targets.push((w.name.clone(), target));
    }
    for (name, target) in &targets {
        let alias = line.aliases.get(&alias_of(name));
        if alias.is_none_or(|id| Target::Existing(id.clone()) != *target) {
            steps.push(Step::Alias {
                name: name.clone(),
                exists: alias.is_some(),
                target: target.clone(),
            });
        }
    }
    if let Some((_, target)) = targets.iter().find(|(n, _)| n == "registering")
        && line
            .default
            .as_ref()
            .is_none_or(|d| Target::Existing(d.clone()) != *target)
    {
        steps.push(Step::Default {
            target: target.clone(),
        });
    }
    let changed = !steps.is_empty();
    let deletes: Vec<Step> = recorded
        .iter()
        .filter(|r| !kept.contains(&r.rich_menu_id))
        .map(|r| Step::Delete {
            rich_menu_id: r.rich_menu_id.clone(),
            name: r.name.clone(),
            on_line: line.menus.contains(&r.rich_menu_id),
        })
        .collect();
    if changed || deletes.iter().any(Step::counted) {
        steps.push(Step::Relink);
    }
    let defined: BTreeSet<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
    let gone: BTreeSet<&str> = recorded
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !defined.contains(n))
        .collect();
    for name in gone {
        let alias = alias_of(name);
        if line.aliases.contains_key(&alias) {
            steps.push(Step::DeleteAlias { alias });
        }
    }
    steps.extend(deletes);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(name: &str, hash: &str) -> Wanted {
        Wanted {
            name: name.into(),
            hash: hash.into(),
        }
    }

    fn rec(id: &str, name: &str, hash: &str, current: bool) -> Recorded {
        Recorded {
            rich_menu_id: id.into(),
            name: name.into(),
            hash: hash.into(),
            image_uploaded: true,
            current,
        }
    }

    fn synced() -> (Vec<Wanted>, Vec<Recorded>, OnLine) {
        let w = vec![wanted("registering", "h1"), wanted("child", "h2")];
        let r = vec![
            rec("m1", "registering", "h1", true),
            rec("m2", "child", "h2", true),
        ];
        let line = OnLine {
            menus: ["m1".to_string(), "m2".to_string()].into(),
            aliases: [
                ("yorisoi-registering".to_string(), "m1".to_string()),
                ("yorisoi-child".to_string(), "m2".to_string()),
            ]
            .into(),
            default: Some("m1".into()),
        };
        (w, r, line)
    }

    #[test]
    fn a_first_sync_creates_aliases_and_the_default() {
        let (w, _, _) = synced();
        let steps = plan(&w, &[], &OnLine::default());
        assert_eq!(
            steps,
            vec![
                Step::Create {
                    name: "registering".into()
                },
                Step::Create {
                    name: "child".into()
                },
                Step::Alias {
                    name: "registering".into(),
                    exists: false,
                    target: Target::New("registering".into())
                },
                Step::Alias {
                    name: "child".into(),
                    exists: false,
                    target: Target::New("child".into())
                },
                Step::Default {
                    target: Target::New("registering".into())
                },
                Step::Relink,
            ]
        );
    }

    #[test]
    fn nothing_to_do_when_line_matches() {
        let (w, r, line) = synced();
        assert_eq!(plan(&w, &r, &line), vec![]);
    }

    #[test]
    fn a_changed_definition_replaces_that_menu_only() {
        let (mut w, r, line) = synced();
        w[1].hash = "h2b".into();
        assert_eq!(
            plan(&w, &r, &line),
            vec![
                Step::Create {
                    name: "child".into()
                },
                Step::Alias {
                    name: "child".into(),
                    exists: true,
                    target: Target::New("child".into())
                },
                Step::Relink,
                Step::Delete {
                    rich_menu_id: "m2".into(),
                    name: "child".into(),
                    on_line: true
                },
            ]
        );
    }

    #[test]
    fn a_removed_definition_loses_its_alias_and_menu() {
        let (mut w, r, line) = synced();
        w.pop();
        assert_eq!(
            plan(&w, &r, &line),
            vec![
                Step::Relink,
                Step::DeleteAlias {
                    alias: "yorisoi-child".into()
                },
                Step::Delete {
                    rich_menu_id: "m2".into(),
                    name: "child".into(),
                    on_line: true
                },
            ]
        );
    }

    #[test]
    fn a_menu_gone_from_line_is_made_again() {
        let (w, r, mut line) = synced();
        line.menus.remove("m2");
        line.aliases.remove("yorisoi-child");
        let steps = plan(&w, &r, &line);
        assert_eq!(
            steps[0],
            Step::Create {
                name: "child".into()
            }
        );
        assert!(steps.contains(&Step::Delete {
            rich_menu_id: "m2".into(),
            name: "child".into(),
            on_line: false
        }));
        assert_eq!(steps.iter().filter(|s| s.counted()).count(), 1);
    }

    #[test]
    fn a_half_done_creation_is_cleaned_up() {
        let (w, mut r, line) = synced();
        r.push(Recorded {
            image_uploaded: false,
            ..rec("m3", "child", "h2", false)
        });
        let mut line = line;
        line.menus.insert("m3".into());
        let steps = plan(&w, &r, &line);
        assert_eq!(
            steps,
            vec![
                Step::Relink,
                Step::Delete {
                    rich_menu_id: "m3".into(),
                    name: "child".into(),
                    on_line: true
                }
            ]
        );
    }
}
