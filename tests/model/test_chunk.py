"""Chunk-by-chunk encoding (caches) against the full forward under the equivalent chunk mask."""
import pytest
import torch

from asr.model.chunk import chunk_mask, draw_chunk_size
from asr.model.encoder import ConformerEncoder
from asr.model.subsampling import subsampled_length

TINY = dict(input_dim=16, d_model=8, num_heads=2, num_blocks=2, ffn_dim=16, kernel_size=5, dropout=0.1)


def build(pos_enc="rel", subsampling="conv2d6", use_conv=True, conv_norm="batch"):
    torch.manual_seed(0)
    encoder = ConformerEncoder(**TINY, pos_enc=pos_enc, subsampling=subsampling, use_conv=use_conv,
                               conv_norm=conv_norm, causal=True, streaming=True)
    for m in encoder.modules():  # random BatchNorm statistics, so eval-mode normalisation is not the identity
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return encoder.double().eval()


def encode_in_chunks(encoder, feats, chunk_size, num_left_chunks):
    """Feed (1, T, F) features chunk by chunk; returns the concatenated (1, T', D) output."""
    att_cache, cnn_cache = encoder.initial_cache(1, dtype=feats.dtype)
    window, stride = encoder.chunk_input_frames(chunk_size), chunk_size * encoder.subsampling_rate
    cache_size = chunk_size * num_left_chunks if num_left_chunks >= 0 else -1
    outs, offset, start = [], 0, 0
    total = int(subsampled_length(feats.size(1), encoder.subsampling.subsampling))
    while offset < total:
        piece = feats[:, start : start + window]
        out, att_cache, cnn_cache = encoder.forward_chunk(piece, offset, att_cache, cnn_cache, cache_size)
        outs.append(out)
        offset += out.size(1)
        start += stride
        if cache_size >= 0:
            assert att_cache.size(3) <= cache_size
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("pos_enc", ["rel", "rope", "abs", "none"])
@pytest.mark.parametrize("chunk_size,num_left_chunks", [(1, -1), (4, -1), (5, 2), (8, 0), (16, 1), (3, 3)])
def test_chunk_by_chunk_equals_masked_full_forward(pos_enc, chunk_size, num_left_chunks):
    encoder = build(pos_enc)
    feats = torch.randn(1, 187, 16, dtype=torch.float64)  # 30 encoder frames: chunks of every size end unevenly
    full, lens = encoder(feats, torch.tensor([187]), chunk_size=chunk_size, num_left_chunks=num_left_chunks)
    chunked = encode_in_chunks(encoder, feats, chunk_size, num_left_chunks)
    assert chunked.shape == full.shape
    assert float((chunked - full).abs().max()) < 1e-5


@pytest.mark.parametrize("subsampling", ["conv2d4", "conv2d8"])
def test_other_subsamplings_and_layer_norm_and_transformer(subsampling):
    for use_conv, norm in ((True, "layer"), (False, "batch")):
        encoder = build("rel", subsampling, use_conv, norm)
        feats = torch.randn(1, 150, 16, dtype=torch.float64)
        full, _ = encoder(feats, torch.tensor([150]), chunk_size=4, num_left_chunks=1)
        assert float((encode_in_chunks(encoder, feats, 4, 1) - full).abs().max()) < 1e-5


def test_float32_chunks_within_tolerance():
    encoder = build("rel").float()
    feats = torch.randn(1, 187, 16)
    full, _ = encoder(feats, torch.tensor([187]), chunk_size=8, num_left_chunks=-1)
    assert float((encode_in_chunks(encoder, feats, 8, -1) - full).abs().max()) < 1e-5


def test_chunk_mask_is_a_padded_batch_too():
    """The chunk mask combines with padding: each utterance of a batch alone gives the same frames."""
    encoder = build("rel")
    feats, feats_lens = torch.randn(2, 187, 16, dtype=torch.float64), torch.tensor([187, 120])
    out, lens = encoder(feats, feats_lens, chunk_size=4)
    alone, _ = encoder(feats[1:, :120], feats_lens[1:], chunk_size=4)
    torch.testing.assert_close(out[1, : lens[1]], alone[0], rtol=0, atol=1e-10)


