"""Distribution metrics on feature matrices: the Fréchet distance and its relatives.

Convention (REFERENCE, Heusel et al. 2017): FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2).
The trace of the matrix square root is the sum of square roots of the eigenvalues of S1 S2, which are
those of a symmetric positive semi-definite matrix: L^T S2 L when S1 = L L^T has a Cholesky factor (the
fast path: one Cholesky and one eigenvalues-only `eigvalsh`), else S1^1/2 S2 S1^1/2 with S1^1/2 from
`eigh` (singular covariances, n < d). Everything is float64 and the eigenvalues are clamped at zero, so
the result stays real and finite, unlike `scipy.linalg.sqrtm`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from benchmark.metrics.checks import MetricInputError, check_features, check_same_dim


def _symmetric_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (negative eigenvalues clamped to 0)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp_min(0).sqrt()) @ eigenvectors.T


def _trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor, allow_cholesky: bool = True) -> torch.Tensor:
    """tr((S1 S2)^1/2) for symmetric positive semi-definite S1, S2 (see the module docstring)."""
    if allow_cholesky:
        for first, second in ((sigma1, sigma2), (sigma2, sigma1)):
            factor, info = torch.linalg.cholesky_ex(first)
            if int(info) == 0:
                middle = factor.T @ second @ factor
                return torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    root1 = _symmetric_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    return torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64.

    mu: (d,) means; sigma: (d, d) covariances. Returns a non-negative float, 0 for identical statistics
    up to rounding.
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64) for m in (mu1, mu2))
    sigma1, sigma2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.numel(),) * 2:
        raise MetricInputError(
            f"frechet_distance: shapes do not match: mu {tuple(mu1.shape)} / {tuple(mu2.shape)}, "
            f"sigma {tuple(sigma1.shape)} / {tuple(sigma2.shape)}"
        )
    for name, tensor in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not torch.isfinite(tensor).all():
            raise MetricInputError(f"frechet_distance: {name} contains NaN or Inf")
    sigma1 = (sigma1 + sigma1.T) / 2
    sigma2 = (sigma2 + sigma2.T) / 2
    trace_sqrt = _trace_sqrt_product(sigma1, sigma2)
    diff = mu1 - mu2
    value = diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return float(value.clamp_min(0))


def feature_statistics(features: torch.Tensor, name: str = "features") -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and unbiased covariance (d, d) of an (N, d) feature matrix, in float64 (N >= 2)."""
    features = check_features(features, name, "fid", min_samples=2)
    mean = features.mean(0)
    centred = features - mean
    return mean, centred.T @ centred / (features.shape[0] - 1)


def fid(candidate: torch.Tensor, reference: torch.Tensor) -> float:
    """Fréchet Inception Distance between the candidate's and the reference's (N, d) feature matrices
    (Heusel et al. 2017), float64; symmetric, computed with the reference's statistics first.

    Each set needs at least 2 samples; with fewer samples than dimensions the covariances are singular
    and the value stays finite and real, but it is strongly biased upwards at small N (report N).
    """
    mu_c, sigma_c = feature_statistics(candidate, "candidate")
    mu_r, sigma_r = feature_statistics(reference, "reference")
    if mu_c.shape != mu_r.shape:
        raise MetricInputError(f"fid: feature dimensions differ ({mu_c.numel()} vs {mu_r.numel()}).")
    if min(candidate.shape[0], reference.shape[0]) < mu_c.numel():
        return low_rank_frechet(candidate, reference)
    return frechet_distance(mu_r, sigma_r, mu_c, sigma_c)


