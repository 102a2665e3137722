"""Faults in files that the toolkit reads: weights, label CSVs, image ids, masks.

Each test builds one bad input in `tmp_path`, in the form of the real download (file names,
header lines), and asserts both the message (it names the file and what was expected) and that
nothing wrong got through (no code ran, no example from outside the root, no silent label).
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile

import pytest

from tfmelanoma.models.torch_checkpoint import load_torch_state_dict

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


# --- 1. Weights: every pickle in a .pth goes through a restricted unpickler ---


class _WritesFile:
    """Unpickling this calls `os.system("touch <marker>")` unless the unpickler refuses it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _legacy_records(marker, evil: str) -> list[object]:
    records = {
        "magic": _LEGACY_MAGIC,
        "protocol": 1001,
        "sys_info": {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}},
        "state_dict": collections.OrderedDict(),
        "keys": [],
    }
    records[evil] = _WritesFile(marker)
    return list(records.values())


@pytest.mark.parametrize("evil", ["magic", "protocol", "sys_info", "keys", "state_dict"])
def test_legacy_pth_record_with_code_is_refused(tmp_path, evil):
    marker = tmp_path / "pwned"
    weights = tmp_path / "evil.pth"
    with open(weights, "wb") as f:
        for record in _legacy_records(marker, evil):
            pickle.dump(record, f, protocol=2)
    with pytest.raises(ValueError, match=r"evil\.pth.*refusing to load posix\.system") as info:
        load_torch_state_dict(weights)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert not marker.exists(), "the pickle's code ran"


def test_legacy_pth_record_of_the_wrong_type_is_refused(tmp_path):
    weights = tmp_path / "odd.pth"
    with open(weights, "wb") as f:
        pickle.dump(_LEGACY_MAGIC, f)
        pickle.dump(1001, f)
        pickle.dump(["little_endian"], f)  # a list where the system info dict belongs
    with pytest.raises(ValueError, match=r"odd\.pth: the system info record .*not a dict"):
        load_torch_state_dict(weights)


def test_zip_pth_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    weights = tmp_path / "evil.pt"
    with zipfile.ZipFile(weights, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(_WritesFile(marker), protocol=2))
        zf.writestr("archive/version", "3\n")
    with pytest.raises(ValueError, match=r"evil\.pt.*refusing to load posix\.system"):
        load_torch_state_dict(weights)
    assert not marker.exists(), "the pickle's code ran"


def test_tensor_view_past_its_storage_is_refused(tmp_path):
    """A crafted size/stride would make NumPy read memory outside the file's buffer."""
    # OrderedDict(w=_rebuild_tensor_v2(<persistent storage "0" of 4 floats>, 0, (1000,), (1,)))
    body = (
        b"\x80\x02ccollections\nOrderedDict\n)RX\x01\x00\x00\x00w"
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
        b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
        b"K\x00M\xe8\x03\x85K\x01\x85tRs."
    )
    weights = tmp_path / "big.pt"
    with zipfile.ZipFile(weights, "w") as zf:
        zf.writestr("archive/data.pkl", body)
        zf.writestr("archive/data/0", b"\0" * 16)  # 4 float32
    with pytest.raises(ValueError, match=r"big\.pt: tensor view .* past its storage 0"):
        load_torch_state_dict(weights)
    # The same record with a size that fits loads.
    with zipfile.ZipFile(weights, "w") as zf:
        zf.writestr("archive/data.pkl", body.replace(b"M\xe8\x03", b"K\x04\x00"[:2]))
        zf.writestr("archive/data/0", b"\0" * 16)
    assert load_torch_state_dict(weights)["w"].shape == (4,)
