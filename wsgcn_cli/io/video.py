"""Frames in and out: read a video, an image or a folder of images; write H.264 video.

Reading (:func:`open_frames`) streams the frames one at a time with PyAV (video) or
OpenCV (images), so memory does not grow with the length of a video. Every frame comes
out as an upright RGB ``uint8`` array of shape (H, W, 3) in image coordinates (origin
top-left, x right, y down), with its time in seconds.

Writing (:class:`VideoWriter`) encodes H.264 (libx264, yuv420p) at a constant frame
rate through a temporary file that is renamed only when the video is complete.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from wsgcn_cli.background import BackgroundWorker
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.atomic import commit_temp_path, create_temp_path, discard_temp_path

#: File name extensions read as still images (case-insensitive).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm"}
)

#: Nominal frame rate given to a folder of images when the caller gives none: frame
#: ``i`` gets ``time_s = i / fps``. A single image has ``fps = 0.0`` and time 0.
DEFAULT_FOLDER_FPS = 25.0


class Frame(NamedTuple):
    """One decoded frame.

    Attributes:
        index: 0-based position in the source.
        time_s: seconds since the first frame (from the video's presentation
            timestamps; ``index / fps`` for a folder of images; 0.0 for one image).
        image: (H, W, 3) uint8 RGB, upright (rotation metadata applied).
    """

    index: int
    time_s: float
    image: np.ndarray


def _natural_key(name: str):
    """Sort key putting ``frame2.png`` before ``frame10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _read_image(path: Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB, EXIF orientation applied."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise WsgcnError(f"cannot read {path}: {e.strerror}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise WsgcnError(f"{path} is not a readable image (corrupt or unsupported format)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FrameSource:
    """Frames of a video, an image or a folder of images; create with :func:`open_frames`.

    Iterate over it (once) to get :class:`Frame` objects; use it as a context manager
    (or call :meth:`close`) to release the file.

    Attributes:
        path: the input path.
        kind: ``"video"``, ``"image"`` or ``"folder"``.
        fps: frames per second. For a video, the stream's average frame rate (for a
            variable-frame-rate video the frame times still come from the real
            timestamps; only this nominal rate is an average). For a folder, the
            ``folder_fps`` given to :func:`open_frames` (default
            :data:`DEFAULT_FOLDER_FPS`, a nominal value). ``0.0`` for a single image.
        width, height: frame size in pixels, after rotation.
        num_frames: number of frames, or None if the container does not say (a
            video's count is the container's and may differ by a frame or two from
            the decoded count for unusual files).
        rotation: degrees counter-clockwise applied to a video's stored frames to make
            them upright (0, 90, 180 or -90; display-matrix rotation metadata, as
            written by phones). Mirroring in a display matrix is ignored.

    Raises (while iterating):
        WsgcnError: the video cannot be decoded past some frame (corrupt or truncated
            file), or an image in a folder is unreadable or of a different size.
    """

    def __init__(self, path: Path, kind: str, fps: float, width: int, height: int,
                 num_frames: int | None, frames: Iterator[Frame], closer=None,
                 rotation: int = 0):
        self.path = path
        self.kind = kind
        self.fps = float(fps)
        self.width = int(width)
        self.height = int(height)
        self.num_frames = num_frames
        self.rotation = rotation
        self._frames = frames
        self._closer = closer
        self._started = False

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise RuntimeError("a FrameSource can be iterated only once; open it again")
        self._started = True
        return self._frames

    def close(self) -> None:
        """Release the file (idempotent)."""
        if self._closer is not None:
            closer, self._closer = self._closer, None
            closer()

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"FrameSource({str(self.path)!r}, kind={self.kind!r}, fps={self.fps:g}, "
                f"size={self.width}x{self.height}, num_frames={self.num_frames})")


def open_frames(path: str | os.PathLike, *, folder_fps: float = DEFAULT_FOLDER_FPS) -> FrameSource:
    """Open a video file, an image file or a folder of images as a stream of frames.

    Args:
        path: a video (anything FFmpeg reads: mp4, mov, mkv, webm, avi, ...), an image
            (png, jpg, bmp, tif, webp, ...) or a folder whose image files (by
            extension, hidden files skipped) are the frames in natural order
            (``f2.png`` before ``f10.png``).
        folder_fps: nominal frame rate of a folder of images (sets ``fps`` and the
            frame times); ignored for videos (real timestamps) and single images.

    Returns:
        A :class:`FrameSource`. The first frame is decoded here to check the input.

    Raises:
        WsgcnError: the path is missing; it is neither a video nor an image (e.g. a
            text file); the file is corrupt or truncated; it has no video stream or
            zero frames; the folder holds no images; ``folder_fps`` is not positive.
    """
    path = Path(path)
    if not path.exists():
        raise WsgcnError(f"input {path} does not exist")
    if path.is_dir():
        return _open_folder(path, folder_fps)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = _read_image(path)
        h, w = image.shape[:2]
        return FrameSource(path, "image", 0.0, w, h, 1, iter([Frame(0, 0.0, image)]))
    return _open_video(path)


def _open_folder(path: Path, fps: float) -> FrameSource:
    if not fps > 0:
        raise WsgcnError(f"frame rate for the image folder must be positive, got {fps}")
    try:
        files = [p for p in path.iterdir()
                 if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                 and p.is_file()]
    except OSError as e:
        raise WsgcnError(f"cannot list folder {path}: {e.strerror}") from None
    if not files:
        raise WsgcnError(
            f"folder {path} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    files.sort(key=lambda p: _natural_key(p.name))
    first = _read_image(files[0])
    h, w = first.shape[:2]

    def frames() -> Iterator[Frame]:
        for i, file in enumerate(files):
            image = first if i == 0 else _read_image(file)
            if image.shape[:2] != (h, w):
                raise WsgcnError(
                    f"image {file} is {image.shape[1]}x{image.shape[0]} but the folder's "
                    f"first image is {w}x{h}; all frames of a folder must have one size")
            yield Frame(i, i / fps, image)

    return FrameSource(path, "folder", fps, w, h, len(files), frames())


def _ffmpeg_message(e: Exception) -> str:
    """Short reason from a PyAV error, without the file name it repeats."""
    import av

    if isinstance(e, av.FFmpegError) and e.strerror:
        return str(e.strerror)
    return str(e)


def _open_video(path: Path) -> FrameSource:
    import av

    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as e:
        raise WsgcnError(
            f"{path} is not a readable video or image ({_ffmpeg_message(e)}: not a media "
            f"file, or corrupt or truncated)") from None
    except UnicodeDecodeError:  # PyAV decodes the container's metadata strings: garbage there
        raise WsgcnError(f"{path} is not a readable video or image (corrupt metadata)") from None
    try:
        if not container.streams.video:
            raise WsgcnError(f"{path} has no video stream (or a video track without frames)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # let the decoder use frame/slice threads
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        decoded = container.decode(stream)
        try:
            first = next(decoded)
        except StopIteration:
            raise WsgcnError(f"{path} has zero video frames") from None
        except av.FFmpegError as e:
            raise WsgcnError(f"{path} cannot be decoded ({_ffmpeg_message(e)}; "
                             f"corrupt or truncated file)") from None
    except BaseException:
        container.close()
        raise

    # Display-matrix rotation (counter-clockwise degrees) -> quarter turns for np.rot90.
    rotation = int(round((first.rotation or 0) / 90.0)) * 90
    quarter_turns = (rotation // 90) % 4
    stored_w, stored_h = first.width, first.height
    width, height = (stored_h, stored_w) if quarter_turns % 2 else (stored_w, stored_h)
    time_base = float(stream.time_base) if stream.time_base else 0.0
    pts0 = first.pts if first.pts is not None else 0

    def frames() -> Iterator[Frame]:
        index = 0
        try:
            frame = first
            while True:
                if frame.pts is not None and time_base > 0:
                    time_s = (frame.pts - pts0) * time_base
                else:
                    time_s = index / fps if fps > 0 else 0.0
                # width/height force one size even if the stream changes resolution.
                image = frame.to_ndarray(format="rgb24", width=stored_w, height=stored_h)
                if quarter_turns:
                    image = np.ascontiguousarray(np.rot90(image, quarter_turns))
                yield Frame(index, float(time_s), image)
                index += 1
                last_pts = frame.pts
                frame = next(decoded, None)
                if frame is None:
                    break
        except av.FFmpegError as e:
            raise WsgcnError(
                f"{path}: decoding failed after {index} frames ({_ffmpeg_message(e)}; "
                f"corrupt or truncated file)") from None
        _check_complete(path, stream, index, last_pts, fps)

    return FrameSource(path, "video", fps, width, height, stream.frames or None, frames(),
                       closer=container.close, rotation=rotation)


def _check_complete(path: Path, stream, decoded: int, last_pts: int | None, fps: float) -> None:
    """Raise if a video ended well before the length its container declares.

    Threaded decoders do not report a packet cut short by the end of a truncated file:
    they just stop. A video counts as truncated when fewer frames were decoded than the
    container declares *and* the last frame ends more than two frame intervals before
    the declared duration (the second test spares files whose edit list hides frames).
    """
    declared = stream.frames or 0
    if not (declared and decoded < declared and last_pts is not None and stream.duration
            and stream.time_base and fps > 0):
        return
    time_base = float(stream.time_base)
    end = ((stream.start_time or 0) + stream.duration) * time_base
    last_end = last_pts * time_base + 1.0 / fps
    if last_end < end - 2.0 / fps:
        raise WsgcnError(
            f"{path} is truncated or corrupt: decoding stopped after {decoded} of {declared} "
            f"frames ({last_end:.2f} s of {end:.2f} s)")


def _even(n: int) -> int:
    return n + (n % 2)


def _as_rate(fps: float | Fraction) -> Fraction:
    """Frame rate as an exact fraction (29.97002997 -> 30000/1001)."""
    return fps if isinstance(fps, Fraction) else Fraction(float(fps)).limit_denominator(1001)


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")


class VideoWriter:
    """Encode RGB frames to an H.264 mp4 at a constant frame rate, atomically.

    The video goes to a temporary file beside ``path`` (``.<stem>.<random>.partial.mp4``)
    that is renamed to ``path`` by :meth:`close` only if every frame was encoded;
    :meth:`abort` (or leaving the ``with`` block by an exception, ``KeyboardInterrupt``
    included) deletes it and leaves ``path`` untouched.

    Encoding: libx264, yuv420p (BT.601 limited range, tagged as such), constant quality
    ``crf`` (default 23), mp4 with the index at the front (``+faststart``) so that
    players can start before the end is loaded. The default ``preset="ultrafast"`` is
    the cheapest: on a 1438x720 overlay it costs about 4.7 ms of CPU per frame and
    ~10 KiB per frame, against 10.4 ms and ~1.6 KiB for ``"veryfast"`` (measured on the
    2-core development machine; pass ``preset="veryfast"`` when file size matters more
    than time). ``codec_options`` adds FFmpeg/x264 options (e.g. ``{"threads": "1"}``).
    Odd frame sizes are padded by one black pixel column/row at the right/bottom (yuv420p
    needs even sizes); ``width``/``height`` remain the size of the frames you pass.

    Frame ``n`` is shown at ``n / fps`` (constant frame rate). For a variable-frame-rate
    input, pass its average rate: every input frame is written exactly once, so the
    total duration matches while individual frames may be shown up to the input's
    jitter early or late.

    With ``threaded=True`` (default), colour conversion and encoding run in a background
    thread (x264 and the conversion release the GIL), so they overlap with detection;
    :meth:`write` blocks only when ``queue_size`` frames are waiting. Drawing can move to
    that thread too: ``writer.write_rendered(compose_overlay, frame, xy, score, pose3d)``.
    ``nice`` lowers that thread's priority (and x264's threads', which it starts), so
    that it takes the CPU only when the producer does not need it.

    Args:
        path: output file, normally ``.mp4``.
        fps: frame rate (> 0), a float or a :class:`fractions.Fraction`.
        width, height: size of the frames that will be written, pixels.

    Raises:
        WsgcnError: ``fps``/size not positive, the output folder missing or not
            writable, or the encoder failing (e.g. disk full).
    """

    def __init__(self, path: str | os.PathLike, fps: float | Fraction, width: int,
                 height: int, *, crf: int = 23, preset: str = "ultrafast",
                 threaded: bool = True, queue_size: int = 8, nice: int = 0,
                 codec_options: dict[str, str] | None = None):
        import av

        if not (fps and float(fps) > 0):
            raise WsgcnError(f"cannot encode a video at {fps} frames per second; "
                             "give a positive frame rate")
        if width <= 0 or height <= 0:
            raise WsgcnError(f"cannot encode frames of size {width}x{height}")
        if preset not in X264_PRESETS:
            raise WsgcnError(f"unknown x264 preset {preset!r}; use one of {', '.join(X264_PRESETS)}")
        self.path = Path(path)
        self.fps = float(fps)
        self.width, self.height = int(width), int(height)
        self.frames_written = 0
        self._temp = create_temp_path(self.path)
        try:
            self._container = av.open(str(self._temp), mode="w", format="mp4",
                                      options={"movflags": "+faststart"})
            rate = _as_rate(fps)
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = _even(self.width), _even(self.height)
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = 1 / rate
            stream.codec_context.colorspace = 6  # SMPTE 170M (BT.601), as cv2 converts
            stream.codec_context.color_primaries = 6
            stream.codec_context.color_trc = 6
            stream.codec_context.color_range = 1  # limited ("tv") range
            stream.options = {"preset": preset, "crf": str(crf), **(codec_options or {})}
            self._stream = stream
        except BaseException as e:
            self._close_container()
            discard_temp_path(self._temp)
            if isinstance(e, av.FFmpegError):
                raise WsgcnError(f"cannot create video {self.path}: {_ffmpeg_message(e)}") from None
            raise
        self._state = "open"  # -> "closed" | "aborted"
        self._error: BaseException | None = None
        self._worker = (BackgroundWorker(self._process, queue_size, name="VideoWriter", nice=nice)
                        if threaded else None)

    # -- encoding ---------------------------------------------------------------
    def _encode(self, image: np.ndarray | None) -> None:
        import av
        import cv2

        if image is None:
            packets = self._stream.encode(None)  # flush delayed frames
        else:
            pad_w, pad_h = _even(self.width) - self.width, _even(self.height) - self.height
            if pad_w or pad_h:
                image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT)
            yuv = cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = self.frames_written
            frame.time_base = self._stream.codec_context.time_base
            packets = self._stream.encode(frame)
            self.frames_written += 1
        self._container.mux(packets)

    def _process(self, item) -> None:
        if isinstance(item, tuple):  # (render, args, kwargs) from write_rendered
            item = self._check_frame(item[0](*item[1], **item[2]))
        self._encode(item)

    def _raise_error(self) -> None:
        import av

        e = self._error
        if isinstance(e, av.FFmpegError):
            raise WsgcnError(f"encoding {self.path} failed: {_ffmpeg_message(e)}") from None
        if isinstance(e, OSError):
            raise WsgcnError(f"writing {self.path} failed: {e.strerror or e}") from None
        raise e

    def _check_frame(self, image) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.shape != (self.height, self.width, 3) \
                or image.dtype != np.uint8:
            got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image)
            raise ValueError(f"expected a ({self.height}, {self.width}, 3) uint8 RGB frame, "
                             f"got {got}")
        return image

    def _submit(self, item, render: bool) -> None:
        if self._state != "open":
            raise RuntimeError(f"VideoWriter for {self.path} is {self._state}")
        try:
            if self._worker is not None:
                self._worker.submit(item)  # re-raises an error of an earlier frame
            else:
                self._process(item)
        except BaseException as e:
            self._error = e
            self.abort()
            self._raise_error()

    def write(self, image: np.ndarray) -> None:
        """Append one frame: (height, width, 3) uint8 RGB.

        The array is copied when encoding in the background, so the caller may reuse it.

        Raises:
            ValueError: wrong shape or dtype (a programming error).
            RuntimeError: the writer is closed or aborted.
            WsgcnError: encoding a previous frame failed (the video is aborted).
        """
        self._check_frame(image)
        self._submit(np.array(image, copy=True) if self._worker is not None else image, False)

    def write_rendered(self, render, /, *args, **kwargs) -> None:
        """Append the frame ``render(*args, **kwargs)``, computed in the encoder thread.

        Use this to move frame drawing (e.g. :func:`wsgcn_cli.render.overlay.compose_overlay`)
        off the detection thread: the arguments are kept until the frame is encoded, so
        do not modify them afterwards. ``render`` must return a (height, width, 3) uint8
        RGB array. Without a background thread it is called at once.

        Raises:
            RuntimeError: the writer is closed or aborted.
            WsgcnError: encoding or rendering a previous frame failed (reported late, as
                the frame is rendered in the background; other exceptions from ``render``
                are re-raised as they are).
        """
        self._submit((render, args, kwargs), True)

    def _stop_worker(self, discard: bool = False) -> None:
        if self._worker is not None:
            worker, self._worker = self._worker, None
            if discard:
                worker.abort()
            else:
                try:
                    worker.close()
                except BaseException as e:
                    self._error = e

    def _close_container(self) -> None:
        container, self._container = getattr(self, "_container", None), None
        if container is not None:
            try:
                container.close()
            except Exception:
                pass

    def close(self) -> Path:
        """Finish encoding, then rename the temporary file to ``path``; returns ``path``.

        Raises:
            WsgcnError: encoding failed or no frame was written (nothing is left on disk).
        """
        if self._state == "closed":
            return self.path
        if self._state == "aborted":
            raise RuntimeError(f"VideoWriter for {self.path} was aborted")
        try:
            self._stop_worker()
            if self._error is None:
                if self.frames_written == 0:
                    raise WsgcnError(f"no frames to write to {self.path}")
                try:
                    self._encode(None)
                    self._container.close()
                    self._container = None
                except BaseException as e:
                    self._error = e
            if self._error is not None:
                self._raise_error()
        except BaseException:
            self.abort()
            raise
        commit_temp_path(self._temp, self.path)
        self._state = "closed"
        return self.path

    def abort(self) -> None:
        """Stop encoding and delete the temporary file; ``path`` is left untouched."""
        if self._state != "open":
            return
        self._state = "aborted"
        self._stop_worker(discard=True)
        self._close_container()
        discard_temp_path(self._temp)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
