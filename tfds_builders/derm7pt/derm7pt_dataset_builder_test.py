"""DatasetBuilderTestCase for every derm7pt config over dummy_data/ (the extracted release_v0.zip)."""

import tensorflow_datasets as tfds

from tfds_builders.derm7pt import derm7pt_dataset_builder


class Derm7ptDermoscopicTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = derm7pt_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["dermoscopic_512", "dermoscopic_original"]
    SPLITS = {"train": 3, "validation": 2, "test": 2}


class Derm7ptClinicalTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = derm7pt_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["clinical_512", "clinical_original"]
    SPLITS = {"train": 3, "validation": 2, "test": 2}


if __name__ == "__main__":
    tfds.testing.test_main()
