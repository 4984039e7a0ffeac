"""DRAW Studio: train, watch and explain DRAW (Gregor et al., 2015).

The core package (everything outside ``draw_studio.gui``) is pure PyTorch and
imports no Qt, so every feature also runs headless from the command line.
"""

__version__ = "0.1.0"
SOFTWARE = f"draw-studio {__version__}"
