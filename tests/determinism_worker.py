"""Run one side of the determinism matrix in a fresh process (env set by the caller).

python determinism_worker.py encode MODEL IMAGE.npy OUT.nc
python determinism_worker.py decode MODEL IN.nc OUT.npz   (latents + pixels)
"""

import sys

import numpy as np

from neuralcodec import api, codec
from neuralcodec.container import SectionType


def main() -> None:
    mode, model, src, dst = sys.argv[1:5]
    if mode == "encode":
        data = api.compress(np.load(src), quality=70, model=model, device="cpu")
        open(dst, "wb").write(data)
        return
    data = open(src, "rb").read()
    container = api.read_header(data)
    h = container.header
    loaded = api.model_for(h, model)
    y_hat = codec.decode_latents(
        loaded,
        container.section(SectionType.Z)[0],
        container.section(SectionType.Y),
        h.height,
        h.width,
        h.band_rows,
    )
    pixels = np.asarray(api.decompress(data, device="cpu", model=model))
    np.savez(dst, latents=y_hat.numpy(), pixels=pixels)


if __name__ == "__main__":
    main()
