"""`mribench score`: flags on planted copies and near-copies, threshold calibration on real-vs-real data,
the 2D and 3D reading paths, the end-to-end outputs and the bad-input errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from PIL import Image
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from benchmark.errors import ConfigError, DataError
from benchmark.score.cli import CONFIG_DIR
from benchmark.score.flags import calibrate_copy, image_flags, nearest, pixel_vectors, worst_first
from benchmark.score.inputs import read_inputs
from tests import niftis
from tests.mri_like import head

SIZE = 32


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(image, 0, 1) * 65535).astype(np.uint16)).save(path)


def heads(n: int, seed: int, shape: tuple[int, ...] = (SIZE, SIZE)) -> list[np.ndarray]:
    return [head(shape, seed + k)[0] for k in range(n)]


def score_cfg(tmp_path: Path, real: Path, generated: Path, train: Path | None = None, *extra: str) -> DictConfig:
    """The score config on small slices, with a cheap metric suite (no network) so the test stays fast."""
    overrides = [f"real={real}", f"generated={generated}", f"output_dir={tmp_path / 'out'}", "data.size=[32,32]",
                 "feature_cache=null", "resampling.n_boot=20", "resampling.floor_splits=10",
                 "flags.ood_features=pixels", "flags.ood_k=2", "flags.copy_fpr=0.05", "flags.ood_fpr=0.1",
                 f"scorecard={tmp_path / 'scorecard.csv'}", *extra]
    if train is not None:
        overrides.append(f"train={train}")
    pd.DataFrame([{"metric": "ssim", "a": "no", "b": "yes", "c_robustness": "no", "c_utility": "inconclusive",
                   "d": "no"}]).to_csv(tmp_path / "scorecard.csv", index=False)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("score", overrides=overrides)
    with open_dict(cfg):
        cfg.metrics.extractors = {}
        cfg.metrics.metrics = {
            "ssim": {"_target_": "benchmark.metrics.entries.ImageMetric", "function": "ssim"},
            "blur_effect": {"_target_": "benchmark.metrics.image_statistics.ImageStatistic",
                            "function": "blur_effect"}}
    return cfg


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    """real/ (40 heads), train/ (30 other heads), generated/ (20 new heads, 3 exact training copies, 3
    noisy copies, 2 out-of-distribution images): flat PNG folders."""
    rng = np.random.default_rng(0)
    real, train, new = heads(40, 0), heads(30, 100), heads(20, 200)
    for k, image in enumerate(real):
        write_png(tmp_path / "real" / f"r{k:02d}.png", image)
    for k, image in enumerate(train):
        write_png(tmp_path / "train" / f"t{k:02d}.png", image)
    for k, image in enumerate(new):
        write_png(tmp_path / "generated" / f"g{k:02d}.png", image)
    for k in range(3):
        write_png(tmp_path / "generated" / f"copy{k}.png", train[k])
        noisy = np.where(train[k + 3] > 0, train[k + 3] + 0.01 * rng.standard_normal(train[k + 3].shape), 0)
        write_png(tmp_path / "generated" / f"near{k}.png", noisy)
    for k in range(2):
        write_png(tmp_path / "generated" / f"ood{k}.png", rng.uniform(0, 1, (SIZE, SIZE)))
    return {key: tmp_path / key for key in ("real", "train", "generated")}


def test_nearest_matches_scipy_and_sklearn() -> None:
    rng = np.random.default_rng(1)
    queries, pool = rng.standard_normal((300, 7)), rng.standard_normal((50, 7))
    distance, index = nearest(torch.from_numpy(queries), torch.from_numpy(pool))
    reference = cdist(queries, pool)
    np.testing.assert_allclose(distance, reference.min(1), rtol=1e-12)
    np.testing.assert_array_equal(index, reference.argmin(1))
    knn, _ = nearest(torch.from_numpy(pool), torch.from_numpy(pool), exclude_self=True, k=3)
    sk = NearestNeighbors(n_neighbors=4).fit(pool).kneighbors(pool)[0][:, 3]  # 0th neighbour is the point itself
    np.testing.assert_allclose(knn, sk, rtol=1e-10)


def test_copy_threshold_holds_its_false_positive_rate_on_unseen_real_data() -> None:
    """Calibrated on one sample of real distances, the rate on a fresh sample from the same distribution
    is the target (binomial tolerance at n = 4000: ±0.6 %)."""
    rng = np.random.default_rng(2)
    calibration = calibrate_copy(rng.gamma(4.0, 1.0, 4000), 0.05, "test", seed=0)
    fresh = rng.gamma(4.0, 1.0, 4000)
    assert abs(np.mean(fresh < calibration.threshold) - 0.05) < 0.012
    assert 0.049 <= calibration.fpr_in_sample <= 0.05  # conservative quantile: never above the target in sample
    assert abs(calibration.fpr_split_half - 0.05) < 0.01


def test_flags_find_planted_copies_and_near_copies_in_pixels() -> None:
    real = torch.from_numpy(np.stack(heads(60, 0))[:, None])
    train = torch.from_numpy(np.stack(heads(40, 100))[:, None])
    rng = np.random.default_rng(3)
    near = train[5:10] + 0.01 * torch.from_numpy(rng.standard_normal((5, 1, SIZE, SIZE)))
    generated = torch.cat([torch.from_numpy(np.stack(heads(30, 300))[:, None]), train[:5], near])
    planted = np.r_[np.zeros(30, bool), np.ones(10, bool)]
    flags = image_flags(pixel_vectors(generated), pixel_vectors(real), pixel_vectors(train), pixel_vectors(generated),
                        pixel_vectors(real), 0.05, 0.05, 3, "pixels", "pixels", seed=0)
    assert flags.copy[planted].all()
    assert flags.exact[30:35].all() and not flags.exact[35:].any()
    np.testing.assert_array_equal(flags.nearest_train[30:], np.r_[np.arange(5), np.arange(5, 10)])
    assert flags.copy[~planted].mean() <= 0.2  # false positives of a 5 % threshold among 30 new images
    assert set(worst_first(flags)[:10].tolist()) == set(range(30, 40))


def test_read_inputs_2d_pngs_flat_and_study_layout(folders: dict[str, Path], tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    (layout / "images").mkdir(parents=True)
    for path in sorted(folders["real"].iterdir())[:6]:
        (layout / "images" / path.name).write_bytes(path.read_bytes())
    inputs = read_inputs(score_cfg(tmp_path, layout, folders["generated"], folders["train"]))
    assert inputs.real.images.shape == (6, 1, SIZE, SIZE)
    assert len(inputs.generated) == 28 and len(inputs.train) == 30
    assert not inputs.paired
    expected = np.asarray(Image.open(folders["real"] / "r00.png"), dtype=np.float64) / 65535
    np.testing.assert_allclose(inputs.real.images[0, 0].numpy(), expected, atol=1e-6)


def test_folders_of_other_image_sizes_are_resized_and_said(folders: dict[str, Path], tmp_path: Path, caplog) -> None:
    """A real folder mixing 48 x 48 and 32 x 32 slices: resized to data.size, and the log names the folder
    (not a scratch path) with how many of which size."""
    import logging

    write_png(folders["real"] / "big.png", head((48, 48), 5)[0])
    with caplog.at_level(logging.WARNING):
        inputs = read_inputs(score_cfg(tmp_path, folders["real"], folders["generated"]))
    assert inputs.real.images.shape == (41, 1, SIZE, SIZE)
    assert f"real folder {folders['real']}: PNGs of sizes 48x48 (1) resized to the reference's 32x32" in caplog.text
    assert "mribench-score-" not in caplog.text


def test_read_inputs_pairs_by_name(tmp_path: Path) -> None:
    real, generated = heads(6, 0), heads(6, 50)
    for k in range(6):
        write_png(tmp_path / "real" / f"s{k}.png", real[k])
        write_png(tmp_path / "gen" / f"s{5 - k if k < 4 else k + 10}.png", generated[k])
    inputs = read_inputs(score_cfg(tmp_path, tmp_path / "real", tmp_path / "gen"))
    names = inputs.generated.subject_ids
    expected = [int(n[1:]) if int(n[1:]) < 6 else -1 for n in names]
    assert inputs.reference_index.tolist() == expected


def test_read_inputs_3d_volumes(tmp_path: Path) -> None:
    """NIfTI volumes: sliced with the study's preprocessing in 2d mode, kept whole in 3d mode."""
    for folder, offset in (("real", 0), ("gen", 10)):
        for k in range(4):
            image, labels = niftis.synthetic_case(offset + k)
            niftis.save(image, tmp_path / folder / f"case{k}.nii.gz")
            niftis.save(labels, tmp_path / f"{folder}_masks" / f"case{k}.nii.gz")
    cfg = score_cfg(tmp_path, tmp_path / "real", tmp_path / "gen", None, "data.slices.per_subject=3",
                    f"masks.real={tmp_path / 'real_masks'}", "data.fov_mm=null")
    inputs = read_inputs(cfg)
    assert inputs.real.images.shape == (12, 1, SIZE, SIZE)
    assert inputs.real.labels.max() > 0  # the masks were read
    assert set(inputs.real.subject_ids) == {f"case{k}" for k in range(4)}
    cfg3 = score_cfg(tmp_path, tmp_path / "real", tmp_path / "gen", None, "data.mode=3d", "data.size=[16,24,24]",
                     "data.fov_mm=null")
    inputs3 = read_inputs(cfg3)
    assert inputs3.real.images.shape == (4, 1, 16, 24, 24) and inputs3.generated.spatial_dims == 3


