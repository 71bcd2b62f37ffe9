//! The semantic response cache (seed Q26, optimization 2): a question close enough to one
//! answered before gets the cached answer without calling the LLM.
//!
//! "Close" is real similarity over text vectors: each text becomes a sparse vector of
//! hashed character n-grams (trigrams of the lower-cased text with word boundaries, so
//! "return policy?" and "Return policy" are near; bigrams for Japanese), L2-normalised,
//! and a cached question matches when the cosine similarity reaches the profile's
//! `threshold`. Entries are per store (answers are store-specific), expire after an hour
//! (the seed's TTL) and are bounded per store, oldest out first.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Dimensions the n-grams are hashed into.
const DIMS: u64 = 1 << 16;
const TTL: Duration = Duration::from_secs(3600);
const MAX_ENTRIES_PER_STORE: usize = 2048;

/// A sparse, L2-normalised vector: (dimension, weight), sorted by dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector(Vec<(u32, f32)>);

impl Vector {
    pub fn of(text: &str) -> Self {
        let lower: Vec<char> = format!(" {} ", text.to_lowercase())
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let mut counts: HashMap<u32, f32> = HashMap::new();
        let mut add = |gram: &[char]| {
            if gram.iter().all(|c| *c == ' ') {
                return;
            }
            let mut h = DefaultHasher::new();
            gram.hash(&mut h);
            *counts.entry((h.finish() % DIMS) as u32).or_default() += 1.0;
        };
        for w in lower.windows(3) {
            add(w);
        }
        // Bigrams carry Japanese, where a character is nearly a word.
        for w in lower
            .windows(2)
            .filter(|w| !w[0].is_ascii() || !w[1].is_ascii())
        {
            add(w);
        }
        let norm = counts
            .values()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        let mut v: Vec<(u32, f32)> = counts.into_iter().map(|(k, c)| (k, c / norm)).collect();
        v.sort_unstable_by_key(|(k, _)| *k);
        Self(v)
    }

    /// Cosine similarity (both vectors are unit length).
    pub fn cosine(&self, other: &Self) -> f64 {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j, mut dot) = (0, 0, 0.0f64);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    dot += f64::from(a[i].1) * f64::from(b[j].1);
                    i += 1;
                    j += 1;
                }
            }
        }
        dot
    }
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub text: String,
    pub tokens: u32,
}

struct Entry {
    vector: Vector,
    answer: Cached,
    at: Instant,
}

pub struct SemanticCache {
    threshold: f64,
    stores: Mutex<HashMap<String, VecDeque<Entry>>>,
}

impl SemanticCache {
    pub fn new(threshold: f64) -> Self {
        Self {
            threshold,
            stores: Mutex::new(HashMap::new()),
        }
    }

    /// The answer to the most similar question of `store` at or above the threshold.
    pub fn lookup(&self, store: &str, question: &Vector) -> Option<Cached> {
        let mut stores = self.stores.lock().expect("cache lock");
        let entries = stores.get_mut(store)?;
        let now = Instant::now();
        while entries
            .front()
            .is_some_and(|e| now.duration_since(e.at) > TTL)
        {
            entries.pop_front();
        }
        entries
            .iter()
            .map(|e| (e.vector.cosine(question), e))
            .filter(|(sim, _)| *sim >= self.threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, e)| e.answer.clone())
    }

    pub fn insert(&self, store: &str, question: Vector, answer: Cached) {
        let mut stores = self.stores.lock().expect("cache lock");
        let entries = stores.entry(store.to_string()).or_default();
        if entries.len() >= MAX_ENTRIES_PER_STORE {
            entries.pop_front();
        }
        entries.push_back(Entry {
            vector: question,
            answer,
            at: Instant::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_questions_are_similar_and_others_not() {
        let a = Vector::of("What is your return policy?");
        assert!((a.cosine(&a) - 1.0).abs() < 1e-6);
        assert!(a.cosine(&Vector::of("what is your return policy")) > 0.95);
        assert!(a.cosine(&Vector::of("Can you recommend manga like One Piece?")) < 0.5);
        let ja = Vector::of("返品はできますか？");
        assert!(ja.cosine(&Vector::of("返品はできますか")) > 0.9);
    }

    #[test]
    fn hits_need_the_threshold_and_the_store() {
        let c = SemanticCache::new(0.95);
        let answer = Cached {
            text: " ok".into(),
            tokens: 1,
        };
        c.insert(
            "manga_jp",
            Vector::of("Do you offer gift wrapping?"),
            answer.clone(),
        );
        assert_eq!(
            c.lookup("manga_jp", &Vector::of("do you offer gift wrapping")),
            Some(answer)
        );
        assert_eq!(
            c.lookup("kindle", &Vector::of("Do you offer gift wrapping?")),
            None
        );
        assert_eq!(
            c.lookup("manga_jp", &Vector::of("How long does shipping take?")),
            None
        );
    }
}
