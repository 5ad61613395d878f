//! Markdown tables of the experiments' results (`table.md`, the quickstart's and `oracle`'s
//! tables): a cell's own `|` is escaped, so that labels such as `E[log p(y|x)]`, a sampler's
//! description or a user's title keep the table's columns.

/// `text` as one markdown table cell: `|` escaped as `\|` (GitHub, mdBook and pandoc render it
/// as `|`), line breaks as spaces.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A table row of `cells`, each escaped by [`cell`].
pub fn row<S: AsRef<str>>(cells: &[S]) -> String {
    let inner: Vec<String> = cells.iter().map(|c| cell(c.as_ref())).collect();
    format!("| {} |\n", inner.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_escaped_and_columns_kept() {
        let r = row(&["E[log p(y|x)]", "a\nb", "2"]);
        assert_eq!(r, "| E[log p(y\\|x)] | a b | 2 |\n");
        // the row has as many unescaped separators as a three-column row
        let bars = r
            .match_indices('|')
            .filter(|(i, _)| r.as_bytes()[i - 1.min(*i)] != b'\\');
        assert_eq!(bars.count(), 4);
    }
}
