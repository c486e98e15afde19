"""CPU inference speed (real-time factor) of torch / ONNX fp32 / int8 / mixed, and their accuracy on a test set.

Speed (default): the AISHELL-size Conformer (conf/model/conformer.yaml, 4233 units) with random weights,
exported and quantised in a temporary folder, decodes synthetic audio it makes, with 1 thread and with
all threads, in CTC greedy search and attention rescoring. The CTC blank bias is raised so the random
model emits about ``--tokens-per-second`` tokens, as a trained model does (rescoring cost grows with
hypothesis length). RTF = wall time of ``Recognizer.transcribe`` (features included) / audio seconds.

    .venv/bin/python tools/bench_inference.py [--utts 6 --seconds 6 --repeats 2]

Quality: a trained model file, its export folder (``python -m asr.export --quantize int8 mixed``) and a
manifest: size, RTF, CER and greedy-text agreement with fp32 for each variant; with ``--sensitivity``,
the error of quantising each weight group alone, on the encoder + CTC log-probabilities and on the decoder's
rescoring scores (what ``mixed`` keeps out of int8 is chosen from it). ``tools/bench_quantize.py`` compares
every variant (int8, int8 per-channel, the 8/16 mixes, fp16) in one run.

    .venv/bin/python tools/bench_inference.py --model exp/demo/model.safetensors --onnx-dir exp/demo/onnx \\
        --manifest data/demo/test.jsonl [--threads 1] [--sensitivity]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from asr.data.audio import load_audio  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.decoding.cer import compute_cer  # noqa: E402
from asr.features.cmvn import GlobalCMVN  # noqa: E402
from asr.features.fbank import Fbank  # noqa: E402
from asr.export.format import PARTS  # noqa: E402
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from asr.inference.features import pad_features  # noqa: E402
from asr.inference.backends.torch_backend import TorchBackend  # noqa: E402
from asr.inference.recognizer import Recognizer  # noqa: E402
from asr.modelfile import LoadedModel, load_model_file, make_meta  # noqa: E402
from asr.tokenizer.char import CharTokenizer  # noqa: E402
from asr.tokenizer.base import wrap_units  # noqa: E402
from asr.export.onnx import export_folder  # noqa: E402
from asr.export.quantize import GROUPS, MODES, quantize_file, quantize_folder, weight_matmuls  # noqa: E402
from asr.model.registry import build_model  # noqa: E402

SEARCH_MODES = ("ctc_greedy_search", "attention_rescoring")


def aishell_size_model(vocab_size: int = 4233, seed: int = 0) -> LoadedModel:
    """conf/model/conformer.yaml with random weights, a placeholder character vocabulary, identity CMVN."""
    torch.manual_seed(seed)
    cfg = OmegaConf.load(ROOT / "conf/model/conformer.yaml")
    cfg.att_loss = OmegaConf.load(ROOT / "conf/loss/label_smoothing.yaml")
    cfg.vocab_size = vocab_size
    config = OmegaConf.to_container(cfg, resolve=True)
    tokenizer = CharTokenizer(wrap_units([chr(0x4E00 + i) for i in range(vocab_size - 3)]))
    cmvn = GlobalCMVN(torch.zeros(80), torch.ones(80), 1)  # mean 0, variance 1
    return LoadedModel(build_model(config, "conf/model/conformer.yaml").eval(), tokenizer, Fbank(), cmvn,
                       make_meta(config, tokenizer, Fbank(), cmvn))


def synthetic_audio(count: int, seconds: float, seed: int = 0, sr: int = 16000) -> list[torch.Tensor]:
    """Speech-like signals: harmonic tones with a wandering pitch, syllable-rate amplitude bursts, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wavs = []
    for _ in range(count):
        pitch = 120 + 40 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t)  # Hz
        phase = 2 * np.pi * np.cumsum(pitch) / sr
        voice = sum(np.sin(k * phase) / k for k in range(1, 8))
        envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None)
        x = 0.1 * envelope * voice + 0.003 * rng.standard_normal(len(t))
        wavs.append(torch.from_numpy(x.astype(np.float32)).unsqueeze(0))
    return wavs


@torch.no_grad()
def calibrate_blank(loaded: LoadedModel, wav: torch.Tensor, tokens_per_second: float) -> None:
    """Raise the CTC blank logit so that greedy search emits about ``tokens_per_second`` on ``wav``."""
    feats = loaded.cmvn(loaded.fbank(wav)).unsqueeze(0)  # (1, T, F)
    enc_out, _ = loaded.model.encode(feats, torch.tensor([feats.size(1)]))
    logits = loaded.model.ctc.proj(enc_out)[0]  # (T', V)
    margin = logits[:, 1:].max(dim=-1).values - logits[:, 0]  # (T',) how far each frame is from blank
    wanted = tokens_per_second * wav.size(1) / loaded.fbank.sample_rate / margin.numel()  # fraction non-blank
    loaded.model.ctc.proj.bias[0] += float(torch.quantile(margin, 1 - min(wanted, 1.0)))


