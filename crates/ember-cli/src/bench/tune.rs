//! `ember bench tune --python VENV/bin/python`: Ember's TPE against Optuna's on the search of
//! bench/tune/mnist-tpe.toml, both scoring trials with this binary's training, so only the
//! sampler differs (bench/tune_optuna.py prints the figures).

use ember::Error;

use super::BenchArgs;

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let python = args.python.as_ref().ok_or_else(|| {
        Error::invalid(
            "bench tune needs --python PATH: a virtual environment with optuna and tomli-w (see bench/README.md)",
        )
    })?;
    let ember = std::env::current_exe().map_err(|e| Error::io("ember", e))?;
    let script = std::path::Path::new("bench/tune_optuna.py");
    let mut command = std::process::Command::new(python);
    command
        .arg(script)
        .arg("--ember")
        .arg(&ember)
        .args(["--threads", &args.threads.to_string()])
        .args(["--seeds", &args.seeds]);
    if let Some(trials) = args.trials {
        command.args(["--trials", &trials.to_string()]);
    }
    if let Some(model) = &args.model {
        command.arg("--model").arg(model);
    }
    let status = command.status().map_err(|e| Error::io(python, e))?;
    if !status.success() {
        return Err(Error::invalid(format!(
            "{} {} failed ({status})",
            python.display(),
            script.display()
        )));
    }
    Ok(())
}
