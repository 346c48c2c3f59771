//! Page content to safe HTML: Markdown (CommonMark + GFM tables, strikethrough, task lists,
//! autolinks) rendered by comrak, then everything, Markdown or imported HTML, passes one
//! allowlist sanitizer (ammonia). This is the only place that produces HTML marked safe.
//!
//! Every input costs linear work: nesting is limited before the sanitizer builds its tree,
//! wiki links are collected in a set and capped, highlighting stops above a size, the HTML of
//! a page has a cap, and missing links are marked in one pass. What breaks a cap is refused
//! with a [`RenderError`] that says which.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use ammonia::{Builder, UrlRelative};
use comrak::Options;
use comrak::adapters::SyntaxHighlighterAdapter;
use comrak::nodes::{NodeLink, NodeValue};
use comrak::options::Plugins;
use comrak::plugins::syntect::{SyntectAdapter, SyntectAdapterBuilder};

const ID_PREFIX: &str = "h-";

static MARKDOWN: LazyLock<Options<'static>> = LazyLock::new(|| {
    let mut options = Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.tasklist = true;
    options.extension.autolink = true;
    // Heading ids carry the same prefix the sanitizer forces on every id (no DOM clobbering).
    options.extension.header_id_prefix = Some(ID_PREFIX.to_owned());
    options.extension.header_id_prefix_in_href = true;
    // Raw HTML is passed through to the sanitizer, which decides what survives.
    options.render.r#unsafe = true;
    options.extension.wikilinks_title_after_pipe = true;
    // `$…$` inline and `$$…$$` display math, rendered to MathML below.
    options.extension.math_dollars = true;
    options
});

/// The MathML elements Quire's math renderer writes, and what they may carry.
const MATHML_TAGS: &[&str] = &[
    "math",
    "semantics",
    "annotation",
    "mrow",
    "mi",
    "mn",
    "mo",
    "mtext",
    "mspace",
    "msub",
    "msup",
    "msubsup",
    "munder",
    "mover",
    "munderover",
    "mfrac",
    "msqrt",
    "mroot",
    "mtable",
    "mtr",
    "mtd",
    "merror",
    "mstyle",
    "mpadded",
    "mphantom",
];

/// Longest formula rendered to MathML; a longer one is shown as code.
const MATH_MAX: usize = 4 * 1024;

/// A LaTeX formula as MathML (`display`: a block of its own). A formula the parser refuses is
/// shown as its source, marked as an error.
fn mathml(latex: &str, display: bool) -> String {
    use pulldown_latex::config::DisplayMode;
    if latex.len() > MATH_MAX {
        return format!("<code>{}</code>", escape(latex));
    }
    let storage = pulldown_latex::Storage::new();
    let parser = pulldown_latex::Parser::new(latex, &storage);
    let config = pulldown_latex::RenderConfig {
        display_mode: if display { DisplayMode::Block } else { DisplayMode::Inline },
        annotation: Some(latex),
        ..Default::default()
    };
    let mut out = String::new();
    match pulldown_latex::push_mathml(&mut out, parser, config) {
        Ok(()) => out,
        Err(_) => format!("<code>{}</code>", escape(latex)),
    }
}

/// Fenced code is highlighted on the server with CSS classes (`hl-…`), so no script is needed
/// and the stylesheet decides the colours.
static HIGHLIGHTER: LazyLock<SyntectAdapter> =
    LazyLock::new(|| SyntectAdapterBuilder::new().css_with_class_prefix("hl-").build());

/// Keeps only the classes Quire itself generates, per element: user-written classes cannot
/// dress content up as the site's own interface.
fn filter_classes<'a>(element: &str, attribute: &str, value: &'a str) -> Option<std::borrow::Cow<'a, str>> {
    if attribute != "class" {
        return Some(value.into());
    }
    let allowed = |class: &&str| match element {
        "span" => class.starts_with("hl-"),
        "code" => class.starts_with("language-"),
        "pre" => *class == "syntax-highlighting",
        "nav" => *class == "toc",
        "a" => *class == "anchor",
        "li" => class.starts_with("toc-"),
        _ => false,
    };
    let kept: Vec<&str> = value.split_whitespace().filter(allowed).collect();
    (!kept.is_empty()).then(|| kept.join(" ").into())
}

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto", "attachment"]))
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer nofollow"))
        .add_tags(["input"])
        // Task lists: every input is a disabled checkbox, whatever the source said.
        .add_tag_attributes("input", ["checked", "aria-label"])
        .set_tag_attribute_value("input", "type", "checkbox")
        .set_tag_attribute_value("input", "disabled", "")
        .add_tag_attributes("a", ["id", "aria-label", "class"])
        .add_tag_attributes("h1", ["id"])
        .add_tag_attributes("h2", ["id"])
        .add_tag_attributes("h3", ["id"])
        .add_tag_attributes("h4", ["id"])
        .add_tag_attributes("h5", ["id"])
        .add_tag_attributes("h6", ["id"])
        .add_tag_attributes("code", ["class"])
        .add_tag_attributes("span", ["class"])
        .add_tag_attributes("pre", ["class"])
        // A code block that scrolls sideways must be reachable by keyboard.
        .set_tag_attribute_value("pre", "tabindex", "0")
        .set_tag_attribute_value("table", "tabindex", "0")
        .attribute_filter(filter_classes)
        .add_tags(MATHML_TAGS)
        .add_tag_attributes("math", ["display"])
        .add_tag_attributes(
            "mo",
            [
                "stretchy",
                "symmetric",
                "largeop",
                "movablelimits",
                "maxsize",
                "form",
                "fence",
                "separator",
                "lspace",
                "rspace",
            ],
        )
        .add_tag_attributes("mi", ["mathvariant"])
        .add_tag_attributes("mspace", ["width", "height", "depth"])
        .add_tag_attributes("mfrac", ["linethickness"])
        .add_tag_attributes("mstyle", ["displaystyle", "scriptlevel"])
        .add_tag_attributes("annotation", ["encoding"])
        .add_tags(["nav", "details", "summary"])
        .add_tag_attributes("nav", ["class", "aria-label"])
        .add_tag_attributes("details", ["open"])
        .add_tag_attributes("li", ["class"])
        .add_tag_attributes("td", ["align"])
        .add_tag_attributes("th", ["align"])
        .id_prefix(Some(ID_PREFIX));
    builder
});

