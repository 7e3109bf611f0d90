"""Model cards: a Markdown file beside each weights file, written from measured results."""

from __future__ import annotations

from pathlib import Path

from wsgcn_cli import weights as wio
from wsgcn_cli.io.atomic import atomic_write


def _table(result: dict) -> str:
    lines = ["| action | MPJPE (mm) | P-MPJPE (mm) | frames |", "|---|---:|---:|---:|"]
    for name, r in result["per_action"].items():
        lines.append(f"| {name} | {r['mpjpe_mm']:.2f} | {r['p_mpjpe_mm']:.2f} | {r['frames']} |")
    lines.append(f"| **average over actions** | **{result['mpjpe_mm']:.2f}** | "
                 f"**{result['p_mpjpe_mm']:.2f}** | {result['frames']} |")
    return "\n".join(lines)


def _augmentation_line(meta: dict) -> list[str]:
    aug = {k: v for k, v in meta.get("augmentation", {}).items() if v and k not in ("flip",)}
    if meta.get("trained_on", {}).get("source_2d") != "gt+sh":
        aug.pop("sh_probability", None)  # only a gt+sh mix draws SH samples
    return [f"- **augmentation**: {', '.join(f'{k} {v}' for k, v in aug.items())}"] if aug else []


def _samples_line(meta: dict, hist: list[dict]) -> list[str]:
    """Samples seen in total (this run plus the weights it continued from) and throughput."""
    if "samples_seen_total" not in meta:
        return []
    rates = [h["samples_per_s"] for h in hist if "samples_per_s" in h]
    before = meta.get("samples_seen_before", 0)
    text = f"- **samples seen**: {meta['samples_seen_total'] / 1e6:.2f} M in total"
    if before:
        text += (f" ({before / 1e6:.2f} M by `{Path(meta['init_weights']).name}` before this run, which continued "
                 "from them with a warm restart of the learning-rate schedule)")
    if rates:
        text += f"; {sum(rates) / len(rates):.0f} training samples/s"
    if "best_epoch" in meta:
        text += f"; kept epoch {meta['best_epoch']} (best validation)"
    return [text]


