//! What the binary's test files share: running `ember`, checking its errors, scratch folders.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared real data sets (../shared/data, or $EMBER_DATA_DIR); None, with a message,
/// when they are absent on a developer's machine. Under CI=true their absence fails the test.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EMBER_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        missing(&format!(
            "no shared data at {} (set EMBER_DATA_DIR)",
            dir.display()
        ));
        None
    }
}

/// The all-MiniLM-L6-v2 folder of the shared data; absent, as [`data_dir`].
pub fn encoder_dir() -> Option<PathBuf> {
    let dir = data_dir()?.join("all-minilm-l6-v2");
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        missing(&format!("no all-MiniLM-L6-v2 model at {}", dir.display()));
        None
    }
}

/// SmolLM2-135M-Instruct (`$EMBER_LLM_MODEL`, else where scripts/fetch-smollm2.sh puts it);
/// absent, as [`data_dir`].
pub fn llm_model() -> Option<String> {
    let path = std::env::var_os("EMBER_LLM_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    if path.is_file() {
        Some(path.display().to_string())
    } else {
        missing(&format!(
            "no SmolLM2 model at {} (run scripts/fetch-smollm2.sh)",
            path.display()
        ));
        None
    }
}

/// Skips a test whose data is missing, except under CI=true, where it fails.
pub fn missing(what: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what}: under CI=true the real data must be present"
    );
    eprintln!("skipping: {what}");
}

/// `ember ARGS` from the repository root, on one thread.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ember"));
    c.args(args)
        .current_dir(repo_root())
        .env("EMBER_NUM_THREADS", "1");
    c
}

pub fn ember(args: &[&str]) -> Output {
    command(args).output().expect("the ember binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `ember ARGS`, which must succeed, and returns its output.
pub fn ok(args: &[&str]) -> String {
    let o = ember(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}{}",
        stderr(&o),
        stdout(&o)
    );
    stdout(&o)
}

/// Asserts failure with exactly one line on stderr that contains every needle.
pub fn assert_fails(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "should fail; stdout: {}", stdout(o));
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "'{n}' not in: {err}");
    }
}

/// `ember ARGS` fails with one line containing every needle.
pub fn fails_with(args: &[&str], needles: &[&str]) {
    assert_fails(&ember(args), needles);
}

/// Runs `ember args…` with `input` on its standard input; its standard output, after checking
/// that it succeeded.
pub fn ok_with_stdin(args: &[&str], input: &[u8]) -> String {
    let mut child = command(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

pub fn last_line(out: &str) -> &str {
    out.trim_end().lines().last().unwrap_or("")
}

/// A fresh temporary folder, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ember-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes a file into the folder and returns its path.
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    /// The path of a file in the folder.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
pub mod server;

/// ALS trained briefly on MovieLens-100K's ratings, with titles, saved to `out`; None when
/// the shared data is absent (see [`data_dir`]).
pub fn movielens_als(out: String) -> Option<String> {
    let ml = data_dir()?.join("movielens-100k");
    if !ml.join("u.data").is_file() {
        return None;
    }
    ok(&[
        "recommend",
        "train",
        "--ratings",
        &ml.join("u.data").display().to_string(),
        "--items",
        &ml.join("ml-100k.item").display().to_string(),
        "--model",
        "als",
        "--factors",
        "16",
        "--epochs",
        "5",
        "--validation-split",
        "0",
        "--output",
        &out,
    ]);
    Some(out)
}
