"""Serving on NVIDIA Triton Inference Server.

``python -m asr.serve --model exp/demo/onnx`` starts a real Triton server (PyTriton: the server binary ships in the
``nvidia-pytriton`` wheel) on loopback, with one Triton model per module:

- :mod:`asr.serve.offline`: ``asr_offline``, whole recordings in, text and segment times out, dynamically batched
  (the model parts on ONNX Runtime).
- :mod:`asr.serve.streaming`: ``asr_streaming`` (``python -m asr.serve --streaming``), audio streams as Triton
  sequences, one ``Recognizer.stream()`` each, under the sequence batcher; a Python-backend model of our own run by
  PyTriton's ``tritonserver`` binary (:mod:`asr.serve.tritonserver`), since PyTriton cannot pass sequence controls.

:mod:`asr.serve.server` binds them (settings in :class:`asr.serve.config.ServeConfig`), :mod:`asr.serve.client`
calls them with ``tritonclient``, and :mod:`asr.serve.repository` writes a model repository for the stock
``tritonserver`` container instead. The serving environment is ``.venv-serve`` (``make serve-setup``).
"""
