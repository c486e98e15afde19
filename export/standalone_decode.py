#!/usr/bin/env python3
"""Transcribe 16-bit WAV files with an exported model folder and nothing of this project: onnxruntime, NumPy,
soundfile and kaldi-native-fbank only (CTC greedy search; the format is docs/EXPORT_FORMAT.md).

    python export/standalone_decode.py exp/demo/onnx a.wav b.wav     # prints FILE<TAB>TEXT per file

Everything it needs comes from the encoder file's metadata: the fbank options (the waveform is scaled by
``waveform_scale`` first), the CMVN statistics, the units and the blank id.
"""
import json
import sys

import kaldi_native_fbank as knf
import numpy as np
import onnxruntime as ort
import soundfile as sf


def fbank_options(o: dict) -> knf.FbankOptions:
    opts = knf.FbankOptions()
    f, mel = opts.frame_opts, opts.mel_opts
    f.samp_freq, f.frame_length_ms, f.frame_shift_ms = o["sample_rate"], o["frame_length_ms"], o["frame_shift_ms"]
    f.dither, f.preemph_coeff, f.window_type, f.snip_edges = o["dither"], o["preemphasis"], o["window_type"], o["snip_edges"]
    f.remove_dc_offset, f.round_to_power_of_two = o["remove_dc_offset"], o["round_to_power_of_two"]
    mel.num_bins, mel.low_freq, mel.high_freq = o["num_mel_bins"], o["low_freq"], o["high_freq"]
    opts.energy_floor, opts.use_energy, opts.raw_energy = o["energy_floor"], o["use_energy"], o["raw_energy"]
    opts.use_log_fbank, opts.use_power, opts.htk_compat = o["use_log_fbank"], o["use_power"], o["htk_compat"]
    return opts


def main(folder: str, wavs: list[str]) -> None:
    run = {part: ort.InferenceSession(f"{folder}/{part}.onnx", providers=["CPUExecutionProvider"]) for part in ("encoder", "ctc")}
    meta = run["encoder"].get_modelmeta().custom_metadata_map  # every value is a string
    options, cmvn = json.loads(meta["fbank_options"]), json.loads(meta["cmvn"])
    units, blank = json.loads(meta["tokenizer"])["units"], int(meta["blank_id"])
    mean = np.array(cmvn["sum"]) / cmvn["frames"]
    istd = (1 / np.sqrt(np.maximum(np.array(cmvn["sum_sq"]) / cmvn["frames"] - mean**2, 1e-20))).astype(np.float32)
    mean = mean.astype(np.float32)
    for path in wavs:
        samples, rate = sf.read(path, dtype="float32")
        assert samples.ndim == 1 and rate == options["sample_rate"], f"{path}: expected mono {options['sample_rate']} Hz"
        fbank = knf.OnlineFbank(fbank_options(options))
        fbank.accept_waveform(float(rate), samples * np.float32(options["waveform_scale"]))
        fbank.input_finished()
        feats = np.array([fbank.get_frame(i) for i in range(fbank.num_frames_ready)], dtype=np.float32)
        text = ""
        if len(feats) >= int(meta["min_input_frames"]):  # shorter input gives no encoder frame
            feats = (feats - mean) * istd  # (T, F), global CMVN
            enc_out, enc_lens = run["encoder"].run(None, {"feats": feats[None], "feats_lens": np.array([len(feats)])})
            log_probs = run["ctc"].run(None, {"enc_out": enc_out})[0][0, : enc_lens[0]]  # (T', V)
            best = log_probs.argmax(-1)
            ids = [t for i, t in enumerate(best) if t != blank and (i == 0 or t != best[i - 1])]
            text = "".join(units[t] for t in ids).replace("▁", " ")  # char units ("▁" is a space)
        print(f"{path}\t{text}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
