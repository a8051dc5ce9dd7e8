"""Kernel assembly (``steerable3d.nn._assembly``): the three-op gather/bmm/gather build equals a pair-by-pair
contraction of the sampled basis, in both memory layouts, and its hand-written backward equals autograd's."""

import math

import pytest
import torch

from steerable3d.nn import SteerableConv3d
from steerable3d.nn._assembly import CHUNK_ROWS, _chunk_rows

CASES = [
    ("8x0e + 4x1o + 2x2e", "8x0e + 4x1o + 2x2e", 5, True),
    ("0e", "3x0e + 1o + 2e", 5, True),
    ("1o + 2e", "3x0e + 1o", 3, True),  # pairs without paths at 3 taps
    ("2x0e + 1o + 1e + 0o", "0o + 3x1e + 2e + 2o", 5, False),
    ("34x0e + 5x1o + 3x2e", "42x0e + 5x1o + 3x2e", 5, True),  # wide scalars: chunks of many rows
    ("2x1o + 0e", "2x0e", 1, True),  # one tap
]


def pairwise_kernel(conv: SteerableConv3d) -> torch.Tensor:
    """The kernel pair by pair, ``K[u, m, v, n] = sum_b W[u, v, b] B[b, m, n]``, straight from the float64 basis."""
    weight = conv.weight.detach().double()
    rows = []
    for i_out, out in enumerate(conv._fields_out):
        cols = []
        for i_in, inp in enumerate(conv._fields_in):
            index = i_out * len(conv._fields_in) + i_in
            _, _, offset, shape = conv._blocks[index]
            if shape[2] == 0:
                cols.append(torch.zeros(out.mul * out.dim, inp.mul * inp.dim, *conv.taps, dtype=torch.float64))
                continue
            w = weight[offset : offset + math.prod(shape)].view(shape)
            block = torch.einsum("uvb,bmnxyz->umvnxyz", w, conv._basis64[index])
            cols.append(block.reshape(out.mul * out.dim, inp.mul * inp.dim, *conv.taps))
        rows.append(torch.cat(cols, dim=1))
    return torch.cat(rows, dim=0)


@pytest.mark.parametrize("irreps_in, irreps_out, kernel_size, parity", CASES)
def test_assembly_equals_pairwise_contraction_in_both_layouts(irreps_in, irreps_out, kernel_size, parity):
    torch.manual_seed(0)
    conv = SteerableConv3d(irreps_in, irreps_out, kernel_size, parity=parity).double()
    expected = pairwise_kernel(conv)
    contiguous = conv.kernel().detach()
    last = conv.kernel(channels_last=True).detach()
    assert contiguous.is_contiguous() and last.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.allclose(contiguous, expected, rtol=0, atol=1e-14 * expected.abs().max())
    assert torch.equal(last, contiguous)


@pytest.mark.parametrize("channels_last", [False, True])
def test_assembly_backward_matches_finite_differences_to_second_order(channels_last):
    conv = SteerableConv3d("2x0e + 1o + 1e", "3x0e + 1o + 2e", 3).double()
    assembly = conv._assembly
    weight = torch.randn(conv.weight.numel(), dtype=torch.float64, requires_grad=True)
    bias = torch.randn(conv.bias.numel(), dtype=torch.float64, requires_grad=True)

    def build(w, b):
        return assembly(w, b, conv._bias_pad, channels_last=channels_last)

    assert torch.autograd.gradcheck(build, (weight, bias))
    assert torch.autograd.gradgradcheck(build, (weight, bias))


def test_assembly_follows_weight_dtype_and_device_moves():
    conv = SteerableConv3d("2x0e + 1o", "0e + 1o", 3)
    assert conv._assembly.basis.dtype == torch.float32
    conv.double()
    assert conv._assembly.basis.dtype == torch.float64
    conv.bfloat16()  # assembled in float32 at least, the weights cast up
    assert conv._assembly.basis.dtype == torch.float32 and conv.kernel().dtype == torch.float32
    conv.weight.grad = None
    conv.kernel().sum().backward()
    assert conv.weight.grad.dtype == torch.bfloat16


def test_chunk_rows_minimizes_products_plus_basis_copies():
    # a wide scalar pair and a narrow l=2 pair: few rows would copy the scalar basis often, many rows
    # would pad the l=2 pair
    pairs = [(1428, 1, 4), (9, 25, 4)]
    best = _chunk_rows(pairs, 4)
    cost = {r: sum(mn * math.ceil(uv / r) * (r + 4) for uv, mn, _ in pairs) for r in CHUNK_ROWS}
    assert cost[best] == min(cost.values())
    assert 1 < best < max(CHUNK_ROWS)
