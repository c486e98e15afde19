import pytest
import torch

from asr.losses.focal import FocalLoss, focal_ctc_loss
from asr.losses.label_smoothing import LabelSmoothingLoss
from asr.model.asr_model import ASRModel
from asr.model.ctc import CTCHead
from asr.model.decoder import TransformerDecoder, add_sos_eos, reverse_padded
from asr.model.encoder import ConformerEncoder

V, F, D = 12, 16, 8


def build(ctc_weight=0.3, dropout=0.1, r2l=False, reverse_weight=0.0, att_loss=None, **kwargs):
    torch.manual_seed(0)
    decoder = lambda: TransformerDecoder(V, d_model=D, num_heads=2, num_blocks=2, ffn_dim=16, dropout=dropout)
    return ASRModel(
        V,
        encoder=ConformerEncoder(F, D, num_heads=2, num_blocks=2, ffn_dim=16, kernel_size=5, dropout=dropout),
        decoder=decoder(),
        ctc=CTCHead(V, D),
        att_loss=att_loss or LabelSmoothingLoss(V, smoothing=0.1),
        ctc_weight=ctc_weight,
        r2l_decoder=decoder() if r2l else None,
        reverse_weight=reverse_weight,
        **kwargs,
    )


def batch(short_last=False):
    """3 utterances; with short_last, the last one has 12 frames (T' = 2) for a 5-token target."""
    torch.manual_seed(1)
    feats_lens = torch.tensor([40, 33, 12 if short_last else 25])
    feats = torch.randn(3, 40, F)
    ys = torch.tensor([[1, 2, 3, 4], [5, 5, 6, -1], [7, 8, -1, -1]])
    ys_lens = torch.tensor([4, 3, 2])
    if short_last:
        ys = torch.tensor([[1, 2, 3, 4, -1], [5, 5, 6, -1, -1], [7, 8, 9, 10, 1]])
        ys_lens = torch.tensor([4, 3, 5])
    return feats, feats_lens, ys, ys_lens


@pytest.mark.parametrize("ctc_weight", [0.0, 0.3, 1.0])
def test_joint_loss_is_weighted_sum_of_finite_parts(ctc_weight):
    model = build(ctc_weight).train()
    out = model(*batch())
    assert torch.isfinite(out["loss"])
    assert out["num_infeasible"] == 0
    if ctc_weight == 0.0:
        assert out["loss_ctc"] is None
        torch.testing.assert_close(out["loss"], out["loss_att"])
    elif ctc_weight == 1.0:
        assert out["loss_att"] is None and out["th_accuracy"] is None
        torch.testing.assert_close(out["loss"], out["loss_ctc"])
    else:
        torch.testing.assert_close(out["loss"], 0.3 * out["loss_ctc"] + 0.7 * out["loss_att"])
        assert 0.0 <= out["th_accuracy"] <= 1.0


def test_r2l_attention_loss_is_weighted_sum_of_both_directions():
    model = build(r2l=True, reverse_weight=0.3, dropout=0.0).eval()
    feats, feats_lens, ys, ys_lens = batch()
    out = model(feats, feats_lens, ys, ys_lens)
    enc_out, enc_lens = model.encode(feats, feats_lens)

    def direction_loss(decoder, targets):
        ys_in, ys_out = add_sos_eos(targets, ys_lens, model.sos_id, model.eos_id, -1)
        return model.att_loss(decoder(enc_out, enc_lens, ys_in, ys_lens + 1), ys_out)

    expected = 0.7 * direction_loss(model.decoder, ys) + 0.3 * direction_loss(
        model.r2l_decoder, reverse_padded(ys, ys_lens)
    )
    torch.testing.assert_close(out["loss_att"], expected)


def test_infeasible_utterance_is_counted_and_left_out_of_ctc():
    model = build(ctc_weight=0.5, ctc_focal_gamma=0.0).train()
    feats, feats_lens, ys, ys_lens = batch(short_last=True)
    out = model(feats, feats_lens, ys, ys_lens)
    assert out["num_infeasible"] == 1 and out["ctc_infeasible"].tolist() == [False, False, True]
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # The same CTC loss from the two feasible utterances alone (eval mode: no batch-norm/dropout coupling).
    model.eval()
    out = model(feats, feats_lens, ys, ys_lens)
    enc_out, enc_lens = model.encode(feats[:2], feats_lens[:2])
    per_utt = model.ctc.loss(model.ctc_log_probs(enc_out), enc_lens, ys[:2], ys_lens[:2])
    torch.testing.assert_close(out["loss_ctc"], per_utt.mean())


