//! `s3://BUCKET/PREFIX` and the rules that map files to keys and keys back to files.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// A place in S3: a bucket and a key prefix (`s3://BUCKET/PREFIX`), the prefix without
/// leading or trailing `/` (empty for the whole bucket).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Url {
    bucket: String,
    prefix: String,
}

/// Why a string is not an `s3://BUCKET/PREFIX` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid S3 URL {url:?}: {reason}")]
pub struct ParseS3UrlError {
    url: String,
    reason: String,
}

impl S3Url {
    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without leading or trailing `/`; empty for the whole bucket.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of `relative` (`/`-separated) under the prefix: `PREFIX/relative`, or
    /// `relative` when the prefix is empty.
    pub fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    /// What every key under this URL starts with: `PREFIX/` (so `s3://b/run1` does not
    /// take in `run10/…`), or nothing for the whole bucket.
    pub fn list_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    /// The place `name` below this one: `s3://BUCKET/PREFIX/name` (a rendezvous shard's own
    /// directory beside its run's).
    pub fn join(&self, name: &str) -> S3Url {
        let name = name.trim_matches('/');
        S3Url {
            bucket: self.bucket.clone(),
            prefix: if name.is_empty() {
                self.prefix.clone()
            } else {
                self.key(name)
            },
        }
    }

