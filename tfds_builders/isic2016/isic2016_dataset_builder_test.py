"""DatasetBuilderTestCase for every isic2016 config over dummy_data/ (official archive layout)."""

import tensorflow_datasets as tfds

from tfds_builders.isic2016 import isic2016_dataset_builder


class Isic2016ClassificationTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = isic2016_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["classification_512", "classification_original"]
    SPLITS = {"train": 3, "test": 2}


class Isic2016SegmentationTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = isic2016_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["segmentation_512", "segmentation_original"]
    SPLITS = {"train": 3, "test": 2}


if __name__ == "__main__":
    tfds.testing.test_main()
