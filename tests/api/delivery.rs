//! Daily delivery through `yorisoi push`, against the LINE double.

use crate::helpers::{TestApp, spawn_app_on, today};
use chrono::{Days, NaiveDate};
use serde_json::Value;
use std::collections::HashMap;
use yorisoi::clock::Clock;
use yorisoi::content::ContentPack;
use yorisoi::line_double::{Fault, Via, user_id};

/// The JSON summary `yorisoi push --json` printed (whatever its exit code: callers check it).
fn summary(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "push printed no JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Three pregnant readers, 100 days before their due dates.
async fn register_three(app: &TestApp, today: NaiveDate) {
    for i in 1..=3 {
        app.register(&user_id(i), "妊娠中", "a", today + Days::new(100))
            .await;
    }
    app.settle().await;
}

fn pushes_by_user(app: &TestApp) -> HashMap<String, Vec<Vec<Value>>> {
    let mut m: HashMap<String, Vec<Vec<Value>>> = HashMap::new();
    for d in app
        .double
        .delivered()
        .into_iter()
        .filter(|d| d.via == Via::Push)
    {
        m.entry(d.to).or_default().push(d.messages);
    }
    m
}

/// Every string a message shows (its text, or a Flex message's alt text and the strings in
/// its contents).
fn strings_of(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().flat_map(strings_of).collect(),
        Value::Object(o) => o.values().flat_map(strings_of).collect(),
        _ => vec![],
    }
}

fn text_of(m: &Value) -> String {
    match m["type"].as_str() {
        Some("text") => m["text"].as_str().unwrap().to_owned(),
        _ => format!(
            "{} {}",
            m["altText"].as_str().unwrap_or_default(),
            m["contents"]
        ),
    }
}

