"""Noisy-student training (NST) with a language-model filter (issue 20; recipes/aishell/run_nst.sh).

A teacher decodes untranscribed audio twice, with and without a target-domain n-gram LM
(:mod:`asr.nst.pseudo_label`); the CER between the two hypotheses, "CER-Hypo" (:mod:`asr.nst.cer_hypo`), stands in
for the pseudo-label's unknown error; utterances whose CER-Hypo is too high are dropped (:mod:`asr.nst.filter`); the
kept pseudo-labels join the labelled data in a training manifest (:mod:`asr.nst.manifests`) on which a student is
trained with augmentation, and the student is the next teacher. Chen, Wen and Lai, "Improving Noisy Student
Training on Non-target Domain Data for Automatic Speech Recognition" (arXiv:2203.15455), WeNet's examples/aishell/NST.
"""
