//! The docs, run: every ```console block of README.md and docs/*.md is executed and what it
//! shows is checked, so that no example drifts from the binary.
//!
//! How a page's examples are written:
//! - A ```console block holds commands, each on a line that starts with `$ ` (a line ending in
//!   `\` goes on to the next), and under each what it prints: standard output and standard
//!   error together, as they come when piped. snapbox compares them: `[..]` matches any part of
//!   a line, `...` alone on a line any number of lines (timings, float noise); the rest —
//!   labels, accuracies printed with their seed, counts, formats — must be equal.
//! - Every command must exit 0. A failure is shown by asking the shell for its status:
//!   `$ ember predict m.safetensors missing.png; echo "exit $?"`.
//! - A block runs as one bash script, so `$ M=…` holds for the block's later commands. A page's
//!   blocks run in order in one scratch folder, `repo/` beside `shared/`: `repo/` links to every
//!   top-level entry of the repository but `target` (its `target/models/` holds the language
//!   model), `shared/data` is the real data, so `../shared/data/…`, `data/mnist`, `models/…` and
//!   `docs/examples/…` resolve as in a checkout, and what a command writes stays in the scratch
//!   folder (a model trained in one block is there for the next). The linked folders are the
//!   checkout's own: no example writes into them.
//! - A command ending in `&` with `--port 8080` starts a server in the background: the block
//!   waits until it answers, shows nothing of its output, and stops it when the block ends. The
//!   block runs on a free port in its place (its commands say 8080; outputs are read back so).
//! - Commands run with the built `ember` first on `PATH`, `EMBER_NUM_THREADS=2` (results are
//!   the same on any machine of this project's kind) and no other `EMBER_` variable.
//! - A page whose examples run `mpirun` finds the binary built with `--features mpi`
//!   (target/mpi/ember) as `ember`, and the one under test as `ember-without-mpi`; Open MPI
//!   is told to run as root and without ptrace-based transfers, as a CI container needs.
//! - ```sh blocks are not run: the two commands CI runs itself and a few set-up steps. An `ember`
//!   command in one is an error (checked below).
//! - `EMBER_DOCS=overwrite` writes the output of each command that differs into its page, in
//!   place of the one shown, to review with `git diff` (wildcards are then put back by hand).
//!
//! Each page is one test; missing shared data or models skip it, or fail it under CI=true.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The pages, each a test.
macro_rules! pages {
    ($($test:ident => $page:literal,)*) => {
        $(#[test] fn $test() { run_page($page); })*
        const PAGES: &[&str] = &[$($page),*];
    };
}

pages! {
    readme => "README.md",
    docs_index => "docs/README.md",
    cli => "docs/cli.md",
    setup => "docs/setup.md",
    output => "docs/output.md",
    keras => "docs/keras.md",
    model_file => "docs/model-file.md",
    tables => "docs/tables.md",
    images => "docs/images.md",
    text => "docs/text.md",
    recommend => "docs/recommend.md",
    generate => "docs/generate.md",
    explain => "docs/explain.md",
    tuning => "docs/tuning.md",
    serving => "docs/serving.md",
    speed => "docs/speed.md",
    distributed => "docs/distributed.md",
    privacy => "docs/privacy.md",
    layout => "docs/layout.md",
}

/// The longest a block may run before it is killed and the page fails.
const BLOCK_LIMIT: Duration = Duration::from_secs(300);

/// The port the docs' servers are shown on.
const SHOWN_PORT: &str = "8080";

/// One command of a page and the output shown under it.
struct Example {
    /// 1-based line of the `$ ` line in the page.
    line: usize,
    command: String,
    expected: Vec<String>,
    /// The 0-based range of the page's lines that hold `expected` (for EMBER_DOCS=overwrite).
    shown: std::ops::Range<usize>,
}

/// A ```console block: its examples, run as one script.
struct Block {
    examples: Vec<Example>,
}

fn fence(line: &str) -> Option<&str> {
    line.trim_start().strip_prefix("```").map(str::trim)
}

/// The ```console blocks of a page.
fn console_blocks(page: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = fence(lines[i]) else {
            i += 1;
            continue;
        };
        let start = i;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && fence(lines[i]) != Some("") {
            body.push(i);
            i += 1;
        }
        assert!(
            i < lines.len(),
            "{page}:{}: a ``` block that never closes",
            start + 1
        );
        i += 1;
        if info != "console" {
            continue;
        }
        let mut examples: Vec<Example> = Vec::new();
        let mut k = 0;
        while k < body.len() {
            let l = body[k];
            if let Some(first) = lines[l].strip_prefix("$ ") {
                let mut command = first.to_string();
                while command.ends_with('\\') && k + 1 < body.len() {
                    k += 1;
                    command.push('\n');
                    command.push_str(lines[body[k]]);
                }
                examples.push(Example {
                    line: l + 1,
                    command,
                    expected: Vec::new(),
                    shown: body[k] + 1..body[k] + 1,
                });
            } else {
                let example = examples.last_mut().unwrap_or_else(|| {
                    panic!(
                        "{page}:{}: a console block starts with output, not a `$ ` command",
                        l + 1
                    )
                });
                example.expected.push(lines[l].to_string());
                example.shown.end = l + 1;
            }
            k += 1;
        }
        blocks.push(Block { examples });
    }
    blocks
}

