//! Matrix-factorisation kernels for recommendation: the per-rating SGD steps of biased MF
//! (Funk SVD) and SVD++, the pairwise steps of BPR and WARP, the ridge solve of ALS, and
//! scoring. Each step sits beside the loss it descends, so the tests can check the one
//! against finite differences of the other.

use crate::error::{Error, Result};

/// `a · b`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four accumulators: independent chains the compiler vectorises.
    let mut acc = [0.0f32; 4];
    let chunks = a.len() / 4 * 4;
    for (x, y) in a[..chunks].chunks_exact(4).zip(b[..chunks].chunks_exact(4)) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    acc[0] + acc[1] + acc[2] + acc[3] + tail
}

/// The parameters one rating touches in a biased factorisation
/// `r̂ = μ + b_u + b_i + p_u · q_i`.
pub struct RatingParams<'a> {
    pub user_bias: &'a mut f32,
    pub item_bias: &'a mut f32,
    pub user: &'a mut [f32],
    pub item: &'a mut [f32],
}

/// The loss one rating contributes to biased MF, `½ e² + ½ λ (b_u² + b_i² + ‖p_u‖² + ‖q_i‖²)`
/// with `e = r − r̂`: what [`mf_step`] descends.
pub fn mf_loss(rating: f32, mean: f32, p: &RatingParams, reg: f32) -> f32 {
    let err = rating - (mean + *p.user_bias + *p.item_bias + dot(p.user, p.item));
    let norms =
        p.user_bias.powi(2) + p.item_bias.powi(2) + dot(p.user, p.user) + dot(p.item, p.item);
    0.5 * err * err + 0.5 * reg * norms
}

/// One SGD step of biased MF on one rating, as Surprise's `SVD` takes it (every parameter
/// moves against the gradient of [`mf_loss`] at the old values). Returns the error before
/// the step.
#[inline(always)]
pub fn mf_step(rating: f32, mean: f32, p: RatingParams, lr: f32, reg: f32) -> f32 {
    let err = rating - (mean + *p.user_bias + *p.item_bias + dot(p.user, p.item));
    *p.user_bias += lr * (err - reg * *p.user_bias);
    *p.item_bias += lr * (err - reg * *p.item_bias);
    for (pf, qf) in p.user.iter_mut().zip(p.item.iter_mut()) {
        let (old_p, old_q) = (*pf, *qf);
        *pf += lr * (err * old_q - reg * old_p);
        *qf += lr * (err * old_p - reg * old_q);
    }
    err
}

/// The tables of a biased factorisation: biases, and k-wide factor rows.
pub struct MfTables<'a> {
    pub user_bias: &'a mut [f32],
    pub item_bias: &'a mut [f32],
    pub user: &'a mut [f32],
    pub item: &'a mut [f32],
    pub k: usize,
}

