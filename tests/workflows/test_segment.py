import nibabel as nib
import numpy as np
import pytest
import torch

from steerable3d.checkpoint import load_checkpoint, save_checkpoint
from steerable3d.cli import main
from steerable3d.io import load_nifti
from steerable3d.workflows import segment as seg

pytest.importorskip("monai")

def tiny_config(**kwargs):
    options = dict(classes=2, channels=(12, 16), strides=(2,), patch=12, batch_size=2, steps=4, lr=1e-2,
                   validate_every=2, spacing=(1.5, 1.5, 1.5))
    options.update(kwargs)
    return seg.SegmentConfig(**options)


def test_cases_are_matched_by_name_and_read_in_ras(tmp_path, make_dataset):
    images, labels = make_dataset(tmp_path, n=2)
    pairs = seg.find_cases(images, labels)
    assert [(p.name, q.name) for p, q in pairs] == [("case0.nii.gz", "case0.nii.gz"), ("case1.nii.gz", "case1.nii.gz")]
    case = seg.load_case(*pairs[0], classes=2)
    assert case.volume.orientation == ("R", "A", "S") and case.volume.spacing == (1.5, 1.5, 1.5)
    # RAS flips x and y of the LPS file: the label follows the image
    raw = np.asarray(nib.load(pairs[0][1]).dataobj)
    assert torch.equal(case.label, torch.from_numpy(raw[::-1, ::-1, :].astype(np.int64)))
    foreground = case.image[0][case.label > 0]
    assert abs(float(case.image[0].mean())) < 1e-4 and float(foreground.mean()) > 1.0  # standardized, ball bright


def test_bad_inputs_are_named(tmp_path, make_dataset, lps_affine):
    images, labels = make_dataset(tmp_path, n=2)
    (labels / "case1.nii.gz").unlink()
    with pytest.raises(ValueError, match="no label map .* for case1.nii.gz"):
        seg.find_cases(images, labels)
    with pytest.raises(ValueError, match=r"class indices 0 \.\. 0, got values 0 \.\. 1"):
        seg.load_case(images / "case0.nii.gz", labels / "case0.nii.gz", classes=1)
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), lps_affine), labels / "case1.nii.gz")
    with pytest.raises(ValueError, match="differs from its image"):
        seg.load_case(images / "case1.nii.gz", labels / "case1.nii.gz")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        seg.find_cases(tmp_path / "nowhere")


def test_interrupted_run_resumes_to_the_same_parameters(tmp_path, make_dataset):
    images, labels = make_dataset(tmp_path)
    cases = [seg.load_case(i, l) for i, l in seg.find_cases(images, labels)]
    straight, _ = seg.train(tiny_config(), cases, tmp_path / "a", log=lambda s: None)
    seg.train(tiny_config(), cases, tmp_path / "b", stop_after=3, log=lambda s: None)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 3
    resumed, history = seg.train(tiny_config(), cases, tmp_path / "b", resume=True, log=lambda s: None)
    assert history.steps == [1, 2, 3, 4]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="another configuration"):
        seg.train(tiny_config(lr=0.5), cases, tmp_path / "b", resume=True, log=lambda s: None)


def test_diverging_run_stops_before_the_step_and_keeps_the_last_checkpoint(tmp_path, make_dataset, monkeypatch):
    import monai.losses

    images, labels = make_dataset(tmp_path)
    cases = [seg.load_case(i, l) for i, l in seg.find_cases(images, labels)]
    reference, _ = seg.train(tiny_config(), cases, tmp_path / "a", stop_after=3, log=lambda s: None)
    calls = []

    class Diverging(monai.losses.DiceCELoss):  # finite for 3 steps, then NaN
        def forward(self, *args):
            calls.append(None)
            return super().forward(*args) * (float("nan") if len(calls) > 3 else 1.0)

    monkeypatch.setattr(monai.losses, "DiceCELoss", Diverging)
    with pytest.raises(FloatingPointError, match=r"step 4 of 4 is nan.*last.pt those after step 2"):
        seg.train(tiny_config(), cases, tmp_path / "b", log=lambda s: None)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 2
    # no weight saw the NaN: the last checkpoint resumes to the reference run's step-3 weights
    monkeypatch.undo()
    resumed, history = seg.train(tiny_config(), cases, tmp_path / "b", resume=True, stop_after=1, log=lambda s: None)
    assert history.steps == [1, 2, 3]
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", {"step": 1})

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt: cannot be read"):
        load_checkpoint(tmp_path / "bad.pt")


def test_cli_trains_validates_and_predicts_on_the_images_grids(tmp_path, make_dataset, capsys):
    images, labels = make_dataset(tmp_path, n=4)
    out = tmp_path / "run"
    argv = ["segment", "train", "--images", str(images), "--labels", str(labels), "--val-images", str(images),
            "--val-labels", str(labels), "--out", str(out), "--channels", "12", "16", "--strides", "2", "--patch", "12",
            "--steps", "60", "--validate-every", "30", "--lr", "1e-2", "--threads", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "validation Dice" in printed and (out / "best.pt").exists() and (out / "last.pt").exists()
    assert main(["segment", "predict", "--checkpoint", str(out / "best.pt"), "--images", str(images),
                 "--out", str(tmp_path / "pred"), "--probabilities"]) == 0
    for i in range(4):
        predicted = load_nifti(tmp_path / "pred" / f"case{i}.nii.gz", dtype=torch.long)
        truth = load_nifti(labels / f"case{i}.nii.gz", dtype=torch.long)
        assert np.array_equal(predicted.affine, truth.affine) and predicted.orientation == ("L", "P", "S")
        dice = seg.dice_scores(predicted.data[0], truth.data[0], 2)[0]
        assert dice > 0.8, (i, dice)
        probs = load_nifti(tmp_path / "pred" / f"case{i}_prob.nii.gz")
        assert probs.data.shape == (2, 16, 16, 16) and torch.allclose(probs.data.sum(0), torch.ones(16, 16, 16), atol=1e-5)


def test_cli_residual_flag_reaches_the_checkpoint(tmp_path, make_dataset):
    images, labels = make_dataset(tmp_path, n=2)
    out = tmp_path / "run"
    argv = ["segment", "train", "--images", str(images), "--labels", str(labels), "--out", str(out), "--channels", "12",
            "--strides", "--patch", "8", "--steps", "2", "--threads", "1", "--residual"]
    assert main(argv) == 0
    model, config = seg.load_model(out / "last.pt")
    assert config.residual and model.residual
    assert main(["segment", "predict", "--checkpoint", str(out / "last.pt"), "--images", str(images), "--out", str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred" / "case0.nii.gz").exists()


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["segment", "predict", "--checkpoint", str(tmp_path / "none.pt"), "--images", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "none.pt: no such file" in capsys.readouterr().err


def test_mixed_precision_training_and_inference(tmp_path, make_dataset):
    images, labels = make_dataset(tmp_path, n=2)
    cases = [seg.load_case(i, l) for i, l in seg.find_cases(images, labels)]
    model, history = seg.train(tiny_config(amp=True, steps=3), cases, tmp_path / "amp", val_cases=cases[:1], log=lambda s: None)
    assert all(np.isfinite(history.losses)) and len(history.validation) == 2
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast, not a cast of the weights
    probs = seg.segment_volume(model, cases[0].image, 12, 0.5, "cpu", amp=True)
    assert probs.dtype == torch.float32 and torch.allclose(probs.sum(0), torch.ones(16, 16, 16), atol=1e-3)
