"""Reports of a combination: counts, overlaps by rule, patient groups, image sizes; CSV/MD/PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from tfmelanoma import labels
from tfmelanoma.datasets import dedup
from tfmelanoma.datasets.combination import SPLITS, STAGES


def format_value(value) -> str:
    """A table cell as a person reads it: 0.286 not 0.2857142857142857, 94498 not 94498.0,
    'n/a' for a missing value (None, NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value)}"
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_table(frame: pd.DataFrame, *, index: bool = False) -> str:
    """A GitHub Markdown table (written here to avoid a `tabulate` dependency for one call)."""
    if index:
        frame = frame.reset_index()
    cols = [str(c) for c in frame.columns]

    def cell(v) -> str:
        return format_value(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def split_counts(comb) -> pd.DataFrame:
    """Examples per dataset x split x binary class (wide: one column per class, plus total)."""
    parts = []
    for name in SPLITS:
        frame = comb.split(name).frame
        if len(frame):
            parts.append(frame.assign(assigned=name))
    if not parts:
        return pd.DataFrame(columns=["dataset", "split", *labels.BINARY_CLASSES, "total"])
    rows = pd.concat(parts, ignore_index=True)
    rows["class"] = rows["label"].map(dict(enumerate(labels.BINARY_CLASSES)))
    table = (
        rows.groupby(["dataset", "assigned", "class"]).size().unstack("class", fill_value=0)
    ).reindex(columns=list(labels.BINARY_CLASSES), fill_value=0)
    table["total"] = table.sum(axis=1)
    table["melanoma_%"] = (100 * table["melanoma"] / table["total"]).round(1)
    table = table.reset_index().rename(columns={"assigned": "split"})
    table["_order"] = table["split"].map({s: i for i, s in enumerate(SPLITS)})
    return table.sort_values(["_order", "dataset"]).drop(columns="_order").reset_index(drop=True)


def harmonised_counts(comb) -> pd.DataFrame:
    """Examples per split x harmonised class."""
    data = {}
    for name in SPLITS:
        counts = np.bincount(
            comb.split(name).frame["harmonised_diagnosis"].to_numpy(dtype=np.int64),
            minlength=len(labels.HARMONISED_CLASSES),
        )
        data[name] = counts
    return pd.DataFrame(data, index=list(labels.HARMONISED_CLASSES)).rename_axis("class")


def removal_table(comb) -> pd.DataFrame:
    """Per stage x rule: pairs found, rows matched, rows removed."""
    return comb.report.overlaps.copy()


def test_set_table(comb) -> pd.DataFrame:
    """Per test set: how it was chosen, its size, and training rows removed for matching it.

    Returns:
        DataFrame: ``test_set``, ``source`` (official / held_out / whole / split), ``examples``,
        ``melanoma``, ``removed`` (pool rows removed for matching it) and one ``removed_<rule>``
        column per rule that removed something.
    """
    removed = comb.report.removed
    if "matched_test_set" in removed.columns:
        removed = removed[removed["stage"] == "test_overlap"]
    else:
        removed = removed.iloc[:0].assign(matched_test_set=pd.Series(dtype=object))
    rows = []
    for name, view in comb.test_sets.items():
        mine = removed[removed["matched_test_set"] == name]
        row = {
            "test_set": name,
            "source": comb.report.test_sources.get(name, comb.report.test_source),
            "examples": len(view),
            "melanoma": int(view.labels.sum()),
            "removed": len(mine),
        }
        for rule, count in mine["rule"].value_counts().items():
            row[f"removed_{rule}"] = int(count)
        rows.append(row)
    return pd.DataFrame(rows).fillna(0)


def cross_dataset_overlaps(
    index: pd.DataFrame, *, max_distance: int = dedup.DEFAULT_MAX_DISTANCE
) -> pd.DataFrame:
    """Before any removal: rows of each dataset/split that show the same image as another's.

    Returns:
        DataFrame: ``a``, ``b`` ("dataset:split"), ``rule``, ``rows_a`` (distinct rows of a),
        ``rows_b``, ``pairs``; one line per pair of dataset-splits and content rule with a match.
    """
    pairs = dedup.match_pairs(index, None, rules=dedup.CONTENT_RULES, max_distance=max_distance)
    if pairs.empty:
        return pd.DataFrame(columns=["a", "b", "rule", "rows_a", "rows_b", "pairs"])
    tag = (index["dataset"].astype(str) + ":" + index["split"].astype(str)).to_numpy()
    left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
    swap = tag[left] > tag[right]  # order each pair so that a <= b
    first, second = np.where(swap, right, left), np.where(swap, left, right)
    pairs = pd.DataFrame(
        {"a": tag[first], "b": tag[second], "rule": pairs["rule"], "left": first, "right": second}
    )
    out = pairs.groupby(["a", "b", "rule"]).agg(
        rows_a=("left", "nunique"), rows_b=("right", "nunique"), pairs=("left", "size")
    )
    return out.reset_index()


def patient_groups(comb) -> pd.DataFrame:
    """Per split: images, images with a patient id, distinct patients/lesions, max per patient."""
    rows = []
    for name in SPLITS:
        f = comb.split(name).frame
        with_patient = f[f["patient_id"].astype(bool)]
        per_patient = with_patient.groupby(["dataset", "patient_id"]).size()
        rows.append(
            {
                "split": name,
                "images": len(f),
                "with_patient_id": len(with_patient),
                "patients": len(per_patient),
                "lesions": f.loc[f["lesion_id"].astype(bool), ["dataset", "lesion_id"]]
                .drop_duplicates()
                .shape[0],
                "max_images_per_patient": int(per_patient.max()) if len(per_patient) else 0,
            }
        )
    return pd.DataFrame(rows)


def image_sizes(comb) -> pd.DataFrame:
    """Per dataset: image count and min / median / max of height and width (stored images)."""
    parts = [comb.split(n).frame for n in SPLITS if len(comb.split(n))]
    if not parts:
        return pd.DataFrame()
    f = pd.concat(parts)
    f = f[f["height"] > 0]
    out = f.groupby("dataset").agg(
        images=("height", "size"),
        height_min=("height", "min"),
        height_median=("height", "median"),
        height_max=("height", "max"),
        width_min=("width", "min"),
        width_median=("width", "median"),
        width_max=("width", "max"),
    )
    # Distribution of the long side, in bins (columns "long<=256", ..., "long>2048").
    long_side = f[["height", "width"]].max(axis=1)
    edges = [0, 256, 512, 1024, 2048, np.inf]
    names = ["long<=256", "long<=512", "long<=1024", "long<=2048", "long>2048"]
    bins = pd.cut(long_side, edges, labels=names)
    hist = pd.crosstab(f["dataset"], bins).reindex(columns=names, fill_value=0)
    return out.join(hist).reset_index()


def write_contact_sheets(comb, out_dir: Path) -> dict[str, Path]:
    """``removed_NNN.png`` (every removal) and ``rejected_NNN.png`` (pHash candidates the pixel
    check kept): image pairs side by side with rule and scores. {} when the images cannot be read
    (logged: the CSVs still say everything)."""
    from tfmelanoma.datasets import contact_sheet
    from tfmelanoma.datasets.materialise import read_images
    from tfmelanoma.logging_utils import get_logger

    tables = {"removed": comb.report.removed, "rejected": comb.report.rejected}
    tables = {k: v for k, v in tables.items() if len(v) and "matched_position" in v.columns}
    if not tables:
        return {}
    try:
        wanted = pd.concat([contact_sheet.sides(t) for t in tables.values()]).drop_duplicates()
        images = read_images(wanted, comb.train.data_dir)
    except Exception as e:  # a report without pictures beats no report
        get_logger(__name__).warning("no contact sheets (images not readable): %s", e)
        return {}
    paths = {}
    for stem, table in tables.items():
        for i, path in enumerate(contact_sheet.write_sheets(table, images, out_dir, stem)):
            paths[f"{stem}_sheet_{i + 1}"] = path
    return paths


def write_report(comb, out_dir: str | Path, *, contact_sheets: bool = True) -> dict[str, Path]:
    """Writes CSVs, ``report.md`` and ``report.png`` into `out_dir`; returns the paths by name.

    Also writes ``splits.csv`` (every kept row with its assigned split), ``removed.csv``,
    ``rejected.csv`` (pHash candidates the pixel check found to be different images) and, with
    `contact_sheets`, ``removed_NNN.png`` / ``rejected_NNN.png``: every pair side by side.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "counts": split_counts(comb),
        "harmonised_counts": harmonised_counts(comb).reset_index(),
        "removals": removal_table(comb),
        "test_sets": test_set_table(comb),
        "cross_dataset_overlaps": cross_dataset_overlaps(
            comb.index, max_distance=comb.options.max_distance
        ),
        "patient_groups": patient_groups(comb),
        "image_sizes": image_sizes(comb),
    }
    paths = {}
    for name, table in tables.items():
        paths[name] = out / f"{name}.csv"
        table.to_csv(paths[name], index=False)
    kept = pd.concat([comb.split(n).frame.assign(assigned=n) for n in SPLITS], ignore_index=True)
    paths["splits"] = out / "splits.csv"
    kept.to_csv(paths["splits"], index=False)
    paths["removed"] = out / "removed.csv"
    comb.report.removed.to_csv(paths["removed"], index=False)
    paths["rejected"] = out / "rejected.csv"
    comb.report.rejected.to_csv(paths["rejected"], index=False)
    sheets = write_contact_sheets(comb, out) if contact_sheets else {}
    paths.update(sheets)
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text(render_markdown(comb, tables), encoding="utf-8")
    paths["chart"] = out / "report.png"
    plot(tables["counts"], tables["removals"], paths["chart"])
    return paths


_TITLES = {
    "counts": "Examples per dataset x split x class",
    "harmonised_counts": "Examples per harmonised class",
    "removals": "Removed by stage and rule (pairs found, rows matched, rows removed)",
    "test_sets": "Test sets, and the training rows removed for matching each",
    "cross_dataset_overlaps": "Same image in two dataset splits (before removal)",
    "patient_groups": "Patient groups",
    "image_sizes": "Stored image sizes (pixels)",
}


def render_markdown(comb, tables: dict[str, pd.DataFrame]) -> str:
    o = comb.options
    lines = [
        "# Dataset combination report",
        "",
        f"- train: {', '.join(comb.train_names) or '(none)'}",
        f"- test: {comb.test_name} ({comb.report.test_source})",
        f"- val_fraction={o.val_fraction}, test_fraction={o.test_fraction}, seed={o.seed}, "
        f"rules={','.join(o.rules)}, phash max_distance={o.max_distance}, "
        f"dedup_train={o.dedup_train}",
        *[f"- {n}" for n in comb.report.notes],
        "",
    ]
    for name, table in tables.items():
        lines += [f"## {_TITLES[name]}", ""]
        lines += [markdown_table(table) if len(table) else "(none)", ""]
    lines += ["![counts and removals](report.png)", ""]
    rejected = comb.report.rejected
    lines += [
        "## Audit",
        "",
        f"- {len(comb.report.removed)} removals, side by side: removed_001.png, ... "
        "(left: the removed image, right: the one it matched)",
        f"- {len(rejected)} pHash candidates that the pixel check found to be different images "
        "(kept): rejected.csv, rejected_001.png, ...",
        "",
    ]
    return "\n".join(lines)


def render_terminal(comb) -> str:
    """Plain-text summary for the terminal."""
    blocks = [comb.summary()]
    for title, table in [
        (_TITLES["counts"], split_counts(comb)),
        (_TITLES["removals"], removal_table(comb)),
        (_TITLES["test_sets"], test_set_table(comb)),
        (_TITLES["patient_groups"], patient_groups(comb)),
    ]:
        blocks += ["", title, table.to_string(index=False) if len(table) else "(none)"]
    return "\n".join(blocks)


def plot(counts: pd.DataFrame, removals: pd.DataFrame, path: Path) -> None:
    """Bar charts: examples per dataset/split by class, and removals by stage x rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    if len(counts):
        names = [f"{d}\n{s}" for d, s in zip(counts["dataset"], counts["split"], strict=True)]
        x = np.arange(len(names))
        ax.bar(x, counts["non_melanoma"], label="non_melanoma", color="#4c72b0")
        ax.bar(
            x, counts["melanoma"], bottom=counts["non_melanoma"], label="melanoma", color="#c44e52"
        )
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.legend()
    ax.set_title("Examples per dataset and split")
    ax.set_ylabel("images")
    ax = axes[1]
    if len(removals) and removals["removed"].sum() > 0:
        table = removals.pivot_table(
            index="stage", columns="rule", values="removed", aggfunc="sum", fill_value=0
        )
        table = table.reindex(
            index=[s for s in STAGES if s in table.index],
            columns=[r for r in dedup.RULES if r in table.columns],
        )
        bottom = np.zeros(len(table))
        for rule in table.columns:
            ax.bar(table.index, table[rule], bottom=bottom, label=rule)
            bottom += table[rule].to_numpy()
        ax.legend(title="rule")
        ax.tick_params(axis="x", rotation=20)
    else:
        ax.text(0.5, 0.5, "nothing removed", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Removed to prevent leakage")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
