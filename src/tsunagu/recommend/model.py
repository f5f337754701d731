"""Recommendations from one customer's whole history: what they viewed, favourited and carted
online and bought online and in store (analytics/facts.py holds it per customer).

The model is the `implicit` library's alternating least squares on a customer x product matrix
of interaction strengths (a view 1, an add to cart or a favourite 3, a purchase 5 per line
item, summed). A customer's scores come from their current history when asked (the library's
`recalculate_user`), so what they did since training counts without retraining.

What is recommended is filtered for the place: in a store, only what that store has available;
never what the customer bought in the last `recent_days` unless its product repeats
(`repeat_purchase`: coffee, cosmetics). A customer with no history gets what sells most to the
customers of their region (the prefecture of their home store), else everywhere.
"""

from __future__ import annotations

import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from tsunagu.store import Store

WEIGHTS = {
    "Product Viewed": 1.0,
    "Product Added": 3.0,
    "Product Added to Wishlist": 3.0,
    "Order Completed": 5.0,
}
MODEL_FILE = "recommender.pkl"


@dataclass
class Interactions:
    matrix: sp.csr_matrix
    """customers x products, summed weights."""
    pids: np.ndarray
    skus: list[str]


def interactions_sql(scope: str = "true") -> str:
    """(pid, sku, weight) of every customer's product events and purchased line items, of the
    events `a` that meet `scope`."""
    cases = " ".join(f"WHEN '{e}' THEN {w}" for e, w in WEIGHTS.items())
    events = ", ".join(f"'{e}'" for e in WEIGHTS)
    return (
        f"SELECT pid, sku, sum(CASE event {cases} END) AS weight FROM ("
        " SELECT a.pid, a.event, coalesce(a.sku, unnest(coalesce(a.skus, [NULL]))) AS sku "
        f" FROM analytics_events a WHERE a.event IN ({events}) AND {scope}"
        ") WHERE sku IN (SELECT sku FROM products) GROUP BY pid, sku"
    )


def load_interactions(store: Store, sql: str) -> Interactions:
    cur = store.cursor()
    try:
        return interactions_of(cur.sql(sql).to_arrow_table())
    finally:
        cur.close()


def interactions_of(table: Any) -> Interactions:
    """The customer x product matrix of an Arrow table (pid, sku, weight)."""
    pids, rows = np.unique(np.asarray(table.column("pid").to_numpy()), return_inverse=True)
    skus, cols = np.unique(
        np.asarray(table.column("sku").to_numpy(zero_copy_only=False)), return_inverse=True
    )
    weights = np.asarray(table.column("weight").to_numpy(), dtype=np.float32)
    matrix = sp.csr_matrix((weights, (rows, cols)), shape=(len(pids), len(skus)))
    return Interactions(matrix=matrix, pids=pids, skus=[str(s) for s in skus])


@dataclass
class Recommender:
    model: Any
    skus: list[str]
    sku_index: dict[str, int] = field(default_factory=dict)
    trained_at: float = 0.0
    customers: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.sku_index = {s: i for i, s in enumerate(self.skus)}

    def scores(self, history: dict[str, float], n: int) -> list[tuple[str, float]]:
        """The `n` best products for a history (sku -> weight), known products only."""
        cols = [self.sku_index[s] for s in history if s in self.sku_index]
        if not cols:
            return []
        row = sp.csr_matrix(
            (
                np.array([history[self.skus[c]] for c in cols], dtype=np.float32),
                ([0] * len(cols), cols),
            ),
            shape=(1, len(self.skus)),
        )
        ids, scores = self.model.recommend(
            0,
            row,
            N=min(n, len(self.skus)),
            recalculate_user=True,
            filter_already_liked_items=False,
        )
        return [(self.skus[i], float(s)) for i, s in zip(ids, scores, strict=True)]


def train(
    data: Interactions, *, factors: int = 64, iterations: int = 15, regularization: float = 0.05
) -> Recommender:
    """Fit ALS on the interactions (confidence 1 + 2 * weight)."""
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    confidence = data.matrix.copy()
    confidence.data = 1.0 + 2.0 * confidence.data
    # implicit runs its own threads and asks BLAS not to (it warns when BLAS would).
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="OpenBLAS is configured", category=RuntimeWarning)
        model = AlternatingLeastSquares(
            factors=factors, iterations=iterations, regularization=regularization, random_state=1
        )
        model.fit(confidence.tocsr(), show_progress=False)
    return Recommender(
        model=model,
        skus=data.skus,
        trained_at=time.time(),
        customers=data.matrix.shape[0],
        seconds=round(time.perf_counter() - started, 3),
    )


def save(recommender: Recommender, data_dir: Path) -> Path:
    path = data_dir / "models" / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(recommender))
    tmp.replace(path)
    return path


def load(data_dir: Path) -> Recommender | None:
    path = data_dir / "models" / MODEL_FILE
    if not path.exists():
        return None
    recommender: Recommender = pickle.loads(path.read_bytes())  # noqa: S301 - our own file
    return recommender
