"""wsgcn: video of people to 3D human pose, offline, on a CPU or a GPU.

The Python API mirrors the command line: see :mod:`wsgcn_cli.api`.
"""

__version__ = "0.1.0"
