//! Run directories to and from S3, for runs that have no shared volume.
//!
//! Why it exists: a multi-machine run on Kubernetes writes its run directory on a pod's
//! disk, which goes away with the pod. `surge run --upload s3://BUCKET/PREFIX` copies the
//! finished directory to S3 (or any S3-compatible store), and `surge report s3://…`
//! copies it back to read it. This crate is that copying and nothing else: it does not
//! know what the files mean.
//!
//! The layout in the bucket is the directory's own: file `errors/samples-000.jsonl` of
//! the directory becomes key `PREFIX/errors/samples-000.jsonl`. `run.json` is put last, so
//! a reader that finds `PREFIX/run.json` finds every other file too. Nothing under a
//! prefix is ever overwritten: an upload to a prefix that holds files directly is refused,
//! as a run directory on disk is never reused. Directories below it are not its own: a
//! rendezvous run keeps its shards' directories at `PREFIX/shard-NNN/`, and reading
//! `PREFIX` leaves them out.
//!
//! Credentials, region and endpoint come from AWS's own chain (`aws-config`): environment
//! variables, shared config and credentials files (`AWS_PROFILE`), web identity (IRSA,
//! EKS Pod Identity), container and instance roles. An S3-compatible store (MinIO, moto,
//! Ceph) is named with the standard `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`)
//! variable; with such an endpoint, requests use path-style addressing
//! (`http://HOST/BUCKET/KEY`), which stores on an IP address need. Without a configured
//! region, `us-east-1`. Credentials are never printed or written: errors carry the SDK's
//! message only.

pub mod testkit;
mod url;

use std::io;
use std::path::{Path, PathBuf};

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

pub use url::{ParseS3UrlError, S3Url};

/// The file a reader looks for first; uploaded last.
const RUN_JSON: &str = "run.json";
/// Objects in flight at once.
const PARALLEL: usize = 8;
/// What to look at when a request fails.
const HINT: &str = "check the bucket, the AWS credentials (environment, AWS_PROFILE or role), the \
region (AWS_REGION) and, for an S3-compatible store, AWS_ENDPOINT_URL_S3";

/// What an upload put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploaded {
    /// Objects put, one per regular file.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
}

/// Why a copy failed; every message names the file or URL and what to check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot upload {}: {reason}", path.display())]
    Unnamable { path: PathBuf, reason: String },
    #[error("cannot upload {} to {url}: {detail}; {HINT}", path.display())]
    Put {
        path: PathBuf,
        url: String,
        detail: String,
    },
    #[error(
        "{url} already holds objects ({key}): a run is never overwritten; upload to a new prefix"
    )]
    Occupied { url: String, key: String },
    #[error("cannot list {url}: {detail}; {HINT}")]
    List { url: String, detail: String },
    #[error("cannot download {url}: {detail}; {HINT}")]
    Get { url: String, detail: String },
    #[error("no run directory at {url}: no object has a key under {url}/")]
    Empty { url: String },
    #[error(
        "{url} holds no run of its own, only the shard directories of a multi-machine run \
         ({}): merge those, e.g. `surge run --merge {}`",
        shards.join(", "),
        shards.iter().map(|s| format!("{url}/{s}")).collect::<Vec<_>>().join(" ")
    )]
    OnlyShards { url: String, shards: Vec<String> },
    #[error(
        "no run.json under {url}: an upload that did not finish (run.json goes up last) or \
         not a run directory"
    )]
    NoRunInfo { url: String },
    #[error("refusing to download {url} into {}: {reason}", dest.display())]
    UnsafeKey {
        url: String,
        dest: PathBuf,
        reason: String,
    },
}

/// An S3 client from the AWS chain, path-style when an endpoint is configured.
async fn client() -> Client {
    let region = RegionProviderChain::default_provider().or_else(Region::new("us-east-1"));
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .load()
        .await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if custom_endpoint(&shared) {
        config = config.force_path_style(true);
    }
    Client::from_conf(config.build())
}

