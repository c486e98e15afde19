"""The recognizer on the tiny model: batched vs one by one, modes against each other and against the model."""
from __future__ import annotations

import pytest
import torch

from asr.decoding.ctc_prefix_beam import ctc_prefix_beam_search_batch
from asr.inference import modes as modes_module
from asr.inference.backends import TorchBackend, UnsupportedOperation
from asr.inference.modes import MODES
from asr.inference.recognizer import Recognizer
from asr.model.decoder import reverse_padded
from tests.inference.conftest import pad


def make_recognizer(loaded, backend=None, **kwargs) -> Recognizer:
    return Recognizer(backend or TorchBackend(loaded.model), loaded.tokenizer, loaded.fbank, loaded.cmvn, **kwargs)


class CountingBackend(TorchBackend):
    """Counts encoder runs."""

    encode_calls = 0

    def encode(self, feats, feats_lens):
        self.encode_calls += 1
        return super().encode(feats, feats_lens)


def test_batched_equals_one_at_a_time_for_every_mode(loaded, dataset, monkeypatch):
    # Cut utterances to different lengths: padding matters, and the attention search stays short
    # (this barely trained model rarely ends a hypothesis before its frame count).
    feats = [dataset[i]["feats"][:n] for i, n in enumerate((90, 130, 60, 110))]
    backend = CountingBackend(loaded.model)
    rec = make_recognizer(loaded, backend, beam=3, nbest=3)
    nbest_calls = []
    monkeypatch.setattr(modes_module, "ctc_prefix_beam_search_batch",
                        lambda *a, **k: nbest_calls.append(1) or ctc_prefix_beam_search_batch(*a, **k))

    batched = rec.decode_ids(*pad(feats), list(MODES))
    assert backend.encode_calls == 1 and len(nbest_calls) == 1  # shared by all modes / by the two that need it
    for b, f in enumerate(feats):
        one = rec.decode_ids(*pad([f]), list(MODES))
        assert {mode: hyps[0] for mode, hyps in one.items()} == {mode: hyps[b] for mode, hyps in batched.items()}
    texts = rec.decode_feats(*pad(feats), list(MODES))
    assert texts == {mode: [loaded.tokenizer.decode(h) for h in hyps] for mode, hyps in batched.items()}


def test_prefix_beam_search_with_beam_1_is_greedy_search(loaded, dataset):
    feats = [dataset[i]["feats"] for i in range(len(dataset))]
    rec = make_recognizer(loaded, beam=1, nbest=1)
    out = rec.decode_feats(*pad(feats), ["ctc_greedy_search", "ctc_prefix_beam_search"])
    assert out["ctc_prefix_beam_search"] == out["ctc_greedy_search"]
    assert any(out["ctc_greedy_search"])  # not trivially equal (all empty)


@pytest.mark.parametrize("ctc_weight", [0.0, 1e6])
def test_rescoring_picks_the_best_decoder_score_or_the_ctc_best(loaded, dataset, ctc_weight):
    feats, feats_lens = pad([dataset[i]["feats"] for i in range(4)])
    model = loaded.model
    with torch.inference_mode():
        enc_out, enc_lens = model.encode(feats, feats_lens)
        nbests = ctc_prefix_beam_search_batch(model.ctc_log_probs(enc_out), enc_lens, beam=4, nbest=4)
        expected = []
        for b, nbest in enumerate(nbests):
            if ctc_weight == 0.0:  # the decoder alone, one hypothesis at a time on the unpadded encoder output
                n = int(enc_lens[b])
                scores = [float(model.decoder_scores(enc_out[b : b + 1, :n], enc_lens[b : b + 1],
                                                     torch.tensor([hyp], dtype=torch.long).view(1, len(hyp)),
                                                     torch.tensor([len(hyp)]))) for hyp, _ in nbest]
                expected.append(list(nbest[scores.index(max(scores))][0]))
            else:  # CTC dominates
                expected.append(list(nbest[0][0]))
    rec = make_recognizer(loaded, beam=4, nbest=4, ctc_weight=ctc_weight)
    assert rec.decode_ids(feats, feats_lens, ["attention_rescoring"])["attention_rescoring"] == expected