def low_rank_frechet(candidate: torch.Tensor, reference: torch.Tensor) -> float:
    """The Fréchet distance from the feature matrices themselves, exact when samples are fewer than
    dimensions: with centred A (n_a, d) the reference, B (n_b, d) the candidate, S_a = A^T A / (n_a - 1) and
    S_b likewise, the non-zero eigenvalues of S_a^1/2 S_b S_a^1/2 are the squared singular values of
    B A^T / sqrt((n_a - 1) (n_b - 1)), so tr((S_a S_b)^1/2) is their sum: an SVD of an n_b x n_a matrix
    instead of d x d eigendecompositions."""
    a, b = reference.double(), candidate.double()
    centred_a, centred_b = a - a.mean(0), b - b.mean(0)
    scale_a, scale_b = a.shape[0] - 1, b.shape[0] - 1
    trace_sqrt = torch.linalg.svdvals(centred_b @ centred_a.T).sum() / (scale_a * scale_b) ** 0.5
    diff = a.mean(0) - b.mean(0)
    value = diff.dot(diff) + centred_a.square().sum() / scale_a + centred_b.square().sum() / scale_b - 2 * trace_sqrt
    return float(value.clamp_min(0))


class FeatureStatistics:
    """Streaming mean and covariance of features, merged per batch in float64 (Chan et al. 1979).

    Each batch contributes its count, mean and centred scatter matrix; merging uses the pairwise update
    M2 = M2_a + M2_b + delta delta^T n_a n_b / n, which avoids the cancellation of sum(x x^T) - n mu mu^T.
    Memory is O(d^2), independent of the number of samples.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.scatter: torch.Tensor | None = None

    def update(self, features: torch.Tensor) -> FeatureStatistics:
        """Add an (n, d) batch (n >= 1); returns self."""
        batch = check_features(features, "features", "FeatureStatistics.update")
        mean = batch.mean(0)
        centred = batch - mean
        self._merge(batch.shape[0], mean, centred.T @ centred)
        return self

    def merge(self, other: FeatureStatistics) -> FeatureStatistics:
        """Fold another accumulator's statistics into this one; returns self."""
        if other.count:
            self._merge(other.count, other.mean, other.scatter)
        return self

    def _merge(self, count: int, mean: torch.Tensor, scatter: torch.Tensor) -> None:
        if self.count == 0:
            self.count, self.mean, self.scatter = count, mean.clone(), scatter.clone()
            return
        if mean.shape != self.mean.shape:
            raise MetricInputError(
                f"FeatureStatistics: batch has {mean.numel()} features, earlier batches {self.mean.numel()}."
            )
        mean = mean.to(self.mean.device)
        total = self.count + count
        delta = mean - self.mean
        self.scatter += scatter.to(self.mean.device) + torch.outer(delta, delta) * (self.count * count / total)
        self.mean += delta * (count / total)
        self.count = total

    def covariance(self) -> torch.Tensor:
        """Unbiased covariance (d, d); needs at least two samples."""
        if self.count < 2:
            raise MetricInputError(f"FeatureStatistics: {self.count} sample(s) seen; a covariance needs at least 2.")
        return self.scatter / (self.count - 1)


class StreamingFID:
    """FID from two streams of feature batches: `update(features, real=True|False)`, then `compute()`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.real = FeatureStatistics()
        self.fake = FeatureStatistics()

    def update(self, features: torch.Tensor, real: bool) -> None:
        (self.real if real else self.fake).update(features)

    def compute(self) -> float:
        return frechet_distance(self.real.mean, self.real.covariance(), self.fake.mean, self.fake.covariance())


def _polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """KID's cubic polynomial kernel k(x, y) = (x . y / d + 1)^3."""
    return (a @ b.T / a.shape[1] + 1) ** 3


