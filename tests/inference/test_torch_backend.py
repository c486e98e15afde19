"""The PyTorch backend: step-by-step decoder log-probabilities against one-pass hypothesis scores."""
from __future__ import annotations

import torch

from asr.inference.backends import TorchBackend
from tests.inference.conftest import pad


def test_decoder_steps_sum_to_the_decoder_score(loaded, dataset):
    backend = TorchBackend(loaded.model)
    feats, feats_lens = pad([dataset[i]["feats"] for i in range(2)])
    enc_out, enc_lens = backend.encode(feats, feats_lens)
    sos = eos = loaded.tokenizer.eos_id
    hyps = torch.tensor([[5, 9, 5, 2], [7, 3, 0, 0]])  # (N, L), the second of length 2
    hyps_lens = torch.tensor([4, 2])
    scores = backend.decoder_scores(enc_out, enc_lens, hyps, hyps_lens)  # (N,)
    for n in range(2):
        tokens = hyps[n, : hyps_lens[n]].tolist() + [eos]
        stepped = 0.0
        for i, token in enumerate(tokens):
            ys_in = torch.tensor([[sos] + tokens[:i]])  # (1, i + 1)
            stepped += float(backend.decoder_step(enc_out[n : n + 1], enc_lens[n : n + 1], ys_in)[0, token])
        assert abs(stepped - float(scores[n])) < 1e-4 * max(1.0, abs(stepped))


def test_outputs_are_inference_tensors_on_the_backend_device(loaded, dataset):
    backend = TorchBackend(loaded.model)
    enc_out, enc_lens = backend.encode(*pad([dataset[0]["feats"]]))
    log_probs = backend.ctc_log_probs(enc_out)
    assert log_probs.shape[:2] == enc_out.shape[:2] and log_probs.shape[2] == len(loaded.tokenizer)
    assert all(t.device == backend.device and t.is_inference() for t in (enc_out, enc_lens, log_probs))
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]), atol=1e-4)
