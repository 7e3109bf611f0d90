"""The GPU one-shot: every shipped Human3.6M model retrained on one GPU in minutes.

    PYTHONPATH=. python benchmarks/gpu_train_all.py OUT_DIR [--device cuda] [--budget-s 540]
    python benchmarks/gpu_train_all.py OUT_DIR --smoke        # the same code on the CPU, tiny, < 2 min

In order, each stage through the same ``wsgcn train`` pipelines as on a CPU (``api.train``
with ``--set`` overrides), so nothing here is a second training loop:

1. ``gt``: the GT-2D lifter (``train-semgcn-gt``) from scratch on the published schedule,
   30 epochs of all 1.46 M training samples (about 44 M samples; SemGCN trains 30
   epochs of 1.56 M at batch 64), batch 8192 with the learning rate scaled (4e-3, linear
   warm-up) and bf16 autocast; the training arrays are GPU tensors (no DataLoader);
2. ``det``: the detected-2D lifter (``train-semgcn-det``) fine-tuned from it with
   Stacked-Hourglass 2D, virtual cameras, bone scaling and detector-like noise;
3. ``refiner``: the temporal refiner (``train-refiner``) on the new detected-2D lifter's
   outputs (it is tied to that lifter's sha256);
4. ``weak``: WS-GCN's weak protocol (``train-weak-s1``: S1 3D + S5-S8 2D, estimated roots);
5. ``wholebody``: the SemGAN whole-body lifter (``train-semgan-wholebody``) from scratch on
   the composite data (Human3.6M bodies + FPHA hands + AFLW2000-3D faces), bf16, large
   batches: the CPU run saw 0.38 M samples, this one about 6 M.

Each body lifter is then evaluated on all of S9/S11 (GT and SH 2D, flip test; the data is
loaded once) and gets its model card and learning curve in OUT_DIR; the whole-body lifter
on the H3WB fixture and the composite test split (its own card). A stage that would
start after ``--budget-s`` seconds is skipped (and said so), so the command ends inside
the device's limit (a stage that has started runs to its end: give the whole-body stage
a call of its own, ``--stages wholebody``, when the body stages fill the budget);
``OUT_DIR/summary.json`` lists what ran, wall times and the numbers.
Only torch, numpy, scipy, safetensors, typer and rich are imported on this path (no
mediapipe): the GPU image has nothing else. Copy what improves into ``weights/`` by hand,
with the cards, and run ``benchmarks/accuracy_h36m.py`` there.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

GPU = {
    "gt": ["init_weights=\"\"", "epochs=30", "samples_per_epoch=0", "batch_size=8192", "lr=4e-3",
           "lr_final=4e-5", "warmup_steps=200", "val_stride=50", "keep_best=\"val_gt_mpjpe\""],
    "det": ["epochs=10", "samples_per_epoch=0", "batch_size=8192", "lr=2e-3", "lr_final=2e-5",
            "warmup_steps=100", "val_stride=50", "keep_best=\"val_sh_mpjpe\"", "virtual_probability=0.3",
            "bone_scale=0.05", "joint_noise=0.01", "gross_error_probability=0.005"],
    "refiner": ["samples_per_epoch=512000", "batch_size=512", "lr=3e-3", "lr_final=3e-5", "warmup_steps=50",
                "lift_batch=8192"],
    "weak": ["batch_size=4096", "lr=4e-3", "lr_final=4e-5", "warmup_steps=100", "val_stride=50"],
    "wholebody": ["epochs=15", "samples_per_epoch=409600", "batch_size=2048", "lr=3e-3", "lr_final=3e-5",
                  "warmup_steps=100", "bf16=true", "val_samples=16384"],
}
SMOKE = {  # the same stages, tiny: a test runs this on the CPU
    "gt": ["init_weights=\"\"", "epochs=1", "samples_per_epoch=2048", "batch_size=256", "val_stride=400",
           "subjects=[\"S1\"]", "stride=20", "model.hidden=32", "model.num_blocks=1", "keep_best=\"val_gt_mpjpe\""],
    "det": ["epochs=1", "samples_per_epoch=2048", "batch_size=256", "val_stride=400", "subjects=[\"S1\"]",
            "stride=20", "model.hidden=32", "model.num_blocks=1", "virtual_probability=0.3", "bone_scale=0.05",
            "joint_noise=0.01", "gross_error_probability=0.005"],
    "refiner": ["epochs=1", "samples_per_epoch=32", "batch_size=8", "subjects=[\"S1\"]", "stride=16", "val=false",
                "keep_best=\"\"", "model.hidden=16"],
    "weak": ["epochs=2", "warmup_epochs=1", "samples_per_epoch=1024", "batch_size=256", "stride=20",
             "val_stride=400", "model.hidden=32", "model.num_blocks=1"],
    "wholebody": ["epochs=1", "samples_per_epoch=256", "batch_size=64", "stride=50", "val_samples=256",
                  "model.hidden=16", "model.depth=1", "model.decoder_depth=1"],
}
PIPELINES = {"gt": "train-semgcn-gt", "det": "train-semgcn-det", "refiner": "train-refiner", "weak": "train-weak-s1",
             "wholebody": "train-semgan-wholebody"}
NAMES = {"gt": "semgcn_nl_h36m_gt2d", "det": "semgcn_nl_h36m_det2d", "refiner": "lstm_refiner_h36m",
         "weak": "semgcn_nl_h36m_weak_s1", "wholebody": "semgan_wholebody_composite"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--device", default="auto")
    p.add_argument("--smoke", action="store_true", help="tiny settings on the CPU (a test)")
    p.add_argument("--budget-s", type=float, default=540.0, help="skip stages that would start later than this")
    p.add_argument("--stages", nargs="+", default=list(PIPELINES), choices=list(PIPELINES))
    p.add_argument("--data", default=None, help="Human3.6M folder (default ../shared/data/h36m)")
    args = p.parse_args(argv)

    import torch

    from wsgcn_cli import api
    from wsgcn_cli.data import h36m
    from wsgcn_cli.evaluate import evaluate
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.lifter import Lifter, resolve_device
    from wsgcn_cli.model_card import write_card
    from wsgcn_cli import pipeline as pipelines

    t0 = time.time()
    out = Path(args.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.smoke else args.device
    dev = resolve_device(device)
    settings = SMOKE if args.smoke else GPU
    summary = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "smoke": args.smoke,
               "torch": torch.__version__, "stages": {}}
    eval_stride = 200 if args.smoke else 1
    val = None

    def paths(stage):
        name = NAMES[stage]
        return [f'out="{out / (name + ".safetensors")}"', f'checkpoint="{out / (name + ".ckpt")}"',
                f'curve="{out / ("train_curve_" + name + ".json")}"']

    def card(stage, spec_name, weights):
        nonlocal val
        if val is None:
            val = h36m.load(h36m.TEST_SUBJECTS, args.data, eval_stride, with_sh=True)
        lifter = Lifter.from_weights(weights, flip_test=True, device=device)
        results = {src: {**evaluate(lifter, root=args.data, source=src, data=val), "weights_sha256": lifter.sha256}
                   for src in ("gt", "sh")}
        write_card(weights, pipelines.load(spec_name, kind="train"), results)
        return {src: {"mpjpe_mm": round(r["mpjpe_mm"], 2), "p_mpjpe_mm": round(r["p_mpjpe_mm"], 2),
                      "frames": r["frames"], "stride": eval_stride} for src, r in results.items()}

    for stage in args.stages:
        elapsed = time.time() - t0
        if elapsed > args.budget_s:
            summary["stages"][stage] = {"skipped": f"budget: {elapsed:.0f} s > {args.budget_s:.0f} s"}
            print(f"[{stage}] skipped: {elapsed:.0f} s elapsed", flush=True)
            continue
        overrides = settings[stage] + paths(stage)
        if stage == "det":
            overrides.append(f'init_weights="{out / (NAMES["gt"] + ".safetensors")}"')
        if stage == "refiner":
            overrides += [f'lifter.weights="{out / (NAMES["det"] + ".safetensors")}"',
                          f'cache="{Path(tempfile.gettempdir()) / "wsgcn_gpu_cache_refiner"}"']  # large: not in OUT_DIR
        t_stage = time.time()
        print(f"[{stage}] wsgcn train {PIPELINES[stage]} " + " ".join(f"--set '{o}'" for o in overrides), flush=True)
        # --data is the Human3.6M folder; the whole-body task reads the folder above it (h36m/, hands_fpha/, ...)
        data = args.data if stage != "wholebody" else (None if args.data is None else str(Path(args.data).parent))
        try:
            result = api.train(PIPELINES[stage], data=data, device=device, quiet=True,
                               evaluate_after=False, overrides=overrides)
            weights = result["weights"]
            entry = {"weights": weights, "sha256": result.get("sha256", ""), "train_s": round(time.time() - t_stage, 1),
                     "samples_seen": result.get("meta", {}).get("samples_seen_total")}
            if stage == "wholebody" and Path(weights).is_file():
                results = api.wholebody_results(weights, data=data, device=device, samples=256 if args.smoke else 16384)
                api.write_wholebody_card(weights, PIPELINES[stage], data=data, device=device, results=results)
                entry["wholebody"] = {src: {"mpjpe_mm": round(r["mpjpe_mm"], 2), "frames": r.get("frames")}
                                      for src, r in results.items()}
            elif stage != "refiner" and Path(weights).is_file():
                entry["h36m"] = card(stage, PIPELINES[stage], weights)
        except Exception as e:  # keep the other stages' results: this is a one-shot on borrowed time
            entry = {"error": f"{type(e).__name__}: {e}"}
        entry["wall_s"] = round(time.time() - t_stage, 1)
        summary["stages"][stage] = entry
        print(f"[{stage}] {json.dumps(entry)}", flush=True)
        summary["wall_s"] = round(time.time() - t0, 1)
        write_json(out / "summary.json", summary)
    print(f"done in {time.time() - t0:.0f} s: {out / 'summary.json'}", flush=True)
    return 0 if all("error" not in s for s in summary["stages"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
