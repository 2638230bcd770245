"""Training side of the data loop: the compact model, loss, dataset, augmentation, trainer and
export.

Needs torch (installed by `make setup`, CPU build); nothing outside training imports it."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    model:   CompactSeg ModelConfig
    trainer: Trainer TrainConfig
    dataset: CocoSegDataset
    augment: AugmentConfig augment
    export:  export_checkpoint load_checkpoint
""")