/// A background command's port: the number after `--port`.
fn port_of(page: &str, example: &Example) -> String {
    let words: Vec<&str> = example.command.split_whitespace().collect();
    let port = words
        .windows(2)
        .find(|w| w[0] == "--port")
        .map(|w| w[1].to_string());
    port.unwrap_or_else(|| {
        panic!(
            "{page}:{}: a background command needs --port {SHOWN_PORT}",
            example.line
        )
    })
}

fn free_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port().to_string()
}

/// Marks the end of a command's output in the block's output, followed by its exit status.
const END: &str = "\n\u{1e}";

/// The bash script of a block: each command, then its exit status behind [`END`].
fn script(page: &str, block: &Block, port: &str, scratch: &Path) -> String {
    let mut s = String::from(
        "exec 2>&1\n\
         trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n\
         ember_docs_wait() {\n  \
           for _ in $(seq 1200); do\n    \
             curl -s -o /dev/null \"http://127.0.0.1:$1/v2/health/ready\" && return 0\n    \
             kill -0 \"$2\" 2>/dev/null || break\n    \
             sleep 0.1\n  \
           done\n  \
           echo \"the server did not start:\"; cat \"$3\"; return 1\n\
         }\n",
    );
    for (n, example) in block.examples.iter().enumerate() {
        let command = example.command.replace(SHOWN_PORT, port);
        if let Some(background) = command.trim_end().strip_suffix('&') {
            port_of(page, example);
            let log = scratch.join(format!("server-{}.log", example.line));
            s.push_str(&format!(
                "{{ {background}\n}} > '{log}' 2>&1 &\nember_docs_wait {port} $! '{log}'",
                log = log.display()
            ));
        } else {
            s.push_str(&format!("{{ {command}\n}}"));
        }
        s.push_str(&format!("\nprintf '\\n\\036%d\\n' \"$?\" # {n}\n"));
    }
    s
}

