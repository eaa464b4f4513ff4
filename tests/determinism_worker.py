"""Run one side of the determinism matrix in a fresh process (env set by the caller), for a
model of any architecture (its latent codec codes and decodes the sections).

python determinism_worker.py encode MODEL IMAGE.npy OUT.nc     (also OUT.nc.npz: the encoder's ŷ)
python determinism_worker.py decode MODEL IN.nc OUT.npz        (latents + pixels)
python determinism_worker.py probe MODEL IMAGE.npy OUT.npz     (float32 g_a output: the control)
"""

import sys

import numpy as np
import torch

from neuralcodec import api, codec
from neuralcodec.latent_codecs import file_latents
from neuralcodec.zoo import load_model


def main() -> None:
    mode, model, src, dst = sys.argv[1:5]
    if mode == "encode":
        image = np.load(src)
        data = api.compress(image, quality=70, model=model, device="cpu", effort=0)  # the analysed latents
        open(dst, "wb").write(data)
        loaded = load_model(model)
        y, z = codec.analyse(loaded, image[None], 70, "cpu")
        coded = loaded.latent_codec.encode(y.numpy(), z.numpy(), keep_y_hat=True)
        assert api.read_header(data).model_sections() == coded.sections
        np.savez(dst + ".npz", latents=coded.y_hat)
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
    y_hat = file_latents(loaded, container)
    pixels = np.asarray(api.decompress(data, device="cpu", model=model, backend="torch"))
    numpy_pixels = np.asarray(api.decompress(data, model=model, backend="numpy"))
    np.savez(dst, latents=y_hat, pixels=pixels, numpy_pixels=numpy_pixels)


if __name__ == "__main__":
    main()
