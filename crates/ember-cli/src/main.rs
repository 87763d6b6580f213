//! The `ember` command: train, summarise and benchmark models.

mod bench;
mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};

#[derive(clap::Parser)]
#[command(
    name = "ember",
    version,
    about = "Train, evaluate and benchmark neural networks"
)]
struct Cli {
    /// No progress output: no bars while encoding, indexing, training, explaining or
    /// reading a prompt, and no per-epoch lines (Keras's verbose 0). Any subcommand takes it.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model file on its data, then report test accuracy.
    Train(Box<commands::train::TrainArgs>),
    /// Search a model file's hyperparameters (its [tune] section), or a table model's.
    Tune(Box<commands::tune::TuneArgs>),
    /// Cross-validate a table model (k folds).
    Cv(commands::cv::CvArgs),
    /// Inspect data files.
    Data(commands::data::DataArgs),
    /// Evaluate a saved model: loss, accuracy, per-class scores, confusion matrix.
    Evaluate(commands::evaluate::EvaluateArgs),
    /// Predict the class of images, IDX samples or CSV rows with a saved model.
    Predict(commands::predict::PredictArgs),
    /// Explain a saved model's predictions: saliency, SmoothGrad, Integrated Gradients, Grad-CAM, permutation importance.
    Explain(commands::explain::ExplainArgs),
    /// Print a model's layers, output shapes and parameter counts, or what an index holds.
    Summary(commands::summary::SummaryArgs),
    /// Sentence embeddings from a pretrained encoder folder (all-MiniLM-L6-v2).
    Embed(commands::embed::EmbedArgs),
    /// Build a FAQ search index from a CSV of questions and answers.
    Index(commands::faq::IndexArgs),
    /// Ask a FAQ index: the closest answers with their cosine similarity; with --llm, a generated reply from them.
    Ask(commands::faq::AskArgs),
    /// Continue a prompt with a GGUF language model (SmolLM2, Qwen2.5, Llama 3 …); the text to stdout as it comes.
    Generate(Box<commands::generate::GenerateArgs>),
    /// Chat with a GGUF language model in its chat template, one message per line of input.
    Chat(Box<commands::generate::ChatArgs>),
    /// Recommenders from ratings: train, evaluate, top-k, similar items, cross-validation, splits.
    Recommend(commands::recommend::RecommendArgs),
    /// Differential privacy: the ε that DP-SGD's settings guarantee (RDP or PRV accountant).
    #[command(subcommand)]
    Privacy(commands::privacy::PrivacyCommand),
    /// Serve saved models over HTTP: KServe v2, REST, OpenAI embeddings, a web playground.
    Serve(Box<commands::serve::ServeArgs>),
    /// Time workloads against baselines measured in the same run (mlp, cnn, conv, embed, search, predict, tune, recommend, serve, generate, distributed).
    Bench(bench::BenchArgs),
    /// Print a shell completion script: `ember completions bash > /etc/bash_completion.d/ember`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing to a closed pipe (`ember predict … | head -1`) would
    // panic; with the default action the process ends quietly, as `cat` or `grep` do.
    #[cfg(unix)]
    // SAFETY: called first, before any thread starts; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Under mpirun / srun: join the job (a binary without MPI says how to rebuild).
    if let Err(err) = ember::distributed::init() {
        // Said once, by the first process, not by each of them.
        if ember::distributed::launched_rank() == 0 {
            eprintln!("error: {err}");
        }
        return ExitCode::FAILURE;
    }
    // The matches are kept: `bench` asks them which flags were given.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // A bad EMBER_NUM_THREADS is an error for every command, not quietly all cores.
    if let Err(err) = ember::tensor::threads::threads_from_env() {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    // In a data-parallel job only rank 0 prints.
    let root = ember::distributed::is_root();
    if !root {
        quiet_stdout();
    }
    ember::progress::set_enabled(!cli.quiet && root);
    // Under mpirun, the commands that share their work among the processes; another would
    // run the same work on each of them (or, serving, on one port).
    let shared = ["train", "tune", "cv", "evaluate", "bench"];
    let command = matches.subcommand_name().unwrap_or_default();
    let result = match ember::distributed::check_shared(command, &shared) {
        Err(err) => Err(err),
        Ok(()) => match cli.command {
            Command::Train(mut args) => {
                args.quiet = cli.quiet;
                commands::train::run(*args)
            }
            Command::Tune(args) => commands::tune::run(*args),
            Command::Cv(args) => commands::cv::run(args),
            Command::Data(args) => commands::data::run(args),
            Command::Evaluate(args) => commands::evaluate::run(args),
            Command::Predict(args) => commands::predict::run(args),
            Command::Explain(args) => commands::explain::run(args),
            Command::Summary(args) => commands::summary::run(args),
            Command::Embed(args) => commands::embed::run(args),
            Command::Index(args) => commands::faq::index(args),
            Command::Ask(args) => commands::faq::ask(args),
            Command::Generate(args) => commands::generate::run_generate(*args),
            Command::Chat(args) => commands::generate::run_chat(*args),
            Command::Recommend(args) => commands::recommend::run(args),
            Command::Privacy(args) => commands::privacy::run(args),
            Command::Serve(args) => commands::serve::run(*args),
            Command::Bench(args) => bench::run(args, matches.subcommand_matches("bench")),
            Command::Completions { shell } => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "ember",
                    &mut std::io::stdout(),
                );
                Ok(())
            }
        },
    };
    let world = ember::distributed::world();
    match result {
        Ok(()) => {
            ember::distributed::finish();
            ExitCode::SUCCESS
        }
        Err(err) if world.size() == 1 => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
        Err(err) => {
            // The other ranks may be waiting in a collective: end the whole job. An error
            // every rank meets (a bad file) is said once, by rank 0, whose abort ends the
            // others before their grace second is up; one rank's own error is said by it.
            if !root {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            match root {
                true => eprintln!("error: {err}"),
                false => eprintln!("error (rank {} of {}): {err}", world.rank(), world.size()),
            }
            world.abort(1)
        }
    }
}

/// Sends standard output to /dev/null: a data-parallel job's ranks other than 0 run the same
/// command and would print everything again.
fn quiet_stdout() {
    #[cfg(unix)]
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto stdout's descriptor, before anything is printed.
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
        }
    }
}
