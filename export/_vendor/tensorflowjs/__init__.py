# Copyright 2018 Google LLC. Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Minimal vendored copy of the `tensorflowjs` 4.22.0 SavedModel -> graph model converter."""
