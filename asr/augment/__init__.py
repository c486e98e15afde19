"""On-the-fly data augmentation, one idea per module.

Waveform augmentations take and return a sample dict
``{"id", "wav": (1, N) float, "sample_rate", "text", "speaker"}`` and draw all randomness from a
``random.Random``: ``speed``, ``volume``, ``noise``, ``reverb``, ``splice``; ``chain`` applies a list of them.
``specaug`` masks features ``(T, F)``. Hydra configs live in ``conf/augment/``.
"""