    /// `s3://BUCKET/KEY` of one object, for messages.
    pub(crate) fn object(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// Whether `relative` lies in a `shard-NNN/` directory: the own directory of one shard of
/// a rendezvous run, stored below the run's prefix.
pub(crate) fn in_shard_dir(relative: &str) -> bool {
    relative.split_once('/').is_some_and(|(first, _)| {
        first
            .strip_prefix("shard-")
            .is_some_and(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

impl FromStr for S3Url {
    type Err = ParseS3UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| ParseS3UrlError {
            url: s.to_string(),
            reason,
        };
        if s.trim().is_empty() {
            return Err(bad("empty; expected s3://BUCKET/PREFIX".into()));
        }
        let Some(rest) = s.strip_prefix("s3://") else {
            return Err(bad(match s.split_once("://") {
                Some((scheme, _)) => {
                    format!("the scheme is {scheme}://, not s3://; expected s3://BUCKET/PREFIX")
                }
                None => "expected s3://BUCKET/PREFIX".into(),
            }));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket; expected s3://BUCKET/PREFIX".into()));
        }
        check_bucket(bucket).map_err(|why| {
            bad(format!(
                "bucket name {bucket:?} {why}: bucket names are 3 to 63 lowercase letters, \
                 digits, '.' and '-', beginning and ending with a letter or digit"
            ))
        })?;
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            for segment in prefix.split('/') {
                match segment {
                    "" => return Err(bad("empty path segment (//) in the prefix".into())),
                    "." | ".." => {
                        return Err(bad(format!("{segment:?} segment in the prefix")));
                    }
                    _ if segment.chars().any(char::is_control) => {
                        return Err(bad("control character in the prefix".into()));
                    }
                    _ => {}
                }
            }
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// S3's rules for (new) bucket names, which S3-compatible stores follow too.
fn check_bucket(b: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&b.len()) {
        return Err("is not 3 to 63 characters long");
    }
    if let Some(c) = b
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(if c.is_ascii_uppercase() {
            "has an uppercase letter"
        } else {
            "has a character other than a-z, 0-9, '.' and '-'"
        });
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(b.chars().next()) || !edge(b.chars().last()) {
        return Err("does not begin and end with a letter or digit");
    }
    if b.contains("..") {
        return Err("has two dots in a row");
    }
    Ok(())
}

/// The `/`-separated key suffix of `relative` (a path below the uploaded directory).
pub(crate) fn key_suffix(relative: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in relative.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or("the file name is not UTF-8, and S3 keys are text")?,
            ),
            _ => {
                return Err(format!(
                    "{} is not a plain relative path",
                    relative.display()
                ));
            }
        }
    }
    if parts.is_empty() {
        return Err("empty path".into());
    }
    Ok(parts.join("/"))
}

/// The path below the download directory of a key's suffix after `PREFIX/`; an error for
/// a suffix that would leave that directory or is not a plain file name (`..`, `.`,
/// an absolute path, an empty segment, a backslash or NUL).
pub(crate) fn relative_path(suffix: &str) -> Result<PathBuf, &'static str> {
    let mut path = PathBuf::new();
    for segment in suffix.split('/') {
        match segment {
            "" => return Err("it has an empty segment (a leading '/' or '//')"),
            "." | ".." => return Err("it has a '.' or '..' segment"),
            _ if segment.contains(['\\', '\0']) => return Err("it has a backslash or NUL"),
            _ => path.push(segment),
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> S3Url {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        s.parse::<S3Url>().unwrap_err().to_string()
    }

    #[test]
    fn parses_bucket_and_prefix() {
        let u = url("s3://my-bucket/nightly/run1");
        assert_eq!((u.bucket(), u.prefix()), ("my-bucket", "nightly/run1"));
        assert_eq!(u.to_string(), "s3://my-bucket/nightly/run1");
        let u = url("s3://my.bucket.2/nightly/run1/");
        assert_eq!(u.prefix(), "nightly/run1");
        assert_eq!(u.to_string(), "s3://my.bucket.2/nightly/run1");
        for whole in ["s3://abc", "s3://abc/", "s3://abc//"] {
            let u = url(whole);
            assert_eq!((u.bucket(), u.prefix()), ("abc", ""), "{whole}");
            assert_eq!(u.to_string(), "s3://abc");
        }
    }

    #[test]
    fn shard_directories_sit_below_their_run() {
        let run = url("s3://my-bucket/nightly/run1");
        assert_eq!(
            run.join("shard-002").to_string(),
            "s3://my-bucket/nightly/run1/shard-002"
        );
        assert_eq!(
            url("s3://my-bucket").join("shard-000").prefix(),
            "shard-000"
        );
        assert!(in_shard_dir("shard-002/run.json"));
        assert!(in_shard_dir("shard-010/errors/samples-010.jsonl"));
        assert!(!in_shard_dir("shard-002.hlog"));
        assert!(!in_shard_dir("errors/samples-000.jsonl"));
        assert!(!in_shard_dir("shard-1/run.json"));
    }

    #[test]
    fn display_parses_back_to_the_same_url() {
        for s in [
            "s3://b-1/x",
            "s3://b-1",
            "s3://b-1/a/b c/ü",
            "s3://1.2.3/x/",
        ] {
            let u = url(s);
            assert_eq!(url(&u.to_string()), u, "{s}");
        }
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(err("").contains("empty"), "{}", err(""));
        assert!(
            err("http://x").contains("scheme is http://"),
            "{}",
            err("http://x")
        );
        assert!(err("S3://bucket/x").contains("not s3://"));
        assert!(err("bucket/prefix").contains("expected s3://BUCKET/PREFIX"));
        assert!(err("s3://").contains("no bucket"));
        assert!(err("s3:///prefix").contains("no bucket"));
        assert!(err("s3://ab").contains("3 to 63"));
        assert!(err(&format!("s3://{}", "a".repeat(64))).contains("3 to 63"));
        assert!(err("s3://My-Bucket/x").contains("uppercase"));
        assert!(err("s3://my_bucket/x").contains("other than a-z"));
        assert!(err("s3://my bucket/x").contains("other than a-z"));
        assert!(err("s3://-bucket/x").contains("begin and end"));
        assert!(err("s3://bucket./x").contains("begin and end"));
        assert!(err("s3://a..b/x").contains("two dots"));
        assert!(err("s3://bucket/a//b").contains("//"));
        assert!(err("s3://bucket/a/../b").contains("\"..\""));
        assert!(err("s3://bucket/./b").contains("\".\""));
        assert!(err("s3://bucket/a\nb").contains("control"));
        // Every message names the input and the expected form or rule.
        assert!(err("s3://ab").starts_with("invalid S3 URL \"s3://ab\": "));
    }

    #[test]
    fn keys_join_without_double_slashes() {
        assert_eq!(url("s3://bkt/p").key("run.json"), "p/run.json");
        assert_eq!(url("s3://bkt/p/").key("errors/x.jsonl"), "p/errors/x.jsonl");
        assert_eq!(url("s3://bkt/a/b/").key("run.json"), "a/b/run.json");
        assert_eq!(url("s3://bkt").key("run.json"), "run.json");
        assert_eq!(url("s3://bkt/").key("run.json"), "run.json");
        assert_eq!(url("s3://bkt/p").list_prefix(), "p/");
        assert_eq!(url("s3://bkt").list_prefix(), "");
        assert_eq!(
            url("s3://bkt/p").object("p/run.json"),
            "s3://bkt/p/run.json"
        );
    }

    #[test]
    fn file_paths_become_slash_separated_key_suffixes() {
        assert_eq!(key_suffix(Path::new("run.json")).unwrap(), "run.json");
        assert_eq!(
            key_suffix(Path::new("errors/samples-000.jsonl")).unwrap(),
            "errors/samples-000.jsonl"
        );
        assert!(key_suffix(Path::new("")).is_err());
        assert!(key_suffix(Path::new("/etc/passwd")).is_err());
        assert!(key_suffix(Path::new("../x")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let bad = std::ffi::OsStr::from_bytes(b"caf\xe9");
            assert!(key_suffix(Path::new(bad)).unwrap_err().contains("UTF-8"));
        }
    }

    #[test]
    fn keys_that_would_leave_the_directory_are_refused() {
        assert_eq!(
            relative_path("errors/samples-000.jsonl").unwrap(),
            Path::new("errors").join("samples-000.jsonl")
        );
        for bad in [
            "../x",
            "a/../../x",
            "..",
            "a/..",
            "./x",
            "/etc/passwd",
            "a//b",
            "",
            "a/",
            "..\\x",
            "a\0b",
        ] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }
}
