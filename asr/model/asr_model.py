"""Joint CTC/attention ASR model: encoder, CTC head, attention decoder(s) and their losses."""
from __future__ import annotations

import torch
from torch import nn

from asr.losses.focal import focal_ctc_loss
from asr.model.ctc import ctc_min_frames
from asr.model.decoder import add_sos_eos, reverse_padded
from asr.model.mask import make_pad_mask
from asr.model.scheduled_sampling import mix_decoder_input


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


class ASRModel(nn.Module):
    """Hybrid CTC/attention model (Watanabe et al. 2017).

    loss = ctc_weight * loss_ctc + (1 - ctc_weight) * loss_att, with
    loss_att = (1 - reverse_weight) * loss_l2r + reverse_weight * loss_r2l when a right-to-left decoder
    is given (it reads each target reversed).

    Args:
        vocab_size: output units V; unit 0 is the CTC blank.
        encoder: maps (feats, feats_lens) to (enc_out, enc_lens), e.g. ``ConformerEncoder``.
        decoder: left-to-right ``TransformerDecoder``.
        ctc: ``CTCHead``.
        att_loss: loss on decoder logits, e.g. ``LabelSmoothingLoss`` or ``FocalLoss``.
        ctc_weight: weight of the CTC loss in [0, 1]; 1 skips the decoder, 0 skips CTC.
        r2l_decoder: optional right-to-left ``TransformerDecoder``.
        reverse_weight: weight of the right-to-left decoder in the attention loss and in
            ``decoder_scores`` (needs ``r2l_decoder`` when > 0).
        ctc_focal_gamma: focal exponent on per-utterance CTC losses (``focal_ctc_loss``); 0 = off.
        sos_id, eos_id: start/end symbols; default V - 1 (one shared <sos/eos> unit, last in the vocabulary).
        ignore_id: padding value of ``ys``.
    """

    def __init__(
        self,
        vocab_size: int,
        encoder: nn.Module,
        decoder: nn.Module,
        ctc: nn.Module,
        att_loss: nn.Module,
        ctc_weight: float = 0.3,
        r2l_decoder: nn.Module | None = None,
        reverse_weight: float = 0.0,
        ctc_focal_gamma: float = 0.0,
        sos_id: int | None = None,
        eos_id: int | None = None,
        ignore_id: int = -1,
    ):
        super().__init__()
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        if not 0.0 <= reverse_weight <= 1.0:
            raise ValueError(f"reverse_weight must be in [0, 1], got {reverse_weight}")
        if reverse_weight > 0 and r2l_decoder is None:
            raise ValueError("reverse_weight > 0 needs an r2l_decoder")
        self.vocab_size = vocab_size
        self.encoder, self.decoder, self.ctc, self.att_loss, self.r2l_decoder = (
            encoder, decoder, ctc, att_loss, r2l_decoder
        )
        self.ctc_weight = ctc_weight
        self.reverse_weight = reverse_weight
        self.ctc_focal_gamma = ctc_focal_gamma
        self.sos_id = vocab_size - 1 if sos_id is None else sos_id
        self.eos_id = vocab_size - 1 if eos_id is None else eos_id
        self.ignore_id = ignore_id

    def unused_modules(self) -> list[str]:
        """The parts no training loss reaches with these weights (DDP must be told: it waits for their gradients)."""
        unused = []
        if self.ctc_weight >= 1.0:
            unused += ["decoder"] + (["r2l_decoder"] if self.r2l_decoder is not None else [])
        elif self.r2l_decoder is not None and self.reverse_weight == 0:
            unused.append("r2l_decoder")
        if self.ctc_weight <= 0.0:
            unused.append("ctc")
        return unused

    def encode(self, feats: torch.Tensor, feats_lens: torch.Tensor, **chunking) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: feats: (B, T, F); feats_lens: (B,); chunking: ``chunk_size``, ``num_left_chunks`` for a streaming
        encoder (``ConformerEncoder.forward``). Returns: enc_out (B, T', D), enc_lens (B,)."""
        return self.encoder(feats, feats_lens, **chunking)

    def ctc_log_probs(self, enc_out: torch.Tensor) -> torch.Tensor:
        """Args: enc_out: (B, T', D). Returns: log_probs (B, T', V)."""
        return self.ctc(enc_out)

    def forward(
        self,
        feats: torch.Tensor,
        feats_lens: torch.Tensor,
        ys: torch.Tensor,
        ys_lens: torch.Tensor,
        sampling_prob: float = 0.0,
    ) -> dict:
        """Compute the training losses.

        Utterances whose encoder output is shorter than their target needs under CTC
        (``ctc_min_frames``) are left out of the CTC loss (not of the attention loss) and counted.

        Scheduled sampling (``sampling_prob`` > 0, training mode only): a first teacher-forced decoder
        pass under ``torch.no_grad`` gives argmax predictions; ``mix_decoder_input`` replaces each
        input token (not <sos>, not padding) by the prediction for its position with probability
        ``sampling_prob``; the mixed input is decoded again and that pass gives the loss. The
        right-to-left decoder, if any, does the same on its own input.

        Args:
            feats: (B, T, F) float.
            feats_lens: (B,) int64.
            ys: (B, L) int64, padded with ignore_id.
            ys_lens: (B,) int64.
            sampling_prob: scheduled sampling probability in [0, 1].

        Returns:
            dict with
            loss: scalar tensor, the joint loss;
            loss_ctc: scalar tensor, mean CTC loss over feasible utterances (None if ctc_weight == 0);
            loss_att: scalar tensor, attention loss (None if ctc_weight == 1);
            num_infeasible: int, utterances left out of the CTC loss;
            ctc_infeasible: (B,) bool, which ones;
            th_accuracy: scalar tensor, left-to-right token accuracy incl. <eos> (None if ctc_weight == 1);
            enc_out: (B, T', D) float and enc_lens: (B,) int64, the encoder's output (for validation's search).
        """
        enc_out, enc_lens = self.encode(feats, feats_lens)
        infeasible = enc_lens < ctc_min_frames(ys, ys_lens)  # (B,)
        loss_ctc = loss_att = th_accuracy = None
        if self.ctc_weight > 0:
            loss_ctc = self._ctc_loss(enc_out, enc_lens, ys, ys_lens, infeasible)
        if self.ctc_weight < 1:
            loss_att, th_accuracy = self._decoder_loss(self.decoder, enc_out, enc_lens, ys, ys_lens, sampling_prob)
            if self.r2l_decoder is not None and self.reverse_weight > 0:
                loss_r2l, _ = self._decoder_loss(
                    self.r2l_decoder, enc_out, enc_lens, reverse_padded(ys, ys_lens), ys_lens, sampling_prob
                )
                loss_att = (1 - self.reverse_weight) * loss_att + self.reverse_weight * loss_r2l
        if loss_att is None:
            loss = loss_ctc
        elif loss_ctc is None:
            loss = loss_att
        else:
            loss = self.ctc_weight * loss_ctc + (1 - self.ctc_weight) * loss_att
        return {
            "loss": loss,
            "loss_ctc": loss_ctc,
            "loss_att": loss_att,
            "num_infeasible": int(infeasible.sum()),
            "ctc_infeasible": infeasible,
            "th_accuracy": th_accuracy,
            "enc_out": enc_out,
            "enc_lens": enc_lens,
        }

    def _ctc_loss(
        self,
        enc_out: torch.Tensor,
        enc_lens: torch.Tensor,
        ys: torch.Tensor,
        ys_lens: torch.Tensor,
        infeasible: torch.Tensor,
    ) -> torch.Tensor:
        """Mean per-utterance CTC loss over the feasible utterances (0 if there are none).

        Infeasible utterances get an empty target (always feasible, so no inf/NaN even in the
        backward pass) and are then masked out.

        Args:
            enc_out: (B, T', D); enc_lens, ys_lens: (B,); ys: (B, L); infeasible: (B,) bool.

        Returns:
            Scalar tensor.
        """
        safe_lens = ys_lens.masked_fill(infeasible, 0)
        per_utt = self.ctc.loss(self.ctc(enc_out), enc_lens, ys, safe_lens)  # (B,)
        if self.ctc_focal_gamma > 0:
            per_utt = focal_ctc_loss(per_utt, self.ctc_focal_gamma)
        per_utt = per_utt.masked_fill(infeasible, 0.0)
        return per_utt.sum() / (~infeasible).sum().clamp(min=1)

    def _decoder_loss(
        self,
        decoder: nn.Module,
        enc_out: torch.Tensor,
        enc_lens: torch.Tensor,
        ys: torch.Tensor,
        ys_lens: torch.Tensor,
        sampling_prob: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention loss and token accuracy of one decoder (with scheduled sampling, see ``forward``).

        Args:
            decoder: the decoder to train.
            enc_out: (B, T', D); enc_lens, ys_lens: (B,); ys: (B, L) padded with ignore_id.
            sampling_prob: scheduled sampling probability.

        Returns:
            (loss, accuracy), scalar tensors (accuracy detached).
        """
        ys_in, ys_out = add_sos_eos(ys, ys_lens, self.sos_id, self.eos_id, self.ignore_id)  # (B, L+1) each
        ys_in_lens = ys_lens + 1
        if self.training and sampling_prob > 0:
            with torch.no_grad():
                pred = decoder(enc_out, enc_lens, ys_in, ys_in_lens).argmax(dim=-1)  # (B, L+1)
            ys_in = mix_decoder_input(ys_in, pred, sampling_prob, make_pad_mask(ys_in_lens, ys_in.size(1)))
        logits = decoder(enc_out, enc_lens, ys_in, ys_in_lens)  # (B, L+1, V)
        valid = ys_out != self.ignore_id  # (B, L+1)
        correct = (logits.detach().argmax(dim=-1) == ys_out) & valid
        accuracy = correct.sum() / valid.sum().clamp(min=1)
        return self.att_loss(logits, ys_out), accuracy

    def decoder_scores(
        self, enc_out: torch.Tensor, enc_lens: torch.Tensor, hyps: torch.Tensor, hyps_lens: torch.Tensor,
        reverse_weight: float | None = None,
    ) -> torch.Tensor:
        """Attention-decoder log-probabilities of hypotheses (for attention rescoring).

        score = (1 - reverse_weight) * l2r + reverse_weight * r2l when a right-to-left decoder exists
        and reverse_weight > 0, else the left-to-right score. Each score is log P(hyp + <eos> | enc_out), see
        ``TransformerDecoder.score``.

        Args:
            enc_out: (N, T', D) float, one row per hypothesis.
            enc_lens: (N,) int64.
            hyps: (N, L) int64, padded with anything.
            hyps_lens: (N,) int64.
            reverse_weight: the right-to-left weight at decoding time; None = the training value.

        Returns:
            (N,) float.
        """
        weight = self.reverse_weight if reverse_weight is None else reverse_weight
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"reverse_weight must be in [0, 1], got {weight}")
        score = self.decoder.score(enc_out, enc_lens, hyps, hyps_lens, self.sos_id, self.eos_id)
        if self.r2l_decoder is not None and weight > 0:
            r2l = self.r2l_decoder.score(
                enc_out, enc_lens, reverse_padded(hyps, hyps_lens), hyps_lens, self.sos_id, self.eos_id
            )
            score = (1 - weight) * score + weight * r2l
        return score

    def num_params(self) -> int:
        """Total number of parameters (``count_params(model.encoder)`` etc. for the parts)."""
        return count_params(self)
