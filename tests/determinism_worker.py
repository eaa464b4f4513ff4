"""Run one side of the determinism matrix in a fresh process (env set by the caller).

python determinism_worker.py encode MODEL IMAGE.npy OUT.nc     (also OUT.nc.npz: the encoder's ŷ)
python determinism_worker.py decode MODEL IN.nc OUT.npz        (latents + pixels)
python determinism_worker.py probe MODEL IMAGE.npy OUT.npz     (float32 g_a output: the control)
"""

import sys

import numpy as np
import torch

from neuralcodec import api, codec
from neuralcodec.container import SectionType
from neuralcodec.zoo import load_model


def main() -> None:
    mode, model, src, dst = sys.argv[1:5]
    if mode == "encode":
        image = np.load(src)
        data = api.compress(image, quality=70, model=model, device="cpu", effort=0)  # the analysed latents
        open(dst, "wb").write(data)
        loaded = load_model(model)
        y, z = codec.analyse(loaded, image[None], 70, "cpu")
        streams = codec.encode_latents(loaded, y, z, keep_y_hat=True)
        container = api.read_header(data)
        assert container.section(SectionType.Z) == [streams.z]
        assert container.section(SectionType.Y) == streams.y
        np.savez(dst + ".npz", latents=streams.y_hat.numpy())
        return
    if mode == "probe":
        loaded = load_model(model)
        x = torch.from_numpy(np.load(src)).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            np.savez(dst, output=loaded.transforms.g_a(x).numpy())
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
    pixels = np.asarray(api.decompress(data, device="cpu", model=model, backend="torch"))
    numpy_pixels = np.asarray(api.decompress(data, model=model, backend="numpy"))
    np.savez(dst, latents=y_hat.numpy(), pixels=pixels, numpy_pixels=numpy_pixels)


if __name__ == "__main__":
    main()
