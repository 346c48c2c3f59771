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
    options
});

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
        "li" => class.starts_with("toc-"),
        _ => false,
    };
    let kept: Vec<&str> = value.split_whitespace().filter(allowed).collect();
    (!kept.is_empty()).then(|| kept.join(" ").into())
}

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer nofollow"))
        .add_tags(["input"])
        // Task lists: every input is a disabled checkbox, whatever the source said.
        .add_tag_attributes("input", ["checked"])
        .set_tag_attribute_value("input", "type", "checkbox")
        .set_tag_attribute_value("input", "disabled", "")
        .add_tag_attributes("a", ["id"])
        .add_tag_attributes("h1", ["id"])
        .add_tag_attributes("h2", ["id"])
        .add_tag_attributes("h3", ["id"])
        .add_tag_attributes("h4", ["id"])
        .add_tag_attributes("h5", ["id"])
        .add_tag_attributes("h6", ["id"])
        .add_tag_attributes("code", ["class"])
        .add_tag_attributes("span", ["class"])
        .add_tag_attributes("pre", ["class"])
        .attribute_filter(filter_classes)
        .add_tags(["nav"])
        .add_tag_attributes("nav", ["class"])
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
/// Code blocks larger than this, or with a line longer than [`HIGHLIGHT_LINE_MAX`], are shown
/// as plain text: highlighting costs far more per byte than anything else in a page.
pub const HIGHLIGHT_BLOCK_MAX: usize = 64 * 1024;
const HIGHLIGHT_LINE_MAX: usize = 4 * 1024;
/// Highlighted HTML is about fifty times the code: once a page's highlighted HTML reaches this,
/// its remaining code blocks are shown as plain text.
const HIGHLIGHT_PAGE_MAX: usize = 2 * 1024 * 1024;

/// Why content cannot become a page, in words for the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "The content is nested too deeply: at most {DEPTH_MAX} levels of quotes, lists or HTML elements inside each other."
    )]
    TooDeep,
    #[error("The content links to {0} different pages: a page may link to at most {LINKS_MAX}.")]
    TooManyLinks(usize),
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
    if comrak::format_html_with_plugins(root, &MARKDOWN, &mut body, &plugins).is_err() {
        body.clear();
    }
    let toc = table_of_contents(&headings);
    Ok(Rendered { html: sanitize(&(toc + &body))?, links })
}

/// Highlights code blocks within the caps above and writes the rest as escaped plain text.
#[derive(Default)]
struct CappedHighlighter {
    /// Highlighted HTML written so far on this page.
    written: AtomicUsize,
}

