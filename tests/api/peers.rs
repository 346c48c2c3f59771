//! The real peers the tests talk to, installed on first use: a test that needs one calls
//! [`installed`], which runs `tests/peers/install.sh` once per test process (idempotent: a peer
//! already installed at its pinned version is kept), so that a plain `cargo test` on a fresh
//! machine works as `.ci/run` does. A peer that cannot be installed fails the test with the
//! script's own message; nothing is skipped.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The build directory the test binary runs from (`target/debug/deps/api-…` → `target`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors().nth(3).expect("the test binary sits in target/PROFILE/deps").to_path_buf()
}

/// The directory the peers are installed in (`target/peers`), after installing them if needed.
pub fn installed() -> PathBuf {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let outcome = INSTALLED.get_or_init(|| {
        let target = target_dir();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/install.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if output.status.success() {
            Ok(target.join("peers"))
        } else {
            Err(format!(
                "{} failed ({}): {}{}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    match outcome {
        Ok(dir) => dir.clone(),
        Err(why) => panic!("the test peers could not be installed: {why}"),
    }
}
