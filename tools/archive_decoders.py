"""Rebuild every earlier decoder (NAME-DIGEST.pt) from git history: see ``--help``."""

from neuralcodec.training.archive import main

if __name__ == "__main__":
    main()