def _as_itk(nifti: Path, target: Path) -> Path:
    """The NIfTI file rewritten by SimpleITK in another format (its geometry converted by SimpleITK)."""
    import SimpleITK as sitk

    target.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.ReadImage(str(nifti)), str(target))
    return target


@pytest.mark.parametrize("mode", ["2d", "3d"])
def test_metaimage_and_nrrd_volumes_score_as_their_nifti(tmp_path: Path, mode: str) -> None:
    """The same volumes saved as NIfTI and as MetaImage (.mha, detached .mhd + .raw) / NRRD give the same
    items and the same scores, masks included: one reorientation for every format."""
    from benchmark.score.outputs import write_outputs
    from benchmark.score.run import score

    suffixes = (".mha", ".nrrd", ".mhd", ".nrrd", ".mha", ".nhdr")
    for k in range(6):
        image, labels = niftis.synthetic_case(k)
        flipped = niftis.synthetic_case(20 + k)[0][::-1].copy()  # another orientation of the voxel grid
        for folder, array in (("real", flipped), ("gen_nii", image)):
            niftis.save(array, tmp_path / folder / f"case{k}.nii.gz")
        niftis.save(labels, tmp_path / "masks_nii" / f"case{k}.nii.gz")
        _as_itk(tmp_path / "gen_nii" / f"case{k}.nii.gz", tmp_path / "gen_itk" / f"case{k}{suffixes[k]}")
        _as_itk(tmp_path / "masks_nii" / f"case{k}.nii.gz", tmp_path / "masks_itk" / f"case{k}{suffixes[5 - k]}")
    assert (tmp_path / "gen_itk" / "case2.raw").is_file()  # the .mhd header's detached voxel file
    shape = ["data.slices.per_subject=3"] if mode == "2d" else ["data.mode=3d", "data.size=[16,24,24]"]
    tables, read = {}, {}
    for form in ("nii", "itk"):
        (tmp_path / form).mkdir()
        cfg = score_cfg(tmp_path / form, tmp_path / "real", tmp_path / f"gen_{form}", None, *shape, "data.fov_mm=null",
                        f"masks.generated={tmp_path / f'masks_{form}'}", "paired=false")
        result = score(cfg, torch.device("cpu"))
        assert result.inputs.generated.meta["not_read"]["images"] == []
        assert result.inputs.generated.labels.max() == 3
        read[form] = result.inputs.generated
        write_outputs(result, Path(cfg.output_dir))
        tables[form] = [pd.read_csv(Path(cfg.output_dir) / name) for name in ("score.csv", "images.csv")]
    torch.testing.assert_close(read["itk"].images, read["nii"].images, rtol=0, atol=1e-6)
    torch.testing.assert_close(read["itk"].labels, read["nii"].labels, rtol=0, atol=0)
    pd.testing.assert_frame_equal(tables["nii"][0], tables["itk"][0], rtol=1e-5)
    pd.testing.assert_frame_equal(tables["nii"][1], tables["itk"][1], rtol=1e-5)


