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
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/messages/municipality.toml"
    ))
    .unwrap();
    let without = |line_start: &str| {
        shipped
            .lines()
            .filter(|l| !l.starts_with(line_start))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut cases = cases;
    cases.extend([
        (
            "a disclaimer missing a track",
            "municipality.toml",
            without("child = "),
            "municipality.toml: [disclaimer] needs `child`",
        ),
        (
            "a disclaimer with an unknown track",
            "municipality.toml",
            shipped.replace("[disclaimer]", "[disclaimer]\nbaby = \"x\""),
            "[disclaimer] has an unknown key `baby`",
        ),
        (
            "no town hall",
            "municipality.toml",
            without("municipal_office"),
            "missing field `municipal_office`",
        ),
        (
            "no birth prompt",
            "municipality.toml",
            without("prompt = "),
            "[birth] needs `prompt`",
        ),
        (
            "a birth reminder that does not say how to stop",
            "municipality.toml",
            shipped.replace("配信をやめるときは「配信停止」と送ってください。", ""),
            "[birth] `reminder` must say 「配信停止」",
        ),
    ]);
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

/// A copy of the shipped pack, to break one rule at a time.
fn shipped_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("messages"),
        dir.path(),
    );
    dir
}

/// One change to a copy of the pack.
enum Break {
    /// Adds a file.
    Add(&'static str, String),
    /// Replaces the first occurrence of a text in a file.
    Edit(&'static str, &'static str, &'static str),
    /// Replaces a text in every message and notice (removing a topic).
    Everywhere(&'static str, &'static str),
}

fn child_message(day: i64, text: &str) -> String {
    format!(
        "track = \"child\"\n\n[[message]]\nday = {day}\ntext = \"\"\"\n{{nickname}}さん、こんにちは。\n{text}\"\"\"\n"
    )
}

fn apply(dir: &Path, change: &Break) {
    fn each(dir: &Path, f: &mut dyn FnMut(&Path)) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                each(&p, f);
            } else {
                f(&p);
            }
        }
    }
    match change {
        Break::Add(file, body) => std::fs::write(dir.join(file), body).unwrap(),
        Break::Edit(file, from, to) => {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(from), "{file} holds {from:?}");
            std::fs::write(path, text.replacen(from, to, 1)).unwrap();
        }
        Break::Everywhere(from, to) => each(dir, &mut |p| {
            if p.ends_with("style.toml") {
                return;
            }
            let text = std::fs::read_to_string(p).unwrap();
            std::fs::write(p, text.replace(from, to)).unwrap();
        }),
    }
}

