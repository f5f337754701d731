"""`tsunagu identity ...` and `tsunagu profile ...`: one customer across identifiers."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from tsunagu.cli.common import (
    console,
    err,
    fail,
    identity_app,
    local_only,
    print_json,
    profile_app,
    state,
)
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store

T = TypeVar("T")


@identity_app.command("build")
def identity_build(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Rebuild the identity graph from every event and member record."""
    from tsunagu.identity.graph import build_graph
    from tsunagu.identity.rules import load_rules

    rules = load_rules(state.settings.data_dir)
    report = local_only(lambda store: _analysed(store, build_graph(store=store, rules=rules)))
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    console.print(
        f"{report.identifiers:,} identifiers in {report.profiles:,} profiles "
        f"({report.records:,} distinct records, {report.seconds:.1f} s, of which profile "
        f"traits {report.traits_seconds:.1f} s); "
        f"{report.refused_links:,} links refused by the merge limits "
        f"(see the identity_audit table)"
    )


def _analysed(store: Store, report: T) -> T:
    """After the graph changed, the analytics table follows it now rather than at the first
    question (analytics/facts.py)."""
    from tsunagu.analytics.facts import ensure_fresh
    from tsunagu.identity.rules import load_rules

    settings = state.settings
    refresh = ensure_fresh(
        store=store, rules=load_rules(settings.data_dir), timezone=settings.timezone
    )
    if refresh.kind != "fresh":
        err.print(f"[dim]analytics table {refresh.kind} ({refresh.seconds:.1f} s)[/dim]")
    return report


