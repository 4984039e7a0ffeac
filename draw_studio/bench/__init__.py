"""``draw-studio bench``: measured speed of training, generation, traces, eval and the window."""
