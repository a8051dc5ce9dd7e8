"""Every module pickles, deep-copies and round-trips its state_dict (train and eval keys alike)."""

import copy
import pickle

import pytest
import torch

from steerable3d import nn

H = "2x0e + 0o + 1o + 1e + 2e"


def modules():
    gate = nn.Gate("2x0e + 0o", [torch.relu, torch.tanh], "3x0e", [torch.sigmoid], "1o + 1e + 2e")
    return {
        "conv": nn.SteerableConv3d(H, H, 3, stride=2),
        "transpose": nn.SteerableConvTranspose3d(H, H, 3),
        "gate": gate,
        "norm_activation": nn.NormActivation(H, torch.sigmoid, bias=True),
        "batch_norm": nn.BatchNorm3d(H),
        "instance_norm": nn.InstanceNorm3d(H),
        "dropout": nn.Dropout(H, 0.2),
        "norm_max_pool": nn.NormMaxPool3d(H, 2),
        "low_pass": nn.LowPassPool3d(H, 2),
        "avg_pool": nn.AvgPool3d(H, 2),
        "global_pool": nn.GlobalPool(H, "max_norm"),
        "upsample": nn.Upsample(H, 2, mode="trilinear"),
        "sequential": nn.Sequential(nn.SteerableConv3d(H, gate.irreps_in, 3), gate),
        "residual": nn.Residual(nn.SteerableConv3d(H, H, 3)),
    }


@pytest.mark.parametrize("name", list(modules()))
def test_round_trips(name):
    torch.manual_seed(0)
    module = modules()[name]
    x = torch.randn(2, module.irreps_in.dim, 6, 6, 6)
    module(x)  # a training-mode pass (running statistics)
    module.eval()
    expected = module(x)
    for clone in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        assert torch.equal(clone(x), expected)
    keys_eval = list(module.state_dict())
    assert keys_eval == list(module.train().state_dict())
    torch.manual_seed(1)
    fresh = modules()[name]
    fresh.load_state_dict(module.state_dict())
    assert torch.equal(fresh.eval()(x), expected)
