//! The Python interpreters of the tests against software surge did not write: from an
//! environment variable, or the venv `scripts/test.sh` installs the packages into. Without
//! one a test says why and passes, except under `CI=true`, where it fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A venv and what it holds.
pub struct Venv {
    /// The variable that names its Python instead.
    pub var: &'static str,
    /// Its directory, relative to the repository.
    pub dir: &'static str,
    /// What a test imports from it (`import …`).
    pub modules: &'static str,
}

/// The `websockets` package: chatbots and gateways surge did not write.
pub const WEBSOCKETS: Venv = Venv {
    var: "SURGE_WS_PYTHON",
    dir: ".venv/ws",
    modules: "websockets",
};

/// `websockets` and `botocore`: a door that checks SigV4 with AWS's Python signer.
pub const SIGV4: Venv = Venv {
    var: "SURGE_SIGV4_PYTHON",
    dir: ".venv/sigv4",
    modules: "websockets, botocore",
};

/// `moto[server]`: an S3-compatible store (crates/cli/tests/upload.rs).
pub const MOTO: Venv = Venv {
    var: "SURGE_S3_PYTHON",
    dir: ".venv/s3",
    modules: "moto.server",
};

/// The Python of `venv`, or why there is none.
pub fn find(venv: &Venv) -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var(venv.var) {
        return Ok(PathBuf::from(p));
    }
    let py = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(venv.dir)
        .join("bin/python");
    let has = Command::new(&py)
        .args(["-c", &format!("import {}", venv.modules)])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has {
        Ok(py)
    } else {
        Err(format!(
            "no Python with {} (set {}, or run scripts/test.sh, which installs it into {}); \
             looked at {}",
            venv.modules,
            venv.var,
            venv.dir,
            py.display()
        ))
    }
}

/// The Python of `venv`; `None` after saying the test is skipped. Under `CI=true` a
/// missing Python fails the test instead.
pub fn or_skip(venv: &Venv) -> Option<PathBuf> {
    match find(venv) {
        Ok(py) => Some(py),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("{why}"),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// A server the test did not write, as a child process that prints its port first;
/// killed when dropped.
pub struct Fixture {
    child: std::process::Child,
    pub port: u16,
}

impl Fixture {
    /// Starts `cmd` and reads the port from the first line it prints.
    pub fn start(mut cmd: Command) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the fixture prints its port first, not {line:?}"));
        Self { child, port }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