/// One SGD epoch of biased MF: [`mf_step`] on every (user, item, rating) of `rows`, in
/// order. With AVX2 + FMA or AVX-512 where the CPU has them (chosen at run time; the
/// arithmetic is the same, only wider, so the results do not depend on it).
pub fn mf_epoch(rows: &[(u32, u32, f32)], mean: f32, tables: MfTables, lr: f32, reg: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { mf_epoch_avx512(rows, mean, tables, lr, reg) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { mf_epoch_avx2(rows, mean, tables, lr, reg) };
        }
    }
    mf_epoch_portable(rows, mean, tables, lr, reg)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn mf_epoch_avx512(rows: &[(u32, u32, f32)], mean: f32, tables: MfTables, lr: f32, reg: f32) {
    mf_epoch_portable(rows, mean, tables, lr, reg)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn mf_epoch_avx2(rows: &[(u32, u32, f32)], mean: f32, tables: MfTables, lr: f32, reg: f32) {
    mf_epoch_portable(rows, mean, tables, lr, reg)
}

#[inline(always)]
fn mf_epoch_portable(rows: &[(u32, u32, f32)], mean: f32, t: MfTables, lr: f32, reg: f32) {
    let k = t.k;
    for &(u, i, rating) in rows {
        let (u, i) = (u as usize, i as usize);
        let params = RatingParams {
            user_bias: &mut t.user_bias[u],
            item_bias: &mut t.item_bias[i],
            user: &mut t.user[u * k..(u + 1) * k],
            item: &mut t.item[i * k..(i + 1) * k],
        };
        mf_step(rating, mean, params, lr, reg);
    }
}

/// `out = p_u + |N(u)|^−½ Σ_{j ∈ N(u)} y_j`: SVD++'s user vector, from the implicit factors
/// `y` (items × k) of the items `implicit` the user rated.
pub fn svdpp_user_vector(user: &[f32], y: &[f32], implicit: &[u32], out: &mut [f32]) {
    let k = user.len();
    out.copy_from_slice(user);
    if implicit.is_empty() {
        return;
    }
    let scale = 1.0 / (implicit.len() as f32).sqrt();
    for &j in implicit {
        let row = &y[j as usize * k..(j as usize + 1) * k];
        for (o, v) in out.iter_mut().zip(row) {
            *o += scale * v;
        }
    }
}

/// The loss of one rating in SVD++ (`r̂ = μ + b_u + b_i + q_i · (p_u + |N|^−½ Σ y_j)`), with
/// the implicit factors `y` of the items `implicit` regularised too: what one rating's
/// [`svdpp_user_step`] descends.
pub fn svdpp_loss(
    rating: f32,
    mean: f32,
    p: &RatingParams,
    y: &[f32],
    implicit: &[u32],
    reg: f32,
) -> f32 {
    let k = p.user.len();
    let mut vector = vec![0.0; k];
    svdpp_user_vector(p.user, y, implicit, &mut vector);
    let err = rating - (mean + *p.user_bias + *p.item_bias + dot(&vector, p.item));
    let y_norms: f32 = implicit
        .iter()
        .map(|&j| {
            let row = &y[j as usize * k..(j as usize + 1) * k];
            dot(row, row)
        })
        .sum();
    let norms = p.user_bias.powi(2)
        + p.item_bias.powi(2)
        + dot(p.user, p.user)
        + dot(p.item, p.item)
        + y_norms;
    0.5 * err * err + 0.5 * reg * norms
}

/// What one user's ratings in an SVD++ epoch need besides the parameters.
pub struct SvdppUser<'a> {
    /// (item, rating) pairs, in the order to visit them.
    pub ratings: &'a [(u32, f32)],
    /// The items whose implicit factors make up the user's vector (all the user rated).
    pub implicit: &'a [u32],
}

/// One SVD++ pass over one user's ratings: the biases and factors step after every rating
/// as in [`mf_step`] (with the user vector including the implicit part), and the implicit
/// factors `y` step once at the end with the gradient summed over the ratings — one pass
/// over `N(u)` per user instead of one per rating, which is what makes SVD++ affordable
/// (Surprise pays `|N(u)|` per rating). With one rating this is exactly a gradient step of
/// [`svdpp_loss`]. Returns the sum of squared errors.
#[allow(clippy::too_many_arguments)]
pub fn svdpp_user_step(
    user: SvdppUser,
    mean: f32,
    user_bias: &mut f32,
    item_bias: &mut [f32],
    p: &mut [f32],
    q: &mut [f32],
    y: &mut [f32],
    lr: f32,
    reg: f32,
    scratch: &mut [f32],
) -> f32 {
    let k = p.len();
    let (vector, implicit_grad) = scratch.split_at_mut(k);
    svdpp_user_vector(p, y, user.implicit, vector);
    let implicit_part: Vec<f32> = vector.iter().zip(p.iter()).map(|(v, u)| v - u).collect();
    implicit_grad.fill(0.0);
    let mut squared = 0.0;
    for &(i, rating) in user.ratings {
        let i = i as usize;
        let qi = &mut q[i * k..(i + 1) * k];
        for ((v, u), z) in vector.iter_mut().zip(p.iter()).zip(&implicit_part) {
            *v = u + z;
        }
        let err = rating - (mean + *user_bias + item_bias[i] + dot(vector, qi));
        squared += err * err;
        *user_bias += lr * (err - reg * *user_bias);
        item_bias[i] += lr * (err - reg * item_bias[i]);
        for f in 0..k {
            let (old_p, old_q) = (p[f], qi[f]);
            implicit_grad[f] += err * old_q;
            p[f] += lr * (err * old_q - reg * old_p);
            qi[f] += lr * (err * vector[f] - reg * old_q);
        }
    }
    if !user.implicit.is_empty() {
        let scale = 1.0 / (user.implicit.len() as f32).sqrt();
        let decay = reg * user.ratings.len() as f32;
        for &j in user.implicit {
            let row = &mut y[j as usize * k..(j as usize + 1) * k];
            for (yf, g) in row.iter_mut().zip(implicit_grad.iter()) {
                *yf += lr * (scale * g - decay * *yf);
            }
        }
    }
    squared
}