/// Whether an endpoint is configured for S3 the standard ways (`AWS_ENDPOINT_URL_S3`,
/// `AWS_ENDPOINT_URL`, `endpoint_url` in the shared config file), as the SDK reads them.
fn custom_endpoint(shared: &aws_types::SdkConfig) -> bool {
    let s3 = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .expect("every field is set");
    shared.endpoint_url().is_some()
        || shared
            .service_config()
            .and_then(|c| c.load_config(s3))
            .is_some()
}

/// The SDK's message of `e`: the service's code and message, or the source chain
/// (`dispatch failure: io error: … Connection refused (os error 111)`).
fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(s) = e {
        match (s.err().code(), s.err().message()) {
            (Some(code), Some(message)) => return format!("{code}: {message}"),
            (Some(code), None) => return code.to_string(),
            _ => {}
        }
    }
    chain(e)
}

/// `e: its source: that one's source …`, each message once.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Every regular file under `dir` (recursively; symbolic links and special files are
/// left out) with its key suffix, sorted, `run.json` of the top level last.
fn files_of(dir: &Path) -> Result<Vec<(PathBuf, String, u64)>, Error> {
    let read = |path: &Path, source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| read(&d, e))? {
            let path = entry.map_err(|e| read(&d, e))?.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|e| read(&path, e))?;
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                let relative = path.strip_prefix(dir).expect("found under dir");
                let suffix = url::key_suffix(relative).map_err(|reason| Error::Unnamable {
                    path: path.clone(),
                    reason,
                })?;
                files.push((path, suffix, meta.len()));
            }
        }
    }
    files.sort_by(|a, b| (a.1 == RUN_JSON, &a.1).cmp(&(b.1 == RUN_JSON, &b.1)));
    Ok(files)
}

/// Puts every regular file under `dir` at `PREFIX/<its path below dir>` (no `//` when the
/// prefix is empty), `run.json` last, after every other file is stored. Refuses a prefix
/// that already holds files directly under it. Files are put whole (up to S3's 5 GiB per object).
pub async fn upload_dir(dir: &Path, to: &S3Url) -> Result<Uploaded, Error> {
    upload_with(&client().await, dir, to).await
}

/// [`upload_dir`] with a given client.
async fn upload_with(client: &Client, dir: &Path, to: &S3Url) -> Result<Uploaded, Error> {
    let mut files = files_of(dir)?;
    // Taken: a file right under the prefix. Directories below it are not the run's own:
    // a rendezvous run keeps its shards' directories at PREFIX/shard-NNN/.
    let taken = client
        .list_objects_v2()
        .bucket(to.bucket())
        .prefix(to.list_prefix())
        .delimiter("/")
        .send()
        .await
        .map_err(|e| Error::List {
            url: to.to_string(),
            detail: describe(&e),
        })?;
    if let Some(key) = taken.contents().first().and_then(|o| o.key()) {
        return Err(Error::Occupied {
            url: to.to_string(),
            key: key.to_string(),
        });
    }
    let last = files
        .last()
        .filter(|f| f.1 == RUN_JSON)
        .is_some()
        .then(|| files.pop().expect("a last file"));
    let put = |(path, suffix, len): (PathBuf, String, u64)| async move {
        let key = to.key(&suffix);
        let body = ByteStream::from_path(&path)
            .await
            .map_err(|e| Error::Read {
                path: path.clone(),
                source: io::Error::other(e),
            })?;
        client
            .put_object()
            .bucket(to.bucket())
            .key(&key)
            .body(body)
            .send()
            .await
            .map_err(|e| Error::Put {
                path: path.clone(),
                url: to.object(&key),
                detail: describe(&e),
            })?;
        Ok::<u64, Error>(len)
    };
    let mut done = Uploaded { files: 0, bytes: 0 };
    let mut puts = futures::stream::iter(files)
        .map(put)
        .buffer_unordered(PARALLEL);
    while let Some(len) = puts.try_next().await? {
        done.files += 1;
        done.bytes += len;
    }
    drop(puts);
    if let Some(f) = last {
        done.bytes += put(f).await?;
        done.files += 1;
    }
    Ok(done)
}

