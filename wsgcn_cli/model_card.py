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


def _weak_line(meta: dict) -> list[str]:
    """The weak term of a WS-GCN weak-protocol lifter (:mod:`wsgcn_cli.train.lifter`)."""
    w = meta.get("weak")
    if not w:
        return []
    root = "ground-truth roots" if w["root"] == "gt" else "roots estimated from the 2D, the pose and the intrinsics"
    mv = (f"; multi-view consistency x {w['w_multiview']}: two synchronised views of a frame agree up to a "
          "rotation, no extrinsics") if w.get("w_multiview") else ""
    return [f"- **weak supervision** ({w['protocol']}): 3D of {', '.join(meta['trained_on']['subjects'])} only; "
            f"{', '.join(w['unlabelled_subjects'])} contribute their {w['unlabelled_source_2d']} 2D only "
            f"(reprojection x {w['w_reproj']} with {root}, bone lengths x {w['w_bone']} against the "
            f"{w['bone_reference']}{mv}), after {w['warmup_epochs']} supervised warm-up epochs"
            + ("; the kept epoch ends the warm-up: these weights have not yet trained with the weak term"
               if 0 < meta.get("best_epoch", 0) <= w["warmup_epochs"] else "")]


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


def _wall_line(meta: dict) -> str:
    upto = " (to the kept epoch)" if "best_epoch" in meta else ""
    return f"- **wall time**: {meta['wall_time_s'] / 60:.1f} min{upto} on {meta['machine']} (torch {meta['torch']})"


def _curve_links(weights_path: Path) -> str:
    """Markdown links to the learning curve of ``weights_path`` (the JSON and PNG the
    Trainer writes under ``benchmarks/results/``, relative to ``weights/``), or "" when
    the JSON is not there."""
    curve = f"benchmarks/results/train_curve_{weights_path.stem}.json"
    if not (Path(__file__).resolve().parents[1] / curve).is_file():
        return ""
    return f"[JSON](../{curve}), [plot](../{curve[:-5]}.png)"


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
    links = _curve_links(weights_path)
    lines = [f"## Training curve (validation: S9/S11 every {stride}th frame, flip test{'; ' + links if links else ''})",
             "",
             "| epoch | samples seen (M) | wall (min) | train MPJPE (mm) | GT-2D P1 | GT-2D P2 | SH-2D P1 | SH-2D P2 |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for h in hist:
        train = h.get("mpjpe", h.get("loss"))  # a weak run's loss adds its weak terms: show the supervised MPJPE
        loss = f"{1000 * train:.2f}" if train is not None else ""
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
        *_weak_line(meta),
        *_samples_line(meta, hist),
        _wall_line(meta),
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
        *_samples_line(meta, meta.get("history", [])),
        _wall_line(meta),
        f"- **sha256**: `{wio.sha256(weights_path)}`",
        "", "## Measured", "", measured_md.strip(), "",
    ]
    hist = meta.get("history", [])
    if hist and history_columns:
        keys = list(history_columns)
        links = _curve_links(weights_path)
        title = "## Training curve" + (f" (up to the kept epoch; every epoch: {links})" if links else "")
        lines += [title, "", "| " + " | ".join(history_columns.values()) + " |",
                  "|" + "---:|" * len(keys)]
        lines += ["| " + " | ".join(f"{h.get(k, float('nan')):.4g}" for k in keys) + " |" for h in hist]
        lines.append("")
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    card = weights_path.with_suffix(".md")
    with atomic_write(card) as tmp:
        tmp.write_text("\n".join(lines))
    return card


# ---------------------------------------------------------------------------------------
# Whole-body lifter (COCO-WholeBody-133)
# ---------------------------------------------------------------------------------------

