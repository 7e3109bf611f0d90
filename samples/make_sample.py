"""Make ``samples/sports2d_clip.mp4`` (and its licence notice) from the Sports2D demo video.

The source is ``Sports2D/Demo/demo.mp4`` from the ``sports2d`` PyPI wheel (BSD-3-Clause):
1768x994, 30 fps, VP9 with audio, two people. This script keeps seconds START-END
(default 1.5-5.0, where both people are fully in view), downscales to WIDTH pixels wide
(default 960), drops the audio and re-encodes to H.264 (libx264, yuv420p) with PyAV,
then writes ``<out>.LICENSE``: a header saying where the clip comes from and what was
done, followed by the licence text found beside the source (``<source>.LICENSE``,
``LICENSE`` or ``LICENSE.txt``).

Usage (from the repository root)::

    python samples/make_sample.py /path/to/sports2d/Demo/demo.mp4 \
        [--start 1.5] [--end 5.0] [--width 960] [--out samples/sports2d_clip.mp4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from wsgcn_cli.io.atomic import atomic_open  # noqa: E402
from wsgcn_cli.io.video import VideoWriter, open_frames  # noqa: E402

HEADER = (
    "This clip (samples/{out}) is derived from Sports2D/Demo/demo.mp4 in the sports2d "
    "PyPI wheel (https://pypi.org/project/sports2d/), licensed BSD-3-Clause (notice "
    "below). Changes: trimmed to seconds {start:g}-{end:g} of the original, resized from "
    "{src_w}x{src_h} to {w}x{h}, audio removed, re-encoded from VP9 to H.264 "
    "(libx264 CRF {crf}) by samples/make_sample.py.\n"
)


def find_licence(source: Path) -> Path:
    for name in (source.with_suffix(".LICENSE"), source.parent / "LICENSE",
                 source.parent / "LICENSE.txt"):
        if name.is_file():
            return name
    raise SystemExit(f"no licence file found beside {source}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="Sports2D demo.mp4")
    parser.add_argument("--start", type=float, default=1.5, help="first second to keep")
    parser.add_argument("--end", type=float, default=5.0, help="keep frames before this second")
    parser.add_argument("--width", type=int, default=960, help="output width in pixels")
    parser.add_argument("--crf", type=int, default=20, help="x264 constant quality")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "sports2d_clip.mp4")
    args = parser.parse_args(argv)

    licence = find_licence(args.source)
    with open_frames(args.source) as src:
        w = args.width - args.width % 2
        h = round(src.height * w / src.width / 2) * 2
        with VideoWriter(args.out, src.fps, w, h, crf=args.crf, preset="slow") as out:
            for frame in src:
                if frame.time_s < args.start - 1e-6:
                    continue
                if frame.time_s >= args.end - 1e-6:
                    break
                out.write(cv2.resize(frame.image, (w, h), interpolation=cv2.INTER_AREA))
        n = out.frames_written
    header = HEADER.format(out=args.out.name, start=args.start, end=args.end,
                           src_w=src.width, src_h=src.height, w=w, h=h, crf=args.crf)
    with atomic_open(args.out.with_suffix(".LICENSE"), encoding="utf-8") as f:
        f.write(header + "\n" + licence.read_text(encoding="utf-8"))
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({n} frames, {w}x{h}, {src.fps:g} fps, {size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