def _curve_lines(weights_path: Path, meta: dict, hist: list[dict]) -> list[str]:
    """The training-curve table, old (loss_mm, val_gt_mm, val_sh_mm) or Trainer history."""
    if not hist:
        return []
    if "val_gt_mm" in hist[0]:
        lines = ["## Training curve (validation: S9/S11 every 25th frame, no flip augmentation)", "",
                 "| epoch | train MPJPE (mm) | val MPJPE gt-2D (mm) | val MPJPE sh-2D (mm) |", "|---:|---:|---:|---:|"]
        lines += [f"| {h['epoch']:.0f} | {h['loss_mm']:.2f} | {h['val_gt_mm']:.2f} | {h['val_sh_mm']:.2f} |" for h in hist]
        return lines + [""]
    stride = meta.get("val_stride", "")
    curve = f"../benchmarks/results/train_curve_{weights_path.stem}.json"
    lines = [f"## Training curve (validation: S9/S11 every {stride}th frame, flip test; "
             f"[JSON]({curve}), [plot]({curve[:-5]}.png))", "",
             "| epoch | samples seen (M) | wall (min) | train MPJPE (mm) | GT-2D P1 | GT-2D P2 | SH-2D P1 | SH-2D P2 |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for h in hist:
        loss = f"{1000 * h['loss']:.2f}" if "loss" in h else ""
        lines.append(f"| {h['epoch']} | {h['samples_seen'] / 1e6:.2f} | {h['wall_s'] / 60:.1f} | {loss} | "
                     f"{h.get('val_gt_mpjpe', float('nan')):.2f} | {h.get('val_gt_p_mpjpe', float('nan')):.2f} | "
                     f"{h.get('val_sh_mpjpe', float('nan')):.2f} | {h.get('val_sh_p_mpjpe', float('nan')):.2f} |")
    return lines + [""]


def write_card(weights_path: str | Path, spec: dict, results: dict[str, dict]) -> Path:
    """Write ``<weights>.md`` from the weights' metadata, the train pipeline and eval results."""
    weights_path = Path(weights_path)
    _, meta = wio.load(weights_path)
    digest = wio.sha256(weights_path)
    hist = meta.get("history", [])
    lines = [
        f"# {weights_path.name}",
        "",
        spec.get("description", ""),
        "",
        f"- **model**: `{meta['model']}` {meta.get('model_options', {})}; input layout `{meta['layout']}`, "
        f"2D codec `{meta['codec']}`; output {meta['output']}",
        f"- **data**: Human3.6M subjects {', '.join(meta['trained_on']['subjects'])}, all four cameras, "
        f"2D input `{meta['trained_on']['source_2d']}` (gt = projected ground truth, sh = Stacked-Hourglass "
        "MPII-pretrained detections), frame stride {}".format(meta["trained_on"]["stride"]),
        f"- **command**: `{meta.get('command', '')}` (pipeline `{Path(spec['path']).name}`)",
        f"- **training**: {meta['epochs']} epochs of {meta['samples_per_epoch']} random samples, batch "
        f"{meta['batch_size']}, Adam lr {meta['lr']} -> {meta['lr_final']} (exponential), left/right mirroring "
        f"{'on' if meta.get('flip_augmentation') else 'off'}, seed {meta['seed']}"
        + (f", bf16 autocast {'on' if meta['bf16_autocast'] else 'off'}" if "bf16_autocast" in meta else "")
        + (f", initialised from `{Path(meta['init_weights']).name}`" if meta.get("init_weights") else ""),
        *_augmentation_line(meta),
        *_samples_line(meta, hist),
        f"- **wall time**: {meta['wall_time_s'] / 60:.1f} min on {meta['machine']} (torch {meta['torch']})",
        f"- **sha256**: `{digest}`",
        "",
        "## Measured on Human3.6M S9, S11 (all frames, all cameras, 17 joints, flip test-time augmentation)",
        "",
        "Averaged per action, then over the 15 actions. Our copy lacks the 3D of S9 \"Discussion 1\": "
        "it is not in these tables. For Stacked-Hourglass input S11 \"Directions\" camera 54138969 has no "
        "detections and is skipped.",
        "",
    ]
    for source, result in results.items():
        label = {"gt": "Ground-truth 2D input", "sh": "Stacked-Hourglass detections as input"}[source]
        lines += [f"### {label}: MPJPE {result['mpjpe_mm']:.2f} mm, P-MPJPE {result['p_mpjpe_mm']:.2f} mm",
                  "", _table(result), ""]
    lines += _curve_lines(weights_path, meta, hist)
    card = weights_path.with_suffix(".md")
    with atomic_write(card) as tmp:
        tmp.write_text("\n".join(lines))
    return card


def write_stage_card(weights_path: str | Path, description: str, measured_md: str,
                     history_columns: dict[str, str] | None = None, notes: str = "") -> Path:
    """Write ``<weights>.md`` for weights other than a lifter (2D representation network,
    temporal refiner): what the metadata says (model, data, command, epochs, wall time,
    machine, sha256), the measured results given as Markdown (from a benchmark's JSON),
    the training curve (``history_columns``: metadata history key -> column title) and notes.
    """
    weights_path = Path(weights_path)
    _, meta = wio.load(weights_path)
    trained = meta.get("trained_on", {})
    lines = [
        f"# {weights_path.name}", "", description, "",
        f"- **model**: `{meta['model']}` {meta.get('model_options', {})}; input: {meta.get('input', '')}; "
        f"output: {meta.get('output', '')}",
        f"- **data**: {trained.get('dataset', '')} subjects {', '.join(trained.get('subjects', []))}, "
        + ", ".join(f"{k} {v}" for k, v in trained.items() if k not in ("dataset", "subjects")),
        f"- **command**: `{meta.get('command', '')}`",
        f"- **training**: {meta['epochs']} epochs, batch {meta['batch_size']}, Adam lr {meta['lr']} -> "
        f"{meta['lr_final']} (exponential), left/right mirroring {'on' if meta.get('flip_augmentation') else 'off'}, "
        f"seed {meta['seed']}",
        f"- **wall time**: {meta['wall_time_s'] / 60:.1f} min on {meta['machine']} (torch {meta['torch']})",
        f"- **sha256**: `{wio.sha256(weights_path)}`",
        "", "## Measured", "", measured_md.strip(), "",
    ]
    hist = meta.get("history", [])
    if hist and history_columns:
        keys = list(history_columns)
        lines += ["## Training curve", "", "| " + " | ".join(history_columns.values()) + " |",
                  "|" + "---:|" * len(keys)]
        lines += ["| " + " | ".join(f"{h.get(k, float('nan')):.4g}" for k in keys) + " |" for h in hist]
        lines.append("")
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    card = weights_path.with_suffix(".md")
    with atomic_write(card) as tmp:
        tmp.write_text("\n".join(lines))
    return card
