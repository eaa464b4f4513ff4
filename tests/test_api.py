import io

import numpy as np
import pytest
from PIL import Image

import neuralcodec
from neuralcodec.container import unpack
from neuralcodec.errors import InvalidInputError, ModelMismatchError


@pytest.mark.parametrize(
    "size", [(1, 1), (1, 17), (17, 1), (63, 65), (65, 63), (64, 64), (31, 130), (130, 31)]
)
def test_round_trip_any_size_decodes_to_exactly_that_size(tiny_model, make_image, size):
    h, w = size
    data = neuralcodec.compress(make_image(h, w, seed=h + w), quality=50, model=tiny_model)
    assert data[:4] == b"NCDC"
    image = neuralcodec.decompress(data, model=tiny_model)
    assert image.size == (w, h)
    assert image.mode == "RGB"


def test_accepts_pil_images_paths_and_arrays_alike(tiny_model, image, tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(image).save(path)
    from_array = neuralcodec.compress(image, 40, tiny_model)
    assert neuralcodec.compress(Image.fromarray(image), 40, tiny_model) == from_array
    assert neuralcodec.compress(path, 40, tiny_model) == from_array
    assert neuralcodec.compress(str(path), 40, tiny_model) == from_array


def test_file_bits_stay_within_one_percent_of_the_estimate(tiny_model, make_image):
    data, stats = neuralcodec.compress_with_stats(make_image(256, 320, seed=2), 90, tiny_model)
    header_bits = (len(data) - stats.actual_bits // 8) * 8
    assert stats.actual_bits <= 1.01 * stats.estimated_bits + 64
    assert len(data) * 8 == stats.actual_bits + header_bits


def test_quality_is_recorded_and_rate_grows_with_it(tiny_model, make_image):
    img = make_image(128, 128, seed=4)
    # The single-pass encoder: refinement (the default effort) minimises each quality's own
    # objective, which for the untrained tiny model may spend a few more bytes at quality 0
    # than at 50 (e.g. 882 vs 878 bytes).
    sizes = [len(neuralcodec.compress(img, q, tiny_model, effort=0)) for q in (0, 50, 100)]
    assert unpack(neuralcodec.compress(img, 33.5, tiny_model)).header.quality == pytest.approx(33.5)
    assert sizes[0] <= sizes[1] <= sizes[2]


@pytest.mark.parametrize("quality", [-1, 100.5, float("nan")])
def test_quality_outside_range_is_refused(tiny_model, image, quality):
    with pytest.raises(ValueError):
        neuralcodec.compress(image, quality, tiny_model)


def test_a_file_made_with_other_weights_names_the_model_it_needs(tiny_model, image, tmp_path):
    data = bytearray(neuralcodec.compress(image, 50, tiny_model))
    other = tmp_path / "other.pt"
    other.write_bytes(tiny_model.read_bytes() + b"\0")  # same tensors, different file hash
    with pytest.raises(ModelMismatchError, match="tiny"):
        neuralcodec.decompress(bytes(data), model=other)


def test_unknown_model_name_in_file_is_reported(image, tiny_model):
    data = neuralcodec.compress(image, 50, tiny_model)
    with pytest.raises(ModelMismatchError, match="not installed"):
        neuralcodec.decompress(data)  # 'tiny' is not a shipped model


def test_a_damaged_weights_file_is_a_clean_error(tmp_path, tiny_model, image):
    """torch.load's UnpicklingError / EOFError / KeyError used to escape the API (and the CLI's exit 2)."""
    import torch

    from neuralcodec.errors import InvalidModelError, ModelNotFoundError

    data = neuralcodec.compress(image, 50, tiny_model)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_model.read_bytes()[:1000])
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": 1}, foreign)  # a weights-file format marker and nothing else
    for bad, content in (
        ("garbage.pt", b"garbage"),
        ("empty.pt", b""),
        ("cut.pt", None),
        ("foreign.pt", None),
    ):
        path = tmp_path / bad
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(InvalidModelError, match=bad):
            neuralcodec.compress(image, 50, path)
        with pytest.raises(InvalidModelError, match=bad):
            neuralcodec.decompress(data, model=path)
    # A model named for decoding that does not exist is reported as such, not as the file's model.
    with pytest.raises(ModelNotFoundError, match="'nosuch'"):
        neuralcodec.decompress(data, model="nosuch")


def test_non_image_input_is_a_clean_error(tmp_path, tiny_model):
    bogus = tmp_path / "notes.png"
    bogus.write_text("hello")
    with pytest.raises(InvalidInputError):
        neuralcodec.compress(bogus, 50, tiny_model)
    with pytest.raises(InvalidInputError):
        neuralcodec.compress(tmp_path / "missing.png", 50, tiny_model)


def test_decompress_result_saves_as_png(tiny_model, image):
    out = neuralcodec.decompress(neuralcodec.compress(image, 50, tiny_model), model=tiny_model)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    assert np.asarray(Image.open(buf)).shape == image.shape


def test_runtime_path_never_imports_compressai_or_torchvision(tiny_model, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, neuralcodec\n"
        "assert 'torch' not in sys.modules, 'import neuralcodec must stay light'\n"
        f"data = neuralcodec.compress(np.zeros((8, 8, 3), np.uint8), 50, {str(tiny_model)!r})\n"
        f"neuralcodec.decompress(data, model={str(tiny_model)!r})\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('compressai', 'torchvision')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_compress_with_a_target_size_fits_and_comes_close(make_image):
    image = make_image(128, 160, seed=4)
    data = neuralcodec.compress(image, model="mse", target_size=2500)
    assert 0.9 * 2500 <= len(data) <= 2500
    assert neuralcodec.decompress(data).size == (160, 128)


def test_compress_with_an_unreachable_target_says_so(make_image):
    from neuralcodec.rate_control import TargetUnreachableError

    with pytest.raises(TargetUnreachableError):
        neuralcodec.compress(make_image(64, 64), model="mse", target_size=10)


def test_files_of_a_retrained_decoder_decode_once_its_earlier_weights_are_filed(
    tiny_model, image, tmp_path, monkeypatch
):
    """A release that retrains a decoder ships new weights; files of the earlier one must not be lost."""
    import torch

    from neuralcodec import numpy_decoder, weights_file, zoo

    shipped, archive = tmp_path / "shipped", tmp_path / "archive"
    shipped.mkdir()
    (shipped / "tiny.pt").write_bytes(tiny_model.read_bytes())
    monkeypatch.setattr(weights_file, "SHIPPED_WEIGHTS", shipped)
    monkeypatch.setenv(zoo.WEIGHTS_PATH_VARIABLE, str(archive))
    zoo.load_model.cache_clear()
    data = neuralcodec.compress(image, 50, "tiny")
    before = np.asarray(neuralcodec.decompress(data))

    state = torch.load(tiny_model, weights_only=True)  # the "retrained" release: another decoder
    key = next(k for k in state["transforms"] if k.startswith("g_s."))
    state["transforms"][key] = state["transforms"][key] * 0.5
    torch.save(state, shipped / "tiny.pt")
    zoo.load_model.cache_clear()
    numpy_decoder.load.cache_clear()
    needed = zoo.decoder_file_name("tiny", zoo.file_digest(tiny_model))
    with pytest.raises(ModelMismatchError, match=needed):
        neuralcodec.decompress(data)
    with pytest.raises(ModelMismatchError, match=needed):
        numpy_decoder.decompress(data)

    archive.mkdir()
    (archive / needed).write_bytes(tiny_model.read_bytes())
    assert np.array_equal(np.asarray(neuralcodec.decompress(data)), before)
    assert np.abs(np.asarray(numpy_decoder.decompress(data), dtype=int) - before).max() <= 1
    new = neuralcodec.compress(image, 50, "tiny")  # new files use the shipped weights
    assert neuralcodec.read_header(new).header.model_digest == zoo.load_model("tiny").digest
    assert neuralcodec.read_header(new).header.model_digest != zoo.file_digest(tiny_model)
    zoo.load_model.cache_clear()
    numpy_decoder.load.cache_clear()


def _copy_with_other_decoder(tiny_model, path):
    import torch

    state = torch.load(tiny_model, weights_only=True)
    state["decoder_digest"] = "00112233445566ff"
    torch.save(state, path)
    return path


def test_weights_filed_under_another_decoder_s_name_are_refused(tiny_model, image, tmp_path, monkeypatch):
    from neuralcodec import zoo

    data = bytearray(neuralcodec.compress(image, 50, tiny_model))
    data_digest = neuralcodec.read_header(bytes(data)).header.model_digest
    other = _copy_with_other_decoder(tiny_model, tmp_path / "other.pt")
    (tmp_path / zoo.decoder_file_name("tiny", data_digest)).write_bytes(other.read_bytes())
    monkeypatch.setenv(zoo.WEIGHTS_PATH_VARIABLE, str(tmp_path))
    with pytest.raises(ModelMismatchError, match="have decoder"):
        neuralcodec.decompress(bytes(data))


def test_a_model_loaded_once_serves_compress_and_decompress(tiny_model, image):
    loaded = neuralcodec.load_model(tiny_model)
    data = neuralcodec.compress(image, 50, loaded)
    assert data == neuralcodec.compress(image, 50, tiny_model)
    assert np.array_equal(
        np.asarray(neuralcodec.decompress(data, model=loaded)),
        np.asarray(neuralcodec.decompress(data, model=tiny_model)),
    )
