"""One ablation-sweep job: train, then evaluate, in one process (the sweep's top level composes the two).

Usage:
    python -m asr.sweep -m +ablation=focal data_dir=recipes/aishell/data/demo
    bash recipes/aishell/run_ablation.sh focal       # the same on the demo data, then the table and plots
    python -m asr.sweep -m +ablation=focal data_dir=recipes/aishell/data/demo evaluate=conditions

Each job trains (:func:`asr.train.fit`) and evaluates (:func:`asr.evaluate.evaluate_run`, settings
``cfg.evaluate``, which ``conf/ablation/base.yaml`` mounts; ``evaluate=conditions`` adds the benchmark's test
conditions, each decoded in every mode and recorded in ``metrics.json``; their manifests are checked before
training). A job whose ``metrics.json`` says ``ok`` is skipped, so rerunning an interrupted sweep redoes only what
is missing; a job that fails leaves ``metrics.json`` with the error (:func:`asr.evaluate.recorded`). Returns the
dev CER of the first evaluation mode: the value a Hydra sweeper (e.g. Optuna) minimises.

A decoding sweep (``conf/ablation/decoding.yaml``) sets ``ablation.model_from``, a model file another sweep trained:
its jobs train nothing and evaluate that model with their own search settings (``evaluate.search``), writing the same
``metrics.json`` and per-utterance files, so tools/collect_ablation.py tables them like any sweep.
"""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from asr.evaluate import evaluate_run, evaluation_sets, finished, read_metrics, recorded, METRICS_FILE
from asr.train import fit


def dev_cer(record: dict, modes: list[str]) -> float | None:
    return record.get("cer", {}).get("dev", {}).get(modes[0])


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    if cfg.get("evaluate") is None:
        raise SystemExit("asr.sweep: no evaluation settings (cfg.evaluate): +ablation=NAME mounts them, "
                         "or add +evaluate=default")
    modes = list(cfg.evaluate.modes)
    if finished(cfg.exp_dir):
        return dev_cer(read_metrics(f"{cfg.exp_dir}/{METRICS_FILE}"), modes)
    with recorded(cfg.exp_dir, cfg):
        evaluation_sets(cfg.evaluate, cfg)  # a missing test-set manifest fails now, not after training
        if model_from := OmegaConf.select(cfg, "ablation.model_from", default=None):  # a decoding sweep: no training
            if not Path(model_from).is_file():
                raise FileNotFoundError(f"ablation.model_from: {model_from}: no such model file (train the sweep it "
                                        "names first, e.g. run_ablation.sh posenc)")
            return dev_cer(evaluate_run(cfg.exp_dir, cfg.evaluate, cfg, model_file=model_from), modes)
        _, trainer = fit(cfg)
        if not trainer.is_global_zero:
            return None
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted")
        record = evaluate_run(cfg.exp_dir, cfg.evaluate, cfg)
    return dev_cer(record, modes)


if __name__ == "__main__":
    main()
