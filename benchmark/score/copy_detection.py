"""Which detector finds copies: per-image AUC and average precision of memorisation detectors on the
study's memorisation sets (`perturbations.memorisation.MemorisationCopies`: exact copies and near-copies
by noise, rotation, blend and blur replacing 5 / 15 / 30 % of a clean held-out set).

Each detector gives every image of a set a copy score (higher = more like a training image); the labels
are which images were planted. Detectors:
- pixels: minus the RMS pixel distance to the nearest training image;
- ssim: the largest SSIM with any training image (`benchmark.metrics.image.ssim`);
- inception / any suite extractor (e.g. segmentation_encoder, once the study attached its segmenter):
  minus the feature distance to the nearest training image;
- radiomics: minus the distance of z-scored radiomics features (original image, in the brain mask);
- authenticity: the nearest training image's own neighbour radius divided by the distance (Alaa et al.'s
  rule flags a ratio >= 1), in Inception features.
Features are computed once per distinct image (keyed by its pixels): an exact copy or an untouched clean
image costs nothing the second time. Deo et al.'s follow-up (Mem-index) reports the same AUC / AP at the
same duplication rates on other data.

Standalone, on folders read as `mribench score` reads them (and sharing its feature cache):
`python -m benchmark.score.copy_detection train=DIR real=DIR output_dir=OUT` writes copy_detection.csv,
.md and .png, with `real` the clean held-out images the copies replace.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmark.data.imageset import ImageSet, PreparedData
from benchmark.errors import BenchmarkError
from benchmark.metrics.image import ssim
from benchmark.metrics.radiomics.extractor import RadiomicsExtractor
from benchmark.metrics.suite import MetricSuite
from benchmark.score.flags import nearest, pixel_vectors
from perturbations.memorisation import MemorisationCopies
from reports.copy_detection import pivot

log = logging.getLogger("benchmark.score")
KINDS = ("exact", "noise", "rotation", "blend", "blur")
RATES = (0.05, 0.15, 0.30)


def _key(image: torch.Tensor) -> str:
    return hashlib.sha1(image.contiguous().numpy().tobytes()).hexdigest()


class ItemScores:
    """A per-image value computed once per distinct image (keyed by its pixels)."""

    def __init__(self, compute: Callable[[torch.Tensor], np.ndarray]) -> None:
        self.compute, self.values = compute, {}

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        keys = [_key(item) for item in images]
        new_keys = [key for key in dict.fromkeys(keys) if key not in self.values]
        if new_keys:
            first = [keys.index(key) for key in new_keys]
            for key, value in zip(new_keys, self.compute(images[torch.tensor(first)]), strict=True):
                self.values[key] = value
        return np.stack([self.values[key] for key in keys])


def _max_ssim(train: torch.Tensor) -> Callable[[torch.Tensor], np.ndarray]:
    def compute(images: torch.Tensor) -> np.ndarray:
        best = []
        for image in images:
            values = [ssim(image[None].expand(len(chunk), *image.shape), chunk).max()
                      for chunk in train.split(64)]
            best.append(float(torch.stack(values).max()))
        return np.asarray(best)
    return compute


def _radiomics(images: ImageSet) -> Callable[[torch.Tensor], np.ndarray]:
    extractor = RadiomicsExtractor(image_types=("original",))
    extractor.spacing = tuple(images.spacing)

    def compute(batch: torch.Tensor) -> np.ndarray:
        from benchmark.data.preprocess import brain_mask_from_image

        masks = torch.stack([torch.from_numpy(brain_mask_from_image(item[:, :, :, None].numpy())[..., 0])[None]
                             for item in batch])
        return extractor(batch, masks).double().numpy()
    return compute


class Detectors:
    """The copy scores of every detector for a set of images, with per-image caches."""

    def __init__(self, train: ImageSet, suite: MetricSuite | None, detectors: Sequence[str], device: torch.device):
        self.train, self.suite, self.device = train, suite, device
        self.names = list(detectors)
        self.features: dict[str, ItemScores] = {}
        for name in self.names:
            if name in ("pixels", "ssim", "authenticity", "radiomics"):
                continue
            if suite is None or name not in suite.extractors:
                raise BenchmarkError(f"copy detector {name!r} is not an extractor of the metric suite "
                                     f"({sorted(suite.extractors) if suite else []}).")
        if "ssim" in self.names:
            self.features["ssim"] = ItemScores(_max_ssim(train.images))
        if "radiomics" in self.names:
            self.features["radiomics"] = ItemScores(_radiomics(train))
        self.train_rows: dict[str, torch.Tensor] = {}

    def _extracted(self, name: str, images: torch.Tensor) -> torch.Tensor:
        extractor = self.suite.extractor(name)
        return self.suite.cache.get_items(name, images, lambda unseen: extractor.extract(unseen, self.device))

    def _train(self, name: str) -> torch.Tensor:
        if name not in self.train_rows:
            if name == "radiomics":
                rows = torch.from_numpy(self.features["radiomics"](self.train.images))
            else:
                rows = self._extracted(name, self.train.images)
            self.train_rows[name] = rows.double()
        return self.train_rows[name]

    def scores(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """{detector: (n,) copy score, higher = more like a training image}."""
        out = {}
        for name in self.names:
            if name == "pixels":
                out[name] = -nearest(pixel_vectors(images), pixel_vectors(self.train.images))[0]
            elif name == "ssim":
                out[name] = self.features["ssim"](images)
            elif name == "radiomics":
                train = self._train("radiomics")
                mean, std = train.mean(0), train.std(0).clamp_min(1e-12)
                rows = torch.from_numpy(self.features["radiomics"](images))
                out[name] = -nearest((rows - mean) / std, (train - mean) / std)[0]
            elif name == "authenticity":
                train = self._train("inception")
                distance, index = nearest(self._extracted("inception", images).double(), train)
                radius, _ = nearest(train, train, exclude_self=True)
                with np.errstate(divide="ignore"):
                    out[name] = np.where(distance > 0, radius[index] / np.maximum(distance, 1e-300), np.inf)
            else:
                out[name] = -nearest(self._extracted(name, images).double(), self._train(name))[0]
        return out


def copy_detection(train: ImageSet, clean: ImageSet, suite: MetricSuite | None, seed: int = 0,
                   kinds: Sequence[str] = KINDS, rates: Sequence[float] = RATES,
                   detectors: Sequence[str] = ("pixels", "ssim", "inception", "radiomics", "authenticity"),
                   device: torch.device | str = "cpu") -> pd.DataFrame:
    """Per (near_copy kind, duplication rate, detector): AUC and average precision of the per-image copy
    score for telling planted (near-)copies from the clean held-out images. Columns near_copy, rate,
    detector, auc, ap, n_copies, n_items."""
    scorer = Detectors(train, suite, detectors, torch.device(device))
    records = []
    for kind in kinds:
        for step, rate in enumerate(rates):
            perturbation = MemorisationCopies(near_copy=kind, fraction=rate)
            data, reference, _ = perturbation.build_set(clean, perturbation.parameters_at(1),
                                                        np.random.default_rng([seed, step]), train)
            planted = (torch.as_tensor(reference) < 0).numpy()
            for name, score in scorer.scores(data.images.cpu()).items():
                finite = np.nan_to_num(score, posinf=np.finfo(float).max, neginf=-np.finfo(float).max)
                auc = roc_auc_score(planted, finite) if 0 < planted.sum() < len(planted) else math.nan
                ap = average_precision_score(planted, finite) if planted.any() else math.nan
                records.append({"near_copy": kind, "rate": rate, "detector": name, "auc": auc, "ap": ap,
                                "n_copies": int(planted.sum()), "n_items": len(planted)})
            log.info("copy detection: %s at %.0f %% done", kind, 100 * rate)
    return pd.DataFrame.from_records(records)


def study_copy_detection(data: PreparedData, suite: MetricSuite, seed: int, device: torch.device | str,
                         output_dir: Path) -> pd.DataFrame:
    """The benchmark inside a finished study: training split against the clean validation + test items,
    with every extractor of the suite (the segmentation encoder too, once the runner attached its model);
    writes output_dir/copy_detection.csv for the report."""
    from benchmark.atomic import replace_atomically

    extractors = [name for name in suite.extractors]
    detectors = ["pixels", "ssim", *extractors, "radiomics", *(["authenticity"] if "inception" in extractors else [])]
    clean = ImageSet.concatenate([data.val, data.test])
    table = copy_detection(data.train, clean, suite, seed, detectors=detectors, device=device)
    replace_atomically(Path(output_dir) / "copy_detection.csv", lambda tmp: table.to_csv(tmp, index=False))
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """The pivoted AUC / AP table as Markdown."""
    wide = pivot(table)
    lines = ["| " + " | ".join(wide.columns) + " |", "|---" * len(wide.columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in wide.itertuples(index=False)]
    return "\n".join(lines)
