//! The dashboard's charts as SVG documents, written with the `svg` crate (it escapes text and
//! attributes). Each is self-contained (no script, style sheet, font or image fetched), sized by
//! its viewBox so it scales, announced as an image with a title and a description that gives
//! its figures in Japanese, and drawn in the Okabe–Ito colours (told apart with colour-vision
//! deficiencies) with dash patterns or labels as a second cue. The same figures always give
//! the same bytes.

use super::scale::{
    Linear, Ticks, count, day_ticks, long_date, month_day, month_day_weekday, percent, px,
    text_width,
};
use super::{Day, REACH_CHART_YEARS, Reach};
use chrono::NaiveDate;
use svg::Document;
use svg::node::Text as TextNode;
use svg::node::element::{Description, Element, Group, Line, Polyline, Rectangle, Title};
use svg::node::{Node, Value};

/// Fonts found on the viewer's machine; none is downloaded.
const FONT: &str =
    "'Hiragino Sans', 'Hiragino Kaku Gothic ProN', 'Noto Sans JP', 'Yu Gothic', Meiryo, sans-serif";
const INK: &str = "#222222";
const MUTED: &str = "#555555";
const GRID: &str = "#dddddd";

/// Okabe–Ito colours.
const BLUE: &str = "#0072B2";
const GREEN: &str = "#009E73";
const ORANGE: &str = "#E69F00";
const PURPLE: &str = "#CC79A7";
const SKY: &str = "#56B4E9";
const VERMILLION: &str = "#D55E00";

/// A figure of a day.
type Measure = fn(&Day) -> u64;

/// A series of a line chart.
struct LineSeries<'a> {
    name: &'a str,
    color: &'a str,
    /// `stroke-dasharray`; empty for a solid line.
    dash: &'a str,
    values: Vec<u64>,
}

/// The document every chart starts from.
fn document(id: &str, width: f64, height: f64, title: &str, desc: &str) -> Document {
    Document::new()
        .set("viewBox", format!("0 0 {} {}", px(width), px(height)))
        .set("role", "img")
        .set("aria-labelledby", format!("{id}-title {id}-desc"))
        .set("font-family", FONT)
        .set("font-size", 12)
        .set("fill", INK)
        .add(Title::new(title).set("id", format!("{id}-title")))
        .add(
            Description::new()
                .set("id", format!("{id}-desc"))
                .add(TextNode::new(desc)),
        )
        .add(
            Rectangle::new()
                .set("width", px(width))
                .set("height", px(height))
                .set("fill", "#ffffff"),
        )
}

/// Attributes on a plain element, chained like the crate's own elements.
trait Set: Sized {
    fn set(self, name: &str, value: impl Into<Value>) -> Self;
}

impl Set for Element {
    fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.assign(name, value);
        self
    }
}

/// A `<text>` whose content stays on its line: the crate's `Text` element wraps its content
/// in line breaks, which some renderers keep as spaces and which shift anchored labels.
fn text(x: f64, y: f64, s: &str) -> Element {
    let mut t = Element::new("text");
    t.append(TextNode::new(s));
    t.set("x", px(x)).set("y", px(y))
}

fn line(x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str) -> Line {
    Line::new()
        .set("x1", px(x1))
        .set("y1", px(y1))
        .set("x2", px(x2))
        .set("y2", px(y2))
        .set("stroke", stroke)
}

/// The chart's heading, drawn (the `<title>` is for assistive technology).
fn heading(s: &str) -> Element {
    text(16.0, 24.0, s)
        .set("font-size", 16)
        .set("font-weight", "bold")
}

/// A legend of swatches in one row from `x`: a line sample (dashed as the series) or a box.
fn legend(x: f64, y: f64, items: &[(&str, &str, &str)], as_lines: bool) -> Group {
    let mut g = Group::new().set("class", "legend");
    let mut at = x;
    for (label, color, dash) in items {
        let swatch: Box<dyn svg::Node> = if as_lines {
            let mut l = line(at, y - 4.0, at + 24.0, y - 4.0, color).set("stroke-width", 3);
            if !dash.is_empty() {
                l = l.set("stroke-dasharray", *dash);
            }
            Box::new(l)
        } else {
            Box::new(
                Rectangle::new()
                    .set("x", px(at))
                    .set("y", px(y - 10.0))
                    .set("width", 14)
                    .set("height", 12)
                    .set("fill", *color),
            )
        };
        g = g.add(swatch);
        let lx = at + if as_lines { 30.0 } else { 20.0 };
        g = g.add(text(lx, y, label));
        at = lx + text_width(label, 12.0) + 18.0;
    }
    g
}

