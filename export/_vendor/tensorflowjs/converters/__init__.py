# Copyright 2018 Google LLC. Licensed under the Apache License, Version 2.0 (see ../LICENSE).
"""SavedModel -> TF.js graph model conversion (vendored subset of tensorflowjs.converters)."""
