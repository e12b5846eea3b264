//! `nida report`: the key figures of a period from the call records in the
//! store, per queue and per hour or day (offered, answered, abandoned,
//! service level, average speed of answer, average handle time,
//! satisfaction), and each agent's ratings; as CSV for spreadsheets or as
//! a self-contained HTML page with plots.

use crate::cli::CliError;
use nida_store::kpi::{self, AgentRatings, Bucket, Kpi};
use nida_store::{CallRecord, Query, Store};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// Unix seconds, or a `YYYY-MM-DD` day (its start, UTC).
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse()
        .ok()
        .or_else(|| crate::clock::day_number(s).map(|d| d * 86_400))
}

/// What to report.
pub struct ReportArgs {
    /// From (inclusive).
    pub from: String,
    /// To (exclusive).
    pub to: String,
    /// One queue only.
    pub queue: Option<String>,
    /// `csv` or `html`.
    pub format: String,
    /// `hour` or `day`.
    pub by: String,
}

/// Reads the records of the data folder and renders the report.
pub fn run(
    data_dir: &Path,
    names: &BTreeMap<u32, String>,
    a: &ReportArgs,
) -> Result<String, CliError> {
    let time = |option, value: &String| {
        parse_time(value).ok_or_else(|| CliError::Option {
            option,
            value: value.clone(),
            hint: "use YYYY-MM-DD or Unix seconds",
        })
    };
    let from = time("--from", &a.from)?;
    let to = time("--to", &a.to)?;
    if to <= from {
        return Err(CliError::Conflict("--to must be after --from".into()));
    }
    let bucket = match a.by.as_str() {
        "hour" => Bucket::Hour,
        "day" => Bucket::Day,
        other => {
            return Err(CliError::Option {
                option: "--by",
                value: other.into(),
                hint: "use hour or day",
            })
        }
    };
    let db = nida_store::db_path(data_dir);
    if !db.exists() {
        return Err(CliError::no_database(db));
    }
    let store = Store::open(&db)?;
    let records = store.calls(&Query {
        from: Some(from),
        to: Some(to),
        queue: a.queue.clone(),
        limit: None,
    })?;
    match a.format.as_str() {
        "csv" => {
            let mut out = csv(&records, bucket, names);
            out.push_str(&wrapup_csv(
                &store.wrapup_counts(from, to)?,
                a.queue.as_deref(),
            ));
            Ok(out)
        }
        "html" => Ok(html(&records, bucket, names, &a.from, &a.to)),
        other => Err(CliError::Option {
            option: "--format",
            value: other.into(),
            hint: "use csv or html",
        }),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.1}"))
}

/// ISO 8601 (UTC) of a period's start.
fn stamp(unix: i64, bucket: Bucket) -> String {
    let day = crate::clock::civil_date(unix.max(0) as u64);
    match bucket {
        Bucket::Day => day,
        Bucket::Hour => format!("{day}T{:02}:00Z", unix.rem_euclid(86_400) / 3600),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Two tables: figures per queue and period, then ratings per agent.
pub fn csv(records: &[CallRecord], bucket: Bucket, names: &BTreeMap<u32, String>) -> String {
    let mut out = String::from(
        "queue,period,offered,answered,abandoned,abandon_rate_percent,service_level_percent,\
         asa_seconds,aht_seconds,satisfaction,rated\n",
    );
    for k in kpi::by_queue(records, bucket) {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&k.queue),
            stamp(k.start, bucket),
            k.offered,
            k.answered,
            k.abandoned,
            opt(k.abandon_rate()),
            opt(k.service_level()),
            opt(k.asa()),
            opt(k.aht()),
            opt(k.satisfaction()),
            k.rated
        );
    }
    out.push_str("\nagent,name,answered,rated,average_rating,low_ratings,r1,r2,r3,r4,r5\n");
    for a in kpi::agent_ratings(records) {
        let c = a.counts;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            a.agent,
            csv_field(names.get(&a.agent).map_or("", String::as_str)),
            a.answered,
            a.rated,
            opt(a.average),
            a.low,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4]
        );
    }
    out.push_str(
        "\nflow,calls,contained,containment_percent,self_served,hung_up,queued,voicemail,\
         errors,lookups_served,lookups_failed,mean_ivr_seconds,top_exits\n",
    );
    for k in kpi::ivr_by_flow(records, 5) {
        let exits: Vec<String> = k.exits.iter().map(|(e, n)| format!("{e} {n}")).collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&k.flow),
            k.calls,
            k.contained,
            opt(k.containment()),
            k.self_served,
            k.hung_up,
            k.queued,
            k.voicemail,
            k.errors,
            k.lookups_served,
            k.lookups_failed,
            opt(k.mean_seconds()),
            csv_field(&exits.join("; "))
        );
    }
    out
}