def test_ctc_focal_gamma_applies_focal_ctc_weight():
    feats, feats_lens, ys, ys_lens = batch()
    plain = build(ctc_weight=1.0, dropout=0.0).eval()
    focal = build(ctc_weight=1.0, dropout=0.0, ctc_focal_gamma=2.0).eval()
    enc_out, enc_lens = plain.encode(feats, feats_lens)
    per_utt = plain.ctc.loss(plain.ctc_log_probs(enc_out), enc_lens, ys, ys_lens)
    torch.testing.assert_close(focal(feats, feats_lens, ys, ys_lens)["loss"], focal_ctc_loss(per_utt, 2.0).mean())


def test_scheduled_sampling_decodes_the_mixed_input():
    """With sampling_prob = 1 every input token after <sos> is the first pass's argmax prediction."""
    model = build(dropout=0.0).train()
    feats, feats_lens, ys, ys_lens = batch()
    out = model(feats, feats_lens, ys, ys_lens, sampling_prob=1.0)
    enc_out, enc_lens = model.encode(feats, feats_lens)
    ys_in, ys_out = add_sos_eos(ys, ys_lens, model.sos_id, model.eos_id, -1)
    pred = model.decoder(enc_out, enc_lens, ys_in, ys_lens + 1).argmax(-1)
    positions = torch.arange(ys_in.size(1))
    mixed = torch.where((positions >= 1) & (positions <= ys_lens[:, None]), pred.roll(1, dims=1), ys_in)
    expected = model.att_loss(model.decoder(enc_out, enc_lens, mixed, ys_lens + 1), ys_out)
    torch.testing.assert_close(out["loss_att"], expected)
    assert not torch.allclose(out["loss_att"], model(feats, feats_lens, ys, ys_lens)["loss_att"])


def test_gradients_reach_every_parameter_with_scheduled_sampling():
    model = build(r2l=True, reverse_weight=0.3, att_loss=FocalLoss(V, gamma=2.0), ctc_focal_gamma=1.0).train()
    out = model(*batch(), sampling_prob=0.5)
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_decoder_scores_combine_both_directions():
    model = build(r2l=True, reverse_weight=0.4).eval()
    enc_out = torch.randn(3, 6, D)
    enc_lens = torch.tensor([6, 5, 4])
    hyps = torch.tensor([[1, 2, 3], [4, 4, -1], [5, -1, -1]])
    hyps_lens = torch.tensor([3, 2, 1])
    l2r = model.decoder.score(enc_out, enc_lens, hyps, hyps_lens, V - 1, V - 1)
    reversed_hyps = torch.tensor([[3, 2, 1], [4, 4, -1], [5, -1, -1]])
    r2l = model.r2l_decoder.score(enc_out, enc_lens, reversed_hyps, hyps_lens, V - 1, V - 1)
    torch.testing.assert_close(model.decoder_scores(enc_out, enc_lens, hyps, hyps_lens), 0.6 * l2r + 0.4 * r2l)


def test_num_params_is_the_sum_of_the_parts():
    model = build(r2l=True, reverse_weight=0.3)
    parts = (model.encoder, model.decoder, model.r2l_decoder, model.ctc)
    assert model.num_params() == sum(p.numel() for part in parts for p in part.parameters())


def test_bad_weights_raise():
    with pytest.raises(ValueError, match="r2l_decoder"):
        build(reverse_weight=0.3)
    with pytest.raises(ValueError, match="ctc_weight"):
        build(ctc_weight=1.5)


@pytest.mark.parametrize("ctc_weight, r2l, reverse_weight", [(0.3, False, 0.0), (1.0, False, 0.0), (0.0, False, 0.0),
                                                            (0.3, True, 0.0), (0.3, True, 0.3), (1.0, True, 0.0)])
def test_unused_modules_are_the_ones_no_gradient_reaches(ctc_weight, r2l, reverse_weight):
    from tests.export.conftest import small_model_config
    from asr.model.registry import build_model

    config = small_model_config(20)
    config.update(ctc_weight=ctc_weight, reverse_weight=reverse_weight, r2l_decoder=dict(config["decoder"]) if r2l else None)
    model = build_model(config, "test")
    out = model(torch.randn(2, 50, 80), torch.tensor([50, 40]), torch.tensor([[3, 4, 5], [6, 7, -1]]), torch.tensor([3, 2]))
    out["loss"].backward()
    no_grad = {name for name, module in model.named_children() if any(p.requires_grad for p in module.parameters())
               and all(p.grad is None or not p.grad.any() for p in module.parameters())}
    assert set(model.unused_modules()) == no_grad
