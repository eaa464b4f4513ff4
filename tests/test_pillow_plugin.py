import numpy as np
import pytest
from PIL import Image

import neuralcodec.pillow_plugin  # noqa: F401  (registers the format)


def test_save_and_open_through_pillow(tmp_path, image, tiny_model):
    path = tmp_path / "x.nc"
    Image.fromarray(image).save(path, quality=80, model=tiny_model)
    assert path.read_bytes()[:4] == b"NCDC"
    with Image.open(path) as im:
        assert im.format == "NC"
        assert im.size == (96, 64) and im.mode == "RGB"
        assert im.info["quality"] == pytest.approx(80)
        # The file names model 'tiny', which is not shipped: decoding needs it installed.
        from neuralcodec.errors import ModelMismatchError

        with pytest.raises(ModelMismatchError):
            im.load()


def test_open_decodes_with_shipped_model(tmp_path, image):
    from neuralcodec.zoo import available_models

    if "msssim" not in available_models():
        pytest.skip("no shipped msssim weights in this checkout")
    path = tmp_path / "x.nc"
    Image.fromarray(image).save(path, quality=60)
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.shape == image.shape


def test_non_nc_files_are_not_claimed(tmp_path, image):
    path = tmp_path / "x.png"
    Image.fromarray(image).save(path)
    with Image.open(path) as im:
        assert im.format == "PNG"


def test_save_with_effort_refines_and_matches_the_api(tmp_path, image, tiny_model):
    import neuralcodec

    path = tmp_path / "x.nc"
    Image.fromarray(image).save(path, quality=70, model=tiny_model, effort=2)
    assert path.read_bytes() == neuralcodec.compress(image, 70, tiny_model, effort=2)


@pytest.mark.parametrize("effort", [-1, 10, 2.5, "high"])
def test_save_with_a_bad_effort_raises_value_error(tmp_path, image, tiny_model, effort):
    with pytest.raises(ValueError, match="effort"):
        Image.fromarray(image).save(tmp_path / "x.nc", model=tiny_model, effort=effort)
