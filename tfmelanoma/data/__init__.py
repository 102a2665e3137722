"""Input pipelines: tf.data (`pipeline`, `augment`) and the TF-free NumPy path (`numpy_pipeline`)."""
