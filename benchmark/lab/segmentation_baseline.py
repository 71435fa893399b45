"""Baseline of the downstream segmenter on the default data, with timings: the README's numbers.

1. Train on the clean training split, evaluate on the clean test split (robustness protocol, severity 0).
2. Train on the training split with every tumour removed from the images but its label kept (the
   utility protocol's worst generator: masks with nothing under them; the `tumour_remove_keep`
   perturbation at severity 5, which fills 100 % of each lesion with mirrored healthy tissue), evaluate on
   the clean test split.
Writes baseline.json and the two training-curve PNGs to --out; prints the per-region mean Dice.

    OMP_NUM_THREADS=2 python -m benchmark.lab.segmentation_baseline --out outputs/seg-baseline [overrides]

Wall and CPU seconds are both reported: on a shared machine the wall time says more about the neighbours
than about the training (with two threads and a busy machine, OpenMP spin-waiting inflates CPU time too;
OMP_NUM_THREADS=1 gives the honest work count)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from benchmark.data.prepare import prepare_data
from perturbations import instantiate_perturbations
from segmentation import evaluate_segmenter, plot_training_curves, train_segmenter

CONF = Path(__file__).resolve().parent.parent / "conf"


def run(out: Path, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["perturbation=[tumour_remove_keep]", *overrides])
    seed = int(cfg.seed)
    start = time.perf_counter()
    data = prepare_data(cfg.data, seed=seed)
    results: dict = {"prepare_seconds": time.perf_counter() - start, "torch_threads": torch.get_num_threads(),
                     "load_average": os.getloadavg(),
                     "n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test),
                     "train_tumour_items": int(data.train.tumour_present.sum()), "overrides": overrides}
    device = torch.device("cpu")
    removal = instantiate_perturbations(cfg.perturbation)["tumour_remove_keep"]
    removed = removal.apply(data.train, severity=5, seed=seed)
    results["removal_parameters"] = removed.parameters
    for name, train in (("clean", data.train), ("tumour_removed", removed.data)):
        start, cpu_start = time.perf_counter(), time.process_time()
        model = train_segmenter(train, data.val, cfg.segmentation, seed, device, cache_dir=None)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        start = time.perf_counter()
        table = evaluate_segmenter(model, data.test, device)
        results[name] = {
            "train_seconds": seconds, "train_cpu_seconds": cpu_seconds, "evaluate_seconds": time.perf_counter() - start,
            "best_iteration": model.info["best_iteration"],
            **{c: float(table[c].mean()) for c in table.columns if c.startswith(("dice_", "hd95_"))},
            "per_subject_dice_WT": table.set_index("subject_id")["dice_WT"].round(4).to_dict(),
        }
        plot_training_curves(model.history, out / f"curves_{name}.png", title=f"training on {name}")
        print(f"{name:15s} WT {table.dice_WT.mean():.3f} TC {table.dice_TC.mean():.3f} "
              f"ET {table.dice_ET.mean():.3f}  HD95 WT {table.hd95_WT.mean():.1f} mm  "
              f"train {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/segmentation-baseline"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. segmentation.training.iterations=200")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(args.out, args.overrides)
    (args.out / "baseline.json").write_text(json.dumps(results, indent=2, default=float))
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, dict)}, default=float))


if __name__ == "__main__":
    main()
