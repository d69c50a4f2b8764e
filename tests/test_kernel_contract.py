"""Every registered backend provides every kernel of the contract, with the reference's signature."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from levit_np.kernels import contract, reference
from levit_np.kernels.backends import BACKENDS, get_backend
from levit_np.model.attention_bias import GridBias
from levit_np.model.config import blocks, get_config, stem_convs
from levit_np.model.params import block_layers, random_params


def protocol_signature(name: str) -> inspect.Signature:
    """The contract's signature of `name`, without the Protocol's `self`."""
    signature = inspect.signature(getattr(contract.Kernels, name))
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def plain(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    """Names, kinds and defaults: what a caller relies on (annotations are documentation)."""
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("name", contract.BACKEND_FUNCTIONS)
def test_backend_has_every_kernel_with_the_contract_signature(backend, name):
    module = get_backend(backend)
    assert isinstance(module.NAME, str) and module.NAME == backend
    assert callable(getattr(module, name, None)), f"backend {backend!r} has no kernel {name!r}"
    assert plain(inspect.signature(getattr(module, name))) == plain(protocol_signature(name)), (backend, name)


def test_the_reference_is_the_contract():
    """The contract's list is exactly what the reference module defines as kernels (nothing forgotten)."""
    assert plain(inspect.signature(reference.attention)) == plain(protocol_signature("attention"))
    assert set(contract.KERNELS) <= {n for n, f in vars(reference).items() if inspect.isfunction(f)}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_prepare_gives_every_layer_the_forward_pass_reads(backend):
    cfg = get_config("levit_128s")
    layers = get_backend(backend).prepare(cfg, random_params(cfg, seed=3))
    expected = {conv.name for conv in stem_convs(cfg)} | {"classifier"}
    for block in blocks(cfg):
        expected |= {f"{block.name}.{sub}" for sub in block_layers(block)}
        if block.kind.has_attention:
            expected |= {f"{block.name}.scale", f"{block.name}.bias"}
            assert isinstance(layers[f"{block.name}.bias"], GridBias)
            assert isinstance(layers[f"{block.name}.scale"], float)
    missing = expected - set(layers)
    assert not missing, sorted(missing)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_bias_at_training_grid_has_the_heads_and_tokens(backend):
    cfg = get_config("levit_128s")
    layers = get_backend(backend).prepare(cfg, random_params(cfg, seed=3))
    shrink = next(b for b in blocks(cfg) if not b.kind.residual)
    bias = layers[f"{shrink.name}.bias"].at((7, 7), (14, 14))
    assert bias.dtype == np.float32 and bias.shape[0] == shrink.num_heads
    tokens = sorted(bias.shape[1:])  # queries and keys, in the backend's own order and layout
    assert tokens[1] == 196 and 49 <= tokens[0] < 196, bias.shape  # a layout may pad the queries (numba: vectors)
