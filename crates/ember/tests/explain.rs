//! Attributions (`ember::explain`) checked, not just drawn: gradients against finite
//! differences, Integrated Gradients' completeness on MNIST models, the model-randomisation
//! sanity check of Adebayo et al. (2018), Grad-CAM on the digit, and permutation importance
//! and column attributions on Titanic.

use std::path::PathBuf;

use ember::data::split::train_test_split;
use ember::data::table::Table;
use ember::explain::gradients::{scores, DEFAULT_STEPS};
use ember::explain::{grad_cam, integrated_gradients, saliency, smooth_grad, SmoothGrad};
use ember::prelude::*;
use ember::tabular::{class_of_rows, infer_task, rows_with_target, TabularModel, TabularOptions};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first `train` training digits and `test` test digits, as (samples, 28, 28, 1) in [0, 1].
fn mnist(train: usize, test: usize) -> (Tensor, Tensor, Tensor, Vec<usize>) {
    let mnist =
        Mnist::load(repo_root().join("data/mnist")).expect("data/mnist ships with the repository");
    let images = |t: &Tensor, n: usize| {
        let rows: Vec<usize> = (0..n).collect();
        let mut x = t
            .clone()
            .reshape(&[t.shape()[0], 784])
            .unwrap()
            .gather_rows(&rows)
            .unwrap();
        x.scale_in_place(1.0 / 255.0);
        x.reshape(&[n, 28, 28, 1]).unwrap()
    };
    let labels: Vec<usize> = mnist.train_labels.data()[..train]
        .iter()
        .map(|&l| l as usize)
        .collect();
    let y = to_categorical(
        &Tensor::new(&[train], labels.iter().map(|&l| l as f32).collect()).unwrap(),
        Some(10),
    )
    .unwrap();
    let test_labels = mnist.test_labels.data()[..test]
        .iter()
        .map(|&l| l as usize)
        .collect();
    (
        images(&mnist.train_images, train),
        y,
        images(&mnist.test_images, test),
        test_labels,
    )
}

fn fit(model: &mut Sequential, x: &Tensor, y: &Tensor) {
    model
        .compile(
            Adam::default(),
            Loss::CategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
    let options = FitOptions {
        epochs: 1,
        batch_size: 32,
        verbose: Verbosity::Silent,
        ..Default::default()
    };
    model.fit(x, y, &options).unwrap();
}

fn mlp(seed: u64) -> Sequential {
    let mut m = Sequential::with_seed(&[28, 28, 1], seed);
    m.add(Flatten).unwrap();
    m.add(Dense::new(64).activation(Activation::Relu)).unwrap();
    m.add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    m
}

/// A small version of Keras's MNIST convnet (8 and 16 filters), cheap to train in a test.
fn convnet(seed: u64) -> Sequential {
    let mut m = Sequential::with_seed(&[28, 28, 1], seed);
    m.add(Conv2D::new(8, (3, 3)).activation(Activation::Relu))
        .unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Conv2D::new(16, (3, 3)).activation(Activation::Relu))
        .unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten).unwrap();
    m.add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    m
}

fn argmaxes(model: &Model, x: &Tensor) -> Vec<usize> {
    let p = model.predict(x, 256).unwrap();
    p.data().chunks(10).map(ember::tensor::argmax).collect()
}

/// Each input value's gradient against a central difference of the target's probability.
fn check_against_finite_differences(model: &Model, x: &Tensor, targets: &[usize]) {
    let g = model.output_gradients(x, targets, None).unwrap();
    let eps = 1e-2f32;
    let mut worst = 0.0f32;
    for i in 0..x.len() {
        let nudged = |delta: f32| {
            let mut values = x.data().to_vec();
            values[i] += delta;
            Tensor::new(x.shape(), values).unwrap()
        };
        let (plus, minus) = (nudged(eps), nudged(-eps));
        let row = i / x.row_len();
        let up = scores(model, &plus, targets).unwrap()[row];
        let down = scores(model, &minus, targets).unwrap()[row];
        let numeric = (up - down) / (2.0 * eps);
        let analytic = g.input.data()[i];
        let error = (numeric - analytic).abs();
        assert!(
            error <= 2e-4 + 2e-2 * analytic.abs(),
            "value {i}: {analytic} vs {numeric}"
        );
        worst = worst.max(error);
    }
    eprintln!("worst gradient error {worst:.2e}");
}