_WHOLEBODY_LIMITS = """\
- **Not trained on H3WB.** H3WB's training files are not reachable here; the composite
  stands in for them. Its parts are independent draws: a hand's grip does not match the
  body's action, the face's shape and expression do not match the subject; the hand's
  roll about the forearm is random; the feet, eyes and ears are made by a rule from the
  leg and the face (weighted by `synthesised_weight` in the loss), and the head, ear and
  foot constants were measured on the one H3WB fixture pose. Human3.6M's hips are joint
  centres (about 3 cm wider apart than H3WB's hip keypoints): the pelvis and the body's
  proportions follow Human3.6M, not H3WB.
- **The H3WB number is one pose.** The mmpose fixture holds four entries of the same
  sample; it checks that the conventions (frames, alignment, layout) agree and decides
  nothing about accuracy.
- **Unseen parts are guesses.** A face or hand missing in the 2D enters with visibility 0;
  the lifter still outputs all 133 keypoints, and what it outputs for an unseen part is a
  guess from the rest of the body (the held-out hands missing in 2D above): callers should
  flag it (`lift` writes NaN there).
- **Data terms.** Human3.6M, FPHA and AFLW2000-3D are research-only (FPHA: academic,
  non-commercial, no redistribution; AFLW2000-3D: non-commercial). These weights are
  derived from them: research use only.
- **Small model, short training.** Sized and trained for one CPU core (see above); the
  SemGAN paper's network is larger and trained far longer on H3WB."""


def _parts_table(result: dict) -> str:
    p = result["per_part"]
    rows = [("**all 133** (pelvis-aligned)", result["mpjpe_mm"]), ("body 0-22 (pelvis)", p["body"]),
            ("face 23-90 (aligned at the nose)", p["face"]), ("left hand (at its wrist)", p["left_hand"]),
            ("right hand (at its wrist)", p["right_hand"]), ("hands (mean)", p["hands"]),
            ("face / hands, pelvis-aligned only", None), ("all 133, P-MPJPE (Procrustes)", result.get("p_mpjpe_mm"))]
    lines = ["| keypoints (alignment) | MPJPE (mm) |", "|---|---:|"]
    for name, v in rows:
        if name.startswith("face / hands"):
            lines.append(f"| {name} | {p['face_pelvis']:.1f} / {p['hands_pelvis']:.1f} |")
        elif v is not None:
            lines.append(f"| {name} | {v:.1f} |")
    return "\n".join(lines)


def _flip(result: dict) -> str:
    return f"lifted as `lift` lifts, flip test {'on' if result.get('flip_test') else 'off'}"


def wholebody_results_md(results: dict[str, dict]) -> str:
    """Markdown of whole-body results: ``{"h3wb": ..., "composite": ..., "composite-clean": ...}``
    from :func:`wsgcn_cli.evaluate.evaluate_h3wb` / :func:`~wsgcn_cli.evaluate.evaluate_composite`."""
    out = []
    h = results.get("h3wb")
    if h:
        out += [f"### H3WB fixture: all 133 keypoints {h['mpjpe_mm']:.1f} mm ({h['note']})", "",
                f"H3WB's definitions (all 133 and body after pelvis alignment, face at the nose, hands at the "
                f"wrists); input: {h['input_2d']}; file `{Path(h['file']).name}`; {_flip(h)}.", "", _parts_table(h), ""]
    for key, label in (("composite", "detector-like 2D"), ("composite-clean", "exact 2D")):
        r = results.get(key)
        if not r:
            continue
        fh = r["fpha_hands"]
        out += [f"### Composite test split, {label}: all 133 keypoints {r['mpjpe_mm']:.1f} mm ({r['frames']} samples)",
                "", f"Bodies: Human3.6M {'/'.join(r['subjects'])} ({r['bodies']} frames, a fixed random {r['frames']}); "
                f"hands: FPHA subject {', '.join(map(str, fh['fpha_subjects']))} ({fh['fpha_frames']} frames, "
                f"held out); faces: AFLW2000-3D 1600-1999 ({r['faces']}); {r['virtual_probability']:.0%} virtual "
                f"cameras; input 2D: {r['input_2d']}; {_flip(r)}. Measured keypoints only (without the rule-made eyes, ears, "
                f"feet): {r['labelled_mpjpe_mm']:.1f} mm.", "", _parts_table(r), "",
                f"**Held-out FPHA hands** (subject {', '.join(map(str, fh['fpha_subjects']))}), seen in 2D: "
                f"wrist-aligned MPJPE **{fh['mpjpe_mm']:.1f} mm**, P-MPJPE **{fh['p_mpjpe_mm']:.1f} mm** over "
                f"{fh['hands']} hands (left hands mirrored)"
                + (f"; hands missing in 2D (the lifter's guess): {fh['unseen_mpjpe_mm']:.1f} mm over "
                   f"{fh['unseen_hands']}" if fh.get("unseen_hands") else "") + ".", ""]
    return "\n".join(out)


