//! The attacks of issue 15 on limits and text, run against a live Quire with its default limits:
//! bursts of wrong passwords and registrations, a flood of logins with random names while the
//! real member logs in, an account locked by strangers, look-alike names, a feed broken by one
//! character, 1 MiB of CJK and emoji, racing avatar uploads. Prints one line per figure.
//!
//!   cargo run --example bench-limits -- http://127.0.0.1:3710 DATA_DIR/avatars
//!
//! Every request is bounded (30 s timeout) and the whole run sends a fixed number of them, all
//! to loopback addresses (127.0.0.10–127.0.0.90, so each attack has its own client address).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;

const PASSWORD: &str = "correct horse battery staple";

#[derive(Clone)]
struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(base: &str, ip: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .local_address(ip.parse::<std::net::IpAddr>()?)
            .build()?;
        Ok(Self { base: base.to_owned(), http })
    }

    async fn token(&self, path: &str) -> anyhow::Result<String> {
        let html = self.http.get(format!("{}{path}", self.base)).send().await?.text().await?;
        let marker = r#"name="csrf_token" value=""#;
        let at = html.find(marker).context("no CSRF token")? + marker.len();
        Ok(html[at..at + html[at..].find('"').context("no CSRF token end")?].to_owned())
    }

    async fn post(
        &self,
        path: &str,
        token: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf_token", token));
        Ok(self.http.post(format!("{}{path}", self.base)).form(&fields).send().await?)
    }

    async fn register(&self, name: &str) -> anyhow::Result<StatusCode> {
        let token = self.token("/register").await?;
        let form = [("username", name), ("password", PASSWORD), ("confirm_password", PASSWORD)];
        Ok(self.post("/register", &token, &form).await?.status())
    }

    async fn login(&self, name: &str, password: &str) -> anyhow::Result<StatusCode> {
        let token = self.token("/login").await?;
        Ok(self.post("/login", &token, &[("username", name), ("password", password)]).await?.status())
    }
}

/// Statuses of `forms` posted at once to `path` by `client` (one token fetched first).
async fn burst(
    client: &Client,
    path: &str,
    forms: Vec<Vec<(String, String)>>,
) -> anyhow::Result<Vec<StatusCode>> {
    let token = client.token(path).await?;
    let start = Arc::new(tokio::sync::Barrier::new(forms.len()));
    let mut tasks = Vec::new();
    for form in forms {
        let (client, token, start, path) = (client.clone(), token.clone(), start.clone(), path.to_owned());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            client.post(&path, &token, &fields).await.map(|r| r.status())
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await??);
    }
    Ok(statuses)
}

fn tally(statuses: &[StatusCode]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for status in statuses {
        *counts.entry(status.as_u16()).or_insert(0) += 1;
    }
    counts.iter().map(|(status, n)| format!("{n}×{status}")).collect::<Vec<_>>().join(" ")
}

