//! Properties checked over generated inputs (proptest), standing in for `cargo fuzz`, which needs
//! a nightly toolchain this project's machines cannot install. The default run is short; a long
//! run is `PROPTEST_CASES=1000000 cargo test --release --test properties` (see BENCHMARKS.md).

use std::io::Cursor;

use proptest::prelude::*;
use quire::domain::{PageTitle, Username};

/// Pieces attackers and Markdown are made of; a generated input is a sequence of them.
const FRAGMENTS: &[&str] = &[
    "<script>",
    "</script>",
    "<SCRIPT SRC=x>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<a href=\"",
    "javascript:",
    "JaVaScRiPt:",
    "jav&#x09;ascript:",
    "&#106;avascript:",
    "data:text/html,",
    "vbscript:",
    "\" ",
    "onclick=",
    " onmouseover=\"x\"",
    "style=\"",
    "expression(",
    "<iframe src=",
    "<object data=",
    "<embed src=",
    "<math><mi xlink:href=",
    "<style>",
    "</style>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<noscript>",
    "<template>",
    "<textarea>",
    "</title>",
    "<base href=",
    "<meta http-equiv=refresh content=0;url=",
    "<form action=",
    "<button formaction=",
    "<input autofocus onfocus=",
    "<details open ontoggle=",
    "[x](",
    ")",
    "![i](",
    "[[",
    "]]",
    "|",
    "<",
    ">",
    "`",
    "```",
    "\n",
    "\n\n",
    "# ",
    "- [ ] ",
    "| a | b |\n|---|---|\n",
    "**",
    "~~",
    "&",
    "&lt;",
    "\"",
    "'",
    "=",
    "/",
    " ",
    "\t",
    "\u{0}",
    "\u{feff}",
    "é",
    "日本",
    "🚀",
    "http://x",
    "https://example.com",
    "<a href=x>",
    "</a>",
    "<p>",
    "</p>",
    "<div>",
    "<span class=\"hl-x flash\">",
    "<nav class=toc>",
    "<li class=toc-1>",
];

/// Pieces of the Markdown people write: what the saved page and its preview must render alike.
const MARKDOWN: &[&str] = &[
    "# ",
    "## ",
    "### ",
    "# Alpha\n",
    "```rust\n",
    "```\n",
    "```\n",
    "~~~python\n",
    "~~~\n",
    "fn main() {\n    println!(\"hi\");\n}\n",
    "def f(x):\n    return x\n",
    "    indented code\n",
    "[[Alpha]]",
    "[[Beta|the beta page]]",
    "[[Gamma]]",
    "[[Missing page]]",
    "- item\n",
    "1. first\n",
    "- [ ] todo\n",
    "- [x] done\n",
    "> quoted\n",
    "| a | b |\n|---|---|\n| 1 | 2 |\n",
    "**bold**",
    "*em*",
    "`code`",
    "$x^2$",
    "https://example.com/a/very/long/path",
    "<b>html</b>",
    "text ",
    "word",
    "\n",
    "\n\n",
    "  \n",
    "\t",
];

/// Titles that exist in the property's imagined wiki; the others are missing.
const EXISTING: &[&str] = &["Alpha", "Beta"];

fn markdown_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(MARKDOWN).prop_map(str::to_owned),
            1 => "[a-zA-Z0-9 ]{0,12}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// What a browser's form submission makes of a textarea's text: every line break as CRLF.
fn as_submitted(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn missing(links: &[String]) -> Vec<String> {
    links.iter().filter(|title| !EXISTING.contains(&title.as_str())).cloned().collect()
}

fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
            1 => any::<String>(),
            1 => "[a-zA-Z0-9 ]{0,12}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// Pieces that nest: quotes, lists, HTML blocks and formatting, open and closed.
const NESTING: &[&str] = &[
    ">",
    "> ",
    "- ",
    "* ",
    "1. ",
    "  ",
    "    ",
    "\n",
    "<div>",
    "</div>",
    "<b>",
    "</b>",
    "<i>",
    "<p>",
    "</p>",
    "<ul><li>",
    "</li>",
    "<table><tr><td>",
    "</td>",
    "<blockquote>",
    "<span>",
    "text",
    "**",
    "_",
    "[",
    "](x)",
    "[[T]]",
    "<b id=1>",
    "</i>",
    "<a href=x>",
    "</a>",
    "<h1>",
    "</h2>",
    "<svg>",
    "<path/>",
    "</svg>",
    "<dl><dt>",
    "<dd>",
    "<select><option>",
    "<template>",
    "</template>",
    "<tbody>",
    "</tr>",
    "</table>",
    "</ul>",
    "</blockquote>",
    "<col>",
    "<caption>",
    "</span>",
    "<li>",
    "<tr>",
    "<td>",
    "<em>",
    "</em>",
    "<button>",
    "<ol>",
    "</ol>",
    "<font>",
    "<nobr>",
    "<u>",
    "<code>",
    "<object>",
    "</object>",
    "<math>",
    "<mi>",
    "<xmp>",
    "</xmp>",
    "<textarea>",
    "</textarea>",
    "<body>",
    "<html>",
    "<frameset>",
];

fn nested() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NESTING), 0..600).prop_map(|parts| parts.concat())
}

