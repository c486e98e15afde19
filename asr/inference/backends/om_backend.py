"""The Ascend OM backend: static-shape models (``python -m asr.export --om-profile``) behind the Backend interface.

Every call is padded to the profile's fixed shapes and cut into pieces that fit:

* encoder: each utterance is cut into windows of the profile's ``frames`` input frames that overlap by
  ``context`` encoder frames on each side (:func:`plan_windows`); windows start on multiples of the
  subsampling rate, so a window's encoder frames line up with the utterance's, and each encoder frame
  is taken from a window where it has ``context`` frames on both sides (unless it is that close to the
  utterance's own edge). Windows of all utterances are batched ``batch`` at a time. Nothing is truncated.
* CTC head: frame-wise, so cutting ``enc_out`` into ``enc_frames`` pieces is exact.
* decoder scoring: hypotheses go ``num_hyps`` at a time, padded to ``enc_frames`` encoder frames and to the
  shortest token-length gear of the profile that holds the longest of them (``token_gears``; the longest
  gear is ``max_tokens``); longer inputs raise a clear error (attention needs the whole utterance).

The models run either on an NPU through pyACL (:class:`AclModel`, the ``acl`` module of CANN) or, to
check this padding and cutting without an NPU, on the very same static ONNX files under ONNX Runtime
(:class:`OnnxStaticModel`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from asr.decoding.arrays import to_numpy
from asr.export.format import GEAR_FILE, PARTS, STREAMING_PARTS, decoding_parts, read_folder_metadata, \
    read_streaming_metadata
from asr.features.kaldi_native import KaldiNativeFbank
from asr.inference.backends.base import Array, UnsupportedOperation
from asr.inference.backends.chunk_encoder import ExportedChunkEncoder
from asr.inference.backends.onnxruntime_backend import session_options
from asr.model.frames import subsampled_length

ACL_SUCCESS = 0
ACL_ERROR_REPEAT_INITIALIZE = 100002  # acl.init when this process already initialised pyACL (CANN's aclError list)
ACL_MEM_MALLOC_HUGE_FIRST = 0
ACL_MEMCPY_HOST_TO_DEVICE = 1
ACL_MEMCPY_DEVICE_TO_HOST = 2
# aclDataType -> NumPy dtype (CANN's acl_base.h numbering).
ACL_DTYPES = {0: np.float32, 1: np.float16, 2: np.int8, 3: np.int32, 4: np.uint8, 6: np.int16, 7: np.uint16,
              8: np.uint32, 9: np.int64, 10: np.uint64, 11: np.float64, 12: np.bool_}
RUNTIMES = ("acl", "onnxruntime")
ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int32)": np.int32,
              "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


def plan_windows(total: int, window: int, context: int) -> list[tuple[int, int, int, int]]:
    """Cut ``total`` encoder frames into windows of at most ``window`` frames.

    Each window is computed on ``[start, end)`` and contributes ``[keep_start, keep_end)``; the kept
    ranges tile ``[0, total)`` in order, and every kept frame has at least ``context`` frames of the
    window on each side unless it is within ``context`` of the utterance's own edge.

    Args:
        total: encoder frames T' of the utterance.
        window: encoder frames per window.
        context: frames of overlap on each side (``2 * context < window``).

    Returns:
        ``(start, end, keep_start, keep_end)`` per window.
    """
    if not 0 <= 2 * context < window:
        raise ValueError(f"context {context} must be below half the window ({window} encoder frames)")
    plan, keep_start = [], 0
    while keep_start < total:
        start = max(0, min(keep_start - context, total - window))
        end = min(start + window, total)
        keep_end = total if end == total else end - context  # advances by at least window - 2 * context
        plan.append((start, end, keep_start, keep_end))
        keep_start = keep_end
    return plan


class StaticModel(Protocol):
    """A model with fixed input shapes: ``run`` takes and returns NumPy arrays in graph order."""

    input_shapes: list[tuple[int, ...]]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...

    def close(self) -> None: ...


class OnnxStaticModel:
    """A static ONNX file under ONNX Runtime, with the same interface as :class:`AclModel`.

    Args:
        path: the ``.onnx`` file.
        num_threads: intra-op threads (None = all cores).
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        # MatMulAddFusion would undo the profile's Gemm -> MatMul + Add rewrite (asr.export.ascend), and on the
        # streaming chunk graph it fails to load ("Attempt to replace the existing tensor"): the stand-in runs the
        # graph as ATC gets it.
        self.session = ort.InferenceSession(str(path), session_options(num_threads), providers=["CPUExecutionProvider"],
                                            disabled_optimizers=["MatMulAddFusion"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_shapes = [tuple(i.shape) for i in self.session.get_inputs()]
        self.input_dtypes = [ORT_DTYPES[i.type] for i in self.session.get_inputs()]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run on arrays of exactly ``input_shapes`` (cast to the model's input types, as :class:`AclModel` does)."""
        for name, x, shape in zip(self.input_names, inputs, self.input_shapes):
            if x.shape != shape:
                raise ValueError(f"input {name!r}: shape {x.shape}, the static model takes {shape}")
        feeds = {name: np.ascontiguousarray(x, dtype=dtype) for name, x, dtype in zip(self.input_names, inputs,
                                                                                      self.input_dtypes)}
        return self.session.run(None, feeds)

    def close(self) -> None:
        self.session = None


class AclError(RuntimeError):
    """A pyACL call returned an error code."""


def _check(ret: int, call: str) -> None:
    if ret != ACL_SUCCESS:
        raise AclError(f"{call} failed with ACL error code {ret}")


class _Teardown:
    """Runs release calls in order, keeps going past failures, and raises the first one at the end."""

    def __init__(self):
        self.errors: list[AclError] = []

    def __call__(self, ret: int, call: str) -> None:
        try:
            _check(ret, call)
        except AclError as e:
            self.errors.append(e)

    def done(self) -> None:
        if self.errors:
            raise self.errors[0]


class AclDevice:
    """Initialise pyACL on one NPU: ``acl.init``, ``rt.set_device``, ``rt.create_context``; :meth:`close` undoes it.

    ``acl.init`` answering "already initialised" (:data:`ACL_ERROR_REPEAT_INITIALIZE`: another component of the
    process, e.g. a second backend, initialised pyACL) is accepted, and then :meth:`close` leaves
    ``acl.finalize`` to whoever initialised it.

    Args:
        acl: the pyACL module (``import acl``), or a stand-in with the same functions.
        device_id: NPU index.
    """

    def __init__(self, acl, device_id: int = 0):
        self.acl, self.device_id, self.context = acl, device_id, None
        self.initialised = self.device_set = False
        try:
            ret = acl.init()
            if ret != ACL_ERROR_REPEAT_INITIALIZE:
                _check(ret, "acl.init")
                self.initialised = True
            _check(acl.rt.set_device(device_id), f"acl.rt.set_device({device_id})")
            self.device_set = True
            context, ret = acl.rt.create_context(device_id)
            _check(ret, "acl.rt.create_context")
            self.context = context
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Destroy the context, reset the device, finalise (after every model on it is closed)."""
        release, acl = _Teardown(), self.acl
        if self.context is not None:
            release(acl.rt.destroy_context(self.context), "acl.rt.destroy_context")
            self.context = None
        if self.device_set:
            release(acl.rt.reset_device(self.device_id), "acl.rt.reset_device")
            self.device_set = False
        if self.initialised:
            release(acl.finalize(), "acl.finalize")
            self.initialised = False
        release.done()


class AclModel:
    """One OM model on an initialised device, with its device buffers allocated once.

    Load: ``mdl.load_from_file``, ``mdl.create_desc`` + ``get_desc``, then for every input and output
    a device buffer of the size the model states (``rt.malloc``), wrapped in a data buffer and added
    to the input or output dataset; a pinned host buffer per output (``rt.malloc_host``). Run:
    ``rt.set_context`` (a pyACL context is current per thread, and a server calls from its worker
    threads), host -> device copies, ``mdl.execute``, device -> host copies. :meth:`close` releases in
    reverse order (also after a failed load, whatever was acquired).

    Args:
        acl: the pyACL module.
        path: the ``.om`` file.
        context: the device's context (:class:`AclDevice`), made current before each run and the release.
    """

    def __init__(self, acl, path: str | os.PathLike, context=None):
        self.acl, self.path, self.context = acl, str(path), context
        self.model_id = self.desc = None
        self.inputs: list[dict] = []
        self.outputs: list[dict] = []
        self.datasets: list = []  # (dataset, its data buffers)
        self.host_outputs: list = []
        try:
            model_id, ret = acl.mdl.load_from_file(self.path)
            _check(ret, f"acl.mdl.load_from_file({self.path})")
            self.model_id = model_id
            self.desc = acl.mdl.create_desc()
            _check(acl.mdl.get_desc(self.desc, self.model_id), "acl.mdl.get_desc")
            for i in range(acl.mdl.get_num_inputs(self.desc)):
                self.inputs.append(self._tensor("input", i))
            for i in range(acl.mdl.get_num_outputs(self.desc)):
                self.outputs.append(self._tensor("output", i))
            self.input_shapes = [t["shape"] for t in self.inputs]
            self.input_dataset = self._dataset(self.inputs)
            self.output_dataset = self._dataset(self.outputs)
            for t in self.outputs:
                host, ret = acl.rt.malloc_host(t["size"])
                _check(ret, "acl.rt.malloc_host")
                self.host_outputs.append(host)
        except BaseException:
            self.close()
            raise

    def _tensor(self, kind: str, index: int) -> dict:
        """Shape, dtype, byte size and device buffer of input/output ``index``."""
        mdl = self.acl.mdl
        dims, ret = getattr(mdl, f"get_{kind}_dims")(self.desc, index)
        _check(ret, f"acl.mdl.get_{kind}_dims")
        code = getattr(mdl, f"get_{kind}_data_type")(self.desc, index)
        if code not in ACL_DTYPES:
            raise AclError(f"{self.path}: {kind} {index} has ACL data type {code}, which this backend does not map")
        shape, dtype = tuple(int(d) for d in dims["dims"]), np.dtype(ACL_DTYPES[code])
        size = getattr(mdl, f"get_{kind}_size_by_index")(self.desc, index)
        if size != int(np.prod(shape)) * dtype.itemsize:
            raise AclError(f"{self.path}: {kind} {index} is {size} bytes, shape {shape} of {dtype} needs "
                           f"{int(np.prod(shape)) * dtype.itemsize}")
        buffer, ret = self.acl.rt.malloc(size, ACL_MEM_MALLOC_HUGE_FIRST)
        _check(ret, "acl.rt.malloc")
        return {"shape": shape, "dtype": dtype, "size": size, "buffer": buffer}

    def _dataset(self, tensors: list[dict]):
        """An ACL dataset holding one data buffer per tensor."""
        dataset, data_buffers = self.acl.mdl.create_dataset(), []
        self.datasets.append((dataset, data_buffers))
        for t in tensors:
            data_buffers.append(self.acl.create_data_buffer(t["buffer"], t["size"]))
            _, ret = self.acl.mdl.add_dataset_buffer(dataset, data_buffers[-1])
            _check(ret, "acl.mdl.add_dataset_buffer")
        return dataset

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run on arrays of exactly ``input_shapes`` (cast to the model's input types)."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"{self.path}: {len(inputs)} inputs given, the model takes {len(self.inputs)}")
        for i, (x, t) in enumerate(zip(inputs, self.inputs)):
            if x.shape != t["shape"]:
                raise ValueError(f"{self.path}: input {i} has shape {x.shape}, the model takes {t['shape']}")
        if self.context is not None:
            _check(self.acl.rt.set_context(self.context), "acl.rt.set_context")
        for x, t in zip(inputs, self.inputs):
            data = np.ascontiguousarray(x, dtype=t["dtype"]).tobytes()
            ptr = self.acl.util.bytes_to_ptr(data)
            _check(self.acl.rt.memcpy(t["buffer"], t["size"], ptr, len(data), ACL_MEMCPY_HOST_TO_DEVICE),
                   "acl.rt.memcpy host->device")
        _check(self.acl.mdl.execute(self.model_id, self.input_dataset, self.output_dataset), "acl.mdl.execute")
        outputs = []
        for t, host in zip(self.outputs, self.host_outputs):
            _check(self.acl.rt.memcpy(host, t["size"], t["buffer"], t["size"], ACL_MEMCPY_DEVICE_TO_HOST),
                   "acl.rt.memcpy device->host")
            data = self.acl.util.ptr_to_bytes(host, t["size"])
            outputs.append(np.frombuffer(data, dtype=t["dtype"]).reshape(t["shape"]).copy())
        return outputs

    def close(self) -> None:
        """Free host buffers, data buffers, datasets, device buffers; unload; destroy the description."""
        release, acl = _Teardown(), self.acl
        if self.context is not None:
            release(acl.rt.set_context(self.context), "acl.rt.set_context")
        for host in self.host_outputs:
            release(acl.rt.free_host(host), "acl.rt.free_host")
        for dataset, data_buffers in self.datasets:
            for data_buffer in data_buffers:
                release(acl.destroy_data_buffer(data_buffer), "acl.destroy_data_buffer")
            release(acl.mdl.destroy_dataset(dataset), "acl.mdl.destroy_dataset")
        for t in [*self.inputs, *self.outputs]:
            release(acl.rt.free(t["buffer"]), "acl.rt.free")
        if self.model_id is not None:
            release(acl.mdl.unload(self.model_id), "acl.mdl.unload")
        if self.desc is not None:
            release(acl.mdl.destroy_desc(self.desc), "acl.mdl.destroy_desc")
        self.host_outputs, self.datasets, self.inputs, self.outputs = [], [], [], []
        self.model_id = self.desc = None
        release.done()


class OMBackend:
    """Implements :class:`asr.inference.backends.base.Backend` on static-shape models.

    Args:
        model_dir: the static profile's folder (``python -m asr.export --om-profile``): the ``.onnx``
            files (their metadata is read in both runtimes) and, for ``runtime="acl"``, the ``.om``
            files ``build_om.sh`` made from them.
        runtime: ``"acl"`` (NPU through pyACL) or ``"onnxruntime"`` (the same static ONNX files on CPU).
        device_id: NPU index (``acl`` only).
        context: encoder frames of overlap on each side of a window (see :func:`plan_windows`);
            None = an eighth of the window (three quarters of each window are kept).
        num_threads: CPU threads (``onnxruntime`` only).
        acl: the pyACL module to use; None imports ``acl``.

    Attributes:
        meta, profile: the files' metadata and static profile.
        tokenizer, fbank, cmvn: rebuilt from the metadata (``fbank`` computes with kaldi-native-fbank).
        max_input_frames: the longest input whose encoder output the decoder can still score.
    """

    device = "cpu"
    has_decoder_step = False

    def __init__(self, model_dir: str | os.PathLike, runtime: str = "acl", device_id: int = 0,
                 context: int | None = None, num_threads: int | None = None, acl=None):
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown OM runtime {runtime!r}; allowed: {list(RUNTIMES)}")
        self.model_dir = Path(model_dir)
        self.meta = read_folder_metadata(self.model_dir, "static")
        self.tokenizer, settings, self.cmvn = decoding_parts(self.meta, str(self.model_dir / PARTS["encoder"].file))
        self.fbank = KaldiNativeFbank(settings)
        self.profile = self.meta["profile"]  # checked by read_folder_metadata
        self.rate, self.min_input_frames = self.meta["subsampling_rate"], self.meta["min_input_frames"]
        self.max_input_frames = self.profile["frames"]
        self.context = self.profile["enc_frames"] // 8 if context is None else context
        plan_windows(1, self.profile["enc_frames"], self.context)  # validates it
        self.device_handle, self.num_threads = None, num_threads
        self.gears = self.profile.get("token_gears", [self.profile["max_tokens"]])
        onnx_files = {part: self.model_dir / spec.file for part, spec in PARTS.items()}
        onnx_files |= {f"decoder_L{g}": self.model_dir / GEAR_FILE.format(g) for g in self.gears[:-1]}
        if runtime == "acl":
            if acl is None:
                try:
                    import acl  # noqa: PLC0415 (CANN's pyACL exists only on Ascend hosts)
                except ImportError:
                    raise ImportError("om backend: the pyACL module `acl` is not importable; install CANN and "
                                      "source its set_env.sh, or use runtime='onnxruntime' to run the static "
                                      "ONNX files on CPU") from None
            files = {part: path.with_suffix(".om") for part, path in onnx_files.items()}
            missing = [str(f) for f in files.values() if not f.is_file()]
            if missing:
                raise FileNotFoundError(f"om backend: {missing} not found; run {self.model_dir}/build_om.sh first")
            self.models: dict[str, StaticModel] = {}
            self.device_handle = AclDevice(acl, device_id)
            try:
                for part, path in files.items():
                    self.models[part] = AclModel(acl, path, self.device_handle.context)
            except BaseException:
                self.close()
                raise
        else:
            missing = [str(f) for f in onnx_files.values() if not f.is_file()]
            if missing:
                raise FileNotFoundError(f"om backend: {missing} not found; re-export the static profile")
            self.models = {part: OnnxStaticModel(path, num_threads) for part, path in onnx_files.items()}

    def close(self) -> None:
        """Release the models, then the device (pyACL's teardown order)."""
        models, self.models = self.models, {}
        try:
            for model in models.values():
                model.close()
        finally:
            if self.device_handle is not None:
                self.device_handle, device = None, self.device_handle
                device.close()

    def __enter__(self) -> OMBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def encode(self, feats: Array, feats_lens: Array) -> tuple[np.ndarray, np.ndarray]:
        """Encode any length through windows of the profile (see the module docstring).

        Args: feats: (B, T, F) float32; feats_lens: (B,) int64.
        Returns: enc_out (B, T', D) float (zero past ``enc_lens``), enc_lens (B,) int64.
        """
        p, feats, feats_lens = self.profile, to_numpy(feats).astype(np.float32, copy=False), to_numpy(feats_lens)
        enc_lens = [int(subsampled_length(int(n), self.meta["subsampling"])) for n in feats_lens]
        jobs = [(b, *w) for b, total in enumerate(enc_lens) for w in plan_windows(total, p["enc_frames"], self.context)]
        enc_out = None
        for first in range(0, len(jobs), p["batch"]):
            group = jobs[first : first + p["batch"]]
            x = np.zeros((p["batch"], p["frames"], feats.shape[2]), dtype=np.float32)  # (batch, frames, F)
            x_lens = np.zeros(p["batch"], dtype=np.int64)  # unused rows: length 0
            for i, (b, start, end, _, _) in enumerate(group):
                first_frame = start * self.rate
                n = min(int(feats_lens[b]) - first_frame, (end - start - 1) * self.rate + self.min_input_frames)
                x[i, :n], x_lens[i] = feats[b, first_frame : first_frame + n], n
            out = self.models["encoder"].run([x, x_lens])[0]  # (batch, enc_frames, D)
            if enc_out is None:
                enc_out = np.zeros((len(enc_lens), max(enc_lens), out.shape[2]), dtype=np.float32)
            for i, (b, start, _, keep_start, keep_end) in enumerate(group):
                enc_out[b, keep_start:keep_end] = out[i, keep_start - start : keep_end - start]
        if enc_out is None:  # no utterance long enough for one encoder frame
            enc_out = np.zeros((len(enc_lens), 0, self.meta["d_model"]), dtype=np.float32)
        return enc_out, np.array(enc_lens, dtype=np.int64)

    def ctc_log_probs(self, enc_out: Array) -> np.ndarray:
        """Frame-wise, ``enc_frames`` frames at a time. Args: enc_out: (B, T', D). Returns: (B, T', V)."""
        p, x = self.profile, to_numpy(enc_out).astype(np.float32, copy=False)
        b, t, d = x.shape
        width = p["enc_frames"]
        pieces = [(row, start) for row in range(b) for start in range(0, t, width)]
        log_probs = np.zeros((b, t, self.meta["vocab_size"]), dtype=np.float32)
        for first in range(0, len(pieces), p["batch"]):
            group = pieces[first : first + p["batch"]]
            chunk = np.zeros((p["batch"], width, d), dtype=np.float32)  # (batch, enc_frames, D)
            for i, (row, start) in enumerate(group):
                n = min(width, t - start)
                chunk[i, :n] = x[row, start : start + n]
            out = self.models["ctc"].run([chunk])[0]  # (batch, enc_frames, V)
            for i, (row, start) in enumerate(group):
                n = min(width, t - start)
                log_probs[row, start : start + n] = out[i, :n]
        return log_probs

    def decoder_scores(self, enc_out: Array, enc_lens: Array, hyps: Array, hyps_lens: Array) -> np.ndarray:
        """``num_hyps`` hypotheses per call, padded to the profile (tokens: the shortest gear that holds them).

        Args: enc_out: (N, T', D); enc_lens, hyps_lens: (N,) int64; hyps: (N, L) int64.
        Returns: (N,) float.

        Raises:
            ValueError: an encoder output longer than the profile's ``enc_frames`` or a hypothesis
                longer than its ``max_tokens``.
        """
        p = self.profile
        enc_out, enc_lens = to_numpy(enc_out).astype(np.float32, copy=False), to_numpy(enc_lens)
        hyps, hyps_lens = to_numpy(hyps), to_numpy(hyps_lens)
        n = enc_out.shape[0]
        if n and int(enc_lens.max()) > p["enc_frames"]:
            raise ValueError(f"om backend: {int(enc_lens.max())} encoder frames exceed the decoder profile's "
                             f"{p['enc_frames']} ({p['frames']} input frames); decode shorter segments or "
                             "use a CTC mode")
        if n and int(hyps_lens.max()) > p["max_tokens"]:
            raise ValueError(f"om backend: a {int(hyps_lens.max())}-token hypothesis exceeds the decoder profile's "
                             f"{p['max_tokens']} tokens; re-export with a larger --om-max-tokens")
        t = min(enc_out.shape[1], p["enc_frames"])
        x, x_lens, ys, ys_lens = enc_out[:, :t], enc_lens, hyps, hyps_lens
        scores = np.zeros(n, dtype=np.float32)
        size = p["num_hyps"]
        for first in range(0, n, size):
            m = min(size, n - first)
            rows = slice(first, first + m)
            gear = next(g for g in self.gears if g >= max(int(ys_lens[rows].max()), 1))
            length = min(ys.shape[1], gear)
            enc = np.zeros((size, p["enc_frames"], x.shape[2]), dtype=np.float32)  # (num_hyps, enc_frames, D)
            enc[:m, :t] = x[rows]
            lens = np.zeros(size, dtype=np.int64)
            lens[:m] = x_lens[rows]
            tokens = np.zeros((size, gear), dtype=np.int64)  # (num_hyps, gear)
            tokens[:m, :length] = ys[rows, :length]
            tokens_lens = np.zeros(size, dtype=np.int64)
            tokens_lens[:m] = ys_lens[rows]
            model = self.models["decoder" if gear == self.gears[-1] else f"decoder_L{gear}"]
            scores[rows] = model.run([enc, lens, tokens, tokens_lens])[0][:m]
        return scores

    def set_reverse_weight(self, weight: float | None) -> None:
        """The exported decoder scores with the model's own right-to-left weight; another one is refused."""
        exported = float(self.meta["model_config"].get("reverse_weight", 0.0))
        if weight is not None and weight != exported:
            raise ValueError(f"the exported decoder scores with reverse_weight {exported}; decoding with {weight} "
                             "needs the torch backend")

    def stream_encoder(self, chunk_size: int | None = None, num_left_chunks: int | None = None):
        """An :class:`asr.inference.backends.chunk_encoder.ExportedChunkEncoder` for one stream, on the profile's
        chunk graph (``encoder_chunk.om`` through pyACL, or ``encoder_chunk.onnx`` under ONNX Runtime; loaded
        once, released by :meth:`close`); None = the exported chunk and left chunks."""
        meta = read_streaming_metadata(self.model_dir, "static")
        if "encoder_chunk" not in self.models:
            onnx_file = self.model_dir / STREAMING_PARTS["encoder_chunk"].file
            if self.device_handle is not None:
                om_file = onnx_file.with_suffix(".om")
                if not om_file.is_file():
                    raise FileNotFoundError(f"om backend: {om_file} not found; run {self.model_dir}/build_om.sh first")
                self.models["encoder_chunk"] = AclModel(self.device_handle.acl, om_file, self.device_handle.context)
            else:
                self.models["encoder_chunk"] = OnnxStaticModel(onnx_file, self.num_threads)
        return ExportedChunkEncoder(self.models["encoder_chunk"], meta["streaming"], meta["subsampling"], chunk_size,
                                    num_left_chunks)

    def decoder_step(self, enc_out: Array, enc_lens: Array, ys_in: Array) -> np.ndarray:
        """Not exported: the ``attention`` mode needs the torch backend."""
        raise UnsupportedOperation("om backend: no decoder step is exported; use the attention_rescoring mode or "
                                   "the torch backend for attention beam search")
