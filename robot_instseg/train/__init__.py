"""Training side of the data loop: the compact model, loss, dataset, augmentation, trainer and
export.

Needs torch (installed by `make setup`, CPU build); nothing outside training imports it."""

from robot_instseg._exports import exports, lazy_exports

_HOMES = exports(
    model="CompactSeg ModelConfig",
    trainer="Trainer TrainConfig",
    dataset="CocoSegDataset",
    augment="AugmentConfig augment",
    export="export_checkpoint load_checkpoint",
)
__all__ = sorted(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
