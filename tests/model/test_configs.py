from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from asr.losses.focal import FocalLoss
from asr.losses.label_smoothing import LabelSmoothingLoss
from asr.model.asr_model import ASRModel
from asr.model.attention import RelPositionMultiHeadAttention

CONF = str(Path(__file__).resolve().parents[2] / "conf")


def compose_model(model: str, loss: str, vocab_size: int):
    """The model config with the loss mounted at model.att_loss, as the training config does."""
    with initialize_config_dir(config_dir=CONF, version_base=None):
        cfg = compose(overrides=[f"+model={model}", f"+loss@model.att_loss={loss}", f"model.vocab_size={vocab_size}"])
    return cfg.model


@pytest.mark.parametrize("model", ["conformer", "transformer", "tiny"])
def test_interpolations_link_sizes(model):
    cfg = compose_model(model, "label_smoothing", 37)
    assert cfg.decoder.vocab_size == cfg.ctc.vocab_size == cfg.att_loss.vocab_size == 37
    assert cfg.decoder.d_model == cfg.ctc.d_model == cfg.encoder.d_model


@pytest.mark.parametrize("loss, loss_class", [("label_smoothing", LabelSmoothingLoss), ("focal", FocalLoss)])
def test_tiny_instantiates_and_runs(loss, loss_class):
    model = instantiate(compose_model("tiny", loss, 37))
    assert isinstance(model, ASRModel) and type(model.att_loss) is loss_class
    assert model.att_loss.vocab_size == model.ctc.proj.out_features == model.decoder.output.out_features == 37
    ys = torch.tensor([[1, 2, 3], [4, 5, -1]])
    out = model(torch.randn(2, 30, 80), torch.tensor([30, 24]), ys, torch.tensor([3, 2]))
    assert torch.isfinite(out["loss"])


@pytest.mark.parametrize("model", ["conformer", "transformer"])
def test_full_size_instantiates(model):
    asr_model = instantiate(compose_model(model, "focal", 4233))
    block = asr_model.encoder.blocks[0]
    is_conformer = model == "conformer"
    assert isinstance(block.self_attn, RelPositionMultiHeadAttention) == is_conformer
    assert (block.conv is not None) == (block.macaron_ff is not None) == is_conformer
