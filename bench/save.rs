//! Page saves under load: EDITORS members at once, each editing a page of their own in a loop
//! (GET the editor for the current base revision, POST a new text), for SECONDS. Prints saves/s,
//! p50/p99 of the POSTs and the number of answers that were not a successful save.
//!
//!     cargo run --release --example bench-save -- BASE_URL EDITORS SECONDS
//!
//! The pages "Page 000001"… must exist and the user bench0000 / bench-password too (bench-seed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

fn field(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let at = html.find(&marker)? + marker.len();
    Some(html[at..at + html[at..].find('"')?].to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let editors: usize = args.get(2).map_or(Ok(32), |s| s.parse())?;
    let seconds: u64 = args.get(3).map_or(Ok(10), |s| s.parse())?;

    let client =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
    let login = client.get(format!("{base}/login")).send().await?.text().await?;
    let token = field(&login, "csrf_token").ok_or_else(|| anyhow::anyhow!("no login form"))?;
    let response = client
        .post(format!("{base}/login"))
        .form(&[("username", "bench0000"), ("password", "bench-password"), ("csrf_token", &token)])
        .send()
        .await?;
    anyhow::ensure!(response.status().as_u16() == 303, "login failed: {}", response.status());

    let latencies = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(0u64));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for editor in 0..editors {
        let (client, base, latencies, failures) =
            (client.clone(), base.clone(), latencies.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let path = format!("{base}/wiki/Page%20{:06}/edit", editor + 1);
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let Ok(form) = client.get(&path).send().await else { continue };
                let html = form.text().await.unwrap_or_default();
                let (Some(base_revision), Some(token)) =
                    (field(&html, "base_revision"), field(&html, "csrf_token"))
                else {
                    *failures.lock().await += 1;
                    continue;
                };
                let content = format!(
                    "# Edited\n\nSave number {n} by editor {editor}.\n\n{}",
                    "Some text. ".repeat(200)
                );
                let sent = Instant::now();
                let status = client
                    .post(&path)
                    .form(&[
                        ("content", content.as_str()),
                        ("summary", "bench"),
                        ("base_revision", &base_revision),
                        ("csrf_token", &token),
                    ])
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                let took = sent.elapsed();
                match status {
                    Ok(303) => latencies.lock().await.push(took),
                    _ => *failures.lock().await += 1,
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    let pct = |p: f64| {
        latencies.get(((latencies.len() as f64 - 1.0) * p) as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "saves/s {:.1} p50_ms {:.2} p99_ms {:.2} saves {} failures {}",
        latencies.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        latencies.len(),
        failures.lock().await
    );
    Ok(())
}
