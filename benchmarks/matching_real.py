"""`tsunagu identity match` on real (not generated) records, beside a plain Splink set-up.

The data: public record-linkage benchmarks made of real records with names, addresses and
phones, fetched at run time from PyPI (nothing is committed):

- `fodors-zagats`: 864 restaurant listings of two guides (Fodor's 533, Zagat's 331), 112 pairs
  that are the same restaurant. The RIDDLE repository's classic, as the `py-entitymatching`
  sdist ships it (`py_entitymatching/datasets/end-to-end/restaurants`).

Each set becomes one CSV (`record_id`, `name`, `address`, `postcode`, `phone`, as a user would map
the columns), matched on an empty store through the CLI (`tsunagu identity match FILE --json`),
and the same file goes to a plain Splink set-up in the same run: lower-cased fields, digits-only
phone, Splink's default comparison functions (`NameComparison`, `JaroWinklerAtThresholds`,
`PostcodeComparison`, `ExactMatch`), u by random sampling, EM blocked on the name and on the
phone, predictions blocked on what tsunagu blocks these fields on (first two letters of the
name with the postcode, the name, the phone, the address), pairs at probability 0.9 joined.
Pairwise precision, recall and F1 against the truth (its pairs closed transitively) are printed
for both, for the whole set and for records drawn from it at random (`--sizes`: small files,
where a model learnt from the file has least to learn from).

    .venv/bin/python benchmarks/matching_real.py [--sets fodors-zagats] [--sizes 300 600]
        [--cache DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

BIN = Path(sys.executable).parent / "tsunagu"
COLUMNS = ["record_id", "name", "address", "postcode", "phone"]


@dataclass(frozen=True)
class Benchmark:
    package: str
    """A PyPI requirement whose sdist holds the files."""
    folder: str
    """Their folder inside the sdist."""
    build: Callable[[Path], tuple[list[dict[str, str]], list[tuple[str, str]]]]
    """Records (our columns) and true pairs, from the extracted folder."""


def _fodors_zagats(folder: Path) -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
    records = []
    for prefix, name in (("f", "fodors.csv"), ("z", "zagats.csv")):
        with (folder / name).open(encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                records.append(
                    {
                        "record_id": prefix + row["id"],
                        "name": row["name"],
                        "address": f"{row['addr']} {row['city']}",
                        "postcode": "",
                        "phone": row["phone"],
                    }
                )
    with (folder / "matches_fodors_zagats.csv").open(encoding="utf-8") as f:
        pairs = [("f" + r["fodors_id"], "z" + r["zagats_id"]) for r in csv.DictReader(f)]
    return records, pairs


BENCHMARKS = {
    "fodors-zagats": Benchmark(
        "py-entitymatching==0.4.2",
        "py_entitymatching/datasets/end-to-end/restaurants",
        _fodors_zagats,
    ),
}


def fetched(benchmark: Benchmark, cache: Path) -> Path:
    """The benchmark's folder, from its package's sdist (downloaded once into `cache`)."""
    root = cache / benchmark.package.replace("==", "-")
    if not root.exists():
        download = cache / "downloads"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", benchmark.package,
             "-d", str(download)],
            check=True,
        )  # fmt: skip
        name, version = benchmark.package.split("==")
        sdist = next(download.glob(f"{name.replace('-', '[-_]')}-{version}.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(root, filter="data")
    return next(root.glob(f"*/{benchmark.folder}"))


def closed_pairs(groups: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    return {p for ids in groups for p in combinations(sorted(set(ids)), 2)}


def clusters(ids: Iterable[str], links: Iterable[tuple[str, str]]) -> list[list[str]]:
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        parent[find(a)] = find(b)
    out: dict[str, list[str]] = {}
    for i in parent:
        out.setdefault(find(i), []).append(i)
    return list(out.values())


def scores(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> tuple[float, float, float]:
    hit = len(found & truth)
    precision = hit / len(found) if found else 1.0
    recall = hit / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if hit else 0.0
    return precision, recall, f1


def tsunagu(path: Path, store: Path) -> set[tuple[str, str]]:
    done = subprocess.run(
        [str(BIN), "--data-dir", str(store), "identity", "match", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    groups: dict[str, list[str]] = {}
    for m in json.loads(done.stdout)["matches"]:
        groups.setdefault(m["profile_id"], []).append(m["record_id"])
    return closed_pairs(groups.values())


def plain_splink(records: list[dict[str, str]]) -> set[tuple[str, str]]:
    """Splink as its documentation sets it up, on lower-cased fields and digits-only phones."""
    import duckdb
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    frame = pd.DataFrame(
        [
            {
                "unique_id": r["record_id"],
                "name": r["name"].lower().strip() or None,
                "address": r["address"].lower().strip() or None,
                "postcode": re.sub(r"\s", "", r["postcode"].lower()) or None,
                "phone": re.sub(r"\D", "", r["phone"]) or None,
            }
            for r in records
        ]
    )
    present = [c for c in ("name", "address", "postcode", "phone") if frame[c].notna().any()]
    comparisons = {
        "name": cl.NameComparison("name"),
        "address": cl.JaroWinklerAtThresholds("address"),
        "postcode": cl.PostcodeComparison("postcode"),
        "phone": cl.ExactMatch("phone"),
    }
    rules = []
    if {"name", "postcode"} <= set(present):
        rules.append(block_on("substr(name, 1, 2)", "postcode"))
    rules += [block_on(c) for c in ("name", "phone", "address") if c in present]
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[comparisons[c] for c in present],
        blocking_rules_to_generate_predictions=rules,
    )
    api = DuckDBAPI(connection=duckdb.connect())
    linker = Linker(api.register(frame, table_name="records"), settings, log_level=None)
    deterministic = [block_on(c) for c in ("phone",) if c in present] or rules[:1]
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=7)
    for c in ("name", "phone"):
        if c in present:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(c))
    predictions = linker.inference.predict(threshold_match_probability=0.9).as_pandas_dataframe()
    links = zip(predictions["unique_id_l"], predictions["unique_id_r"], strict=True)
    return closed_pairs(clusters(frame["unique_id"], links))


def run(name: str, cache: Path, sizes: list[int]) -> None:
    records, pairs = BENCHMARKS[name].build(fetched(BENCHMARKS[name], cache))
    compare(name, records, pairs)
    for size in sizes:
        if size < len(records):
            sample = random.Random(size).sample(records, size)
            compare(f"{name}, {size} records drawn at random", sample, pairs)


def compare(name: str, records: list[dict[str, str]], pairs: list[tuple[str, str]]) -> None:
    ids = {r["record_id"] for r in records}
    kept = [(a, b) for a, b in pairs if a in ids and b in ids]
    truth = closed_pairs(clusters(sorted(ids), kept))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, COLUMNS)
            writer.writeheader()
            writer.writerows(records)
        start = time.perf_counter()
        ours = tsunagu(path, Path(tmp) / "store")
        ours_s = time.perf_counter() - start
    start = time.perf_counter()
    plain = plain_splink(records)
    plain_s = time.perf_counter() - start
    p, r, f = scores(ours, truth)
    pp, pr, pf = scores(plain, truth)
    print(
        f"{name}: {len(records):,} records, {len(truth):,} true pairs\n"
        f"  tsunagu       precision {p:.3f} recall {r:.3f} F1 {f:.3f}  {ours_s:5.1f} s "
        f"({len(ours):,} pairs)\n"
        f"  plain Splink  precision {pp:.3f} recall {pr:.3f} F1 {pf:.3f}  {plain_s:5.1f} s "
        f"({len(plain):,} pairs)\n"
        f"  F1 ratio tsunagu / plain: {f / pf if pf else float('inf'):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="*", default=list(BENCHMARKS), choices=list(BENCHMARKS))
    parser.add_argument(
        "--sizes",
        nargs="*",
        type=int,
        default=[300, 600],
        help="also match records drawn at random from each set, this many (small files)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tsunagu-benchmarks",
        help="where the packages holding the data are downloaded to (once)",
    )
    args = parser.parse_args()
    for name in args.sets:
        run(name, args.cache, args.sizes)


if __name__ == "__main__":
    main()