/// A child's age as the messages show it, worked out here with chrono alone: completed months
/// (the largest m with birthday + m months on or before today), then 生後N日 / Mか月 / Y歳 /
/// Y歳Mか月.
fn age_label(birthday: NaiveDate, today: NaiveDate, days: i64) -> String {
    let months = (0..=48u32)
        .take_while(|&m| {
            birthday
                .checked_add_months(chrono::Months::new(m))
                .is_some_and(|d| d <= today)
        })
        .last()
        .unwrap_or(0);
    match (months / 12, months % 12) {
        (0, 0) => format!("生後{days}日"),
        (0, m) => format!("{m}か月"),
        (y, 0) => format!("{y}歳"),
        (y, m) => format!("{y}歳{m}か月"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pregnancy_and_child_day_gets_the_right_message_once() {
    let today = today();
    let app = spawn_app_on(today).await;
    let pack = ContentPack::load(&app.settings.content_dir).unwrap();

    // One reader at every pregnancy day from 4週0日 (28) to 41週6日 (293)…
    for gd in 28..=293i64 {
        let due = today + Days::new((280 - gd + 13) as u64) - Days::new(13);
        app.register(&user_id(gd as u64), "妊娠中", &format!("p{gd}"), due)
            .await;
    }
    // …and at every child day from birth to the 3rd birthday. The k-th birthday of a child born
    // on b is b + 12k months (chrono: a child born on 29 February has it on the 28th in a
    // common year), so the last day is the largest n whose 3rd birthday is not yet past.
    let nth_birthday = |n: i64, k: u32| {
        (today - Days::new(n as u64)).checked_add_months(chrono::Months::new(12 * k))
    };
    let third_birthday_day = (0..2000i64)
        .take_while(|&n| nth_birthday(n, 3).is_some_and(|b| b >= today))
        .last()
        .unwrap();
    for n in 0..=third_birthday_day {
        app.register(
            &user_id(10_000 + n as u64),
            "子育て中",
            &format!("c{n}"),
            today - Days::new(n as u64),
        )
        .await;
    }
    app.settle().await;
    let registered = app.count("SELECT count(*) FROM registrations WHERE status = 'active'");
    assert_eq!(registered, 266 + third_birthday_day + 1);
    let replies_before = app.double.delivered().len();

    let out = app.push_cli(&["--json"]);
    let s = summary(&out);
    assert!(out.status.success(), "{s}");
    assert_eq!(s["failed"], 0);
    let pushes = pushes_by_user(&app);
    assert_eq!(
        app.double.delivered().len() - replies_before,
        s["sent"].as_u64().unwrap() as usize
    );

    // Pregnancy: 266 pushes with the right 週/日 and nickname.
    for gd in 28..=293i64 {
        let got = pushes
            .get(&user_id(gd as u64))
            .unwrap_or_else(|| panic!("no push at gestational day {gd}"));
        assert_eq!(got.len(), 1, "one push at gestational day {gd}");
        let first = text_of(&got[0][0]);
        assert!(
            first.contains(&format!("妊娠{}週{}日", gd / 7, gd % 7)),
            "gd {gd}: {first}"
        );
        assert!(first.contains(&format!("p{gd}さん")), "gd {gd}: {first}");
    }

    // Child: a push exactly on the days the pack has a message (the cadence), with the nickname
    // and the right day count, ending with the 3rd birthday.
    let mut child_pushes = 0;
    for n in 0..=third_birthday_day {
        let user = user_id(10_000 + n as u64);
        let birthday_age = (1..=3u32).find(|&k| nth_birthday(n, k) == Some(today));
        let expected_day = match birthday_age {
            Some(k) => pack.birthdays.contains_key(&k),
            None => pack.child_days.contains_key(&n),
        };
        let got = pushes.get(&user);
        let has_day_message = got.is_some_and(|g| {
            let t = text_of(&g[0][0]);
            t.contains(&format!("c{n}さん")) && !t.starts_with("【")
        });
        assert_eq!(
            has_day_message, expected_day,
            "child day {n} (birthday {birthday_age:?})"
        );
        if let Some(g) = got {
            child_pushes += 1;
            assert_eq!(g.len(), 1, "one push on day {n}");
            assert!(g[0].len() <= 5);
            for shown in g[0].iter().flat_map(strings_of) {
                assert!(
                    !shown.contains('{') && !shown.contains('}'),
                    "day {n}: a placeholder left unrendered: {shown}"
                );
            }
            // The day message shows the position its template asks for, exactly.
            let template = match birthday_age {
                Some(k) => pack.birthdays.get(&k),
                None => pack.child_days.get(&n),
            }
            .map(|m| match &m.body {
                yorisoi::content::Body::Text(t) => t,
                yorisoi::content::Body::Flex { alt_text, .. } => alt_text,
            });
            let first = text_of(&g[0][0]);
            if let Some(t) = template {
                if t.uses("days_since_birth") {
                    assert!(first.contains(&format!("{n}日")), "day {n}: {first}");
                }
                if t.uses("age") {
                    let age = age_label(today - Days::new(n as u64), today, n);
                    assert!(first.contains(&age), "day {n}: {age} in {first}");
                }
            }
            // Every push ends with the municipality's footer.
            let last = text_of(g[0].last().unwrap());
            assert!(last.contains("個人差があります"), "day {n}: footer");
        }
    }
    assert!(
        child_pushes >= 260,
        "child pushes follow the cadence: {child_pushes}"
    );
    // Usually one child has the 3rd birthday today; on 28 February of a common year two do
    // (born on the 28th and on the 29th), on 29 February nobody.
    let third_birthdays = (0..=third_birthday_day)
        .filter(|&n| nth_birthday(n, 3) == Some(today))
        .count() as i64;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'completed'"),
        third_birthdays,
        "the 3rd birthday completes the programme"
    );

    // Notices on their days: 4か月児健診 reaches the reader at its first day (registered today
    // inside the window), birth procedures reach the newborn's family.
    let window = pack
        .notices
        .iter()
        .find(|n| n.id == "checkup-4m")
        .unwrap()
        .range
        .unwrap();
    let at_window = pushes
        .get(&user_id(10_000 + window.0 as u64))
        .expect("push at the window start");
    assert!(
        at_window
            .iter()
            .flatten()
            .any(|m| text_of(m).contains("4か月児健診"))
    );
    let newborn = pushes.get(&user_id(10_000)).unwrap();
    assert!(newborn[0].iter().any(|m| text_of(m).contains("出生届")));
    assert_eq!(
        app.count("SELECT count(*) FROM send_items WHERE content_id = 'notice/checkup-4m'"),
        (window.1 - window.0 + 1),
        "every reader inside the window (all registered today) gets it once"
    );

    // A second run sends nothing.
    let sent_so_far = app.double.stats().pushes;
    let again = summary(&app.push_cli(&["--json"]));
    assert_eq!(again["sent"], 0);
    assert_eq!(app.double.stats().pushes, sent_so_far);
    app.assert_contract_held();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_and_unregistered_readers_receive_nothing() {
    let today = today();
    let app = spawn_app_on(today).await;
    app.register(&user_id(1), "妊娠中", "a", today + Days::new(100))
        .await;
    app.register(&user_id(2), "妊娠中", "b", today + Days::new(100))
        .await;
    app.say(&[app.double.unfollow_event(&user_id(2))]).await;
    app.say(&[app.double.follow_event(&user_id(3), false)])
        .await;
    app.settle().await;
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["planned"], 1);
    let pushes = pushes_by_user(&app);
    assert!(pushes.contains_key(&user_id(1)));
    assert!(!pushes.contains_key(&user_id(2)), "blocked (解除)");
    assert!(!pushes.contains_key(&user_id(3)), "never registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twins_get_both_messages_named_in_one_push() {
    let today = today();
    let app = spawn_app_on(today).await;
    let u = user_id(1);
    let birthday = today - Days::new(10);
    app.register(&u, "子育て中", "はなこ", birthday).await;
    app.settle().await;
    app.add_child(&u, "子育て中", birthday, "なし").await;
    app.settle().await;
    summary(&app.push_cli(&["--json"]));
    let pushes = pushes_by_user(&app);
    let got = &pushes[&u];
    assert_eq!(got.len(), 1, "packed in one push");
    let texts: Vec<String> = got[0].iter().map(text_of).collect();
    assert!(
        texts[0].starts_with("【1人目：はなこさん・生まれて10日目】"),
        "{texts:?}"
    );
    assert!(
        texts[1].starts_with("【2人目：はなこさん・生まれて10日目】"),
        "{texts:?}"
    );
    // Shared notices come once, not once per twin: on day 10 the birth procedures (出生届
    // within 14 days) are due.
    let notice_count = texts.iter().filter(|t| t.contains("出生届")).count();
    assert_eq!(notice_count, 1, "{texts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_refusals_reported() {
    let today = today();
    let app = spawn_app_on(today).await;
    register_three(&app, today).await;
    // Two 503s (retried with the same key), then one refusal (never retried).
    app.double.inject_on(Some(Via::Push), Fault::Status(503), 2);
    app.double.inject_on(Some(Via::Push), Fault::Status(400), 1);
    let out = app.push_cli(&["--json"]);
    let s = summary(&out);
    assert_eq!(s["sent"], 2);
    assert_eq!(s["failed"], 1);
    assert_eq!(
        out.status.code(),
        Some(1),
        "non-zero when something failed for good"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sends WHERE kind = 'daily' AND status = 'failed' AND error LIKE '%400%'"),
        1
    );
    // The 503s were retried with the key of the push they were for: every key that was
    // answered 503 was then accepted (or refused) under the same key, and no key was sent
    // for more pushes than there are.
    let tries: Vec<_> = app
        .double
        .attempts()
        .into_iter()
        .filter(|a| a.via == Via::Push)
        .collect();
    let keys: std::collections::HashSet<_> = tries.iter().map(|a| a.retry_key.clone()).collect();
    assert_eq!(keys.len(), 3, "three pushes, three keys: {tries:?}");
    assert!(keys.iter().all(Option::is_some));
    for failed in tries.iter().filter(|a| a.status == 503) {
        assert!(
            tries
                .iter()
                .any(|a| a.retry_key == failed.retry_key && a.status == 200),
            "{tries:?}"
        );
    }
    // A rerun does not resend the refused one nor the delivered ones.
    let again = summary(&app.push_cli(&["--json"]));
    assert_eq!(again["sent"], 0);
    assert_eq!(again["already_sent"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_limit_stops_the_run_and_a_rerun_finishes_it() {
    let today = today();
    let app = spawn_app_on(today).await;
    register_three(&app, today).await;
    app.double.set_monthly_limit(true);
    let out = app.push_cli(&["--json"]);
    let s = summary(&out);
    assert_eq!(s["monthly_limit"], true);
    assert_eq!(out.status.code(), Some(1));
    app.double.set_monthly_limit(false);
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["sent"], 3);
    assert_eq!(app.double.stats().pushes, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_never_send_twice() {
    let today = today();
    let app = spawn_app_on(today).await;
    for i in 1..=60 {
        app.register(&user_id(i), "子育て中", "a", today - Days::new(i))
            .await;
    }
    app.settle().await;
    // LINE is slow today: the first run takes seconds, and the second starts while the first
    // holds the delivery lease.
    app.double.inject_on(
        Some(Via::Push),
        Fault::SlowAccept(std::time::Duration::from_millis(400)),
        40,
    );
    let first = app
        .push_command(&["--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.count(&format!(
        "SELECT count(*) FROM process_leases WHERE name = 'delivery' AND pid = {}",
        first.id()
    )) == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never took the lease"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = app
        .push_command(&["--json"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    let (a, b) = (summary(&first), summary(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another delivery run is in progress"),
        "the runs overlapped: the second waited for the first: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    let planned = a["planned"].as_u64().unwrap();
    assert_eq!(a["sent"].as_u64(), Some(planned), "{a}");
    assert_eq!(b["sent"].as_u64(), Some(0), "{b}");
    let per_user = pushes_by_user(&app);
    assert!(
        per_user.values().all(|p| p.len() == 1),
        "each reader exactly one push"
    );
    assert_eq!(per_user.len() as u64, planned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_outside_the_catch_up_window_are_refused() {
    let today = today();
    let app = spawn_app_on(today).await;
    let yesterday = (today - Days::new(1)).to_string();
    let out = app.push_cli(&["--date", &yesterday]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("catch-up window"));
    let tomorrow = (today + Days::new(1)).to_string();
    let out = app.push_cli(&["--date", &tomorrow]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("future"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_delivers_at_push_time_and_catches_up_a_missed_morning_once() {
    // The clock stands at 08:00 Asia/Tokyo; a push time of 07:00 has passed, so a service
    // starting now delivers today's messages once, and a restart does not deliver them again.
    let app = crate::helpers::spawn_app().await;
    let u = user_id(1);
    app.register(
        &u,
        "妊娠中",
        "はなこ",
        crate::helpers::today() + Days::new(100),
    )
    .await;
    app.settle().await;
    let seven = crate::helpers::passed_push_time();
    let app = app.restart_with(seven).await;
    app.schedule_looked().await;
    let pushes = app
        .double
        .delivered_to(&u)
        .iter()
        .filter(|d| d.via == Via::Push)
        .count();
    assert_eq!(
        pushes, 1,
        "today's message, delivered by the service itself"
    );
    let push = app
        .double
        .delivered_to(&u)
        .into_iter()
        .rfind(|d| d.via == Via::Push)
        .unwrap();
    assert!(
        text_of(&push.messages[0]).contains("妊娠25週5日"),
        "{:?}",
        push.messages[0]
    );
    let app = app.restart_with(seven).await;
    app.schedule_looked().await;
    let pushes = app
        .double
        .delivered_to(&u)
        .iter()
        .filter(|d| d.via == Via::Push)
        .count();
    assert_eq!(pushes, 1, "not again after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_who_registers_after_the_morning_run_gets_the_notices_next_morning() {
    let seven = crate::helpers::passed_push_time();
    let today = crate::helpers::today();
    let app = crate::helpers::spawn_app().await;
    let app = app.restart_with(seven).await; // today's run happens now, with nobody registered
    app.schedule_looked().await;
    let u = user_id(1);
    app.register(&u, "子育て中", "はなこ", today - Days::new(5))
        .await; // after the run
    app.settle().await;
    app.clock.set(app.clock.now() + chrono::Duration::days(1));
    let app = app.restart_with(seven).await; // tomorrow's run
    app.schedule_looked().await;
    let push = app
        .double
        .delivered_to(&u)
        .into_iter()
        .find(|d| d.via == Via::Push);
    let texts: Vec<String> = push
        .expect("a push the next morning")
        .messages
        .iter()
        .map(text_of)
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("出生届")),
        "birth procedures on the first delivered day: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("赤ちゃん訪問")),
        "{texts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_by_a_line_outage_is_finished_by_the_next_run() {
    let today = today();
    let app = spawn_app_on(today).await;
    app.register(&user_id(1), "妊娠中", "a", today + Days::new(100))
        .await;
    app.settle().await;
    app.double.inject_on(Some(Via::Push), Fault::Status(503), 5); // every retry of the one push
    let out = app.push_cli(&["--json"]);
    let s = summary(&out);
    assert_eq!(s["sent"], 0);
    assert_eq!(s["finished"], false, "{s}");
    assert_eq!(out.status.code(), Some(1));
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["sent"], 1);
    assert_eq!(s["finished"], true);
    assert_eq!(app.double.stats().pushes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_sends_exactly_what_was_recorded() {
    let today = today();
    let app = spawn_app_on(today).await;
    let u = user_id(1);
    let birthday = today - Days::new(10);
    app.register(&u, "子育て中", "はなこ", birthday).await;
    app.settle().await;
    app.double.inject_on(Some(Via::Push), Fault::Status(503), 5);
    summary(&app.push_cli(&["--json"]));
    // A twin is registered before the rerun: the recorded push does not change under its key.
    app.add_child(&u, "子育て中", birthday, "なし").await;
    app.settle().await;
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["sent"], 1, "{s}");
    let pushes = pushes_by_user(&app);
    assert_eq!(pushes[&u].len(), 1);
    let first = text_of(&pushes[&u][0][0]);
    assert!(
        !first.starts_with("【"),
        "the recorded single-child push, unchanged: {first}"
    );
}

/// `yorisoi push` with a one-day catch-up window, so yesterday can be delivered too.
fn push_with_catch_up(app: &TestApp, date: NaiveDate) -> std::process::Output {
    crate::helpers::yorisoi(&app.clock)
        .args(["push", "--json", "--date", &date.to_string()])
        .env("LINE_CHANNEL_SECRET", app.settings.channel_secret.expose())
        .env(
            "LINE_CHANNEL_ACCESS_TOKEN",
            app.settings.channel_access_token.expose(),
        )
        .env("LINE_API_BASE", &app.settings.line_api_base)
        .env("LINE_TIMEOUT_MS", "2000")
        .env("YORISOI_DATABASE", &app.db_path)
        .env("YORISOI_CONTENT_DIR", &app.settings.content_dir)
        .env("YORISOI_PUSH_TIME", "off")
        .env("YORISOI_CATCH_UP_DAYS", "1")
        .env("RUST_LOG", "warn")
        .output()
        .expect("yorisoi push runs")
}

/// The opening words of two age-window notices open on days 99 and 100 after birth.
const CHECKUP_4M: &str = "4か月児健診のご案内です";
const HIROBA: &str = "子育てひろばのご案内です";

/// A reader registered yesterday whose child was 99 days old yesterday: inside the windows of
/// the 4か月児健診 (days 90–130) and 子育てひろば (days 70–100) notices on both days.
async fn reader_inside_two_windows(today: NaiveDate) -> (TestApp, String) {
    let app = spawn_app_on(today - Days::new(1)).await;
    let u = user_id(1);
    app.register(&u, "子育て中", "はなこ", today - Days::new(100))
        .await;
    app.settle().await;
    // Registered yesterday; the pushes run today.
    app.clock.set(crate::helpers::clock_on(today).now());
    (app, u)
}

/// How many times each text was delivered to the reader, over every push.
fn times_received(app: &TestApp, user: &str, text: &str) -> usize {
    pushes_by_user(app)
        .get(user)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|m| text_of(m).contains(text))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_notice_is_planned_once_when_two_days_are_caught_up() {
    let today = today();
    let (app, u) = reader_inside_two_windows(today).await;
    // Yesterday's push cannot reach LINE (every retry answered 503): it stays planned, with
    // its notices, while today is planned.
    app.double.inject_on(Some(Via::Push), Fault::Status(503), 5);
    let s = summary(&push_with_catch_up(&app, today - Days::new(1)));
    assert_eq!(
        (s["sent"].as_u64(), s["finished"].as_bool()),
        (Some(0), Some(false)),
        "{s}"
    );
    let s = summary(&push_with_catch_up(&app, today));
    assert_eq!(s["sent"], 1, "today's message: {s}");
    assert_eq!(
        times_received(&app, &u, CHECKUP_4M),
        0,
        "not in today's push"
    );
    // LINE is back: yesterday's recorded push goes out, notices included.
    let s = summary(&push_with_catch_up(&app, today - Days::new(1)));
    assert_eq!(
        (s["sent"].as_u64(), s["finished"].as_bool()),
        (Some(1), Some(true)),
        "{s}"
    );
    assert_eq!(pushes_by_user(&app)[&u].len(), 2, "one push per day");
    assert_eq!(times_received(&app, &u, CHECKUP_4M), 1);
    assert_eq!(times_received(&app, &u, HIROBA), 1);
    // Nothing more on a rerun of either day.
    for date in [today - Days::new(1), today] {
        assert_eq!(summary(&push_with_catch_up(&app, date))["sent"], 0);
    }
    assert_eq!(times_received(&app, &u, CHECKUP_4M), 1);
    app.assert_contract_held();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_notice_whose_push_failed_for_good_comes_on_a_later_day() {
    let today = today();
    let (app, u) = reader_inside_two_windows(today).await;
    // LINE refuses yesterday's push (400: never retried).
    app.double.inject_on(Some(Via::Push), Fault::Status(400), 1);
    let s = summary(&push_with_catch_up(&app, today - Days::new(1)));
    assert_eq!(
        (s["sent"].as_u64(), s["failed"].as_u64()),
        (Some(0), Some(1)),
        "{s}"
    );
    assert_eq!(times_received(&app, &u, CHECKUP_4M), 0);
    // Today, still inside both windows, the reader gets them.
    let s = summary(&push_with_catch_up(&app, today));
    assert_eq!(s["sent"], 1, "{s}");
    let today_push = &pushes_by_user(&app)[&u];
    assert_eq!(today_push.len(), 1);
    let texts: Vec<String> = today_push[0].iter().map(text_of).collect();
    assert!(texts.iter().any(|t| t.contains(CHECKUP_4M)), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains(HIROBA)), "{texts:?}");
    // And only then: a rerun of today sends nothing more.
    assert_eq!(summary(&push_with_catch_up(&app, today))["sent"], 0);
    assert_eq!(times_received(&app, &u, CHECKUP_4M), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_does_not_deliver_before_the_push_time() {
    // The push time is later today (09:00 when the clock stands at 08:00): nothing goes out
    // yet.
    let app = crate::helpers::spawn_app().await;
    let u = user_id(2);
    app.register(
        &u,
        "妊娠中",
        "はなこ",
        crate::helpers::today() + Days::new(100),
    )
    .await;
    app.settle().await;
    let app = app.restart_with(crate::helpers::later_push_time()).await;
    app.schedule_looked().await;
    assert_eq!(
        app.double
            .delivered_to(&u)
            .iter()
            .filter(|d| d.via == Via::Push)
            .count(),
        0,
        "not before the push time"
    );
    assert_eq!(app.count("SELECT count(*) FROM delivery_runs"), 0);
}

/// The registration `user` owns.
fn registration_of(app: &TestApp, user: &str) -> i64 {
    app.db()
        .query_row(
            "SELECT r.id FROM registrations r JOIN line_users u ON u.id = r.user_id
             WHERE u.line_user_id = ?1",
            [user],
            |r| r.get(0),
        )
        .unwrap()
}

/// Adds `user` (who follows the account) as a family reader of `registration`.
async fn add_family_reader(
    app: &TestApp,
    registration: i64,
    user: &str,
    nickname: &str,
    paused: bool,
) {
    app.say(&[app.double.follow_event(user, false)]).await;
    app.settle().await;
    app.db()
        .execute(
            "INSERT INTO registration_readers (registration_id, user_id, role, added_at, nickname, paused)
             SELECT ?1, id, 'family', '2026-01-01T00:00:00Z', ?3, ?4 FROM line_users WHERE line_user_id = ?2",
            rusqlite::params![registration, user, nickname, paused],
        )
        .unwrap();
}

/// Moves a registration's due date so that today is gestational day `gd`.
fn set_gestational_day(app: &TestApp, registration: i64, today: NaiveDate, gd: i64) {
    let due = today + chrono::Duration::days(280 - gd);
    app.db()
        .execute(
            "UPDATE registrations SET due_date = ?2 WHERE id = ?1",
            rusqlite::params![registration, due.to_string()],
        )
        .unwrap();
}

/// The quick reply actions of a push (on its last message object; none elsewhere).
fn quick_reply_actions(push: &[Value]) -> Vec<Value> {
    for m in &push[..push.len() - 1] {
        assert!(m.get("quickReply").is_none(), "only the last object: {m}");
    }
    push.last().unwrap()["quickReply"]["items"]
        .as_array()
        .map(|items| items.iter().map(|i| i["action"].clone()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_due_date_the_owner_gets_the_birth_button_and_the_family_the_prompt() {
    let today = today();
    let app = spawn_app_on(today).await;
    let (owner, partner) = (user_id(1), user_id(2));
    app.register(&owner, "妊娠中", "はなこ", today).await;
    app.settle().await;
    let id = registration_of(&app, &owner);
    add_family_reader(&app, id, &partner, "パパ", false).await;
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["sent"], 2, "{s}");
    let pushes = pushes_by_user(&app);

    let mine = &pushes[&owner][0];
    assert!(text_of(&mine[0]).contains("はなこさん"));
    assert!(mine.iter().any(|m| text_of(m).contains("「出産しました」")));
    assert_eq!(
        quick_reply_actions(mine),
        vec![serde_json::json!({
            "type": "datetimepicker",
            "label": "赤ちゃんが生まれたら",
            "data": format!("born:{id}"),
            "mode": "date",
            "initial": today.to_string(),
            "max": today.to_string(),
            "min": (today - Days::new(154)).to_string(),
        })]
    );

    let theirs = &pushes[&partner][0];
    assert!(
        text_of(&theirs[0]).contains("パパさん"),
        "{}",
        text_of(&theirs[0])
    );
    assert!(!text_of(&theirs[0]).contains("はなこさん"));
    assert!(
        theirs
            .iter()
            .any(|m| text_of(m).contains("「出産しました」"))
    );
    assert!(
        quick_reply_actions(theirs).is_empty(),
        "the owner reports the birth"
    );
    app.assert_contract_held();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_41w6d_a_weekly_reminder_three_times_then_the_registration_stops() {
    let today = today();
    let app = spawn_app_on(today).await;
    // 42週0日 (the first reminder), 42週1日 (nothing), 44週0日 (the last), 44週1日 (stopped).
    let days = [294, 295, 308, 309];
    for (i, gd) in days.iter().enumerate() {
        let u = user_id(i as u64 + 1);
        app.register(&u, "妊娠中", "はなこ", today + Days::new(30))
            .await;
        app.settle().await;
        let id = registration_of(&app, &u);
        set_gestational_day(&app, id, today, *gd);
    }
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["sent"], 2, "{s}");
    assert_eq!(s["birth_unreported"], 1, "{s}");
    let pushes = pushes_by_user(&app);
    for (i, gd) in days.iter().enumerate() {
        let u = user_id(i as u64 + 1);
        let id = registration_of(&app, &u);
        let status: String = app
            .db()
            .query_row(
                "SELECT status FROM registrations WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        match gd {
            294 | 308 => {
                let got = &pushes[&u];
                assert_eq!(got.len(), 1);
                assert_eq!(got[0].len(), 1, "the reminder alone");
                let text = text_of(&got[0][0]);
                assert!(
                    text.contains("はなこさん") && text.contains("「出産しました」"),
                    "{text}"
                );
                assert!(
                    text.contains("「配信停止」") && !text.contains("妊娠"),
                    "{text}"
                );
                let actions = quick_reply_actions(&got[0]);
                assert_eq!(actions.len(), 1);
                assert_eq!(actions[0]["data"], format!("born:{id}"));
                assert_eq!(status, "active");
            }
            295 => {
                assert!(!pushes.contains_key(&u), "nothing between reminders");
                assert_eq!(status, "active");
            }
            _ => {
                assert!(!pushes.contains_key(&u), "nothing after the last reminder");
                assert_eq!(status, "stopped", "停止, no longer 配信中");
                let reason: String = app
                    .db()
                    .query_row(
                        "SELECT reason FROM registration_status_history
                         WHERE registration_id = ?1 ORDER BY id DESC LIMIT 1",
                        [id],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(reason, "birth_unreported");
            }
        }
    }
    // The next morning's run plans nothing for the stopped registration.
    let again = summary(&app.push_cli(&["--json"]));
    assert_eq!(again["birth_unreported"], 0, "{again}");
    app.assert_contract_held();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_family_reader_and_a_closed_registration_receive_nothing() {
    let today = today();
    let app = spawn_app_on(today).await;
    let (owner, grandma, bereaved) = (user_id(1), user_id(2), user_id(3));
    let birthday = today - Days::new(10);
    app.register(&owner, "子育て中", "はなこ", birthday).await;
    app.register(&bereaved, "子育て中", "ゆき", birthday).await;
    app.settle().await;
    let id = registration_of(&app, &owner);
    add_family_reader(&app, id, &grandma, "ばあば", true).await;
    app.db()
        .execute(
            "UPDATE registrations SET closed = 'loss' WHERE id = ?1",
            [registration_of(&app, &bereaved)],
        )
        .unwrap();
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["sent"], 1, "{s}");
    let pushes = pushes_by_user(&app);
    assert!(
        text_of(&pushes[&owner][0][0]).contains("はなこさん"),
        "the owner still reads"
    );
    assert!(!pushes.contains_key(&grandma), "paused her own delivery");
    assert!(!pushes.contains_key(&bereaved), "closed for good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_sends_the_recorded_birth_button_unchanged() {
    let today = today();
    let app = spawn_app_on(today).await;
    let u = user_id(1);
    app.register(&u, "妊娠中", "はなこ", today - Days::new(3))
        .await;
    app.settle().await;
    let id = registration_of(&app, &u);
    app.double.inject_on(Some(Via::Push), Fault::Status(503), 5);
    summary(&app.push_cli(&["--json"]));
    // Named after it was recorded: the push keeps what it was recorded with, under its key.
    app.db()
        .execute(
            "UPDATE registrations SET child_name = 'はる' WHERE id = ?1",
            [id],
        )
        .unwrap();
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["sent"], 1, "{s}");
    let pushes = pushes_by_user(&app);
    let actions = quick_reply_actions(&pushes[&u][0]);
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["label"], "赤ちゃんが生まれたら");
    assert_eq!(actions[0]["data"], format!("born:{id}"));
    assert_eq!(actions[0]["min"], (today - Days::new(157)).to_string());
}
