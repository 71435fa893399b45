"""Recompute every metric of a cell on a resample of its items, from stored per-item values and features.

`evaluate(suite, reference, candidate, ref_positions, cand_positions, train_features)` gives the value of
each output the stored data allow: an average of item values is averaged over the chosen positions (with
repeats, as a bootstrap draws them), PSNR is recomputed from the pooled MSE, a distribution or
memorisation entry of the suite is run on the chosen rows of the stored features (so any configured
feature metric is covered without naming it), FRD on the chosen rows of its radiomics features. Outputs
that need the images themselves (MS-SSIM diversity, the Inception Score) are not recomputed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch

from benchmark.errors import BenchmarkError
from benchmark.metrics import memorisation
from benchmark.metrics.checks import check_features
from benchmark.metrics.distribution import euclidean, low_rank_frechet, mmd, prdc_from_distances
from benchmark.metrics.entries import (
    AuthenticityMetric,
    CopyRateMetric,
    FeatureMetric,
    FIDTrainGapMetric,
    FrechetMetric,
    KIDMetric,
    PRDCMetric,
    SuiteContext,
)
from benchmark.metrics.radiomics import frd
from benchmark.metrics.suite import MetricSuite
from benchmark.study.item_data import ItemData


def rows_at(positions: np.ndarray, stored_positions: np.ndarray, n: int) -> np.ndarray:
    """Rows of stored arrays (indexed by `stored_positions`) for the wanted candidate `positions`; positions
    without a stored row (e.g. items without tumour for tumour CNR) are dropped, repeats kept."""
    lookup = np.full(max(n, int(stored_positions.max(initial=-1)) + 1, int(positions.max(initial=-1)) + 1), -1)
    lookup[stored_positions] = np.arange(len(stored_positions))
    rows = lookup[positions]
    return rows[rows >= 0]


def item_outputs(data: ItemData, positions: np.ndarray) -> dict[str, float]:
    """Outputs that aggregate item values, over `positions` (NaN when none of them has a value)."""
    out = {}
    for output, (values, stored, aggregate) in data.items.items():
        chosen = values[rows_at(positions, stored, len(data))]
        chosen = chosen[np.isfinite(chosen)] if aggregate == "mean" else chosen
        if not len(chosen):
            out[output] = math.nan
        elif aggregate.startswith("psnr"):
            data_range = float(aggregate.partition(":")[2] or 1.0)
            mse = float(chosen.mean())
            out[output] = math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)
        else:
            out[output] = float(chosen.mean())
    return out


_TRAIN_RADIUS: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}


def train_radius(train: torch.Tensor) -> torch.Tensor:
    """Each training sample's distance to its nearest other training sample, computed once per training
    feature matrix (benchmark.metrics.memorisation.training_radius)."""
    key = (train.data_ptr(), tuple(train.shape))
    if key not in _TRAIN_RADIUS:
        _TRAIN_RADIUS.clear()
        _TRAIN_RADIUS[key] = memorisation.training_radius(train.double())
    return _TRAIN_RADIUS[key]


_DISTANCES: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, torch.Tensor]] = {}


def stored_distances(first: np.ndarray, second: np.ndarray) -> torch.Tensor:
    """Exact distances between all stored rows of two feature arrays (as `prdc` computes them, in float64),
    once per pair of arrays: a resample picks rows and columns of this matrix."""
    key = (id(first), id(second))
    if key not in _DISTANCES:
        if len(_DISTANCES) >= 256:
            _DISTANCES.clear()
        a = check_features(torch.from_numpy(first), "reference", "prdc")
        b = a if second is first else check_features(torch.from_numpy(second), "candidate", "prdc")
        _DISTANCES[key] = (first, second, euclidean(a, b))
    return _DISTANCES[key][2]


def stored_nearest_train(train: np.ndarray, stored: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Each stored candidate row's nearest training sample (distance, index), read off the stored distance
    matrix: a resample only picks rows, so the distances to the training set never change."""
    nearest = stored_distances(stored, train).min(1)
    return nearest.values, nearest.indices


