"""Named grids of combinations, e.g. the uncertainty paper's training-set combinations.

The uncertainty paper (Kim et al.) reports "1,296 experiments with 54 combinations of combined
datasets and 24 CNNs" but lists only the combinations in its tables. The authors' public code
(github.com/shkimmie-umb/melanoma_detection: ``SLURMS/scripts/*``, ``SLURMS/bash_scripts/*`` and
the run names in ``SLURMS/LOGS/*``) names 48 distinct training combinations; they include every
combination in the paper's Tables 1-3. Those 48 are the preset below, each crossed with the paper's
four test sets. The remaining 6 of the 54 are not identifiable from the paper or the code, so they
are not guessed. See docs/datasets.md for the full list.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER_DATASETS: dict[str, str] = {
    "A": "isic2016",
    "B": "isic2017",
    "C": "isic2018",
    "D": "isic2019",
    "E": "isic2020",
    "F": "derm7pt",
    "G": "ph2",
    "H": "pad_ufes_20",
    "I": "med_node",
    "J": "kaggle_fanconic",
}
"""The paper's dataset letters (Table 1 notes) -> our builder names."""

PAPER_TEST_SETS: tuple[str, ...] = (
    "isic2017:test",
    "isic2018:test",
    "derm7pt:test",
    "kaggle_fanconic:test",
)
"""The paper evaluates on the official test sets of ISIC'17, ISIC'18, 7-point and Kaggle (":test"
names the split: a dataset that is not trained on would otherwise be used whole)."""

# Training combinations in the paper's letter notation, in the order the authors' scripts run them.
_PAPER_TRAIN_COMBINATIONS: tuple[str, ...] = (
    # SLURMS/scripts/<net>.sh: nine single datasets, then growing unions.
    "A", "B", "C", "D", "E", "F", "H", "I", "J",
    "AB", "CD", "EG", "FH", "IJ",
    "ABC", "DEG", "FHI", "HIJ",
    "ABCD", "EGFH", "FHIJ",
    "ABCDE", "GFHIJ",
    "ABCDEG", "AGFHIJ",
    "ABCDEGF", "ABCDHIJ",
    "ABCDEGFH", "ABCDEGFHI", "ABCDEGFHIJ",
    # SLURMS/bash_scripts/<net>.sh: further combinations.
    "AE", "AEG", "ACDE", "ABCIJ", "ABCGF", "ABCEG", "ABCDHI", "ABCDIJ",
    "ABCDEFH", "ABCDEHI", "ABCDEGHI", "ABCDEGIJ", "ABCDEGFIJ",
    # Run names in SLURMS/LOGS/<net>/ only.
    "ABCDEIJ", "ABCDGF", "ABCDFH", "ABCHI", "ABCFH",
)  # fmt: skip


@dataclass(frozen=True)
class CombinationSpec:
    """One cell of a grid.

    Attributes:
        name: short id, e.g. "paper_07_A-B-C__isic2017".
        train: training dataset names.
        test: test set(s), as `data.test` takes them (e.g. "isic2017:test").
        letters: the paper's notation of the training set, e.g. "[A,B,C]".
    """

    name: str
    train: tuple[str, ...]
    test: str
    letters: str = ""


def _letters_to_names(letters: str) -> tuple[str, ...]:
    return tuple(PAPER_DATASETS[c] for c in letters)


def paper_train_combinations() -> list[tuple[str, ...]]:
    """The 48 training combinations as tuples of dataset names (no duplicates)."""
    combos = [_letters_to_names(c) for c in _PAPER_TRAIN_COMBINATIONS]
    if len({frozenset(c) for c in combos}) != len(combos):  # guard against editing mistakes
        raise AssertionError("duplicate combination in _PAPER_TRAIN_COMBINATIONS")
    return combos


def _paper_grid() -> list[CombinationSpec]:
    specs = []
    for test in PAPER_TEST_SETS:
        for i, letters in enumerate(_PAPER_TRAIN_COMBINATIONS, start=1):
            specs.append(
                CombinationSpec(
                    name=f"paper{i:02d}_{letters}__{test.split(':')[0]}",
                    train=_letters_to_names(letters),
                    test=test,
                    letters="[" + ",".join(sorted(letters)) + "]",
                )
            )
    return specs


_PRESETS = {
    "uncertainty_paper": _paper_grid,
    "uncertainty_paper_tables": lambda: [
        s
        for s in _paper_grid()
        if frozenset(s.letters.strip("[]").split(",")) in _TABLE_COMBINATIONS
    ],
}

# Training sets that appear in the paper's Tables 1-3 (Table 1 rows, Table 2, Table 3).
_TABLE_COMBINATIONS = {
    frozenset(c)
    for c in (
        "ABCDEGIJ", "ABCDEFH", "ABCDIJ", "D", "ACDE", "ABCDE", "ABCDEG", "ABCDEFGIJ",
        "ABCDEHI", "AE", "ABCDEGF", "ABCDHI", "ABCIJ", "AEG", "ABCEG", "ABCDEGHI",
    )
}  # fmt: skip


def list_presets() -> list[str]:
    """Names of the available presets."""
    return sorted(_PRESETS)


def get_preset(name: str) -> list[CombinationSpec]:
    """The combinations of a preset.

    Args:
        name: one of `list_presets()`.

    Raises:
        KeyError: unknown name, listing the known ones.
    """
    try:
        return _PRESETS[name]()
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known presets: {list_presets()}") from None
