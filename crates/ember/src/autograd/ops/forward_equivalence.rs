//! Every `tensor::forward` function against the `Tape` op it stands for: the same values bit
//! for bit, and the same errors.

use crate::autograd::{BinaryOp, LossOp, NormStats, UnaryOp};
use crate::error::Result;
use crate::tensor::activation::Activation;
use crate::tensor::forward;
use crate::tensor::linear::matmul_dims;
use crate::tensor::matmul::{matmul_into, MatRef};
use crate::tensor::reduce::{mean_factor, scaled_sum};
use crate::{Tape, Tensor, Var};

// No layer runs a bare product or mean eagerly (Dense runs `linear`), so the tape's `matmul`
// and `mean` are checked against their kernels called directly.
fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (m, k, n) = matmul_dims(a.shape(), b.shape())?;
    let mut out = Tensor::zeros(&[m, n]);
    matmul_into(
        &mut out,
        MatRef::new(a.data(), m, k),
        MatRef::new(b.data(), k, n),
        false,
    );
    Ok(out)
}

fn mean(x: &Tensor) -> Tensor {
    Tensor::scalar(scaled_sum(x.data(), mean_factor(x.len())))
}

const ACTIVATIONS: [Activation; 6] = [
    Activation::Linear,
    Activation::Relu,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Softmax,
    Activation::Gelu,
];

/// Deterministic values of both signs.
fn values(shape: &[usize], seed: f32) -> Tensor {
    let n = shape.iter().product::<usize>();
    let data = (0..n)
        .map(|i| ((i as f32 + 1.0) * seed).sin() * 2.0)
        .collect();
    Tensor::new(shape, data).unwrap()
}

fn positive(shape: &[usize], seed: f32) -> Tensor {
    let t = values(shape, seed);
    let data = t.data().iter().map(|v| v.abs() + 0.5).collect();
    Tensor::new(shape, data).unwrap()
}

/// Asserts that the tape's value and the forward function's output agree bit for bit.
fn assert_same(tape: &Tape, recorded: Result<Var>, computed: Result<Tensor>) {
    let (recorded, computed) = (tape.value(recorded.unwrap()), computed.unwrap());
    assert_eq!(recorded.shape(), computed.shape());
    let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(recorded), bits(&computed));
}

/// Asserts that both fail, with the same message.
fn assert_same_error<T: std::fmt::Debug, U: std::fmt::Debug>(
    recorded: Result<T>,
    computed: Result<U>,
) {
    let (recorded, computed) = (recorded.unwrap_err(), computed.unwrap_err());
    assert_eq!(recorded.to_string(), computed.to_string());
}

#[test]
fn linear_and_matmul() {
    let mut tape = Tape::new();
    let (x, w, b) = (
        values(&[5, 3], 0.7),
        values(&[3, 4], 1.3),
        values(&[4], 0.4),
    );
    let x3 = values(&[2, 3, 3], 0.9);
    let (xv, wv, bv, x3v) = (
        tape.constant(&x),
        tape.constant(&w),
        tape.constant(&b),
        tape.constant(&x3),
    );
    for act in ACTIVATIONS {
        let y = tape.linear(xv, wv, Some(bv), act);
        assert_same(&tape, y, forward::linear(&x, &w, Some(&b), act));
        let y = tape.linear(x3v, wv, None, act);
        assert_same(&tape, y, forward::linear(&x3, &w, None, act));
    }
    let y = tape.matmul(xv, wv);
    assert_same(&tape, y, matmul(&x, &w));
    // Errors: features that do not match, a 1-D kernel, a bias of the wrong length.
    let act = Activation::Relu;
    assert_same_error(
        tape.linear(wv, wv, None, act),
        forward::linear(&w, &w, None, act),
    );
    assert_same_error(
        tape.linear(xv, bv, None, act),
        forward::linear(&x, &b, None, act),
    );
    assert_same_error(
        tape.linear(xv, wv, Some(xv), act),
        forward::linear(&x, &w, Some(&x), act),
    );
    assert_same_error(tape.matmul(wv, wv), matmul(&w, &w));
}

