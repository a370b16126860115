"""Datasets and augmentation for training (CASIA-SURF format); folds live in training.data.folds
(also a command: python -m training.data.folds TRAIN_LIST OUT_DIR)."""
from training.data.augment import AugmentParams, PairedAugment
from training.data.casia import CasiaDataset, Sample, load_region_crops, read_list, write_list

__all__ = [
    "AugmentParams",
    "CasiaDataset",
    "PairedAugment",
    "Sample",
    "load_region_crops",
    "read_list",
    "write_list",
]
