"""tfmelanoma: a TensorFlow/Keras toolkit for melanoma detection.

Importing the package is cheap on purpose: it does not import TensorFlow or Keras, so the
TFDS builders and the TF-free `tfds.data_source` path can use `tfmelanoma.labels` without them.
"""

__version__ = "0.1.0"
