use super::*;

/// The first bytes of a PNG: enough for its format and size.
pub(crate) fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend(width.to_be_bytes());
    b.extend(height.to_be_bytes());
    b.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    b
}

fn postback(x: u32, label: &str, data: &str) -> Area {
    Area {
        bounds: Bounds {
            x,
            y: 0,
            width: 1250,
            height: 843,
        },
        action: Action {
            kind: "postback".into(),
            label: Some(label.into()),
            data: data.into(),
            display_text: Some(label.into()),
            rich_menu_alias_id: None,
        },
    }
}

fn file() -> MenuFile {
    MenuFile {
        name: "stopped".into(),
        path: "richmenus/stopped.json".into(),
        menu: RichMenu {
            size: Size {
                width: 2500,
                height: 843,
            },
            selected: false,
            name: "stopped".into(),
            chat_bar_text: "メニュー".into(),
            areas: vec![
                postback(0, "配信再開", "menu:resume"),
                postback(1250, "登録内容", "menu:show"),
            ],
        },
        image_path: "richmenus/stopped.png".into(),
        image: png_header(2500, 843),
        content_type: "image/png",
    }
}

#[test]
fn a_good_definition_has_no_problem() {
    assert_eq!(check(&file()), vec![]);
}

#[test]
fn each_broken_rule_is_named_with_file_and_area() {
    type Break = fn(&mut MenuFile);
    let cases: &[(&str, Break, &str)] = &[
        (
            "odd size",
            |m| m.menu.size.height = 1000,
            "must be 2500×1686 or 2500×843",
        ),
        (
            "image of another size",
            |m| m.image = png_header(2500, 1686),
            "is 2500×1686 pixels",
        ),
        (
            "image too big",
            |m| m.image.resize(MAX_IMAGE_BYTES + 1, 0),
            "at most 1048576",
        ),
        (
            "not a PNG",
            |m| m.image = b"GIF89a....".to_vec(),
            "is not a image/png image",
        ),
        (
            "name differs from file",
            |m| m.menu.name = "other".into(),
            "must be the file's name",
        ),
        (
            "chat bar too long",
            |m| m.menu.chat_bar_text = "あ".repeat(15),
            "chatBarText must be 1 to 14",
        ),
        (
            "no areas",
            |m| m.menu.areas.clear(),
            "must have 1 to 20 areas",
        ),
        (
            "too many areas",
            |m| {
                let a = m.menu.areas[0].clone();
                m.menu.areas = (0..21)
                    .map(|i| Area {
                        bounds: Bounds {
                            x: i * 100,
                            width: 100,
                            ..a.bounds
                        },
                        ..a.clone()
                    })
                    .collect();
            },
            "has 21",
        ),
        (
            "outside the image",
            |m| m.menu.areas[1].bounds.x = 1300,
            "area 2 (登録内容): bounds x 1300",
        ),
        (
            "overlap",
            |m| m.menu.areas[1].bounds.x = 1200,
            "area 1 (配信再開) overlaps area 2 (登録内容)",
        ),
        (
            "huge numbers",
            |m| m.menu.areas[1].bounds.width = u32::MAX,
            "go outside the image",
        ),
        (
            "unknown data",
            |m| m.menu.areas[0].action.data = "menu:dance".into(),
            "area 1 (配信再開): data \"menu:dance\" is not one",
        ),
        (
            "data too long",
            |m| m.menu.areas[0].action.data = "x".repeat(301),
            "at most 300",
        ),
        (
            "no displayText",
            |m| m.menu.areas[0].action.display_text = None,
            "needs a displayText",
        ),
        (
            "displayText not the label",
            |m| m.menu.areas[0].action.display_text = Some("再開".into()),
            "should be the label",
        ),
        (
            "label too long",
            |m| m.menu.areas[0].action.label = Some("あ".repeat(21)),
            "label must be 1 to 20",
        ),
        (
            "uri action",
            |m| m.menu.areas[0].action.kind = "uri".into(),
            "use postback or richmenuswitch",
        ),
    ];
    for (what, breaks, expected) in cases {
        let mut m = file();
        breaks(&mut m);
        let problems = check(&m);
        assert!(
            problems
                .iter()
                .any(|p| p.file == "richmenus/stopped.json" && p.message.contains(expected)),
            "{what}: {problems:?}"
        );
    }
}

#[test]
fn the_hash_follows_definition_and_image() {
    let a = file();
    let mut b = file();
    assert_eq!(a.hash(), b.hash());
    b.image.push(0);
    assert_ne!(a.hash(), b.hash());
    let mut c = file();
    c.menu.areas[0].action.label = Some("さいかい".into());
    assert_ne!(a.hash(), c.hash());
}

#[test]
fn the_committed_menus_pass_the_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("richmenus");
    let menus = load_dir(&dir).unwrap_or_else(|p| panic!("{p:?}"));
    let names: Vec<&str> = menus.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["child", "pregnancy", "registering", "stopped"]);
}

#[test]
fn a_switch_to_an_unknown_alias_is_refused() {
    let mut m = file();
    m.menu.areas[0].action = Action {
        kind: "richmenuswitch".into(),
        label: Some("妊娠中".into()),
        data: "menu:tab".into(),
        display_text: None,
        rich_menu_alias_id: Some("yorisoi-nowhere".into()),
    };
    let problems = check_switches(&[m]);
    assert!(
        problems[0].message.contains("is not the alias"),
        "{problems:?}"
    );
}