/// Copies every object under `from` (`PREFIX/…`) into `dest` (created if need be) at its
/// path below the prefix, and returns `dest`. Refuses, before writing anything: keys that
/// would land outside `dest` (`..`, absolute), a prefix with nothing under it or only a
/// multi-machine run's shard directories (naming them), and one without `run.json` (which
/// an upload writes last; so `s3://BUCKET/` fetches a run kept at the bucket's top, never
/// the rest of the bucket). Never overwrites a file.
pub async fn download(from: &S3Url, dest: &Path) -> Result<PathBuf, Error> {
    download_with(&client().await, from, dest, None).await
}

/// [`download`] with a given client, listing `page_size` keys per request (tests make the
/// listing paginate).
async fn download_with(
    client: &Client,
    from: &S3Url,
    dest: &Path,
    page_size: Option<i32>,
) -> Result<PathBuf, Error> {
    let list_prefix = from.list_prefix();
    let mut pages = client
        .list_objects_v2()
        .bucket(from.bucket())
        .prefix(&list_prefix)
        .set_max_keys(page_size)
        .into_paginator()
        .send();
    let mut objects = Vec::new();
    let mut shards = std::collections::BTreeSet::new();
    let mut run_info = false;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::List {
            url: from.to_string(),
            detail: describe(&e),
        })?;
        for key in page.contents().iter().filter_map(|o| o.key()) {
            let suffix = key.strip_prefix(list_prefix.as_str()).unwrap_or(key);
            // Keys ending in / are the "folders" consoles create: nothing to write. A
            // rendezvous run's shard directories (shard-NNN/) are runs of their own.
            if url::in_shard_dir(suffix) {
                shards.extend(suffix.split('/').next().map(str::to_string));
                continue;
            }
            if suffix.is_empty() || suffix.ends_with('/') {
                continue;
            }
            run_info |= suffix == RUN_JSON;
            let relative = url::relative_path(suffix).map_err(|why| Error::UnsafeKey {
                url: from.to_string(),
                dest: dest.to_path_buf(),
                reason: format!("key {key:?} would not be a file below it: {why}"),
            })?;
            objects.push((key.to_string(), dest.join(relative)));
        }
    }
    let url = from.to_string();
    if objects.is_empty() && !shards.is_empty() {
        let shards = shards.into_iter().collect();
        return Err(Error::OnlyShards { url, shards });
    }
    if objects.is_empty() {
        return Err(Error::Empty { url });
    }
    if !run_info {
        return Err(Error::NoRunInfo { url });
    }
    let get = |(key, path): (String, PathBuf)| async move {
        let url = from.object(&key);
        let failed = |detail| Error::Get {
            url: url.clone(),
            detail,
        };
        let object = client
            .get_object()
            .bucket(from.bucket())
            .key(&key)
            .send()
            .await
            .map_err(|e| failed(describe(&e)))?;
        let write = |source| Error::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(write)?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(write)?;
        let mut body = object.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| failed(chain(&e)))? {
            file.write_all(&chunk).await.map_err(write)?;
        }
        file.flush().await.map_err(write)?;
        Ok::<(), Error>(())
    };
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|source| Error::Write {
            path: dest.to_path_buf(),
            source,
        })?;
    futures::stream::iter(objects)
        .map(get)
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(dest.to_path_buf())
}

#[cfg(test)]
mod moto_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_json_goes_last_and_nested_files_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("errors")).unwrap();
        std::fs::create_dir_all(d.join("nested/run.json.d")).unwrap();
        for f in [
            "run.json",
            "summary.json",
            "a.hlog",
            "zz.csv",
            "errors/samples-000.jsonl",
            "nested/run.json",
        ] {
            std::fs::write(d.join(f), f).unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.join("zz.csv"), d.join("link.csv")).unwrap();
        let keys: Vec<_> = files_of(d).unwrap().into_iter().map(|f| f.1).collect();
        assert_eq!(
            keys,
            [
                "a.hlog",
                "errors/samples-000.jsonl",
                "nested/run.json",
                "summary.json",
                "zz.csv",
                "run.json"
            ]
        );
    }

    #[test]
    fn a_missing_directory_is_a_read_error_naming_it() {
        let e = files_of(Path::new("/nonexistent/surge-run")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/surge-run"),
            "{e}"
        );
    }
}
