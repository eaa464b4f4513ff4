"""Training-only code (needs the ``train`` extra: pytorch-msssim, tqdm).

Nothing here is imported by the codec at run time.
"""
