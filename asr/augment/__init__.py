"""On-the-fly data augmentation, one idea per module.

Waveform augmentations (``speed``, ``volume``, ``noise``, ``reverb``, ``splice``; gate in ``base``) take and
return a sample dict ``{"id", "wav": (1, N) float, "sample_rate", "text", "speaker"}`` and draw all randomness
from a ``random.Random``; ``chain`` applies a list of them. ``specaug`` masks features ``(T, F)``.
``audio_bank`` reads noise / RIR lists, ``room`` simulates RIRs, ``config`` loads ``conf/augment/*.yaml`` for tools.
"""