fn png(width: u32) -> anyhow::Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(width, 8).write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(base), Some(avatar_dir)) = (args.get(1), args.get(2)) else {
        bail!("usage: bench-limits BASE_URL AVATAR_DIR");
    };
    let at = |ip: &str| Client::new(base, ip);

    // 1. Forty wrong passwords at once for one account from one address (limit 10 per 5 min).
    at("127.0.0.10")?.register("target").await?;
    let forms = (0..40)
        .map(|i| vec![("username".into(), "target".into()), ("password".into(), format!("guess {i}"))])
        .collect();
    let started = Instant::now();
    let statuses = burst(&at("127.0.0.11")?, "/login", forms).await?;
    println!(
        "login burst: 40 parallel wrong passwords → {} ({} verified) in {:.2} s",
        tally(&statuses),
        statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count(),
        started.elapsed().as_secs_f64()
    );

    // 2. Seventy registrations at once from one address (limit 50 per hour).
    let forms = (0..70)
        .map(|i| {
            vec![
                ("username".into(), format!("burst{i}")),
                ("password".into(), PASSWORD.into()),
                ("confirm_password".into(), PASSWORD.into()),
            ]
        })
        .collect();
    let started = Instant::now();
    let statuses = burst(&at("127.0.0.12")?, "/register", forms).await?;
    println!(
        "registration burst: 70 parallel → {} ({} accounts) in {:.2} s",
        tally(&statuses),
        statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count(),
        started.elapsed().as_secs_f64()
    );

    // 3. A hundred logins with random names at once, and the real member logging in meanwhile.
    let member = at("127.0.0.14")?;
    let member_token = member.token("/login").await?;
    let forms = (0..100)
        .map(|i| vec![("username".into(), format!("nobody{i}")), ("password".into(), "guess".into())])
        .collect();
    let flooder = at("127.0.0.13")?;
    let started = Instant::now();
    let flood = tokio::spawn(async move { burst(&flooder, "/login", forms).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let real_started = Instant::now();
    let real =
        member.post("/login", &member_token, &[("username", "target"), ("password", PASSWORD)]).await?;
    let real_time = real_started.elapsed();
    let statuses = flood.await??;
    println!(
        "random-name flood: 100 parallel → {} in {:.2} s; the real login meanwhile: {} in {:.2} s",
        tally(&statuses),
        started.elapsed().as_secs_f64(),
        real.status().as_u16(),
        real_time.as_secs_f64()
    );

    // 4. Strangers fail 55 times on one account from 55 addresses; then the owner logs in.
    let owner = at("127.0.0.15")?;
    owner.register("owner").await?;
    let first = owner.login("owner", PASSWORD).await?;
    let token = owner.token("/logout").await?;
    owner.post("/logout", &token, &[]).await?;
    for batch in 0..11 {
        let mut tasks = Vec::new();
        for i in 0..5 {
            let stranger = at(&format!("127.0.0.{}", 20 + batch * 5 + i))?;
            tasks.push(tokio::spawn(async move { stranger.login("owner", "guess").await }));
        }
        for task in tasks {
            task.await??;
        }
    }
    let new_browser = at("127.0.0.16")?.login("owner", PASSWORD).await?;
    let own_browser = owner.login("owner", PASSWORD).await?;
    println!(
        "account lockout: after 55 strangers' failures, the owner's own browser → {} (first login {}), a new browser → {}",
        own_browser.as_u16(),
        first.as_u16(),
        new_browser.as_u16()
    );

    // 5. Look-alikes of a member's name.
    let names = at("127.0.0.17")?;
    names.register("admin").await?;
    let mut results = Vec::new();
    for (label, name) in [
        ("+U+200B", "admin\u{200B}"),
        ("+BOM", "admin\u{FEFF}"),
        ("+U+3164", "admin\u{3164}"),
        ("Cyrillic а", "\u{430}dmin"),
        ("fullwidth Ａ", "\u{FF21}dmin"),
    ] {
        results.push(format!("{label} {}", names.register(name).await?.as_u16()));
    }
    println!("look-alikes of admin: {}", results.join(", "));

    // 6. One character in a summary or a title, then the feed.
    let token = owner.token("/create").await?;
    owner.post("/create", &token, &[("title", "Feed"), ("content", "first")]).await?;
    let editor = owner.http.get(format!("{base}/wiki/Feed/edit")).send().await?.text().await?;
    let marker = r#"name="base_revision" value=""#;
    let at_base = editor.find(marker).context("no base revision")? + marker.len();
    let base_revision = &editor[at_base..at_base + editor[at_base..].find('"').context("no end")?];
    let token = owner.token("/wiki/Feed/edit").await?;
    let edit = owner
        .post(
            "/wiki/Feed/edit",
            &token,
            &[("content", "second"), ("summary", "bell\u{7}"), ("base_revision", base_revision)],
        )
        .await?
        .status();
    let token = owner.token("/create").await?;
    let title = owner.post("/create", &token, &[("title", "Bad\u{FFFF}"), ("content", "x")]).await?.status();
    let feed = reqwest::get(format!("{base}/recent.atom")).await?.text().await?;
    let verdict = match roxmltree::Document::parse(&feed) {
        Ok(_) => "valid XML".to_owned(),
        Err(err) => format!("invalid XML ({err})"),
    };
    println!(
        "feed: summary with U+0007 → {}, title with U+FFFF → {}, /recent.atom → {verdict}",
        edit.as_u16(),
        title.as_u16()
    );

    // 7. A mebibyte of Chinese and of emoji.
    for (label, content) in
        [("Chinese", "中".repeat(1024 * 1024 / 3)), ("emoji", "😀".repeat(1024 * 1024 / 4))]
    {
        let token = owner.token("/create").await?;
        let started = Instant::now();
        let status =
            owner.post("/create", &token, &[("title", label), ("content", &content)]).await?.status();
        println!(
            "1 MiB of {label} ({} bytes, {} on the wire): {} in {:.2} s",
            content.len(),
            serde_urlencoded::to_string([("content", &content)])?.len(),
            status.as_u16(),
            started.elapsed().as_secs_f64()
        );
    }

    // 8. Eight avatar uploads at once by one member.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let owner = owner.clone();
        let bytes = png(8 + i)?;
        tasks.push(tokio::spawn(async move {
            let token = owner.token("/profile").await?;
            let form = reqwest::multipart::Form::new()
                .text("csrf_token", token)
                .part("avatar", reqwest::multipart::Part::bytes(bytes).file_name("me.png"));
            anyhow::Ok(
                owner.http.post(format!("{}/profile", owner.base)).multipart(form).send().await?.status(),
            )
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await??);
    }
    let files = std::fs::read_dir(avatar_dir)?.count();
    println!(
        "avatar race: 8 parallel uploads → {}; files left in the avatar dir: {files} (1 is right)",
        tally(&statuses)
    );
    Ok(())
}
