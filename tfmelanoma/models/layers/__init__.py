"""Small serializable layers used inside registry models (one public class per file)."""

from tfmelanoma.models.layers.class_frequency_rescaling import ClassFrequencyRescaling
from tfmelanoma.models.layers.reverse_channels import ReverseChannels

__all__ = ["ClassFrequencyRescaling", "ReverseChannels"]
