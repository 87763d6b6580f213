//! What the library's integration tests share: the repository, and MNIST digits from the
//! data it ships.

#![allow(dead_code)]

use std::path::PathBuf;

use ember::prelude::*;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first `n` training digits as (n, 28, 28, 1) in [0, 1], and their one-hot labels.
pub fn digits(n: usize) -> (Tensor, Tensor) {
    let mnist =
        Mnist::load(repo_root().join("data/mnist")).expect("data/mnist ships with the repository");
    let rows: Vec<usize> = (0..n).collect();
    let mut x = mnist
        .train_images
        .clone()
        .reshape(&[mnist.train_images.shape()[0], 784])
        .unwrap()
        .gather_rows(&rows)
        .unwrap();
    x.scale_in_place(1.0 / 255.0);
    let labels = Tensor::new(&[n], mnist.train_labels.data()[..n].to_vec()).unwrap();
    (
        x.reshape(&[n, 28, 28, 1]).unwrap(),
        to_categorical(&labels, Some(10)).unwrap(),
    )
}
