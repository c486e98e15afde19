"""Serving on NVIDIA Triton Inference Server.

``python -m asr.serve --model exp/demo/onnx`` starts a real Triton server (PyTriton: the server binary ships in the
``nvidia-pytriton`` wheel) on loopback, with one Triton model per module:

- :mod:`asr.serve.offline`: ``asr_offline``, whole recordings in, text and segment times out, dynamically batched
  (the model parts on ONNX Runtime).

:mod:`asr.serve.server` binds them (settings in :class:`asr.serve.config.ServeConfig`), :mod:`asr.serve.client`
calls them with ``tritonclient``, and :mod:`asr.serve.repository` writes a model repository for the stock
``tritonserver`` container instead. The serving environment is ``.venv-serve`` (``make serve-setup``).
"""