def timed_transcribe(recognizer: Recognizer, wavs: list[torch.Tensor], mode: str, batch_size: int,
                     repeats: int) -> tuple[float, list[str]]:
    """Best wall seconds of ``repeats`` passes over ``wavs`` (after one warm-up batch), and the texts."""
    recognizer.transcribe(wavs[:batch_size], mode)
    best, texts = math.inf, []
    for _ in range(repeats):
        start, texts = time.perf_counter(), []
        for i in range(0, len(wavs), batch_size):
            texts += recognizer.transcribe(wavs[i : i + batch_size], mode)
        best = min(best, time.perf_counter() - start)
    return best, texts


def folder_mb(path: Path) -> float:
    return sum((path / name).stat().st_size for name in (spec.file for spec in PARTS.values())) / 1e6


def make_recognizer(variant: str, threads: int, loaded: LoadedModel, onnx_dir: Path) -> Recognizer:
    """``torch`` on ``loaded.model``, else the ONNX folder of the variant (``fp32`` = ``onnx_dir``)."""
    search = {"beam": 10, "nbest": 10}
    if variant == "torch":
        torch.set_num_threads(threads)
        return Recognizer(TorchBackend(loaded.model), loaded.tokenizer, loaded.fbank, loaded.cmvn, **search)
    backend = OnnxRuntimeBackend(onnx_dir if variant == "fp32" else onnx_dir / variant, num_threads=threads)
    return Recognizer(backend, backend.tokenizer, backend.fbank, backend.cmvn, **search)


def speed(args) -> None:
    loaded = aishell_size_model()
    wavs = synthetic_audio(args.utts, args.seconds, args.seed)
    calibrate_blank(loaded, wavs[0], args.tokens_per_second)
    audio_seconds = args.utts * args.seconds
    all_threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = Path(tmp)
        start = time.perf_counter()
        export_folder(loaded, onnx_dir, "bench")
        for mode in MODES:
            quantize_folder(onnx_dir, onnx_dir / mode, mode)
        print(f"AISHELL-size Conformer, {loaded.model.num_params() / 1e6:.1f}M parameters, 4233 units, random weights; "
              f"exported and quantised in {time.perf_counter() - start:.0f} s")
        print(f"sizes: torch fp32 {sum(p.numel() * 4 for p in loaded.model.parameters()) / 1e6:.0f} MB, ONNX fp32 "
              f"{folder_mb(onnx_dir):.0f} MB, int8 {folder_mb(onnx_dir / 'int8'):.0f} MB, "
              f"mixed {folder_mb(onnx_dir / 'mixed'):.0f} MB")
        print(f"{args.utts} synthetic utterances x {args.seconds:g} s, batch {args.batch_size}, "
              f"best of {args.repeats}; cpu_count {all_threads}")
        print(f"{'variant':8} {'threads':>7} {'mode':20} {'RTF':>7} {'vs torch':>9} {'tokens/s':>9}")
        for threads in sorted({1, all_threads}):
            for mode in SEARCH_MODES:
                reference = None
                for variant in ("torch", "fp32", *MODES):
                    rec = make_recognizer(variant, threads, loaded, onnx_dir)
                    seconds, texts = timed_transcribe(rec, wavs, mode, args.batch_size, args.repeats)
                    reference = reference or seconds
                    tokens = sum(len(t) for t in texts) / audio_seconds
                    print(f"{variant:8} {threads:7d} {mode:20} {seconds / audio_seconds:7.4f} "
                          f"{reference / seconds:8.2f}x {tokens:9.1f}")


def quality(args) -> None:
    onnx_dir, loaded = Path(args.onnx_dir), load_model_file(args.model)
    rows = list(Manifest(args.manifest))
    wavs = [load_audio(r["audio"]) for r in rows]
    refs = {r["id"]: r["text"] for r in rows}
    audio_seconds = sum(w.size(1) for w in wavs) / loaded.fbank.sample_rate
    variants = ["torch", "fp32"] + [m for m in MODES if (onnx_dir / m).is_dir()]
    print(f"{len(rows)} utterances, {audio_seconds:.0f} s ({args.manifest}); {args.threads} thread(s); beam 10")
    print(f"{'variant':8} {'MB':>6} {'mode':20} {'RTF':>7} {'CER %':>7} {'same text as fp32':>18}")
    fp32_texts: dict[str, list[str]] = {}
    for variant in variants:
        size = Path(args.model).stat().st_size / 1e6 if variant == "torch" else folder_mb(
            onnx_dir if variant == "fp32" else onnx_dir / variant)
        rec = make_recognizer(variant, args.threads, loaded, onnx_dir)
        for mode in SEARCH_MODES:
            seconds, texts = timed_transcribe(rec, wavs, mode, args.batch_size, 1)
            if variant == "fp32":
                fp32_texts[mode] = texts
            cer = compute_cer(refs, dict(zip(refs, texts))).total.cer
            same = (f"{np.mean([a == b for a, b in zip(texts, fp32_texts[mode])]):.1%}"
                    if mode in fp32_texts else "-")
            print(f"{variant:8} {size:6.1f} {mode:20} {seconds / audio_seconds:7.4f} {100 * cer:7.2f} {same:>18}")