#[test]
fn conv2d_on_both_algorithms() {
    use crate::autograd::{force_conv_algorithm, ConvAlgorithm};
    let (x, k, b) = (
        values(&[5, 6, 5, 3], 0.37),
        values(&[3, 2, 3, 4], 0.91),
        values(&[4], 0.5),
    );
    for algorithm in [ConvAlgorithm::Im2col, ConvAlgorithm::Direct] {
        force_conv_algorithm(Some(algorithm));
        let mut tape = Tape::new();
        let (xv, kv, bv) = (tape.constant(&x), tape.constant(&k), tape.constant(&b));
        for (same, strides) in [(false, (1, 1)), (true, (1, 1)), (true, (2, 1))] {
            for act in ACTIVATIONS {
                let y = tape.conv2d(xv, kv, Some(bv), strides, same, act);
                assert_same(
                    &tape,
                    y,
                    forward::conv2d(&x, &k, Some(&b), strides, same, act),
                );
                let y = tape.conv2d(xv, kv, None, strides, same, act);
                assert_same(&tape, y, forward::conv2d(&x, &k, None, strides, same, act));
            }
        }
        force_conv_algorithm(None);
    }
    let mut tape = Tape::new();
    let (xv, kv, bv) = (tape.constant(&x), tape.constant(&k), tape.constant(&b));
    let act = Activation::Relu;
    // Errors: channels that do not match, a 3-D kernel, a bad bias, a window too large.
    let wrong = values(&[3, 2, 2, 4], 0.3);
    let wv = tape.constant(&wrong);
    assert_same_error(
        tape.conv2d(xv, wv, None, (1, 1), false, act),
        forward::conv2d(&x, &wrong, None, (1, 1), false, act),
    );
    assert_same_error(
        tape.conv2d(xv, bv, None, (1, 1), false, act),
        forward::conv2d(&x, &b, None, (1, 1), false, act),
    );
    assert_same_error(
        tape.conv2d(xv, kv, Some(kv), (1, 1), false, act),
        forward::conv2d(&x, &k, Some(&k), (1, 1), false, act),
    );
    let big = values(&[9, 2, 3, 4], 0.3);
    let big_v = tape.constant(&big);
    assert_same_error(
        tape.conv2d(xv, big_v, None, (1, 1), false, act),
        forward::conv2d(&x, &big, None, (1, 1), false, act),
    );
    assert_same_error(
        tape.conv2d(xv, kv, None, (0, 1), true, act),
        forward::conv2d(&x, &k, None, (0, 1), true, act),
    );
}

#[test]
fn pooling() {
    let x = values(&[5, 5, 6, 3], 0.29);
    let mut tape = Tape::new();
    let xv = tape.constant(&x);
    for (pool, strides, same) in [((2, 2), (2, 2), false), ((3, 3), (2, 2), true)] {
        let y = tape.max_pool2d(xv, pool, strides, same);
        assert_same(&tape, y, forward::max_pool2d(&x, pool, strides, same));
        let y = tape.avg_pool2d(xv, pool, strides, same);
        assert_same(&tape, y, forward::avg_pool2d(&x, pool, strides, same));
    }
    let flat = values(&[2, 9], 0.3);
    let flat_v = tape.constant(&flat);
    assert_same_error(
        tape.max_pool2d(flat_v, (2, 2), (2, 2), false),
        forward::max_pool2d(&flat, (2, 2), (2, 2), false),
    );
    assert_same_error(
        tape.avg_pool2d(xv, (7, 7), (1, 1), false),
        forward::avg_pool2d(&x, (7, 7), (1, 1), false),
    );
}

