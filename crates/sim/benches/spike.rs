//! Speed of the simulator on a whole scenario: `cargo bench -p surge-sim --bench spike
//! [-- PROFILE]` (default: the Q19 one-piece spike, ~30 M messages, every layer on).
//! Prints wall time, events/s and messages/s of one run on one thread; `--write` also
//! writes the run directory to a temporary directory, to include output costs.

use std::path::PathBuf;

use surge_profile::Profile;
use surge_sim::{SimOptions, simulate};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let write = args.iter().any(|a| a == "--write");
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles/one-piece-spike.toml")
        });
    let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let out_dir = tempfile::tempdir().expect("temporary directory");
    let opts = SimOptions {
        out_root: write.then(|| out_dir.path().to_path_buf()),
        progress: true,
        ..SimOptions::default()
    };
    let out = simulate(&profile, &opts).unwrap_or_else(|e| panic!("{e}"));
    println!("{}", out.report);
    println!(
        "{}: {:.2} s wall, {} events ({:.2} M events/s), {} messages ({:.2} M messages/s){}",
        profile.name,
        out.wall.as_secs_f64(),
        out.report.events,
        out.events_per_s / 1e6,
        out.report.sent,
        out.messages_per_s / 1e6,
        if write { ", run directory written" } else { "" }
    );
}
