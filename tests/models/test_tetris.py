"""TetrisNet: trained by a user's plain loop on the canonical volumes, exact over the grid symmetries."""

import pytest
import torch
from e3nn import o3

from steerable3d import exact_sizes, grid_symmetries, transform_field
from steerable3d.data import TETRIS_CHIRAL_PAIR, tetris_volumes
from steerable3d.models import PlainTetrisCNN, TetrisNet
from steerable3d.nn import SteerableConv3d

SCALE, PAD = 3, 2  # 16^3 volumes: the CI-sized protocol
DOWNSAMPLE = 1  # one stride-2 stage: a cube spans 1.5 voxels of the working grid (1.25 at the protocol size)


def train(model, x, y, steps=300):
    """The loop a user writes: Adam lr 3e-3, full batch, cross-entropy, 300 steps."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("parity, kernel_group", [(False, "O3"), (True, "O3"), (False, "SO3")])
def test_trained_net_is_exact_over_grid_symmetries(parity, kernel_group):
    """After training on the canonical volumes, every grid rotation gives the same logits (and every
    reflection the same logits with the chiral pair swapped), so the grid-transformed sets score exactly
    what the canonical set scores."""
    torch.manual_seed(0)
    x, y = tetris_volumes(SCALE, PAD)
    model = TetrisNet(parity=parity, downsample=DOWNSAMPLE, kernel_group=kernel_group)
    losses = train(model, x, y)
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    swap = list(range(8))
    a, b = TETRIS_CHIRAL_PAIR
    swap[a], swap[b] = b, a
    with torch.no_grad():
        reference = model(x)
        predicted = reference.argmax(1).tolist()
        assert predicted == y.tolist()  # 100% on the training set, the chiral pair included
        for g in grid_symmetries(parity):
            logits = model(transform_field(x, "0e", g.float()))
            improper = bool(torch.det(g) < 0)
            expected = reference[:, swap] if improper else reference  # reflections swap the chiral logits
            scale = float(expected.abs().max())
            assert float((logits - expected).abs().max()) < 1e-5 * scale
            # the same decisions, wherever the decision is not a tie within rounding
            top2 = expected.topk(2, dim=1).values
            clear = (top2[:, 0] - top2[:, 1]) > 1e-4 * scale
            assert torch.equal(logits.argmax(1)[clear], expected.argmax(1)[clear])
            assert expected.argmax(1)[clear].tolist() == [swap[p] if improper else p for p, c in zip(predicted, clear) if c]
            assert bool(clear.all())  # no near-ties: every transformed volume is classified, and correctly


def test_invariants_and_pseudoscalar_under_a_mirror(float64):
    torch.manual_seed(1)
    model = TetrisNet(parity=True).eval()
    x = torch.rand(2, 1, 14, 14, 14)
    x[1] = 2 * x[1] + 0.3  # batch elements of different scale and offset
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))
    with torch.no_grad():
        f, f_mirror = model.invariants(x), model.invariants(transform_field(x, "0e", mirror))
    scale = float(f.abs().max())
    assert float((f_mirror[:, :7] - f[:, :7]).abs().max()) < 1e-12 * scale  # 7x0e: invariant
    assert float((f_mirror[:, 7] + f[:, 7]).abs().max()) < 1e-12 * scale  # 1x0o: flips sign


def test_rotation_invariant_readout_gives_pseudoscalars_to_the_chiral_pair_only(float64):
    """``parity=False``: invariants ``s_0..s_7`` and pseudoscalars ``q_0, q_1`` (a mirror flips them), logits
    ``[s_0 + q_0, s_1 + q_1, s_2..s_7]``: rotation-invariant, and under a mirror the six achiral logits stay
    while the chiral pair's move, each on its own."""
    torch.manual_seed(3)
    model = TetrisNet().eval()
    assert model.irreps_out == o3.Irreps("8x0e + 2x0o")
    x = torch.rand(2, 1, 14, 14, 14)
    x[1] = 2 * x[1] + 0.3
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))
    quarter_turn = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    with torch.no_grad():
        f, f_mirror = model.invariants(x), model.invariants(transform_field(x, "0e", mirror))
        scale = float(f.abs().max())
        assert float((f_mirror[:, :8] - f[:, :8]).abs().max()) < 1e-12 * scale  # 8x0e: invariant
        assert float((f_mirror[:, 8:] + f[:, 8:]).abs().max()) < 1e-12 * scale  # 2x0o: flip sign
        odd = float(f[:, 8:].abs().max())
        assert odd > 1e-12 * scale  # ... and are not zero, though tiny in a fresh net (see the class docstring)
        # pseudoscalar weights that give both q_k of both inputs ~1e-6 of the logits: far above the rounding
        pooled = model.features(x * model.input_scale)[:, model._odd]  # [2, channels]
        direction = pooled[0] / pooled[0].square().sum() + pooled[1] / pooled[1].square().sum()
        model.readout_odd.weight.copy_(scale * torch.stack([1e-6 * direction, 2e-6 * direction]))
        logits = model(x)
        turned, mirrored = model(transform_field(x, "0e", quarter_turn)), model(transform_field(x, "0e", mirror))
    size = float(logits.abs().max())
    assert float((turned - logits).abs().max()) < 1e-9 * size
    a, b = TETRIS_CHIRAL_PAIR
    achiral = [i for i in range(8) if i not in (a, b)]
    assert float((mirrored[:, achiral] - logits[:, achiral]).abs().max()) < 1e-9 * size
    moved = (mirrored[:, [a, b]] - logits[:, [a, b]]).abs()
    assert float(moved.min()) > 1e-8 * size  # both chiral logits move under the mirror ...
    assert float((mirrored[:, a] - logits[:, b]).abs().max()) > 1e-8 * size  # ... and do not swap