def _unbiased_mmd2(k_aa: torch.Tensor, k_bb: torch.Tensor, k_ab: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 from kernel blocks (diagonals of the within-set blocks excluded)."""
    m, n = k_aa.shape[0], k_bb.shape[0]
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return within_a + within_b - 2 * k_ab.mean()


def kid(
    candidate: torch.Tensor, reference: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): mean and std of the unbiased MMD^2 over subsets.

    Each of `subsets` draws takes `subset_size` rows without replacement from each set (a generator
    seeded by `seed`), and the std is the population std over the draws (torch-fidelity's convention).
    `subset_size` larger than either set is an error. The unbiased estimate can be slightly negative when
    the sets are close or small; it is reported as is. When `subset_size` equals both set sizes every draw
    is a reordering of the whole sets, on which the estimate does not depend: it is computed once (std 0).
    Each draw takes the reference's rows first.
    """
    b = check_features(candidate, "candidate", "kid", min_samples=2)
    a = check_features(reference, "reference", "kid", min_samples=2)
    check_same_dim(b, a, "kid")
    if subset_size < 2 or subset_size > min(a.shape[0], b.shape[0]):
        raise MetricInputError(
            f"kid: subset_size={subset_size} but the sets have {b.shape[0]} and {a.shape[0]} samples; "
            f"choose 2 <= subset_size <= {min(a.shape[0], b.shape[0])}."
        )
    if subsets < 1:
        raise MetricInputError(f"kid: subsets must be >= 1, got {subsets}.")
    if subset_size == a.shape[0] == b.shape[0]:
        return float(_unbiased_mmd2(_polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b))), 0.0
    generator = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        sa = a[torch.from_numpy(generator.choice(a.shape[0], subset_size, replace=False)).to(a.device)]
        sb = b[torch.from_numpy(generator.choice(b.shape[0], subset_size, replace=False)).to(b.device)]
        kernels = (_polynomial_kernel(sa, sa), _polynomial_kernel(sb, sb), _polynomial_kernel(sa, sb))
        values.append(_unbiased_mmd2(*kernels))
    stacked = torch.stack(values)
    return float(stacked.mean()), float(stacked.std(correction=0))


