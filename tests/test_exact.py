import copy

import torch

from neuralcodec.zoo import load_model


def encoder_z(model, image) -> torch.Tensor:
    """Rounded hyper-latent of a real encode: the inputs h_s is calibrated for."""
    x = torch.from_numpy(image).permute(2, 0, 1).float().div(255).unsqueeze(0)
    t = model.transforms
    gain, _ = t.gains(torch.tensor([1.0]))
    with torch.no_grad():
        return torch.round(t.h_a(t.g_a(x) * gain)).double()


def test_exact_hyper_synthesis_tracks_the_float_network(tiny_model, make_image):
    model = load_model(tiny_model)
    z = encoder_z(model, make_image(128, 192, seed=5))
    scales, means = model.hyper_synthesis(z)
    ref = copy.deepcopy(model.transforms.h_s).double()(z)
    ref_scales, ref_means = ref.chunk(2, dim=1)
    tol = 1e-3 * float(ref.abs().max()) + 1e-3
    assert (scales - ref_scales).abs().max() < tol
    assert (means - ref_means).abs().max() < tol


def test_exact_outputs_are_dyadic_and_repeatable_across_thread_counts(tiny_model):
    model = load_model(tiny_model)
    z = torch.randint(-5, 6, (1, model.config.N, 5, 7)).double()
    before = torch.get_num_threads()
    try:  # computed each time (a call with the ẑ of the call before returns what that computed)
        torch.set_num_threads(1)
        a = model.hyper_synthesis._compute(z)
        torch.set_num_threads(2)
        b = model.hyper_synthesis._compute(z)
    finally:
        torch.set_num_threads(before)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    shift = model.hyper_synthesis.layers[-1].weight_shift + model.hyper_synthesis.layers[-2].output_shift
    scaled = a[0] * 2.0**shift
    assert torch.equal(scaled, scaled.round())


def test_intermediate_sums_stay_below_two_to_the_53(tiny_model):
    from neuralcodec.exact import ACTIVATION_MAX, WEIGHT_BITS

    model = load_model(tiny_model)
    for layer in model.hyper_synthesis.layers:
        assert layer.weight.abs().max() < 2**WEIGHT_BITS
        taps = layer.weight[0].numel() if not layer.transposed else layer.weight[:, 0].numel()
        assert taps * 2**WEIGHT_BITS * ACTIVATION_MAX + layer.bias.abs().max() < 2**53


def test_inputs_on_a_dyadic_grid_are_exact_and_track_the_float_network(tiny_model):
    """Weights format 2 feeds ẑ = k + offset (multiples of 2^-8): the first layer takes ẑ·2^8."""
    from neuralcodec.exact import quantize_hyper_synthesis

    h_s = copy.deepcopy(load_model(tiny_model).transforms.h_s).double()
    z = torch.randint(-6, 7, (1, h_s[0].in_channels, 6, 5)).double() + torch.tensor(0.375)
    exact = quantize_hyper_synthesis(h_s, z, input_shift=8)
    scales, means = exact(z)
    ref_scales, ref_means = h_s(z).chunk(2, dim=1)
    tol = 1e-3 * float(max(ref_scales.abs().max(), ref_means.abs().max())) + 1e-3
    assert (scales - ref_scales).abs().max() < tol and (means - ref_means).abs().max() < tol
    shift = exact.layers[-1].weight_shift + exact.layers[-2].output_shift
    assert torch.equal(scales * 2.0**shift, (scales * 2.0**shift).round())
    for (_w, b), layer in zip(exact.to_float_module_weights(), [m for m in h_s if hasattr(m, "bias")]):
        assert torch.allclose(b, layer.bias, atol=1e-3)


def test_a_call_with_the_last_calls_z_returns_its_result_without_computing_again(tiny_model, monkeypatch):
    hyper = load_model(tiny_model).hyper_synthesis
    z = torch.randint(-5, 6, (1, hyper.layers[0].weight.shape[0 if hyper.layers[0].transposed else 1], 3, 4))
    computed = []
    compute = hyper._compute
    monkeypatch.setattr(hyper, "_compute", lambda z_hat: computed.append(z_hat) or compute(z_hat))
    first = hyper(z.double())
    again = hyper(z.clone().double())
    assert len(computed) == 1 and all(a is b for a, b in zip(first, again))
    other = z.double().clone()
    other[0, 0, 0, 0] += 1
    fresh = hyper(other)
    assert len(computed) == 2 and not torch.equal(fresh[1], first[1])
    assert all(torch.equal(a, b) for a, b in zip(hyper(z.double()), compute(z.double())))
    assert len(computed) == 3
    assert all(torch.equal(a, b) for a, b in zip(hyper(z[:, :, :2].double()), compute(z[:, :, :2].double())))
