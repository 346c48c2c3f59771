//! Page content to safe HTML: Markdown (CommonMark + GFM tables, strikethrough, task lists,
//! autolinks) rendered by comrak, then everything, Markdown or imported HTML, passes one
//! allowlist sanitizer (ammonia). This is the only place that produces HTML marked safe.

use std::collections::HashSet;
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use comrak::Options;

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
    options
});

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
        .add_tag_attributes("td", ["align"])
        .add_tag_attributes("th", ["align"])
        .id_prefix(Some(ID_PREFIX));
    builder
});

/// Renders Markdown and sanitizes the result.
pub fn markdown(source: &str) -> String {
    sanitize(&comrak::markdown_to_html(source, &MARKDOWN))
}

/// Sanitizes HTML (pages brought from the Flask wiki are stored as HTML).
pub fn sanitize(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

/// Renders content in its stored format.
pub fn content(source: &str, format: &str) -> String {
    if format == crate::models::page::FORMAT_HTML { sanitize(source) } else { markdown(source) }
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
        let html = content("<p onclick=\"x()\">hi</p><script>bad()</script>", "html");
        assert_eq!(html, "<p>hi</p>");
    }
}