def mmd(candidate: torch.Tensor, reference: torch.Tensor, kernel: str = "rbf", bandwidth: float | None = None
        ) -> float:
    """Unbiased squared maximum mean discrepancy between two feature sets (Gretton et al. 2012).

    kernel: "rbf" (exp(-||x - y||^2 / (2 bandwidth^2)); bandwidth None = median pairwise distance of the
    pooled sets, the median heuristic) or "polynomial" (KID's cubic kernel on all samples).
    """
    b = check_features(candidate, "candidate", "mmd", min_samples=2)
    a = check_features(reference, "reference", "mmd", min_samples=2)
    check_same_dim(b, a, "mmd")
    if kernel == "polynomial":
        return float(_unbiased_mmd2(_polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b)))
    if kernel != "rbf":
        raise MetricInputError(f"mmd: kernel must be 'rbf' or 'polynomial', got {kernel!r}.")
    pooled = torch.cat([a, b])
    squared = torch.cdist(pooled, pooled, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    if bandwidth is None:
        off_diagonal = squared[~torch.eye(pooled.shape[0], dtype=torch.bool, device=pooled.device)]
        bandwidth = float(off_diagonal.sqrt().median())
        if bandwidth == 0:
            bandwidth = 1.0
    elif not bandwidth > 0:
        raise MetricInputError(f"mmd: bandwidth must be positive, got {bandwidth}.")
    gram = torch.exp(-squared / (2 * bandwidth**2))
    m = a.shape[0]
    return float(_unbiased_mmd2(gram[:m, :m], gram[m:, m:], gram[:m, m:]))


def prdc(candidate: torch.Tensor, reference: torch.Tensor, k: int = 5, ball: str = "open") -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) of the `candidate` (generated, "fake")
    features against the `reference` (real) features, with k-nearest-neighbour radii.

    ball: "open" (default) counts a sample inside a k-NN ball when its distance is < the radius, as the
    reference package `prdc` 0.2 does; "closed" uses <=. The two part only on tied distances, which exact
    copies create: on identical sets "closed" gives precision = recall = coverage = 1 and density >= 1,
    while "open" counts a copy inside only when a neighbour is strictly closer than the k-th (with
    continuous features identical sets score 1 either way). Each set needs more than k samples. Precision
    and density measure fidelity, recall and coverage diversity.
    """
    fake = check_features(candidate, "candidate", "prdc", min_samples=1)
    real = check_features(reference, "reference", "prdc", min_samples=1)
    check_same_dim(fake, real, "prdc")
    _check_prdc(real.shape[0], fake.shape[0], k, ball)
    return prdc_from_distances(euclidean(real, real), euclidean(fake, fake), euclidean(real, fake), k, ball)


def euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact pairwise distances (no matrix-product shortcut, which loses ties and small distances)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _check_prdc(n_real: int, n_fake: int, k: int, ball: str) -> None:
    if k < 1 or n_real <= k or n_fake <= k:
        raise MetricInputError(f"prdc: k={k} needs more than k samples per set, got {n_real} real and {n_fake} fake.")
    if ball not in ("open", "closed"):
        raise MetricInputError(f"prdc: ball must be 'open' (reference, <) or 'closed' (<=), got {ball!r}.")


def prdc_from_distances(real_real: torch.Tensor, fake_fake: torch.Tensor, real_fake: torch.Tensor, k: int = 5,
                        ball: str = "open") -> dict[str, float]:
    """PRDC from the three exact distance matrices (real-real, fake-fake, real-fake): a resample of the
    sets picks rows and columns of matrices computed once, and gives the values `prdc` gives."""
    _check_prdc(real_real.shape[0], fake_fake.shape[0], k, ball)
    inside = torch.lt if ball == "open" else torch.le
    real_radius = real_real.kthvalue(k + 1, dim=1).values  # the row itself is its 0-th neighbour
    fake_radius = fake_fake.kthvalue(k + 1, dim=1).values
    inside_real = inside(real_fake, real_radius.unsqueeze(1))
    inside_fake = inside(real_fake, fake_radius.unsqueeze(0))
    return {
        "precision": float(inside_real.any(0).double().mean()),
        "recall": float(inside_fake.any(1).double().mean()),
        "density": float(inside_real.double().sum(0).mean() / k),
        "coverage": float(inside(real_fake.min(1).values, real_radius).double().mean()),
    }


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score exp(E_x KL(p(y|x) || p(y))) from classifier logits (N, classes): mean, std over splits.

    Salimans et al. 2016; the splits are consecutive blocks (torch-fidelity's convention, population std).
    Needs at least `splits` samples.
    """
    logits = check_features(logits, "logits", "inception_score", min_samples=max(splits, 1))
    if splits < 1:
        raise MetricInputError(f"inception_score: splits must be >= 1, got {splits}.")
    log_p = torch.log_softmax(logits, dim=1)
    scores = []
    for block in torch.tensor_split(log_p, splits):
        log_marginal = torch.logsumexp(block, dim=0) - math.log(block.shape[0])
        kl = (block.exp() * (block - log_marginal)).sum(1).mean()
        scores.append(kl.exp())
    stacked = torch.stack(scores)
    return float(stacked.mean()), float(stacked.std(correction=0))


class StreamingFeatureMetric:
    """Streaming face of a metric that needs the samples themselves (KID, PRDC, MMD), not just moments.

    `update(features, real=...)` appends float64 batches, `compute()` calls `metric(fake, real, **kwargs)`
    (candidate first, as every metric here).
    Memory grows as O(N d): inherent to these metrics (KID subsets, k-NN radii). Example:
    `StreamingFeatureMetric(kid, subset_size=100)`.
    """

    def __init__(self, metric: Callable[..., object], **kwargs: object) -> None:
        self.metric = metric
        self.kwargs = kwargs
        self.reset()

    def reset(self) -> None:
        self.real: list[torch.Tensor] = []
        self.fake: list[torch.Tensor] = []

    def update(self, features: torch.Tensor, real: bool) -> None:
        batch = check_features(features, "features", f"{self.metric.__name__} (streaming)")
        (self.real if real else self.fake).append(batch)

    def compute(self) -> object:
        if not self.real or not self.fake:
            raise MetricInputError(f"{self.metric.__name__} (streaming): update() both the real and the fake stream.")
        return self.metric(torch.cat(self.fake), torch.cat(self.real), **self.kwargs)
