//! `yorisoi content check` and `preview` through the command line.

use std::path::Path;
use std::process::Command;

fn yorisoi(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_yorisoi"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn pack_with(file: &str, body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("messages/municipality.toml");
    std::fs::copy(shipped, dir.path().join("municipality.toml")).unwrap();
    let path = dir.path().join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    dir
}

#[test]
fn the_shipped_pack_passes_and_reports_its_cadence() {
    let out = yorisoi(&[
        "content",
        "check",
        "--dir",
        concat!(env!("CARGO_MANIFEST_DIR"), "/messages"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("pregnancy: 266 messages, 4週0日 → 41週6日"),
        "{text}"
    );
    assert!(text.contains("days 0–100 (daily): 101 messages"), "{text}");
    assert!(text.contains("birthday 3"), "{text}");
    let json = yorisoi(&[
        "content",
        "check",
        "--json",
        "--dir",
        concat!(env!("CARGO_MANIFEST_DIR"), "/messages"),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["coverage"][0]["count"], 266);
    assert!(v["notices"]["age_window"].as_u64().unwrap() >= 15);
    assert!(v["notices"]["dated"].as_u64().unwrap() >= 3);
}

#[test]
fn problems_are_reported_with_file_and_line() {
    let long = "あ".repeat(5_001);
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("a TOML syntax error", "pregnancy/a.toml", "track = \"pregnancy\"\n\n[[message]]\nday = \"5週0日\ntext = \"x\"\n".into(), "pregnancy/a.toml:4"),
        ("an unknown placeholder", "pregnancy/a.toml", "track = \"pregnancy\"\n[[message]]\nday = \"5週0日\"\ntext = \"{name}さん\"\n".into(), "unknown placeholder `{name}`"),
        ("two messages on one day", "pregnancy/a.toml", "track = \"pregnancy\"\n[[message]]\nday = \"5週0日\"\ntext = \"a\"\n\n[[message]]\nday = 35\ntext = \"b\"\n".into(), "pregnancy/a.toml:6: two messages on 妊娠5週0日"),
        ("flex without alt_text", "child/a.toml", "track = \"child\"\n[[message]]\nday = 3\nflex = '{\"type\":\"bubble\"}'\n".into(), "needs `alt_text`"),
        ("flex that is not JSON", "child/a.toml", "track = \"child\"\n[[message]]\nday = 3\nalt_text = \"a\"\nflex = '{\"type\":'\n".into(), "not valid JSON"),
        ("a day message on a birthday", "child/a.toml", "track = \"child\"\n[[message]]\nday = 365\ntext = \"a\"\n[[message]]\nbirthday = 1\ntext = \"b\"\n".into(), "can fall on the 1 birthday"),
        ("a text over LINE's limit", "child/a.toml", format!("track = \"child\"\n[[message]]\nday = 3\ntext = \"{long}\"\n"), "UTF-16 units"),
        ("a bad pregnancy day", "pregnancy/a.toml", "track = \"pregnancy\"\n[[message]]\nday = \"5週9日\"\ntext = \"a\"\n".into(), "not a pregnancy day"),
        ("no track", "x.toml", "[[message]]\nday = 3\ntext = \"a\"\n".into(), "need `track"),
        ("too many notices on one day", "notices/a.toml", (0..6).map(|i| format!("[[notice]]\nid = \"n{i}\"\ntrack = \"child\"\nfrom = 0\nto = 10\ntext = \"a\"\n")).collect::<String>(), "LINE allows 5 per push"),
        ("a notice with a bad date", "notices/a.toml", "[[notice]]\nid = \"x\"\ndate = \"13-40\"\ntext = \"a\"\n".into(), "use \"MM-DD\""),
        ("a duplicate notice id", "notices/a.toml", "[[notice]]\nid = \"x\"\ndate = \"04-01\"\ntext = \"a\"\n[[notice]]\nid = \"x\"\ndate = \"05-01\"\ntext = \"b\"\n".into(), "already used"),
        ("an unknown field", "child/a.toml", "track = \"child\"\n[[message]]\nday = 3\ntxet = \"a\"\n".into(), "unknown field"),
    ];
    for (what, file, body, expect) in cases {
        let dir = pack_with(file, &body);
        let out = yorisoi(&["content", "check", "--dir", dir.path().to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: non-zero exit\n{text}");
        assert!(
            text.contains(expect),
            "{what}: expected {expect:?} in\n{text}"
        );
    }
}

#[test]
fn preview_shows_what_the_reader_receives() {
    let out = yorisoi(&[
        "content",
        "preview",
        "--due",
        "2027-03-15",
        "--date",
        "2026-11-28",
        "--days",
        "2",
        "--nickname",
        "ゆい",
        "--dir",
        concat!(env!("CARGO_MANIFEST_DIR"), "/messages"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("2026年11月28日（土） 妊娠24週5日"), "{text}");
    assert!(text.contains("2026年11月29日（日） 妊娠24週6日"), "{text}");
    assert!(text.contains("ゆいさん"), "{text}");
    assert!(
        text.contains("個人差があります"),
        "the footer is shown: {text}"
    );
    let bad = yorisoi(&["content", "preview", "--due", "someday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read the date"));
}

#[test]
fn a_notice_id_used_twice_across_files_is_an_error_naming_both_places() {
    let notice = |date: &str| {
        format!("# お知らせ\n\n[[notice]]\nid = \"checkup\"\ndate = \"{date}\"\ntext = \"a\"\n")
    };
    let dir = pack_with("notices/a.toml", &notice("04-01"));
    std::fs::write(dir.path().join("notices/b.toml"), notice("05-01")).unwrap();
    let out = yorisoi(&["content", "check", "--dir", dir.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("notices/b.toml:3: notice id `checkup` is already used at notices/a.toml:3"),
        "{text}"
    );
    let json = yorisoi(&[
        "content",
        "check",
        "--json",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let dup = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("already used"))
        .expect("the duplicate is reported");
    assert_eq!(dup["level"], "error");
    assert_eq!(dup["file"], "notices/b.toml");
    assert_eq!(dup["line"], 3);
}
