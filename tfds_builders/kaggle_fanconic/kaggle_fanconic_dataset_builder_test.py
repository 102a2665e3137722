"""DatasetBuilderTestCase for kaggle_fanconic over dummy_data/ (the Kaggle folder layout)."""

import tensorflow_datasets as tfds

from tfds_builders.kaggle_fanconic import kaggle_fanconic_dataset_builder


class KaggleFanconicTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = kaggle_fanconic_dataset_builder.Builder
    SPLITS = {"train": 5, "test": 4}


if __name__ == "__main__":
    tfds.testing.test_main()