def greedy_hyps(log_probs: np.ndarray, lens: np.ndarray, blank: int) -> tuple[np.ndarray, np.ndarray]:
    """CTC greedy hypotheses of a batch. Args: log_probs (B, T', V); lens (B,). Returns: hyps (B, L), hyps_lens (B,)."""
    seqs = []
    for row, n in zip(log_probs.argmax(-1), lens.tolist()):
        row = row[:n]
        keep = np.ones(len(row), dtype=bool)
        keep[1:] = row[1:] != row[:-1]  # collapse repeats
        best = row[keep]
        seqs.append(best[best != blank])
    hyps_lens = np.array([len(q) for q in seqs], dtype=np.int64)
    hyps = np.zeros((len(seqs), max(int(hyps_lens.max()), 1)), dtype=np.int64)
    for i, q in enumerate(seqs):
        hyps[i, : len(q)] = q
    return hyps, hyps_lens


def sensitivity(args) -> None:
    """Quantise one weight group at a time (the rest float) and measure the error against fp32.

    Encoder + CTC: the log-probabilities on the test utterances. Decoder: the attention-rescoring score
    log P(hyp + <eos>) of each utterance's fp32 CTC greedy hypothesis, both decoders reading the same
    fp32 encoder output (so only the decoder's own quantisation is measured).
    """
    onnx_dir = Path(args.onnx_dir)
    fp32 = OnnxRuntimeBackend(onnx_dir, num_threads=args.threads)
    wavs = [load_audio(r["audio"]) for r in list(Manifest(args.manifest))[: args.utts]]
    padded, lens = pad_features([fp32.cmvn(fp32.fbank(w)) for w in wavs])  # (B, T, F) NumPy, as the backend returns
    enc_out, enc_lens = fp32.encode(padded, lens)
    reference = fp32.ctc_log_probs(enc_out)
    valid = np.arange(reference.shape[1]) < enc_lens[:, None]  # (B, T')
    hyps, hyps_lens = greedy_hyps(reference, enc_lens, int(fp32.meta["blank_id"]))
    ref_scores = fp32.decoder_scores(enc_out, enc_lens, hyps, hyps_lens)  # (B,)
    tokens = (hyps_lens + 1).astype(np.float64)  # scored tokens per hypothesis (with <eos>)
    print(f"{len(wavs)} utterances; decoder: the fp32 CTC greedy hypotheses, {float(tokens.mean()):.1f} tokens on average")
    print(f"{'group quantised alone':24} {'max |Δ log-prob|':>17} {'mean |Δ|':>9} {'argmax agreement':>17} "
          f"{'decoder weights':>15} {'max |Δ score|':>14} {'mean |Δ|/token':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for group in GROUPS:
            folder = Path(tmp) / group
            keep = tuple(g for g in GROUPS if g != group)
            kept = {}
            for part, spec in PARTS.items():
                kept[part] = quantize_file(onnx_dir / spec.file, folder / spec.file, keep)
            (folder / "units.txt").write_bytes((onnx_dir / "units.txt").read_bytes())
            backend = OnnxRuntimeBackend(folder, num_threads=args.threads)
            log_probs = backend.ctc_log_probs(backend.encode(padded, lens)[0])
            diff = np.abs(log_probs - reference)[valid]  # (frames, V)
            same = (log_probs.argmax(-1) == reference.argmax(-1))[valid].mean()
            quantized = len(weight_matmuls(onnx.load(str(onnx_dir / PARTS["decoder"].file)))) - len(kept["decoder"])
            if quantized:
                d = np.abs(backend.decoder_scores(enc_out, enc_lens, hyps, hyps_lens) - ref_scores)  # (B,)
                dec = f"{quantized:15d} {float(d.max()):14.4f} {float((d / tokens).mean()):15.5f}"
            else:
                dec = f"{0:15d} {'-':>14} {'-':>15}"
            print(f"{group:24} {float(diff.max()):17.4f} {float(diff.mean()):9.5f} {float(same):17.1%} {dec}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=6, help="speed: synthetic utterances; sensitivity: test utterances")
    parser.add_argument("--seconds", type=float, default=6.0, help="speed: seconds per synthetic utterance")
    parser.add_argument("--tokens-per-second", type=float, default=4.0, help="speed: tokens the random model emits")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="quality: trained model file")
    parser.add_argument("--onnx-dir", help="quality: its export folder (with int8/ and mixed/)")
    parser.add_argument("--manifest", help="quality: test manifest")
    parser.add_argument("--threads", type=int, default=1, help="quality / sensitivity: CPU threads")
    parser.add_argument("--sensitivity", action="store_true", help="quality: per-group quantisation error")
    args = parser.parse_args()
    if args.model or args.onnx_dir or args.manifest:
        if not (args.onnx_dir and args.manifest and (args.model or args.sensitivity)):
            parser.error("quality needs --model, --onnx-dir and --manifest (--sensitivity: --onnx-dir and --manifest)")
        sensitivity(args) if args.sensitivity else quality(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
