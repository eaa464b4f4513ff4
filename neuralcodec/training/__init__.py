"""Training-only code (needs the ``train`` extra: compressai, pytorch-msssim).

Nothing here is imported by the codec at run time.
"""