/// The deepest element nesting of sanitized HTML (which closes every element it opens).
fn depth(html: &str) -> usize {
    const VOID: &[&str] = &["br", "hr", "img", "input", "col", "wbr"];
    let (mut open, mut deepest) = (0usize, 0usize);
    for tag in html.split('<').skip(1) {
        let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '/').collect();
        if let Some(_closing) = name.strip_prefix('/') {
            open = open.saturating_sub(1);
        } else if !VOID.contains(&name.as_str()) && !name.is_empty() {
            open += 1;
            deepest = deepest.max(open);
        }
    }
    deepest
}

/// The tags of sanitized HTML as (name, attributes), read with quotes respected.
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let tag_text = &rest[start + 1..];
        let mut end = tag_text.len();
        let mut quote = None;
        for (i, c) in tag_text.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let inner = &tag_text[..end];
        rest = &tag_text[end.min(tag_text.len())..];
        let mut parts = inner.trim_start_matches('/').splitn(2, |c: char| c.is_whitespace());
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut attributes = Vec::new();
        let mut attrs = parts.next().unwrap_or_default();
        while !attrs.trim().is_empty() {
            attrs = attrs.trim_start();
            let name_end = attrs.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(attrs.len());
            let attr = attrs[..name_end].to_ascii_lowercase();
            attrs = &attrs[name_end..];
            let mut value = String::new();
            if let Some(after) = attrs.strip_prefix('=') {
                if let Some(quoted) = after.strip_prefix('"') {
                    let close = quoted.find('"').unwrap_or(quoted.len());
                    value = quoted[..close].to_owned();
                    attrs = &quoted[(close + 1).min(quoted.len())..];
                } else {
                    let close = after.find(char::is_whitespace).unwrap_or(after.len());
                    value = after[..close].to_owned();
                    attrs = &after[close..];
                }
            }
            attributes.push((attr, value));
        }
        out.push((name, attributes));
    }
    out
}

