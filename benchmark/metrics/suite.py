"""A configured set of metrics, computed on a candidate set against the clean reference set.

Built by Hydra from `conf/metrics/<name>.yaml`: `metrics` maps output names to `_target_`-instantiated
entries (`benchmark.metrics.entries`), `extractors` maps extractor names to `_target_`-instantiated
feature extractors (`benchmark.features`, with `_partial_: true` so they load on first use).

Sample sizes: distribution and Inception-Score metrics use at most `max_images` items of the reference
and candidate sets (a seeded random subset, the same items for the same set size) because an Inception
forward costs about 0.18 s per image on a 2-core CPU. The training set is capped separately by
`max_train_images` (default: all), because a copy of a training image left out of the subset would go
undetected; its features are computed once per run. Reference metrics and diversity use every item.

Errors: with `on_error: raise` a metric that cannot be computed (too few samples, missing weights, ...)
raises its `BenchmarkError`. With `on_error: flag` its outputs are NaN and `suite.flags[output]` holds the
reason, also shown by `describe()`; a NaN never appears without such a flag.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from benchmark.data.imageset import ImageSet
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.features.base import FeatureExtractor
from benchmark.metrics.entries import ItemValues, SuiteContext, SuiteMetric


class FeatureCache:
    """In-memory LRU of features keyed by extractor and a SHA-1 of the images, so the clean reference
    set's features are computed once per run rather than once per perturbation cell."""

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self.hits = self.misses = 0

    @staticmethod
    def fingerprint(images: torch.Tensor) -> str:
        tensor = images.detach().contiguous().cpu()
        digest = hashlib.sha1(tensor.numpy().tobytes())
        digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
        return digest.hexdigest()

    def get(self, extractor: str, images: torch.Tensor, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        key = (extractor, self.fingerprint(images))
        if key in self.entries:
            self.hits += 1
            self.entries.move_to_end(key)
            return self.entries[key]
        self.misses += 1
        value = compute()
        self._store(key, value)
        return value

    def _store(self, key: tuple[str, str], value: torch.Tensor) -> None:
        if self.max_entries > 0:
            self.entries[key] = value
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)

    def forget(self, extractor: str) -> None:
        for key in [key for key in self.entries if key[0] == extractor]:
            del self.entries[key]