impl CappedHighlighter {
    fn worth_highlighting(&self, code: &str) -> bool {
        code.len() <= HIGHLIGHT_BLOCK_MAX
            && code.lines().all(|line| line.len() <= HIGHLIGHT_LINE_MAX)
            && self.written.load(Ordering::Relaxed) < HIGHLIGHT_PAGE_MAX
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
    let mut out = String::from("<nav class=\"toc\"><p><strong>Contents</strong></p><ul>");
    for (level, text, id) in headings {
        let depth = usize::from(level.saturating_sub(top));
        out.push_str(&format!(
            "<li class=\"toc-{depth}\"><a href=\"#{}\">{}</a></li>",
            escape(id),
            escape(text)
        ));
    }
    out.push_str("</ul></nav>");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
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

/// Whether `html` nests elements deeper than `limit`, read by html5ever's tokenizer (linear)
/// with the tree builder's rules followed where they close elements and taken at their most
/// where they may keep or reopen them: void elements; end tags of blocks, table parts, lists and
/// paragraphs close what is open inside them when in scope; formatting elements closed that way
/// still count (the tree builder may reopen them); other end tags count only when they end the
/// current element; paragraphs, list items, rows and cells closed by their next sibling; the
/// implied `tbody` and `tr`; raw text in `script`, `textarea` and the like. The estimate is
/// never below the depth the sanitizer's tree builder reaches (a property test checks it) and
/// above it only for misnested markup.
fn nesting_exceeds(html: &str, limit: usize) -> bool {
    use html5ever::tendril::StrTendril;
    use html5ever::tokenizer::{BufferQueue, Tokenizer, TokenizerOpts};

    if html.len() < limit * 3 {
        return false;
    }
    let tokenizer = Tokenizer::new(DepthSink { limit, ..DepthSink::default() }, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.exceeded.get()
}

#[derive(Default)]
struct DepthSink {
    limit: usize,
    open: RefCell<Vec<html5ever::LocalName>>,
    exceeded: Cell<bool>,
}

impl html5ever::tokenizer::TokenSink for DepthSink {
    type Handle = ();

    fn process_token(
        &self,
        token: html5ever::tokenizer::Token,
        _line: u64,
    ) -> html5ever::tokenizer::TokenSinkResult<()> {
        use html5ever::tokenizer::states::RawKind;
        use html5ever::tokenizer::{TagKind, Token, TokenSinkResult};

        let Token::TagToken(tag) = token else { return TokenSinkResult::Continue };
        if self.exceeded.get() {
            return TokenSinkResult::Continue;
        }
        let name = &*tag.name;
        let mut open = self.open.borrow_mut();
        match tag.kind {
            TagKind::EndTag => {
                let heading = |n: &str| matches!(n, "h1" | "h2" | "h3" | "h4" | "h5" | "h6");
                let matches = |n: &html5ever::LocalName| *n == tag.name || (heading(name) && heading(n));
                let Some(at) = open.iter().rposition(matches) else { return TokenSinkResult::Continue };
                let above = &open[at + 1..];
                let closes = if TABLE_PARTS.contains(&name) {
                    // Table scope: only another table stands in the way.
                    !above.iter().any(|n| matches!(&**n, "table" | "template" | "html"))
                } else if BLOCKS.contains(&name) || heading(name) || matches!(name, "p" | "li" | "dd" | "dt")
                {
                    // The tree builder closes everything open inside the element, if it is in
                    // scope; `</p>` stops at buttons, `</li>` at lists too.
                    let extra: &[&str] = match name {
                        "p" => &["button"],
                        "li" => &["ol", "ul"],
                        _ => &[],
                    };
                    !above.iter().any(|n| SCOPE_FENCES.contains(&&**n) || extra.contains(&&**n))
                } else {
                    // Formatting and other end tags: the adoption agency or the special-element
                    // rule may keep things open; only the end of the current element surely closes.
                    above.is_empty()
                };
                if closes {
                    let closed = open.split_off(at);
                    // Formatting elements closed this way stay on the list the tree builder
                    // reopens them from (unless a cell's marker clears them): keep counting them.
                    let mut in_cell = false;
                    for element in closed.into_iter().skip(1) {
                        in_cell |= MARKERS.contains(&&*element);
                        if !in_cell && FORMATTING.contains(&&*element) {
                            open.push(element);
                        }
                    }
                }
                TokenSinkResult::Continue
            }
            TagKind::StartTag => {
                let foreign = open.iter().any(|n| &**n == "svg" || &**n == "math");
                if VOID.contains(&name) || (tag.self_closing && foreign) {
                    return TokenSinkResult::Continue;
                }
                let top =
                    |open: &Vec<html5ever::LocalName>| open.last().map(|n| n.to_string()).unwrap_or_default();
                match name {
                    "li" if top(&open) == "li" => drop(open.pop()),
                    "dd" | "dt" if matches!(top(&open).as_str(), "dd" | "dt") => drop(open.pop()),
                    "option" if top(&open) == "option" => drop(open.pop()),
                    "td" | "th" | "tr" => {
                        // A new cell closes the open one; a new row closes the open row.
                        if matches!(top(&open).as_str(), "td" | "th") {
                            open.pop();
                        }
                        if name == "tr" && top(&open) == "tr" {
                            open.pop();
                        }
                        // Rows live in a table section, and cells in a row: the tree builder
                        // adds the missing ones.
                        if top(&open) == "table" {
                            open.push(html5ever::LocalName::from("tbody"));
                        }
                        if name != "tr" && matches!(top(&open).as_str(), "tbody" | "thead" | "tfoot") {
                            open.push(html5ever::LocalName::from("tr"));
                        }
                    }
                    _ if top(&open) == "p" && CLOSES_P.contains(&name) => drop(open.pop()),
                    _ => {}
                }
                open.push(tag.name.clone());
                if open.len() > self.limit {
                    self.exceeded.set(true);
                }
                match name {
                    "script" | "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                        TokenSinkResult::RawData(RawKind::Rawtext)
                    }
                    "textarea" | "title" => TokenSinkResult::RawData(RawKind::Rcdata),
                    "plaintext" => TokenSinkResult::Plaintext,
                    _ => TokenSinkResult::Continue,
                }
            }
        }
    }
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param", "source",
    "track", "wbr", "image",
];

/// Elements an end tag of an element outside them does not reach through.
const SCOPE_FENCES: &[&str] =
    &["applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "svg", "math"];

/// End tags the tree builder treats as table parts (table scope).
const TABLE_PARTS: &[&str] = &["table", "tbody", "thead", "tfoot", "tr", "td", "th", "caption"];

/// Elements that put a marker on the list of active formatting elements (what is opened inside
/// them is forgotten when they close).
const MARKERS: &[&str] = &["td", "th", "caption", "applet", "marquee", "object", "template"];

/// End tags the tree builder handles as blocks: they close what is open inside them.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "button",
    "center",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "header",
    "hgroup",
    "listing",
    "main",
    "menu",
    "nav",
    "ol",
    "pre",
    "search",
    "section",
    "summary",
    "ul",
    "form",
];

/// Formatting elements (the tree builder's adoption agency rearranges their misnested ends).
const FORMATTING: &[&str] =
    &["a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u"];

/// Start tags that close an open paragraph.
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "details",
    "dialog",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "ul",
];

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
    fn markdown_features_survive_sanitizing() {
        let html = md(
            "# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~\n\n- [x] done\n- [ ] todo\n\nsee https://example.com\n",
        );
        assert!(html.contains("<h1"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<del>gone</del>"), "{html}");
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
        assert!(html.contains(r#"<nav class="toc">"#), "{html}");
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
    fn html_over_the_cap_is_refused() {
        let table = format!("| a | b |\n|---|---|\n{}", "| <b>1</b> | <i>2</i> |\n".repeat(120_000));
        assert!(matches!(markdown(&table), Err(RenderError::TooLarge(_))));
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
