//! `ember privacy epsilon`: the ε of DP-SGD's settings, by Opacus's RDP or PRV accountant;
//! `ember privacy audit MODEL`: a membership-inference attack on a saved network.

use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum PrivacyCommand {
    /// The ε that DP-SGD's settings guarantee with δ: prints `epsilon: X`.
    Epsilon(EpsilonArgs),
    /// A loss-threshold membership-inference attack on a saved network, its training rows
    /// against its test rows: prints `Membership inference AUC: X` (0.5 is chance).
    Audit {
        /// The saved network (`ember train MODEL_FILE --output FILE`).
        model: std::path::PathBuf,
        /// Its data folder, instead of the one recorded in the model.
        #[arg(long, value_name = "DIR")]
        data: Option<std::path::PathBuf>,
    },
}

#[derive(Args)]
pub struct EpsilonArgs {
    /// The chance that a row is in a batch (Poisson sampling): batch size / rows.
    #[arg(long)]
    sample_rate: f64,
    /// The noise's standard deviation over the clipping norm (σ).
    #[arg(long)]
    noise_multiplier: f64,
    /// Epochs of training, ⌊epochs / sample rate⌋ steps.
    #[arg(long)]
    epochs: f64,
    /// δ of the (ε, δ) guarantee, in (0, 1).
    #[arg(long)]
    delta: f64,
    /// rdp (Rényi DP), or prv (privacy loss distributions, tighter).
    #[arg(long, default_value = "rdp", value_parser = ["rdp", "prv"])]
    accountant: String,
}

pub fn run(command: PrivacyCommand) -> ember::Result<()> {
    match command {
        PrivacyCommand::Epsilon(a) => {
            let (q, sigma) = (a.sample_rate, a.noise_multiplier);
            let epsilon = ember::privacy::epsilon(&a.accountant, q, sigma, a.epochs, a.delta)?;
            println!("epsilon: {epsilon:.3}");
        }
        PrivacyCommand::Audit { model, data } => {
            let options = ember::jobs::audit::AuditOptions { model, data };
            print!("{}", ember::jobs::audit::membership_audit(&options)?.text());
        }
    }
    Ok(())
}