def test_transcribe_equals_decoding_the_dataset_features(loaded, dataset):
    rows = [dataset.manifest[i] for i in range(3)]
    wavs = [dataset.pipeline.load(row)["wav"] for row in rows]
    rec = make_recognizer(loaded, beam=3, nbest=3)
    expected = rec.decode_feats(*pad([dataset[i]["feats"] for i in range(3)]), ["attention_rescoring"])
    assert rec.transcribe(wavs) == expected["attention_rescoring"]


def test_unknown_mode_lists_the_allowed_ones(loaded, dataset):
    with pytest.raises(ValueError, match="'beam_search'.*allowed.*attention_rescoring"):
        make_recognizer(loaded).decode_feats(*pad([dataset[0]["feats"]]), ["ctc_greedy_search", "beam_search"])


class NoStepBackend(TorchBackend):
    def decoder_step(self, enc_out, enc_lens, ys_in):
        raise UnsupportedOperation("NoStepBackend has no decoder_step")


def test_a_backend_without_decoder_step_serves_the_other_modes(loaded, dataset):
    feats, feats_lens = pad([dataset[i]["feats"][:80] for i in range(2)])
    other_modes = [m for m in MODES if m != "attention"]
    full = make_recognizer(loaded, beam=3, nbest=3).decode_ids(feats, feats_lens, other_modes)
    rec = make_recognizer(loaded, NoStepBackend(loaded.model), beam=3, nbest=3)
    assert rec.decode_ids(feats, feats_lens, other_modes) == full
    with pytest.raises(UnsupportedOperation, match="NoStepBackend"):
        rec.decode_ids(feats, feats_lens, ["attention"])


def test_two_recognizers_with_different_mode_tables_do_not_see_each_others_modes(loaded, dataset):
    from asr.inference.modes import Mode

    feats, feats_lens = pad([dataset[i]["feats"][:80] for i in range(2)])
    reversed_greedy = Mode(lambda rec, enc: [h[::-1] for h in MODES["ctc_greedy_search"].search(rec, enc)])
    plain = make_recognizer(loaded)
    extended = make_recognizer(loaded, modes={**MODES, "reversed_greedy": reversed_greedy})
    only_greedy = make_recognizer(loaded, modes={"ctc_greedy_search": MODES["ctc_greedy_search"]})
    greedy = plain.decode_ids(feats, feats_lens, ["ctc_greedy_search"])["ctc_greedy_search"]
    assert extended.decode_ids(feats, feats_lens, ["reversed_greedy"])["reversed_greedy"] == [h[::-1] for h in greedy]
    for rec, missing in ((plain, "reversed_greedy"), (only_greedy, "attention_rescoring"),
                         (only_greedy, "reversed_greedy")):
        with pytest.raises(ValueError, match=f"'{missing}'"):
            rec.decode_ids(feats, feats_lens, [missing])
    assert "reversed_greedy" not in MODES and only_greedy.decode_ids(feats, feats_lens, ["ctc_greedy_search"]) == {
        "ctc_greedy_search": greedy}


def test_decode_time_reverse_weight_mixes_the_two_decoders_and_exported_backends_refuse_another():
    from asr.model.registry import build_model
    from tests.export.conftest import small_model_config

    torch.manual_seed(0)
    config = small_model_config(20)
    config.update(r2l_decoder=dict(config["decoder"]), reverse_weight=0.3)
    model = build_model(config, "test").eval()
    enc_out, enc_lens = torch.randn(3, 9, 64), torch.tensor([9, 7, 5])
    hyps, hyps_lens = torch.tensor([[3, 4, 5], [6, 7, 0], [8, 0, 0]]), torch.tensor([3, 2, 1])
    with torch.no_grad():
        l2r = model.decoder.score(enc_out, enc_lens, hyps, hyps_lens, model.sos_id, model.eos_id)
        r2l = model.r2l_decoder.score(enc_out, enc_lens, reverse_padded(hyps, hyps_lens), hyps_lens, model.sos_id,
                                      model.eos_id)
    for weight in (None, 0.0, 0.8):
        backend = TorchBackend(model)
        backend.set_reverse_weight(weight)
        w = 0.3 if weight is None else weight
        torch.testing.assert_close(backend.decoder_scores(enc_out, enc_lens, hyps, hyps_lens), (1 - w) * l2r + w * r2l)
    plain = TorchBackend(build_model(small_model_config(20), "test"))
    with pytest.raises(ValueError, match="right-to-left decoder"):
        plain.set_reverse_weight(0.5)