@identity_app.command("update")
def identity_update(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Fold events and member changes since the last build or update into the graph."""
    from tsunagu.identity.graph import update_graph
    from tsunagu.identity.rules import load_rules

    rules = load_rules(state.settings.data_dir)
    report = local_only(lambda store: _analysed(store, update_graph(store=store, rules=rules)))
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    if report.rebuilt:
        console.print("no graph yet: built it from scratch")
        return
    console.print(
        f"{report.records:,} new records: {report.new_identifiers:,} new identifiers, "
        f"{report.merged_profiles:,} profiles merged, {report.refused_links:,} links refused"
    )


@identity_app.command("match")
def identity_match(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: record_id plus any of name, name_kana, birth_date, postcode, address, phone, email"
        ),
    ],
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Match at or above this probability.")
    ] = 0.9,
    review_threshold: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Keep pairs from here up to the threshold for review."),
    ] = 0.5,
    default_country: Annotated[
        str | None,
        typer.Option(
            help="Read the file's phones without a country code as this country's (ISO 3166: "
            "JP, US, ...); default: the rules file's default_country, JP."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Link records without a shared identifier to members and to each other (Fellegi–Sunter)."""
    from tsunagu.identity.graph import update_graph
    from tsunagu.identity.matching import match_records, save_matches
    from tsunagu.identity.rules import load_rules
    from tsunagu.store.phones import valid_country

    if review_threshold > threshold:
        raise fail(
            InvalidInput("review-threshold: must not exceed --threshold", field="review_threshold")
        )
    rules = load_rules(state.settings.data_dir)
    try:
        country = valid_country(default_country) if default_country else rules.default_country
    except ValueError as exc:
        raise fail(InvalidInput(f"default-country: {exc}", field="default_country")) from None

    def run(store: Store) -> Any:
        result = match_records(
            store=store,
            path=file,
            rules=rules,
            country=country,
            threshold=threshold,
            review_threshold=review_threshold,
        )
        save_matches(store=store, file=str(file.resolve()), result=result)
        if store.scalar("SELECT count(*) FROM identity_state WHERE key = 'updated_to'"):
            # A member's record brings its e-mail and phone to the profile now.
            update_graph(store=store, rules=rules)
        return result

    result = local_only(run)
    if as_json:
        print_json(result.public())
        return
    kinds = {
        k: sum(1 for m in result.matches if m.matched == k) for k in ("member", "records", "new")
    }
    console.print(
        f"{result.records:,} records: {kinds['member']:,} linked to members, "
        f"{kinds['records']:,} to other records, {kinds['new']:,} new; "
        f"{len(result.review):,} pairs to review (tsunagu identity review)"
    )
    if result.rejected:
        console.print(f"{result.rejected:,} rows rejected, with reasons: {result.rejects_file}")


@identity_app.command("review")
def identity_review(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Pairs scored just below the match threshold, for a person to decide."""
    from tsunagu.identity.matching import review_candidates

    rows = local_only(lambda store: review_candidates(store=store))
    if as_json:
        print_json(rows)
        return
    table = Table("left", "right", "probability", "weight", "file")
    for r in rows:
        table.add_row(
            r["left"],
            r["right"],
            f"{r['match_probability']:.3f}",
            f"{r['match_weight']:.1f}",
            r["file"],
        )
    console.print(table)


@identity_app.command("split")
def identity_split(
    identifier: Annotated[str, typer.Argument(help="TYPE:VALUE, e.g. device_id:7B01C3AD-...")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit), e.g. 'family tablet'")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Detach an identifier so it links nothing, and re-derive the profiles it joined."""
    from tsunagu.identity.graph import split_identifier
    from tsunagu.identity.rules import load_rules

    kind, value = _profile_of(identifier)
    if kind is None:
        raise fail(InvalidInput("identifier: give it as TYPE:VALUE", field="identifier"))
    rules = load_rules(state.settings.data_dir)
    report = local_only(
        lambda store: split_identifier(
            store=store, rules=rules, kind=kind, value=value, reason=reason
        )
    )
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    console.print(
        f"{report.type} {report.value} detached from {report.profile_before}; "
        f"its former profile is now {len(report.profiles_after)} profiles"
    )


@identity_app.command("export")
def identity_export(file: Annotated[Path, typer.Argument(help="CSV to write")]) -> None:
    """Write identifier_type,identifier_value,profile_id for every identifier."""
    from tsunagu.identity.evaluate import export_identifiers

    rows = local_only(lambda store: export_identifiers(store=store, path=file))
    err.print(f"wrote {rows:,} identifiers to {file}")


@identity_app.command("evaluate")
def identity_evaluate(
    truth: Annotated[Path, typer.Option(help="identifier_type,identifier_value,person_id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Pairwise precision, recall and F1 of the profiles against a truth file."""
    from tsunagu.identity.evaluate import evaluate
    from tsunagu.identity.rules import load_rules

    rules = load_rules(state.settings.data_dir)
    result = local_only(lambda store: evaluate(store=store, truth=truth, rules=rules))
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    table = Table("", "value")
    table.add_row("identifiers", f"{result.identifiers:,}")
    table.add_row("true pairs", f"{result.true_pairs:,}")
    table.add_row("predicted pairs", f"{result.predicted_pairs:,}")
    table.add_row("correct pairs", f"{result.correct_pairs:,}")
    table.add_row("precision", f"{result.precision:.4f}")
    table.add_row("recall", f"{result.recall:.4f}")
    table.add_row("F1", f"{result.f1:.4f}")
    for kind, figures in result.by_type.items():
        table.add_row(f"recall of pairs with {kind}", f"{figures['recall']:.4f}")
    console.print(table)


@profile_app.command("show")
def profile_show(
    identifier: Annotated[
        str,
        typer.Argument(help="Any identifier: a member id, card, e-mail, phone, ... or TYPE:VALUE"),
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A customer's identifiers, traits and cross-channel figures, from any identifier."""
    from tsunagu.identity.profiles import get_profile, lookup
    from tsunagu.identity.rules import load_rules

    rules = load_rules(state.settings.data_dir)
    kind_arg, value = _profile_of(identifier)

    def run(store: Store) -> Any:
        return get_profile(
            store=store,
            profile_id=lookup(store=store, rules=rules, kind=kind_arg, value=value),
            rules=rules,
        )

    profile = local_only(run)
    if as_json:
        print_json(dataclasses.asdict(profile))
        return
    table = Table(title=f"profile {profile.profile_id}", show_header=False)
    for kind_name, values in profile.identifiers.items():
        table.add_row(kind_name, ", ".join(values))
    for key, item in {**profile.traits, **profile.computed}.items():
        table.add_row(key, str(item))
    if profile.records:
        table.add_row(
            "matched records",
            ", ".join(f"{Path(r['file']).name}:{r['record_id']}" for r in profile.records),
        )
    console.print(table)


def _profile_of(identifier: str) -> tuple[str | None, str]:
    """TYPE:VALUE, or a bare value to look for under every type."""
    from tsunagu.identity.rules import TYPES

    kind, _, rest = identifier.partition(":")
    return (kind, rest) if rest and kind in TYPES else (None, identifier)


@profile_app.command("erase")
def profile_erase(
    identifier: Annotated[str, typer.Argument(help="Any identifier of the person, or TYPE:VALUE")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Erase a person: their events, identifiers, traits and derived rows, everywhere."""
    from tsunagu.identity.erasure import erase_profile
    from tsunagu.identity.profiles import lookup
    from tsunagu.identity.rules import load_rules

    rules = load_rules(state.settings.data_dir)
    kind, value = _profile_of(identifier)
    if not yes and not typer.confirm(
        f"erase the person holding {identifier!r}? This cannot be undone"
    ):
        raise typer.Exit(1)

    def run(store: Store) -> Any:
        return erase_profile(
            store=store,
            rules=rules,
            profile_id=lookup(store=store, rules=rules, kind=kind, value=value),
        )

    report = local_only(run)
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    deleted = ", ".join(f"{table} {n:,}" for table, n in report.deleted.items())
    console.print(
        f"erased profile {report.profile_id} ({report.identifiers} identifiers suppressed): {deleted}"
    )
