"""Ask DRAW questions: re-run parts of a recorded run with something changed (no Qt).

Each tool is a function returning an :class:`ExploreResult` (a trace, and the ``intervention``
that says what was changed), written with :func:`write_result` as a trace file that every trace
reader opens; ``draw-studio explore TOOL`` is the command line of each.

- :func:`reconstruct_image` / :func:`reconstruct_pixels` (``reconstruct``, ``drawing``): reconstruct a
  picture, and its bound against the test set's;
- :func:`fork` (``fork``): K continuations of an image that keep its z_1..z_t and draw the rest from the prior;
- :func:`commitment` (``fork``): the commitment curve over every fork point t = 0..T;
- :func:`edit_latent`, :class:`LatentEditor` for live edits (``edit``): set z_s[k], draw steps s..T-1 again;
- :func:`move_window`, :class:`WindowMover` for live drags (``window``): override the read / write window
  of step s, draw steps s..T-1 again;
- :func:`interpolate` (``interpolate``): decode interpolations of two images' posterior means.

Underneath, :class:`~draw_studio.explore.replay.ImageRun` replays one image of a trace from its
latents (``DRAW.run_steps``) and continues it from any step. Steps are indexed s = 0..T-1 as in
trace files (the paper's t = s + 1).
"""

from .edit import LatentEditor, edit_latent
from .fork import commitment, fork
from .interpolate import interpolate, posterior_means
from .reconstruct import SplitBounds, reconstruct_image, reconstruct_pixels, split_bounds
from .replay import ImageRun
from .result import ExploreResult, read_extra, read_intervention, write_result
from .window import WindowMover, move_window, parse_window

__all__ = ["ExploreResult", "ImageRun", "LatentEditor", "SplitBounds", "WindowMover", "commitment", "edit_latent",
           "fork", "interpolate", "move_window", "parse_window", "posterior_means", "read_extra", "read_intervention",
           "reconstruct_image", "reconstruct_pixels", "split_bounds", "write_result"]