#[test]
fn batch_norm_with_given_statistics() {
    let (x, gamma, beta) = (
        values(&[2, 3, 2, 4], 0.8),
        values(&[4], 1.1),
        values(&[4], 0.6),
    );
    let (mean, variance) = (values(&[4], 0.3), positive(&[4], 0.7));
    let mut tape = Tape::new();
    let [xv, gv, bv, mv, vv] = [&x, &gamma, &beta, &mean, &variance].map(|t| tape.constant(t));
    let stats = NormStats::Given {
        mean: mv,
        variance: vv,
    };
    for (g, b) in [(true, true), (false, true), (true, false), (false, false)] {
        let (gt, bt) = (g.then_some(&gamma), b.then_some(&beta));
        let y = tape.batch_norm(xv, g.then_some(gv), b.then_some(bv), stats, 1e-3);
        assert_same(
            &tape,
            y,
            forward::batch_norm(&x, gt, bt, &mean, &variance, 1e-3),
        );
    }
    // Errors: a per-channel value of the wrong length, epsilon 0, a 1-D input.
    let x_short = values(&[3], 0.2);
    let sv = tape.constant(&x_short);
    let bad_stats = NormStats::Given {
        mean: sv,
        variance: vv,
    };
    assert_same_error(
        tape.batch_norm(xv, None, None, bad_stats, 1e-3),
        forward::batch_norm(&x, None, None, &x_short, &variance, 1e-3),
    );
    assert_same_error(
        tape.batch_norm(xv, Some(sv), None, stats, 1e-3),
        forward::batch_norm(&x, Some(&x_short), None, &mean, &variance, 1e-3),
    );
    assert_same_error(
        tape.batch_norm(xv, None, None, stats, 0.0),
        forward::batch_norm(&x, None, None, &mean, &variance, 0.0),
    );
    let flat = values(&[4], 0.2);
    let fv = tape.constant(&flat);
    assert_same_error(
        tape.batch_norm(fv, None, None, stats, 1e-3),
        forward::batch_norm(&flat, None, None, &mean, &variance, 1e-3),
    );
}

#[test]
fn layer_norm() {
    let (x, gamma, beta) = (
        values(&[2, 3, 5], 0.8),
        values(&[5], 1.1),
        values(&[5], 0.6),
    );
    let mut tape = Tape::new();
    let [xv, gv, bv] = [&x, &gamma, &beta].map(|t| tape.constant(t));
    for (g, b) in [(true, true), (false, true), (true, false), (false, false)] {
        let (gt, bt) = (g.then_some(&gamma), b.then_some(&beta));
        let y = tape.layer_norm(xv, g.then_some(gv), b.then_some(bv), 1e-5);
        assert_same(&tape, y, forward::layer_norm(&x, gt, bt, 1e-5));
    }
    let short = values(&[3], 0.2);
    let sv = tape.constant(&short);
    assert_same_error(
        tape.layer_norm(xv, Some(sv), None, 1e-5),
        forward::layer_norm(&x, Some(&short), None, 1e-5),
    );
    assert_same_error(
        tape.layer_norm(xv, None, None, -1.0),
        forward::layer_norm(&x, None, None, -1.0),
    );
    let empty = Tensor::zeros(&[2, 0]);
    let ev = tape.constant(&empty);
    assert_same_error(
        tape.layer_norm(ev, None, None, 1e-5),
        forward::layer_norm(&empty, None, None, 1e-5),
    );
}

#[test]
fn embedding() {
    let table = values(&[4, 3], 0.3);
    let ids = Tensor::new(&[2, 3], vec![1., 3., 1., 0., 2., 1.]).unwrap();
    let mut tape = Tape::new();
    let (tv, iv) = (tape.constant(&table), tape.constant(&ids));
    let y = tape.embedding(tv, iv);
    assert_same(&tape, y, forward::embedding(&table, &ids));
    for bad in [4.0, -1.0, 0.5, f32::NAN] {
        let bad_ids = Tensor::new(&[1], vec![bad]).unwrap();
        let bv = tape.constant(&bad_ids);
        assert_same_error(tape.embedding(tv, bv), forward::embedding(&table, &bad_ids));
    }
    let flat = values(&[4], 0.3);
    let fv = tape.constant(&flat);
    assert_same_error(tape.embedding(fv, iv), forward::embedding(&flat, &ids));
}

#[test]
fn attention_and_batch_matmul() {
    let (q, k, v) = (
        values(&[2, 3, 4], 0.7),
        values(&[2, 3, 4], 1.3),
        values(&[2, 3, 4], 0.4),
    );
    let mask = Tensor::new(&[2, 3], vec![1., 1., 1., 1., 1., 0.]).unwrap();
    let mut tape = Tape::new();
    let [qv, kv, vv, mv] = [&q, &k, &v, &mask].map(|t| tape.constant(t));
    for heads in [1, 2, 4] {
        let y = tape.attention(qv, kv, vv, Some(mv), heads);
        assert_same(&tape, y, forward::attention(&q, &k, &v, Some(&mask), heads));
        let y = tape.attention(qv, qv, qv, None, heads);
        assert_same(&tape, y, forward::attention(&q, &q, &q, None, heads));
    }
    assert_same_error(
        tape.attention(qv, kv, vv, None, 3),
        forward::attention(&q, &k, &v, None, 3),
    );
    assert_same_error(
        tape.attention(qv, kv, vv, Some(qv), 2),
        forward::attention(&q, &k, &v, Some(&q), 2),
    );
    assert_same_error(
        tape.attention(qv, mv, vv, None, 2),
        forward::attention(&q, &mask, &v, None, 2),
    );
    assert_same_error(
        tape.attention(mv, mv, mv, None, 1),
        forward::attention(&mask, &mask, &mask, None, 1),
    );
    let (a, b) = (values(&[3, 2, 4], 0.6), values(&[3, 4, 5], 0.8));
    let (av, bv) = (tape.constant(&a), tape.constant(&b));
    let y = tape.batch_matmul(av, bv);
    assert_same(&tape, y, forward::batch_matmul(&a, &b));
    assert_same_error(tape.batch_matmul(av, av), forward::batch_matmul(&a, &a));
    assert_same_error(tape.batch_matmul(mv, bv), forward::batch_matmul(&mask, &b));
}