/// Runs a script in `dir` with the docs' environment; its output, or why it did not finish.
fn run_script(script: &str, dir: &Path, bin: &Path) -> Result<String, String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-c", script])
        .current_dir(dir)
        .env("PATH", format!("{}:{path}", bin.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("EMBER_") {
            command.env_remove(key);
        }
    }
    command.env("EMBER_NUM_THREADS", "2");
    // mpirun as the examples show it, on a CI machine (root, in a container): root allowed,
    // no ptrace-based single-copy transfers.
    command
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    let mut child = command.spawn().expect("bash runs");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let started = Instant::now();
    loop {
        if child.try_wait().expect("bash is waited for").is_some() {
            break;
        }
        if started.elapsed() > BLOCK_LIMIT {
            // The whole group: bash and what it started in the background.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            let out = reader.join().unwrap_or_default();
            return Err(format!(
                "still running after {} s; its output so far:\n{}",
                BLOCK_LIMIT.as_secs(),
                String::from_utf8_lossy(&out)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Whatever the block left running in its group (a server the shell's trap did not
    // reach, being a subshell's child) ends with it.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let out = reader.join().unwrap_or_default();
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Splits a block's output at [`END`]: each command's output and exit status.
fn split_output(mut out: &str) -> Vec<(String, i32)> {
    let mut results = Vec::new();
    while let Some(at) = out.find(END) {
        let text = out[..at].trim_end().to_string();
        let rest = &out[at + END.len()..];
        let (status, rest) = rest.split_once('\n').unwrap_or((rest, ""));
        results.push((text, status.trim().parse().unwrap_or(-1)));
        out = rest;
    }
    results
}

/// The scratch folder of a page, laid out as a checkout beside its shared data; None (with a
/// message, or a failure under CI=true) when the shared data or the models are missing.
fn scratch(page: &str) -> Option<PathBuf> {
    let data = common::data_dir()?;
    common::encoder_dir()?;
    let llm = PathBuf::from(common::llm_model()?);
    let name = page.trim_end_matches(".md").replace('/', "-");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("docs")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    let repo = root.join("repo");
    std::fs::create_dir_all(repo.join("target/models")).unwrap();
    std::fs::create_dir_all(root.join("shared")).unwrap();
    let link = |from: &Path, to: &Path| std::os::unix::fs::symlink(from, to).unwrap();
    link(&data.canonicalize().unwrap(), &root.join("shared/data"));
    link(
        &llm.canonicalize().unwrap(),
        &repo.join("target/models").join(llm.file_name().unwrap()),
    );
    let checkout = common::repo_root().canonicalize().unwrap();
    for entry in std::fs::read_dir(&checkout).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name != "target" && name != ".git" {
            link(&entry.path(), &repo.join(name));
        }
    }
    Some(root)
}

/// The folder put first on the examples' PATH: `ember`, the binary under test, or for a page
/// whose examples run `mpirun`, the binary built with `--features mpi` (target/mpi/ember, as
/// tests/distributed.rs finds it; None when it is missing, which skips the page or fails it
/// under CI=true), beside `ember-without-mpi`, the binary under test.
fn binaries(root: &Path, mpi: bool) -> Option<PathBuf> {
    let plain = PathBuf::from(env!("CARGO_BIN_EXE_ember"));
    if !mpi {
        return Some(plain.parent().unwrap().to_path_buf());
    }
    let built = std::env::var_os("EMBER_MPI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| plain.parent().unwrap().parent().unwrap().join("mpi/ember"));
    if !built.is_file() {
        common::missing(&format!(
            "no MPI build at {} for the examples that run mpirun (see tests/distributed.rs)",
            built.display()
        ));
        return None;
    }
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&built, bin.join("ember")).unwrap();
    std::os::unix::fs::symlink(&plain, bin.join("ember-without-mpi")).unwrap();
    Some(bin)
}

/// Runs every console block of a page; panics with each difference, naming page, line and
/// command.
fn run_page(page: &str) {
    let file = common::repo_root().join(page);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{page}: {e}"));
    let blocks = console_blocks(page, &text);
    if blocks.is_empty() {
        return;
    }
    let Some(root) = scratch(page) else { return };
    let Some(bin) = binaries(&root, text.contains("\n$ mpirun ")) else {
        return;
    };
    let overwrite = std::env::var("EMBER_DOCS").as_deref() == Ok("overwrite");
    let assert = snapbox::Assert::new().normalize_paths(false);
    let mut failures = Vec::new();
    let mut rewrites: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let started = Instant::now();
    for block in &blocks {
        let background = block
            .examples
            .iter()
            .any(|e| e.command.trim_end().ends_with('&'));
        let port = if background {
            free_port()
        } else {
            SHOWN_PORT.to_string()
        };
        let out = match run_script(&script(page, block, &port, &root), &root.join("repo"), &bin) {
            Ok(out) => out,
            Err(why) => {
                let first = &block.examples[0];
                failures.push(format!("{page}:{}: the block {why}", first.line));
                continue;
            }
        };
        let results = split_output(&out);
        for (n, example) in block.examples.iter().enumerate() {
            let Some((actual, status)) = results.get(n) else {
                failures.push(format!(
                    "{page}:{}: `{}` did not finish; the block's output:\n{out}",
                    example.line, example.command
                ));
                break;
            };
            let actual = actual.replace(&port, SHOWN_PORT);
            let at = format!("{page}:{}: `{}`", example.line, example.command);
            if *status != 0 {
                failures.push(format!(
                    "{at} exited with {status} (show a failure with `; echo \"exit $?\"`):\n{actual}"
                ));
                continue;
            }
            let expected = example.expected.join("\n").trim_end().to_string();
            let compared = assert.try_eq(
                Some(&at),
                snapbox::Data::text(actual.clone()),
                snapbox::Data::text(expected),
            );
            if let Err(difference) = compared {
                if overwrite {
                    rewrites.push((example.shown.clone(), actual));
                } else {
                    failures.push(format!("{at} printed something else:\n{difference}"));
                }
            }
        }
    }
    let commands: usize = blocks.iter().map(|b| b.examples.len()).sum();
    eprintln!(
        "{page}: {commands} commands in {} blocks, {:.1} s",
        blocks.len(),
        started.elapsed().as_secs_f64()
    );
    if !rewrites.is_empty() {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for (range, actual) in rewrites.iter().rev() {
            let new: Vec<String> = if actual.is_empty() {
                Vec::new()
            } else {
                actual.lines().map(str::to_string).collect()
            };
            lines.splice(range.clone(), new);
        }
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        eprintln!("{page}: wrote the output of {} commands", rewrites.len());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let _ = std::fs::remove_dir_all(&root);
}

/// Every page of docs/ is run by a test of this file.
#[test]
fn every_page_is_run() {
    let docs = common::repo_root().join("docs");
    for entry in std::fs::read_dir(docs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let page = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
            assert!(
                PAGES.contains(&page.as_str()),
                "{page} is not in this file's pages!"
            );
        }
    }
}

/// An `ember` command is a console block's, so that it runs; the blocks that do not run hold
/// only set-up steps.
#[test]
fn ember_examples_run() {
    for page in PAGES {
        let text = std::fs::read_to_string(common::repo_root().join(page)).unwrap();
        let mut info: Option<&str> = None;
        for (n, line) in text.lines().enumerate() {
            if let Some(i) = fence(line) {
                info = if info.is_some() { None } else { Some(i) };
                continue;
            }
            let Some(kind) = info else { continue };
            if matches!(kind, "sh" | "bash" | "shell" | "text" | "") {
                let command = line.trim_start().trim_start_matches("$ ");
                assert!(
                    !command.starts_with("ember ") && !command.starts_with("curl "),
                    "{page}:{}: an example in a ```{kind} block, which does not run: make it a \
                     ```console block",
                    n + 1
                );
            }
        }
    }
}