/// The deepest nesting a page may have: quotes, lists and HTML elements together. Deeper input
/// is refused before it reaches the sanitizer, whose tree building costs grow with the depth.
pub const DEPTH_MAX: usize = 100;
/// The most distinct pages one page may link to.
pub const LINKS_MAX: usize = 2_000;
/// The most HTML a page may render to (its content is at most 1 MiB).
pub const HTML_MAX: usize = 4 * 1024 * 1024;
/// The most cells a page's tables may hold (counting the empty cells that complete short rows:
/// a wide header over many short lines makes many).
pub const TABLE_CELLS_MAX: usize = 100_000;
/// Code blocks larger than this, or with a line longer than [`HIGHLIGHT_LINE_MAX`], are shown
/// as plain text: highlighting costs far more per byte than anything else in a page.
pub const HIGHLIGHT_BLOCK_MAX: usize = 64 * 1024;
const HIGHLIGHT_LINE_MAX: usize = 4 * 1024;
/// Highlighted HTML is about fifty times the code: once a page's highlighted HTML reaches this,
/// its remaining code blocks are shown as plain text.
const HIGHLIGHT_PAGE_MAX: usize = 2 * 1024 * 1024;
/// And once this much code of a page has been highlighted (the work, whatever the output).
const HIGHLIGHT_INPUT_MAX: usize = 256 * 1024;

/// Why content cannot become a page, in words for the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "The content is nested too deeply: at most {DEPTH_MAX} levels of quotes, lists or HTML elements inside each other."
    )]
    TooDeep,
    #[error("The content links to {0} different pages: a page may link to at most {LINKS_MAX}.")]
    TooManyLinks(usize),
    #[error("The content's tables would hold {0} cells: a page's tables may hold at most {TABLE_CELLS_MAX}.")]
    TooManyCells(usize),
    #[error(
        "The content would make {} MiB of HTML: a page may make at most {} MiB. Split it into several pages.",
        .0.div_ceil(1024 * 1024),
        HTML_MAX / (1024 * 1024)
    )]
    TooLarge(usize),
}

/// A page rendered for storage: safe HTML and the titles its wiki links point at.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    pub links: Vec<String>,
}

/// Below this many headings a page gets no table of contents.
const TOC_MIN_HEADINGS: usize = 3;

/// Renders Markdown and sanitizes the result; `[[Title]]` and `[[Title|label]]` become links
/// to `/wiki/Title`, and long pages get a table of contents. Linear in the size of the source:
/// nesting, links, highlighting and the HTML are capped.
pub fn markdown_page(source: &str) -> Result<Rendered, RenderError> {
    // A browser submits a textarea's lines ending in CRLF, a script's request in LF: both must
    // render alike (syntect keeps the CR of a code line, which shows as a blank line).
    let source = &*normalize_newlines(source);
    let cells = table_cells(source);
    if cells > TABLE_CELLS_MAX {
        return Err(RenderError::TooManyCells(cells));
    }
    let arena = comrak::Arena::new();
    let root = comrak::parse_document(&arena, source, &MARKDOWN);
    let mut depth = 0usize;
    for edge in root.traverse() {
        match edge {
            comrak::arena_tree::NodeEdge::Start(_) => {
                depth += 1;
                // The document and text nodes are no elements: the HTML is two levels flatter.
                if depth > DEPTH_MAX + 2 {
                    return Err(RenderError::TooDeep);
                }
            }
            comrak::arena_tree::NodeEdge::End(_) => depth -= 1,
        }
    }
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    let mut headings = Vec::new();
    let mut anchorizer = comrak::Anchorizer::new();
    for node in root.descendants() {
        let mut data = node.data_mut();
        match &mut data.value {
            NodeValue::WikiLink(link) => {
                let title = link.url.trim().to_owned();
                let url = crate::urls::page(&title);
                data.value = NodeValue::Link(Box::new(NodeLink { url, title: String::new() }));
                if crate::domain::PageTitle::parse(&title).is_ok() && seen.insert(title.clone()) {
                    links.push(title);
                }
            }
            NodeValue::Math(math) => {
                let html = mathml(&math.literal, math.display_math);
                data.value = NodeValue::HtmlInline(html);
            }
            NodeValue::Heading(heading) => {
                let level = heading.level;
                drop(data);
                let text = node.collect_text();
                let id = anchorizer.anchorize(&text);
                headings.push((level, text, format!("{ID_PREFIX}{id}")));
            }
            _ => {}
        }
    }
    if links.len() > LINKS_MAX {
        return Err(RenderError::TooManyLinks(links.len()));
    }
    let highlighter = CappedHighlighter::default();
    let mut plugins = Plugins::default();
    plugins.render.codefence_syntax_highlighter = Some(&highlighter);
    let mut body = String::new();
    let mut capped = CappedOutput { out: &mut body, max: 2 * HTML_MAX };
    if comrak::format_html_with_plugins(root, &MARKDOWN, &mut capped, &plugins).is_err() {
        return Err(RenderError::TooLarge(capped.out.len()));
    }
    let toc = table_of_contents(&headings);
    let body = accessible(&body);
    Ok(Rendered { html: sanitize(&(toc + &body))?, links })
}

/// Names what comrak leaves unnamed for assistive technology, in its own output (before the
/// sanitizer, which keeps these attributes only): task-list checkboxes say whether the task is
/// done, and each heading's anchor link shows a `#` (its label names the heading).
fn accessible(html: &str) -> String {
    html.replace(
        "<input type=\"checkbox\" checked=\"\" disabled=\"\" />",
        "<input type=\"checkbox\" checked=\"\" disabled=\"\" aria-label=\"Done\" />",
    )
    .replace(
        "<input type=\"checkbox\" disabled=\"\" />",
        "<input type=\"checkbox\" disabled=\"\" aria-label=\"Not done\" />",
    )
    .replace("\" class=\"anchor\"></a>", "\" class=\"anchor\">#</a>")
}

/// At most as many cells as the tables of `source` can hold: for each GFM delimiter row
/// (`|---|:--:|`), its columns times the lines up to the next blank one. Linear, and never
/// below what comrak builds (it completes every row to the header's width).
fn table_cells(source: &str) -> usize {
    fn columns(line: &str) -> Option<usize> {
        let line = line.trim();
        let inner = line.strip_prefix('|').unwrap_or(line);
        let inner = inner.strip_suffix('|').unwrap_or(inner);
        if !line.contains('-') || !(line.contains('|') || line.contains(':')) {
            return None;
        }
        let mut count = 0;
        for cell in inner.split('|') {
            let cell = cell.trim();
            let dashes = cell.trim_start_matches(':').trim_end_matches(':');
            if dashes.is_empty() || !dashes.bytes().all(|b| b == b'-') {
                return None;
            }
            count += 1;
        }
        Some(count)
    }
    let lines: Vec<&str> = source.lines().collect();
    let (mut cells, mut at) = (0usize, 0usize);
    while at < lines.len() {
        let Some(width) = columns(lines[at]) else {
            at += 1;
            continue;
        };
        let end =
            lines[at + 1..].iter().position(|l| l.trim().is_empty()).map_or(lines.len(), |i| at + 1 + i);
        // The header line above, the rows below.
        cells = cells.saturating_add(width.saturating_mul(end - at + 1));
        at = end;
    }
    cells
}