#[test]
fn elementwise_reductions_and_activations() {
    let shapes: [(&[usize], &[usize]); 6] = [
        (&[2, 3], &[2, 3]),
        (&[2, 3], &[3]),
        (&[2, 3], &[1, 3]),
        (&[2, 3], &[]),
        (&[2, 1], &[1, 3]),
        (&[], &[2, 2]),
    ];
    let mut tape = Tape::new();
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
        for (sa, sb) in shapes {
            let (a, b) = (values(sa, 0.7), positive(sb, 0.3));
            let (av, bv) = (tape.constant(&a), tape.constant(&b));
            let y = tape.binary(op, av, bv);
            assert_same(&tape, y, forward::binary(op, &a, &b));
            // In `a`'s buffer where the result has its shape, into a new one elsewhere.
            let y = tape.binary(op, av, bv);
            assert_same(&tape, y, forward::binary_owned(op, a, &b));
        }
    }
    let (a, c) = (values(&[2, 2], 0.5), values(&[3], 0.5));
    let (av, cv) = (tape.constant(&a), tape.constant(&c));
    assert_same_error(
        tape.binary(BinaryOp::Add, av, cv),
        forward::binary(BinaryOp::Add, &a, &c),
    );
    let x = positive(&[3, 5], 0.9);
    let xv = tape.constant(&x);
    for op in [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Square,
    ] {
        let y = tape.unary(op, xv);
        assert_same(&tape, y, forward::unary(op, &x));
    }
    let x = values(&[3, 5], 1.7);
    let xv = tape.constant(&x);
    let y = tape.scale(xv, -2.5);
    assert_same(&tape, y, Ok(forward::scale(&x, -2.5)));
    for act in ACTIVATIONS {
        let y = tape.activation(act, xv);
        assert_same(&tape, y, Ok(forward::activation(act, x.clone())));
    }
    let y = tape.sum(xv);
    assert_same(&tape, y, Ok(forward::sum(&x)));
    let y = tape.mean(xv);
    assert_same(&tape, y, Ok(mean(&x)));
}