class ItemFeatureCache(FeatureCache):
    """The same LRU, one entry per item: only items never seen before go through the network. Most of
    a study's items recur (the clean reference set in every cell, the slices a localised edit leaves
    untouched, a memorised copy of a training image), and the network dominates a cell's time. An
    extractor's features of an item do not depend on the other items of its batch (eval mode; tested
    exactly equal), so the result equals a whole-set extraction. `hits` / `misses` count items."""

    def __init__(self, max_entries: int = 20000) -> None:
        super().__init__(max_entries)

    def get_items(self, extractor: str, images: torch.Tensor,
                  compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Features of every item of `images` (rows in item order); `compute(subset)` runs the network on
        the unseen items. An item may give several rows (a 2D extractor on a volume: one per slice)."""
        keys = [(extractor, self.fingerprint(item)) for item in images]
        unseen = list(dict.fromkeys(key for key in keys if key not in self.entries))
        new = set(unseen)
        missed = sum(key in new for key in keys)
        self.misses, self.hits = self.misses + missed, self.hits + len(keys) - missed
        fresh: dict[tuple[str, str], torch.Tensor] = {}
        if unseen:
            first = {key: keys.index(key) for key in unseen}
            features = compute(images[torch.tensor([first[key] for key in unseen])])
            rows = features.shape[0] // len(unseen)
            fresh = {key: features[i * rows:(i + 1) * rows].clone() for i, key in enumerate(unseen)}
        chunks = []
        for key in keys:
            if key in fresh:
                chunks.append(fresh[key])
            else:
                self.entries.move_to_end(key)
                chunks.append(self.entries[key])
        for key, value in fresh.items():
            self._store(key, value)
        return torch.cat(chunks)


class MetricSuite:
    """Named metric entries plus the feature extractors they use.

    metrics: {output name: SuiteMetric}. extractors: {name: FeatureExtractor or a zero-argument factory}.
    max_images: cap on reference / candidate items for feature-based metrics (None = all).
    max_train_images: cap on training items for the memorisation metrics (None = all). seed: drives the
    capped subsets. on_error: "raise" or "flag" (see the module docstring). cache_entries: items kept in the
    feature cache.
    """

    def __init__(
        self,
        metrics: Mapping[str, SuiteMetric],
        extractors: Mapping[str, FeatureExtractor | Callable[[], FeatureExtractor]] | None = None,
        max_images: int | None = None,
        max_train_images: int | None = None,
        seed: int = 0,
        on_error: str = "raise",
        cache_entries: int = 20000,
    ) -> None:
        if on_error not in ("raise", "flag"):
            raise ConfigError(f"metrics.on_error must be 'raise' or 'flag', got {on_error!r}.")
        for key, cap in (("max_images", max_images), ("max_train_images", max_train_images)):
            if cap is not None and cap < 2:
                raise ConfigError(f"metrics.{key} must be >= 2 or null, got {cap}.")
        self.metrics: dict[str, SuiteMetric] = dict(metrics)
        self.extractors: dict[str, Any] = dict(extractors or {})
        for name, metric in self.metrics.items():
            if not isinstance(metric, SuiteMetric):
                raise ConfigError(f"metrics.{name} is {type(metric).__name__}, not a benchmark.metrics.entries entry.")
            metric.name = name
            if metric.feature_extractor and metric.feature_extractor not in self.extractors:
                raise ConfigError(
                    f"metrics.{name} uses extractor {metric.feature_extractor!r}, which is not one of "
                    f"metrics.extractors ({sorted(self.extractors)})."
                )
        self.max_images, self.max_train_images = max_images, max_train_images
        self.seed, self.on_error = seed, on_error
        self.cache = ItemFeatureCache(cache_entries)
        self.flags: dict[str, str] = {}
        self.items: dict[str, ItemValues] = {}  # per-item values of the last compute(), by output name

    def extractor(self, name: str) -> FeatureExtractor:
        """The extractor `name`, built on first use when configured as a factory."""
        built = self.extractors[name]
        if not isinstance(built, FeatureExtractor):
            built = self.extractors[name] = built()
        return built

    def attach_segmenter(self, segmenter: Any) -> None:
        """Give every segmentation-encoder extractor the trained downstream model."""
        for name in self.extractors:
            extractor = self.extractor(name)
            if hasattr(extractor, "attach"):
                extractor.attach(segmenter)
                self.cache.forget(name)

    def capped_positions(self, n: int, which: str = "candidate") -> np.ndarray:
        """The positions of the items of a set of `n` that feature-based metrics use (all, or the seeded cap)."""
        cap = self.max_train_images if which == "train" else self.max_images
        if cap is None or n <= cap:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.seed).choice(n, cap, replace=False))

    def _capped(self, images: torch.Tensor, cap: int | None) -> torch.Tensor:
        n = images.shape[0]
        if cap is None or n <= cap:
            return images
        chosen = np.sort(np.random.default_rng(self.seed).choice(n, cap, replace=False))
        return images[torch.from_numpy(chosen)]

    def features_of(self, name: str, imageset: ImageSet, which: str = "candidate",
                    device: torch.device | str = "cpu") -> torch.Tensor:
        """Features of extractor `name` for the (capped) items of `imageset`, from the cache when computed."""
        return self._features(name, which, {which: imageset}, torch.device(device))

    def compute(
        self,
        reference: ImageSet,
        candidate: ImageSet,
        reference_index: torch.Tensor,
        train: ImageSet | None,
        device: torch.device | str = "cpu",
        skip_kinds: tuple[str, ...] = (),
    ) -> dict[str, float]:
        """Every configured metric of `candidate` against the clean `reference` (and `train` for the
        memorisation metrics). Reference metrics use the pairs (candidate[i], reference[reference_index[i]])
        with reference_index[i] >= 0. Metrics of a kind in `skip_kinds` are left out (e.g. "reference" when
        the candidate has no clean counterparts). Per-item values of the metrics that average items are kept
        in `self.items` (candidate positions resolved) for the subject bootstrap."""
        device = torch.device(device)
        sets = {"reference": reference, "candidate": candidate, "train": train}
        context = SuiteContext(
            candidate_images=candidate.images,
            paired_candidate=torch.empty(0),
            paired_reference=torch.empty(0),
            features=lambda name, which: self._features(name, which, sets, device),
            logits=lambda name, which: self._logits(name, which, sets, device),
            device=device,
            sets=sets,
        )
        pairs_error = self._set_pairs(context, reference, candidate, reference_index, device)
        self.flags, self.items = {}, {}
        paired = torch.nonzero(torch.as_tensor(reference_index).cpu() >= 0).flatten()
        results: dict[str, float] = {}
        for metric in self.metrics.values():
            if metric.kind in skip_kinds:
                continue
            try:
                if metric.kind == "reference" and pairs_error:
                    raise BenchmarkError(pairs_error)
                metric.items = {}
                results.update(metric.compute(context))
                for output, item in metric.items.items():
                    positions = item.positions if item.positions is not None else (
                        paired if metric.kind == "reference" else torch.arange(len(candidate)))
                    self.items[output] = ItemValues(item.values.double().cpu(), positions.cpu(), item.aggregate)
            except BenchmarkError as error:
                if self.on_error == "raise":
                    raise
                for output in metric.outputs():
                    results[output] = float("nan")
                    self.flags[output] = str(error)
        return results

    @staticmethod
    def _set_pairs(
        context: SuiteContext, reference: ImageSet, candidate: ImageSet, index: torch.Tensor, device: torch.device
    ) -> str | None:
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        if index.shape != (len(candidate),):
            raise BenchmarkError(f"reference_index has shape {tuple(index.shape)}, expected ({len(candidate)},).")
        if (index >= len(reference)).any():
            raise BenchmarkError(f"reference_index points past the {len(reference)} reference items.")
        paired = torch.nonzero(index >= 0).flatten()
        if paired.numel() == 0:
            return "no candidate item has a clean counterpart (reference_index is -1 everywhere)"
        context.paired_candidate = candidate.images[paired].to(device)
        context.paired_reference = reference.images[index[paired]].to(device)
        return None

    def _images(self, which: str, sets: dict[str, ImageSet | None]) -> torch.Tensor:
        imageset = sets[which]
        if imageset is None:
            raise BenchmarkError(f"this metric needs the {which} set, and none was given to MetricSuite.compute.")
        return self._capped(imageset.images, self.max_train_images if which == "train" else self.max_images)

    def _features(self, name: str, which: str, sets: dict[str, ImageSet | None], device: torch.device) -> torch.Tensor:
        images = self._images(which, sets)
        extractor = self.extractor(name)
        return self.cache.get_items(name, images, lambda unseen: extractor.extract(unseen, device))

    def _logits(self, name: str, which: str, sets: dict[str, ImageSet | None], device: torch.device) -> torch.Tensor:
        images = self._images(which, sets)
        extractor = self.extractor(name)
        if not hasattr(extractor, "logits"):
            raise BenchmarkError(f"extractor {name!r} has no classifier logits; the Inception Score needs one.")
        return self.cache.get_items(f"{name}:logits", images, lambda unseen: extractor.logits(unseen, device))

    def describe(self) -> dict[str, dict]:
        """Per output: kind, higher_is_better, feature_extractor and notes (sample cap, preprocessing,
        and the reason of any flagged NaN from the last `compute`)."""
        described: dict[str, dict] = {}
        for metric in self.metrics.values():
            extractor_note = ""
            if metric.feature_extractor:
                built = self.extractors[metric.feature_extractor]
                source = built.describe() if isinstance(built, FeatureExtractor) else "loaded on first use"
                cap = f"at most {self.max_images} items per set" if self.max_images else "all items"
                if metric.kind == "memorisation":
                    cap += f", training set: {self.max_train_images or 'all'} items"
                extractor_note = f"; features: {source}; {cap} (seed {self.seed})"
            for output, (higher, notes) in metric.outputs().items():
                flag = f"; FLAGGED NaN: {self.flags[output]}" if output in self.flags else ""
                described[output] = {
                    "kind": metric.kind,
                    "higher_is_better": higher,
                    "feature_extractor": metric.feature_extractor,
                    "notes": notes + extractor_note + flag,
                }
        return described
