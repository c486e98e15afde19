"""Pseudo-label untranscribed audio: decode it without and with the LM, keep both hypotheses and the label.

Usage:
    python -m asr.nst.pseudo_label model=exp/nst/iter0/teacher/model.safetensors \\
        manifest=data/demo/nst/unlabelled.jsonl out_dir=exp/nst/iter1/pseudo lm.path=data/demo/lm/char_5gram.arpa
    python -m asr.nst.pseudo_label ... plain_mode=ctc_prefix_beam_search lm_mode=ctc_prefix_beam_search_lm

Settings: ``conf/decoding/pseudo_label.yaml`` (the decoding settings of ``decode.yaml``, the LM's of
``lm/default.yaml``, and the three modes). The encoder runs once per batch for all modes
(:func:`asr.decode.decode_batches`). Writes to ``out_dir``, each file atomically:

    hyps.jsonl     one row per usable utterance: id, audio, duration, speaker, plain (hypothesis without the LM),
                   lm (with it), label (label_mode's hypothesis), all normalised (asr.data.text.normalize_text)
    rejected.tsv   id, audio, reason: audio that could not be read (the loader's reason) and utterances with an
                   empty hypothesis in any of the modes; they get no pseudo-label, never an empty one
    summary.json   counts (decoded, rejected by reason), the modes, the model, the LM, seconds

Text in the manifest, if any, is not read: the manifest may be a transcribed one whose text is kept aside.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from asr.data.audio import load_audio
from asr.data.manifest import UNLABELLED_KEYS, Manifest
from asr.decode import decode_batches, open_from_config, write_tsv
from asr.inference.recognizer import Recognizer
from asr.utils.io import atomic_write, write_jsonl

log = logging.getLogger(__name__)


def unreadable_reason(row: dict, sample_rate: int) -> str:
    """Why the decoder skipped ``row``: the loader's own error message (read again, for the few that fail)."""
    if not os.path.exists(row["audio"]):
        return "file not found"
    try:
        load_audio(row["audio"], sample_rate, name=row["id"])
    except Exception as e:  # noqa: BLE001 (any failure of the reader is the reason)
        return f"unreadable: {e}"
    return "unreadable"  # failed in the feature pipeline, not in the reader


def pseudo_label(rec: Recognizer, manifest_path: str | os.PathLike, out_dir: str | os.PathLike, plain_mode: str,
                 lm_mode: str, label_mode: str, batch_frames: int = 20000, num_workers: int = 0,
                 progress: bool = True, info: dict | None = None) -> dict:
    """Decode ``manifest_path`` and write the files of the module docstring.

    Args:
        rec: the recognizer, with the LM that ``lm_mode`` needs.
        manifest_path: rows with id, audio and duration (text is ignored).
        out_dir: output folder.
        plain_mode, lm_mode, label_mode: decoding modes of the recognizer's table.
        batch_frames, num_workers, progress: as :func:`asr.decode.decode_manifest`.
        info: facts added to the summary.

    Returns:
        The summary written to ``summary.json``.
    """
    modes = list(dict.fromkeys([plain_mode, lm_mode, label_mode]))
    rec.check_modes(modes)
    out_dir = Path(out_dir)
    manifest = Manifest(manifest_path, required=UNLABELLED_KEYS)
    start = time.perf_counter()
    hyps, _ = decode_batches(rec, manifest, modes, batch_frames, num_workers, progress)
    seconds = time.perf_counter() - start
    rows, rejected = [], []
    sample_rate = rec.pipeline.fbank.sample_rate
    for row in manifest:
        uid = row["id"]
        if uid not in hyps[modes[0]]:
            rejected.append((uid, row["audio"], unreadable_reason(row, sample_rate)))
        elif empty := [m for m in modes if not hyps[m][uid].strip()]:
            rejected.append((uid, row["audio"], f"empty hypothesis ({', '.join(empty)})"))
        else:
            rows.append({"id": uid, "audio": row["audio"], "duration": row["duration"],
                         "speaker": row.get("speaker", ""), "plain": hyps[plain_mode][uid],
                         "lm": hyps[lm_mode][uid], "label": hyps[label_mode][uid]})
    write_jsonl(out_dir / "hyps.jsonl", rows)
    write_tsv(out_dir / "rejected.tsv", rejected)
    reasons = Counter(r[2].split(":")[0] if r[2].startswith("unreadable") else r[2] for r in rejected)
    summary = {"manifest": str(manifest_path), "utterances": len(manifest), "pseudo_labelled": len(rows),
               "rejected": len(rejected), "rejected_by_reason": dict(reasons), "plain_mode": plain_mode,
               "lm_mode": lm_mode, "label_mode": label_mode, "seconds": round(seconds, 1),
               "audio_hours": round(float(manifest.durations.sum()) / 3600, 4), **(info or {})}
    with atomic_write(out_dir / "summary.json") as f:
        json.dump(summary, f, ensure_ascii=False, indent=2)
    if rejected:
        log.warning("%d of %d utterances get no pseudo-label (%s)", len(rejected), len(manifest),
                    out_dir / "rejected.tsv")
    return summary


@hydra.main(config_path="../../conf/decoding", config_name="pseudo_label", version_base="1.3")
def main(cfg: DictConfig) -> None:
    log.info("pseudo-labelling with\n%s", OmegaConf.to_yaml(cfg))
    try:
        modes = list(dict.fromkeys([cfg.plain_mode, cfg.lm_mode, cfg.label_mode]))
        rec = open_from_config(cfg, modes)
        s = pseudo_label(rec, cfg.manifest, cfg.out_dir, cfg.plain_mode, cfg.lm_mode, cfg.label_mode,
                         cfg.batch_frames, cfg.num_workers, cfg.progress,
                         info={"model": str(cfg.model), "lm": OmegaConf.to_container(cfg.lm, resolve=True)})
    except (ValueError, OSError, ImportError) as e:
        sys.exit(f"asr.nst.pseudo_label: {e}")
    print(f"{s['pseudo_labelled']} of {s['utterances']} utterances pseudo-labelled, {s['rejected']} rejected "
          f"{s['rejected_by_reason'] or ''} in {s['seconds']:.0f} s -> {cfg.out_dir}/hyps.jsonl")


if __name__ == "__main__":
    main()
