"""ASRLitModule's step: a non-finite batch is skipped as if it had never been there, and too many stop training."""
from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch

from asr.lit_module import ASRLitModule
from asr.model.registry import build_model
from asr.tokenizer.char import CharTokenizer
from tests.export.conftest import small_model_config

TOKENIZER = CharTokenizer.build(["今天天气很好我们去北京"])


def batch(seed: int, bad: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(3, 60, 80, generator=g)
    if bad:
        feats[1, 10] = float("nan")
    ys = torch.randint(2, len(TOKENIZER) - 1, (3, 4), generator=g)
    return {"ids": [f"u{seed}_{i}" for i in range(3)], "feats": feats, "feats_lens": torch.tensor([60, 52, 40]),
            "ys": ys, "ys_lens": torch.tensor([4, 3, 4]), "texts": ["x"] * 3}


def train(batches: list[dict], max_bad: int = 20) -> ASRLitModule:
    torch.manual_seed(0)
    config = small_model_config(len(TOKENIZER))
    config["encoder"]["dropout"] = config["decoder"]["dropout"] = 0.0
    module = ASRLitModule(build_model(config, "test config"), TOKENIZER,
                          optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.1),
                          max_bad_batches=max_bad)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return module


def test_a_nan_batch_changes_nothing_as_if_it_had_not_been_there():
    good = [batch(1), batch(2), batch(3)]
    with_nan = train([good[0], batch(9, bad=True), *good[1:]])
    without = train(good)
    assert with_nan.bad_total == 1 and without.bad_total == 0
    for (name, a), (_, b) in zip(with_nan.model.state_dict().items(), without.model.state_dict().items()):
        assert torch.equal(a, b), name  # no update, no momentum, no weight decay from the skipped step


def test_too_many_bad_steps_in_a_row_stop_with_a_clear_error():
    with pytest.raises(RuntimeError, match="3 optimizer steps in a row were skipped"):
        train([batch(1)] + [batch(10 + i, bad=True) for i in range(4)], max_bad=3)


def validate(val_chunk_size: int, batches: list[dict]) -> tuple[ASRLitModule, dict]:
    torch.manual_seed(0)
    config = small_model_config(len(TOKENIZER), streaming=True, causal=True)
    module = ASRLitModule(build_model(config, "test config"), TOKENIZER, optimizer=torch.optim.AdamW,
                          val_chunk_size=val_chunk_size)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    (metrics,) = trainer.validate(module, dataloaders=torch.utils.data.DataLoader(batches, batch_size=None),
                                  verbose=False)
    return module, metrics


def test_streaming_validation_cer_is_greedy_search_under_the_chunk_mask():
    import jiwer

    from asr.decoding.ctc_greedy import ctc_greedy_search

    batches = [batch(1), batch(2)]
    module, metrics = validate(2, batches)
    refs, hyps = [], []
    module.eval()
    with torch.no_grad():
        for b in batches:
            enc_out, enc_lens = module.model.encode(b["feats"], b["feats_lens"], chunk_size=2)
            ids, _ = ctc_greedy_search(module.model.ctc_log_probs(enc_out), enc_lens)
            hyps += [TOKENIZER.decode(h) for h in ids]
            refs += b["texts"]
    assert metrics["val/cer_chunk"] == pytest.approx(jiwer.cer(refs, hyps), abs=1e-6)
    _, whole = validate(1000, batches)  # one chunk longer than any utterance: full context
    assert whole["val/cer_chunk"] == pytest.approx(whole["val/cer"], abs=1e-7)


def train_clipped(fused: bool, clip: float | None, precision: str = "bf16-mixed") -> ASRLitModule:
    torch.manual_seed(0)
    config = small_model_config(len(TOKENIZER))
    config["encoder"]["dropout"] = config["decoder"]["dropout"] = 0.0
    module = ASRLitModule(build_model(config, "test config"), TOKENIZER,
                          optimizer=functools.partial(torch.optim.AdamW, lr=1e-2, fused=fused))
    trainer = pl.Trainer(accelerator="cpu", precision=precision, gradient_clip_val=clip, max_epochs=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader([batch(1), batch(2), batch(3)],
                                                                      batch_size=None))
    return module


def test_a_fused_optimizer_under_bf16_clips_as_lightning_clips_an_unfused_one():
    """Lightning refuses gradient clipping for fused AdamW under mixed precision (found on an H200: the demo recipe
    stopped at its first step); under bf16 nothing is scaled, so the module clips itself. Same updates as Lightning's
    own clipping of the foreach AdamW, and clipping does change them."""
    fused = train_clipped(fused=True, clip=0.05)
    foreach = train_clipped(fused=False, clip=0.05)
    unclipped = train_clipped(fused=False, clip=None)
    changed = False
    for (name, a), (_, b), (_, c) in zip(fused.model.state_dict().items(), foreach.model.state_dict().items(),
                                         unclipped.model.state_dict().items()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
            changed |= not torch.allclose(a, c, rtol=1e-4, atol=1e-5)
    assert changed



@pytest.mark.parametrize("scaler,clip,fused", [(True, 1.0, False), (True, None, True), (False, 1.0, True)])
def test_under_fp16_a_fused_optimizer_becomes_foreach_when_gradients_are_clipped(scaler, clip, fused):
    """With a gradient scaler (fp16; CPU has none: Lightning turns 16-mixed into bf16 there) Lightning unscales
    before clipping and refuses a fused optimizer, which unscales inside its step: the module builds the foreach one."""
    from types import SimpleNamespace

    module = ASRLitModule(build_model(small_model_config(len(TOKENIZER)), "test config"), TOKENIZER,
                          optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, fused=True))
    module._trainer = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=object() if scaler else None),
                                      gradient_clip_val=clip, precision="16-mixed" if scaler else "bf16-mixed")
    optimizer = module.configure_optimizers()
    assert optimizer.defaults["fused"] is fused
