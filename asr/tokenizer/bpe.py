"""Sentencepiece BPE for mixed Chinese-English text.

Sentencepiece's own ids are shifted so that ``<blank>`` = 0 and ``<unk>`` = 1 (sentencepiece's
pad and unk pieces), and ``<sos/eos>`` is appended last. The trained model bytes travel inside
the model file (base64) and are written beside it as ``bpe.model``.
"""
from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Iterable

from asr.tokenizer.base import BLANK, SOS_EOS, UNK, Tokenizer
from asr.utils.io import atomic_write


class BPETokenizer(Tokenizer):
    kind = "bpe"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        if self.sp.pad_id() != 0 or self.sp.unk_id() != 1:
            raise ValueError("BPE model must be trained with pad_id=0 (<blank>) and unk_id=1 (<unk>)")
        units = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())] + [SOS_EOS]
        super().__init__(units)

    def split(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def join(self, units: list[str]) -> str:
        return self.sp.decode_pieces(units)

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model": base64.b64encode(self.model_proto).decode("ascii")}

    def save(self, directory: str | os.PathLike) -> Path:
        with atomic_write(Path(directory) / "bpe.model", "wb") as f:
            f.write(self.model_proto)
        return super().save(directory)

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 500) -> "BPETokenizer":
        """Train a BPE model on ``texts`` (every character kept: character_coverage 1.0)."""
        import sentencepiece as spm

        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(list(texts)), model_writer=buf, vocab_size=vocab_size,
            model_type="bpe", character_coverage=1.0, pad_id=0, pad_piece=BLANK, unk_id=1,
            unk_piece=UNK, bos_id=-1, eos_id=-1, hard_vocab_limit=False, minloglevel=2,
            split_digits=True)
        return cls(buf.getvalue())