fn decoded(value: &str) -> String {
    value
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn assert_safe(html: &str) -> Result<(), TestCaseError> {
    const FORBIDDEN_TAGS: &[&str] = &[
        "script",
        "iframe",
        "object",
        "embed",
        "style",
        "base",
        "meta",
        "form",
        "button",
        "textarea",
        "svg",
        "link",
        "annotation-xml",
        "maction",
        "mglyph",
    ];
    // MathML (what `$…$` renders to) is allowed with presentational attributes only: no link,
    // no href, nothing that switches back to HTML.
    const MATHML_ATTRIBUTES: &[&str] = &[
        "display",
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
        "mathvariant",
        "width",
        "height",
        "depth",
        "linethickness",
        "displaystyle",
        "scriptlevel",
        "encoding",
    ];
    for (name, attributes) in tags(html) {
        prop_assert!(!FORBIDDEN_TAGS.contains(&name.as_str()), "<{}> in {:?}", name, html);
        let mathml = name == "math"
            || name == "semantics"
            || name == "annotation"
            || (name.starts_with('m')
                && name.len() > 1
                && !["mark", "menu", "meter", "main"].contains(&name.as_str()));
        if mathml {
            for (attr, _) in &attributes {
                prop_assert!(
                    MATHML_ATTRIBUTES.contains(&attr.as_str()),
                    "{} on <{}> in {:?}",
                    attr,
                    name,
                    html
                );
            }
        }
        for (attr, value) in attributes {
            prop_assert!(!attr.starts_with("on"), "event handler {} in {:?}", attr, html);
            prop_assert!(
                attr != "style" && attr != "srcdoc" && attr != "formaction",
                "{} in {:?}",
                attr,
                html
            );
            if matches!(attr.as_str(), "href" | "src" | "action" | "xlink:href" | "cite") {
                let v = decoded(&value);
                prop_assert!(
                    !v.starts_with("javascript:") && !v.starts_with("vbscript:") && !v.starts_with("data:"),
                    "{}={:?} in {:?}",
                    attr,
                    value,
                    html
                );
            }
            if attr == "class" {
                prop_assert!(
                    value.split_whitespace().all(|c| c.starts_with("hl-")
                        || c.starts_with("language-")
                        || c.starts_with("toc")
                        || c == "anchor"
                        || c == "syntax-highlighting"),
                    "class {:?} in {:?}",
                    value,
                    html
                );
            }
        }
    }
    Ok(())
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::new(width, height).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rendered_markdown_never_carries_script(source in hostile()) {
        assert_safe(&quire::render::markdown(&source).unwrap_or_default())?;
    }

    #[test]
    fn nested_input_is_refused_or_renders_within_the_depth_limit(source in nested()) {
        match quire::render::markdown(&source) {
            Ok(html) => prop_assert!(
                depth(&html) <= quire::render::DEPTH_MAX,
                "{} levels from {source:?}",
                depth(&html)
            ),
            Err(why) => prop_assert!(why.to_string().contains("nested too deeply"), "{why}"),
        }
    }

    /// The saved page (submitted by a form, stored, shown with its missing links marked) shows
    /// exactly the HTML its preview showed (the text as the script sends it, rendered by the same
    /// server, marked alike).
    #[test]
    fn the_saved_page_shows_what_its_preview_showed(text in markdown_text(), title in prop::sample::select(&["Alpha", "Some page"][..])) {
        use quire::render;
        let stored_text = render::normalize_newlines(&as_submitted(&text)).into_owned();
        let Ok(stored) = render::markdown_page(&stored_text) else { return Ok(()) };
        let shown = render::display(&stored.html, &missing(&stored.links), title);
        let preview = render::markdown_page(&text).expect("the preview renders what the save rendered");
        let previewed = render::display(&preview.html, &missing(&preview.links), title);
        prop_assert_eq!(&shown, &previewed);
        // Code keeps its lines: no carriage return reaches the highlighter, which would show
        // each as a blank line.
        prop_assert!(!shown.contains('\r'));
    }

    #[test]
    fn sanitized_html_never_carries_script(source in hostile()) {
        assert_safe(&quire::render::sanitize(&source).unwrap_or_default())?;
    }

    #[test]
    fn a_parsed_title_is_bounded_and_routes_back(raw in any::<String>()) {
        if let Ok(title) = PageTitle::parse(&raw) {
            let title = title.as_str();
            let chars = title.chars().count();
            prop_assert!((1..=100).contains(&chars));
            prop_assert!(!title.chars().any(char::is_control));
            prop_assert_eq!(title, title.trim());
            prop_assert!(title != "." && title != "..");
            let path = quire::urls::page(title);
            let segment = path.strip_prefix("/wiki/").unwrap();
            prop_assert!(!segment.contains('/') && !segment.contains('?') && !segment.contains('#'));
            let back = percent_encoding::percent_decode_str(segment).decode_utf8().unwrap();
            prop_assert_eq!(back.as_ref(), title);
        }
    }

    #[test]
    fn a_parsed_username_is_bounded(raw in any::<String>()) {
        if let Ok(name) = Username::parse(&raw) {
            let name = name.as_str();
            prop_assert!((1..=50).contains(&name.chars().count()));
            prop_assert!(!name.chars().any(char::is_control));
            prop_assert_eq!(name, name.trim());
        }
    }

    #[test]
    fn the_avatar_validator_never_panics_on_bytes(name in "[a-z]{0,8}\\.(png|jpg|gif|svg)", bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = quire::uploads::validate(&name, &bytes);
    }

    #[test]
    fn a_mutated_png_is_refused_or_reencoded_within_bounds(flips in prop::collection::vec((0usize..200, any::<u8>()), 1..8), width in 1u32..64, height in 1u32..64) {
        let mut bytes = png(width, height);
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        if let Ok(avatar) = quire::uploads::validate("x.png", &bytes) {
            let image = image::load_from_memory(&avatar.bytes).expect("a re-encoded avatar decodes");
            prop_assert!(image.width() <= 4096 && image.height() <= 4096);
        }
    }
}

#[test]
fn the_checker_itself_catches_what_it_looks_for() {
    for bad in [
        "<script>x</script>",
        "<p onclick=\"x\">",
        "<a href=\"javascript:alert(1)\">",
        "<a href=\"  JavaScript:x\">",
        "<img src=\"data:image/svg+xml,x\">",
        "<span class=\"flash\">",
        "<p title=\"a>b\" onmouseover=\"x\">",
    ] {
        assert!(assert_safe(bad).is_err(), "{bad}");
    }
    assert!(assert_safe("<p title=\"on=x\">text &lt;script&gt;</p><a href=\"/wiki/x\">").is_ok());
}
