"""The typed schema of the configuration: one dataclass per config group, registered in Hydra's ConfigStore.

`conf/config.yaml` and `conf/score.yaml` name `base_config` / `base_score` first in their defaults list, so
every YAML file merged on top (the groups, an experiment, a user's own file under `--config-dir`) and every
command-line override is checked against these types while Hydra composes: a wrong type, a value outside an
enumerated choice or an unknown key is refused with the key named (`benchmark.config_checks.hydra_error`
turns it into one ConfigError paragraph).

Where values live: every value a base YAML file sets (`conf/config.yaml`, `conf/score.yaml`,
`conf/data/phantom.yaml`, `conf/segmentation/unet2d.yaml` and `segresnet2d.yaml`, `conf/metrics/default.yaml`
and `vessels.yaml`) lives there only; its field here is MISSING and only gives the type. A field has a default
here only when no base YAML file sets it (the reader-specific data keys, `perturbation`, `generators`,
`preview`). Code reads the keys plainly.
Reader-, network-, metric- and perturbation-specific settings stay open dictionaries: their classes check
them when they are built. A key that may be a mapping or null is typed Any (OmegaConf cannot merge a mapping
given on the command line into a typed optional mapping that is null); its code checks it.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from omegaconf import MISSING

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"  # the checkout's conf/, or the installed `conf` package

# Choices: each enum's names are its values, so a member prints, compares and serialises as its string.
Stage = StrEnum("Stage", {name: name for name in ("data", "study", "report")})
DataSource = StrEnum("DataSource", {name: name for name in (
    "phantom", "brats", "msd", "folder", "pattern", "manifest", "vessels", "cohort")})
DataMode = StrEnum("DataMode", {"2d": "2d", "3d": "3d"})
SlicePolicy = StrEnum("SlicePolicy", {name: name for name in ("brain", "tumour", "mix")})
MissingLabel = StrEnum("MissingLabel", {name: name for name in ("error", "skip", "empty")})
DuplicateScans = StrEnum("DuplicateScans", {name: name for name in ("error", "allow")})
OnError = StrEnum("OnError", {name: name for name in ("flag", "raise")})
Protocol = StrEnum("Protocol", {name: name for name in ("robustness", "utility")})
Structures = StrEnum("Structures", {name: name for name in ("tumour", "vessel")})
Family = StrEnum("Family", {name: name for name in (
    "noise", "artifact", "shift", "morphological", "memorisation")})


@dataclass
class PhantomConfig:
    """data.phantom: the synthetic subjects built from the MNI152 template (benchmark.data.phantom)."""

    n_subjects: int = MISSING
    voxel_size_mm: float = MISSING
    max_tumours: int = MISSING
    tumour_free_fraction: float = MISSING
    seed: int = MISSING


@dataclass
class SlicesConfig:
    """data.slices: which axial slices of a subject become items (data.mode=2d)."""

    policy: SlicePolicy = MISSING
    per_subject: int = MISSING
    tumour_fraction: float = MISSING
    min_brain_fraction: float = MISSING


@dataclass
class SplitConfig:
    """data.split: subject fractions of the train / validation / test splits."""

    train: float = MISSING
    val: float = MISSING
    test: float = MISSING


@dataclass
class DataConfig:
    """data: the keys every reader shares (conf/data/phantom.yaml holds their values) and the reader-specific
    ones, null unless the reader's file sets them. sources (cohort) and vessels stay open: their readers check
    them."""

    source: DataSource = MISSING
    root: str | None = MISSING
    cache_dir: str = MISSING
    phantom: PhantomConfig = field(default_factory=PhantomConfig)
    modality: Any = MISSING  # one name, or a list of names for several channels
    mode: DataMode = MISSING
    size: list[int] = MISSING
    fov_mm: Any = MISSING  # one length, one per axis, or null
    resample_mm: float | None = MISSING
    label_map: Any = MISSING  # a preset name, {source value: ours}, or null
    missing_label: MissingLabel = MISSING
    duplicate_scans: DuplicateScans = MISSING
    workers: int = MISSING
    prepared_cache: bool = MISSING
    clip_percentiles: list[float] = MISSING
    slices: SlicesConfig = field(default_factory=SlicesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    channel_names: list[str] | None = None
    manifest: str | None = None
    patterns: Any = None  # {modality or label or brain_mask: glob}, or null
    vessels: Any = None  # a `_target_` spec of benchmark.data.vessels.sources, or null
    sources: Any = None  # {name: a source's reader keys} (cohort), or null


@dataclass
class ResamplingConfig:
    """study.resampling: noise floor, subject bootstrap and sample-size curves (benchmark.study.resampling)."""

    enabled: bool = MISSING
    n_boot: int = MISSING
    floor_splits: int = MISSING
    curve_repeats: int = MISSING


@dataclass
class CrossValidationConfig:
    """study.cv: subject-level k-fold cross-validation (benchmark.study.cross_validation)."""

    folds: int | None = MISSING
    only_fold: int | None = MISSING


@dataclass
class StudyConfig:
    """study: the sweep of perturbations x severities x seeds and what is computed from it."""

    title: str = MISSING
    severities: list[int] = MISSING
    seeds: list[int] = MISSING
    utility_severities: list[int] | None = MISSING
    checkpoint_dir: str = MISSING
    generated: Any = MISSING  # {name: folder}, or null
    only_perturbation: str | None = MISSING
    only_severity: int | None = MISSING
    cv: CrossValidationConfig = field(default_factory=CrossValidationConfig)
    copy_detection: bool = MISSING
    resampling: ResamplingConfig = field(default_factory=ResamplingConfig)


@dataclass
class TrainingConfig:
    """segmentation.training: the optimisation loop of the downstream segmenter."""

    iterations: int = MISSING
    batch_size: int = MISSING
    val_interval: int = MISSING
    flip_axes: list[int] = MISSING
    flip_probability: float = MISSING
    crop_size: list[int] | None = MISSING
    amp: bool = MISSING


@dataclass
class SegmentationConfig:
    """segmentation: the downstream model (network, loss, optimiser, scheduler are `_target_` specs) and the
    protocols the study runs with it."""

    spatial_dims: int = MISSING
    network: dict[str, Any] = MISSING
    loss: dict[str, Any] = MISSING
    optimizer: dict[str, Any] = MISSING
    scheduler: Any = MISSING  # a `_target_` spec, or null for a constant learning rate
    training: TrainingConfig = field(default_factory=TrainingConfig)
    protocols: list[Protocol] = MISSING
    utility_families: list[Family] = MISSING
    structures: Structures = MISSING


@dataclass
class MetricsConfig:
    """metrics: the metric suite (benchmark.metrics.suite.MetricSuite); extractors and metric entries are
    `_target_` specs checked by their classes."""

    _target_: str = MISSING
    max_images: int | None = MISSING
    max_train_images: int | None = MISSING
    seed: int = MISSING
    on_error: OnError = MISSING
    cache_entries: int = MISSING
    extractors: dict[str, Any] = MISSING
    metrics: dict[str, Any] = MISSING


@dataclass
class Config:
    """The study (conf/config.yaml). perturbation and generators hold the selected group options, one
    `_target_` spec each; preview holds `python -m perturbations.preview`'s `+preview.*` keys."""

    seed: int = MISSING
    device: str = MISSING  # auto | cpu | cuda | cuda:N (benchmark.runtime.resolve_device)
    debug: bool = MISSING
    output_dir: str = MISSING
    stages: list[Stage] = MISSING
    study: StudyConfig = field(default_factory=StudyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    perturbation: dict[str, Any] = field(default_factory=dict)
    generators: dict[str, Any] = field(default_factory=dict)
    preview: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScoreMasks:
    """masks: optional label folders of the scored sets."""

    real: str | None = MISSING
    generated: str | None = MISSING
    train: str | None = MISSING


@dataclass
class ScoreResampling:
    """resampling: the score's bootstrap and real-vs-real floor."""

    n_boot: int = MISSING
    floor_splits: int = MISSING


@dataclass
class ScoreFlags:
    """flags: per-image copy and out-of-distribution flags."""

    copy_features: str = MISSING
    copy_fpr: float = MISSING
    ood_features: str = MISSING
    ood_k: int = MISSING
    ood_fpr: float = MISSING
    html_images: int = MISSING


@dataclass
class ScoreConfig:
    """`mribench score` (conf/score.yaml): a user's generated images against real ones."""

    real: str = MISSING
    generated: str = MISSING
    train: str | None = MISSING
    masks: ScoreMasks = field(default_factory=ScoreMasks)
    paired: Any = MISSING  # auto | false
    output_dir: str = MISSING
    scorecard: str | None = MISSING
    seed: int = MISSING
    device: str = MISSING
    debug: bool = MISSING
    feature_cache: str | None = MISSING
    resampling: ScoreResampling = field(default_factory=ScoreResampling)
    flags: ScoreFlags = field(default_factory=ScoreFlags)
    data: DataConfig = field(default_factory=DataConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


def register_schemas() -> None:
    """Store the schemas in Hydra's ConfigStore under the names the primary configs' defaults lists use."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    store.store(name="base_score", node=ScoreConfig)
