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
    /// The edits overlap: the merged parts and, between them, each overlapping region's two
    /// versions.
    Conflict(Vec<Part>),
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
    // Markers longer than any run of marker characters the texts hold: what the merge writes
    // cannot be confused with what people wrote.
    let marker_len = [ancestor, theirs, mine]
        .iter()
        .flat_map(|text| text.lines())
        .map(|line| {
            let first = line.chars().next();
            match first {
                Some(c @ ('<' | '|' | '=' | '>')) => line.chars().take_while(|x| *x == c).count(),
                _ => 0,
            }
        })
        .max()
        .unwrap_or(0)
        .max(6)
        + 1;
    let terminated = |text: &str| {
        if text.is_empty() || text.ends_with('\n') { text.to_owned() } else { format!("{text}\n") }
    };
    let (ancestor, theirs, mine) = (terminated(ancestor), terminated(theirs), terminated(mine));
    let mut options = diffy::MergeOptions::new();
    options
        .set_conflict_marker_length(marker_len)
        .set_conflict_style(diffy::ConflictStyle::Merge)
        .set_incomplete_hunk_style(diffy::IncompleteHunkStyle::Git);
    match options.merge(&ancestor, &theirs, &mine) {
        Ok(merged) => Merge::Clean(merged),
        Err(conflicted) => Merge::Conflict(parts(&conflicted, marker_len)),
    }
}

/// A piece of a merge that met overlapping edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text both edits agree on (or only one of them changed): already merged.
    Merged(String),
    /// A region both edits changed: the version saved meanwhile and the member's own.
    Conflict { theirs: String, mine: String },
}

/// The parts of a conflicted merge, read back from its markers (of `marker_len` characters,
/// longer than anything in the texts).
fn parts(conflicted: &str, marker_len: usize) -> Vec<Part> {
    let marker = |c: char| c.to_string().repeat(marker_len);
    let (open, middle, close) = (marker('<'), marker('='), marker('>'));
    enum At {
        Merged,
        Theirs,
        Mine,
    }
    let mut parts = Vec::new();
    let (mut merged, mut theirs, mut mine) = (String::new(), String::new(), String::new());
    let mut at = At::Merged;
    for line in conflicted.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        match at {
            At::Merged if bare.starts_with(&open) && bare[open.len()..].starts_with(' ') => {
                if !merged.is_empty() {
                    parts.push(Part::Merged(std::mem::take(&mut merged)));
                }
                at = At::Theirs;
            }
            At::Theirs if bare == middle => at = At::Mine,
            At::Mine if bare.starts_with(&close) && bare[close.len()..].starts_with(' ') => {
                parts.push(Part::Conflict {
                    theirs: std::mem::take(&mut theirs),
                    mine: std::mem::take(&mut mine),
                });
                at = At::Merged;
            }
            At::Merged => merged.push_str(line),
            At::Theirs => theirs.push_str(line),
            At::Mine => mine.push_str(line),
        }
    }
    if !merged.is_empty() {
        parts.push(Part::Merged(merged));
    }
    parts
}

/// How a member resolved one conflicting region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Mine,
    Theirs,
    Both,
}

impl Choice {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "mine" => Some(Self::Mine),
            "theirs" => Some(Self::Theirs),
            "both" => Some(Self::Both),
            _ => None,
        }
    }
}

/// The text a resolution makes: merged parts as they are, each region as chosen ("both": the
/// member's version after the one saved meanwhile).
pub fn resolve(parts: &[Part], choices: &[Choice]) -> String {
    let mut out = String::new();
    let mut choices = choices.iter();
    for part in parts {
        match part {
            Part::Merged(text) => out.push_str(text),
            Part::Conflict { theirs, mine } => match choices.next().copied().unwrap_or(Choice::Both) {
                Choice::Mine => out.push_str(mine),
                Choice::Theirs => out.push_str(theirs),
                Choice::Both => {
                    out.push_str(theirs);
                    if !theirs.is_empty() && !theirs.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(mine);
                }
            },
        }
    }
    out
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
        let clash = "uno\ntwo\nthree\nfour\nfive\n";
        let Merge::Conflict(parts) = merge(ancestor, theirs, clash) else { panic!("a conflict") };
        assert_eq!(
            parts,
            vec![
                Part::Conflict { theirs: "ONE\n".into(), mine: "uno\n".into() },
                Part::Merged("two\nthree\nfour\nfive\n".into()),
            ]
        );
        assert_eq!(resolve(&parts, &[Choice::Mine]), clash);
        assert_eq!(resolve(&parts, &[Choice::Theirs]), theirs);
        assert_eq!(resolve(&parts, &[Choice::Both]), "ONE\nuno\ntwo\nthree\nfour\nfive\n");
    }

    #[test]
    fn text_that_looks_like_conflict_markers_stays_text() {
        let ancestor = "<<<<<<< ours\nmiddle\n=======\n>>>>>>> theirs\n";
        let theirs = "<<<<<<< ours\nTHEIRS\n=======\n>>>>>>> theirs\n";
        let mine = "<<<<<<< ours\nmine\n=======\n>>>>>>> theirs\n";
        let Merge::Conflict(parts) = merge(ancestor, theirs, mine) else { panic!("a conflict") };
        assert_eq!(
            parts,
            vec![
                Part::Merged("<<<<<<< ours\n".into()),
                Part::Conflict { theirs: "THEIRS\n".into(), mine: "mine\n".into() },
                Part::Merged("=======\n>>>>>>> theirs\n".into()),
            ]
        );
        assert_eq!(resolve(&parts, &[Choice::Mine]), mine);
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
