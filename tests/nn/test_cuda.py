"""On a CUDA device (skipped without one; CI has none, the `device` tool's machines do): the kernel assembly
equals the CPU one, the conv layer keeps the grid symmetries in float32 and under bf16 autocast with
``channels_last_3d``, also on the cached inference path, and deterministic mode gives identical gradients.

Run there with ``python -m pytest tests/nn/test_cuda.py``."""

import pytest
import torch

from steerable3d.nn import SteerableConv3d
from steerable3d.testing import equivariance_error

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

IRREPS = "8x0e + 4x1o + 2x2e"


def test_assembly_on_cuda_equals_cpu_with_gradients():
    torch.manual_seed(0)
    conv = SteerableConv3d(IRREPS, IRREPS, 5).double()
    probe = torch.randn(30, 30, 5, 5, 5, dtype=torch.float64)
    (conv.kernel() * probe).sum().backward()
    kernel, grad = conv.kernel().detach(), conv.weight.grad.clone()
    conv.cuda().weight.grad = None
    last = conv.kernel(channels_last=True)
    (last * probe.cuda()).sum().backward()
    assert torch.equal(conv.kernel().detach().cpu(), kernel) and torch.equal(last.detach().cpu(), kernel)
    assert torch.allclose(conv.weight.grad.cpu(), grad, rtol=0, atol=1e-14 * grad.abs().max())


@pytest.mark.parametrize("training", [True, False])
def test_grid_symmetries_on_cuda_in_float32_and_bf16(training):
    conv = SteerableConv3d(IRREPS, IRREPS, 5).cuda().train(training)
    x = torch.randn(3, 30, 12, 12, 12, device="cuda")

    def bf16(z):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return conv(z.contiguous(memory_format=torch.channels_last_3d)).float()

    with torch.set_grad_enabled(training):
        # float32 tolerance: PyTorch lets cuDNN convolve in TF32 (10-bit mantissa)
        assert max(equivariance_error(conv, x, IRREPS, IRREPS).values()) < 2e-3
        assert max(equivariance_error(bf16, x, IRREPS, IRREPS).values()) < 2e-2


def test_cached_inference_call_on_cuda_follows_the_weights():
    conv = SteerableConv3d(IRREPS, IRREPS, 5).cuda()
    x = torch.randn(2, 30, 16, 16, 16, device="cuda").contiguous(memory_format=torch.channels_last_3d)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        reference = conv(x).detach()
        conv.eval()
        with torch.no_grad():
            first, again = conv(x), conv(x)
            conv.weight.mul_(2.0)  # bias is zero: the output doubles exactly in bf16
            doubled = conv(x)
    assert torch.equal(first, reference) and torch.equal(again, first) and torch.equal(doubled, 2 * first)


def test_deterministic_mode_gives_identical_gradients():
    conv = SteerableConv3d(IRREPS, IRREPS, 5).cuda()
    x = torch.randn(2, 30, 16, 16, 16, device="cuda")
    torch.use_deterministic_algorithms(True)
    try:
        grads = []
        for _ in range(2):
            conv.zero_grad()
            conv(x).square().mean().backward()
            grads.append(conv.weight.grad.clone())
    finally:
        torch.use_deterministic_algorithms(False)
    assert torch.equal(*grads)
