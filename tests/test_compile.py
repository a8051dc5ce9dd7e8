"""``torch.compile`` (inductor, CPU) on the models: one graph, no breaks, the eager result and gradients.

Skipped only where no C compiler exists, and never in CI (``CI=true``), where gcc is present."""

import os
import shutil

import pytest
import torch

from steerable3d.models import EquivariantUNet, TetrisNet

HAS_C_COMPILER = any(shutil.which(name) for name in ("cc", "gcc", "clang"))
pytestmark = pytest.mark.skipif(
    not HAS_C_COMPILER and os.environ.get("CI") != "true", reason="torch.compile's CPU backend needs a C compiler"
)


def test_unet_compiles_to_one_graph_with_eager_outputs_and_gradients():
    torch.manual_seed(0)
    unet = EquivariantUNet(3, 1, 2, channels=(12, 16), strides=(2,))
    x = torch.randn(2, 1, 8, 8, 8)
    explanation = torch._dynamo.explain(unet)(x)
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons

    eager = unet(x)
    eager.square().mean().backward()
    eager_grads = [p.grad.clone() for p in unet.parameters()]
    unet.zero_grad()
    compiled = torch.compile(unet)(x)
    compiled.square().mean().backward()
    assert torch.allclose(compiled, eager, rtol=1e-4, atol=1e-5)
    for p, g in zip(unet.parameters(), eager_grads):
        assert torch.allclose(p.grad, g, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("parity", [False, True])
def test_tetris_net_compiles_to_one_graph_with_eager_logits(parity):
    torch.manual_seed(0)
    model = TetrisNet(parity=parity)
    x = torch.rand(2, 1, 16, 16, 16)
    explanation = torch._dynamo.explain(model)(x)
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons
    with torch.no_grad():
        assert torch.allclose(torch.compile(model)(x), model(x), rtol=1e-4, atol=1e-5)


def test_eval_inference_after_eager_calls_compiles_to_one_graph():
    """Eager eval-mode calls fill the kernel caches; a compiled graph must not trace them (data pointers)."""
    torch.manual_seed(0)
    unet = EquivariantUNet(3, 1, 2, channels=(12, 16), strides=(2,)).eval()
    x = torch.randn(2, 1, 8, 8, 8)
    with torch.no_grad():
        eager = unet(x)
        assert torch.equal(unet(x), eager)  # the cached calls
        explanation = torch._dynamo.explain(unet)(x)
        assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons
        assert torch.allclose(torch.compile(unet)(x), eager, rtol=1e-4, atol=1e-5)
