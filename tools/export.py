"""Export a training checkpoint to inference weights: see ``python tools/export.py --help``."""

from neuralcodec.training.export import main

if __name__ == "__main__":
    main()
