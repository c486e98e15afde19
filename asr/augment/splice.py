"""Multi-speaker splicing: an utterance joined with utterances of other speakers, transcripts in the same order."""
from __future__ import annotations

import random
from typing import Callable, Sequence

import torch

from asr.augment.base import WaveAugment

Donor = Callable[[random.Random, str], dict]


def _rms(wav: torch.Tensor) -> torch.Tensor:
    return wav.pow(2).mean().sqrt()


class Splice(WaveAugment):
    """Joins the utterance with 1 to ``max_speakers - 1`` utterances of other speakers, in a random order.

    Consecutive pieces are separated by a pause drawn from ``gap_sec`` or, with probability ``overlap_prob``,
    overlap by up to ``max_overlap_sec`` (at most half of either piece, so each piece still ends alone). Donors are
    scaled to the RMS of the utterance. Pauses hold white noise ``gap_noise_db`` below that RMS, because exact
    digital silence gives log-mel frames far below anything in real recordings. The text is the pieces' texts
    joined with ``separator`` in the audio's order; id and speaker stay the utterance's.

    The donors come from a callable set by the dataset with :meth:`set_donor`:
    ``fn(rng: random.Random, exclude_speaker: str) -> sample dict`` of a speaker other than ``exclude_speaker``.
    Or they were planned before batching (:class:`asr.data.splice_plan.SplicePlan`, what
    :class:`asr.data.datamodule.ASRDataModule` does for training): the dataset then puts the loaded donors in the
    sample as ``splice_donors`` (a list of samples, empty for an utterance the plan leaves alone), and the plan's
    draw replaces the probability gate.

    Args:
        prob: probability of splicing an utterance.
        max_speakers: largest number of pieces (speakers) in the result, at least 2.
        gap_sec: ``[min, max]`` pause between pieces, in seconds.
        gap_noise_db: level of the noise in pauses relative to the utterance RMS, in dB; None: zeros.
        overlap_prob: probability that two consecutive pieces overlap instead of being separated.
        max_overlap_sec: longest overlap, in seconds.
        separator: put between the texts ("" for Chinese character units).
        enabled: False switches the augmentation off.
    """

    def __init__(self, prob: float, max_speakers: int = 3, gap_sec: Sequence[float] = (0.1, 0.5),
                 overlap_prob: float = 0.0, max_overlap_sec: float = 0.5, separator: str = "",
                 gap_noise_db: float | None = -40.0, enabled: bool = True):
        super().__init__(prob, enabled)
        if max_speakers < 2:
            raise ValueError(f"Splice: max_speakers must be at least 2, got {max_speakers}")
        self.max_speakers = int(max_speakers)
        self.gap_sec = (float(gap_sec[0]), float(gap_sec[1]))
        self.overlap_prob = float(overlap_prob)
        self.max_overlap_sec = float(max_overlap_sec)
        self.separator = separator
        self.gap_noise_db = None if gap_noise_db is None else float(gap_noise_db)
        self._donor: Donor | None = None

    def set_donor(self, fn: Donor) -> None:
        """Set the source of other speakers' utterances: ``fn(rng, exclude_speaker) -> sample``."""
        self._donor = fn

    def __call__(self, sample: dict, rng: random.Random) -> dict:
        if "splice_donors" not in sample:
            return super().__call__(sample, rng)
        sample = dict(sample)
        donors = sample.pop("splice_donors")
        return self.join(sample, donors, rng) if self.active and donors else sample

    def apply(self, sample: dict, rng: random.Random) -> dict:
        """Args: ``sample["wav"]: (C, N) float``. Returns a new sample with ``wav: (C, N')``, N' the joined length."""
        if self._donor is None:
            raise RuntimeError("Splice: no donor source; the dataset must call set_donor(fn) before use")
        donors = [self._donor(rng, sample["speaker"]) for _ in range(rng.randint(1, self.max_speakers - 1))]
        return self.join(sample, donors, rng)

    def join(self, sample: dict, donors: Sequence[dict], rng: random.Random) -> dict:
        """``sample`` and ``donors`` (samples of other speakers) joined in a random order, with pauses or overlaps
        drawn from ``rng``. Returns a new sample with ``wav: (C, N')``."""
        wav, rate = sample["wav"], sample["sample_rate"]
        level = _rms(wav)
        pieces = [(wav, sample["text"])]
        for donor in donors:
            if donor["sample_rate"] != rate or donor["wav"].shape[0] != wav.shape[0]:
                raise ValueError(f"Splice: donor {donor.get('id')} ({donor['sample_rate']} Hz, "
                                 f"{donor['wav'].shape[0]} ch) does not match utterance {sample.get('id')} "
                                 f"({rate} Hz, {wav.shape[0]} ch)")
            donor_level = _rms(donor["wav"])
            gain = level / donor_level if level > 0 and donor_level > 0 else 1.0  # never silence a piece
            pieces.append((donor["wav"] * gain, donor["text"]))
        rng.shuffle(pieces)
        generator = torch.Generator().manual_seed(rng.getrandbits(63))  # for the pause noise

        out, last = pieces[0][0], pieces[0][0].shape[-1]
        for piece, _ in pieces[1:]:
            if rng.random() < self.overlap_prob:
                overlap = min(int(rng.uniform(0, self.max_overlap_sec) * rate), last // 2, piece.shape[-1] // 2)
                out = torch.cat([out, piece[:, overlap:]], dim=-1)  # (C, N_out + N_piece - overlap)
                start = out.shape[-1] - piece.shape[-1]
                out[:, start:start + overlap] += piece[:, :overlap]
            else:
                gap = wav.new_zeros(wav.shape[0], int(rng.uniform(*self.gap_sec) * rate))  # (C, gap)
                if self.gap_noise_db is not None:
                    gap.normal_(generator=generator).mul_(level * 10 ** (self.gap_noise_db / 20))
                out = torch.cat([out, gap, piece], dim=-1)
            last = piece.shape[-1]
        text = self.separator.join(text for _, text in pieces)
        return dict(sample, wav=out.clamp(-1.0, 1.0), text=text)
