//! `upshift top`: request rate, error rate and p99 per route and version,
//! live, from the differences between two reads of `/admin/stats` (so
//! the numbers are of the last interval, summed over every node).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use http::Method;
use serde_json::Value;
use upshift_model::metrics::VersionStats;

use crate::cli::AdminArgs;
use crate::cli::admin_client::AdminClient;

/// Options of `upshift top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Seconds between two redraws.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// A series: route, service and version.
type Series = (String, String, String);

/// `upshift top`: redraws until Ctrl-C.
pub async fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(&args.admin.admin, &args.admin.token);
    let interval = Duration::from_secs_f64(args.interval.max(0.1));
    let mut last = (Instant::now(), read(&client).await?);
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
        let now = (Instant::now(), read(&client).await?);
        let seconds = now.0.duration_since(last.0).as_secs_f64();
        print!(
            "\x1b[2J\x1b[H{}",
            table(&last.1, &now.1, seconds, &args.admin.admin)
        );
        std::io::stdout().flush()?;
        last = now;
    }
}

/// The counters of every series.
async fn read(client: &AdminClient) -> anyhow::Result<BTreeMap<Series, VersionStats>> {
    let response = client.send(Method::GET, "/admin/stats", None).await?;
    if !response.status.is_success() {
        anyhow::bail!(
            "cannot read /admin/stats ({}): {}",
            response.status,
            response.pretty_body()
        );
    }
    let body: Value = serde_json::from_slice(&response.body)?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Ok(body["series"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let counters = s["counters"].as_object().into_iter().flatten();
            let stats = VersionStats::from_fields(
                counters.map(|(field, n)| (field.as_str(), n.as_u64().unwrap_or(0))),
            );
            (
                (text(&s["route"]), text(&s["service"]), text(&s["version"])),
                stats,
            )
        })
        .collect())
}

/// What changed from `before` to `after` over `seconds`, as a table.
fn table(
    before: &BTreeMap<Series, VersionStats>,
    after: &BTreeMap<Series, VersionStats>,
    seconds: f64,
    admin: &str,
) -> String {
    let mut out = format!(
        "upshift top  {admin}  over the last {seconds:.1} s\n\n\
         {:<20} {:<28} {:>9} {:>8} {:>9}\n",
        "ROUTE", "SERVICE@VERSION", "REQ/S", "ERR%", "P99"
    );
    for (series, now) in after {
        let then = before.get(series).cloned().unwrap_or_default();
        let delta = since(&then, now);
        let (route, service, version) = series;
        let rate = delta.requests as f64 / seconds.max(f64::EPSILON);
        let errors = delta
            .error_rate()
            .map_or("-".to_owned(), |r| format!("{:.1}", r * 100.0));
        let p99 = match delta.quantile_ms(0.99) {
            None => "-".to_owned(),
            Some(u32::MAX) => "slow".to_owned(),
            Some(ms) => format!("<={ms}ms"),
        };
        out.push_str(&format!(
            "{route:<20} {:<28} {rate:>9.1} {errors:>8} {p99:>9}\n",
            format!("{service}@{version}")
        ));
    }
    out
}

/// The counts added from `then` to `now`.
fn since(then: &VersionStats, now: &VersionStats) -> VersionStats {
    let before: BTreeMap<&str, u64> = then.fields().into_iter().collect();
    VersionStats::from_fields(now.fields().into_iter().map(|(field, n)| {
        (
            field,
            n.saturating_sub(before.get(field).copied().unwrap_or(0)),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_the_interval_not_the_totals() {
        let series = ("r".to_owned(), "s".to_owned(), "v2".to_owned());
        let then = VersionStats::from_fields([("requests", 100), ("status_5xx", 50)]);
        let now = VersionStats::from_fields([
            ("requests", 300),
            ("status_2xx", 190),
            ("status_5xx", 60),
            ("latency_bucket_0", 200),
        ]);
        let shown = table(
            &BTreeMap::from([(series.clone(), then)]),
            &BTreeMap::from([(series, now)]),
            2.0,
            "http://admin",
        );
        let row = shown.lines().find(|l| l.starts_with("r ")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells, ["r", "s@v2", "100.0", "5.0", "<=5ms"]);
    }
}