def test_kernel_group_is_checked():
    with pytest.raises(ValueError, match="kernel_group='SO3' needs parity=False"):
        TetrisNet(parity=True, kernel_group="SO3")
    with pytest.raises(ValueError, match="kernel_group: expected 'O3' or 'SO3', got 'so3'"):
        TetrisNet(kernel_group="so3")


def test_every_size_is_exact():
    assert exact_sizes(TetrisNet(parity=True), range(14, 40)) == list(range(14, 40))


def test_plain_cnn_has_same_interface():
    model = PlainTetrisCNN()
    assert model(torch.zeros(3, 1, 20, 20, 20)).shape == (3, 8)
    assert sum(p.numel() for p in model.parameters()) > 50 * sum(p.numel() for p in TetrisNet().parameters())


@pytest.mark.parametrize("parity", [False, True])
def test_bfloat16_autocast_keeps_invariants_within_bf16_precision(parity):
    torch.manual_seed(0)
    model = TetrisNet(parity=parity).eval()
    x = torch.rand(2, 1, 16, 16, 16)
    x[1] = 2 * x[1] + 0.3
    inputs = [transform_field(x, "0e", g) for g in grid_symmetries(parity)]  # exact, outside autocast
    with torch.no_grad():
        reference = model.invariants(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            f = model.invariants(x)
            transformed = [model.invariants(t).float() for t in inputs]
    assert f.dtype == torch.bfloat16  # the read-out is a Linear, which autocast runs in bf16
    scale = float(reference.abs().max())
    assert float((f.float() - reference).abs().max()) < 3e-2 * scale
    sign = torch.ones(model.irreps_out.dim)
    for g, f_g in zip(grid_symmetries(parity), transformed):
        sign[-1] = -1.0 if parity and torch.linalg.det(g) < 0 else 1.0  # the pseudoscalar flips
        assert float((f_g - sign * f.float()).abs().max()) < 3e-2 * scale


def test_zero_background_makes_logits_invariant_to_whole_voxel_shifts(float64):
    """With the biases inside the gates, moving the shape by one voxel of the working grid (2 input voxels
    after one stride-2 stage) leaves the logits equal to rounding; with biased convolutions it does not."""
    x = tetris_volumes(2, 8)[0].to(torch.float64)  # 24^3, the shapes in the middle 8^3
    shifted = torch.roll(x, (2, -2, 2), (2, 3, 4))  # the blurred shapes stay inside the volume
    deviation = {}
    for zero_background in (True, False):
        torch.manual_seed(0)
        model = TetrisNet(parity=True, downsample=1, zero_background=zero_background).eval()
        for module in model.modules():  # nonzero biases wherever they are
            for name in ("bias", "scalar_bias", "gate_bias"):
                if isinstance(getattr(module, name, None), torch.nn.Parameter):
                    torch.nn.init.uniform_(getattr(module, name), -1.0, 1.0)
        with torch.no_grad():
            a, b = model(x), model(shifted)
        deviation[zero_background] = float((a - b).abs().max() / a.abs().max())
    assert deviation[True] < 1e-12
    assert deviation[False] > 1e-6


def test_dilated_zero_background_net_is_exact_under_the_grid_group(float64):
    """Checked on the group's generators (two quarter turns and a mirror): equivariance under each
    generator gives it under every product of them, i.e. all 48 symmetries."""
    torch.manual_seed(2)
    model = TetrisNet(parity=True, downsample=1, dilation=2, zero_background=True).eval()
    x = torch.rand(2, 1, 8, 8, 8)
    x[1] = 2 * x[1] + 0.3
    generators = [
        torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),  # quarter turn about z
        torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),  # quarter turn about x
        torch.diag(torch.tensor([-1.0, 1.0, 1.0])),  # mirror x -> -x
    ]
    with torch.no_grad():
        reference = model.invariants(x)
        for g in generators:
            f = model.invariants(transform_field(x, "0e", g))
            sign = torch.ones(8)
            sign[7] = float(torch.det(g).sign())  # the pseudoscalar flips under the mirror
            assert float((f - sign * reference).abs().max()) < 1e-12 * float(reference.abs().max())


def test_first_convolution_has_its_own_kernel_size():
    convs = lambda model: [m for m in model.features if isinstance(m, SteerableConv3d)]
    first, *rest = convs(TetrisNet(first_kernel_size=9, kernel_size=3))
    assert first.taps == (9, 9, 9) and first.padding == (8, 8, 8)
    assert rest and all(c.taps == (3, 3, 3) and c.padding == (2, 2, 2) for c in rest)
    assert [c.taps[0] for c in convs(TetrisNet(kernel_group="SO3", kernel_size=7))] == [7, 7, 7]
    with pytest.raises(ValueError, match="first_kernel_size.*got 4"):
        TetrisNet(first_kernel_size=4)


def test_input_scale_multiplies_the_input(float64):
    torch.manual_seed(0)
    scaled = TetrisNet(parity=True, input_scale=0.25).eval()
    unscaled = TetrisNet(parity=True, input_scale=1.0).eval()
    unscaled.load_state_dict(scaled.state_dict())
    x = torch.rand(2, 1, 12, 12, 12)
    assert torch.allclose(scaled(x), unscaled(0.25 * x), atol=1e-12)
    assert not torch.allclose(scaled(x), unscaled(x), atol=1e-3)  # the gates are not linear
    assert TetrisNet().input_scale == 0.2 and TetrisNet(kernel_group="SO3").input_scale == 1.0
    with pytest.raises(ValueError, match="input_scale.*got 0"):
        TetrisNet(input_scale=0)


def test_tetris_net_rejects_bad_dilation():
    with pytest.raises(ValueError, match="dilation: expected a positive int, got 0"):
        TetrisNet(dilation=0)
