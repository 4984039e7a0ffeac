"""Screenshots of the Explore dock for the README: each tool at work on the shipped model.

Renders the window offscreen at 1600x1000 on models/mnist-attention.ckpt and the MNIST test images,
drives each tool as a user would (a drawn digit, a fork and its commitment curve, an edited latent,
a moved window, an interpolation) and saves ``resources/explore-TOOL.png``. Then writes a GIF of a
fork with the command line (``draw-studio trace``, ``explore fork``, ``export --gif``).

    python scripts/explore_screenshots.py [--data-dir ../shared/data] [--out resources] [--only TOOL ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("drawing", "fork", "latent", "window", "interpolate")
SIZE = (1600, 1000)
FORK_IMAGE, FORK_AT = 0, 16  # test image 0 (a 7), forked after 16 of 64 steps


def wait_for(app, condition, what: str, timeout_s: float = 600.0) -> None:
    """Let the window run until ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def two_stroke() -> list[tuple[float, float]]:
    """A hand-drawn-like 2 on the 28 x 28 pad (x, y in pixels)."""
    arc = [(8 + 6 * (1 - np.cos(a)), 10 - 5 * np.sin(a)) for a in np.linspace(0.2, np.pi, 12)]
    arc = [(20 - (x - 8), y) for x, y in arc][::-1]  # the top bow, left to right
    return [(9.0, 10.0), *arc[1:], (17.5, 13.0), (13.0, 17.0), (9.0, 21.0), (14.0, 21.0), (20.0, 21.0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "resources"))
    parser.add_argument("--only", nargs="*", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--no-gif", action="store_true", help="skip the fork GIF")
    args = parser.parse_args()
    out = Path(args.out)

    from draw_studio.gui.app import ensure_application, offscreen_if_headless, quiet_offscreen_warnings

    offscreen_if_headless()
    import torch

    torch.set_num_threads(1)
    app = ensure_application()
    quiet_offscreen_warnings()
    from PySide6.QtCore import QSettings, Qt

    from draw_studio.gui.main_window import MainWindow

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "shots.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, interactive=False)
    window.training.data_dir.setText(args.data_dir)
    window.resize(*SIZE)
    window.show()
    app.processEvents()
    if not window.open_startup():
        raise SystemExit(f"could not open the shipped model: {window.last_error}")
    docks, explore, document = window.docks, window.explore, window.document
    explore.show_tool("drawing")
    window.resizeDocks([docks["exploreDock"], docks["timelineDock"], docks["galleryDock"]], [640, 560, 400],
                       Qt.Orientation.Horizontal)
    window.resizeDocks([docks["exploreDock"], docks["informationDock"]], [690, 260], Qt.Orientation.Vertical)
    steps = document.steps

    def shot(name: str) -> None:
        for _ in range(5):
            app.processEvents()
            time.sleep(0.05)
        path = out / f"explore-{name}.png"
        if not window.save_screenshot(path):
            raise SystemExit(f"could not save {path}: {window.last_error}")
        print(f"wrote {path}")

    if "drawing" in args.only:
        panel = explore.show_tool("drawing")
        panel.pad.diameter = 2.2
        panel.pad.draw_stroke(two_stroke())
        wait_for(app, lambda: panel.result is not None, "the drawing's reconstruction")
        wait_for(app, lambda: panel.test is not None or not panel.test_runs.pending, "the test bounds")
        document.set_step(steps // 4)
        shot("drawing")

    recon = document.reconstructions
    if recon is None or recon.n <= FORK_IMAGE or recon.source == "files":
        window.gallery.reconstructions_requested.emit(0, 8)
        wait_for(app, lambda: document.reconstructions is not None and document.reconstructions.n == 8,
                 "the test reconstructions")
    document.set_trace(document.reconstructions, image_index=FORK_IMAGE, step=steps)

    if "fork" in args.only:
        panel = explore.show_tool("fork")
        document.set_step(FORK_AT)
        panel.fork_at(FORK_AT)
        panel.compute_curve()
        wait_for(app, lambda: panel.forked is not None and panel.curve is not None, "the fork and its curve")
        document.set_step(steps)
        shot("fork")

    if "latent" in args.only:
        trace = document.reconstructions
        document.set_trace(trace, image_index=FORK_IMAGE, step=steps)
        mu, sigma = trace.mu[FORK_IMAGE], trace.sigma[FORK_IMAGE]  # (T, Z)
        kl = 0.5 * (mu ** 2 + sigma ** 2 - 1) - np.log(sigma)
        kl[:4] = kl[16:] = -np.inf  # an early step that matters
        step, latent = np.unravel_index(int(np.argmax(kl)), kl.shape)
        window.latents.refresh()
        explore.edit_cell(int(step), int(latent))
        panel = explore.latent
        value = -3.0 if mu[step, latent] > 0 else 3.0
        panel.slider.setValue(int(value * 100))
        wait_for(app, lambda: panel.edited_value == value, "the edited latent")
        document.set_step(int(step) + 6)
        shot("latent")

    if "window" in args.only:
        document.set_trace(document.reconstructions, image_index=FORK_IMAGE, step=10)
        panel = explore.show_tool("window")
        panel.set_window("write", gx=9.0, gy=20.0)
        wait_for(app, lambda: panel.result is not None, "the moved window")
        shot("window")

    if "interpolate" in args.only:
        document.set_step(steps)
        panel = explore.show_tool("interpolate")
        panel.set_ends(("test", 0), ("test", 1))
        panel.method.setCurrentText("spherical")
        panel.run()
        wait_for(app, lambda: panel.result is not None, "the interpolation")
        document.set_trace(document.reconstructions, image_index=FORK_IMAGE, step=steps)
        shot("interpolate")

    window.close()
    if not args.no_gif:
        fork_gif(args.data_dir, out)
    return 0


def fork_gif(data_dir: str, out: Path) -> None:
    """The fork of the README as a GIF, made with the command line."""
    with tempfile.TemporaryDirectory() as folder:
        trace, forked = Path(folder) / "test.h5", Path(folder) / "fork.h5"
        for command in (["trace", "--indices", str(FORK_IMAGE), "--data-dir", data_dir, "--out", str(trace)],
                        ["explore", "fork", str(trace), "--image", "0", "--at", str(FORK_AT), "-k", "16", "--seed",
                         "0", "--out", str(forked)],
                        ["export", str(forked), "--gif", str(out / "explore-fork.gif"), "--scale", "3",
                         "--columns", "8", "--fps", "12"]):
            print("draw-studio", " ".join(command))
            subprocess.run([sys.executable, "-m", "draw_studio", *command], check=True)


if __name__ == "__main__":
    sys.exit(main())
