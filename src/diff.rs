//! Line diffs with the changed words marked, for the history's diff view and edit conflicts,
//! and the three-way merge of concurrent edits — each with bounded work whatever the texts:
//! diffs have a deadline and a cap on what they show, merges that would cost too much are
//! refused before they start.

use std::time::{Duration, Instant};

use similar::{Algorithm, ChangeTag, TextDiff};

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
/// A diff shows at most this many lines; past it, it links to the two full texts.
pub const ROWS_MAX: usize = 2_000;
/// A line of a diff shows at most this many characters.
const LINE_CHARS_MAX: usize = 1_000;
/// Finding the differences may take this long; past it the diff is coarser, not slower.
const DIFF_TIME: Duration = Duration::from_millis(500);
/// Changed words are marked within hunks of at most this many bytes.
const INLINE_MAX: usize = 64 * 1024;

/// A diff ready to show: its rows, and whether it was cut at [`ROWS_MAX`].
pub struct Diff {
    pub rows: Vec<DiffRow>,
    pub truncated: bool,
}

/// The diff of two texts, hunk by hunk, within the caps above.
pub fn diff(old: &str, new: &str) -> Diff {
    let deadline = Instant::now() + DIFF_TIME;
    let diff = TextDiff::configure().algorithm(Algorithm::Myers).deadline(deadline).diff_lines(old, new);
    let mut rows = Vec::new();
    for (i, group) in diff.grouped_ops(CONTEXT).iter().enumerate() {
        if i > 0 {
            rows.push(DiffRow {
                kind: "gap", old_no: None, new_no: None, parts: vec![(false, "…".into())]
            });
        }
        for op in group {
            if rows.len() >= ROWS_MAX {
                return Diff { rows, truncated: true };
            }
            let (_, old_range, new_range) = op.as_tag_tuple();
            let bytes: usize = old_range.filter_map(|i| diff.old_slice(i)).map(str::len).sum::<usize>()
                + new_range.filter_map(|i| diff.new_slice(i)).map(str::len).sum::<usize>();
            let inline_deadline = if bytes <= INLINE_MAX { Some(deadline) } else { Some(Instant::now()) };
            for change in diff.iter_inline_changes_deadline(op, inline_deadline) {
                if rows.len() >= ROWS_MAX {
                    return Diff { rows, truncated: true };
                }
                let kind = match change.tag() {
                    ChangeTag::Delete => "del",
                    ChangeTag::Insert => "add",
                    ChangeTag::Equal => "ctx",
                };
                let mut room = LINE_CHARS_MAX;
                let mut parts: Vec<(bool, String)> = Vec::new();
                for (changed, text) in change.iter_strings_lossy() {
                    let text = text.trim_end_matches(['\n', '\r']);
                    if text.is_empty() || room == 0 {
                        continue;
                    }
                    let shown: String = text.chars().take(room).collect();
                    room -= shown.chars().count();
                    parts.push((changed, shown));
                }
                if room == 0 {
                    parts.push((false, "…".into()));
                }
                rows.push(DiffRow {
                    kind,
                    old_no: change.old_index().map(|n| n + 1),
                    new_no: change.new_index().map(|n| n + 1),
                    parts,
                });
            }
        }
    }
    Diff { rows, truncated: false }
}

/// The rows of [`diff`], for callers that show a cut diff as it is.
pub fn rows(old: &str, new: &str) -> Vec<DiffRow> {
    diff(old, new).rows
}

/// Each of a merge's two diffs may take this long to find; longer means the texts differ too
/// much for an automatic merge to be worth it (or to finish in a request's time).
const MERGE_DIFF_TIME: Duration = Duration::from_millis(250);

/// What a three-way merge of two edits of one ancestor gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Merge {
    /// Both edits apply: the merged text.
    Clean(String),
    /// The edits overlap: the text with conflict markers.
    Conflict(String),
    /// The texts differ too much to merge within the time of a request: nothing was merged.
    TooCostly,
}

/// Merges `mine` and `theirs`, both edits of `ancestor`. The cost of a line merge grows with
/// the size of the texts times how much they differ; both diffs are first found with a
/// deadline (similar's Myers, which gives up at the deadline), and only when both finish in
/// time does diffy merge — on texts known to be close enough to be quick.
pub fn merge(ancestor: &str, theirs: &str, mine: &str) -> Merge {
    for other in [theirs, mine] {
        let started = Instant::now();
        let deadline = started + MERGE_DIFF_TIME;
        let _ =
            TextDiff::configure().algorithm(Algorithm::Myers).deadline(deadline).diff_lines(ancestor, other);
        if Instant::now() >= deadline {
            return Merge::TooCostly;
        }
    }
    match diffy::merge(ancestor, theirs, mine) {
        Ok(merged) => Merge::Clean(merged),
        Err(conflicted) => Merge::Conflict(conflicted),
    }
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

    fn random_lines(bytes: usize, seed: u64) -> String {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut text = String::with_capacity(bytes);
        while text.len() < bytes {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            text.push((b'a' + ((state >> 33) % 26) as u8) as char);
            text.push('\n');
        }
        text
    }

    #[test]
    fn huge_diffs_are_cut_with_a_mark_and_long_lines_are_shortened() {
        let cut = diff(&random_lines(400_000, 1), &random_lines(400_000, 2));
        assert!(cut.truncated);
        assert_eq!(cut.rows.len(), ROWS_MAX);
        let long = diff("short\n", &format!("{}\n", "x".repeat(100_000)));
        assert!(!long.truncated);
        let shown: usize = long.rows.iter().flat_map(|r| &r.parts).map(|(_, t)| t.chars().count()).sum();
        assert!(shown <= 2 * LINE_CHARS_MAX + 2, "{shown}");
    }

    #[test]
    fn merges_keep_both_edits_or_report_the_conflict() {
        let ancestor = "one\ntwo\nthree\nfour\nfive\n";
        let theirs = "ONE\ntwo\nthree\nfour\nfive\n";
        let mine = "one\ntwo\nthree\nfour\nFIVE\n";
        assert_eq!(merge(ancestor, theirs, mine), Merge::Clean("ONE\ntwo\nthree\nfour\nFIVE\n".into()));
        let clash = "1ne\ntwo\nthree\nfour\nfive\n";
        assert!(matches!(merge(ancestor, theirs, clash), Merge::Conflict(text) if text.contains("<<<<<<<")));
    }

    #[test]
    fn merges_of_texts_too_far_apart_are_refused_not_computed() {
        let ancestor = random_lines(400_000, 1);
        assert_eq!(merge(&ancestor, &random_lines(400_000, 2), &random_lines(400_000, 3)), Merge::TooCostly);
        // A large page with small edits still merges.
        let mut theirs = ancestor.clone();
        theirs.insert_str(0, "top\n");
        let mine = format!("{ancestor}bottom\n");
        assert!(
            matches!(merge(&ancestor, &theirs, &mine), Merge::Clean(text) if text.starts_with("top\n") && text.ends_with("bottom\n"))
        );
    }
}