#[test]
fn gradients_with_respect_to_the_input_match_finite_differences() {
    let mut rng = ember::tensor::random::Rng::seed(3);
    let mut dense = Sequential::with_seed(&[5], 1);
    dense
        .add(Dense::new(6).activation(Activation::Tanh))
        .unwrap();
    dense
        .add(Dense::new(3).activation(Activation::Softmax))
        .unwrap();
    let x = Tensor::new(&[2, 5], (0..10).map(|_| rng.normal(1.0)).collect()).unwrap();
    check_against_finite_differences(&dense, &x, &[0, 2]);

    let mut conv = Sequential::with_seed(&[6, 6, 2], 2);
    conv.add(Conv2D::new(3, (3, 3)).activation(Activation::Tanh))
        .unwrap();
    conv.add(AveragePooling2D::new((2, 2))).unwrap();
    conv.add(Flatten).unwrap();
    conv.add(Dense::new(4).activation(Activation::Softmax))
        .unwrap();
    let x = Tensor::new(&[2, 6, 6, 2], (0..144).map(|_| rng.normal(1.0)).collect()).unwrap();
    check_against_finite_differences(&conv, &x, &[1, 3]);

    // A one-unit sigmoid output: target 1 is the output, target 0 one minus it.
    let mut binary = Sequential::with_seed(&[3], 4);
    binary
        .add(Dense::new(1).activation(Activation::Sigmoid))
        .unwrap();
    let x = Tensor::new(&[2, 3], vec![0.5, -1.0, 2.0, 0.1, 0.2, 0.3]).unwrap();
    check_against_finite_differences(&binary, &x, &[1, 0]);
    let one = binary.output_gradients(&x, &[1, 1], None).unwrap();
    let zero = binary.output_gradients(&x, &[0, 0], None).unwrap();
    for (a, b) in one.input.data().iter().zip(zero.input.data()) {
        assert_eq!(*a, -*b);
    }
    assert!((one.scores[0] + zero.scores[0] - 1.0).abs() < 1e-6);

    // Bad requests are errors.
    assert!(binary.output_gradients(&x, &[1], None).is_err());
    assert!(dense
        .output_gradients(&Tensor::zeros(&[1, 5]), &[3], None)
        .is_err());
    assert!(dense
        .output_gradients(&Tensor::zeros(&[1, 4]), &[0], None)
        .is_err());
    assert!(dense
        .output_gradients(&Tensor::zeros(&[1, 5]), &[0], Some("nope"))
        .is_err());
}

/// Completeness: Σ attributions = p(x) − p(baseline), within 1% at the default steps.
fn completeness(model: &Model, x: &Tensor, what: &str) {
    let targets = argmaxes(model, x);
    let baseline = Tensor::zeros(x.shape());
    for steps in [16, 32, 50, DEFAULT_STEPS, 128] {
        let explanations = integrated_gradients(model, x, &targets, &baseline, steps).unwrap();
        let worst = explanations
            .iter()
            .map(|e| {
                let sum: f64 = e.attributions.iter().map(|&a| a as f64).sum();
                let change = (e.score - e.baseline_score) as f64;
                (sum - change).abs() / change.abs().max(1e-6)
            })
            .fold(0.0, f64::max);
        eprintln!(
            "{what}: {steps} steps, worst completeness error {:.3}%",
            100.0 * worst
        );
        if steps == DEFAULT_STEPS {
            assert!(
                worst <= 0.01,
                "{what}: {:.3}% at {steps} steps",
                100.0 * worst
            );
        }
    }
}

