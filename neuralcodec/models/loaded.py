"""A mean-scale hyperprior as the codec runs it: the conv transforms, the exact hyper-synthesis
and the integer probability tables of one weights file (neuralcodec.models.mean_scale loads it,
neuralcodec.codec codes with it)."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from neuralcodec.entropy_decoder import EntropyParameters
from neuralcodec.entropy_models import TableSet
from neuralcodec.exact import ExactHyperSynthesis
from neuralcodec.exact_numpy import HyperSynthesis
from neuralcodec.latent_codec import LatentCodec
from neuralcodec.latent_codecs import latent_codecs
from neuralcodec.models.hyperprior import HyperpriorConfig, HyperpriorTransforms
from neuralcodec.models.interface import DEFAULT_ARCHITECTURE


@dataclass
class LoadedModel:
    """Everything the codec needs from one weights file."""

    name: str
    digest: bytes  # the decoder's identity (see decoder_digest): written into every stream
    config: HyperpriorConfig
    transforms: HyperpriorTransforms
    hyper_synthesis: ExactHyperSynthesis
    z_tables: TableSet
    y_tables: TableSet
    scale_table: np.ndarray
    z_offsets: np.ndarray  # float64 (N,): ẑ = z symbol + offset of its channel (docs/FORMAT.md)
    meta: dict
    architecture: str = DEFAULT_ARCHITECTURE  # the registry entry that codes with this model
    codec_state: dict = field(default_factory=dict, repr=False)  # what else its latent codecs read
    also_decodes: tuple[bytes, ...] = ()  # other decoders whose files it decodes (weights_file)
    _on_device: dict[str, HyperpriorTransforms] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def entropy_parameters(self) -> EntropyParameters:
        """The integer side of this model in numpy, for entropy decoding (the numpy hyper-synthesis
        is bit-identical to ``hyper_synthesis``)."""
        layers = [{k: v.numpy() for k, v in layer.items()} for layer in self.hyper_synthesis.state_dict()]
        hyper = HyperSynthesis.from_state(layers, self.hyper_synthesis.input_shift)
        return EntropyParameters(
            self.config.M, self.z_tables, self.y_tables, self.scale_table, self.z_offsets, hyper
        )

    @cached_property
    def latent_codecs(self) -> dict[str, LatentCodec]:
        """The latent codecs of the file architectures this model decodes (its own first)."""
        return latent_codecs(self.architecture, self.entropy_parameters, self.codec_state)

    @property
    def latent_codec(self) -> LatentCodec:
        """The latent codec of the files this model writes."""
        return self.latent_codecs[self.architecture]

    def transforms_on(self, device: torch.device) -> HyperpriorTransforms:
        """The transforms on ``device``: the CPU original, or a cached copy per other device.

        The shared CPU copy is never moved, so threads using different devices never see
        each other's moves.
        The copy is made outside inference mode even when the caller is inside it, so that
        refinement (effort > 0) can differentiate through it.
        """
        if device.type == "cpu":
            return self.transforms
        with self._lock:
            key = str(device)
            if key not in self._on_device:
                with torch.inference_mode(False):
                    self._on_device[key] = copy.deepcopy(self.transforms).to(device)
            return self._on_device[key]


def load_transforms(transforms: HyperpriorTransforms, weights: dict, hyper: ExactHyperSynthesis) -> None:
    """Fill float transforms from exported weights; h_s comes from its integer form."""
    state = {k: v.float() for k, v in weights.items()}
    convs = [m for m in transforms.h_s if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    for module, (w, b) in zip(convs, hyper.to_float_module_weights()):
        prefix = next(n for n, m in transforms.named_modules() if m is module)
        state[f"{prefix}.weight"] = w.float()
        state[f"{prefix}.bias"] = b.float()
    transforms.load_state_dict(state)
