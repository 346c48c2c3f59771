//! Deterministic dataset for the benchmarks: users, pages of 2–50 KB Markdown with wiki links,
//! headings, lists and code, and a history of revisions per page.
//!
//!     cargo run --release --example bench-seed -- DATABASE_URL PAGES REVISIONS_PER_PAGE USERS
//!
//! Pages are created through the model layer (rendered, linked and indexed exactly as a save
//! would), the last revision of each page is a real conditional save; the earlier revisions are
//! short drafts written in bulk (a million full-size copies would be tens of gigabytes).

use std::time::Instant;

use anyhow::Context;
use quire::db::Db;
use quire::models::page::{self, Edit, NewPage};
use quire::models::{revision, user};
use sea_orm::{ActiveValue::Set, EntityTrait};

/// A small, fast, deterministic generator (xorshift64*): the same seed gives the same wiki.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "wiki",
    "page",
    "server",
    "rust",
    "database",
    "session",
    "revision",
    "history",
    "search",
    "index",
    "quire",
    "markdown",
    "render",
    "cache",
    "latency",
    "throughput",
    "memory",
    "editor",
    "merge",
    "conflict",
    "title",
    "author",
    "member",
    "avatar",
    "upload",
    "secure",
    "cookie",
    "token",
    "query",
    "engine",
    "instance",
    "cluster",
    "backup",
    "restore",
    "deploy",
    "config",
    "network",
    "socket",
    "thread",
    "worker",
    "async",
    "future",
    "stream",
    "buffer",
    "parser",
    "lexer",
    "syntax",
    "highlight",
    "anchor",
    "heading",
    "table",
    "list",
    "quote",
    "link",
    "garden",
    "river",
    "mountain",
    "forest",
    "harbor",
    "lantern",
    "compass",
    "journal",
    "archive",
    "library",
];

pub fn title_of(i: usize) -> String {
    if i == 0 { "Bench_10KB".to_owned() } else { format!("Page {i:06}") }
}

fn sentence(rng: &mut Rng) -> String {
    let n = 6 + rng.below(12);
    let mut words: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect();
    if rng.below(8) == 0 {
        words[rng.below(n)] = "**important**";
    }
    let mut s = words.join(" ");
    s[..1].make_ascii_uppercase();
    s.push('.');
    s
}

/// Markdown of about `target` bytes, linking to other pages of a wiki of `pages`.
fn content(rng: &mut Rng, target: usize, pages: usize) -> String {
    let mut out = String::with_capacity(target + 512);
    let mut section = 1;
    while out.len() < target {
        match rng.below(10) {
            0 => {
                out.push_str(&format!("\n## Section {section}\n\n"));
                section += 1;
            }
            1 => {
                for _ in 0..3 {
                    out.push_str(&format!("- {}\n", sentence(rng)));
                }
                out.push('\n');
            }
            2 if rng.below(3) == 0 => {
                out.push_str("```rust\nfn main() {\n    let total: u64 = (1..=10).sum();\n    println!(\"{total}\");\n}\n```\n\n");
            }
            _ => {
                let mut paragraph = String::new();
                for _ in 0..3 + rng.below(4) {
                    paragraph.push_str(&sentence(rng));
                    paragraph.push(' ');
                }
                if rng.below(2) == 0 {
                    paragraph.push_str(&format!("See [[{}]]. ", title_of(rng.below(pages))));
                }
                out.push_str(paragraph.trim_end());
                out.push_str("\n\n");
            }
        }
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench-seed DATABASE_URL PAGES REVISIONS_PER_PAGE USERS";
    let url = args.get(1).context(usage)?;
    let pages: usize = args.get(2).context(usage)?.parse()?;
    let revisions: usize = args.get(3).context(usage)?.parse::<usize>()?.max(1);
    let users: usize = args.get(4).context(usage)?.parse::<usize>()?.max(1);

    let started = Instant::now();
    let db = Db::connect(url).await?;
    quire::app::migrate(&db).await?;

    // One real hash, shared: every bench user's password is "bench-password".
    let hash = quire::auth::password::hash_blocking(
        &quire::domain::Password::parse("bench-password".into()).map_err(anyhow::Error::msg)?,
    )?;
    let mut ids = Vec::with_capacity(users);
    for i in 0..users {
        let name = quire::domain::Username::parse(&format!("bench{i:04}")).map_err(anyhow::Error::from)?;
        ids.push(user::create(&db.write, &name, &hash, quire::access::Role::Editor).await?.id);
    }

    let mut rng = Rng(0x05EE_D0F9_017E);
    let mut drafts = Vec::new();
    for i in 0..pages {
        let title = title_of(i);
        let size = if i == 0 { 10 * 1024 } else { 2 * 1024 + rng.below(48 * 1024) };
        let text = content(&mut rng, size, pages);
        let author = ids[rng.below(ids.len())];
        let draft = format!("# {title}\n\nA first draft.\n");
        let rendered = quire::render::markdown_page(&draft)?;
        let created = page::create(
            &db.write,
            NewPage {
                title: &title,
                content: &draft,
                format: page::FORMAT_MARKDOWN,
                html: &rendered.html,
                author_id: Some(author),
                links: &[],
            },
        )
        .await?;
        for r in 1..revisions.saturating_sub(1) {
            let body = format!("# {title}\n\nDraft {r}: {}\n", sentence(&mut rng));
            drafts.push(revision::ActiveModel {
                page_id: Set(created.id),
                size: Set(i32::try_from(body.len())?),
                content: Set(body),
                format: Set(page::FORMAT_MARKDOWN.into()),
                summary: Set(format!("draft {r}")),
                author_id: Set(Some(ids[rng.below(ids.len())])),
                created_at: Set(created.created_at + i64::try_from(r)?),
                ..Default::default()
            });
            if drafts.len() >= 2000 {
                revision::Entity::insert_many(std::mem::take(&mut drafts)).exec(&db.write).await?;
            }
        }
        if revisions > 1 {
            let rendered = quire::render::markdown_page(&text)?;
            let saved = page::save(
                &db.write,
                Edit {
                    page_id: created.id,
                    base: created.revision_id.unwrap_or_default(),
                    content: &text,
                    format: page::FORMAT_MARKDOWN,
                    html: &rendered.html,
                    links: &rendered.links,
                    summary: "Written out",
                    author_id: Some(author),
                },
            )
            .await?;
            anyhow::ensure!(
                matches!(saved, page::Saved::Revision(_)),
                "the final save of {title} did not land"
            );
        }
        if (i + 1) % 5000 == 0 {
            eprintln!("{} pages in {:.0} s", i + 1, started.elapsed().as_secs_f64());
        }
    }
    if !drafts.is_empty() {
        revision::Entity::insert_many(drafts).exec(&db.write).await?;
    }
    println!(
        "seeded {pages} pages, {} revisions, {users} users in {:.1} s",
        pages * revisions,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