#[test]
fn losses_with_and_without_weights() {
    let logits = values(&[3, 4], 1.9);
    let probabilities = forward::activation(Activation::Sigmoid, logits.clone());
    let onehot = Tensor::new(
        &[3, 4],
        vec![0., 1., 0., 0., 1., 0., 0., 0., 0., 0., 0., 1.],
    )
    .unwrap();
    let labels = Tensor::new(&[3], vec![1., 0., 3.]).unwrap();
    let weights = Tensor::new(&[3], vec![0.5, 2.0, 1.5]).unwrap();
    let cases = [
        (LossOp::SoftmaxCrossEntropy, &logits, &onehot),
        (LossOp::SparseSoftmaxCrossEntropy, &logits, &labels),
        (LossOp::CrossEntropy, &probabilities, &onehot),
        (LossOp::SparseCrossEntropy, &probabilities, &labels),
        (LossOp::SigmoidBinaryCrossEntropy, &logits, &onehot),
        (LossOp::BinaryCrossEntropy, &probabilities, &onehot),
        (LossOp::MeanSquaredError, &logits, &onehot),
    ];
    let mut tape = Tape::new();
    let wv = tape.constant(&weights);
    for (op, p, y) in cases {
        let (pv, yv) = (tape.constant(p), tape.constant(y));
        for w in [None, Some(&weights)] {
            let recorded = tape.weighted_loss(op, pv, yv, w.map(|_| wv)).unwrap();
            let recorded = tape.value(recorded).item().unwrap();
            let computed = forward::loss(op, p, y, w).unwrap();
            assert_eq!(recorded.to_bits(), computed.to_bits(), "{op:?} {w:?}");
        }
    }
    // Errors: targets of the wrong shape, a class index out of range, too few weights.
    let (pv, ov, lv) = (
        tape.constant(&logits),
        tape.constant(&onehot),
        tape.constant(&labels),
    );
    let op = LossOp::SoftmaxCrossEntropy;
    assert_same_error(
        tape.loss(op, pv, lv),
        forward::loss(op, &logits, &labels, None),
    );
    let out_of_range = Tensor::new(&[3], vec![0., 4., 1.]).unwrap();
    let rv = tape.constant(&out_of_range);
    let op = LossOp::SparseCrossEntropy;
    assert_same_error(
        tape.loss(op, pv, rv),
        forward::loss(op, &logits, &out_of_range, None),
    );
    let short = Tensor::new(&[2], vec![1., 1.]).unwrap();
    let sv = tape.constant(&short);
    let op = LossOp::MeanSquaredError;
    assert_same_error(
        tape.weighted_loss(op, pv, ov, Some(sv)),
        forward::loss(op, &logits, &onehot, Some(&short)),
    );
}

#[test]
fn decoder_ops() {
    use crate::tensor::decoder::{Rope, RopeLayout};
    use crate::tensor::quant::{QMatrix, QuantType};
    let mut tape = Tape::new();
    let (x, weight, up) = (
        values(&[3, 8], 0.3),
        values(&[8], 0.8),
        values(&[3, 8], 1.1),
    );
    let (xv, wv, uv) = (
        tape.constant(&x),
        tape.constant(&weight),
        tape.constant(&up),
    );
    let y = tape.rms_norm(xv, wv, 1e-5);
    assert_same(
        &tape,
        y,
        forward::rms_norm(&x, &weight, 1e-5, &mut forward::Scratch::default()),
    );
    let y = tape.swiglu(xv, uv);
    assert_same(&tape, y, forward::swiglu(x.clone(), &up));
    let factors = [1.0, 2.0];
    for layout in [RopeLayout::Adjacent, RopeLayout::Halves] {
        let spec = Rope {
            heads: 2,
            head_dim: 4,
            base: 10000.0,
            layout,
        };
        let y = tape.rope(xv, &spec, 7, Some(&factors));
        assert_same(&tape, y, forward::rope(x.clone(), &spec, 7, Some(&factors)));
    }
    // A Q8_0 matrix of 3 rows of 32: an f16 scale, then 32 signed bytes per row.
    let bytes: Vec<u8> = (0..3u8)
        .flat_map(|r| {
            let mut row = half::f16::from_f32(0.01).to_le_bytes().to_vec();
            row.extend((0..32u8).map(|c| c.wrapping_mul(7).wrapping_add(r * 40)));
            row
        })
        .collect();
    let q = QMatrix::new(QuantType::Q8_0, 3, 32, bytes).unwrap();
    let x32 = values(&[2, 32], 0.6);
    let x32v = tape.constant(&x32);
    let y = tape.qlinear(x32v, &q);
    let mut eager = forward::qlinear(&x32, &[&q], &mut forward::Scratch::default()).unwrap();
    assert_same(&tape, y, Ok(eager.remove(0)));
    // Errors: a weight of the wrong length, shapes that differ, a row that is not whole
    // heads, an input that does not match the matrix.
    assert_same_error(
        tape.rms_norm(xv, xv, 1e-5),
        forward::rms_norm(&x, &x, 1e-5, &mut forward::Scratch::default()),
    );
    assert_same_error(tape.swiglu(xv, wv), forward::swiglu(x.clone(), &weight));
    let spec = Rope {
        heads: 3,
        head_dim: 4,
        base: 10000.0,
        layout: RopeLayout::Adjacent,
    };
    assert_same_error(
        tape.rope(xv, &spec, 0, None),
        forward::rope(x.clone(), &spec, 0, None),
    );
    assert_same_error(
        tape.qlinear(xv, &q),
        forward::qlinear(&x, &[&q], &mut forward::Scratch::default()),
    );
}