/// The wrap-up codes given, per queue, code and agent.
pub fn wrapup_csv(counts: &[nida_store::WrapupCount], queue: Option<&str>) -> String {
    let mut out = String::from("\nqueue,wrapup_code,agent,count\n");
    for c in counts.iter().filter(|c| queue.is_none_or(|q| q == c.queue)) {
        let _ = writeln!(
            out,
            "{},{},{},{}",
            csv_field(&c.queue),
            csv_field(&c.code),
            c.agent,
            c.count
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Bars of offered, answered and abandoned per period, and the service
/// level as a line (0 to 100 %).
fn plot(rows: &[&Kpi], bucket: Bucket) -> String {
    let (w, h, pad) = (720.0, 200.0, 30.0);
    let max = rows.iter().map(|k| k.offered).max().unwrap_or(1).max(1) as f64;
    let step = (w - 2.0 * pad) / rows.len().max(1) as f64;
    let bar = (step / 4.0).max(1.0);
    let mut svg = format!(
        "<svg class=\"plot\" viewBox=\"0 0 {w} {}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">",
        h + 40.0
    );
    let _ = write!(
        svg,
        "<line x1=\"{pad}\" y1=\"{h}\" x2=\"{}\" y2=\"{h}\" stroke=\"#999\"/>",
        w - pad
    );
    let mut line = String::new();
    for (i, k) in rows.iter().enumerate() {
        let x = pad + i as f64 * step;
        for (j, (v, color, label)) in [
            (k.offered, "#90a4ae", "offered"),
            (k.answered, "#43a047", "answered"),
            (k.abandoned, "#e53935", "abandoned"),
        ]
        .into_iter()
        .enumerate()
        {
            let bh = v as f64 / max * (h - 10.0);
            let _ = write!(
                svg,
                "<rect class=\"{label}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{} {label} {v}</title></rect>",
                x + j as f64 * bar,
                h - bh,
                stamp(k.start, bucket)
            );
        }
        if let Some(sl) = k.service_level() {
            let _ = write!(
                line,
                "{:.1},{:.1} ",
                x + 1.5 * bar,
                h - sl / 100.0 * (h - 10.0)
            );
        }
        if rows.len() <= 31 || i % (rows.len() / 24 + 1) == 0 {
            let label = match bucket {
                Bucket::Hour => format!("{:02}h", k.start.rem_euclid(86_400) / 3600),
                Bucket::Day => stamp(k.start, bucket)[5..].to_string(),
            };
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"10\">{label}</text>",
                h + 14.0
            );
        }
    }
    if !line.is_empty() {
        let _ = write!(
            svg,
            "<polyline class=\"service-level\" points=\"{}\" fill=\"none\" stroke=\"#1e88e5\" stroke-width=\"2\"/>",
            line.trim_end()
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Rating counts per agent as stacked horizontal bars.
fn rating_plot(agents: &[AgentRatings], names: &BTreeMap<u32, String>) -> String {
    let colors = ["#c62828", "#ef6c00", "#fdd835", "#7cb342", "#2e7d32"];
    let row = 22.0;
    let max = agents.iter().map(|a| a.rated).max().unwrap_or(1).max(1) as f64;
    let mut svg = format!(
        "<svg class=\"plot ratings\" viewBox=\"0 0 720 {}\" xmlns=\"http://www.w3.org/2000/svg\">",
        row * agents.len() as f64 + 10.0
    );
    for (i, a) in agents.iter().enumerate() {
        let y = i as f64 * row + 5.0;
        let name = names
            .get(&a.agent)
            .cloned()
            .unwrap_or_else(|| a.agent.to_string());
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            y + 13.0,
            esc(&name)
        );
        let mut x = 160.0;
        for (r, n) in a.counts.iter().enumerate() {
            let bw = *n as f64 / max * 520.0;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"16\" fill=\"{}\"><title>{} × {}</title></rect>",
                colors[r],
                n,
                r + 1
            );
            x += bw;
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A self-contained page: per queue a plot and a table, then the agents.
pub fn html(
    records: &[CallRecord],
    bucket: Bucket,
    names: &BTreeMap<u32, String>,
    from: &str,
    to: &str,
) -> String {
    let kpis = kpi::by_queue(records, bucket);
    let mut by_queue: BTreeMap<&str, Vec<&Kpi>> = BTreeMap::new();
    for k in &kpis {
        by_queue.entry(k.queue.as_str()).or_default().push(k);
    }
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>nida report {f} to {t}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}\
         td,th{{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:end}}th:first-child,td:first-child{{text-align:start}}\
         .plot{{width:100%;max-width:60rem}}</style></head><body>\
         <h1>nida report</h1><p>From {f} to {t} (UTC), {n} calls. Service level: answered within the queue's \
         threshold over answered plus abandoned. Handle time: time with the agent. Satisfaction: mean survey rating, 1 to 5.</p>",
        f = esc(from),
        t = esc(to),
        n = records.len()
    );
    if by_queue.is_empty() {
        out.push_str("<p>No calls in this period.</p>");
    }
    for (queue, rows) in &by_queue {
        let _ = write!(
            out,
            "<section class=\"queue\" data-queue=\"{q}\"><h2>{q}</h2>{}<table><thead><tr><th>period</th><th>offered</th>\
             <th>answered</th><th>abandoned</th><th>service level %</th><th>ASA s</th><th>AHT s</th>\
             <th>satisfaction</th></tr></thead><tbody>",
            plot(rows, bucket),
            q = esc(queue)
        );
        for k in rows {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                stamp(k.start, bucket),
                k.offered,
                k.answered,
                k.abandoned,
                opt(k.service_level()),
                opt(k.asa()),
                opt(k.aht()),
                opt(k.satisfaction())
            );
        }
        out.push_str("</tbody></table></section>");
    }
    let agents = kpi::agent_ratings(records);
    if !agents.is_empty() {
        let _ = write!(
            out,
            "<section class=\"agents\"><h2>Agents' ratings</h2>{}<table><thead><tr><th>agent</th><th>answered</th>\
             <th>rated</th><th>average</th><th>low (1-2)</th></tr></thead><tbody>",
            rating_plot(&agents, names)
        );
        for a in &agents {
            let name = names
                .get(&a.agent)
                .cloned()
                .unwrap_or_else(|| a.agent.to_string());
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&name),
                a.answered,
                a.rated,
                opt(a.average),
                a.low
            );
        }
        out.push_str("</tbody></table></section>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        queue: &str,
        at: i64,
        wait: Option<f64>,
        outcome: &str,
        rating: Option<u8>,
    ) -> CallRecord {
        CallRecord {
            queue: queue.into(),
            queued_at: Some(at),
            ended_at: at + 60,
            outcome: outcome.into(),
            agent: wait.map(|_| 4),
            wait_seconds: wait,
            talk_seconds: wait.map(|_| 90.0),
            service_level_seconds: 20,
            rating,
            ..CallRecord::default()
        }
    }

    #[test]
    fn wrapup_codes_are_listed_per_queue_code_and_agent() {
        let c = |queue: &str, code: &str, agent, count| nida_store::WrapupCount {
            agent,
            queue: queue.into(),
            code: code.into(),
            count,
        };
        let counts = [
            c("visa", "needs follow-up, urgent", 4, 2),
            c("police", "complaint opened", 7, 1),
        ];
        let out = wrapup_csv(&counts, None);
        assert!(
            out.contains("visa,\"needs follow-up, urgent\",4,2\n"),
            "{out}"
        );
        assert!(out.contains("police,complaint opened,7,1\n"), "{out}");
        assert!(!wrapup_csv(&counts, Some("visa")).contains("police"));
    }

    #[test]
    fn times_are_unix_seconds_or_days() {
        assert_eq!(parse_time("1795305600"), Some(1_795_305_600));
        assert_eq!(parse_time("2026-11-22"), Some(1_795_305_600));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn csv_has_one_line_per_queue_and_period_then_the_agents() {
        let d = 1_795_305_600; // 2026-11-22
        let records = vec![
            rec("visa", d + 3_600, Some(5.0), "answered", Some(5)),
            rec("visa", d + 3_700, Some(45.0), "answered", Some(2)),
            rec("visa", d + 3_800, None, "abandoned", None),
            rec("police, 901", d + 7_200, Some(1.0), "answered", None),
        ];
        let names = BTreeMap::from([(4, "Mariam".to_string())]);
        let out = csv(&records, Bucket::Hour, &names);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[1],
            "\"police, 901\",2026-11-22T02:00Z,1,1,0,0.0,100.0,1.0,90.0,,0"
        );
        assert_eq!(
            lines[2],
            "visa,2026-11-22T01:00Z,3,2,1,33.3,33.3,25.0,90.0,3.5,2"
        );
        assert_eq!(lines[3], "");
        assert_eq!(lines[5], "4,Mariam,3,2,3.5,1,0,1,0,0,1");
        let days = csv(&records, Bucket::Day, &names);
        assert!(days.contains("visa,2026-11-22,3,2,1,"), "{days}");
        // A call served by the IVR alone: in the flows' table only.
        let mut served = rec("", d + 4_000, None, "ivr", None);
        served.queued_at = None;
        served.ivr = Some(nida_store::IvrTrail {
            flow: "main".into(),
            end: nida_store::IvrEnd::SelfServed,
            exit: "status/said".into(),
            seconds: 42.0,
            ..Default::default()
        });
        let mut asked = rec("visa", d + 4_100, Some(3.0), "answered", None);
        asked.ivr = Some(nida_store::IvrTrail {
            flow: "main".into(),
            end: nida_store::IvrEnd::Queued,
            exit: "main/agent".into(),
            seconds: 18.0,
            ..Default::default()
        });
        let out = csv(&[served, asked], Bucket::Day, &names);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[1], "visa,2026-11-22,1,1,0,0.0,100.0,3.0,90.0,,0",
            "{out}"
        );
        assert_eq!(
            lines.last().copied(),
            Some("main,2,1,50.0,1,0,1,0,0,0,0,30.0,status/said 1"),
            "{out}"
        );
    }

    #[test]
    fn html_has_a_plot_and_a_table_per_queue() {
        let d = 1_795_305_600;
        let records = vec![
            rec("visa", d + 3_600, Some(5.0), "answered", Some(4)),
            rec("visa", d + 7_200, None, "abandoned", None),
        ];
        let page = html(
            &records,
            Bucket::Hour,
            &BTreeMap::new(),
            "2026-11-22",
            "2026-11-23",
        );
        assert_eq!(page.matches("<section class=\"queue\"").count(), 1);
        assert_eq!(page.matches("<rect class=\"answered\"").count(), 2);
        assert!(page.contains("class=\"service-level\""), "{page}");
        assert!(
            page.contains("<td>2026-11-22T02:00Z</td><td>1</td><td>0</td><td>1</td><td>0.0</td>")
        );
        assert!(page.contains("Agents' ratings"));
        let empty = html(&[], Bucket::Day, &BTreeMap::new(), "a", "b");
        assert!(empty.contains("No calls in this period."));
    }
}
