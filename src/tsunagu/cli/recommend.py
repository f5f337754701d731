"""`tsunagu recommend train|evaluate`: the recommender of GET /v1/profiles/{id}/recommendations."""

from __future__ import annotations

from typing import Annotated

import typer

from tsunagu.cli.analytics import fresh_engine_here
from tsunagu.cli.common import app, console, local_only, print_json, state
from tsunagu.store import Store

recommend_app = typer.Typer(
    help="Recommendations from online and store history together.", no_args_is_help=True
)
app.add_typer(recommend_app, name="recommend")


@recommend_app.command("train")
def train(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Train the model on every customer's history (the server uses it from its next request)."""
    from tsunagu.recommend.service import train_and_save

    def run(store: Store):  # type: ignore[no-untyped-def]
        fresh_engine_here(store)
        return train_and_save(store=store, data_dir=state.settings.data_dir)

    report = local_only(run)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    console.print(
        f"trained on {report.customers:,} customers x {report.products:,} products "
        f"({report.interactions:,} interactions) in {report.seconds:.1f} s"
    )


@recommend_app.command("evaluate")
def evaluate(
    customers: Annotated[int, typer.Option(help="customers to test at most")] = 20_000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Hold out each customer's last purchase day; recall@10 and NDCG@10 of what the
    recommendations would have shown, beside the month's best sellers."""
    from tsunagu.recommend.service import evaluate as run_evaluation

    def run(store: Store):  # type: ignore[no-untyped-def]
        fresh_engine_here(store)
        return run_evaluation(store=store, max_customers=customers)

    result = local_only(run)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(f"{result.customers:,} customers, their last purchase day held out")
    console.print(
        f"recommender:  recall@10 {result.recall_at_10:.4f}  NDCG@10 {result.ndcg_at_10:.4f}"
    )
    console.print(
        f"best sellers: recall@10 {result.popularity_recall_at_10:.4f}  "
        f"NDCG@10 {result.popularity_ndcg_at_10:.4f}"
    )
