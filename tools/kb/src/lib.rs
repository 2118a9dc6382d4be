//! The knowledge-base tool: word search over the Markdown and text files under `/kb`, a folder
//! the whitelist grants read-only (`fs = [{ host = "./kb", guest = "/kb", mode = "ro" }]`).

use std::collections::BTreeSet;

/// Where the whitelist mounts the knowledge base.
const ROOT: &str = "/kb";
const SNIPPET_CHARS: usize = 200;
const DEFAULT_LIMIT: u32 = 5;

#[harness_guest::tool]
mod kb {
    use harness_guest::{fs, log};

    use super::{DEFAULT_LIMIT, ROOT, score, snippet, title, words};

    impl From<harness_guest::Error> for KbError {
        fn from(error: harness_guest::Error) -> KbError {
            KbError::Unreadable(error.to_string())
        }
    }

    /// Finds documents containing the query's words, best first.
    pub fn search(query: String, limit: Option<u32>) -> Result<Vec<Hit>, KbError> {
        let wanted = words(&query);
        if wanted.is_empty() {
            return Err(KbError::EmptyQuery);
        }
        let mut hits = Vec::new();
        let files = fs::walk(ROOT)?;
        for path in &files {
            let is_text = path
                .extension()
                .is_some_and(|e| e == "md" || e == "txt");
            if !is_text {
                continue;
            }
            let text = fs::read_to_string(path)?;
            let score = score(&text, &wanted);
            if score > 0 {
                hits.push(Hit {
                    path: path.display().to_string(),
                    title: title(path, &text),
                    score,
                    snippet: snippet(&text, &wanted),
                });
            }
        }
        hits.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.path.cmp(&b.path)));
        hits.truncate(limit.unwrap_or(DEFAULT_LIMIT) as usize);
        log::info(format!(
            "{} of {} files match {:?}",
            hits.len(),
            files.len(),
            query
        ));
        Ok(hits)
    }

    /// The full text of one document.
    pub fn document(path: String) -> Result<String, KbError> {
        Ok(fs::read_to_string(&path)?)
    }
}

/// The distinct lower-case words of `text` with two or more letters or digits.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .collect()
}

/// How many of `wanted` occur in `text` as words.
fn score(text: &str, wanted: &BTreeSet<String>) -> u32 {
    words(text).intersection(wanted).count() as u32
}

/// The first line holding a wanted word, trimmed and cut to [`SNIPPET_CHARS`].
fn snippet(text: &str, wanted: &BTreeSet<String>) -> String {
    text.lines()
        .find(|line| !words(line).is_disjoint(wanted))
        .unwrap_or_default()
        .trim()
        .chars()
        .take(SNIPPET_CHARS)
        .collect()
}

/// The first Markdown heading, or the file name.
fn title(path: &std::path::Path, text: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix('#'))
        .map(|heading| heading.trim_start_matches('#').trim().to_owned())
        .filter(|heading| !heading.is_empty())
        .unwrap_or_else(|| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_count_distinct_query_words() {
        let wanted = words("Reset the VPN password");
        assert_eq!(wanted.len(), 4);
        let text = "# VPN\nTo reset a password, open the portal. Password rules apply.";
        assert_eq!(score(text, &wanted), 4);
        assert_eq!(snippet(text, &wanted), "# VPN");
        assert_eq!(title("/kb/vpn.md".as_ref(), text), "VPN");
        assert_eq!(title("/kb/notes.txt".as_ref(), "plain"), "notes.txt");
    }
}
