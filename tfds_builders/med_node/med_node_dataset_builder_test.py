"""DatasetBuilderTestCase for every med_node config over dummy_data/ (the extracted zip)."""

import tensorflow_datasets as tfds

from tfds_builders.med_node import med_node_dataset_builder


class MedNodeTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = med_node_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["resized_512", "original"]
    SPLITS = {"train": 5}


if __name__ == "__main__":
    tfds.testing.test_main()
