//! Line diffs with the changed words marked, for the history's diff view and edit conflicts.

use similar::{ChangeTag, TextDiff};

/// One line of a diff, ready for a template (which escapes every piece).
pub struct DiffRow {
    /// `ctx`, `del`, `add`, or `gap` between hunks.
    pub kind: &'static str,
    pub old_no: Option<usize>,
    pub new_no: Option<usize>,
    /// (changed?, text) pieces of the line.
    pub parts: Vec<(bool, String)>,
}

/// Lines of context kept around each change.
const CONTEXT: usize = 3;

/// The diff of two texts, hunk by hunk.
pub fn rows(old: &str, new: &str) -> Vec<DiffRow> {
    let diff = TextDiff::from_lines(old, new);
    let mut rows = Vec::new();
    for (i, group) in diff.grouped_ops(CONTEXT).iter().enumerate() {
        if i > 0 {
            rows.push(DiffRow {
                kind: "gap", old_no: None, new_no: None, parts: vec![(false, "…".into())]
            });
        }
        for op in group {
            for change in diff.iter_inline_changes(op) {
                let kind = match change.tag() {
                    ChangeTag::Delete => "del",
                    ChangeTag::Insert => "add",
                    ChangeTag::Equal => "ctx",
                };
                let parts = change
                    .iter_strings_lossy()
                    .map(|(changed, text)| (changed, text.trim_end_matches(['\n', '\r']).to_owned()))
                    .filter(|(_, text)| !text.is_empty())
                    .collect();
                rows.push(DiffRow {
                    kind,
                    old_no: change.old_index().map(|n| n + 1),
                    new_no: change.new_index().map(|n| n + 1),
                    parts,
                });
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_words_are_marked_on_changed_lines() {
        let rows = rows("one\ntwo three\nfour\n", "one\ntwo 3\nfour\n");
        let kinds: Vec<&str> = rows.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["ctx", "del", "add", "ctx"]);
        assert!(rows[1].parts.iter().any(|(changed, text)| *changed && text == "three"));
        assert!(rows[2].parts.iter().any(|(changed, text)| *changed && text == "3"));
        assert_eq!(rows[2].new_no, Some(2));
    }

    #[test]
    fn identical_texts_have_no_rows() {
        assert!(rows("same\n", "same\n").is_empty());
    }
}
