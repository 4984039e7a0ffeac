"""Start the DRAW Studio window: ``python main.py [CKPT | TRACE.h5 | LOG.h5]``."""

import sys

from draw_studio.cli import main

if __name__ == "__main__":
    sys.exit(main(["gui", *sys.argv[1:]]))
