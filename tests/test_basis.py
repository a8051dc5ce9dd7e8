
import pytest
import torch
from e3nn import o3

from steerable3d import grid_symmetries, irreps_D, transform_field
from steerable3d.basis import KernelBasis, _monomial_exponents, _monomials, order_cap


def orders(basis, l_in, l_out):
    i_in = [ir.l for _, ir in basis.irreps_in].index(l_in)
    i_out = [ir.l for _, ir in basis.irreps_out].index(l_out)
    return {p.l for p in basis.pair_paths[(i_out, i_in)]}


@pytest.mark.parametrize("kernel_size, lmax", [(5, 2), (7, 4)])
def test_minimum_expressivity(kernel_size, lmax):
    """Size 5 carries every allowed l_f <= 2, size 7 every allowed l_f <= 4 (O(3) selection rule)."""
    irreps = "0e + 0o + 1o + 1e + 2e + 2o"
    basis = KernelBasis(irreps, irreps, radius=kernel_size // 2, spacing=1.0)
    for _, ir_in in basis.irreps_in:
        for _, ir_out in basis.irreps_out:
            allowed = {
                l for l in range(abs(ir_in.l - ir_out.l), ir_in.l + ir_out.l + 1)
                if ir_in.p * ir_out.p == (-1) ** l and l <= lmax
            }
            i_in = list(basis.irreps_in).index((1, ir_in))
            i_out = list(basis.irreps_out).index((1, ir_out))
            got = {p.l for p in basis.pair_paths[(i_out, i_in)]}
            assert allowed <= got, (ir_in, ir_out, allowed, got)
            assert all(ir_in.p * ir_out.p == (-1) ** l for l in got)


def test_so3_keeps_every_order():
    basis = KernelBasis("1o", "1o", radius=2, parity=False)
    assert {p.l for p in basis.paths} == {0, 1, 2}
    assert {p.l for p in KernelBasis("1o", "1o", radius=2).paths} == {0, 2}


def test_order_caps_and_centre():
    assert [order_cap(s) for s in range(5)] == [0, 1, 2, 4, 5]
    basis = KernelBasis("2e", "2e", radius=3)
    assert basis.shells[0].width == 0 and basis.shells[0].lmax == 0
    for p in basis.paths:
        assert p.l <= basis.shells[p.shell].lmax


def test_every_basis_function_is_grid_equivariant(float64):
    """Each sampled kernel is invariant: D_out K(M^-1 p) D_in^T == K(p) for all 48 grid symmetries."""
    irreps_in, irreps_out = "0e + 1o + 2e + 3o", "0o + 1e + 2o + 3e"
    basis = KernelBasis(irreps_in, irreps_out, radius=2.0)
    for m in grid_symmetries():
        for ((i_out, i_in), paths), b in zip(basis.pair_paths.items(), basis.sample(1.0)):
            if not paths:
                continue
            ir_out, ir_in = o3.Irreps([basis.irreps_out[i_out].ir]), o3.Irreps([basis.irreps_in[i_in].ir])
            n, o, i = b.shape[:3]
            as_field = b.transpose(1, 2).reshape(n * i, o, *b.shape[3:])  # output index as channels
            moved = transform_field(as_field, ir_out, m).reshape(n, i, o, *b.shape[3:]).transpose(1, 2)
            moved = torch.einsum("bonxyz,kn->bokxyz", moved, irreps_D(ir_in, m))
            assert torch.allclose(moved, b, atol=1e-12)
            assert b.abs().amax() > 0


def test_normalization_and_nonzero():
    basis = KernelBasis("2x0e + 1o", "0e + 2e", radius=2.0)
    for ((i_out, _), paths), b in zip(basis.pair_paths.items(), basis.sample(1.0)):
        if paths:
            dim_out = basis.irreps_out[i_out].ir.dim
            assert torch.allclose(b.flatten(1).norm(dim=1) ** 2, torch.full((len(paths),), float(dim_out), dtype=torch.float64))


def test_sampled_moments_equal_continuous_ones_at_any_spacing():
    """The sampled filter has the continuous filter's moments up to order 4 on every grid, so smooth fields
    see the same filter after a change of spacing."""
    basis = KernelBasis("0e + 1o + 2e", "0e + 2e", radius=2.0, spacing=1.0)
    exps = _monomial_exponents(4)

    def moments(spacing):
        out = []
        for b in basis.sample(spacing):
            taps = b.shape[-3:]
            axes = [(torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * h for n, h in zip(taps, spacing)]
            pos = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
            out.append(b.flatten(3) @ _monomials(pos, exps))
        return out

    coarse, fine, aniso = moments((1.0, 1.0, 1.0)), moments((0.5, 0.5, 0.5)), moments((0.5, 0.5, 1.0))
    for a, b, c in zip(coarse, fine, aniso):
        # the point mass (centre shell) keeps its value; everything else matches the continuous moments
        assert torch.allclose(a, b, atol=1e-9)
        assert torch.allclose(a, c, atol=1e-9)


def test_bad_arguments():
    with pytest.raises(ValueError, match="irreps_in"):
        KernelBasis("1x", "0e", radius=2)
    with pytest.raises(ValueError, match="radius"):
        KernelBasis("0e", "0e", radius=-1)
    with pytest.raises(ValueError, match="spacing"):
        KernelBasis("0e", "0e", radius=2, spacing=(1, 0, 1))
