//! `quire export` and the admins' `GET /admin/export.zip`: every live page as a Markdown file
//! with a front-matter block (title, author, created, updated) and as a static HTML page from
//! its stored HTML, in one zip, with links between pages rewritten to relative file paths.
//!
//! The zip holds `pages/NAME.md` and `html/NAME.html`, where NAME is the title with the
//! characters no file name may hold (`/ \ : * ? " < > |`, `%` and control characters) written
//! as `%XX`. Wiki links (`[[Title]]`, `[[Title|label]]`) outside code become `[label](NAME.md)`;
//! in the HTML, `href="/wiki/…"` becomes `href="NAME.html"`.

use std::io::Write;

use anyhow::Context;

use crate::db::Db;
use crate::models::dump::{self, ExportPage};
use crate::models::page::FORMAT_HTML;
use crate::urls;

/// The file name (without extension) a page is exported under.
pub fn file_stem(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' | '%') {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The relative link from one exported file to the page `title`'s file with `extension`.
fn link_to(title: &str, extension: &str) -> String {
    format!("{}.{extension}", urls::segment(&file_stem(title)))
}

/// A code fence opening or closing a block: its character and length.
fn fence(line: &str) -> Option<(char, usize)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let c = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = trimmed.chars().take_while(|x| *x == c).count();
    (n >= 3).then_some((c, n))
}

/// Markdown with its wiki links rewritten to relative `.md` links; code is left as it is.
pub fn rewrite_links(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut open: Option<(char, usize)> = None;
    for line in markdown.split_inclusive('\n') {
        match (open, fence(line)) {
            (Some((c, n)), Some((d, m))) if c == d && m >= n => {
                open = None;
                out.push_str(line);
            }
            (Some(_), _) => out.push_str(line),
            (None, Some(found)) => {
                open = Some(found);
                out.push_str(line);
            }
            (None, None) => rewrite_line(line, &mut out),
        }
    }
    out
}

fn rewrite_line(line: &str, out: &mut String) {
    let mut rest = line;
    while !rest.is_empty() {
        let tick = rest.find('`');
        let link = rest.find("[[");
        match (tick, link) {
            (Some(t), l) if l.is_none_or(|l| t < l) => {
                // A code span: its run of backticks up to the next run of the same length.
                out.push_str(&rest[..t]);
                let run = rest[t..].chars().take_while(|c| *c == '`').count();
                let after = &rest[t + run..];
                let closing = "`".repeat(run);
                let end = after.find(&closing).map_or(rest.len(), |e| t + run + e + run);
                out.push_str(&rest[t..end]);
                rest = &rest[end..];
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                let inner = &rest[l + 2..];
                match inner.find("]]") {
                    Some(end) if !inner[..end].contains(['[', '\n']) => {
                        let body = &inner[..end];
                        let (title, label) = match body.split_once('|') {
                            Some((title, label)) => (title.trim(), label.trim()),
                            None => (body.trim(), body.trim()),
                        };
                        out.push_str(&format!("[{label}]({})", link_to(title, "md")));
                        rest = &inner[end + 2..];
                    }
                    _ => {
                        out.push_str("[[");
                        rest = inner;
                    }
                }
            }
            _ => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
}

/// Stored HTML with its links to wiki pages rewritten to the exported `.html` files.
pub fn rewrite_html_links(html: &str) -> String {
    const WIKI: &str = "href=\"/wiki/";
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(WIKI) {
        out.push_str(&rest[..at]);
        let after = &rest[at + WIKI.len()..];
        let Some(end) = after.find('"') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let title = percent_encoding::percent_decode_str(&after[..end]).decode_utf8_lossy();
        out.push_str(&format!("href=\"{}\"", link_to(&title, "html")));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn markdown_file(page: &ExportPage) -> String {
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    let author = page.author.as_deref().map_or_else(|| "null".to_owned(), quoted);
    let body = if page.format == FORMAT_HTML { page.content.clone() } else { rewrite_links(&page.content) };
    format!(
        "---\ntitle: {}\nauthor: {author}\ncreated: {}\nupdated: {}\nformat: {}\n---\n\n{body}",
        quoted(&page.title),
        rfc3339(page.created_at),
        rfc3339(page.updated_at),
        quoted(&page.format),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html_file(page: &ExportPage) -> String {
    let title = escape(&page.title);
    // The stored HTML went through the sanitizer when it was saved.
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{}\n</body></html>\n",
        rewrite_html_links(&page.html)
    )
}

/// The export of every live page, as the bytes of a zip.
pub async fn export(db: &Db) -> anyhow::Result<Vec<u8>> {
    let txn = dump::snapshot(&db.read).await.context("cannot start the snapshot transaction")?;
    let pages = dump::pages_for_export(&txn).await.context("cannot read the pages")?;
    txn.commit().await.context("cannot end the snapshot transaction")?;
    tokio::task::spawn_blocking(move || zip_pages(&pages)).await.context("the export writer failed")?
}

fn zip_pages(pages: &[ExportPage]) -> anyhow::Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for page in pages {
        let stem = file_stem(&page.title);
        zip.start_file(format!("pages/{stem}.md"), options)?;
        zip.write_all(markdown_file(page).as_bytes())?;
        zip.start_file(format!("html/{stem}.html"), options)?;
        zip.write_all(html_file(page).as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiki_links_become_relative_markdown_links_outside_code() {
        let md = "See [[Second page]] and [[Guides/Install|the guide]].\nCode: `[[Not A Link]]`\n\n```\n[[Fenced]]\n```\n[[Last]]";
        assert_eq!(
            rewrite_links(md),
            "See [Second page](Second%20page.md) and [the guide](Guides%252FInstall.md).\nCode: `[[Not A Link]]`\n\n```\n[[Fenced]]\n```\n[Last](Last.md)"
        );
    }

    #[test]
    fn file_names_hold_no_separator_or_reserved_character() {
        assert_eq!(file_stem("Guides/Install"), "Guides%2FInstall");
        assert_eq!(file_stem("100% a:b"), "100%25 a%3Ab");
        assert_eq!(file_stem("Zoé’s notes"), "Zoé’s notes");
    }

    #[test]
    fn html_links_to_pages_point_at_the_exported_files() {
        let html = r#"<a href="/wiki/Second%20page">x</a> <a href="https://example.com/">y</a>"#;
        assert_eq!(
            rewrite_html_links(html),
            r#"<a href="Second%20page.html">x</a> <a href="https://example.com/">y</a>"#
        );
    }
}
