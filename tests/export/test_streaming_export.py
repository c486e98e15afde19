"""The streaming encoder exported with explicit caches: ONNX Runtime and the static OM profile (under ONNX Runtime,
and through the pyACL stand-in) against PyTorch, the same text on every backend, and the strict metadata."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from asr.data.manifest import Manifest
from asr.export.__main__ import main as export_main
from asr.export.ascend import profile_problems
from asr.export.format import STREAMING_PARTS, read_streaming_metadata
from asr.export.om import static_graph_problems
from asr.inference.backends.om_backend import OMBackend
from asr.inference.cli import open_recognizer
from asr.inference.recognizer import Recognizer
from asr.inference.streaming import EndpointRule
from tests.export.conftest import join_with_silences
from tests.export.test_om_backend_acl import FakeAcl
from tests.export.test_torch_free import asr_transcribe, without_train  # noqa: F401 (a fixture, used by name)

CHUNK, LEFT = 8, 2
SEARCH = {"beam": 4, "nbest": 4}


@pytest.fixture(scope="module")
def exported(streaming_model_file, tmp_path_factory) -> Path:
    """``python -m asr.export --om-profile --streaming-chunk 8 --streaming-left-chunks 2`` of the random streaming
    model (a small static profile: a 10-s stream closes several segments at its decoder's limit)."""
    out = tmp_path_factory.mktemp("streaming_export")
    assert export_main(["--model", str(streaming_model_file), "--out", str(out), "--om-profile", "--om-frames", "401",
                        "--streaming-chunk", str(CHUNK), "--streaming-left-chunks", str(LEFT)]) == 0
    return out


def test_export_writes_and_checks_the_chunk_graphs(exported):
    report = json.loads((exported / "export_report.json").read_text())["streaming"]
    assert report["chunk_size"] == CHUNK and report["num_left_chunks"] == LEFT
    assert set(report["parity_max_abs_diff"]) == {"onnxruntime", "om"}
    assert all(d < 1e-4 for d in report["parity_max_abs_diff"].values())
    static = exported / "om" / "encoder_chunk.onnx"
    assert static_graph_problems(static) == []
    assert profile_problems(static)[0] == []  # CANN's documented ONNX operators and types, as the other parts
    script = (exported / "om" / "build_om.sh").read_text()
    assert "--model=encoder_chunk.onnx" in script and "att_cache:2,1,4,16,32;cache_len:1" in script
    meta = read_streaming_metadata(exported / "om", "static")["streaming"]
    assert meta["cache_size"] == CHUNK * LEFT and meta["input_frames"] == (CHUNK - 1) * 6 + 11
    graph = onnx.load(str(static)).graph
    assert [i.name for i in graph.input] == list(STREAMING_PARTS["encoder_chunk"].inputs)
    assert all(d.dim_value > 0 for i in graph.input for d in i.type.tensor_type.shape.dim)


def recognizers(model_file: Path, exported: Path) -> dict[str, Recognizer]:
    return {"torch": Recognizer.from_model_file(str(model_file), **SEARCH),
            "onnxruntime": open_recognizer(str(exported), threads=1, **SEARCH),
            "om": open_recognizer(str(exported / "om"), "om", threads=1, om_runtime="onnxruntime", **SEARCH)}


def stream(rec: Recognizer, samples: np.ndarray, **kwargs):
    s = rec.stream(CHUNK, LEFT, **kwargs)
    for i in range(0, len(samples), 1600):
        s.accept_waveform(samples[i : i + 1600])
    s.finalize()
    return s


def test_same_text_from_torch_onnxruntime_and_om_streaming(streaming_model_file, exported, test_utterances):
    recs = recognizers(streaming_model_file, exported)
    audio = [x for x, _ in test_utterances[:4]]
    long, _ = join_with_silences(audio, [0.3, 1.2, 0.8, 1.5, 0.5])  # endpoints inside the stream
    # max_segment 3 s: below the small static profile's decoder limit (4 s), so every backend cuts alike
    endpoint = EndpointRule(trailing_silence=0.5, max_segment=3.0)
    for samples, rescores in [*((x, (True,)) for x in audio[:3]), (long, (True, False))]:
        for rescore in rescores:
            runs = {name: stream(rec, samples, rescore=rescore, endpoint=endpoint) for name, rec in recs.items()}
            texts = {name: [(s.start, s.end, s.text) for s in run.segments] for name, run in runs.items()}
            assert texts["torch"] == texts["onnxruntime"] == texts["om"]
            assert runs["torch"].text  # a random model says plenty: not vacuously equal


def test_om_streaming_closes_segments_at_the_profile_decoder_limit(streaming_model_file, exported, test_utterances):
    """A static decoder scores one window's encoder frames at most: longer segments close there (documented)."""
    rec = open_recognizer(str(exported / "om"), "om", threads=1, om_runtime="onnxruntime", **SEARCH)
    samples = np.concatenate([x for x, _ in test_utterances[:3]])
    run = stream(rec, samples, endpoint=None)
    limit = rec.backend.profile["enc_frames"] * 6 * 0.01
    assert len(run.segments) >= 2 and all(s.end - s.start <= limit + 1e-6 for s in run.segments)


def test_acl_path_streams_like_onnxruntime_and_frees_everything(exported, tmp_path, test_utterances):
    om_dir = tmp_path / "om"
    shutil.copytree(exported / "om", om_dir)
    for f in om_dir.glob("*.onnx"):
        (om_dir / f"{f.stem}.om").write_bytes(b"stand-in OM file")
    samples = test_utterances[0][0]
    for int64_as_int32 in (False, True):
        acl = FakeAcl(int64_as_int32)
        backend = OMBackend(om_dir, runtime="acl", acl=acl)
        rec = Recognizer(backend, backend.tokenizer, backend.fbank, backend.cmvn, **SEARCH)
        ref = open_recognizer(str(om_dir), "om", threads=1, om_runtime="onnxruntime", **SEARCH)
        assert stream(rec, samples).segments == stream(ref, samples).segments
        backend.close()
        ref.backend.close()
        assert [Path(a[0]).name for n, a in acl.calls if n == "mdl.load_from_file"][-1] == "encoder_chunk.om"
        assert acl.live() == {} and acl.host_bytes == {}


def test_exported_chunk_is_the_only_one_it_runs(exported):
    rec = open_recognizer(str(exported), threads=1)
    assert rec.stream().encoder.chunk_size == CHUNK  # None: the exported chunk
    with pytest.raises(ValueError, match="chunks of 8 frames with 2 left chunks, not chunk 4"):
        rec.stream(chunk_size=4)
    with pytest.raises(ValueError, match="re-export"):
        rec.stream(chunk_size=CHUNK, num_left_chunks=-1)
    with pytest.raises(ValueError, match="chunk size must be a positive"):
        rec.stream(chunk_size=0)
    # asr.decode chunk_size=C masks the torch model's whole-utterance forward; a folder cannot, so it says so
    # rather than decoding with full context under a chunk-16 label
    with pytest.raises(ValueError, match="torch backend only"):
        open_recognizer(str(exported), threads=1, chunk_size=CHUNK)


@pytest.mark.parametrize("backend", ["onnxruntime", "om"])
def test_exported_model_streams_without_torch(backend, exported, prepared_synthetic, without_train):
    """asr-transcribe --streaming on an exported folder where torch cannot be imported (kaldi-native-fbank, the
    chunk graph and the search on NumPy): the same segments as in a process that has torch."""
    wavs = [row["audio"] for row in Manifest(prepared_synthetic / "test.jsonl")][:3]
    folder = exported if backend == "onnxruntime" else exported / "om"
    args = [*wavs, "--model", str(folder), "--backend", backend, "--om-runtime", "onnxruntime", "--streaming",
            "--json"]
    with_torch = asr_transcribe(args)
    assert sum('"text"' in line for line in with_torch) >= len(wavs)  # a random model says plenty
    assert asr_transcribe(args, env=without_train) == with_torch


def edit_metadata(path: Path, **changes) -> None:
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(path))


