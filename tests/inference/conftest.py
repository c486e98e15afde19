"""Fixtures of the inference tests: the tiny model file, loaded, and features of its test utterances."""
from __future__ import annotations

import pytest
import torch

from asr.data.dataset import ManifestDataset
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline
from asr.modelfile import LoadedModel, load_model_file


@pytest.fixture(scope="package")
def loaded(tiny_model_file) -> LoadedModel:
    return load_model_file(tiny_model_file)


@pytest.fixture(scope="package")
def dataset(loaded, prepared_synthetic) -> ManifestDataset:
    """The test split through the training data path (no augmentation)."""
    pipeline = SamplePipeline(loaded.fbank, loaded.cmvn, loaded.tokenizer)
    return ManifestDataset(Manifest(prepared_synthetic / "test.jsonl"), pipeline)


def pad(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_b, F) features -> (B, T, F) zero-padded batch and (B,) lengths."""
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), torch.tensor([len(f) for f in feats])