#[test]
fn integrated_gradients_are_complete_for_an_mlp_and_a_convnet_on_mnist() {
    let (x, y, test, _) = mnist(12000, 20);
    let mut m = mlp(1);
    fit(&mut m, &x, &y);
    completeness(&m, &test, "MLP");
    let mut c = convnet(1);
    fit(&mut c, &x, &y);
    completeness(&c, &test, "convnet");
}

/// Spearman's rank correlation (ties at their mean rank).
fn spearman(a: &[f32], b: &[f32]) -> f64 {
    fn ranks(v: &[f32]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
                j += 1;
            }
            for &k in &order[i..=j] {
                r[k] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Adebayo et al.'s model-randomisation test: an explanation that survives randomising the
/// weights explains the input, not the model. Also: Grad-CAM's maps are non-negative and
/// cover the image, and SmoothGrad is its seed's.
#[test]
fn attributions_of_a_trained_convnet_differ_from_a_randomised_one() {
    let (x, y, test, labels) = mnist(12000, 20);
    let mut trained = convnet(1);
    fit(&mut trained, &x, &y);
    let random = convnet(99);
    let baseline = Tensor::zeros(test.shape());
    let magnitudes = |e: &[ember::explain::Explanation]| -> Vec<Vec<f32>> {
        e.iter()
            .map(|e| e.attributions.iter().map(|a| a.abs()).collect())
            .collect()
    };
    let signed = |e: &[ember::explain::Explanation]| -> Vec<Vec<f32>> {
        e.iter().map(|e| e.attributions.clone()).collect()
    };
    let mean_rho = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        a.iter().zip(b).map(|(a, b)| spearman(a, b)).sum::<f64>() / a.len() as f64
    };
    // A second randomised network: how alike two maps of untrained weights are.
    let other = convnet(98);
    let s = |m: &Model| saliency(m, &test, &labels, &baseline).unwrap();
    let (t, r, o) = (s(&trained), s(&random), s(&other));
    let trained_random = mean_rho(&magnitudes(&t), &magnitudes(&r));
    let random_random = mean_rho(&magnitudes(&r), &magnitudes(&o));
    eprintln!(
        "saliency: mean rank correlation trained vs randomised {trained_random:.3}, \
         randomised vs randomised {random_random:.3}"
    );
    assert!(trained_random < 0.6 && trained_random < random_random - 0.3);
    let ig = |m: &Model| integrated_gradients(m, &test, &labels, &baseline, DEFAULT_STEPS).unwrap();
    let (t, r) = (ig(&trained), ig(&random));
    // |IG| = |x · ∫∂p| is zero wherever the pixel is: its magnitudes rank the ink first under
    // any weights (Adebayo et al.'s caveat for input-multiplied methods), so the signed maps
    // are compared.
    let rho = mean_rho(&signed(&t), &signed(&r));
    let rho_abs = mean_rho(&magnitudes(&t), &magnitudes(&r));
    eprintln!(
        "integrated gradients: mean rank correlation trained vs randomised {rho:.3} signed, \
         {rho_abs:.3} of magnitudes"
    );
    assert!(rho < 0.2, "{rho}");
    let cams = grad_cam(&trained, &test, &labels, &baseline, None).unwrap();
    assert!(cams
        .iter()
        .all(|e| e.attributions.len() == 784 && e.attributions.iter().all(|&a| a >= 0.0)));
    let options = SmoothGrad {
        samples: 8,
        ..Default::default()
    };
    let first = smooth_grad(&trained, &test, &labels, &baseline, options).unwrap();
    assert_eq!(
        first,
        smooth_grad(&trained, &test, &labels, &baseline, options).unwrap()
    );
    let reseeded = SmoothGrad { seed: 1, ..options };
    assert_ne!(
        first,
        smooth_grad(&trained, &test, &labels, &baseline, reseeded).unwrap()
    );
}

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EMBER_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no shared data at {} under CI=true",
        dir.display()
    );
    eprintln!("skipping: no shared data at {}", dir.display());
    None
}

