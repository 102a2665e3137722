"""Every builder names its default config with the constant TFDS reads."""

import pytest
import tensorflow_datasets as tfds

import tfds_builders


@pytest.mark.parametrize("name", sorted(tfds_builders.BUILDERS))
def test_default_config_is_declared_and_exists(name):
    cls = tfds.builder_cls(name)
    assert not hasattr(cls, "DEFAULT_CONFIG_NAME"), "TFDS ignores DEFAULT_CONFIG_NAME"
    default = cls.DEFAULT_BUILDER_CONFIG_NAME  # None: TFDS takes the first config
    if cls.BUILDER_CONFIGS and default is not None:
        assert default in {c.name for c in cls.BUILDER_CONFIGS}
