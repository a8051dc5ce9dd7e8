import torch

from steerable3d import grid_symmetries, transform_field
from steerable3d.models import EquivariantUNet, TetrisNet, plain_counterpart
from steerable3d.nn import SteerableConv3d


def test_counterpart_of_a_periodic_unet_has_the_same_graph_in_plain_layers():
    unet = EquivariantUNet(3, 1, 3, (12, 16), (2,), padding_mode="circular", norm="batch", irreps_out="1o")
    plain = plain_counterpart(unet, torch.zeros(1, 1, 8, 8, 8))
    assert not any(isinstance(m, SteerableConv3d) for m in plain.modules())
    convs = [m for m in plain.modules() if isinstance(m, torch.nn.Conv3d)]
    steerable = [m for m in unet.modules() if isinstance(m, SteerableConv3d)]
    assert [c.out_channels for c in convs] == [s.irreps_out.dim for s in steerable]
    assert all(c.padding_mode == "circular" for c in convs if max(c.kernel_size) > 1)
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in plain.modules()) == sum(1 for m in unet.modules() if type(m).__name__ == "BatchNorm3d")
    x = torch.randn(2, 1, 8, 8, 8)
    assert plain(x).shape == unet(x).shape == (2, 3, 8, 8, 8)
    # periodic: a shift by the size multiple commutes with the plain graph too
    plain.eval()
    assert torch.allclose(plain(torch.roll(x, 2, 2)), torch.roll(plain(x), 2, 2), atol=1e-5)


def test_counterpart_is_not_equivariant_where_the_model_is():
    torch.manual_seed(0)
    unet = EquivariantUNet(3, 1, 1, (12, 16), (2,)).eval()
    plain = plain_counterpart(unet, torch.zeros(1, 1, 8, 8, 8)).eval()
    x = torch.randn(2, 1, 8, 8, 8)
    g = grid_symmetries()[5]
    with torch.no_grad():
        exact = (unet(transform_field(x, "0e", g)) - transform_field(unet(x), "0e", g)).abs().max() / unet(x).abs().max()
        broken = (plain(transform_field(x, "0e", g)) - transform_field(plain(x), "0e", g)).abs().max() / plain(x).abs().max()
    assert exact < 1e-5 and broken > 1e-2


def test_tetris_counterpart_reads_out_eight_logits():
    net = TetrisNet()
    plain = plain_counterpart(net, torch.zeros(1, 1, 20, 20, 20))
    assert plain(torch.randn(2, 1, 20, 20, 20)).shape == (2, 8)
