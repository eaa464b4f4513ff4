"""Train a neuralcodec model: see ``python tools/train.py --help``."""

from neuralcodec.training.train import main

if __name__ == "__main__":
    main()
