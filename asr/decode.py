"""Decode a manifest in several modes and score each against the manifest's transcripts.

Usage:
    python -m asr.decode model=exp/demo/model.safetensors manifest=data/demo/test.jsonl out_dir=exp/demo/decode/test
    python -m asr.decode model=... manifest=... out_dir=... modes=[ctc_greedy_search,attention_rescoring] device=cuda
    python -m asr.decode model=exp/demo/onnx backend=onnxruntime manifest=... out_dir=... modes=[attention_rescoring]
    python -m asr.decode model=exp/demo_streaming/model.safetensors ... chunk_size=16   # a streaming model, chunk 16

Utterances are batched by length (``batch_frames`` padded feature frames per batch) and the encoder
runs once per batch for all modes. For each MODE it writes ``OUT/MODE/text`` (``id hypothesis``
lines, manifest order), ``OUT/MODE/errors.txt`` (per-utterance alignments), ``OUT/MODE/utterances.jsonl``
(per-utterance error counts, :func:`asr.decoding.cer.per_utterance`: what a paired bootstrap resamples) and
``OUT/MODE/summary.json``, and prints one line. References and hypotheses are normalised with
:func:`asr.data.text.normalize_text`.

A manifest row's ``snr_db`` (test_noisy; :data:`SUBSET_KEYS`) is copied into its ``utterances.jsonl`` row, so that
the ablation collector can score each SNR apart.

A manifest whose rows list ``focus_chars`` (e.g. the characters rare in training, tools/make_test_conditions.py)
is also scored on those characters alone (the union over its rows; :func:`asr.decoding.cer.focus_stats`): the
summary's ``focus`` holds that CER and its counts.

Also written, possibly empty: ``OUT/failed.tsv`` (``id, audio, reason`` rows), the utterances whose
audio could not be read (left out of the score; ``failed`` in the summary counts them), and
``OUT/oov.tsv`` (``id, units`` rows), the utterances whose reference has units outside the model's
vocabulary (scored: errors the model cannot avoid).

Real-time factor of a mode = seconds / audio seconds, where seconds = data loading and features
(time spent waiting for the data loader: the feature extraction itself with ``num_workers=0``)
+ encoder + the mode's search. The encoder, run once per batch, and results modes share (the CTC
N-best of ``ctc_prefix_beam_search`` and ``attention_rescoring``) count in full for every mode that
uses them, so a mode's RTF is what decoding with that mode alone costs. Audio seconds are the
manifest durations of the decoded utterances.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr.data.batching import DynamicBucketBatchSampler
from asr.data.dataset import ManifestDataset
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline, collate
from asr.data.text import normalize_text
from asr.decoding.cer import ErrorStats, compute_cer, focus_stats, per_utterance, summary, write_error_file
from asr.inference.lm_modes import LM_MODES, load_lm
from asr.inference.modes import MODES
from asr.inference.open_model import open_recognizer
from asr.inference.recognizer import Recognizer
from asr.utils.io import atomic_write, write_jsonl
from asr.utils.threads import set_threads

log = logging.getLogger(__name__)
SUBSET_KEYS = ("snr_db",)  # manifest fields copied into the per-utterance rows: they split a set into subsets
SETTINGS = ("beam", "nbest", "ctc_weight", "attention_ctc_weight", "attention_length_bonus",  # recorded in summaries
            "blank_skip_threshold", "reverse_weight")


def machine_info(device: torch.device | str) -> dict:
    """Where the figures were measured.

    ``cpu_capability`` is the vector instruction set PyTorch's CPU kernels use (e.g. AVX2, AVX512): two machines
    with different ones sum floats in another order, and a long training run drifts apart like another seed
    (``ATEN_CPU_CAPABILITY=avx2`` pins it; recipes/aishell/ABLATIONS.md, "How the sweeps run").
    """
    device = torch.device(device)
    info = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(device),
            "platform": platform.platform(), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def decode_manifest(rec: Recognizer, manifest_path: str | os.PathLike, out_dir: str | os.PathLike,
                    modes: list[str], batch_frames: int = 20000, num_workers: int = 0,
                    progress: bool = True, info: dict | None = None) -> dict[str, dict]:
    """Decode and score a manifest, writing the files described in the module docstring.

    Args:
        rec: the recognizer (its ``seconds`` are reset).
        manifest_path: JSON-lines manifest.
        out_dir: output folder.
        modes: decoding modes of the recognizer's table.
        batch_frames: padded feature frames per batch (an utterance longer than that gets a batch alone).
        num_workers: data loader worker processes.
        progress: show a progress bar.
        info: facts added to every summary (e.g. the model file).

    Returns:
        mode -> the summary written to ``summary.json``.
    """
    rec.check_modes(modes)
    out_dir = Path(out_dir)
    manifest = Manifest(manifest_path)
    rec.seconds.clear()
    hyps, load_seconds = decode_batches(rec, manifest, modes, batch_frames, num_workers, progress)

    refs, failed, oov, audio_seconds, focus, subsets = {}, [], [], 0.0, set(), {}
    for row, duration in zip(manifest, manifest.durations.tolist()):
        focus.update(row.get("focus_chars", ""))
        if found := {k: row[k] for k in SUBSET_KEYS if k in row}:
            subsets[row["id"]] = found
        if row["id"] not in hyps[modes[0]]:
            failed.append((row["id"], row["audio"], "unreadable" if os.path.exists(row["audio"]) else "file not found"))
            continue
        refs[row["id"]] = normalize_text(row["text"])
        audio_seconds += duration
        if units := rec.tokenizer.oov(refs[row["id"]]):
            oov.append((row["id"], "".join(sorted(set(units)))))
    write_tsv(out_dir / "failed.tsv", failed)
    write_tsv(out_dir / "oov.tsv", oov)
    if failed:
        log.warning("%d of %d utterances could not be read and are not scored (%s)",
                    len(failed), len(manifest), out_dir / "failed.tsv")
    if oov:
        log.warning("%d of %d references have units outside the model's vocabulary (%s)",
                    len(oov), len(refs), out_dir / "oov.tsv")

    common = {"failed": len(failed), "oov_utterances": len(oov), "audio_seconds": audio_seconds,
              "manifest": str(manifest_path), **(info or {}),
              "settings": {k: getattr(rec, k) for k in SETTINGS}, "machine": machine_info(rec.backend.device)}
    summaries = {}
    for mode in modes:
        report = compute_cer(refs, hyps[mode])
        with atomic_write(out_dir / mode / "text") as f:
            f.writelines(f"{u} {hyps[mode][u]}\n" if hyps[mode][u] else f"{u}\n" for u in refs)
        write_error_file(report, out_dir / mode / "errors.txt")
        write_jsonl(out_dir / mode / "utterances.jsonl", per_utterance(report, focus, subsets))
        seconds = {"features": load_seconds, "encoder": rec.seconds["encoder"],
                   "search": rec.seconds[mode] - rec.seconds["encoder"], "total": load_seconds + rec.seconds[mode]}
        rtf = seconds["total"] / audio_seconds if audio_seconds else None
        summaries[mode] = {"mode": mode, **summary(report), "rtf": rtf, "seconds": seconds, **common}
        if focus:
            f = sum((focus_stats(u, focus) for u in report.utts), ErrorStats())
            summaries[mode]["focus"] = {"characters": "".join(sorted(focus)), "cer": f.cer, "substitutions":
                                        f.substitutions, "deletions": f.deletions, "insertions": f.insertions,
                                        "ref_chars": f.ref_len}
        with atomic_write(out_dir / mode / "summary.json") as f:
            json.dump(summaries[mode], f, ensure_ascii=False, indent=2)
    return summaries


def decode_batches(rec: Recognizer, manifest: Manifest, modes: list[str], batch_frames: int, num_workers: int,
                   progress: bool) -> tuple[dict[str, dict[str, str]], float]:
    """Decode every readable utterance, in batches sorted by length.

    Returns:
        mode -> utterance id -> normalised hypothesis; seconds spent waiting for the data loader.
    """
    fbank = rec.pipeline.fbank
    frames = np.array([fbank.num_frames(int(d * fbank.sample_rate)) for d in manifest.durations], dtype=np.int64)
    sampler = DynamicBucketBatchSampler(frames, max(batch_frames, int(frames.max(initial=0))), shuffle=False)
    pipeline = rec.pipeline
    if not isinstance(pipeline, SamplePipeline):  # an exported backend's NumPy features: the same fbank, as tensors
        pipeline = SamplePipeline(pipeline.fbank, pipeline.cmvn, tokenizer=None)
    loader = DataLoader(ManifestDataset(manifest, pipeline), batch_sampler=sampler,
                        collate_fn=collate, num_workers=num_workers)
    hyps: dict[str, dict[str, str]] = {mode: {} for mode in modes}
    load_seconds = 0.0
    batches = iter(loader)
    with tqdm(total=len(manifest), unit="utt", disable=not progress) as bar:
        while True:
            start = time.perf_counter()
            batch = next(batches, None)
            load_seconds += time.perf_counter() - start
            if batch is None:
                return hyps, load_seconds
            if batch["ids"]:
                for mode, ids in rec.decode_ids(batch["feats"], batch["feats_lens"], modes).items():
                    hyps[mode].update((u, normalize_text(rec.tokenizer.decode(h))) for u, h in zip(batch["ids"], ids))
            bar.update(len(batch["ids"]) + batch["num_failed"])


def write_tsv(path: Path, rows: list[tuple[str, ...]]) -> None:
    with atomic_write(path) as f:
        f.writelines("\t".join(row) + "\n" for row in rows)


def summary_line(s: dict) -> str:
    """One line for the console, e.g. ``attention_rescoring: CER 5.12% (S 1 D 2 I 0 / N 58) ...``."""
    rtf = f"{s['rtf']:.4f}" if s["rtf"] is not None else "n/a"
    line = (f"{s['mode']}: CER {100 * s['cer']:.2f}% (S {s['substitutions']} D {s['deletions']} I {s['insertions']}"
            f" / N {s['ref_chars']}), {s['utterances']} utterances, RTF {rtf}")
    if s.get("focus"):
        line += f", CER {100 * s['focus']['cer']:.2f}% on the {len(s['focus']['characters'])} focus characters"
    return line + (f", {s['failed']} FAILED to load" if s["failed"] else "")


def open_from_config(cfg: DictConfig, modes: list[str]) -> Recognizer:
    """The recognizer that ``cfg`` (``conf/decoding/decode.yaml``, optionally ``+lm=default``) describes, checked
    for ``modes``; also sets the torch threads. Shared with :mod:`asr.nst.pseudo_label`."""
    set_threads(cfg.threads)
    table = {**MODES, **LM_MODES} if cfg.get("lm") else MODES
    # the same backends, opened the same way, as asr-transcribe (torch for a model file, else the exported folder's)
    rec = open_recognizer(cfg.model, cfg.get("backend"), cfg.threads, cfg.get("om_runtime", "acl"), cfg.device,
                          modes=table, **chunking_of(cfg), **{k: cfg[k] for k in SETTINGS})
    if cfg.get("lm"):  # +lm=default lm.path=... lm.tlg_dir=... (conf/decoding/lm/default.yaml)
        rec.lm, rec.graph = load_lm(rec.tokenizer, **cfg.lm)
    rec.check_modes(modes)
    return rec


def chunking_of(cfg: DictConfig) -> dict:
    return {"chunk_size": cfg.get("chunk_size", 0), "num_left_chunks": cfg.get("num_left_chunks", -1)}


def run(cfg: DictConfig) -> dict[str, dict]:
    """Decode ``cfg.manifest`` with ``cfg.model`` (the settings of ``conf/decoding/decode.yaml``)."""
    modes = list(cfg.modes)
    rec = open_from_config(cfg, modes)
    summaries = decode_manifest(rec, cfg.manifest, cfg.out_dir, modes, cfg.batch_frames, cfg.num_workers, cfg.progress,
                                info={"model": str(cfg.model), "backend": type(rec.backend).__name__,
                                      **chunking_of(cfg)})
    for s in summaries.values():
        print(summary_line(s))
    return summaries


@hydra.main(config_path="../conf/decoding", config_name="decode", version_base="1.3")
def main(cfg: DictConfig) -> None:
    log.info("decoding with\n%s", OmegaConf.to_yaml(cfg))
    try:
        run(cfg)
    except (ValueError, OSError, ImportError) as e:
        sys.exit(f"asr.decode: {e}")


if __name__ == "__main__":
    main()
