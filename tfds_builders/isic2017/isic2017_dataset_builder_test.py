"""DatasetBuilderTestCase for every isic2017 config over dummy_data/ (official archive layout)."""

import tensorflow_datasets as tfds

from tfds_builders import common
from tfds_builders.isic2017 import isic2017_dataset_builder

_SPLITS = {"train": 3, "validation": 2, "test": 2}


class Isic2017ClassificationTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = isic2017_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["classification_512", "classification_original"]
    SPLITS = _SPLITS


class Isic2017SegmentationTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = isic2017_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["segmentation_512", "segmentation_original"]
    SPLITS = _SPLITS


class Isic2017TinyResizeTest(tfds.testing.DatasetBuilderTestCase):
    """A user-made config that really resizes the 10x14 dummy images (and their masks)."""

    DATASET_CLASS = isic2017_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = [
        common.LesionConfig(name="segmentation_8", max_side=8, segmentation=True)
    ]
    SPLITS = _SPLITS


if __name__ == "__main__":
    tfds.testing.test_main()
