//! The default profile of `surge bench`, built into the binary so that the main job needs
//! no checkout and no working directory in particular: `profiles/local.toml` and the
//! system model it points at, as they were when surge was built.

use std::io;
use std::path::{Path, PathBuf};

/// The embedded profile's files, by their path under `profiles/`; the first is the profile.
pub const LOCAL: &[(&str, &str)] = &[
    ("local.toml", include_str!("../../../profiles/local.toml")),
    (
        "system/mangaassist.toml",
        include_str!("../../../profiles/system/mangaassist.toml"),
    ),
];

/// Writes the embedded default profile's files under `dir` and gives the profile's path
/// (the mock, a separate process, reads the profile from a file).
pub fn write_local(dir: &Path) -> io::Result<PathBuf> {
    for (name, text) in LOCAL {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    Ok(dir.join(LOCAL[0].0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Profile;

    #[test]
    fn the_embedded_profile_is_the_shipped_one_and_loads_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_local(dir.path()).unwrap();
        let embedded = Profile::load(&written).unwrap();
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/local.toml");
        let shipped = Profile::load(shipped).unwrap();
        assert_eq!(embedded.name, "local");
        // Everything but where the files were read from.
        let mut embedded = embedded;
        embedded.files = shipped.files.clone();
        assert_eq!(format!("{embedded:?}"), format!("{shipped:?}"));
    }
}