#[test]
fn the_shipped_pack_passes_strict() {
    let out = yorisoi(&[
        "content",
        "check",
        "--strict",
        "--dir",
        concat!(env!("CARGO_MANIFEST_DIR"), "/messages"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok: no errors, 0 warning(s)"), "{text}");
}

#[test]
fn strict_fails_a_pack_that_brings_back_any_finding_of_the_review() {
    use Break::*;
    let cases: Vec<(&str, Vec<Break>, &str)> = vec![
        (
            "an age announced on a day that is not its anniversary",
            vec![Add(
                "child/zz.toml",
                child_message(380, "今日で{age}です。"),
            )],
            "child/zz.toml:7: 「今日で{age}」 says the age changes today",
        ),
        (
            "「{age}になりました」 two weeks late",
            vec![Add(
                "child/zz.toml",
                child_message(380, "{age}になりましたね。"),
            )],
            "「{age}になりました」 says the age changes today",
        ),
        (
            "a literal age announced on a day count",
            vec![Add(
                "child/zz.toml",
                child_message(101, "今日で3か月ですね。"),
            )],
            "「今日で3か月」 says the age changes today",
        ),
        (
            "「生まれて0日目」 on the birthday",
            vec![Edit(
                "child/days-000-030.toml",
                "赤ちゃんのお誕生の日です",
                "生まれて{days_since_birth}日目です",
            )],
            "child/days-000-030.toml:7: on the day of birth this reads 「生まれて0日目」",
        ),
        (
            "MR no longer named at age 1",
            vec![
                Everywhere("麻しん風しん", "予防接種"),
                Everywhere("MR", "予防接種"),
            ],
            "no child message or notice from day 365 to day 380 names any of 「麻しん風しん」「MR」",
        ),
        (
            "BCG never named",
            vec![Everywhere("BCG", "予防接種")],
            "names any of 「BCG」",
        ),
        (
            "日本脳炎 never named",
            vec![Everywhere("日本脳炎", "予防接種")],
            "names any of 「日本脳炎」",
        ),
        (
            "SIDS never named",
            vec![
                Everywhere("乳幼児突然死症候群", "病気"),
                Everywhere("SIDS", "病気"),
            ],
            "names any of 「乳幼児突然死症候群」「SIDS」",
        ),
        (
            "sleeping in an adult bed normalised",
            vec![Add(
                "child/zz.toml",
                child_message(101, "大人のベッドで一緒に寝るときは気をつけて。"),
            )],
            "child/zz.toml:7: 「大人のベッドで一緒に寝」: 乳幼児突然死症候群（SIDS）の予防",
        ),
        (
            "folic acid without the supplement",
            vec![
                Everywhere("栄養補助食品", "食事"),
                Everywhere("サプリメント", "食事"),
            ],
            "names any of 「サプリメント」「栄養補助食品」",
        ),
        (
            "a milestone presumed",
            vec![Add(
                "child/zz.toml",
                child_message(101, "首がすわり、寝返りをして、お座りをして。"),
            )],
            "「首がすわり、寝返りをして」: 発達には大きな幅があり",
        ),
        (
            "a milestone day without its message",
            vec![Edit("child/age-1.toml", "day = 500\n", "day = 501\n")],
            "style.toml:13: milestone day 500 (生まれて500日目) has no message on the day",
        ),
        (
            "1000日を越え",
            vec![Add(
                "child/zz.toml",
                child_message(1001, "少し前に、1000日を越えました。"),
            )],
            "child/zz.toml:7: 「越え」 → 「超え」",
        ),
        (
            "a daily promise",
            vec![Edit(
                "child/age-2.toml",
                "大きな節目を迎えましたね。",
                "大きな節目を迎えましたね。毎日のメッセージを読んでくださってありがとう。",
            )],
            "「毎日のメッセージ」: メッセージは生後100日を過ぎると",
        ),
        (
            "the old disclaimer for everyone",
            vec![Edit(
                "municipality.toml",
                "※お子さんの育ちにも",
                "※赤ちゃんとママの状態は、お子さんの育ちにも",
            )],
            "municipality.toml:25: 「赤ちゃんとママ」: 父親、パートナー、祖父母",
        ),
        (
            "赤ちゃん to the parents of a 2-year-old",
            vec![Add(
                "child/zz.toml",
                child_message(1001, "赤ちゃんとお散歩に行きましょう。"),
            )],
            "「赤ちゃん」: 1歳を過ぎたら「お子さん」と呼びます",
        ),
        (
            "a hard-coded 市",
            vec![Add(
                "child/zz.toml",
                child_message(101, "市の「4か月児健診」があります。"),
            )],
            "child/zz.toml:7: 「市の」 names the municipality by hand (a 町, 村 or 区 uses this pack too) → 「{municipality}の」",
        ),
        (
            "a hard-coded 市役所",
            vec![Edit(
                "notices/age-windows.toml",
                "{municipal_office}のほか",
                "市役所のほか",
            )],
            "「市役所」 names the municipality by hand",
        ),
        (
            "the municipality's name by hand",
            vec![Add(
                "child/zz.toml",
                child_message(101, "サンプル市の図書館へ。"),
            )],
            "→ 「{municipality}の」",
        ),
        (
            "the health centre by hand",
            vec![Add(
                "child/zz.toml",
                child_message(101, "保健センターで相談できます。"),
            )],
            "「保健センター」 is written by hand → 「{health_center}」",
        ),
        (
            "the pregnancy notification urged at 4 weeks",
            vec![
                Edit(
                    "notices/age-windows.toml",
                    "from = \"8週0日\"",
                    "from = \"4週0日\"",
                ),
                Edit(
                    "notices/age-windows.toml",
                    "届出の時期は、",
                    "まだ届出をしていない方は、早めに。届出の時期は、",
                ),
            ],
            "「届出をしていない方は、早めに」: 妊娠届は",
        ),
        (
            "a routine checkup notice dropped",
            vec![Everywhere("1歳6か月児健診", "健診")],
            "names any of 「1歳6か月児健診」",
        ),
        (
            "a spelling the guide rejects",
            vec![Add(
                "child/zz.toml",
                child_message(
                    101,
                    "今日もお疲れさまです。だれにも分からないこともあります。",
                ),
            )],
            "「お疲れさま」 → 「おつかれさま」",
        ),
        (
            "a pregnancy placeholder in the child track",
            vec![Add(
                "child/zz.toml",
                child_message(101, "妊娠{week}週のころを思い出します。"),
            )],
            "{week} is empty for child readers",
        ),
    ];
    for (what, changes, expect) in cases {
        let dir = shipped_copy();
        for c in &changes {
            apply(dir.path(), c);
        }
        let out = yorisoi(&[
            "content",
            "check",
            "--strict",
            "--dir",
            dir.path().to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: fails under --strict\n{text}"
        );
        assert!(
            text.contains(expect),
            "{what}: expected {expect:?} in\n{text}"
        );
    }
}

#[test]
fn style_findings_are_warnings_unless_strict_and_a_bad_guide_is_an_error() {
    let dir = shipped_copy();
    apply(
        dir.path(),
        &Break::Add("child/zz.toml", child_message(101, "お疲れさまです。")),
    );
    let path = dir.path().to_str().unwrap();
    let lenient = yorisoi(&["content", "check", "--dir", path]);
    let text = String::from_utf8_lossy(&lenient.stdout);
    assert!(lenient.status.success(), "{text}");
    assert!(
        text.contains("warning: child/zz.toml:7: 「お疲れさま」 → 「おつかれさま」"),
        "{text}"
    );
    assert!(text.contains("ok: no errors, 1 warning(s)"), "{text}");

    apply(
        dir.path(),
        &Break::Add(
            "style.toml",
            "[[avoid]]\nphrases = [\"x\"]\nreason = \"r\"\nfrom = 3\n".into(),
        ),
    );
    let out = yorisoi(&["content", "check", "--dir", path]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("style.toml:1: `from` and `to` need a `track`"),
        "{text}"
    );
}
