//! `ember privacy epsilon`: the ε of DP-SGD's settings, by Opacus's RDP or PRV accountant.

use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum PrivacyCommand {
    /// The ε that DP-SGD's settings guarantee with δ: prints `epsilon: X`.
    Epsilon(EpsilonArgs),
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

pub fn run(PrivacyCommand::Epsilon(a): PrivacyCommand) -> ember::Result<()> {
    let (q, sigma) = (a.sample_rate, a.noise_multiplier);
    let epsilon = ember::privacy::epsilon(&a.accountant, q, sigma, a.epochs, a.delta)?;
    println!("epsilon: {epsilon:.3}");
    Ok(())
}