/// A writer that refuses to grow past `max` bytes (comrak's output, before sanitizing).
struct CappedOutput<'a> {
    out: &'a mut String,
    max: usize,
}

impl fmt::Write for CappedOutput<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.out.len() + s.len() > self.max {
            return Err(fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

/// Highlights code blocks within the caps above and writes the rest as escaped plain text.
#[derive(Default)]
struct CappedHighlighter {
    /// Highlighted HTML written so far on this page.
    written: AtomicUsize,
    /// Code highlighted so far on this page.
    read: AtomicUsize,
}

impl CappedHighlighter {
    fn worth_highlighting(&self, code: &str) -> bool {
        code.len() <= HIGHLIGHT_BLOCK_MAX
            && code.lines().all(|line| line.len() <= HIGHLIGHT_LINE_MAX)
            && self.written.load(Ordering::Relaxed) < HIGHLIGHT_PAGE_MAX
            && self.read.fetch_add(code.len(), Ordering::Relaxed) + code.len() <= HIGHLIGHT_INPUT_MAX
    }
}

impl SyntaxHighlighterAdapter for CappedHighlighter {
    fn write_highlighted(&self, output: &mut dyn fmt::Write, lang: Option<&str>, code: &str) -> fmt::Result {
        if !self.worth_highlighting(code) {
            return comrak::html::escape(output, code);
        }
        let mut highlighted = String::new();
        HIGHLIGHTER.write_highlighted(&mut highlighted, lang, code)?;
        let total = self.written.fetch_add(highlighted.len(), Ordering::Relaxed) + highlighted.len();
        if total > HIGHLIGHT_PAGE_MAX {
            return comrak::html::escape(output, code);
        }
        output.write_str(&highlighted)
    }

    fn write_pre_tag(
        &self,
        output: &mut dyn fmt::Write,
        attributes: HashMap<&'static str, Cow<'_, str>>,
    ) -> fmt::Result {
        HIGHLIGHTER.write_pre_tag(output, attributes)
    }

    fn write_code_tag(
        &self,
        output: &mut dyn fmt::Write,
        attributes: HashMap<&'static str, Cow<'_, str>>,
    ) -> fmt::Result {
        HIGHLIGHTER.write_code_tag(output, attributes)
    }
}

fn table_of_contents(headings: &[(u8, String, String)]) -> String {
    if headings.len() < TOC_MIN_HEADINGS {
        return String::new();
    }
    let top = headings.iter().map(|(level, ..)| *level).min().unwrap_or(1);
    let mut out = String::from(TOC_START);
    for (level, text, id) in headings {
        let depth = usize::from(level.saturating_sub(top));
        out.push_str(&format!(
            "<li class=\"toc-{depth}\"><a href=\"#{}\">{}</a></li>",
            escape(id),
            escape(text)
        ));
    }
    out.push_str(TOC_END);
    out
}

/// The table of contents: a labelled landmark, collapsible (open unless the reader closes it).
const TOC_START: &str =
    "<nav class=\"toc\" aria-label=\"Contents\"><details open=\"\"><summary>Contents</summary><ul>";
const TOC_END: &str = "</ul></details></nav>";
/// How pages saved before began their table of contents.
const OLD_TOC_START: &str = "<nav class=\"toc\"><p><strong>Contents</strong></p><ul>";

/// The leading table of contents of a displayed page, and the rest.
pub fn split_toc(html: &str) -> (Option<&str>, &str) {
    if html.starts_with("<nav class=\"toc\"")
        && let Some(end) = html.find("</nav>")
    {
        let end = end + "</nav>".len();
        return (Some(&html[..end]), &html[end..]);
    }
    (None, html)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Text with every line ending as `\n`: CRLF (what a browser's form submits) and lone CR alike.
pub fn normalize_newlines(text: &str) -> Cow<'_, str> {
    if !text.contains('\r') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// What a reader is shown of a page's stored HTML: links to missing pages marked, and a first
/// heading that only repeats the page's title left out (the page shows its title above). The page
/// view and the editor's preview both go through here, so a preview is what the page will show.
pub fn display(html: &str, missing: &[String], title: &str) -> String {
    let mut marked = mark_missing(html, missing);
    if marked.starts_with(OLD_TOC_START)
        && let Some(end) = marked.find("</ul></nav>")
    {
        marked.replace_range(end..end + "</ul></nav>".len(), TOC_END);
        marked.replace_range(..OLD_TOC_START.len(), TOC_START);
    }
    let Some((heading, id)) = leading_title(&marked, title) else {
        return marked;
    };
    let mut out = String::with_capacity(marked.len());
    let before = &marked[..heading.start];
    // The table of contents loses the heading's entry too.
    let entry = id.and_then(|id| {
        let href = format!("<a href=\"#{id}\"");
        let at = before.find(&href)?;
        let start = before[..at].rfind("<li")?;
        let end = at + before[at..].find("</li>")? + "</li>".len();
        Some(start..end)
    });
    match entry {
        Some(entry) => {
            out.push_str(&before[..entry.start]);
            out.push_str(&before[entry.end..]);
        }
        None => out.push_str(before),
    }
    out.push_str(marked[heading.end..].trim_start_matches('\n'));
    out
}

/// Where the page's first `<h1>` lies when it comes first in the text (after the table of
/// contents, if any) and says exactly the page's title; with its id, if it has one.
fn leading_title(html: &str, title: &str) -> Option<(std::ops::Range<usize>, Option<String>)> {
    let mut start = 0;
    if html.starts_with("<nav class=\"toc\"") {
        start = html.find("</nav>")? + "</nav>".len();
    }
    let rest = &html[start..];
    let at = start + (rest.len() - rest.trim_start().len());
    let rest = &html[at..];
    if !(rest.starts_with("<h1>") || rest.starts_with("<h1 ")) {
        return None;
    }
    let close = rest.find("</h1>")?;
    let inner = &rest[..close];
    let id = inner.find(" id=\"").and_then(|i| {
        let value = &inner[i + 5..];
        value.find('"').map(|end| value[..end].to_owned())
    });
    let open_end = inner.find('>')? + 1;
    // The heading's own anchor link (`#`) is no part of its text.
    let inner = match inner.rfind("<a ") {
        Some(at) if inner[at..].contains("class=\"anchor\"") => &inner[..at],
        _ => inner,
    };
    // The heading's text: its tags (emphasis) left out, entities decoded.
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner[open_end..].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    (text.trim() == title.trim()).then_some((at..at + close + "</h1>".len(), id))
}

/// Clean Markdown for HTML a page was brought in with (the Flask wiki's CKEditor wrote HTML):
/// what the sanitizer keeps of it, converted (htmd), so the editor never shows raw HTML. HTML
/// nested too deeply to sanitize is given back as it is.
pub fn html_to_markdown(html: &str) -> String {
    use htmd::options::{BulletListMarker, Options};
    let Ok(clean) = sanitize(html) else { return html.to_owned() };
    let converter = htmd::HtmlToMarkdown::builder()
        .options(Options {
            bullet_list_marker: BulletListMarker::Dash,
            ul_bullet_spacing: 1,
            ol_number_spacing: 1,
            ..Options::default()
        })
        .build();
    match converter.convert(&clean) {
        Ok(markdown) => {
            let markdown = markdown.trim();
            if markdown.is_empty() { String::new() } else { format!("{markdown}\n") }
        }
        Err(_) => html.to_owned(),
    }
}

/// The text a reader sees of a Markdown page, without its marks (`##`, `|---|`, `**`): what
/// search indexes and shows in its snippets. Blocks are separated by line breaks; raw HTML
/// gives its text only. Linear in the source.
pub fn plain_text(source: &str) -> String {
    use comrak::arena_tree::NodeEdge;
    let source = normalize_newlines(source);
    let arena = comrak::Arena::new();
    let root = comrak::parse_document(&arena, &source, &MARKDOWN);
    let mut out = String::with_capacity(source.len());
    let html_text = |html: &str| {
        let text = ammonia::Builder::empty().clean(html).to_string();
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
    };
    // Inside raw `<script>` or `<style>`, which the sanitizer drops with their content.
    let mut hidden = false;
    for edge in root.traverse() {
        match edge {
            NodeEdge::Start(node) => match &node.data().value {
                NodeValue::HtmlInline(html) => {
                    let tag = html.trim_start_matches('<').to_ascii_lowercase();
                    if tag.starts_with("script") || tag.starts_with("style") {
                        hidden = true;
                    } else if tag.starts_with("/script") || tag.starts_with("/style") {
                        hidden = false;
                    }
                }
                NodeValue::Text(_) | NodeValue::Code(_) if hidden => {}
                NodeValue::Text(text) => out.push_str(text),
                NodeValue::Code(code) => out.push_str(&code.literal),
                NodeValue::Math(math) => out.push_str(&math.literal),
                NodeValue::CodeBlock(code) => {
                    out.push_str(code.literal.trim_end());
                    out.push('\n');
                }
                NodeValue::HtmlBlock(html) => {
                    out.push_str(html_text(&html.literal).trim());
                    out.push('\n');
                }
                NodeValue::SoftBreak | NodeValue::LineBreak => out.push(' '),
                _ => {}
            },
            NodeEdge::End(node) => match &node.data().value {
                NodeValue::Paragraph | NodeValue::Heading(_) | NodeValue::TableRow(_) => {
                    hidden = false;
                    if !out.ends_with('\n') {
                        out.push('\n');
                    }
                }
                NodeValue::TableCell => out.push(' '),
                _ => {}
            },
        }
    }
    // One space where removed markup left several.
    let mut squeezed = String::with_capacity(out.len());
    for c in out.trim_end().chars() {
        if !(c == ' ' && squeezed.ends_with(' ')) {
            squeezed.push(c);
        }
    }
    squeezed
}

/// Renders Markdown and sanitizes the result (the HTML only).
pub fn markdown(source: &str) -> Result<String, RenderError> {
    markdown_page(source).map(|rendered| rendered.html)
}

/// Sanitizes HTML (pages brought from the Flask wiki are stored as HTML), refusing input nested
/// deeper than [`DEPTH_MAX`] before the sanitizer builds its tree, and output over [`HTML_MAX`].
pub fn sanitize(html: &str) -> Result<String, RenderError> {
    if nesting_exceeds(html, DEPTH_MAX) {
        return Err(RenderError::TooDeep);
    }
    let clean = SANITIZER.clean(html).to_string();
    if clean.len() > HTML_MAX {
        return Err(RenderError::TooLarge(clean.len()));
    }
    Ok(clean)
}

/// Renders content in its stored format.
pub fn content(source: &str, format: &str) -> Result<Rendered, RenderError> {
    if format == crate::models::page::FORMAT_HTML {
        Ok(Rendered { html: sanitize(source)?, links: Vec::new() })
    } else {
        markdown_page(source)
    }
}

/// What a stored text shows when it cannot be rendered within the caps (a revision saved before
/// they existed): the reason, then the text itself, escaped.
pub fn unrenderable(source: &str, why: &RenderError) -> String {
    format!(
        "<p class=\"notice\"><strong>{}</strong></p><pre>{}</pre>",
        escape(&why.to_string()),
        escape(source)
    )
}

/// Marks the links to pages that do not exist: they lead to creating the page instead. One pass
/// over the HTML, whatever the number of links.
pub fn mark_missing(html: &str, missing: &[String]) -> String {
    const HREF: &str = "href=\"";
    const WIKI: &str = "href=\"/wiki/";
    if missing.is_empty() {
        return html.to_owned();
    }
    let missing: HashMap<String, &str> =
        missing.iter().map(|title| (crate::urls::page(title), title.as_str())).collect();
    let mut out = String::with_capacity(html.len() + missing.len() * 96);
    let mut rest = html;
    while let Some(at) = rest.find(WIKI) {
        let start = at + HREF.len();
        let Some(len) = rest[start..].find('"') else { break };
        let end = start + len + 1;
        out.push_str(&rest[..at]);
        match missing.get(&rest[start..end - 1]) {
            Some(title) => {
                out.push_str("href=\"/create?title=");
                out.push_str(&crate::urls::encode_query(title));
                out.push_str("\" class=\"missing-page\" title=\"This page does not exist yet\"");
            }
            None => out.push_str(&rest[at..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Whether `html` nests elements deeper than `limit`, as html5ever's own tree builder (the one
/// the sanitizer runs, with the same fragment context) builds it — but over a sink that only
/// keeps each node's parent, fed a few KiB at a time and stopped as soon as an element lands
/// deeper than `limit`. The tree builder's cost grows with the depth of its stack of open
/// elements, so stopping there keeps this linear; a final pass measures the finished tree
/// (moves by the adoption agency can deepen what was inserted shallow).
fn nesting_exceeds(html: &str, limit: usize) -> bool {
    use html5ever::tendril::{StrTendril, TendrilSink};
    use html5ever::{QualName, local_name, ns};

    const CHUNK: usize = 4 * 1024;
    if html.len() < 3 * limit / 2 {
        // Fewer bytes than the shortest markup that nests this deep (`<a>` opens one element,
        // but the implied ones of a table come at most two per three bytes).
        return false;
    }
    let state = Rc::new(DepthState { limit, ..DepthState::default() });
    let document = QualName::new(None, ns!(), local_name!(""));
    state.add(document, false);
    let sink = DepthSink { state: state.clone() };
    let context = QualName::new(None, ns!(html), local_name!("div"));
    let mut parser = html5ever::parse_fragment(sink, html5ever::ParseOpts::default(), context, vec![], false);
    let mut rest = html;
    while !rest.is_empty() {
        let mut cut = rest.len().min(CHUNK);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        parser.process(StrTendril::from_slice(&rest[..cut]));
        rest = &rest[cut..];
        if state.exceeded.get() {
            return true;
        }
    }
    parser.finish();
    state.exceeded.get() || state.deepest_in_tree() > limit
}

/// What the counting sink learns: each node's parent and children, nothing else.
#[derive(Default)]
struct DepthState {
    limit: usize,
    nodes: RefCell<Vec<DepthNode>>,
    exceeded: Cell<bool>,
}

struct DepthNode {
    name: html5ever::QualName,
    parent: Option<usize>,
    children: Vec<usize>,
    /// A template's contents (a fragment the tree builder fills instead of the template).
    contents: Option<usize>,
    integration_point: bool,
}

impl DepthState {
    fn add(&self, name: html5ever::QualName, integration_point: bool) -> usize {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(DepthNode { name, parent: None, children: Vec::new(), contents: None, integration_point });
        nodes.len() - 1
    }

    /// How deep `node` is below the document (itself included), counting at most `limit + 3`
    /// steps up.
    fn depth(&self, node: usize) -> usize {
        let nodes = self.nodes.borrow();
        let (mut depth, mut at) = (0, Some(node));
        while let Some(current) = at {
            if depth > self.limit + 2 {
                break;
            }
            depth += 1;
            at = nodes[current].parent;
        }
        depth
    }

    fn attach(&self, parent: usize, child: usize, before: Option<usize>) {
        self.detach(child);
        {
            let mut nodes = self.nodes.borrow_mut();
            nodes[child].parent = Some(parent);
            let siblings = &mut nodes[parent].children;
            match before.and_then(|b| siblings.iter().position(|s| *s == b)) {
                Some(at) => siblings.insert(at, child),
                None => siblings.push(child),
            }
        }
        // The document and the fragment's `html` root sit above every element.
        if self.depth(child) > self.limit + 2 {
            self.exceeded.set(true);
        }
    }

    fn detach(&self, child: usize) {
        let mut nodes = self.nodes.borrow_mut();
        if let Some(parent) = nodes[child].parent.take() {
            nodes[parent].children.retain(|c| *c != child);
        }
    }

    /// The depth of the deepest node below the document, iteratively.
    fn deepest_in_tree(&self) -> usize {
        let nodes = self.nodes.borrow();
        let (mut deepest, mut stack) = (0, vec![(0usize, 0usize)]);
        while let Some((node, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            stack.extend(nodes[node].children.iter().map(|c| (*c, depth + 1)));
            if let Some(contents) = nodes[node].contents {
                stack.push((contents, depth));
            }
        }
        // Less the fragment's `html` root.
        deepest.saturating_sub(1)
    }
}

struct DepthSink {
    state: Rc<DepthState>,
}

impl html5ever::interface::TreeSink for DepthSink {
    type Handle = usize;
    type Output = ();
    type ElemName<'a> = std::cell::Ref<'a, html5ever::QualName>;

    fn finish(self) {}

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> usize {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a usize) -> Self::ElemName<'a> {
        std::cell::Ref::map(self.state.nodes.borrow(), |nodes| &nodes[*target].name)
    }

    fn create_element(
        &self,
        name: html5ever::QualName,
        _attrs: Vec<html5ever::Attribute>,
        flags: html5ever::interface::ElementFlags,
    ) -> usize {
        let template = flags.template;
        let element = self.state.add(name, flags.mathml_annotation_xml_integration_point);
        if template {
            let contents = self
                .state
                .add(html5ever::QualName::new(None, html5ever::ns!(), html5ever::local_name!("")), false);
            let mut nodes = self.state.nodes.borrow_mut();
            nodes[element].contents = Some(contents);
            // Depth through a template counts as through any element.
            nodes[contents].parent = Some(element);
        }
        element
    }

    fn create_comment(&self, _text: html5ever::tendril::StrTendril) -> usize {
        self.state.add(html5ever::QualName::new(None, html5ever::ns!(), html5ever::local_name!("")), false)
    }

    fn create_pi(
        &self,
        _target: html5ever::tendril::StrTendril,
        _data: html5ever::tendril::StrTendril,
    ) -> usize {
        self.state.add(html5ever::QualName::new(None, html5ever::ns!(), html5ever::local_name!("")), false)
    }

    fn append(&self, parent: &usize, child: html5ever::interface::NodeOrText<usize>) {
        if let html5ever::interface::NodeOrText::AppendNode(child) = child {
            self.state.attach(*parent, child, None);
        }
    }

    fn append_based_on_parent_node(
        &self,
        element: &usize,
        prev_element: &usize,
        child: html5ever::interface::NodeOrText<usize>,
    ) {
        let has_parent = self.state.nodes.borrow()[*element].parent.is_some();
        if has_parent {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(
        &self,
        _name: html5ever::tendril::StrTendril,
        _public_id: html5ever::tendril::StrTendril,
        _system_id: html5ever::tendril::StrTendril,
    ) {
    }

    fn get_template_contents(&self, target: &usize) -> usize {
        self.state.nodes.borrow()[*target].contents.unwrap_or(*target)
    }

    fn same_node(&self, x: &usize, y: &usize) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: html5ever::interface::QuirksMode) {}

    fn append_before_sibling(&self, sibling: &usize, new_node: html5ever::interface::NodeOrText<usize>) {
        let html5ever::interface::NodeOrText::AppendNode(child) = new_node else { return };
        let parent = self.state.nodes.borrow()[*sibling].parent;
        if let Some(parent) = parent {
            self.state.attach(parent, child, Some(*sibling));
        }
    }

    fn add_attrs_if_missing(&self, _target: &usize, _attrs: Vec<html5ever::Attribute>) {}

    fn remove_from_parent(&self, target: &usize) {
        self.state.detach(*target);
    }

    fn reparent_children(&self, node: &usize, new_parent: &usize) {
        let children = std::mem::take(&mut self.state.nodes.borrow_mut()[*node].children);
        for child in children {
            self.state.nodes.borrow_mut()[child].parent = None;
            self.state.attach(*new_parent, child, None);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &usize) -> bool {
        self.state.nodes.borrow()[*handle].integration_point
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(source: &str) -> String {
        markdown(source).expect("renders")
    }

    fn page(source: &str) -> Rendered {
        markdown_page(source).expect("renders")
    }

    #[test]
    fn a_code_block_submitted_with_crlf_renders_like_the_same_block_with_lf() {
        let lf = "Some code:\n\n```rust\nfn main() {\n    let x = 1;\n}\n```\n";
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(md(&crlf), md(lf));
        assert!(!md(&crlf).contains('\r'));
        assert!(!md(lf).contains("\n</span>\n"), "{}", md(lf));
    }

    #[test]
    fn a_first_heading_repeating_the_title_is_left_out_of_the_display() {
        let html = md("# Kitchen &amp; Co\n\nText.\n");
        let shown = display(&html, &[], "Kitchen & Co");
        assert!(!shown.contains("<h1"), "{shown}");
        assert!(shown.contains("<p>Text.</p>"), "{shown}");
        // Another first heading, or the title further down, stays.
        let other = md("# Something else\n\nText.\n");
        assert_eq!(display(&other, &[], "Kitchen & Co"), other);
        let later = md("Intro.\n\n# Kitchen & Co\n");
        assert_eq!(display(&later, &[], "Kitchen & Co"), later);
        let second = md("## Kitchen & Co\n");
        assert_eq!(display(&second, &[], "Kitchen & Co"), second);
    }

    #[test]
    fn the_left_out_title_leaves_the_table_of_contents_too() {
        let html = md("# Guide\n\n## One\n\n## Two\n\n## Three\n");
        assert!(html.contains("href=\"#h-guide\""), "{html}");
        let shown = display(&html, &[], "Guide");
        assert!(!shown.contains("#h-guide"), "{shown}");
        assert!(shown.contains("href=\"#h-one\""), "{shown}");
        assert!(shown.starts_with("<nav class=\"toc\""), "{shown}");
    }

    #[test]
    fn dollar_math_becomes_mathml() {
        let html = md("Euler: $e^{i\\pi} + 1 = 0$\n\n$$\\frac{a}{b}$$\n");
        assert!(html.contains("<math"), "{html}");
        assert!(html.contains("<msup>"), "{html}");
        assert!(html.contains("<mfrac>"), "{html}");
        assert!(html.contains(r#"display="block""#), "{html}");
        assert!(!html.contains("style="), "{html}");
        assert!(!html.contains('$'), "{html}");
        // Money is not math: a lone dollar stays text.
        let money = md("It costs $5.\n");
        assert!(!money.contains("<math"), "{money}");
        // What the parser refuses shows as its source.
        let broken = md("$\\frac{a$\n");
        assert!(!broken.contains("<script"), "{broken}");
    }

    #[test]
    fn plain_text_leaves_the_marks_out() {
        let text = plain_text(
            "## Plans\n\nSee **the** [[Road map|map]].\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nlet x = 1;\n```\n<p>raw <b>html</b></p>\n",
        );
        assert_eq!(text, "Plans\nSee the map.\na b \n1 2 \nlet x = 1;\nraw html");
    }

    #[test]
    fn markdown_features_survive_sanitizing() {
        let html = md(
            "# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~\n\n- [x] done\n- [ ] todo\n\nsee https://example.com\n",
        );
        assert!(html.contains("<h1"), "{html}");
        assert!(html.contains(r#"<table tabindex="0">"#), "a table that scrolls is reachable: {html}");
        assert!(html.contains("<del>gone</del>"), "{html}");
        assert!(html.contains(r#"aria-label="Done""#) && html.contains(r#"aria-label="Not done""#), "{html}");
        assert!(html.contains(r#"type="checkbox""#), "{html}");
        assert!(html.contains(r#"href="https://example.com""#), "{html}");
    }

    #[test]
    fn scripts_handlers_and_dangerous_urls_are_removed() {
        let html = md(
            "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))\n\n<a href=\"data:text/html,x\">d</a>\n\n<p style=\"position:fixed\">s</p>",
        );
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(!lower.contains("onerror"), "{html}");
        assert!(!lower.contains("javascript:"), "{html}");
        assert!(!lower.contains("data:"), "{html}");
        assert!(!lower.contains("style="), "{html}");
    }

    #[test]
    fn imported_html_goes_through_the_same_sanitizer() {
        let rendered = content("<p onclick=\"x()\">hi</p><script>bad()</script>", "html").expect("renders");
        assert_eq!(rendered.html, "<p>hi</p>");
    }

    #[test]
    fn wiki_links_become_page_links_and_are_collected() {
        let rendered =
            page("See [[Page One]], [[Guides/Install|the guide]] and [[Page One]].\n\n`[[not a link]]`");
        assert_eq!(rendered.links, ["Page One", "Guides/Install"]);
        assert!(rendered.html.contains(r#"href="/wiki/Page%20One""#), "{}", rendered.html);
        assert!(rendered.html.contains(r#"href="/wiki/Guides%2FInstall""#), "{}", rendered.html);
        assert!(rendered.html.contains(">the guide</a>"), "{}", rendered.html);
        let marked = mark_missing(&rendered.html, &["Page One".to_owned()]);
        assert!(marked.contains(r#"href="/create?title=Page%20One" class="missing-page""#), "{marked}");
        assert!(marked.contains(r#"href="/wiki/Guides%2FInstall""#));
    }

    #[test]
    fn fenced_code_is_highlighted_with_classes_only_quire_makes() {
        let html = md(
            "```rust\nfn main() { let x = \"<b>\"; }\n```\n\n<span class=\"flash-danger hl-x\">fake</span>",
        );
        assert!(html.contains(r#"<span class="hl-"#), "{html}");
        assert!(html.contains("&lt;b&gt;"), "code text stays escaped: {html}");
        assert!(!html.contains("flash-danger"), "{html}");
        assert!(!html.contains("style="), "{html}");
    }

    #[test]
    fn long_pages_get_a_table_of_contents_with_working_anchors() {
        let rendered = page("# One\n\n## Two\n\n## Two\n\ntext");
        let html = rendered.html;
        assert!(html.contains(r#"<nav class="toc" aria-label="Contents"><details open="">"#), "{html}");
        assert!(html.contains(r##"href="#h-one""##), "{html}");
        assert!(html.contains(r#"id="h-one""#), "{html}");
        assert!(html.contains(r##"href="#h-two-1""##) && html.contains(r#"id="h-two-1""#), "{html}");
        assert!(!md("# just one").contains("toc"));
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_whatever_makes_it() {
        // Each `>` is a blockquote, and the text inside is a paragraph.
        let at_limit = format!("{} deep", ">".repeat(DEPTH_MAX - 1));
        assert!(markdown(&at_limit).is_ok());
        let over = format!("{} deep", ">".repeat(DEPTH_MAX));
        assert_eq!(markdown(&over), Err(RenderError::TooDeep));
        assert!(markdown(&at_limit).is_ok());
        for source in [
            ">".repeat(100_000),
            "<div>".repeat(100_000),
            "<div/>".repeat(1_000),
            "<span><b><i>".repeat(400),
            (0..200).map(|i| format!("{}- item\n", "  ".repeat(i))).collect::<String>(),
        ] {
            assert_eq!(markdown(&source), Err(RenderError::TooDeep), "{}", &source[..40.min(source.len())]);
        }
        assert_eq!(sanitize(&"<div>".repeat(1_000)), Err(RenderError::TooDeep));
    }

    #[test]
    fn markup_that_fools_a_tag_counter_is_measured_as_the_tree_builder_builds_it() {
        // Each of these nests about as deep as it is long in html5ever's tree (a review found
        // them defeating a tokenizer-based estimate).
        for source in [
            "<td><div></td>".repeat(5_000),
            format!("<form>{}</form>", "<div>".repeat(90)).repeat(20),
            format!("<svg><plaintext>{}", "<div>".repeat(2_000)),
            format!("<svg>{}", "<option>".repeat(2_000)),
            format!("<svg>{}", "<tr>".repeat(2_000)),
            format!("<svg><p>{}", "<div/>".repeat(2_000)),
            "<table><div><td>".repeat(200),
            "<table><td>".repeat(27),
            "<b><div></b>".repeat(500),
        ] {
            assert_eq!(sanitize(&source), Err(RenderError::TooDeep), "{}", &source[..60.min(source.len())]);
        }
    }

    #[test]
    fn siblings_void_elements_and_closed_tags_do_not_count_as_depth() {
        let flat = "<p>para<p>next<br><img src=x><hr>".repeat(5_000);
        assert!(sanitize(&flat).is_ok());
        let lists = "<ul><li>a<li>b<li>c</ul><table><tr><td>1<td>2<tr><td>3</table>".repeat(2_000);
        assert!(sanitize(&lists).is_ok());
        let closed = "<div><span>x</span></div>".repeat(10_000);
        assert!(sanitize(&closed).is_ok());
        // Tags inside raw text are text, not elements.
        let raw = format!("<textarea>{}</textarea><p>after</p>", "<div>".repeat(1_000));
        assert!(sanitize(&raw).is_ok(), "text in a textarea is not nesting");
    }

    #[test]
    fn distinct_links_are_capped_and_repeats_count_once() {
        let repeated = "[[Probe]] ".repeat(50_000);
        assert_eq!(page(&repeated).links, ["Probe"]);
        let at_cap: String = (0..LINKS_MAX).map(|i| format!("[[p{i}]] ")).collect();
        assert_eq!(page(&at_cap).links.len(), LINKS_MAX);
        let over: String = (0..=LINKS_MAX).map(|i| format!("[[p{i}]] ")).collect();
        assert_eq!(markdown_page(&over), Err(RenderError::TooManyLinks(LINKS_MAX + 1)));
    }

    #[test]
    fn large_code_blocks_are_plain_text_and_the_html_stays_bounded() {
        let line = "let value = compute(alpha, beta) + other(gamma);\n";
        let big = format!("```rust\n{}```\n", line.repeat(1_000_000 / line.len()));
        let html = md(&big);
        assert!(!html.contains("hl-"), "not highlighted");
        assert!(html.len() < 2 * big.len(), "{} bytes of HTML for {}", html.len(), big.len());
        assert!(html.contains("compute(alpha, beta)"));
        // Many small blocks: highlighted until the page's budget, then plain.
        let small = format!("```rust\n{}```\n\n", line.repeat(1_000));
        let many = md(&small.repeat(19));
        assert!(many.contains("hl-"));
        assert!(many.len() < HIGHLIGHT_PAGE_MAX + 2 * 19 * small.len(), "{}", many.len());
        let long_line = format!("```rust\n{}\n```\n", "x".repeat(HIGHLIGHT_LINE_MAX + 1));
        assert!(!md(&long_line).contains("hl-"));
    }

    #[test]
    fn wide_tables_over_many_lines_are_refused_before_comrak_builds_them() {
        let header = format!("|{}\n|{}\n", "h|".repeat(1_000), "-|".repeat(1_000));
        let table = format!("{header}{}\n", "a\n".repeat(499));
        assert_eq!(markdown_page(&table), Err(RenderError::TooManyCells(1_000 * 501)));
        let ordinary = format!("| a | b |\n|---|:-:|\n{}", "| 1 | 2 |\n".repeat(1_000));
        assert!(markdown_page(&ordinary).is_ok());
        assert_eq!(table_cells("no | table\n---\n"), 0, "a setext heading is no table");
    }

    #[test]
    fn html_over_the_cap_is_refused() {
        // One link repeated (a single distinct link) makes ten times its text in HTML.
        let links = "[[a]] ".repeat(150_000);
        assert!(matches!(markdown(&links), Err(RenderError::TooLarge(_))));
    }

    #[test]
    fn missing_links_are_marked_in_one_pass_and_others_left_alone() {
        let links: String = (0..1_500).map(|i| format!("[[z{i}]] [[Here]] ")).collect();
        let rendered = page(&links);
        let missing: Vec<String> = (0..1_499).map(|i| format!("z{i}")).collect();
        let marked = mark_missing(&rendered.html, &missing);
        assert_eq!(marked.matches("class=\"missing-page\"").count(), 1_499);
        assert_eq!(marked.matches("href=\"/wiki/Here\"").count(), 1_500);
        assert!(marked.contains("href=\"/wiki/z1499\""), "a page that exists keeps its link");
        assert!(marked.contains("href=\"/create?title=z0\""));
        assert_eq!(mark_missing("<a href=\"/wiki/x", &["x".to_owned()]), "<a href=\"/wiki/x");
    }
}

/// The start of an attachment link as stored: `attachment:NAME` or `attachment:Page/NAME`,
/// kept through the sanitizer and resolved when the page is shown (so that renaming the page
/// keeps its images).
const ATTACHMENT_SCHEME: &str = "attachment:";

/// A file a page's HTML refers to: the page it is attached to, and its name.
pub type FileRef = (String, String);

/// What the page view knows of a file a link reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFacts {
    /// The width of an image shown inline (others: `None`).
    pub image_width: Option<u32>,
}

/// The width of the preview a page shows in place of a larger image.
pub const SHOWN_IMAGE_WIDTH: u32 = 800;

/// Every `href`/`src` of stored HTML that is an attachment link: where it starts and ends
/// (the value only), and the file it names (a link without a page names one of `title`'s).
fn attachment_links(html: &str, title: &str) -> Vec<(std::ops::Range<usize>, bool, FileRef)> {
    let mut found = Vec::new();
    for (attribute, is_image) in [("href=\"", false), ("src=\"", true)] {
        let pattern = format!("{attribute}{ATTACHMENT_SCHEME}");
        let mut from = 0;
        while let Some(at) = html[from..].find(&pattern) {
            let start = from + at + attribute.len();
            let Some(len) = html[start..].find('"') else { break };
            let end = start + len;
            from = end;
            let raw = html[start + ATTACHMENT_SCHEME.len()..end].replace("&amp;", "&");
            let decoded = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy().into_owned();
            let (page, name) = match decoded.rsplit_once('/') {
                Some((page, name)) if !page.trim().is_empty() => (page.trim().to_owned(), name.to_owned()),
                Some((_, name)) => (title.to_owned(), name.to_owned()),
                None => (title.to_owned(), decoded.clone()),
            };
            if name.is_empty() {
                continue;
            }
            found.push((start..end, is_image, (page, name)));
        }
    }
    found.sort_by_key(|(range, _, _)| range.start);
    found
}

/// The files a page's stored HTML links to, each once.
pub fn attachment_refs(html: &str, title: &str) -> Vec<FileRef> {
    let mut refs: Vec<FileRef> = attachment_links(html, title).into_iter().map(|(_, _, file)| file).collect();
    refs.sort();
    refs.dedup();
    refs
}

/// Turns attachment links into the files' addresses. A link to a file `facts` does not know is
/// marked like a link to a missing page; an image wider than [`SHOWN_IMAGE_WIDTH`] is shown
/// through its preview.
pub fn resolve_attachments(html: &str, title: &str, facts: &dyn Fn(&FileRef) -> Option<FileFacts>) -> String {
    let links = attachment_links(html, title);
    if links.is_empty() {
        return html.to_owned();
    }
    let mut out = String::with_capacity(html.len() + links.len() * 64);
    let mut last = 0;
    for (range, is_image, file) in links {
        out.push_str(&html[last..range.start]);
        let href = format!("{}/attachments/{}", crate::urls::page(&file.0), crate::urls::segment(&file.1));
        match facts(&file) {
            Some(known) => {
                out.push_str(&escape(&href));
                if is_image && known.image_width.is_some_and(|width| width > SHOWN_IMAGE_WIDTH) {
                    out.push_str(&format!("?width={SHOWN_IMAGE_WIDTH}"));
                }
                out.push('"');
            }
            None => {
                out.push_str(&escape(&href));
                out.push_str("\" class=\"missing-file\" title=\"This file does not exist yet\"");
            }
        }
        // The closing quote was written above.
        last = range.end + 1;
    }
    out.push_str(&html[last..]);
    out
}

/// Turns attachment links into the addresses `target` gives (an export's relative paths). A
/// link to a file `target` does not give loses its `href`/`src` and is marked missing, so that
/// nothing points nowhere.
pub fn relink_attachments(html: &str, title: &str, target: &dyn Fn(&FileRef) -> Option<String>) -> String {
    let links = attachment_links(html, title);
    if links.is_empty() {
        return html.to_owned();
    }
    let mut out = String::with_capacity(html.len() + links.len() * 32);
    let mut last = 0;
    for (range, is_image, file) in links {
        match target(&file) {
            Some(path) => {
                out.push_str(&html[last..range.start]);
                out.push_str(&escape(&path));
            }
            None => {
                let attribute = if is_image { "src=\"".len() } else { "href=\"".len() };
                out.push_str(&html[last..range.start - attribute]);
                out.push_str("class=\"missing-file\" title=\"Not in this export");
            }
        }
        // The closing quote follows.
        last = range.end;
    }
    out.push_str(&html[last..]);
    out
}

#[cfg(test)]
mod attachment_tests {
    use super::*;

    #[test]
    fn attachment_links_resolve_to_the_files_and_missing_ones_are_marked() {
        let html = markdown(
            "![A cat](attachment:cat.png) [the plan](attachment:plan%20v2.pdf) [theirs](<attachment:Other page/x.txt>)",
        )
        .unwrap();
        let refs = attachment_refs(&html, "Home");
        assert_eq!(
            refs,
            vec![
                ("Home".to_owned(), "cat.png".to_owned()),
                ("Home".to_owned(), "plan v2.pdf".to_owned()),
                ("Other page".to_owned(), "x.txt".to_owned()),
            ]
        );
        let shown = resolve_attachments(&html, "Home", &|file: &FileRef| match file.1.as_str() {
            "cat.png" => Some(FileFacts { image_width: Some(1200) }),
            "plan v2.pdf" => Some(FileFacts { image_width: None }),
            _ => None,
        });
        assert!(shown.contains(r#"src="/wiki/Home/attachments/cat.png?width=800""#), "{shown}");
        assert!(shown.contains(r#"href="/wiki/Home/attachments/plan%20v2.pdf""#), "{shown}");
        assert!(
            shown.contains(r#"href="/wiki/Other%20page/attachments/x.txt" class="missing-file""#),
            "{shown}"
        );
        assert!(!shown.contains("attachment:"), "{shown}");
    }
}
