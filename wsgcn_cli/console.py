"""The console and progress bars (ground floor: any module may import this one).

Messages, warnings and tables go to standard error through :func:`get_console` (rich);
long loops show :func:`progress_bar`. Both are silent with ``quiet``.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator


def get_console(quiet: bool = False):
    """A rich ``Console`` writing to standard error; prints nothing when ``quiet``."""
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, quiet: bool = False) -> Iterator[Callable]:
    """A rich progress bar (rich's default console); yields ``advance(done, new_total=None)``.

    ``done`` is the number of items finished so far (not an increment); ``total`` (or a
    later ``new_total``) the number expected, None when unknown. A no-op when ``quiet``.
    """
    if quiet:
        yield lambda done, new_total=None: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(done, new_total=None):
            bar.update(task, completed=done, total=new_total or bar.tasks[0].total)

        yield advance
