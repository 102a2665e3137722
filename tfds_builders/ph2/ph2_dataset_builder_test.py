"""DatasetBuilderTestCase for every ph2 config over dummy_data/ (the extracted PH2Dataset.rar)."""

import tensorflow_datasets as tfds

from tfds_builders.ph2 import ph2_dataset_builder


class Ph2ClassificationTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = ph2_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["classification_512", "classification_original"]
    SPLITS = {"train": 4}


class Ph2SegmentationTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = ph2_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["segmentation_512", "segmentation_original"]
    SPLITS = {"train": 4}


if __name__ == "__main__":
    tfds.testing.test_main()
