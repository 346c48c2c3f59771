//! `quire export`, the admins' `GET /admin/export.zip` and the members' `GET /export.zip`:
//! every page the reader may read as a Markdown file with a front-matter block (title, author,
//! created, updated) and as a static HTML page from its stored HTML, in one zip, with links
//! between pages rewritten to relative file paths.
//!
//! The zip holds `pages/NAME.md` and `html/NAME.html`, where NAME is the title with the
//! characters no file name may hold (`/ \ : * ? " < > |`, `%` and control characters) written
//! as `%XX`, plus `html/index.html` (every page, by title) and `html/style.css` (the wiki's own
//! stylesheet). Wiki links (`[[Title]]`, `[[Title|label]]`) outside code become
//! `[label](NAME.md)`; in the HTML, `href="/wiki/…"` becomes `href="NAME.html"`, and a link to
//! anything the export does not hold (a missing page, another route of the wiki) loses its
//! `href` and is marked `class="missing-page"`, so that nothing in the export points nowhere.
//!
//! Each page's live attachments (their newest version) sit beside its Markdown, in
//! `pages/NAME/FILE` (FILE is the file's name written like NAME). Links to files
//! (`attachment:FILE`, `attachment:Other page/FILE`) become `NAME/FILE` in the Markdown and
//! `../pages/NAME/FILE` in the HTML, where images show; a link to a file the export does not
//! hold keeps its text in the Markdown (it is the author's source) and, in the HTML, loses its
//! `href`/`src` and is marked `class="missing-file"`.
//!
//! The pages are read from one snapshot as a stream and written to a file as they come: an
//! export of any size is made in bounded memory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::db::Db;
use crate::models::dump::{self, ExportFile, ExportPage};
use crate::models::page::FORMAT_HTML;
use crate::render::FileRef;
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

/// The zip entry of the file `name` attached to the page `title`.
fn file_entry(title: &str, name: &str) -> String {
    format!("pages/{}/{}", file_stem(title), file_stem(name))
}

/// The relative link from a page's Markdown (in `pages/`) to the file `name` of the page `title`.
fn link_to_file(title: &str, name: &str) -> String {
    format!("{}/{}", urls::segment(&file_stem(title)), urls::segment(&file_stem(name)))
}

/// The file an attachment link's target names: `NAME` is one of `title`'s, `Page/NAME` one of
/// Page's.
fn file_ref(target: &str, title: &str) -> FileRef {
    let decoded = percent_encoding::percent_decode_str(target).decode_utf8_lossy().into_owned();
    match decoded.rsplit_once('/') {
        Some((page, name)) if !page.trim().is_empty() => (page.trim().to_owned(), name.to_owned()),
        Some((_, name)) => (title.to_owned(), name.to_owned()),
        None => (title.to_owned(), decoded),
    }
}

