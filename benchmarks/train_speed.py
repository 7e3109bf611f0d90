"""Training throughput of the SemGCN + non-local lifter: fp32 against bf16 autocast.

One training step as the Trainer runs it (forward under autocast when on, MPJPE loss in
fp32, backward, Adam in fp32) on random inputs of the real shapes, for each batch size,
thread count and precision; samples per second over ``--seconds`` after a warm-up.
Run it on an otherwise idle machine: it measures the CPU it is given.

    python benchmarks/train_speed.py [--threads 1 2] [--batch 256 1024] [--seconds 5]

Writes ``benchmarks/results/train_speed.json``; ``--ab RUN_TRUE.json RUN_FALSE.json``
adds the learning curves of a bf16-on / bf16-off A/B run of ``wsgcn train`` (same
settings, ``--set bf16=true|false``), so accuracy and speed sit side by side.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rate(model, opt, batch: int, bf16: bool, seconds: float) -> float:
    import torch

    x, y = torch.randn(batch, 17, 2), torch.randn(batch, 17, 3)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = model(x)
        loss = torch.linalg.vector_norm(pred.float() - y, dim=-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        step()
        n += batch
    return n / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--ab", nargs=2, metavar=("BF16_TRUE_CURVE", "BF16_FALSE_CURVE"))
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "train_speed.json"))
    args = p.parse_args()

    import torch

    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.models.registry import build_model
    from wsgcn_cli.train.trainer import bf16_supported

    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch:
            for bf16 in (False, True):
                torch.manual_seed(0)
                model = build_model("semgcn_nonlocal", hidden=128, num_blocks=4, dropout=0.0)
                opt = torch.optim.Adam(model.parameters(), 1e-3)
                r = rate(model, opt, batch, bf16, args.seconds)
                rows.append({"threads": threads, "batch": batch, "bf16": bf16, "samples_per_s": round(r, 1)})
                print(f"{threads} threads, batch {batch:5d}, bf16 {'on ' if bf16 else 'off'}: {r:7.0f} samples/s",
                      flush=True)
    doc = {"machine": f"{platform.machine()} {platform.processor()}", "torch": torch.__version__,
           "bf16_supported": bf16_supported(torch.device("cpu")), "rows": rows}
    if args.ab:
        doc["ab"] = {name: json.loads(Path(f).read_text())["points"] for name, f in zip(("bf16", "fp32"), args.ab)}
    write_json(args.out, doc)


if __name__ == "__main__":
    main()