/// The parameters a (user, positive item, negative item) triple touches in a pairwise
/// ranking model `x_ui = b_i + p_u · q_i`.
pub struct PairParams<'a> {
    pub user: &'a mut [f32],
    pub positive: &'a mut [f32],
    pub negative: &'a mut [f32],
    pub positive_bias: &'a mut f32,
    pub negative_bias: &'a mut f32,
}

/// `x_uij = x_ui − x_uj`: how far the positive item scores above the negative one.
pub fn pair_margin(p: &PairParams) -> f32 {
    *p.positive_bias - *p.negative_bias + dot(p.user, p.positive) - dot(p.user, p.negative)
}

fn pair_norms(p: &PairParams) -> f32 {
    dot(p.user, p.user)
        + dot(p.positive, p.positive)
        + dot(p.negative, p.negative)
        + p.positive_bias.powi(2)
        + p.negative_bias.powi(2)
}

/// BPR's loss on one triple (Rendle et al. 2009): `−ln σ(x_uij) + ½ λ ‖θ‖²`.
pub fn bpr_loss(p: &PairParams, reg: f32) -> f32 {
    let x = pair_margin(p);
    // −ln σ(x) = ln(1 + e^−x), computed without overflow.
    let nll = if x > 0.0 {
        (-x).exp().ln_1p()
    } else {
        -x + x.exp().ln_1p()
    };
    nll + 0.5 * reg * pair_norms(p)
}

/// WARP's loss on one triple whose negative violates the margin (Weston et al. 2011):
/// `w (1 − x_uij) + ½ λ ‖θ‖²`, with `w` the rank weight of how many negatives it took to
/// find it.
pub fn warp_loss(p: &PairParams, weight: f32, reg: f32) -> f32 {
    weight * (1.0 - pair_margin(p)).max(0.0) + 0.5 * reg * pair_norms(p)
}

/// One SGD step on a triple that raises `x_uij` with weight `g` (the loss's slope in
/// `−x_uij`): BPR passes `σ(−x_uij)`, WARP its rank weight. Returns nothing: the
/// parameters move.
pub fn pair_step(p: PairParams, g: f32, lr: f32, reg: f32) {
    *p.positive_bias += lr * (g - reg * *p.positive_bias);
    *p.negative_bias += lr * (-g - reg * *p.negative_bias);
    for ((u, i), j) in p
        .user
        .iter_mut()
        .zip(p.positive.iter_mut())
        .zip(p.negative.iter_mut())
    {
        let (old_u, old_i, old_j) = (*u, *i, *j);
        *u += lr * (g * (old_i - old_j) - reg * old_u);
        *i += lr * (g * old_u - reg * old_i);
        *j += lr * (-g * old_u - reg * old_j);
    }
}

