//! Intent classification from the message text, with keyword rules learned from the
//! intents' sample `texts` in the system model.
//!
//! Texts are cut into terms — lower-cased words for Latin script, character bigrams for
//! Japanese (which has no spaces) — and each term gets, per intent, a weight that grows
//! with how often the intent's samples use it and shrinks with how many intents share it
//! (tf-idf). A message goes to the intent whose terms it matches with the highest total
//! weight. Rules are learned per script; a store's language picks the rule set, and a
//! message written in the other script uses that script's rules (a Japanese message to an
//! English store is still understood). A message matching nothing goes to the fallback
//! intent: `chitchat` when the model has one, else the first intent.

use std::collections::HashMap;

use surge_profile::system::Intent;

/// The writing systems the rules are learned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    Latin,
    Japanese,
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xFF66..=0xFF9F)
}

impl Script {
    /// The script most of `text`'s letters are written in.
    pub fn of(text: &str) -> Self {
        let cjk = text.chars().filter(|c| is_cjk(*c)).count();
        let latin = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
        if cjk * 2 >= latin && cjk > 0 {
            Self::Japanese
        } else {
            Self::Latin
        }
    }

    /// The script of a store whose `language` is e.g. "Japanese" or "English".
    pub fn of_language(language: &str) -> Self {
        if language.eq_ignore_ascii_case("japanese") {
            Self::Japanese
        } else {
            Self::Latin
        }
    }
}

/// Words that say nothing about the intent.
const STOP_WORDS: [&str; 24] = [
    "a", "an", "the", "is", "are", "of", "to", "for", "you", "your", "i", "my", "me", "do", "does",
    "can", "it", "in", "on", "and", "what", "that", "this", "be",
];

/// The terms of `text`: words (Latin) and character bigrams (Japanese).
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut cjk_run: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if word.len() > 1 && !STOP_WORDS.contains(&word.as_str()) {
            out.push(std::mem::take(word));
        }
        word.clear();
    };
    let flush_cjk = |run: &mut Vec<char>, out: &mut Vec<String>| {
        if run.len() == 1 {
            out.push(run[0].to_string());
        }
        out.extend(run.windows(2).map(|w| w.iter().collect::<String>()));
        run.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            cjk_run.push(c);
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk_run, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_word(&mut word, &mut out);
            flush_cjk(&mut cjk_run, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_cjk(&mut cjk_run, &mut out);
    out
}

/// Term weights per intent for one script.
#[derive(Debug, Default)]
struct Rules {
    /// term → (intent index, weight)
    weights: HashMap<String, Vec<(usize, f64)>>,
}

impl Rules {
    fn learn(samples: &[(usize, &str)], intents: usize) -> Self {
        let mut counts: HashMap<String, Vec<f64>> = HashMap::new();
        for (intent, text) in samples {
            for t in terms(text) {
                counts.entry(t).or_insert_with(|| vec![0.0; intents])[*intent] += 1.0;
            }
        }
        let n = intents as f64;
        let weights = counts
            .into_iter()
            .map(|(term, per_intent)| {
                let df = per_intent.iter().filter(|c| **c > 0.0).count() as f64;
                let idf = (1.0 + n / df).ln();
                let w = per_intent
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0.0)
                    .map(|(i, c)| (i, c * idf))
                    .collect();
                (term, w)
            })
            .collect();
        Self { weights }
    }

    fn scores(&self, text: &str, intents: usize) -> Vec<f64> {
        let mut scores = vec![0.0; intents];
        for t in terms(text) {
            for (i, w) in self.weights.get(&t).into_iter().flatten() {
                scores[*i] += w;
            }
        }
        scores
    }
}

/// The learned classifier.
#[derive(Debug)]
pub struct Classifier {
    names: Vec<String>,
    rules: HashMap<Script, Rules>,
    fallback: usize,
}

impl Classifier {
    /// Learns rules from every intent's `texts`.
    pub fn learn<'a>(intents: impl IntoIterator<Item = (&'a String, &'a Intent)>) -> Self {
        let intents: Vec<(&String, &Intent)> = intents.into_iter().collect();
        let names: Vec<String> = intents.iter().map(|(n, _)| (*n).clone()).collect();
        let mut rules = HashMap::new();
        for script in [Script::Latin, Script::Japanese] {
            let samples: Vec<(usize, &str)> = intents
                .iter()
                .enumerate()
                .flat_map(|(i, (_, intent))| intent.texts.iter().map(move |t| (i, t.as_str())))
                .filter(|(_, t)| Script::of(t) == script)
                .collect();
            rules.insert(script, Rules::learn(&samples, names.len()));
        }
        let fallback = names.iter().position(|n| n == "chitchat").unwrap_or(0);
        Self {
            names,
            rules,
            fallback,
        }
    }

    /// The intent (index into the system model's intents, in name order) of `text`.
    pub fn classify(&self, text: &str, store_script: Script) -> usize {
        let script = if text.chars().any(char::is_alphabetic) {
            Script::of(text)
        } else {
            store_script
        };
        let scores = self.rules[&script].scores(text, self.names.len());
        scores
            .iter()
            .enumerate()
            .filter(|(_, s)| **s > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(self.fallback, |(i, _)| i)
    }

    pub fn name(&self, intent: usize) -> &str {
        &self.names[intent]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_is_cut_into_bigrams_and_english_into_words() {
        assert_eq!(terms("返品は"), ["返品", "品は"]);
        assert_eq!(terms("What is your Return policy?"), ["return", "policy"]);
        assert_eq!(Script::of("ワンピースの新刊 volume"), Script::Japanese);
    }
}
