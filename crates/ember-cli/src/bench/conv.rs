//! `ember bench conv`: forward + backward throughput of the convnet's two convolutions, in
//! GFLOP/s, computed both ways the tape can (im2col + `gemm`, its default, and the direct
//! kernel), next to the matrix products they amount to, timed through the same `gemm` on
//! buffers already laid out (no im2col, no activation): which algorithm is faster, and how
//! close the convolution comes to the product it is built on.

use std::time::Instant;

use ember::autograd::{force_conv_algorithm, ConvAlgorithm};
use ember::tensor::matmul::{matmul, MatRef};
use ember::tensor::random::{uniform_tensor, Rng};
use ember::{Activation, Tape, Tensor};

use super::{median, BenchArgs};

/// One convolution of the benchmark: input (batch, height, width, channels), kernel size,
/// filters, and whether the input takes a gradient (not for the first layer).
struct Case {
    name: &'static str,
    input: [usize; 4],
    kernel: usize,
    filters: usize,
    input_grad: bool,
}

const CASES: [Case; 2] = [
    Case {
        name: "conv2d   28x28x1 -> 26x26x32",
        input: [128, 28, 28, 1],
        kernel: 3,
        filters: 32,
        input_grad: false,
    },
    Case {
        name: "conv2d_1 13x13x32 -> 11x11x64",
        input: [128, 13, 13, 32],
        kernel: 3,
        filters: 64,
        input_grad: true,
    },
];

fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
    uniform_tensor(shape, -1.0, 1.0, rng)
}

/// Median seconds of `reps` calls of `f`, after one warm-up call.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let seconds: Vec<f64> = (0..reps)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64()
        })
        .collect();
    median(&seconds)
}

pub fn run(args: &BenchArgs) -> ember::Result<()> {
    let reps = 20;
    let mut rng = Rng::seed(args.seed);
    println!(
        "batch 128, 3x3 kernels, valid padding, relu; median of {reps} runs, {} thread(s)",
        args.threads
    );
    println!();
    println!(
        "{:<32} {:>7} {:>14} {:>14} {:>12} {:>9} {:>8}",
        "", "GFLOP", "im2col GFLOP/s", "direct GFLOP/s", "gemm GFLOP/s", "im2col/g", "direct/g"
    );
    for case in &CASES {
        let [batch, height, width, channels] = case.input;
        let (oh, ow) = (height - case.kernel + 1, width - case.kernel + 1);
        let (p, k, f) = (
            batch * oh * ow,
            case.kernel * case.kernel * channels,
            case.filters,
        );
        let products = if case.input_grad { 3 } else { 2 };
        let flops = (2 * p * k * f * products) as f64;

        // The convolution through the tape: forward, then backward to kernel, bias (and input).
        // A reset tape forgets its weights too: each step moves them in again, as training does.
        let mut tape = Tape::new();
        let kernel_value = random(&[case.kernel, case.kernel, channels, f], &mut rng);
        let bias_value = Tensor::zeros(&[f]);
        let input = random(&case.input, &mut rng);
        let seed = random(&[batch, oh, ow, f], &mut rng);
        let mut failure = None;
        let mut conv = |algorithm| {
            force_conv_algorithm(Some(algorithm));
            let seconds = time(reps, || {
                tape.reset();
                let kernel = tape.param(kernel_value.clone());
                let bias = tape.param(bias_value.clone());
                let x = match case.input_grad {
                    true => tape.param(input.clone()),
                    false => tape.constant(&input),
                };
                let result = tape
                    .conv2d(x, kernel, Some(bias), (1, 1), false, Activation::Relu)
                    .and_then(|y| tape.backward_from(y, &seed));
                if let Err(e) = result {
                    failure = Some(e);
                }
            });
            force_conv_algorithm(None);
            seconds
        };
        let im2col = conv(ConvAlgorithm::Im2col);
        let direct = conv(ConvAlgorithm::Direct);
        if let Some(e) = failure {
            return Err(e);
        }

        // The same products on ready-made operands.
        let patches = random(&[p, k], &mut rng);
        let weights = random(&[k, f], &mut rng);
        let dz = random(&[p, f], &mut rng);
        let (mut out, mut dk, mut dpatches) =
            (vec![0.0; p * f], vec![0.0; k * f], vec![0.0; p * k]);
        let gemm = time(reps, || {
            let a = MatRef::new(patches.data(), p, k);
            let w = MatRef::new(weights.data(), k, f);
            let d = MatRef::new(dz.data(), p, f);
            matmul(&mut out, a, w, false);
            matmul(&mut dk, a.t(), d, false);
            if case.input_grad {
                matmul(&mut dpatches, d, w.t(), false);
            }
        });
        println!(
            "{:<32} {:>7.3} {:>14.1} {:>14.1} {:>12.1} {:>9.2} {:>8.2}",
            case.name,
            flops / 1e9,
            flops / im2col / 1e9,
            flops / direct / 1e9,
            flops / gemm / 1e9,
            gemm / im2col,
            gemm / direct
        );
    }
    println!();
    println!(
        "im2col/g, direct/g: each algorithm's throughput / gemm's (1.0 = no overhead beyond \
         the products); the tape uses im2col"
    );
    Ok(())
}