/// Markdown text (outside code) with its links to exported files (`](attachment:…)` and
/// `](<attachment:…>)`) pointing at the files' relative paths; `file` gives the path of a file
/// the export holds.
fn relink_files(text: &str, title: &str, file: &dyn Fn(&FileRef) -> Option<String>, out: &mut String) {
    const PLAIN: &str = "](attachment:";
    const ANGLED: &str = "](<attachment:";
    let mut rest = text;
    loop {
        let plain = rest.find(PLAIN);
        let angled = rest.find(ANGLED);
        let (at, marker, close) = match (plain, angled) {
            (Some(p), Some(a)) if a < p => (a, ANGLED, '>'),
            (Some(p), _) => (p, PLAIN, ')'),
            (None, Some(a)) => (a, ANGLED, '>'),
            (None, None) => break,
        };
        let start = at + marker.len();
        let end = rest[start..]
            .find(|c: char| c == close || (close == ')' && c.is_whitespace()))
            .map_or(rest.len(), |e| start + e);
        let target = &rest[start..end];
        let found = (!target.is_empty()).then(|| file(&file_ref(target, title))).flatten();
        match found {
            Some(path) if close == '>' => {
                out.push_str(&rest[..at]);
                out.push_str(&format!("](<{path}"));
            }
            Some(path) => {
                out.push_str(&rest[..at]);
                out.push_str(&format!("]({path}"));
            }
            None => out.push_str(&rest[..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
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

/// Markdown with its wiki links rewritten to relative `.md` links; code is left as it is. A
/// link to a page the export does not hold (`exported` says which titles it does) becomes its
/// label, as plain text.
///
/// Links to files of the page `title` or of others become relative links to the exported files
/// that `file` names.
pub fn rewrite_links(
    markdown: &str,
    title: &str,
    exported: &dyn Fn(&str) -> bool,
    file: &dyn Fn(&FileRef) -> Option<String>,
) -> String {
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
            (None, None) => rewrite_line(line, title, exported, file, &mut out),
        }
    }
    out
}

fn rewrite_line(
    line: &str,
    page: &str,
    exported: &dyn Fn(&str) -> bool,
    file: &dyn Fn(&FileRef) -> Option<String>,
    out: &mut String,
) {
    let mut rest = line;
    while !rest.is_empty() {
        let tick = rest.find('`');
        let link = rest.find("[[");
        match (tick, link) {
            (Some(t), l) if l.is_none_or(|l| t < l) => {
                // A code span: its run of backticks up to the next run of the same length.
                relink_files(&rest[..t], page, file, out);
                let run = rest[t..].chars().take_while(|c| *c == '`').count();
                let after = &rest[t + run..];
                let closing = "`".repeat(run);
                let end = after.find(&closing).map_or(rest.len(), |e| t + run + e + run);
                out.push_str(&rest[t..end]);
                rest = &rest[end..];
            }
            (_, Some(l)) => {
                relink_files(&rest[..l], page, file, out);
                let inner = &rest[l + 2..];
                match inner.find("]]") {
                    Some(end) if !inner[..end].contains(['[', '\n']) => {
                        let body = &inner[..end];
                        let (title, label) = match body.split_once('|') {
                            Some((title, label)) => (title.trim(), label.trim()),
                            None => (body.trim(), body.trim()),
                        };
                        if exported(title) {
                            out.push_str(&format!("[{label}]({})", link_to(title, "md")));
                        } else {
                            out.push_str(label);
                        }
                        rest = &inner[end + 2..];
                    }
                    _ => {
                        out.push_str("[[");
                        rest = inner;
                    }
                }
            }
            _ => {
                relink_files(rest, page, file, out);
                rest = "";
            }
        }
    }
}

/// Stored HTML with its links to wiki pages rewritten to the exported `.html` files; a link to
/// a path of the wiki that the export does not hold (`exported` says which titles it does)
/// loses its `href` and is marked missing.
pub fn rewrite_html_links(html: &str, exported: &dyn Fn(&str) -> bool) -> String {
    const HREF: &str = "href=\"/";
    const WIKI: &str = "wiki/";
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(HREF) {
        out.push_str(&rest[..at]);
        let after = &rest[at + HREF.len()..];
        let Some(end) = after.find('"') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let target = &after[..end];
        // `//host/…` is another site, not a path of this one.
        if target.starts_with('/') {
            out.push_str(&rest[at..at + HREF.len() + end + 1]);
            rest = &after[end + 1..];
            continue;
        }
        let title = target
            .strip_prefix(WIKI)
            .map(|encoded| percent_encoding::percent_decode_str(encoded).decode_utf8_lossy())
            .filter(|title| exported(title));
        match title {
            Some(title) => out.push_str(&format!("href=\"{}\"", link_to(&title, "html"))),
            None => out.push_str("class=\"missing-page\" title=\"Not in this export\""),
        }
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

fn markdown_file(
    page: &ExportPage,
    exported: &dyn Fn(&str) -> bool,
    file: &dyn Fn(&FileRef) -> Option<String>,
) -> String {
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    let author = page.author.as_deref().map_or_else(|| "null".to_owned(), quoted);
    let body = if page.format == FORMAT_HTML {
        page.content.clone()
    } else {
        rewrite_links(&page.content, &page.title, exported, file)
    };
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

fn html_document(title: &str, body: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"style.css\"></head>\n<body>\n<main class=\"container\">\
         <section class=\"content\">\n<p><a href=\"index.html\">All pages</a></p>\n<article class=\"wiki-page\">\
         <h1 class=\"page-title\">{title}</h1>\n{body}\n</article></section></main>\n</body></html>\n"
    )
}

fn html_file(
    page: &ExportPage,
    exported: &dyn Fn(&str) -> bool,
    file: &dyn Fn(&FileRef) -> Option<String>,
) -> String {
    // The stored HTML went through the sanitizer when it was saved.
    let from_html = |wanted: &FileRef| file(wanted).map(|path| format!("../pages/{path}"));
    let html = crate::render::relink_attachments(&page.html, &page.title, &from_html);
    let body = format!("<div class=\"page-content\">\n{}\n</div>", rewrite_html_links(&html, exported));
    html_document(&page.title, &body)
}

fn index_file(titles: &std::collections::BTreeSet<String>) -> String {
    let mut list = String::from("<ul class=\"page-list\">\n");
    for title in titles {
        list.push_str(&format!("<li><a href=\"{}\">{}</a></li>\n", link_to(title, "html"), escape(title)));
    }
    list.push_str("</ul>");
    html_document("All pages", &list)
}

pub use crate::models::dump::Reader;

/// Writes the export of every page `reader` may read to `out` (a temporary name, renamed when
/// complete). Returns the pages written and the size of the zip.
pub async fn export_to(db: &Db, reader: Reader, out: &Path) -> anyhow::Result<(usize, u64)> {
    use futures_util::StreamExt;
    let txn = dump::snapshot(&db.read).await.context("cannot start the snapshot transaction")?;
    let titles = dump::titles_for_export(&txn, reader).await.context("cannot read the titles")?;
    let files = dump::files_for_export(&txn, reader).await.context("cannot read the files")?;
    let held: std::collections::HashSet<FileRef> =
        files.iter().map(|f| (f.title.clone(), f.name.clone())).collect();
    let (pages, received) = tokio::sync::mpsc::channel::<Part>(16);
    let target = out.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || write_export(received, titles, held, &target));
    let read = async {
        let mut rows = dump::stream_pages_for_export(&txn, reader).await?;
        while let Some(page) = rows.next().await {
            if pages.send(Part::Page(page?)).await.is_err() {
                // The writer stopped: its error says why.
                return Ok(());
            }
        }
        drop(rows);
        for ExportFile { title, name, blob_hash } in files {
            if pages.send(Part::File(file_entry(&title, &name))).await.is_err() {
                return Ok(());
            }
            let mut seq = 0;
            while let Some(bytes) = crate::models::file::read_chunk(&txn, &blob_hash, seq).await? {
                if pages.send(Part::Bytes(bytes)).await.is_err() {
                    return Ok(());
                }
                seq += 1;
            }
        }
        // Everything was read: the writer may complete the zip.
        let _ = pages.send(Part::Done).await;
        Ok::<_, sea_orm::DbErr>(())
    }
    .await;
    drop(pages);
    let written = writer.await.context("the export writer failed")?;
    read.context("cannot read the pages")?;
    let done = written?;
    txn.commit().await.context("cannot end the snapshot transaction")?;
    Ok(done)
}

/// The export for a download: written to a temporary file in `dir` (so that it never sits whole
/// in memory), opened, and unlinked at once; the open file is read from as the response goes out.
pub async fn to_temporary_file(
    db: &Db,
    reader: Reader,
    dir: &Path,
) -> anyhow::Result<(tokio::fs::File, u64)> {
    let path = dir.join(format!(".export-{}.zip", crate::auth::csrf::random_value()));
    let written = export_to(db, reader, &path).await;
    let opened = match written {
        Ok(_) => {
            tokio::fs::File::open(&path).await.with_context(|| format!("cannot open {}", path.display()))
        }
        Err(err) => Err(err),
    };
    let _ = tokio::fs::remove_file(&path).await;
    let file = opened?;
    let size = file.metadata().await?.len();
    Ok((file, size))
}

/// What the reader sends the zip's writer, in order: every page, then each file's entry name
/// followed by its bytes chunk by chunk, then `Done`.
enum Part {
    Page(ExportPage),
    File(String),
    Bytes(Vec<u8>),
    Done,
}

fn write_export(
    mut pages: tokio::sync::mpsc::Receiver<Part>,
    titles: std::collections::BTreeSet<String>,
    held: std::collections::HashSet<FileRef>,
    out: &Path,
) -> anyhow::Result<(usize, u64)> {
    let file_name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = out.with_file_name(format!(".{file_name}.partial"));
    let result = (|| {
        use zip::write::SimpleFileOptions;
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        // Files are mostly compressed already (images, archives): stored as they are.
        let stored =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true);
        let exported = |title: &str| titles.contains(title);
        let file = |wanted: &FileRef| held.contains(wanted).then(|| link_to_file(&wanted.0, &wanted.1));
        let mut count = 0;
        loop {
            match pages.blocking_recv() {
                Some(Part::Page(page)) => {
                    let stem = file_stem(&page.title);
                    zip.start_file(format!("pages/{stem}.md"), options)?;
                    zip.write_all(markdown_file(&page, &exported, &file).as_bytes())?;
                    zip.start_file(format!("html/{stem}.html"), options)?;
                    zip.write_all(html_file(&page, &exported, &file).as_bytes())?;
                    count += 1;
                }
                Some(Part::File(name)) => zip.start_file(name, stored)?,
                Some(Part::Bytes(bytes)) => zip.write_all(&bytes)?,
                Some(Part::Done) => break,
                None => anyhow::bail!("the pages ended before the export was complete"),
            }
        }
        zip.start_file("html/index.html", options)?;
        zip.write_all(index_file(&titles).as_bytes())?;
        zip.start_file("html/style.css", options)?;
        zip.write_all(crate::assets::STYLESHEET.as_bytes())?;
        let mut writer = zip.finish()?;
        writer.flush()?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok::<_, anyhow::Error>((count, file.metadata()?.len()))
    })();
    match result {
        Ok(done) => {
            std::fs::rename(&partial, out)
                .with_context(|| format!("cannot move the export to {}", out.display()))?;
            Ok(done)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiki_links_become_relative_markdown_links_outside_code() {
        let md = "See [[Second page]] and [[Guides/Install|the guide]].\nCode: `[[Not A Link]]`\n\n```\n[[Fenced]]\n```\n[[Last]], [[Missing|not here]]";
        let exported = |title: &str| title != "Missing";
        assert_eq!(
            rewrite_links(md, "Home", &exported, &|_: &FileRef| None),
            "See [Second page](Second%20page.md) and [the guide](Guides%252FInstall.md).\nCode: `[[Not A Link]]`\n\n```\n[[Fenced]]\n```\n[Last](Last.md), not here"
        );
    }

    #[test]
    fn links_to_files_become_relative_paths_outside_code() {
        let md = "![A cat](attachment:cat.png) [plan](<attachment:Other page/plan v2.pdf>) \
                  [gone](attachment:gone.txt \"title\") `[x](attachment:cat.png)`\n```\n![c](attachment:cat.png)\n```\n";
        let file = |wanted: &FileRef| (wanted.1 != "gone.txt").then(|| link_to_file(&wanted.0, &wanted.1));
        assert_eq!(
            rewrite_links(md, "Home", &|_: &str| true, &file),
            "![A cat](Home/cat.png) [plan](<Other%20page/plan%20v2.pdf>) [gone](attachment:gone.txt \"title\") \
             `[x](attachment:cat.png)`\n```\n![c](attachment:cat.png)\n```\n"
        );
        let html =
            r#"<img src="attachment:cat.png" alt="A cat"> <a href="attachment:Other%20page/x.txt">x</a>"#;
        let shown = crate::render::relink_attachments(html, "A/b", &|wanted: &FileRef| {
            (wanted.1 == "cat.png").then(|| format!("../pages/{}", link_to_file(&wanted.0, &wanted.1)))
        });
        assert_eq!(
            shown,
            r#"<img src="../pages/A%252Fb/cat.png" alt="A cat"> <a class="missing-file" title="Not in this export">x</a>"#
        );
        assert_eq!(file_entry("A/b", "cat.png"), "pages/A%2Fb/cat.png");
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
        let exported = |title: &str| title == "Second page";
        assert_eq!(
            rewrite_html_links(html, &exported),
            r#"<a href="Second%20page.html">x</a> <a href="https://example.com/">y</a>"#
        );
        let html = r#"<a href="/wiki/Missing">m</a> <a href="/recent">r</a> <a href="//cdn.example/x">c</a> <a href="/wiki/Second%20page/history">h</a>"#;
        assert_eq!(
            rewrite_html_links(html, &exported),
            r#"<a class="missing-page" title="Not in this export">m</a> <a class="missing-page" title="Not in this export">r</a> <a href="//cdn.example/x">c</a> <a class="missing-page" title="Not in this export">h</a>"#
        );
    }
}