def test_streaming_metadata_is_checked_strictly(exported, random_model_file, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder, ignore=shutil.ignore_patterns("om"))
    chunk_file = folder / "encoder_chunk.onnx"
    good = json.loads({p.key: p.value for p in onnx.load(str(chunk_file)).metadata_props}["streaming"])
    cases = [({"streaming": None}, "belongs to the"),
             ({"streaming": json.dumps({**good, "cache_size": 17})}, "inconsistent sizes"),
             ({"streaming": json.dumps({**good, "extra": 1})}, "exactly the keys"),
             ({"streaming": json.dumps({**good, "num_left_chunks": 0, "cache_size": 0})}, "positive integer"),
             ({"streaming": "NaN"}, "streaming"),
             ({"model_version": "another"}, "comes from model another"),
             ({"part": "ctc"}, "belongs to the")]
    original = chunk_file.read_bytes()
    for change, message in cases:
        chunk_file.write_bytes(original)
        edit_metadata(chunk_file, **change)
        with pytest.raises(ValueError, match=message):
            open_recognizer(str(folder), threads=1).stream()
    chunk_file.write_bytes(original)
    edit_metadata(folder / "ctc.onnx", streaming=json.dumps(good))
    with pytest.raises(ValueError, match="belongs to the"):
        open_recognizer(str(folder), threads=1)
    chunk_file.unlink()
    shutil.copy(exported / "ctc.onnx", folder / "ctc.onnx")
    with pytest.raises(FileNotFoundError, match="--streaming-chunk"):
        open_recognizer(str(folder), threads=1).stream()


def test_a_model_without_causal_convolution_has_no_streaming_export(random_model_file, tmp_path, capsys):
    assert export_main(["--model", str(random_model_file), "--out", str(tmp_path / "x"), "--streaming-chunk", "8"]) == 1
    assert "not causal" in capsys.readouterr().err
