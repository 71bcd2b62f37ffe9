# Shared by the scripts that drive surge; sourced, not run. The sourcing script defines
# say MESSAGE and die CODE MESSAGE first.

# Sets $surge to the surge binary: $SURGE_BIN when set, else ROOT's target/release/surge,
# built first when cargo is installed. Dies with 3 (could not run) when there is none.
# Usage: find_surge ROOT
find_surge() {
    local root=$1
    if [ -n "${SURGE_BIN:-}" ]; then
        surge=$SURGE_BIN
    else
        surge=${CARGO_TARGET_DIR:-$root/target}/release/surge
        if command -v cargo >/dev/null 2>&1; then
            say "building surge (release)"
            cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" -p surge-cli \
                || die 3 "cannot build surge"
        fi
    fi
    [ -x "$surge" ] || die 3 "no surge binary at $surge (set SURGE_BIN or install cargo)"
}
