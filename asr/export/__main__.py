"""``python -m asr.export``: model file -> ONNX folder(s), checked against PyTorch.

    python -m asr.export --model exp/x/model.safetensors --out exp/x/onnx [--quantize int8 mixed ...] [--om-profile]
        [--streaming-chunk 16 [--streaming-left-chunks 4]]
    python -m asr.export --model exp/x/model.safetensors --out exp/x/sherpa-onnx --format sherpa-onnx

Writes ``OUT/`` (dynamic fp32: encoder.onnx, ctc.onnx, decoder.onnx, units.txt), one folder per
``--quantize`` variant (``int8``, ``int8_channel``, ``mixed``, ``mixed_fp16``, ``fp16``: asr.export.quantize),
``OUT/om/`` (static profile with its decoder gears, build_om.sh, keep_dtype.cfg) and ``OUT/export_report.json``;
with ``--streaming-chunk``, the streaming encoder ``encoder_chunk.onnx`` in ``OUT/`` and ``OUT/om/`` (asr.export.streaming);
with ``--format sherpa-onnx``, ``OUT/model.onnx`` and ``OUT/tokens.txt`` for sherpa-onnx (:mod:`asr.export.sherpa`).
Fails (exit 1) when ONNX Runtime and PyTorch differ by more than ``--tolerance``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from asr.decoding.arrays import to_numpy
from asr.export.format import STREAMING_PARTS, read_folder_metadata
from asr.export.om import DEFAULT_FRAMES, export_static_folder, static_profile, write_atc_script
from asr.export.onnx import OPSET, PARITY_TOLERANCE, example_inputs, export_folder, export_metadata, file_digest, \
    model_dims, parity, random_cases
from asr.export.streaming import add_to_atc_script, chunk_parity, export_chunk_part, streaming_settings
from asr.export.quantize import MODES, quantize_folder
from asr.export.sherpa import export_sherpa_onnx, sherpa_feature_config, sherpa_parity
from asr.inference.backends.om_backend import OMBackend
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend, session_options
from asr.modelfile import load_model_file
from asr.utils.io import atomic_write


def folder_size(path: Path) -> int:
    """Bytes of the ONNX files in a folder."""
    return sum(f.stat().st_size for f in path.glob("*.onnx"))


def compare(reference, other, cases: list[dict[str, int]], dims: dict[str, int]) -> dict[str, float]:
    """Output agreement of two backends on random features: CTC log-probs and their per-frame argmax.

    Returns:
        ``log_prob_max_diff`` (max |Δ| over valid frames) and ``argmax_agreement`` (fraction of valid
        frames with the same best unit).
    """
    worst, same, frames = 0.0, 0, 0
    for i, shapes in enumerate(cases):
        feats, feats_lens = example_inputs("encoder", shapes, dims, seed=200 + i)
        log_probs = []
        for backend in (reference, other):
            enc_out, enc_lens = backend.encode(feats, feats_lens)
            log_probs.append(to_numpy(backend.ctc_log_probs(enc_out)))
        valid = np.arange(log_probs[0].shape[1]) < to_numpy(enc_lens)[:, None]  # (B, T')
        a, b = log_probs[0][valid], log_probs[1][valid]  # (frames, V)
        worst = max(worst, float(np.abs(a - b).max()))
        same += int((a.argmax(-1) == b.argmax(-1)).sum())
        frames += a.shape[0]
    return {"log_prob_max_diff": worst, "argmax_agreement": same / max(frames, 1)}


FORMATS = ("onnx", "sherpa-onnx")


def export_sherpa(args: argparse.Namespace) -> int:
    """``--format sherpa-onnx``: write, check against PyTorch, print how to run it."""
    try:
        loaded = load_model_file(args.model)
        paths = export_sherpa_onnx(loaded, args.out, file_digest(args.model))
        diff = sherpa_parity(loaded, paths["model"])
        features = sherpa_feature_config(loaded.fbank)
    except (OSError, ValueError) as e:
        print(f"export: {e}", file=sys.stderr)
        return 1
    print(f"sherpa-onnx {args.out}: {paths['model'].stat().st_size / 1e6:.1f} MB; max |ONNX - PyTorch| {diff:.2e}; "
          f"features: sherpa_onnx.FeatureExtractorConfig({', '.join(f'{k}={v!r}' for k, v in features.items())})")
    if not diff <= args.tolerance:
        print(f"export: parity FAILED (tolerance {args.tolerance:g}): {diff}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model file (model.safetensors)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--format", choices=FORMATS, default="onnx",
                        help="onnx: this project's folder (docs/EXPORT_FORMAT.md); sherpa-onnx: model.onnx + tokens.txt "
                             "for sherpa-onnx's WeNet-CTC loader")
    parser.add_argument("--quantize", nargs="*", default=[], choices=MODES, help="quantised variants to write")
    parser.add_argument("--om-profile", action="store_true", help="also write the static Ascend profile to OUT/om")
    parser.add_argument("--om-frames", type=int, default=DEFAULT_FRAMES, help="encoder input frames per window")
    parser.add_argument("--om-batch", type=int, default=1, help="windows per encoder call")
    parser.add_argument("--om-num-hyps", type=int, default=10, help="hypotheses per decoder call")
    parser.add_argument("--om-max-tokens", type=int, help="longest hypothesis the decoder scores (default: the "
                        "encoder frames of a window)")
    parser.add_argument("--om-token-gears", type=int, nargs="+", help="decoder token lengths, the last one "
                        "--om-max-tokens (default: 16, 32, 64, ... below it, then it)")
    parser.add_argument("--soc-version", default="Ascend310P3", help="default --soc_version of build_om.sh")
    parser.add_argument("--precision-mode", default="allow_mix_precision",
                        help="default --precision_mode of build_om.sh")
    parser.add_argument("--streaming-chunk", type=int, help="also export the streaming encoder for chunks of this "
                        "many encoder frames (a model trained with model.encoder.causal=true)")
    parser.add_argument("--streaming-left-chunks", type=int, default=4,
                        help="earlier chunks the streaming encoder attends to (its fixed cache)")
    parser.add_argument("--tolerance", type=float, default=PARITY_TOLERANCE, help="largest accepted |ONNX - PyTorch|")
    args = parser.parse_args(argv)
    if args.format == "sherpa-onnx" and (args.quantize or args.om_profile or args.streaming_chunk is not None):
        parser.error("--quantize, --om-profile and --streaming-chunk apply to --format onnx only")
    if args.format == "sherpa-onnx":
        return export_sherpa(args)

    try:
        loaded = load_model_file(args.model)
        if args.streaming_chunk is not None:  # fail before exporting anything
            streaming_settings(loaded.model.encoder, args.streaming_chunk, args.streaming_left_chunks)
        out, version = Path(args.out), file_digest(args.model)
        report: dict = {"model": str(args.model), "model_version": version, "opset": OPSET, "tolerance": args.tolerance}

        paths = export_folder(loaded, out, version)
        sessions = {part: ort.InferenceSession(str(p), session_options(1), providers=["CPUExecutionProvider"])
                    for part, p in paths.items()}
        cases = random_cases(loaded)
        diffs = parity(loaded, sessions, cases)
        report["fp32"] = {"size_bytes": folder_size(out), "parity_max_abs_diff": diffs}
        print(f"fp32   {out}: {folder_size(out) / 1e6:.1f} MB; max |ONNX - PyTorch| over {len(cases)} random sizes: "
              + ", ".join(f"{part} {d:.2e}" for part, d in diffs.items()))
        failed = {part: d for part, d in diffs.items() if not d <= args.tolerance}

        fp32 = OnnxRuntimeBackend(out, num_threads=1)
        for mode in args.quantize:
            quantize_folder(out, out / mode, mode)
            agreement = compare(fp32, OnnxRuntimeBackend(out / mode, num_threads=1), cases, model_dims(loaded))
            report[mode] = {"size_bytes": folder_size(out / mode), "vs_fp32": agreement}
            print(f"{mode:6} {out / mode}: {folder_size(out / mode) / 1e6:.1f} MB; vs fp32: max |Δ log-prob| "
                  f"{agreement['log_prob_max_diff']:.3f}, frame argmax agreement {agreement['argmax_agreement']:.1%}")

        if args.om_profile:
            profile = static_profile(loaded, args.om_frames, args.om_batch, args.om_num_hyps, args.om_max_tokens,
                                     args.om_token_gears)
            static_paths = export_static_folder(loaded, out / "om", version, profile)
            script = write_atc_script(out / "om", args.soc_version, args.precision_mode)
            with OMBackend(out / "om", runtime="onnxruntime", num_threads=1) as static:
                short = [{**c, "T": min(c["T"], args.om_frames)} for c in cases]
                agreement = compare(fp32, static, short, model_dims(loaded))
            op_types = sorted({n.op_type for p in static_paths.values() for n in onnx.load(str(p)).graph.node})
            report["om"] = {"profile": profile, "static_vs_dynamic": agreement, "op_types": op_types}
            print(f"om     {out / 'om'}: static profile {args.om_frames} frames; vs dynamic fp32: max |Δ log-prob| "
                  f"{agreement['log_prob_max_diff']:.2e}; build the OM files with: bash {script}")
            if not agreement["log_prob_max_diff"] <= args.tolerance:
                failed["om"] = agreement["log_prob_max_diff"]

        if args.streaming_chunk is not None:
            report["streaming"] = export_streaming(loaded, out, version, args)
            failed.update({f"streaming {k}": d for k, d in report["streaming"]["parity_max_abs_diff"].items()
                           if not d <= args.tolerance})

        with atomic_write(out / "export_report.json") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
    except (OSError, ValueError) as e:
        print(f"export: {e}", file=sys.stderr)
        return 1
    if failed:
        print(f"export: parity FAILED (tolerance {args.tolerance:g}): {failed}", file=sys.stderr)
        return 1
    return 0


def export_streaming(loaded, out: Path, version: str, args: argparse.Namespace) -> dict:
    """The chunk graph in ``out`` (and ``out/om`` with ``--om-profile``), each checked against PyTorch through
    its backend's streaming path; returns the report's ``streaming`` entry."""
    chunk, left = args.streaming_chunk, args.streaming_left_chunks
    folders = {"onnxruntime": (out, {"kind": "dynamic"})}
    if args.om_profile:
        folders["om"] = (out / "om", read_folder_metadata(out / "om", "static")["profile"])
    diffs = {}
    for name, (folder, profile) in folders.items():
        path = folder / STREAMING_PARTS["encoder_chunk"].file
        export_chunk_part(loaded, path, export_metadata(loaded, version, profile), chunk, left,
                          static=profile["kind"] == "static")
        if name == "om":
            add_to_atc_script(folder)
            with OMBackend(folder, runtime="onnxruntime", num_threads=1) as backend:
                diffs[name] = chunk_parity(loaded, backend.stream_encoder())
        else:
            diffs[name] = chunk_parity(loaded, OnnxRuntimeBackend(folder, num_threads=1).stream_encoder())
    print(f"stream {out}: encoder_chunk.onnx, chunk {chunk} x {left} left chunks; max |ONNX - PyTorch| chunk by chunk: "
          + ", ".join(f"{name} {d:.2e}" for name, d in diffs.items()))
    return {"chunk_size": chunk, "num_left_chunks": left, "parity_max_abs_diff": diffs}


if __name__ == "__main__":
    sys.exit(main())