Nearest = Callable[[str], tuple[torch.Tensor, torch.Tensor]]
Pairwise = Callable[[str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def fast_feature_metric(metric: FeatureMetric, features: Callable[[str, str], torch.Tensor],
                        nearest: Nearest | None = None, pairwise: Pairwise | None = None) -> dict[str, float] | None:
    """Shortcuts that give the entry's value in a fraction of its time on resamples (None: run the entry):
    FID and the FID train gap from the sample-space SVD; authenticity and copy rate with the training set's
    neighbour radii computed once and, given `nearest` (extractor name -> the chosen candidate rows'
    nearest training sample), the candidates' distances too; PRDC, given `pairwise` (the chosen rows'
    reference-reference, candidate-candidate and reference-candidate distances), from stored matrices; KID,
    whose subsets all equal the whole sets when subset_size >= both sizes, as the unbiased cubic-kernel MMD²
    of the whole sets (its std is then 0)."""
    name = metric.feature_extractor
    if type(metric) is FrechetMetric:
        return {metric.name: low_rank_frechet(features(name, "candidate"), features(name, "reference"))}
    if type(metric) is FIDTrainGapMetric:
        candidate = features(name, "candidate")
        gap = low_rank_frechet(candidate, features(name, "train")) - low_rank_frechet(
            candidate, features(name, "reference"))
        return {metric.name: gap}
    if type(metric) in (AuthenticityMetric, CopyRateMetric):  # the training radius once, not per resample
        train = features(name, "train")
        distance, index = (nearest(name) if nearest
                           else memorisation.nearest_training(train.double(), features(name, "candidate").double()))
        radius = train_radius(train)
        if type(metric) is AuthenticityMetric:
            return {metric.name: memorisation.authentic_fraction(distance, index, radius)}
        return {metric.name: memorisation.near_copy_fraction(distance, radius, metric.threshold)}
    if type(metric) is PRDCMetric and pairwise is not None:
        values = prdc_from_distances(*pairwise(name), k=metric.k, ball=metric.ball)
        return {f"{metric.name}_{part}": value for part, value in values.items()}
    if type(metric) is KIDMetric:
        reference, candidate = features(name, "reference"), features(name, "candidate")
        if len(reference) == len(candidate) and metric.subset_size >= len(reference):
            return {metric.name: mmd(candidate, reference, "polynomial"), f"{metric.name}_std": 0.0}
    return None


def memorisation_items(suite: MetricSuite, data: ItemData, train_features: dict[str, np.ndarray]
                       ) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Per-item decisions of the suite's authenticity and copy-rate entries for the stored candidate
    features of `data` against `train_features` (extractor -> training features), as item values
    (1.0 authentic / near copy, else 0.0) with their positions, averaged by "mean": a resample's mean of
    them is the entry's value on that resample. Lets sets scored against different training sets (the
    folds of a cross-validated study) be pooled and resampled. Entries without stored features are left out."""
    out = {}
    for metric in suite.metrics.values():
        if type(metric) not in (AuthenticityMetric, CopyRateMetric):
            continue
        name = metric.feature_extractor
        if name not in data.features or name not in train_features:
            continue
        features, positions = data.features[name]
        train = torch.from_numpy(np.asarray(train_features[name], dtype=np.float64))
        distance, index = memorisation.nearest_training(train, torch.from_numpy(features).double())
        radius = train_radius(train)
        if type(metric) is AuthenticityMetric:
            flags = memorisation.authentic_items(distance, index, radius)
        else:
            flags = memorisation.near_copy_items(distance, radius, metric.threshold)
        out[metric.name] = (flags.double().numpy(), positions.astype(np.int64), "mean")
    return out


def _stored(data: ItemData, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name not in data.features:
        raise BenchmarkError(f"no stored {name} features")
    return data.features[name]


def _feature_rows(data: ItemData, name: str, positions: np.ndarray) -> torch.Tensor:
    features, stored = _stored(data, name)
    rows = rows_at(positions, stored, len(data))
    return torch.from_numpy(features[rows])


def evaluate(suite: MetricSuite, reference: ItemData, candidate: ItemData, ref_positions: np.ndarray,
             cand_positions: np.ndarray, train_features: dict[str, np.ndarray], skip_reference: bool = False,
             only: set[str] | None = None) -> dict[str, float]:
    """Every output recomputable on the chosen items (see the module docstring); `only` limits the suite
    entries run on features to these names, `skip_reference` leaves out the reference (paired) metrics."""
    out = {} if only is not None else item_outputs(candidate, cand_positions)
    if skip_reference:
        out = {k: v for k, v in out.items() if suite.metrics.get(k) is None or suite.metrics[k].kind != "reference"}
    getters = {"reference": (reference, ref_positions), "candidate": (candidate, cand_positions)}

    def features(name: str, which: str) -> torch.Tensor:
        if which == "train":
            if name not in train_features:
                raise BenchmarkError(f"no stored {name} training features")
            return torch.from_numpy(train_features[name])
        data, positions = getters[which]
        return _feature_rows(data, name, positions)

    def nearest(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in train_features or name not in candidate.features:
            raise BenchmarkError(f"no stored {name} features")
        stored, stored_positions = candidate.features[name]
        distance, index = stored_nearest_train(train_features[name], stored)
        rows = torch.from_numpy(rows_at(cand_positions, stored_positions, len(candidate)))
        return distance[rows], index[rows]

    def pairwise(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        (ref, ref_stored), (cand, cand_stored) = (_stored(reference, name), _stored(candidate, name))
        r = torch.from_numpy(rows_at(ref_positions, ref_stored, len(reference)))
        c = torch.from_numpy(rows_at(cand_positions, cand_stored, len(candidate)))
        return (stored_distances(ref, ref)[r][:, r], stored_distances(cand, cand)[c][:, c],
                stored_distances(ref, cand)[r][:, c])

    context = SuiteContext(candidate_images=torch.empty(0), paired_candidate=torch.empty(0),
                           paired_reference=torch.empty(0), features=features,
                           logits=lambda *_: _no_logits(), device=torch.device("cpu"), sets={})
    for metric in suite.metrics.values():
        if only is not None and metric.name not in only:
            continue
        if isinstance(metric, FeatureMetric) and metric.kind != "no_reference":
            if (metric.kind == "memorisation" and metric.feature_extractor not in train_features
                    and metric.name in out):
                continue  # pooled per-item decisions (`memorisation_items`) stand in for the training set
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out.update(fast_feature_metric(metric, features, nearest, pairwise) or metric.compute(context))
            except (BenchmarkError, ValueError, RuntimeError):
                out.update({output: math.nan for output in metric.outputs()})
        elif metric.name in candidate.radiomics and metric.name in reference.radiomics:
            ref = reference.radiomics[metric.name][rows_at(ref_positions, np.arange(len(reference)), len(reference))]
            cand = candidate.radiomics[metric.name][rows_at(cand_positions, np.arange(len(candidate)),
                                                            len(candidate))]
            try:
                out[metric.name] = frd(torch.from_numpy(cand), torch.from_numpy(ref))
            except (BenchmarkError, ValueError, RuntimeError):
                out[metric.name] = math.nan
    return out


def _no_logits() -> torch.Tensor:
    raise BenchmarkError("the Inception Score is not recomputed on resamples (it needs classifier logits)")
