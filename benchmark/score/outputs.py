"""What a scoring run writes: the terminal table, score.json, score.csv (one row per metric), images.csv
(one row per generated image) and a self-contained score.html (thumbnails inline, worst images first).

Every file is written only after the whole run succeeded, each atomically, so a failed run leaves nothing
half-written.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from benchmark.atomic import write_text_atomically
from benchmark.errors import ConfigError
from benchmark.score.flags import worst_first
from benchmark.score.inputs import item_names
from benchmark.score.run import ScoreResult


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float | np.floating):
        return "-" if not math.isfinite(value) else f"{value:.{digits}g}"
    return str(value)


def metrics_frame(result: ScoreResult) -> pd.DataFrame:
    return pd.DataFrame.from_records(result.metrics)


def images_frame(result: ScoreResult) -> pd.DataFrame:
    """One row per generated image: file, nearest training image and distance, flags, per-image metrics."""
    flags, inputs = result.flags, result.inputs
    train_names = item_names(inputs.train) if inputs.train is not None else []
    frame = pd.DataFrame({
        "file": item_names(inputs.generated),
        "nearest_train": [train_names[i] if i >= 0 else "" for i in flags.nearest_train],
        "train_distance": flags.train_distance,
        "copy": flags.copy,
        "exact_copy": flags.exact,
        "ood_score": flags.ood_score,
        "ood": flags.ood,
    })
    for output, values in sorted(result.item_values.items()):
        frame[output] = values
    return frame


def terminal_table(result: ScoreResult) -> str:
    """The metric table with its floors, intervals and verdict notes, and the flag summary."""
    header = ("metric", "value", "95% interval", "real-vs-real floor", "", "study verdicts")
    rows = [header]
    for row in result.metrics:
        interval = f"[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]" if math.isfinite(row["ci_low"]) else "-"
        floor = f"{_fmt(row['floor'])} ± {_fmt(row['floor_std'], 2)}" if math.isfinite(row["floor"]) else "-"
        rows.append((row["metric"], _fmt(row["value"]), interval, floor, row["against_floor"],
                     row["verdicts"] or ("(flagged: " + row["notes"][:60] + ")" if row["notes"] else "not in study")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
             for r in rows]
    flags = result.flags
    lines.append("")
    lines.append(f"verdicts from {result.verdicts.source()}")
    if flags.copy_calibration is not None:
        c = flags.copy_calibration
        lines.append(f"copies: {int(flags.copy.sum())} of {len(flags.copy)} generated images ({int(flags.exact.sum())} "
                     f"exact); threshold {c.threshold:.4g} ({c.features}), false-positive rate on real images "
                     f"{c.fpr_in_sample:.1%} in-sample, {c.fpr_split_half:.1%} split-half (target {c.target_fpr:.1%}, "
                     f"{c.n_real} real)")
    else:
        lines.append("copies: no train folder given, no copy flags")
    o = flags.ood_calibration
    lines.append(f"out of distribution: {int(flags.ood.sum())} of {len(flags.ood)}; false-positive rate on real "
                 f"images {o.fpr_in_sample:.1%} in-sample, {o.fpr_split_half:.1%} split-half (target "
                 f"{o.target_fpr:.1%}, {o.features}, k={result.settings['flags']['ood_k']})")
    return "\n".join(lines)


def summary(result: ScoreResult) -> dict[str, Any]:
    flags = result.flags
    return {
        "inputs": result.inputs.folders,
        "settings": {k: v for k, v in result.settings.items() if k != "generated_names"},
        "metrics": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
                    for row in result.metrics],
        "flags": {
            "copy": flags.copy_calibration.describe() if flags.copy_calibration else None,
            "ood": flags.ood_calibration.describe(),
            "n_copies": int(flags.copy.sum()), "n_exact_copies": int(flags.exact.sum()), "n_ood": int(flags.ood.sum()),
            "notes": flags.notes,
        },
        "scorecard": {"path": result.verdicts.path, "study": result.verdicts.study},
        "elapsed_s": result.elapsed_s,
        "peak_rss_mib": result.peak_rss_mib,
    }


def thumbnail(image: torch.Tensor, size: int = 96) -> str:
    """A base64 PNG of an item's first channel (a volume: its middle axial slice), [0, 1] to 8 bits."""
    array = image[0].cpu().numpy()
    if array.ndim == 3:
        array = array[array.shape[0] // 2]
    pixels = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    picture = Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _img(image: torch.Tensor, title: str, caption: str) -> str:
    title = html.escape(title)
    return (f'<figure><img src="data:image/png;base64,{thumbnail(image)}" title="{title}" alt="{title}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def score_html(result: ScoreResult, images: pd.DataFrame) -> str:
    """The self-contained page: inputs, the metric table, the flag calibration, the worst images."""
    inputs, flags = result.inputs, result.flags
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in ("metric", "value", "95% interval", "real-vs-real floor", "",
                                                  "study verdicts", "notes"))
    body = []
    for row in result.metrics:
        cls = {"worse than real": "bad", "within floor": "ok"}.get(row["against_floor"], "")
        interval = f"[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]" if math.isfinite(row["ci_low"]) else "-"
        floor = f"{_fmt(row['floor'])} ± {_fmt(row['floor_std'], 2)}" if math.isfinite(row["floor"]) else "-"
        body.append(
            f"<tr class='{cls}'><td>{esc(row['metric'])}</td><td>{_fmt(row['value'])}</td>"
            f"<td>{interval}</td><td>{floor}</td><td>{esc(row['against_floor'])}</td>"
            f"<td>{esc(row['verdicts'] or 'not in the study')}</td><td>{esc(row['notes'][:120])}</td></tr>")
    cards = []
    limit = int(result.settings["flags"]["html_images"])
    copy_features = result.settings["flags"]["copy_features"]
    distance_name = "RMS pixel difference" if copy_features == "pixels" else f"{copy_features} feature distance"
    copy_below = (f" (copy below {_fmt(flags.copy_calibration.threshold, 3)})" if flags.copy_calibration is not None
                  else "")
    for position in worst_first(flags)[:limit].tolist():
        record = images.iloc[position]
        tags = []
        if record["copy"]:
            tags.append("<span class='tag bad'>exact copy</span>" if record["exact_copy"]
                        else "<span class='tag bad'>copy / near-copy</span>")
        if record["ood"]:
            tags.append("<span class='tag warn'>out of distribution</span>")
        pair = _img(inputs.generated.images[position], record["file"], "generated")
        if inputs.train is not None and flags.nearest_train[position] >= 0:
            pair += _img(inputs.train.images[int(flags.nearest_train[position])], record["nearest_train"],
                         "nearest training")
        cards.append(
            f"<div class='card'>{pair}<div><b>{esc(record['file'])}</b><br>{' '.join(tags)}<br>"
            f"nearest training image: {esc(record['nearest_train'] or '-')}<br>{distance_name}: "
            f"{_fmt(float(record['train_distance']), 3)}{copy_below}<br>"
            f"OOD score: {float(record['ood_score']):.3f} (flagged above 1)</div></div>")
    flag_text = esc(terminal_table(result).split("\n\n", 1)[1]).replace("\n", "<br>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>mribench score</title><style>
body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}} tr.bad td{{background:#fde2e2}}
tr.ok td{{background:#e6f4e6}} .card{{display:inline-flex;gap:8px;border:1px solid #ccc;margin:4px;padding:6px;
width:430px;font-size:12px;vertical-align:top;overflow-wrap:anywhere}}
.card img{{width:96px;height:96px;image-rendering:pixelated}}
figure{{margin:0;text-align:center}} figcaption{{font-size:11px;color:#666}}
.tag{{padding:1px 5px;border-radius:3px;color:#fff;white-space:nowrap;display:inline-block;margin:2px 2px 2px 0}}
.tag.bad{{background:#c0392b}} .tag.warn{{background:#d68910}}
</style></head><body><h1>mribench score</h1>
<p>generated: {esc(inputs.folders['generated'])}<br>real: {esc(inputs.folders['real'])}<br>train:
{esc(inputs.folders.get('train', '-'))}<br>{esc(', '.join(f'{n} {k}' for k, n in result.settings['sizes'].items()))}
images; preprocessing:
{esc(result.settings['preprocessing'])}; {result.settings['n_boot']} bootstrap resamples,
{result.settings['floor_splits']} real-vs-real splits</p>
<h2>Metrics</h2><table><tr>{head}</tr>{''.join(body)}</table>
<h2>Per-image flags</h2><p>{flag_text}</p>
<p>Worst {min(limit, len(images))} of {len(images)} generated images first: each generated image, then its nearest
training image.</p>{''.join(cards)}</body></html>"""


def write_outputs(result: ScoreResult, output_dir: Path) -> list[Path]:
    """Write the four files into `output_dir` (created), each atomically; returns their paths."""
    output_dir = Path(output_dir).expanduser()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"output_dir={output_dir} cannot be created ({error.strerror or error}); choose a "
                          "writable folder.") from error
    images = images_frame(result)
    texts = {"score.json": json.dumps(summary(result), indent=2, default=str),
             "score.csv": metrics_frame(result).to_csv(index=False),
             "images.csv": images.to_csv(index=False),
             "score.html": score_html(result, images)}
    paths = []
    for name, text in texts.items():
        write_text_atomically(output_dir / name, text)
        paths.append(output_dir / name)
    return paths