def test_metaimage_slice_reads_like_its_png(tmp_path: Path) -> None:
    """A 2D MetaImage slice is read as one slice (like a 2D NIfTI), not refused as a volume."""
    import SimpleITK as sitk

    from benchmark.data.generated import _read_slice

    image = heads(1, 7)[0].astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(image), str(tmp_path / "s.mha"))
    read = _read_slice(tmp_path / "s.mha", "image")
    assert read.shape == image.T.shape  # voxel axes (x, y): the transpose of SimpleITK's (row, column) array
    np.testing.assert_allclose(np.abs(read).sum(), image.sum(), rtol=1e-6)


def test_score_end_to_end_writes_files_and_flags_planted_copies(folders: dict[str, Path], tmp_path: Path) -> None:
    from benchmark.score.outputs import terminal_table, write_outputs
    from benchmark.score.run import score

    cfg = score_cfg(tmp_path, folders["real"], folders["generated"], folders["train"])
    result = score(cfg, torch.device("cpu"))
    paths = write_outputs(result, Path(cfg.output_dir))
    assert sorted(p.name for p in paths) == ["images.csv", "score.csv", "score.html", "score.json"]
    images = pd.read_csv(tmp_path / "out" / "images.csv").set_index("file")
    assert images.loc[[f"copy{k}" for k in range(3)], "copy"].all()
    assert images.loc[[f"copy{k}" for k in range(3)], "exact_copy"].all()
    assert images.loc[[f"near{k}" for k in range(3)], "copy"].all()
    assert images.loc[["ood0", "ood1"], "ood"].all()
    assert images.loc[[f"g{k:02d}" for k in range(20)], "copy"].mean() <= 0.2
    assert images.loc["copy1", "nearest_train"] == "t01"
    assert images["blur_effect"].notna().all()
    table = pd.read_csv(tmp_path / "out" / "score.csv").set_index("metric")
    assert math.isfinite(table.loc["blur_effect", "floor"]) and math.isfinite(table.loc["blur_effect", "ci_low"])
    blur = table.loc["blur_effect"]
    assert blur["ci_low"] <= blur["value"] <= blur["ci_high"]
    summary = json.loads((tmp_path / "out" / "score.json").read_text())
    assert summary["flags"]["n_exact_copies"] == 3
    assert 0 <= summary["flags"]["copy"]["fpr_in_sample"] <= 0.05
    text = terminal_table(result)
    assert "false-positive rate on real images" in text and "real-vs-real floor" in text
    page = (tmp_path / "out" / "score.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 * 6 and "copy / near-copy" in page
    assert page.index("copy0") < page.index("ood0")  # worst first: copies, then by OOD score


class CountingFeatures:
    """A tiny extractor for the cache test: 4 x 4 average-pooled pixels (16-d); counts the items it ran on."""

    seen = 0

    def __new__(cls):
        from benchmark.features.base import FeatureExtractor

        class Pooled(FeatureExtractor):
            name, dim, spatial_dims = "pooled", 16, 2

            def preprocess(self, images: torch.Tensor) -> torch.Tensor:
                return images

            def forward(self, inputs: torch.Tensor) -> torch.Tensor:
                CountingFeatures.seen += inputs.shape[0]
                return torch.nn.functional.adaptive_avg_pool2d(inputs[:, :1], 4).flatten(1)

        return Pooled()


def test_feature_cache_recomputes_only_new_or_changed_files(folders: dict[str, Path], tmp_path: Path) -> None:
    """Re-scoring after one generated file changed and one was added runs the network on those two only,
    and every number equals a run without the cache."""
    from benchmark.score.features import cache_file
    from benchmark.score.run import score

    def run(cache: Path | None) -> tuple[int, pd.DataFrame, np.ndarray]:
        cfg = score_cfg(tmp_path, folders["real"], folders["generated"], folders["train"],
                        f"feature_cache={cache}" if cache else "feature_cache=null", "flags.ood_features=pooled")
        with open_dict(cfg):
            cfg.metrics.extractors = {"pooled": {"_target_": "tests.test_score.CountingFeatures", "_partial_": True}}
            cfg.metrics.metrics.fid = {"_target_": "benchmark.metrics.entries.FrechetMetric", "extractor": "pooled"}
        CountingFeatures.seen = 0
        result = score(cfg, torch.device("cpu"))
        return CountingFeatures.seen, pd.DataFrame(result.metrics).set_index("metric"), result.flags.ood_score

    cache = tmp_path / "cache"
    first, _, _ = run(cache)
    assert first == 40 + 28 + 30 - 3 and cache_file(cache, "pooled").is_file()  # 3 generated files copy train
    again, _, _ = run(cache)
    assert again == 0
    write_png(folders["generated"] / "g00.png", heads(1, 999)[0])  # changed content, same name
    write_png(folders["generated"] / "g99.png", heads(1, 998)[0])  # a new file
    rescored, cached, ood = run(cache)
    assert rescored == 2
    _, fresh, fresh_ood = run(None)
    pd.testing.assert_frame_equal(cached, fresh, rtol=1e-6)
    np.testing.assert_allclose(ood, fresh_ood, rtol=1e-6)


@pytest.mark.parametrize("case", ["empty", "train_is_generated", "train_holds_generated", "unreadable",
                                  "scorecard_format", "masks"])
def test_bad_input_is_one_clear_error_and_nothing_written(folders: dict[str, Path], tmp_path: Path, case: str
                                                          ) -> None:
    from benchmark.score.run import score

    generated, train, extra = folders["generated"], folders["train"], []
    if case == "empty":
        generated = tmp_path / "empty"
        generated.mkdir()
    elif case == "train_is_generated":
        train = generated
    elif case == "train_holds_generated":  # another folder with exactly the generated images
        import shutil

        train = Path(shutil.copytree(generated, tmp_path / "train_copy"))
    elif case == "unreadable":
        (generated / "broken.png").write_bytes(b"not a png")
    elif case == "scorecard_format":
        (tmp_path / "other.json").write_text(json.dumps({"rows": []}))
        extra = [f"scorecard={tmp_path / 'other.json'}"]
    elif case == "masks":
        (tmp_path / "masks").mkdir()
        for path in generated.iterdir():
            shape = (SIZE + 4, SIZE) if path.stem == "g00" else (SIZE, SIZE)
            Image.fromarray(np.zeros(shape, np.uint8)).save(tmp_path / "masks" / path.name)
        extra = [f"masks.generated={tmp_path / 'masks'}"]
    cfg = score_cfg(tmp_path, folders["real"], generated, train, *extra)
    expected = {"empty": "no image files", "train_is_generated": "is the generated folder itself",
                "train_holds_generated": "holds exactly the images of generated",
                "unreadable": "broken.png", "scorecard_format": "another format", "masks": "g00.png: shape"}[case]
    with pytest.raises((ConfigError, DataError), match=expected):
        score(cfg, torch.device("cpu"))
    assert not (tmp_path / "out").exists()


def test_copy_detection_auc_matches_mann_whitney(tmp_path: Path) -> None:
    """Exact copies are found perfectly by pixel distance; every AUC equals the Mann-Whitney U statistic of
    the same scores (scipy), and AP lies in [share of copies, 1]."""
    from scipy.stats import mannwhitneyu

    from benchmark.data.imageset import ImageSet
    from benchmark.score.copy_detection import Detectors, copy_detection

    def imageset(images: list[np.ndarray]) -> ImageSet:
        array = torch.from_numpy(np.stack(images)[:, None]).float()
        n = len(images)
        return ImageSet(array, torch.zeros_like(array, dtype=torch.long), array > 0, [f"s{k}" for k in range(n)],
                        [-1] * n, ("flair",), (1.0, 1.0))

    train, clean = imageset(heads(30, 0)), imageset(heads(40, 100))
    table = copy_detection(train, clean, None, seed=0, kinds=("exact", "noise"), rates=(0.15, 0.30),
                           detectors=("pixels", "ssim"))
    assert set(table["detector"]) == {"pixels", "ssim"} and len(table) == 8
    exact = table[table["near_copy"] == "exact"]
    assert (exact["auc"] == 1.0).all() and (exact["ap"] == 1.0).all()
    assert (table["n_copies"] == np.round(table["rate"] * 40)).all()
    assert ((table["ap"] >= table["n_copies"] / table["n_items"] - 1e-9) & (table["ap"] <= 1)).all()
    from perturbations.memorisation import MemorisationCopies

    perturbation = MemorisationCopies(near_copy="noise", fraction=0.30)
    data, reference, _ = perturbation.build_set(clean, perturbation.parameters_at(1), np.random.default_rng([0, 1]),
                                                train)
    planted = (torch.as_tensor(reference) < 0).numpy()
    score = Detectors(train, None, ["pixels"], torch.device("cpu")).scores(data.images)["pixels"]
    u = mannwhitneyu(score[planted], score[~planted]).statistic / (planted.sum() * (~planted).sum())
    row = table[(table["near_copy"] == "noise") & (table["rate"] == 0.30) & (table["detector"] == "pixels")]
    assert row["auc"].iloc[0] == pytest.approx(u, abs=1e-12)


def test_verdicts_from_a_study_and_the_shipped_file(tmp_path: Path) -> None:
    from benchmark.score.ship_scorecard import shipped_content
    from benchmark.score.verdicts import SHIPPED, load_verdicts

    study = tmp_path / "study"
    study.mkdir()
    pd.DataFrame([{"metric": "fid", "kind": "distribution", "a": "no", "a_evidence": "x", "b": "yes",
                   "c_robustness": "no", "c_utility": "inconclusive", "d": "yes"}]).to_csv(study / "scorecard.csv",
                                                                                           index=False)
    (study / "study.json").write_text(json.dumps({"title": "t", "created": "2026-12-06T23:00:00",
                                                  "data": {"source": "phantom", "n_subjects": {
                                                      "train (each fold)": 3, "test (all folds)": 5}}}))
    verdicts = load_verdicts(study / "scorecard.csv")
    assert verdicts.note("fid").startswith("detects harmful localised edits: no; stays calm when Dice is unharmed: yes")
    assert "flags memorisation: yes" in verdicts.note("fid") and verdicts.note("psnr") == ""
    content = shipped_content(study)
    (tmp_path / "shipped.json").write_text(json.dumps(content))
    again = load_verdicts(tmp_path / "shipped.json")
    assert again.rows["fid"]["d"] == "yes" and again.study["created"] == "2026-12-06T23:00:00"
    assert again.study["commit"] and "phantom" in again.source()
    assert again.study["data"] == "phantom, subjects train (each fold) 3, test (all folds) 5"  # not summed
    shipped = load_verdicts(None)
    assert shipped.path == str(SHIPPED)
    if SHIPPED.is_file():  # written by ship_scorecard from a real study: it names the study's command
        assert shipped.rows and shipped.study.get("command")
    else:  # an installation without it scores with no verdicts and says why
        assert shipped.rows == {} and "ships no scorecard" in shipped.source() and shipped.note("fid") == ""
    with pytest.raises(ConfigError, match="not a scorecard"):
        (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
        load_verdicts(tmp_path / "bad.csv")


@pytest.mark.slow
def test_study_copy_detection_feeds_the_report_section(tmp_path: Path) -> None:
    """Inside a study: the table is written for the report, whose section shows it and its figure."""
    from benchmark.data.imageset import ImageSet, PreparedData
    from benchmark.metrics.suite import MetricSuite
    from benchmark.score.copy_detection import study_copy_detection
    from reports.copy_detection import copy_detection_section
    from reports.document import Image as ImageBlock
    from reports.document import Table
    from reports.markdown import render_markdown

    def imageset(seed: int, n: int) -> ImageSet:
        array = torch.from_numpy(np.stack(heads(n, seed))[:, None]).float()
        return ImageSet(array, torch.zeros_like(array, dtype=torch.long), array > 0, [f"p{seed}_{k}" for k in range(n)],
                        [k for k in range(n)], ("flair",), (1.0, 1.0))

    data = PreparedData(imageset(0, 20), imageset(100, 10), imageset(200, 10), summary={})
    table = study_copy_detection(data, MetricSuite({}), 0, "cpu", tmp_path)
    assert set(table["detector"]) == {"pixels", "ssim", "radiomics"}
    assert set(table["near_copy"]) == {"exact", "noise", "rotation", "blend", "blur"}
    assert (table.loc[table["near_copy"] == "exact", "auc"].dropna() == 1.0).all()
    blocks = copy_detection_section(tmp_path)
    assert any(isinstance(b, Table) for b in blocks) and (tmp_path / "figures" / "copy_detection.png").is_file()
    assert any(isinstance(b, ImageBlock) for b in blocks)
    assert "exact 30 %" in render_markdown(blocks)
    assert copy_detection_section(tmp_path / "elsewhere") == []


@pytest.mark.slow
def test_export_writes_each_generator_budget_under_the_test_slice_names(tmp_path: Path) -> None:
    """`benchmark.score.export` with experiment=generators: a folder per generator budget, one PNG per test
    slice under that slice's name (so score pairs them), trained once and then loaded from the cache."""
    from benchmark.data.imageset import ImageSet, PreparedData
    from benchmark.score.export import write_generated_sets

    def imageset(seed: int, n: int) -> ImageSet:
        images = torch.from_numpy(np.stack(heads(n, seed))[:, None]).float()
        labels = torch.zeros_like(images, dtype=torch.long)
        labels[:, :, 12:18, 12:18] = 2
        return ImageSet(images, labels, images > 0, [f"p{seed}" for _ in range(n)], list(range(n)), ("flair",),
                        (1.0, 1.0))

    data = PreparedData(imageset(0, 8), imageset(100, 3), imageset(200, 5), summary={})
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["experiment=generators", "device=cpu",
                                           f"study.checkpoint_dir={tmp_path / 'checkpoints'}"])
    with open_dict(cfg):
        cfg.generators = {"regressor": {**cfg.generators.regressor, "budgets": [1, 2], "channels": [4, 8],
                                        "strides": [2], "batch_size": 4}}
    written = write_generated_sets(cfg, data, tmp_path / "generated")
    assert sorted(written) == ["regressor_1", "regressor_2"]
    names = [f"p200_z{i:03d}.png" for i in range(5)]
    for folder in written.values():
        assert sorted(p.name for p in (folder / "images").iterdir()) == names
        np.testing.assert_array_equal(np.asarray(Image.open(folder / "labels" / names[0])),
                                      data.test.labels[0, 0].numpy())
    first = np.asarray(Image.open(written["regressor_2"] / "images" / names[0]))
    assert first.max() > 0 and (first[~data.test.brain_masks[0, 0].numpy()] == 0).all()  # painted in the brain
    again = write_generated_sets(cfg, data, tmp_path / "again")  # from the checkpoint cache: the same images
    np.testing.assert_array_equal(np.asarray(Image.open(again["regressor_2"] / "images" / names[0])), first)