/// Cholesky factorisation in place: the lower triangle of `a` (d × d, symmetric positive
/// definite, row-major) becomes L with L Lᵀ = A; the upper triangle is zeroed.
pub fn cholesky(a: &mut [f64], d: usize) -> Result<()> {
    for j in 0..d {
        let mut diag = a[j * d + j];
        for k in 0..j {
            diag -= a[j * d + k] * a[j * d + k];
        }
        if diag <= 0.0 || !diag.is_finite() {
            return Err(Error::NonFinite(format!(
                "a matrix is not positive definite (pivot {diag}); raise the regularisation"
            )));
        }
        let diag = diag.sqrt();
        a[j * d + j] = diag;
        for i in j + 1..d {
            let mut v = a[i * d + j];
            for k in 0..j {
                v -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = v / diag;
            a[j * d + i] = 0.0;
        }
    }
    Ok(())
}

/// Solves `L y = b` in place for the lower-triangular `l` (d × d).
pub fn solve_lower(l: &[f64], b: &mut [f64]) {
    let d = b.len();
    for i in 0..d {
        let mut v = b[i];
        for k in 0..i {
            v -= l[i * d + k] * b[k];
        }
        b[i] = v / l[i * d + i];
    }
}

/// Solves `Lᵀ x = b` in place for the lower-triangular `l` (d × d).
pub fn solve_lower_transposed(l: &[f64], b: &mut [f64]) {
    let d = b.len();
    for i in (0..d).rev() {
        let mut v = b[i];
        for k in i + 1..d {
            v -= l[k * d + i] * b[k];
        }
        b[i] = v / l[i * d + i];
    }
}

/// Solves `(A + λ I) x = b` for a symmetric positive semi-definite `A` (d × d, row-major)
/// by Cholesky in double precision, writing `x` into `b`: the ridge regression of one ALS
/// row.
pub fn ridge_solve(a: &[f64], lambda: f64, b: &mut [f64]) -> Result<()> {
    let d = b.len();
    let mut l = a.to_vec();
    for i in 0..d {
        l[i * d + i] += lambda;
    }
    cholesky(&mut l, d)?;
    solve_lower(&l, b);
    solve_lower_transposed(&l, b);
    Ok(())
}

/// A draw from the Gaussian with precision `P` and `P μ = h`: `μ + L⁻ᵀ z` for `P = L Lᵀ`
/// and standard normal `z`. `precision` is overwritten by L; the draw is written to `h`.
pub fn gaussian_from_precision(precision: &mut [f64], h: &mut [f64], z: &[f64]) -> Result<()> {
    let d = h.len();
    cholesky(precision, d)?;
    solve_lower(precision, h);
    // h is now L⁻¹ P μ = Lᵀ μ: adding z before the back-substitution gives μ + L⁻ᵀ z.
    for (v, zi) in h.iter_mut().zip(z) {
        *v += zi;
    }
    solve_lower_transposed(precision, h);
    Ok(())
}

/// A draw from the Wishart distribution with scale `W` and `nu` degrees of freedom, given
/// `W⁻¹` (d × d) and Bartlett's factors: `chi[i]` ~ χ²(ν − i) and `normals` (d² standard
/// normals, of which the strict lower triangle is used). Returns the d × d draw.
pub fn wishart_from_inverse_scale(
    inverse_scale: &[f64],
    chi: &[f64],
    normals: &[f64],
) -> Result<Vec<f64>> {
    let d = chi.len();
    // W⁻¹ = C Cᵀ gives W = C⁻ᵀ C⁻¹: the factor L = C⁻ᵀ (upper triangular) serves Bartlett.
    let mut c = inverse_scale.to_vec();
    cholesky(&mut c, d)?;
    // Columns of C⁻¹ by solving C x = e_i; L = (C⁻¹)ᵀ.
    let mut l = vec![0.0f64; d * d];
    for i in 0..d {
        let mut e = vec![0.0f64; d];
        e[i] = 1.0;
        solve_lower(&c, &mut e);
        // e is column i of C⁻¹, so row i of L.
        l[i * d..(i + 1) * d].copy_from_slice(&e);
    }
    // A: lower triangular, √χ² on the diagonal, normals below.
    let mut a = vec![0.0f64; d * d];
    for i in 0..d {
        a[i * d + i] = chi[i].sqrt();
        for j in 0..i {
            a[i * d + j] = normals[i * d + j];
        }
    }
    // B = L A, draw = B Bᵀ.
    let mut b = vec![0.0f64; d * d];
    for i in 0..d {
        for j in 0..d {
            b[i * d + j] = (0..d).map(|k| l[i * d + k] * a[k * d + j]).sum();
        }
    }
    let mut out = vec![0.0f64; d * d];
    for i in 0..d {
        for j in 0..d {
            out[i * d + j] = (0..d).map(|k| b[i * d + k] * b[j * d + k]).sum();
        }
    }
    Ok(out)
}

/// One ALS row: the `x` (length d) minimising `Σ_n (t_n − x · f_n)² + λ ‖x‖²` over the
/// feature rows `f_n` (each d long, the other side's factors with a 1 appended for the
/// bias) and targets `t_n`. Written into `out`.
pub fn als_row(features: &[&[f32]], targets: &[f32], lambda: f32, out: &mut [f32]) -> Result<()> {
    let d = out.len();
    let mut gram = vec![0.0f64; d * d];
    let mut rhs = vec![0.0f64; d];
    for (f, &t) in features.iter().zip(targets) {
        for a in 0..d {
            let fa = f[a] as f64;
            rhs[a] += fa * t as f64;
            // Lower triangle only; mirrored below.
            for b in 0..=a {
                gram[a * d + b] += fa * f[b] as f64;
            }
        }
    }
    for a in 0..d {
        for b in 0..a {
            gram[b * d + a] = gram[a * d + b];
        }
    }
    ridge_solve(&gram, lambda as f64, &mut rhs)?;
    for (o, v) in out.iter_mut().zip(rhs) {
        *o = v as f32;
    }
    Ok(())
}

/// `a · b` in double precision.
pub fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `A x` for the k × k matrix `a` (row-major) and the k-vector `x`, in double precision.
pub fn matvec_f64(a: &[f64], x: &[f64]) -> Vec<f64> {
    a.chunks_exact(x.len()).map(|row| dot_f64(row, x)).collect()
}

/// `A += s · x yᵀ` for the `x.len()` × `y.len()` matrix `a` (row-major), in double precision.
pub fn add_outer_f64(a: &mut [f64], s: f64, x: &[f64], y: &[f64]) {
    for (row, &xi) in a.chunks_exact_mut(y.len()).zip(x) {
        for (v, &yj) in row.iter_mut().zip(y) {
            *v += s * xi * yj;
        }
    }
}

/// `Yᵀ Y` (k × k, double precision) of the rows of `rows` (n × k).
pub fn gram_matrix(rows: &[f32], k: usize) -> Vec<f64> {
    let mut gram = vec![0.0f64; k * k];
    for row in rows.chunks_exact(k) {
        for a in 0..k {
            let ra = row[a] as f64;
            for b in 0..=a {
                gram[a * k + b] += ra * row[b] as f64;
            }
        }
    }
    for a in 0..k {
        for b in 0..a {
            gram[b * k + a] = gram[a * k + b];
        }
    }
    gram
}

/// One row of implicit ALS (Hu, Koren & Volinsky 2008): the `x` minimising
/// `Σ_j c_j (p_j − x · y_j)² + λ ‖x‖²` over every row y_j of the other side, with p = 1 and
/// c = 1 + α on the `liked` rows and p = 0, c = 1 elsewhere, from that side's `gram` = Yᵀ Y:
/// `(Yᵀ Y + α Σ_liked y yᵀ + λ I) x = (1 + α) Σ_liked y`.
pub fn implicit_als_row(
    gram: &[f64],
    liked: &[&[f32]],
    alpha: f32,
    lambda: f32,
    out: &mut [f32],
) -> Result<()> {
    let k = out.len();
    let alpha = alpha as f64;
    let mut a = gram.to_vec();
    let mut b = vec![0.0f64; k];
    for y in liked {
        for i in 0..k {
            let yi = y[i] as f64;
            b[i] += (1.0 + alpha) * yi;
            for j in 0..k {
                a[i * k + j] += alpha * yi * y[j] as f64;
            }
        }
    }
    ridge_solve(&a, lambda as f64, &mut b)?;
    for (o, v) in out.iter_mut().zip(b) {
        *o = v as f32;
    }
    Ok(())
}

/// `out[i] = bias[i] + q_i · user` for every item row of `items` (n × k).
pub fn score_items(items: &[f32], bias: &[f32], user: &[f32], out: &mut [f32]) {
    let k = user.len();
    for ((o, row), b) in out.iter_mut().zip(items.chunks_exact(k.max(1))).zip(bias) {
        *o = b + if k == 0 { 0.0 } else { dot(row, user) };
    }
}

/// The cosine similarity of `a` and `b` (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let norms = (dot(a, a) * dot(b, b)).sqrt();
    if norms > 0.0 {
        dot(a, b) / norms
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::random::Rng;

    fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_range(-0.5, 0.5)).collect()
    }

    /// Central differences of `loss` at `theta`, one coordinate at a time (in f64 steps of
    /// an f32 function, so the step is large enough to see).
    fn numeric_gradient(theta: &[f32], loss: impl Fn(&[f32]) -> f32) -> Vec<f32> {
        let h = 1e-2f32;
        (0..theta.len())
            .map(|i| {
                let mut plus = theta.to_vec();
                let mut minus = theta.to_vec();
                plus[i] += h;
                minus[i] -= h;
                (loss(&plus) - loss(&minus)) / (2.0 * h)
            })
            .collect()
    }

    /// The gradient a step took: `(θ − θ') / lr`.
    fn implied_gradient(before: &[f32], after: &[f32], lr: f32) -> Vec<f32> {
        before
            .iter()
            .zip(after)
            .map(|(b, a)| (b - a) / lr)
            .collect()
    }

    fn assert_close(analytic: &[f32], numeric: &[f32], what: &str) {
        for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
            assert!(
                (a - n).abs() <= 2e-3 * (1.0 + n.abs()),
                "{what}: coordinate {i}: step's gradient {a}, finite differences {n}"
            );
        }
    }

    // θ = [b_u, b_i, p (k), q (k)].
    fn split_mf(theta: &mut [f32], k: usize) -> RatingParams<'_> {
        let (biases, factors) = theta.split_at_mut(2);
        let (bu, bi) = biases.split_at_mut(1);
        let (p, q) = factors.split_at_mut(k);
        RatingParams {
            user_bias: &mut bu[0],
            item_bias: &mut bi[0],
            user: p,
            item: q,
        }
    }

    #[test]
    fn mf_step_descends_the_gradient_of_mf_loss() {
        let mut rng = Rng::seed(1);
        let k = 5;
        let theta = random(&mut rng, 2 + 2 * k);
        let (rating, mean, reg, lr) = (4.0, 3.5, 0.1, 1e-3);
        let numeric = numeric_gradient(&theta, |t| {
            let mut t = t.to_vec();
            mf_loss(rating, mean, &split_mf(&mut t, k), reg)
        });
        let mut after = theta.clone();
        mf_step(rating, mean, split_mf(&mut after, k), lr, reg);
        assert_close(&implied_gradient(&theta, &after, lr), &numeric, "mf");
    }

    #[test]
    fn one_rating_svdpp_step_descends_the_gradient_of_svdpp_loss() {
        let mut rng = Rng::seed(2);
        let (k, items) = (4, 3);
        // θ = [b_u, b_i of 3 items, p, q of 3 items, y of 3 items].
        let theta = random(&mut rng, 1 + items + k + 2 * items * k);
        let (rating, mean, reg, lr) = (2.0, 3.5, 0.05, 1e-3);
        let implicit = [0u32, 2];
        let rated = 1usize;
        let loss = |t: &[f32]| {
            let mut t = t.to_vec();
            let (bu, rest) = t.split_at_mut(1);
            let (bi, rest) = rest.split_at_mut(items);
            let (p, rest) = rest.split_at_mut(k);
            let (q, y) = rest.split_at_mut(items * k);
            let params = RatingParams {
                user_bias: &mut bu[0],
                item_bias: &mut bi[rated],
                user: p,
                item: &mut q[rated * k..(rated + 1) * k],
            };
            svdpp_loss(rating, mean, &params, y, &implicit, reg)
        };
        let numeric = numeric_gradient(&theta, loss);
        let mut after = theta.clone();
        {
            let (bu, rest) = after.split_at_mut(1);
            let (bi, rest) = rest.split_at_mut(items);
            let (p, rest) = rest.split_at_mut(k);
            let (q, y) = rest.split_at_mut(items * k);
            let mut scratch = vec![0.0; 2 * k];
            let user = SvdppUser {
                ratings: &[(rated as u32, rating)],
                implicit: &implicit,
            };
            svdpp_user_step(user, mean, &mut bu[0], bi, p, q, y, lr, reg, &mut scratch);
        }
        // Only the rated item's bias and factors, and the implicit items' y, carry a
        // regulariser in this loss: compare those coordinates and the user's.
        let analytic = implied_gradient(&theta, &after, lr);
        let mut checked = vec![0, 1 + rated];
        checked.extend(1 + items..1 + items + k);
        let q0 = 1 + items + k;
        checked.extend(q0 + rated * k..q0 + (rated + 1) * k);
        let y0 = q0 + items * k;
        for &j in &implicit {
            checked.extend(y0 + j as usize * k..y0 + (j as usize + 1) * k);
        }
        let pick = |v: &[f32]| checked.iter().map(|&i| v[i]).collect::<Vec<_>>();
        assert_close(&pick(&analytic), &pick(&numeric), "svd++");
    }

    // θ = [b_i, b_j, p (k), q_i (k), q_j (k)].
    fn split_pair(theta: &mut [f32], k: usize) -> PairParams<'_> {
        let (biases, factors) = theta.split_at_mut(2);
        let (bi, bj) = biases.split_at_mut(1);
        let (user, items) = factors.split_at_mut(k);
        let (positive, negative) = items.split_at_mut(k);
        PairParams {
            user,
            positive,
            negative,
            positive_bias: &mut bi[0],
            negative_bias: &mut bj[0],
        }
    }

    #[test]
    fn bpr_step_descends_the_gradient_of_bpr_loss() {
        let mut rng = Rng::seed(3);
        let k = 6;
        let theta = random(&mut rng, 2 + 3 * k);
        let (reg, lr) = (0.01, 1e-3);
        let numeric = numeric_gradient(&theta, |t| {
            let mut t = t.to_vec();
            bpr_loss(&split_pair(&mut t, k), reg)
        });
        let mut after = theta.clone();
        let x = pair_margin(&split_pair(&mut after.clone(), k));
        let g = crate::tensor::activation::sigmoid(-x);
        pair_step(split_pair(&mut after, k), g, lr, reg);
        assert_close(&implied_gradient(&theta, &after, lr), &numeric, "bpr");
    }

    #[test]
    fn warp_step_descends_the_gradient_of_warp_loss() {
        let mut rng = Rng::seed(4);
        let k = 6;
        let theta = random(&mut rng, 2 + 3 * k);
        let (weight, reg, lr) = (2.3, 0.01, 1e-3);
        // Small random factors: the margin is violated, the hinge is on its slope.
        assert!(pair_margin(&split_pair(&mut theta.clone(), k)) < 1.0);
        let numeric = numeric_gradient(&theta, |t| {
            let mut t = t.to_vec();
            warp_loss(&split_pair(&mut t, k), weight, reg)
        });
        let mut after = theta.clone();
        pair_step(split_pair(&mut after, k), weight, lr, reg);
        assert_close(&implied_gradient(&theta, &after, lr), &numeric, "warp");
    }

    #[test]
    fn bpr_loss_matches_its_formula_for_large_margins() {
        let mut bias = [30.0f32, -30.0];
        let (mut u, mut i, mut j) = ([0.0f32], [0.0f32], [0.0f32]);
        let (bi, bj) = bias.split_at_mut(1);
        let params = PairParams {
            user: &mut u,
            positive: &mut i,
            negative: &mut j,
            positive_bias: &mut bi[0],
            negative_bias: &mut bj[0],
        };
        // x = 60: −ln σ(60) ≈ e^−60 plus the regulariser ½·0.1·(900 + 900).
        assert!((bpr_loss(&params, 0.1) - 90.0).abs() < 1e-4);
        *params.positive_bias = -30.0;
        *params.negative_bias = 30.0;
        // x = −60: −ln σ(−60) ≈ 60.
        assert!((bpr_loss(&params, 0.0) - 60.0).abs() < 1e-4);
    }

    #[test]
    fn double_precision_products_match_hand_sums() {
        assert_eq!(dot_f64(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
        assert_eq!(
            matvec_f64(&[1.0, 2.0, 3.0, 4.0], &[1.0, -1.0]),
            [-1.0, -1.0]
        );
        let mut a = vec![1.0; 6];
        add_outer_f64(&mut a, 2.0, &[1.0, 2.0], &[1.0, 0.0, -1.0]);
        assert_eq!(a, [3.0, 1.0, -1.0, 5.0, 1.0, -3.0]);
    }

    #[test]
    fn ridge_solve_matches_a_hand_solved_system() {
        // (A + I) x = b with A = [[3, 1], [1, 2]]: [[4, 1], [1, 3]] x = [1, 2] → x = [1/11, 7/11].
        let mut b = [1.0, 2.0];
        ridge_solve(&[3.0, 1.0, 1.0, 2.0], 1.0, &mut b).unwrap();
        assert!((b[0] - 1.0 / 11.0).abs() < 1e-12 && (b[1] - 7.0 / 11.0).abs() < 1e-12);
        // A singular system with no regularisation is an error, not a NaN.
        let mut b = [1.0, 1.0];
        assert!(ridge_solve(&[1.0, 1.0, 1.0, 1.0], 0.0, &mut b).is_err());
    }

    #[test]
    fn gaussian_draws_have_the_mean_and_covariance_of_their_precision() {
        // P = [[2, 1], [1, 2]], h = P μ with μ = (1, −1): h = (1, −1); covariance P⁻¹ =
        // [[2, −1], [−1, 2]] / 3.
        let mut rng = Rng::seed(6);
        let n = 40_000;
        let (mut mean, mut cov) = ([0.0f64; 2], [0.0f64; 4]);
        let mut draws = Vec::new();
        for _ in 0..n {
            let mut p = [2.0, 1.0, 1.0, 2.0];
            let mut h = [1.0, -1.0];
            let z = [rng.normal(1.0) as f64, rng.normal(1.0) as f64];
            gaussian_from_precision(&mut p, &mut h, &z).unwrap();
            mean[0] += h[0] / n as f64;
            mean[1] += h[1] / n as f64;
            draws.push(h);
        }
        for h in &draws {
            let c = [h[0] - mean[0], h[1] - mean[1]];
            for i in 0..2 {
                for j in 0..2 {
                    cov[i * 2 + j] += c[i] * c[j] / n as f64;
                }
            }
        }
        assert!(
            (mean[0] - 1.0).abs() < 0.02 && (mean[1] + 1.0).abs() < 0.02,
            "{mean:?}"
        );
        let want = [2.0 / 3.0, -1.0 / 3.0, -1.0 / 3.0, 2.0 / 3.0];
        for (c, w) in cov.iter().zip(want) {
            assert!((c - w).abs() < 0.02, "{cov:?}");
        }
    }

    #[test]
    fn wishart_draws_average_to_nu_times_the_scale() {
        // E[Λ] = ν W. W⁻¹ = [[2, 0.5], [0.5, 1]] → W = [[1, −0.5], [−0.5, 2]] / 1.75.
        let mut rng = Rng::seed(7);
        let (nu, n) = (5usize, 20_000);
        let mut mean = [0.0f64; 4];
        for _ in 0..n {
            let chi: Vec<f64> = (0..2)
                .map(|i| (0..nu - i).map(|_| (rng.normal(1.0) as f64).powi(2)).sum())
                .collect();
            let normals: Vec<f64> = (0..4).map(|_| rng.normal(1.0) as f64).collect();
            let draw = wishart_from_inverse_scale(&[2.0, 0.5, 0.5, 1.0], &chi, &normals).unwrap();
            for (m, d) in mean.iter_mut().zip(draw) {
                *m += d / n as f64;
            }
        }
        let want = [1.0, -0.5, -0.5, 2.0].map(|w: f64| w / 1.75 * nu as f64);
        for (m, w) in mean.iter().zip(want) {
            assert!(
                (m - w).abs() < 0.05 * w.abs().max(1.0),
                "{mean:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn als_row_is_a_minimum_of_its_objective() {
        let mut rng = Rng::seed(5);
        let d = 4;
        let rows: Vec<Vec<f32>> = (0..9).map(|_| random(&mut rng, d)).collect();
        let features: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let targets = random(&mut rng, 9);
        let lambda = 0.3;
        let mut x = vec![0.0; d];
        als_row(&features, &targets, lambda, &mut x).unwrap();
        let objective = |x: &[f32]| {
            let fit: f32 = features
                .iter()
                .zip(&targets)
                .map(|(f, t)| (t - dot(f, x)).powi(2))
                .sum();
            fit + lambda * dot(x, x)
        };
        // The gradient there is zero by finite differences.
        for g in numeric_gradient(&x, objective) {
            assert!(g.abs() < 2e-3, "gradient {g} at the ALS solution");
        }
    }

    #[test]
    fn implicit_als_row_minimises_the_weighted_loss_over_every_item() {
        let mut rng = Rng::seed(8);
        let (k, n) = (3, 7);
        let items = random(&mut rng, n * k);
        let liked = [1usize, 4];
        let (alpha, lambda) = (5.0f32, 0.2f32);
        let rows: Vec<&[f32]> = liked.iter().map(|&j| &items[j * k..(j + 1) * k]).collect();
        let mut x = vec![0.0; k];
        implicit_als_row(&gram_matrix(&items, k), &rows, alpha, lambda, &mut x).unwrap();
        let objective = |x: &[f32]| {
            let fit: f32 = (0..n)
                .map(|j| {
                    let (p, c) = if liked.contains(&j) {
                        (1.0, 1.0 + alpha)
                    } else {
                        (0.0, 1.0)
                    };
                    c * (p - dot(x, &items[j * k..(j + 1) * k])).powi(2)
                })
                .sum();
            fit + lambda * dot(x, x)
        };
        for g in numeric_gradient(&x, objective) {
            assert!(g.abs() < 2e-3, "gradient {g} at the implicit ALS solution");
        }
    }

    #[test]
    fn scores_and_cosine_match_hand_computed_values() {
        let items = [1.0, 0.0, 0.0, 2.0, 1.0, 1.0];
        let mut out = [0.0; 3];
        score_items(&items, &[0.5, 0.0, -1.0], &[3.0, 4.0], &mut out);
        assert_eq!(out, [3.5, 8.0, 6.0]);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
        assert_eq!(
            dot(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0, 1.0, 1.0, 1.0, 2.0]),
            20.0
        );
    }
}