#[test]
fn titanic_importances_put_sex_class_and_age_on_top_and_attributions_add_up() {
    let Some(dir) = data_dir() else { return };
    let table = Table::read(dir.join("titanic/titanic.csv"), &Default::default()).unwrap();
    let target = table.column("Survived").unwrap();
    let task = infer_task(&table, target);
    let (rows, _) = rows_with_target(&table, target);
    let classes = class_of_rows(&table, target, &rows, task);
    // Over five seeds' splits and models, as the tables tests score them.
    let mut total: Vec<(String, f64)> = Vec::new();
    let mut last = None;
    for seed in 1..=5 {
        let options = TabularOptions {
            target: "Survived".into(),
            seed,
            ..Default::default()
        };
        let (train, test) = train_test_split(rows.len(), classes.as_deref(), 0.2, seed).unwrap();
        let train: Vec<usize> = train.iter().map(|&i| rows[i]).collect();
        let test: Vec<usize> = test.iter().map(|&i| rows[i]).collect();
        let (model, _) =
            TabularModel::fit(&table, &train, task, &options, Verbosity::Silent).unwrap();
        let importances =
            ember::explain::permutation_importance(&model, &table, &test, 10, 0, None).unwrap();
        assert_eq!(importances.columns.len(), table.names.len() - 1);
        assert_eq!(importances.rows, test.len());
        // Columns the model does not read (the name, the ticket) are worth exactly nothing.
        let name = importances
            .columns
            .iter()
            .find(|c| c.column == "Name")
            .unwrap();
        assert_eq!((name.mean, name.std), (0.0, 0.0));
        if total.is_empty() {
            total = importances
                .columns
                .iter()
                .map(|c| (c.column.clone(), 0.0))
                .collect();
        }
        for (t, c) in total.iter_mut().zip(&importances.columns) {
            t.1 += c.mean / 5.0;
        }
        last = Some((model, test));
    }
    total.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (column, mean) in &total {
        eprintln!("{column:<12} {mean:+.4}");
    }
    let top: Vec<&str> = total[..3].iter().map(|c| c.0.as_str()).collect();
    for name in ["Sex", "Pclass", "Age"] {
        assert!(top.contains(&name), "top three {top:?}");
    }
    let (model, test) = last.unwrap();

    let targets = vec![1; 40];
    for steps in [64, 256, ember::explain::table::DEFAULT_STEPS] {
        let (names, explanations) =
            ember::explain::column_attributions(&model, &table, &test[..40], &targets, steps)
                .unwrap();
        assert!(names.iter().any(|n| n == "Sex") && !names.iter().any(|n| n == "Name"));
        let worst = explanations
            .iter()
            .map(|e| {
                assert_eq!(e.attributions.len(), names.len());
                let sum: f64 = e.attributions.iter().map(|&a| a as f64).sum();
                let change = (e.score - e.baseline_score) as f64;
                (sum - change).abs() / change.abs().max(1e-3)
            })
            .fold(0.0, f64::max);
        eprintln!(
            "titanic: {steps} steps, worst completeness error {:.3}%",
            100.0 * worst
        );
        if steps == ember::explain::table::DEFAULT_STEPS {
            assert!(worst <= 0.01, "{:.3}% at {steps} steps", 100.0 * worst);
        }
    }
    // Shapley values over the 7 columns the model reads: exact, and they add up exactly.
    let (names, shap) =
        ember::explain::column_shap(&model, &table, &test[..40], &targets, 0, 0).unwrap();
    let sex = names.iter().position(|n| n == "Sex").unwrap();
    let mut largest_sex = 0;
    for e in &shap {
        let sum: f64 = e.attributions.iter().map(|&a| a as f64).sum();
        let change = (e.score - e.baseline_score) as f64;
        assert!((sum - change).abs() < 1e-5, "{sum} vs {change}");
        let top = (0..names.len())
            .max_by(|&a, &b| e.attributions[a].abs().total_cmp(&e.attributions[b].abs()))
            .unwrap();
        largest_sex += (top == sex) as usize;
    }
    eprintln!("titanic: Sex has the largest Shapley value in {largest_sex} of 40 rows");
    assert!(largest_sex >= 20, "{largest_sex}");
}

