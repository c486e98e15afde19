"""The pyACL path of the OM backend against a stand-in ``acl`` module that checks and records every call.

The stand-in keeps "device" and pinned-host memory as byte arrays and, like pyACL, answers a call out of
order with an error code instead of acting (no context current on the calling thread, freed or unknown
pointers, wrong copy directions or sizes, a second ``init``); it records every code it returned. It executes
a model by running its static ONNX twin (``x.onnx`` beside ``x.om``) under ONNX Runtime on the bytes in its
input buffers. So the backend's results through it must equal the ONNX Runtime runtime's, its teardown
must leave nothing allocated, and no call may have been refused.
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
import torch

from asr.export.om import profile_files
from asr.inference.backends.om_backend import ACL_DTYPES, ACL_ERROR_REPEAT_INITIALIZE, AclError, OMBackend

DTYPE_CODES = {np.dtype(v): k for k, v in ACL_DTYPES.items()}
RETURNS_PAIR = {"rt.create_context", "rt.malloc", "rt.malloc_host", "mdl.load_from_file", "mdl.get_input_dims",
                "mdl.get_output_dims", "mdl.add_dataset_buffer"}
ORT_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
# pyACL return codes (CANN's aclError list): bad argument, not initialised, initialised twice; and the
# runtime's "no context on this thread" (ACL_ERROR_RT_CONTEXT_NULL of acl_base.h, as the stand-in assumes it).
INVALID_PARAM, UNINITIALIZE, CONTEXT_NULL = 100000, 100001, 107002


class Refused(Exception):
    """Raised inside the stand-in to return an error code (never escapes to the caller)."""

    def __init__(self, code: int):
        self.code = code


class FakeAcl:
    """A stand-in for CANN's pyACL (``acl``): same call signatures, checked state, a log of calls.

    Args:
        int64_as_int32: describe int64 model inputs as int32 (as ATC may convert them).
        fail: name of a call (e.g. ``"mdl.execute"``) that returns error code 507011.
    """

    def __init__(self, int64_as_int32: bool = False, fail: str | None = None):
        self.int64_as_int32, self.fail = int64_as_int32, fail
        self.calls: list[tuple[str, tuple]] = []
        self.device, self.host, self.host_bytes = {}, {}, {}  # ptr -> bytearray / bytes
        self.data_buffers, self.datasets, self.models, self.descs = {}, {}, {}, {}
        self.initialised, self.device_set, self.context = False, False, None
        self.thread = threading.local()  # .context: the context current on the calling thread
        self.refused: list[tuple[str, int]] = []
        self._next = 0x1000
        self.rt = SimpleNamespace(**{n: self._logged(f"rt.{n}") for n in (
            "set_device", "create_context", "set_context", "malloc", "malloc_host", "memcpy", "free", "free_host",
            "destroy_context", "reset_device")})
        self.mdl = SimpleNamespace(**{n: self._logged(f"mdl.{n}") for n in (
            "load_from_file", "create_desc", "get_desc", "get_num_inputs", "get_num_outputs", "get_input_dims",
            "get_output_dims", "get_input_data_type", "get_output_data_type", "get_input_size_by_index",
            "get_output_size_by_index", "create_dataset", "add_dataset_buffer", "get_dataset_num_buffers",
            "get_dataset_buffer", "destroy_dataset", "execute", "unload", "destroy_desc")})
        self.util = SimpleNamespace(bytes_to_ptr=self._logged("util.bytes_to_ptr"),
                                    ptr_to_bytes=self._logged("util.ptr_to_bytes"))
        for n in ("init", "finalize", "create_data_buffer", "destroy_data_buffer"):
            setattr(self, n, self._logged(n))

    # --- plumbing ------------------------------------------------------------------------------
    def _logged(self, name: str):
        impl = getattr(self, "_" + name.replace(".", "_"))

        def call(*args):
            self.calls.append((name, args))
            try:
                if name == self.fail:  # fails without side effects, as a failed ACL call
                    raise Refused(507011)
                return impl(*args)
            except Refused as e:
                if name != self.fail:
                    self.refused.append((name, e.code))
                return (None, e.code) if name in RETURNS_PAIR else e.code
        return call

    @staticmethod
    def _require(condition: bool, code: int = INVALID_PARAM) -> None:
        if not condition:
            raise Refused(code)

    def _need_context(self) -> None:
        self._require(self.context is not None and getattr(self.thread, "context", None) == self.context,
                      CONTEXT_NULL)

    def _ptr(self) -> int:
        self._next += 0x100
        return self._next

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def live(self) -> dict[str, int]:
        """Resources still allocated."""
        return {k: len(v) for k, v in dict(device=self.device, host=self.host, data_buffers=self.data_buffers,
                                           datasets=self.datasets, models=self.models, descs=self.descs).items() if v}

    # --- runtime -------------------------------------------------------------------------------
    def _init(self):
        self._require(not self.initialised, ACL_ERROR_REPEAT_INITIALIZE)
        self.initialised = True
        return 0

    def _finalize(self):
        self._require(self.initialised, UNINITIALIZE)
        self._require(not self.device_set and self.context is None and not self.live())
        self.initialised = False
        return 0

    def _rt_set_device(self, device_id):
        self._require(self.initialised, UNINITIALIZE)
        self._require(device_id == 0)
        self.device_set = True
        return 0

    def _rt_create_context(self, device_id):
        self._require(self.device_set)
        self.context = self.thread.context = "context"  # current on the creating thread
        return self.context, 0

    def _rt_set_context(self, context):
        self._require(context is not None and context == self.context)
        self.thread.context = context
        return 0

    def _rt_destroy_context(self, context):
        self._require(context == self.context and not self.models)  # models must be unloaded first
        self.context = self.thread.context = None
        return 0

    def _rt_reset_device(self, device_id):
        self._require(self.context is None)
        self.device_set = False
        return 0

    def _rt_malloc(self, size, policy):
        self._need_context()
        self._require(size > 0 and policy == 0)
        ptr = self._ptr()
        self.device[ptr] = bytearray(size)
        return ptr, 0

    def _rt_malloc_host(self, size):
        self._need_context()
        self._require(size > 0)
        ptr = self._ptr()
        self.host[ptr] = bytearray(size)
        return ptr, 0

    def _rt_free(self, ptr):
        self._need_context()
        self._require(ptr in self.device and all(b != ptr for b, _ in self.data_buffers.values()))  # not wrapped
        del self.device[ptr]
        return 0

    def _rt_free_host(self, ptr):
        self._need_context()
        self._require(ptr in self.host)
        del self.host[ptr]
        return 0

    def _rt_memcpy(self, dst, dst_size, src, count, kind):
        self._need_context()
        if kind == 1:  # host -> device
            self._require(dst in self.device and src in self.host_bytes)
            memory, data = self.device[dst], self.host_bytes[src]
        else:
            self._require(kind == 2 and dst in self.host and src in self.device)
            memory, data = self.host[dst], self.device[src]
        self._require(count <= dst_size == len(memory) and count == len(data))
        if kind == 1:
            del self.host_bytes[src]
        memory[:count] = data[:count]
        return 0

    def _util_bytes_to_ptr(self, data):
        assert isinstance(data, bytes)
        ptr = self._ptr()
        self.host_bytes[ptr] = data
        return ptr

    def _util_ptr_to_bytes(self, ptr, size):
        return bytes(self.host[ptr][:size])

    # --- model ---------------------------------------------------------------------------------
    def _mdl_load_from_file(self, path):
        self._need_context()
        self._require(path.endswith(".om") and Path(path).is_file())
        model_id = len(self.models) + 1
        self.models[model_id] = ort.InferenceSession(path[:-3] + ".onnx", providers=["CPUExecutionProvider"],
                                                     disabled_optimizers=["MatMulAddFusion"])  # as OnnxStaticModel
        return model_id, 0

    def _mdl_create_desc(self):
        desc = self._ptr()
        self.descs[desc] = None
        return desc

    def _mdl_get_desc(self, desc, model_id):
        self.descs[desc] = self.models[model_id]
        return 0

    def _tensors(self, desc, kind):
        session = self.descs[desc]
        return session.get_inputs() if kind == "input" else session.get_outputs()

    def _dtype(self, desc, kind, index) -> np.dtype:
        dtype = np.dtype(ORT_TYPES[self._tensors(desc, kind)[index].type])
        return np.dtype(np.int32) if self.int64_as_int32 and kind == "input" and dtype == np.int64 else dtype

    def _mdl_get_num_inputs(self, desc):
        return len(self._tensors(desc, "input"))

    def _mdl_get_num_outputs(self, desc):
        return len(self._tensors(desc, "output"))

    def _mdl_get_input_dims(self, desc, i):
        shape = self._tensors(desc, "input")[i].shape
        return {"name": self._tensors(desc, "input")[i].name, "dimCount": len(shape), "dims": list(shape)}, 0

    def _mdl_get_output_dims(self, desc, i):
        shape = self._tensors(desc, "output")[i].shape
        return {"name": self._tensors(desc, "output")[i].name, "dimCount": len(shape), "dims": list(shape)}, 0

    def _mdl_get_input_data_type(self, desc, i):
        return DTYPE_CODES[self._dtype(desc, "input", i)]

    def _mdl_get_output_data_type(self, desc, i):
        return DTYPE_CODES[self._dtype(desc, "output", i)]

    def _mdl_get_input_size_by_index(self, desc, i):
        return int(np.prod(self._tensors(desc, "input")[i].shape)) * self._dtype(desc, "input", i).itemsize

    def _mdl_get_output_size_by_index(self, desc, i):
        return int(np.prod(self._tensors(desc, "output")[i].shape)) * self._dtype(desc, "output", i).itemsize

    def _create_data_buffer(self, ptr, size):
        self._require(ptr in self.device and len(self.device[ptr]) == size)
        handle = self._ptr()
        self.data_buffers[handle] = (ptr, size)
        return handle

    def _destroy_data_buffer(self, handle):
        del self.data_buffers[handle]
        return 0

    def _mdl_create_dataset(self):
        dataset = self._ptr()
        self.datasets[dataset] = []
        return dataset

    def _mdl_add_dataset_buffer(self, dataset, handle):
        self._require(handle in self.data_buffers and dataset in self.datasets)
        self.datasets[dataset].append(handle)
        return dataset, 0

    def _mdl_get_dataset_num_buffers(self, dataset):
        return len(self.datasets[dataset])

    def _mdl_get_dataset_buffer(self, dataset, i):
        return self.datasets[dataset][i]

    def _mdl_destroy_dataset(self, dataset):
        self._require(dataset in self.datasets)
        self._require(all(h not in self.data_buffers for h in self.datasets[dataset]))  # its buffers destroyed first
        del self.datasets[dataset]
        return 0

    def _mdl_execute(self, model_id, inputs, outputs):
        self._need_context()
        self._require(model_id in self.models and inputs in self.datasets and outputs in self.datasets)
        session = self.models[model_id]
        feeds = {}
        for i, (meta, handle) in enumerate(zip(session.get_inputs(), self.datasets[inputs])):
            ptr, _ = self.data_buffers[handle]
            dtype = self._dtype(next(d for d, s in self.descs.items() if s is session), "input", i)
            x = np.frombuffer(bytes(self.device[ptr]), dtype=dtype).reshape(meta.shape)
            feeds[meta.name] = x.astype(ORT_TYPES[meta.type])
        for result, handle in zip(session.run(None, feeds), self.datasets[outputs]):
            ptr, size = self.data_buffers[handle]
            self._require(result.nbytes == size)
            self.device[ptr][:] = result.tobytes()
        return 0

    def _mdl_unload(self, model_id):
        self._need_context()
        self._require(model_id in self.models)
        del self.models[model_id]
        return 0

    def _mdl_destroy_desc(self, desc):
        del self.descs[desc]
        return 0


@pytest.fixture(scope="module")
def om_dir(random_static, tmp_path_factory) -> Path:
    """The static profile with stand-in ``.om`` files beside its ``.onnx`` files."""
    out = tmp_path_factory.mktemp("om")
    for f in random_static.iterdir():
        shutil.copy(f, out / f.name)
        if f.suffix == ".onnx":
            (out / f"{f.stem}.om").write_bytes(b"stand-in OM file")
    return out


def run_all(backend) -> list[torch.Tensor]:
    """Encoder (longer than one window), CTC head and decoder scoring on fixed random inputs."""
    g = torch.Generator().manual_seed(0)
    p = backend.profile
    lens = torch.tensor([2 * p["frames"] + 30, 60])
    enc_out, enc_lens = backend.encode(torch.randn(2, int(lens.max()), 80, generator=g), lens)
    n = p["num_hyps"] + 1
    hyps = torch.randint(1, int(backend.meta["vocab_size"]) - 1, (n, 5), generator=g)
    scores = backend.decoder_scores(enc_out[[1] * n], enc_lens[[1] * n], hyps, torch.randint(0, 6, (n,), generator=g))
    return [enc_out, enc_lens, backend.ctc_log_probs(enc_out), scores]


@pytest.mark.parametrize("int64_as_int32", [False, True])
def test_acl_path_gives_the_onnxruntime_results_and_frees_everything(om_dir, int64_as_int32):
    acl = FakeAcl(int64_as_int32)
    with OMBackend(om_dir, runtime="onnxruntime", num_threads=1, context=8) as reference:
        expected = run_all(reference)
    backend = OMBackend(om_dir, runtime="acl", acl=acl, context=8)
    got = run_all(backend)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    backend.close()

    names = acl.names()
    assert acl.refused == []
    assert names[:3] == ["init", "rt.set_device", "rt.create_context"]
    assert names[-3:] == ["rt.destroy_context", "rt.reset_device", "finalize"]
    assert acl.live() == {} and acl.host_bytes == {}
    loads = [args[0] for name, args in acl.calls if name == "mdl.load_from_file"]
    files = [p.with_suffix(".om").name for p in profile_files(om_dir)]  # encoder, ctc, decoder, shorter gears
    assert [Path(p).name for p in loads] == files and len(files) > 3
    assert names.count("mdl.unload") == len(files) and names.count("mdl.destroy_desc") == len(files)
    assert names.count("rt.malloc") == names.count("rt.free")
    assert names.count("rt.malloc_host") == names.count("rt.free_host")
    assert names.count("create_data_buffer") == names.count("destroy_data_buffer")
    # Each execute is preceded by one host->device copy per input and followed by one device->host copy per output.
    executes = [i for i, n in enumerate(names) if n == "mdl.execute"]
    assert executes
    for i in executes:
        model = acl.calls[i][1][0]
        n_in = {1: 2, 2: 1}.get(model, 4)  # model ids in load order: encoder, ctc, then the decoder gears
        n_out = {1: 2, 2: 1}.get(model, 1)
        before = [acl.calls[j][1][4] for j in range(i - 2 * n_in, i) if names[j] == "rt.memcpy"]
        after = [acl.calls[j][1][4] for j in range(i + 1, i + 1 + 2 * n_out) if names[j] == "rt.memcpy"]
        assert before == [1] * n_in and after == [2] * n_out
        assert names[i - 2 * n_in - 1] == "rt.set_context"  # the context made current first, on any thread


def test_acl_errors_name_the_call(om_dir):
    acl = FakeAcl(fail="mdl.execute")
    backend = OMBackend(om_dir, runtime="acl", acl=acl, context=8)
    with pytest.raises(AclError, match=r"acl\.mdl\.execute failed with ACL error code 507011"):
        backend.encode(torch.zeros(1, 50, 80), torch.tensor([50]))
    backend.close()
    assert acl.live() == {} and not acl.initialised


@pytest.mark.parametrize("call", ["rt.create_context", "mdl.load_from_file", "rt.malloc", "mdl.add_dataset_buffer",
                                  "rt.malloc_host"])
def test_a_failed_load_releases_what_it_acquired(om_dir, call):
    acl = FakeAcl(fail=call)
    with pytest.raises(AclError, match=call.replace(".", r"\.")):
        OMBackend(om_dir, runtime="acl", acl=acl, context=8)
    assert acl.live() == {} and not acl.initialised and not acl.device_set


def test_acl_path_needs_the_om_files_and_pyacl(random_static):
    with pytest.raises(FileNotFoundError, match="build_om.sh"):
        OMBackend(random_static, runtime="acl", acl=FakeAcl())
    try:
        import acl  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="runtime='onnxruntime'"):
            OMBackend(random_static, runtime="acl")


def test_calls_from_another_thread_set_the_context_first(om_dir):
    acl = FakeAcl()
    with OMBackend(om_dir, runtime="onnxruntime", num_threads=1, context=8) as reference:
        expected = reference.encode(torch.ones(1, 300, 80), torch.tensor([300]))
    backend = OMBackend(om_dir, runtime="acl", acl=acl, context=8)
    results, errors = [], []

    def worker():
        try:
            results.append(backend.encode(torch.ones(1, 300, 80), torch.tensor([300])))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert errors == [] and acl.refused == []
    torch.testing.assert_close(results[0][0], expected[0], atol=1e-6, rtol=1e-6)

    for model in backend.models.values():  # without set_context the worker's calls have no context
        model.context = None
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], AclError) and str(CONTEXT_NULL) in str(errors[0])
    for model in backend.models.values():
        model.context = acl.context
    backend.close()
    assert acl.live() == {}


def test_repeat_init_is_accepted_and_finalize_left_to_its_owner(om_dir):
    acl = FakeAcl()
    assert acl.init() == 0  # another component of the process initialised pyACL first
    backend = OMBackend(om_dir, runtime="acl", acl=acl, context=8)
    run_all(backend)
    backend.close()
    assert acl.refused == [("init", ACL_ERROR_REPEAT_INITIALIZE)]
    assert acl.initialised and "finalize" not in acl.names() and acl.live() == {}


def test_stand_in_answers_misuse_with_error_codes():
    acl = FakeAcl()
    assert acl.finalize() == UNINITIALIZE
    assert acl.rt.malloc(16, 0) == (None, CONTEXT_NULL)
    assert acl.init() == 0 and acl.init() == ACL_ERROR_REPEAT_INITIALIZE
    assert acl.rt.set_device(0) == 0
    assert acl.rt.create_context(0) == ("context", 0)
    assert acl.rt.free(0xDEAD) == INVALID_PARAM
    assert [code for _, code in acl.refused] == [UNINITIALIZE, CONTEXT_NULL, ACL_ERROR_REPEAT_INITIALIZE, INVALID_PARAM]
