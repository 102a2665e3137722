"""`tfmelanoma.datasets.__all__`: the few names a user of another project needs, each importable,
every one the docs use among them, the rest importable from their submodules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tfmelanoma import datasets
from tfmelanoma.errors import DatasetNotPreparedError

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = [
    "Combination", "MergeOptions", "MergeReport", "SplitView", "class_weights", "get_builder",
    "get_preset", "list_presets", "load_combination", "load_split", "plan", "read_index",
]  # fmt: skip
SUBMODULES = {p.stem for p in (ROOT / "tfmelanoma" / "datasets").glob("*.py")}


def test_all_is_the_small_public_api_and_every_name_resolves():
    assert datasets.__all__ == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(datasets, name) is not None
    assert set(PUBLIC) <= set(dir(datasets))


def test_names_the_docs_use_are_public():
    pattern = re.compile(r"(?:tfmelanoma\.datasets|\bdatasets)\.([A-Za-z_]\w*)")
    imports = re.compile(r"from tfmelanoma\.datasets import ([\w, ]+)")
    used = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        used |= set(pattern.findall(text))
        for group in imports.findall(text):
            used |= {n.strip() for n in group.split(",")}
    used -= SUBMODULES | {"md", "py"}  # `tfmelanoma.datasets.index`, `docs/datasets.md`
    assert used and used <= set(PUBLIC), sorted(used - set(PUBLIC))


def test_former_exports_still_resolve_with_a_warning_naming_their_module():
    from tfmelanoma.datasets import rules, sampling

    with pytest.warns(DeprecationWarning, match=r"import it from tfmelanoma\.datasets\.sampling"):
        assert datasets.oversample is sampling.oversample
    with pytest.warns(DeprecationWarning, match=r"tfmelanoma\.datasets\.rules"):
        assert datasets.DEFAULT_MAX_DISTANCE == rules.DEFAULT_MAX_DISTANCE
    with pytest.warns(DeprecationWarning, match=r"import it from tfmelanoma\.errors"):
        assert datasets.DatasetNotPreparedError is DatasetNotPreparedError
    with pytest.raises(AttributeError, match="no attribute 'ensure_prepared'"):
        datasets.ensure_prepared  # noqa: B018


def test_importing_the_package_stays_cheap():
    probe = (
        "import sys, tfmelanoma.datasets as d; d.__all__; "
        "print(sorted({'pandas', 'tensorflow', 'tensorflow_datasets'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