/// The networks of bench/explain_captum.py, their weights drawn from NumPy's RandomState(0)
/// as that script draws them: Glorot-uniform kernels in Keras's layout, small uniform biases.
fn captum_networks() -> (Sequential, Sequential) {
    use ember::tensor::mt19937::RandomState;
    let mut rng = RandomState::new(0);
    let mut uniform = |shape: &[usize], limit: f64| {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| ((rng.random_sample() * 2.0 - 1.0) * limit) as f32)
            .collect();
        Tensor::new(shape, data).unwrap()
    };
    let glorot = |fan_in: usize, fan_out: usize| (6.0 / (fan_in + fan_out) as f64).sqrt();
    let mut mlp = mlp_16();
    let weights = vec![
        uniform(&[784, 16], glorot(784, 16)),
        uniform(&[16], 0.05),
        uniform(&[16, 10], glorot(16, 10)),
        uniform(&[10], 0.05),
    ];
    mlp.set_weights(weights).unwrap();
    let mut conv = Sequential::with_seed(&[28, 28, 1], 0);
    conv.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu))
        .unwrap();
    conv.add(MaxPooling2D::new((2, 2))).unwrap();
    conv.add(Flatten).unwrap();
    conv.add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    let weights = vec![
        uniform(&[3, 3, 1, 4], glorot(9, 36)),
        uniform(&[4], 0.05),
        uniform(&[676, 10], glorot(676, 10)),
        uniform(&[10], 0.05),
    ];
    conv.set_weights(weights).unwrap();
    (mlp, conv)
}

fn mlp_16() -> Sequential {
    let mut m = Sequential::with_seed(&[28, 28, 1], 0);
    m.add(Flatten).unwrap();
    m.add(Dense::new(16).activation(Activation::Relu)).unwrap();
    m.add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    m
}

/// Saliency, Integrated Gradients and Grad-CAM equal Captum's on the same networks and digits
/// (crates/ember/tests/captum_reference.json, written by bench/explain_captum.py).
#[test]
fn saliency_integrated_gradients_and_grad_cam_equal_captums() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("captum_reference.json")).unwrap();
    let steps = fixture["steps"].as_u64().unwrap() as usize;
    let (_, _, digits, _) = mnist(1, 3);
    let (mlp, conv) = captum_networks();
    let numbers = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    for (name, model) in [("mlp", &mlp), ("convnet", &conv)] {
        let reference = &fixture[name];
        let targets: Vec<usize> = reference["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            argmaxes(model, &digits),
            targets,
            "{name}: the same predictions"
        );
        let p = model.predict(&digits, 8).unwrap();
        for (ours, theirs) in p.data().iter().zip(
            reference["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(numbers_of),
        ) {
            assert!(
                (ours - theirs).abs() < 1e-6,
                "{name}: probability {ours} vs {theirs}"
            );
        }
        let baseline = Tensor::zeros(digits.shape());
        let mut methods = vec![
            (
                "saliency",
                saliency(model, &digits, &targets, &baseline).unwrap(),
            ),
            (
                "integrated_gradients",
                integrated_gradients(model, &digits, &targets, &baseline, steps).unwrap(),
            ),
        ];
        if name == "convnet" {
            let cams = grad_cam(model, &digits, &targets, &baseline, None).unwrap();
            methods.push(("grad_cam", cams));
        }
        for (method, ours) in methods {
            let mut worst = 0.0f32;
            for (d, e) in ours.iter().enumerate() {
                let theirs = numbers(&reference[method][d]);
                let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (a, b) in e.attributions.iter().zip(&theirs) {
                    let error = (a - b).abs() / scale;
                    worst = worst.max(error);
                }
            }
            eprintln!("{name} {method}: worst difference from Captum {worst:.2e} of the largest attribution");
            assert!(worst < 1e-4, "{name} {method}: {worst}");
        }
    }
}

fn numbers_of(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}