def write_wholebody_card(weights_path: str | Path, spec: dict, results: dict[str, dict]) -> Path:
    """Write ``<weights>.md`` of a whole-body lifter from its metadata (recipe, loss,
    training, licence), the train pipeline and measured results (see
    :func:`wholebody_results_md`), its training curve and its limits."""
    weights_path = Path(weights_path)
    _, meta = wio.load(weights_path)
    hist = meta.get("history", [])
    trained, aug, loss = meta.get("trained_on", {}), meta.get("augmentation", {}), meta.get("loss", {})
    stride = trained.get("stride", 1)
    frames = "all frames" if stride == 1 else f"every {stride}th frame"
    lines = [
        f"# {weights_path.name}", "", spec.get("description", ""), "",
        f"- **model**: `{meta['model']}` {meta.get('model_options', {})} ({meta.get('architecture', '')}); "
        f"input {meta.get('input', '')}, codec `{meta.get('codec')}`; output {meta.get('output', '')}, layout "
        f"`{meta.get('layout')}`",
        f"- **data** (`wsgcn_cli/data/wholebody.py`, composed afresh for every batch): bodies Human3.6M 3D "
        f"{'/'.join(trained.get('subjects', []))} ({frames}); "
        f"hands {trained.get('hands', '')}, attached at the wrists along the forearm (left hands mirrored); faces "
        f"{trained.get('faces', '')}, scaled to a metric head and attached to the head; feet, eyes and ears made by "
        f"a rule. Seen by the subject's Human3.6M cameras or (p {aug.get('virtual_probability')}) random virtual "
        f"cameras; 2D {trained.get('source_2d', '')}; left/right mirroring {'on' if aug.get('flip') else 'off'}"
        + (f"; bone scale {aug['bone_scale']}" if aug.get("bone_scale") else ""),
        f"- **licence of the data (and so of these weights)**: {meta.get('licence', '')}",
        f"- **loss**: {loss.get('formula', '')}",
        f"- **command**: `{meta.get('command', '')}` (pipeline `{Path(spec.get('path', '')).name}`)",
        f"- **training**: {meta['epochs']} epochs of {meta['samples_per_epoch']} random samples, batch "
        f"{meta['batch_size']}, Adam lr {meta['lr']} -> {meta['lr_final']} (exponential), gradient clipping "
        f"{meta.get('max_grad_norm') or 'off'}, seed {meta['seed']}, bf16 autocast "
        f"{'on' if meta.get('bf16_autocast') else 'off'}"
        + (f", initialised from `{Path(meta['init_weights']).name}`" if meta.get("init_weights") else ""),
        *_samples_line(meta, hist),
        _wall_line(meta),
        f"- **sha256**: `{wio.sha256(weights_path)}`",
        "", "## Measured", "", wholebody_results_md(results),
    ]
    if hist:
        links = _curve_links(weights_path)
        lines += [f"## Training curve{' (' + links + ')' if links else ''}; validation: "
                  f"{meta.get('validation', {}).get('composite_test_samples', '')} fixed composite test samples, "
                  "detector-like 2D, and the H3WB fixture (one pose)", "",
                  "| epoch | samples seen (M) | wall (min) | train MPJPE (mm) | val all 133 | body | face | hands | H3WB fixture |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in hist:
            f = lambda k: f"{r[k]:.1f}" if k in r else ""  # noqa: E731
            lines.append(f"| {r['epoch']} | {r['samples_seen'] / 1e6:.3f} | {r['wall_s'] / 60:.1f} | {f('mpjpe_mm')} | "
                         f"{f('val_mpjpe')} | {f('val_body')} | {f('val_face')} | {f('val_hands')} | "
                         f"{f('val_h3wb_mpjpe')} |")
        lines.append("")
    lines += ["## Limits", "", _WHOLEBODY_LIMITS, ""]
    card = weights_path.with_suffix(".md")
    with atomic_write(card) as tmp:
        tmp.write_text("\n".join(lines))
    return card