def test_fixed_size_cache_with_empty_slots_equals_growing_cache():
    """The exported form: a cache of fixed length whose unused slots are masked, and a padded last chunk."""
    encoder = build("rel")
    chunk, left = 4, 2
    feats = torch.randn(1, 130, 16, dtype=torch.float64)
    reference = encode_in_chunks(encoder, feats, chunk, left)
    size = chunk * left
    att_cache, cnn_cache = encoder.initial_cache(1, dtype=feats.dtype)
    att_cache = torch.zeros(*att_cache.shape[:3], size, att_cache.size(4), dtype=feats.dtype)
    window, stride = encoder.chunk_input_frames(chunk), chunk * encoder.subsampling_rate
    outs, valid, offset = [], 0, 0
    for start in range(0, 130, stride):
        piece = feats[:, start : start + window]
        if piece.size(1) < encoder.min_input_frames:
            break
        n = piece.size(1)
        padded = torch.nn.functional.pad(piece, (0, 0, 0, window - n))  # (1, window, F)
        empty = torch.arange(size) < size - valid  # (L,) the oldest slots are empty until the cache is full
        out, att_cache, cnn_cache = encoder.forward_chunk(padded, offset, att_cache, cnn_cache, size,
                                                          torch.tensor([n]), empty.unsqueeze(0))
        got = int(subsampled_length(n, encoder.subsampling.subsampling))
        outs.append(out[:, :got])
        valid, offset = min(size, valid + got), offset + got
    fixed = torch.cat(outs, dim=1)
    assert fixed.shape == reference.shape
    assert float((fixed - reference).abs().max()) < 1e-5


def test_chunk_mask_sees_own_and_left_chunks_only():
    mask = chunk_mask(7, 2, num_left_chunks=1)
    visible = ~mask
    assert visible[0].tolist() == [True, True, False, False, False, False, False]
    assert visible[5].tolist() == [False, False, True, True, True, True, False]
    assert visible[6].tolist() == [False, False, False, False, True, True, True]
    assert (~chunk_mask(7, 2))[6].all()
    with pytest.raises(ValueError, match="positive"):
        chunk_mask(7, 0)


def test_draw_chunk_size_range_and_full_context_share():
    g = torch.Generator().manual_seed(0)
    draws = [draw_chunk_size(25, 0.3, g) for _ in range(4000)]
    chunks = [d for d in draws if d]
    assert set(chunks) == set(range(1, 26))
    assert abs(draws.count(0) / len(draws) - 0.3) < 0.03


def test_training_draws_chunks_and_eval_keeps_full_context():
    encoder = build("rel")
    feats, lens = torch.randn(1, 187, 16, dtype=torch.float64), torch.tensor([187])
    full, _ = encoder(feats, lens, chunk_size=0)
    assert torch.equal(encoder(feats, lens)[0], full)  # eval: full context by default
    encoder.train()
    encoder.full_context_prob = 0.0
    for m in encoder.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    encoder.max_chunk_size = 1  # every draw is chunk 1
    trained, _ = encoder(feats, lens)
    for m in encoder.modules():  # same BatchNorm statistics in both passes: compare in train mode
        if isinstance(m, torch.nn.BatchNorm1d):
            m.eval()
    torch.testing.assert_close(encoder(feats, lens)[0], encoder(feats, lens, chunk_size=1)[0])
    assert not torch.allclose(trained, full)


def test_chunk_only_steps_hold_back_full_context_until_the_step():
    encoder = build("rel")
    for m in encoder.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    feats, lens = torch.randn(1, 187, 16, dtype=torch.float64), torch.tensor([187])
    full, _ = encoder(feats, lens, chunk_size=0)
    encoder.train()
    for m in encoder.modules():  # running statistics out of the comparison
        if isinstance(m, torch.nn.BatchNorm1d):
            m.eval()
    encoder.full_context_prob, encoder.chunk_only_steps = 1.0, 10  # after the warm-up: always full context
    encoder.set_training_step(9)
    assert encoder.current_full_context_prob() == 0.0
    assert not torch.allclose(encoder(feats, lens)[0], full)  # a chunk was drawn
    encoder.set_training_step(10)
    torch.testing.assert_close(encoder(feats, lens)[0], full)


def test_non_causal_encoder_refuses_chunks():
    torch.manual_seed(0)
    encoder = ConformerEncoder(**TINY).eval()
    att_cache, cnn_cache = encoder.initial_cache(1)
    with pytest.raises(ValueError, match="not causal"):
        encoder.forward_chunk(torch.randn(1, 20, 16), 0, att_cache, cnn_cache)
