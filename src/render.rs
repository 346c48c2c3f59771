//! Page content to safe HTML: Markdown (CommonMark + GFM tables, strikethrough, task lists,
//! autolinks) rendered by comrak, then everything, Markdown or imported HTML, passes one
//! allowlist sanitizer (ammonia). This is the only place that produces HTML marked safe.

use std::collections::HashSet;
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use comrak::Options;
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

/// A page rendered for storage: safe HTML and the titles its wiki links point at.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    pub links: Vec<String>,
}

/// Below this many headings a page gets no table of contents.
const TOC_MIN_HEADINGS: usize = 3;

/// Renders Markdown and sanitizes the result; `[[Title]]` and `[[Title|label]]` become links
/// to `/wiki/Title`, and long pages get a table of contents.
pub fn markdown_page(source: &str) -> Rendered {
    let arena = comrak::Arena::new();
    let root = comrak::parse_document(&arena, source, &MARKDOWN);
    let mut links = Vec::new();
    let mut headings = Vec::new();
    let mut anchorizer = comrak::Anchorizer::new();
    for node in root.descendants() {
        let mut data = node.data_mut();
        match &mut data.value {
            NodeValue::WikiLink(link) => {
                let title = link.url.trim().to_owned();
                let url = crate::urls::page(&title);
                data.value = NodeValue::Link(Box::new(NodeLink { url, title: String::new() }));
                if crate::domain::PageTitle::parse(&title).is_ok() && !links.contains(&title) {
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
    let mut plugins = Plugins::default();
    plugins.render.codefence_syntax_highlighter = Some(&*HIGHLIGHTER);
    let mut body = String::new();
    if comrak::format_html_with_plugins(root, &MARKDOWN, &mut body, &plugins).is_err() {
        body.clear();
    }
    let toc = table_of_contents(&headings);
    Rendered { html: sanitize(&(toc + &body)), links }
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
pub fn markdown(source: &str) -> String {
    markdown_page(source).html
}

/// Sanitizes HTML (pages brought from the Flask wiki are stored as HTML).
pub fn sanitize(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

/// Renders content in its stored format.
pub fn content(source: &str, format: &str) -> Rendered {
    if format == crate::models::page::FORMAT_HTML {
        Rendered { html: sanitize(source), links: Vec::new() }
    } else {
        markdown_page(source)
    }
}

/// Marks the links to pages that do not exist: they lead to creating the page instead.
pub fn mark_missing(html: &str, missing: &[String]) -> String {
    let mut html = html.to_owned();
    for title in missing {
        let href = format!("href=\"{}\"", crate::urls::page(title));
        let create = format!(
            "href=\"/create?title={}\" class=\"missing-page\" title=\"This page does not exist yet\"",
            crate::urls::encode_query(title)
        );
        html = html.replace(&href, &create);
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_features_survive_sanitizing() {
        let html = markdown(
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
        let html = markdown(
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
        let rendered = content("<p onclick=\"x()\">hi</p><script>bad()</script>", "html");
        assert_eq!(rendered.html, "<p>hi</p>");
    }

    #[test]
    fn wiki_links_become_page_links_and_are_collected() {
        let rendered = markdown_page(
            "See [[Page One]], [[Guides/Install|the guide]] and [[Page One]].\n\n`[[not a link]]`",
        );
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
        let html = markdown(
            "```rust\nfn main() { let x = \"<b>\"; }\n```\n\n<span class=\"flash-danger hl-x\">fake</span>",
        );
        assert!(html.contains(r#"<span class="hl-"#), "{html}");
        assert!(html.contains("&lt;b&gt;"), "code text stays escaped: {html}");
        assert!(!html.contains("flash-danger"), "{html}");
        assert!(!html.contains("style="), "{html}");
    }

    #[test]
    fn long_pages_get_a_table_of_contents_with_working_anchors() {
        let rendered = markdown_page("# One\n\n## Two\n\n## Two\n\ntext");
        let html = rendered.html;
        assert!(html.contains(r#"<nav class="toc">"#), "{html}");
        assert!(html.contains(r##"href="#h-one""##), "{html}");
        assert!(html.contains(r#"id="h-one""#), "{html}");
        assert!(html.contains(r##"href="#h-two-1""##) && html.contains(r#"id="h-two-1""#), "{html}");
        assert!(!markdown("# just one").contains("toc"));
    }
}
