//! `s3://` in the CLI: `surge run --upload` after the run, and run directories that
//! `surge report` and `surge compare` read from S3. The copying is `surge-objstore`'s.

use std::path::{Path, PathBuf};

use surge_objstore::{S3Url, Uploaded};

use crate::commands::run::Interrupt;
use crate::{Failure, Outcome};

/// `--upload`'s value parser: a bad URL is a usage error before any load is sent.
pub(crate) fn parse_url(s: &str) -> Result<S3Url, String> {
    s.parse()
        .map_err(|e: surge_objstore::ParseS3UrlError| e.to_string())
}

/// Uploads the finished run directory `dir` to `to` (exactly `s3://BUCKET/PREFIX/`),
/// whatever the run's `result`, and returns the exit to take. A failed upload keeps `dir`
/// and says so; it turns a passed or failed run into "could not be carried out" (exit 3),
/// while a run that was interrupted (130) or could not run (3) keeps its own exit. Ctrl-C
/// (or SIGTERM) on `interrupt` gives up the upload, not the run directory: exit 130, as
/// any stop by the user, unless the run could not run.
pub(crate) async fn upload_after(
    dir: &Path,
    to: Option<&S3Url>,
    result: Result<Outcome, Failure>,
    interrupt: &mut Interrupt,
) -> Result<Outcome, Failure> {
    let Some(to) = to else {
        return result;
    };
    let (uploaded, stopped) = tokio::select! {
        r = surge_objstore::upload_dir(dir, to) => (r.map_err(|e| e.to_string()), false),
        () = interrupt.recv() => (Err(format!("upload to {to} interrupted")), true),
    };
    match uploaded {
        Ok(Uploaded { files, bytes }) => {
            println!(
                "uploaded {files} files ({:.1} KiB) to {to}/",
                bytes as f64 / 1024.0
            );
            result
        }
        Err(e) => {
            let msg = format!(
                "{e}\nthe run directory is kept at {dir}; to copy it later: \
                 aws s3 cp --recursive {dir} {to}/",
                dir = dir.display()
            );
            match result {
                Ok(Outcome::Success | Outcome::Failed) if !stopped => {
                    Err(Failure::could_not_run(msg))
                }
                _ => {
                    eprintln!("error: {msg}");
                    if stopped {
                        result.and(Ok(Outcome::Interrupted))
                    } else {
                        result
                    }
                }
            }
        }
    }
}

/// Run directories as given on the command line, those named `s3://BUCKET/PREFIX`
/// downloaded into a temporary directory (removed when this is dropped).
pub(crate) struct Runs {
    /// Local directories, in the order given.
    pub paths: Vec<PathBuf>,
    /// (temporary path, URL) of each download, to name the URL in what is printed.
    downloads: Vec<(String, String)>,
    _temp: Option<tempfile::TempDir>,
    /// While downloads are kept: Ctrl-C (or SIGTERM) removes them and exits 130 (see
    /// [`remove_on_interrupt`]).
    _watch: Option<AbortOnDrop>,
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ctrl-C or SIGTERM while `temp` holds downloads: removes it and exits 130, so an
/// interrupted `surge report s3://…` leaves no copy of a run behind (a dropped `TempDir`
/// would not be removed: the default action ends the process without unwinding). `listening`
/// was made before the directory, so no signal is missed in between. Once the runs are
/// dropped the task is gone; the signal then goes to whoever listens next.
fn remove_on_interrupt(mut listening: Interrupt, temp: &Path) -> AbortOnDrop {
    let temp = temp.to_path_buf();
    AbortOnDrop(tokio::spawn(async move {
        listening.recv().await;
        let _ = std::fs::remove_dir_all(&temp);
        eprintln!("interrupted: the runs downloaded from S3 were removed");
        std::process::exit(130);
    }))
}

impl Runs {
    /// `text` with every temporary download path replaced by the URL it came from.
    pub(crate) fn unmask(&self, text: &str) -> String {
        self.downloads
            .iter()
            .fold(text.to_string(), |t, (path, url)| t.replace(path, url))
    }

    /// Each run directory with its name: the URL it was downloaded from, or its path.
    pub(crate) fn sources(&self) -> Vec<surge_loadgen::merge::Source> {
        self.paths
            .iter()
            .map(|dir| surge_loadgen::merge::Source {
                name: self.unmask(&dir.display().to_string()),
                dir: dir.clone(),
            })
            .collect()
    }

    /// `report` naming URLs where it names downloads: its runs (before rendering, so tables
    /// are as wide as the URLs) and its warnings.
    pub(crate) fn rename(&self, report: &mut surge_analyze::Report) {
        for run in &mut report.runs {
            run.path = self.unmask(&run.path);
        }
        for w in &mut report.warnings {
            *w = self.unmask(w);
        }
    }
}

/// Downloads every `s3://` argument of `runs`; other arguments are local paths, kept.
/// Nothing stored at a URL, or a bad URL, is a usage error (exit 2); a store that cannot
/// be read is exit 3.
pub(crate) async fn fetch(runs: &[PathBuf]) -> Result<Runs, Failure> {
    let mut out = Runs {
        paths: Vec::with_capacity(runs.len()),
        downloads: Vec::new(),
        _temp: None,
        _watch: None,
    };
    for (i, run) in runs.iter().enumerate() {
        let Some(url) = run.to_str().filter(|s| s.starts_with("s3://")) else {
            out.paths.push(run.clone());
            continue;
        };
        let url: S3Url = url.parse().map_err(|e| Failure::Usage(format!("{e}")))?;
        if out._temp.is_none() {
            let listening = Interrupt::listen();
            let temp = tempfile::Builder::new()
                .prefix("surge-s3-")
                .tempdir()
                .map_err(|e| {
                    Failure::could_not_run(format!("cannot make a temporary directory: {e}"))
                })?;
            out._watch = Some(remove_on_interrupt(listening, temp.path()));
            out._temp = Some(temp);
        }
        let temp = out._temp.as_ref().expect("made above");
        // The run's own name (the prefix's last segment) below a per-argument directory.
        let name = url.prefix().rsplit('/').next().unwrap_or_default();
        let name = if name.is_empty() { url.bucket() } else { name };
        let dest = temp.path().join(i.to_string()).join(name);
        let dir = surge_objstore::download(&url, &dest)
            .await
            .map_err(|e| match e {
                surge_objstore::Error::Empty { .. }
                | surge_objstore::Error::OnlyShards { .. }
                | surge_objstore::Error::UnsafeKey { .. } => Failure::Usage(e.to_string()),
                e => Failure::could_not_run(e.to_string()),
            })?;
        out.downloads
            .push((dir.display().to_string(), url.to_string()));
        out.paths.push(dir);
    }
    Ok(out)
}