/// "Nothing to show" in the middle of the plot.
fn empty_note(cx: f64, cy: f64) -> Element {
    text(cx, cy, "データがありません")
        .set("text-anchor", "middle")
        .set("fill", MUTED)
}

/// Lines over days with a count axis: the readers and stage charts.
fn line_chart(
    id: &str,
    heading_text: &str,
    desc: &str,
    days: &[NaiveDate],
    series: &[LineSeries<'_>],
    y_label: &str,
) -> String {
    const W: f64 = 720.0;
    const H: f64 = 380.0;
    let (x0, x1, y0, y1) = (84.0, W - 24.0, 76.0, H - 56.0);
    let mut doc = document(id, W, H, heading_text, desc).add(heading(heading_text));
    let items: Vec<(String, &str, &str)> = series
        .iter()
        .map(|s| {
            let last = s.values.last().copied();
            let label = match last {
                Some(v) => format!("{} {}", s.name, count(v)),
                None => s.name.to_owned(),
            };
            (label, s.color, s.dash)
        })
        .collect();
    let items: Vec<(&str, &str, &str)> =
        items.iter().map(|(l, c, d)| (l.as_str(), *c, *d)).collect();
    doc = doc.add(legend(x0, 50.0, &items, true));

    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let ticks = Ticks::for_max(max, 5);
    let y = Linear::new(0.0, ticks.top as f64, y1, y0);
    let n = days.len();
    let x = Linear::new(0.0, n.saturating_sub(1) as f64, x0, x1);

    let mut axes = Group::new().set("class", "axes").set("font-size", 11);
    for t in ticks.values() {
        let ty = y.at(t as f64);
        axes = axes
            .add(line(x0, ty, x1, ty, GRID))
            .add(text(x0 - 6.0, ty + 4.0, &count(t)).set("text-anchor", "end"));
    }
    axes = axes.add(line(x0, y1, x1, y1, MUTED));
    for i in day_ticks(days, 8) {
        let tx = x.at(i as f64);
        axes = axes
            .add(line(tx, y1, tx, y1 + 4.0, MUTED))
            .add(text(tx, y1 + 18.0, &month_day(days[i])).set("text-anchor", "middle"));
    }
    axes = axes
        .add(text(0.0, 0.0, y_label).set("text-anchor", "middle").set(
            "transform",
            format!("translate(18 {}) rotate(-90)", px((y0 + y1) / 2.0)),
        ))
        .add(text((x0 + x1) / 2.0, H - 12.0, "日付").set("text-anchor", "middle"));
    doc = doc.add(axes);

    if n == 0 {
        return doc
            .add(empty_note((x0 + x1) / 2.0, (y0 + y1) / 2.0))
            .to_string();
    }
    let mut lines = Group::new()
        .set("class", "series")
        .set("fill", "none")
        .set("stroke-width", 2.5)
        .set("stroke-linejoin", "round");
    for s in series {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{},{}", px(x.at(i as f64)), px(y.at(*v as f64))))
            .collect();
        let mut p = Polyline::new()
            .set("points", points.join(" "))
            .set("stroke", s.color);
        if !s.dash.is_empty() {
            p = p.set("stroke-dasharray", s.dash);
        }
        if n == 1 {
            // One day is a point, not a line.
            p = p.set("stroke-linecap", "round").set("stroke-width", 6);
        }
        lines = lines.add(p.add(Title::new(s.name)));
    }
    doc.add(lines).to_string()
}

/// "配信中 1,234件、完了 56件" for named values.
fn figures(named: &[(&str, u64)]) -> String {
    named
        .iter()
        .map(|(name, v)| format!("{name} {}件", count(*v)))
        .collect::<Vec<_>>()
        .join("、")
}

/// The period of a series in words.
fn period(days: &[Day]) -> Option<(String, String)> {
    Some((long_date(days.first()?.day), long_date(days.last()?.day)))
}

/// Registrations by status at the end of each day (配信中 / 完了 / 停止 / 解除), four lines with
/// a legend giving the last day's figures.
pub fn readers_chart(days: &[Day]) -> String {
    let title = "登録者の状態の推移";
    let pick = |f: fn(&Day) -> u64| days.iter().map(f).collect::<Vec<_>>();
    let series = [
        LineSeries {
            name: "配信中",
            color: BLUE,
            dash: "",
            values: pick(|d| d.readers.active),
        },
        LineSeries {
            name: "完了",
            color: GREEN,
            dash: "8 4",
            values: pick(|d| d.readers.completed),
        },
        LineSeries {
            name: "停止",
            color: ORANGE,
            dash: "2 3",
            values: pick(|d| d.readers.stopped),
        },
        LineSeries {
            name: "解除",
            color: PURPLE,
            dash: "10 3 2 3",
            values: pick(|d| d.readers.blocked),
        },
    ];
    let desc = match (period(days), days.first(), days.last()) {
        (Some((from, to)), Some(first), Some(last)) => {
            let at = |d: &Day| {
                figures(&[
                    ("配信中", d.readers.active),
                    ("完了", d.readers.completed),
                    ("停止", d.readers.stopped),
                    ("解除", d.readers.blocked),
                ])
            };
            format!(
                "{from}から{to}までの、各日の終わりの状態別の登録数の推移です。{to}時点では{}。{from}時点では{}でした。",
                at(last),
                at(first)
            )
        }
        _ => "状態別の登録数の推移です。表示できるデータがありません。".to_owned(),
    };
    let dates: Vec<NaiveDate> = days.iter().map(|d| d.day).collect();
    line_chart(
        "stats-readers",
        title,
        &desc,
        &dates,
        &series,
        "登録数（件）",
    )
}

/// 配信中 registrations at the end of each day by stage (妊娠中 / 子育て中).
pub fn stages_chart(days: &[Day]) -> String {
    let title = "配信中の登録（妊娠中・子育て中）の推移";
    let series = [
        LineSeries {
            name: "妊娠中",
            color: VERMILLION,
            dash: "8 4",
            values: days.iter().map(|d| d.active.pregnancy).collect(),
        },
        LineSeries {
            name: "子育て中",
            color: BLUE,
            dash: "",
            values: days.iter().map(|d| d.active.child).collect(),
        },
    ];
    let desc = match (period(days), days.first(), days.last()) {
        (Some((from, to)), Some(first), Some(last)) => {
            let at =
                |d: &Day| figures(&[("妊娠中", d.active.pregnancy), ("子育て中", d.active.child)]);
            format!(
                "{from}から{to}までの、各日の終わりに配信中だった登録数を妊娠中と子育て中に分けた推移です。{to}時点では{}。{from}時点では{}でした。",
                at(last),
                at(first)
            )
        }
        _ => "配信中の登録数の推移です。表示できるデータがありません。".to_owned(),
    };
    let dates: Vec<NaiveDate> = days.iter().map(|d| d.day).collect();
    line_chart(
        "stats-stages",
        title,
        &desc,
        &dates,
        &series,
        "配信中の登録数（件）",
    )
}

/// The week's follows, blocks, new registrations and stops per day: one row of four bars per
/// day, each with its number written at its end.
pub fn week_chart(days: &[Day]) -> String {
    const W: f64 = 720.0;
    const BAR: f64 = 13.0;
    const BAR_GAP: f64 = 2.0;
    const GROUP_GAP: f64 = 16.0;
    let kinds: [(&str, &str, Measure); 4] = [
        ("友だち追加", BLUE, |d| d.follows),
        ("ブロック", PURPLE, |d| d.blocks),
        ("新規登録", SKY, |d| d.registered.total()),
        ("配信停止", ORANGE, |d| d.stops),
    ];
    let group = kinds.len() as f64 * BAR + (kinds.len() as f64 - 1.0) * BAR_GAP;
    let rows = days.len().max(1) as f64;
    let (x0, x1, y0) = (96.0, W - 72.0, 76.0);
    let y1 = y0 + rows * group + (rows - 1.0) * GROUP_GAP;
    let h = y1 + 52.0;
    let title = "直近7日間の友だち追加・ブロック・新規登録・配信停止";

    let desc = match period(days) {
        Some((from, to)) => {
            let each: Vec<String> = days
                .iter()
                .map(|d| {
                    let v: Vec<(&str, u64)> = kinds.iter().map(|(n, _, f)| (*n, f(d))).collect();
                    format!("{}は{}", month_day_weekday(d.day), figures(&v))
                })
                .collect();
            let totals: Vec<(&str, u64)> = kinds
                .iter()
                .map(|(n, _, f)| (*n, days.iter().map(f).sum()))
                .collect();
            format!(
                "{from}から{to}までの日ごとの件数です。{}。期間の合計は{}です。",
                each.join("、"),
                figures(&totals)
            )
        }
        None => "直近7日間の件数です。表示できるデータがありません。".to_owned(),
    };

    let mut doc = document("stats-week", W, h, title, &desc).add(heading(title));
    let items: Vec<(&str, &str, &str)> = kinds.iter().map(|(n, c, _)| (*n, *c, "")).collect();
    doc = doc.add(legend(x0, 50.0, &items, false));

    let max = days
        .iter()
        .flat_map(|d| kinds.iter().map(move |(_, _, f)| f(d)))
        .max()
        .unwrap_or(0);
    let ticks = Ticks::for_max(max, 5);
    let x = Linear::new(0.0, ticks.top as f64, x0, x1);

    let mut axes = Group::new().set("class", "axes").set("font-size", 11);
    for t in ticks.values() {
        let tx = x.at(t as f64);
        axes = axes
            .add(line(tx, y0 - 6.0, tx, y1, GRID))
            .add(text(tx, y1 + 18.0, &count(t)).set("text-anchor", "middle"));
    }
    axes = axes
        .add(line(x0, y0 - 6.0, x0, y1, MUTED))
        .add(text((x0 + x1) / 2.0, h - 10.0, "件数").set("text-anchor", "middle"));
    doc = doc.add(axes);
    if days.is_empty() {
        return doc
            .add(empty_note((x0 + x1) / 2.0, (y0 + y1) / 2.0))
            .to_string();
    }

    let mut bars = Group::new().set("class", "bars");
    for (i, d) in days.iter().enumerate() {
        let top = y0 + i as f64 * (group + GROUP_GAP);
        let mut row = Group::new().add(
            text(x0 - 8.0, top + group / 2.0 + 4.0, &month_day_weekday(d.day))
                .set("text-anchor", "end"),
        );
        for (k, (name, color, f)) in kinds.iter().enumerate() {
            let v = f(d);
            let by = top + k as f64 * (BAR + BAR_GAP);
            // A count above zero stays visible however small beside the others.
            let w = if v > 0 {
                (x.at(v as f64) - x0).max(1.5)
            } else {
                0.0
            };
            row = row
                .add(
                    Rectangle::new()
                        .set("x", px(x0))
                        .set("y", px(by))
                        .set("width", px(w))
                        .set("height", px(BAR))
                        .set("fill", *color)
                        .add(Title::new(format!(
                            "{} {} {}件",
                            month_day_weekday(d.day),
                            name,
                            count(v)
                        ))),
                )
                .add(
                    text(x0 + w + 4.0, by + BAR - 2.5, &count(v))
                        .set("font-size", 11)
                        .set("class", "value"),
                );
        }
        bars = bars.add(row);
    }
    doc.add(bars).to_string()
}

/// Pregnancy registrations per fiscal year (the last five) as bars with their numbers, against a
/// dashed target line at 20 % of the annual births when those are configured.
pub fn reach_chart(reach: &Reach) -> String {
    const W: f64 = 720.0;
    const H: f64 = 380.0;
    let (x0, x1, y0, y1) = (84.0, W - 150.0, 76.0, H - 64.0);
    let years = &reach.years[reach.years.len().saturating_sub(REACH_CHART_YEARS)..];
    let title = "年度ごとの妊娠中の登録数（出生数に対する割合）";
    let target_pct = format!("{}%", (reach.target_share * 100.0).round());

    let in_progress = |fy: &super::FiscalYear| fy.through < fy.last_day;
    let mut desc = match (reach.annual_births, reach.target) {
        (Some(b), Some(t)) => format!(
            "年度ごとの妊娠中の登録数です。目標は年間出生数 {}人の{target_pct}で、{}件です。",
            count(u64::from(b)),
            count(t)
        ),
        _ => "年度ごとの妊娠中の登録数です。年間出生数が設定されていないため、目標は表示していません。"
            .to_owned(),
    };
    let each: Vec<String> = years
        .iter()
        .map(|fy| {
            let mut s = fy.label.clone();
            if in_progress(fy) {
                s.push_str(&format!("（{}まで）", long_date(fy.through)));
            }
            s.push_str(&format!("は{}件", count(fy.pregnancy_registrations)));
            if let Some(share) = fy.share {
                s.push_str(&format!("、出生数の{}", percent(Some(share))));
            }
            match fy.met {
                Some(true) => s.push_str("で目標に達しています"),
                Some(false) => s.push_str("で目標に達していません"),
                None => {}
            }
            s
        })
        .collect();
    if !each.is_empty() {
        desc.push_str(&each.join("。"));
        desc.push('。');
    }

    let mut doc = document("stats-reach", W, H, title, &desc).add(heading(title));
    let mut items = vec![("妊娠中の登録数", BLUE, "")];
    if reach.target.is_some() {
        items.push(("目標", VERMILLION, "6 4"));
    }
    let mut lg = legend(x0, 50.0, &items[..1], false);
    if items.len() > 1 {
        lg = lg.add(legend(
            x0 + text_width(items[0].0, 12.0) + 56.0,
            50.0,
            &items[1..],
            true,
        ));
    }
    doc = doc.add(lg);

    let max = years
        .iter()
        .map(|fy| fy.pregnancy_registrations)
        .chain(reach.target)
        .max()
        .unwrap_or(0);
    let ticks = Ticks::for_max(max, 5);
    let y = Linear::new(0.0, ticks.top as f64, y1, y0);
    let mut axes = Group::new().set("class", "axes").set("font-size", 11);
    for t in ticks.values() {
        let ty = y.at(t as f64);
        axes = axes
            .add(line(x0, ty, x1, ty, GRID))
            .add(text(x0 - 6.0, ty + 4.0, &count(t)).set("text-anchor", "end"));
    }
    axes = axes.add(line(x0, y1, x1, y1, MUTED)).add(
        text(0.0, 0.0, "登録数（件）")
            .set("text-anchor", "middle")
            .set(
                "transform",
                format!("translate(18 {}) rotate(-90)", px((y0 + y1) / 2.0)),
            ),
    );
    doc = doc.add(axes);
    if years.is_empty() {
        return doc
            .add(empty_note((x0 + x1) / 2.0, (y0 + y1) / 2.0))
            .to_string();
    }

    let band = (x1 - x0) / years.len() as f64;
    let bar_w = (band * 0.55).min(84.0);
    let mut bars = Group::new().set("class", "bars");
    for (i, fy) in years.iter().enumerate() {
        let cx = x0 + band * (i as f64 + 0.5);
        let v = fy.pregnancy_registrations;
        let top = y.at(v as f64);
        let mut label = format!("{}件", count(v));
        if let Some(share) = fy.share {
            label.push_str(&format!("（{}）", percent(Some(share))));
        }
        bars = bars
            .add(
                Rectangle::new()
                    .set("x", px(cx - bar_w / 2.0))
                    .set("y", px(top))
                    .set("width", px(bar_w))
                    .set("height", px(y1 - top))
                    .set("fill", BLUE)
                    .add(Title::new(format!("{} {label}", fy.label))),
            )
            .add(
                text(cx, top - 6.0, &label)
                    .set("text-anchor", "middle")
                    .set("font-size", 11)
                    .set("class", "value"),
            )
            .add(text(cx, y1 + 18.0, &fy.label).set("text-anchor", "middle"));
        if in_progress(fy) {
            bars = bars.add(
                text(cx, y1 + 34.0, &format!("（{}まで）", month_day(fy.through)))
                    .set("text-anchor", "middle")
                    .set("font-size", 11)
                    .set("fill", MUTED),
            );
        }
    }
    doc = doc.add(bars);

    match reach.target {
        Some(t) => {
            let ty = y.at(t as f64);
            doc.add(
                Group::new()
                    .set("class", "target")
                    .add(
                        line(x0, ty, x1, ty, VERMILLION)
                            .set("stroke-width", 2)
                            .set("stroke-dasharray", "6 4"),
                    )
                    // Text in ink: the orange-red is too light for small text.
                    .add(text(x1 + 8.0, ty - 2.0, &format!("目標 {}件", count(t))))
                    .add(
                        text(x1 + 8.0, ty + 14.0, &format!("（出生数の{target_pct}）"))
                            .set("font-size", 11),
                    ),
            )
            .to_string()
        }
        None => doc
            .add(
                text(x1 + 8.0, y0 + 12.0, "目標：未設定")
                    .set("font-size", 11)
                    .set("fill", MUTED),
            )
            .to_string(),
    }
}
