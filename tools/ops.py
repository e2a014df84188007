"""EmoChat operations CLI: wellbeing data (stress trends, coping-suggestion catalog, user deletion).

Reads and writes Firestore with google-cloud-firestore: the emulator when FIRESTORE_EMULATOR_HOST is
set (e.g. inside `make exec`), otherwise the project's production database through Application
Default Credentials (`gcloud auth application-default login`). The project comes from --project,
GOOGLE_CLOUD_PROJECT or GCLOUD_PROJECT.

    .venv/bin/python tools/ops.py trend <uid> --days 30 --out trend.png
    .venv/bin/python tools/ops.py seed-catalog
    .venv/bin/python tools/ops.py recs <uid>
    .venv/bin/python tools/ops.py verify-trends <uid>     (exit 1 when aggregates disagree)
    .venv/bin/python tools/ops.py rebuild-trends <uid>
    .venv/bin/python tools/ops.py delete-user <uid> [--auth] --yes
    .venv/bin/python tools/ops.py purge-deleted [--apply]
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "functions") not in sys.path:
    sys.path.insert(0, str(ROOT / "functions"))

from emochat.accounts import service as accounts  # noqa: E402  (after the path set-up above)
from emochat.accounts.service import AccountServices  # noqa: E402
from emochat.suggestions import service as suggestions  # noqa: E402
from emochat.suggestions.catalog import BUNDLED_CATALOG  # noqa: E402
from emochat.suggestions.service import SuggestionServices  # noqa: E402
from emochat.trends import service as trends  # noqa: E402
from emochat.trends.service import TrendConfig, TrendServices  # noqa: E402

app = typer.Typer(help=__doc__.split("\n\n")[0], no_args_is_help=True, add_completion=False)
console = Console()

Project = Annotated[
    str | None, typer.Option(help="Firebase project id (default: GOOGLE_CLOUD_PROJECT / GCLOUD_PROJECT)")
]
TimeZone = Annotated[str, typer.Option("--tz", help="Time zone for users without users/{uid}.timeZone")]
DEFAULT_TZ = "Asia/Seoul"


@dataclass
class OpsServices:
    """The services the CLI drives, over one Firestore."""

    suggestions: SuggestionServices
    trends: TrendServices
    accounts: AccountServices


def open_services(project: str | None, with_accounts: bool = False) -> OpsServices:
    """The real adapters (tests replace this function)."""
    from google.cloud import firestore

    from emochat.accounts.adapters.firebase_accounts import FirebaseAccounts
    from emochat.accounts.adapters.firestore_store import FirestoreAccountStore
    from emochat.suggestions.adapters.firestore_store import FirestoreSuggestionStore
    from emochat.trends.adapters.firestore_store import FirestoreTrendStore

    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")
    if not project:
        raise typer.BadParameter("no project: pass --project or set GOOGLE_CLOUD_PROJECT")
    accounts = None
    if with_accounts:
        import firebase_admin

        try:
            fb_app = firebase_admin.get_app("emochat-ops")
        except ValueError:
            fb_app = firebase_admin.initialize_app(options={"projectId": project}, name="emochat-ops")
        accounts = FirebaseAccounts(fb_app)
    where = os.environ.get("FIRESTORE_EMULATOR_HOST") or "production (ADC)"
    console.print(f"[dim]Firestore: {where}, project {project}[/dim]")
    db = firestore.Client(project=project)
    trend_store = FirestoreTrendStore(db)
    return OpsServices(
        suggestions=SuggestionServices(store=FirestoreSuggestionStore(db), trends=trend_store),
        trends=TrendServices(store=trend_store),
        accounts=AccountServices(store=FirestoreAccountStore(db), accounts=accounts),
    )


# ── Trends ───────────────────────────────────────────────────────────────────────────────────────


def trend_table(uid: str, trend: dict[str, Any]) -> Table:
    table = Table(title=f"Stress trend of {uid} ({trend['timeZone']}, {trend['from']} – {trend['to']})")
    for name, justify in (("date", "left"), ("count", "right"), ("mean", "right"), ("max", "right"),
                          ("high", "right"), ("", "left")):  # fmt: skip
        table.add_column(name, justify=justify)
    for day in trend["days"]:
        mean = day["mean"]
        colour = "red" if (mean or 0) >= 60 else "yellow" if (mean or 0) >= 30 else "green"
        bar = f"[{colour}]{'█' * round((mean or 0) / 5)}[/{colour}]" if day["count"] else ""
        table.add_row(
            day["date"],
            str(day["count"]),
            f"{mean:.1f}" if mean is not None else "–",
            f"{day['max']:.1f}" if day["max"] is not None else "–",
            f"[red]{day['high']}[/red]" if day["high"] else "0",
            bar,
        )
    return table


def trend_chart(uid: str, trend: dict[str, Any], out: Path, moderate: float = 30, high: float = 60) -> Path:
    """Daily mean and max stress (with the level bands) above the number of readings per day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = trend["days"]
    x = list(range(len(days)))
    labels = [d["date"][5:] for d in days]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(6, 0.45 * len(days) + 2), 5.5), sharex=True, height_ratios=[3, 1.2]
    )
    top.axhspan(0, moderate, color="#e8f5e9", zorder=0)
    top.axhspan(moderate, high, color="#fff8e1", zorder=0)
    top.axhspan(high, 100, color="#ffebee", zorder=0)
    with_data = [i for i, d in enumerate(days) if d["count"]]
    top.plot(with_data, [days[i]["mean"] for i in with_data], "o-", color="#1565c0", label="daily mean")
    top.plot(with_data, [days[i]["max"] for i in with_data], "^", color="#c62828", label="daily max")
    top.set_ylim(0, 100)
    top.set_ylabel("stress score")
    top.legend(loc="upper left", fontsize="small")
    top.set_title(f"Stress trend · {uid} · {trend['timeZone']}")
    counts = [d["count"] for d in days]
    highs = [d["high"] for d in days]
    bottom.bar(x, [c - h for c, h in zip(counts, highs, strict=True)], color="#90a4ae", label="readings")
    bottom.bar(
        x, highs, bottom=[c - h for c, h in zip(counts, highs, strict=True)], color="#e53935", label="high"
    )
    bottom.set_ylim(0, max([*counts, 1]) * 1.5)  # headroom for the legend
    bottom.set_ylabel("readings")
    bottom.legend(loc="upper left", fontsize="small", ncols=2)
    bottom.set_xticks(x, labels, rotation=60, fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


@app.command()
def trend(
    uid: str,
    days: Annotated[int, typer.Option(min=1, max=365, help="How many local days, ending today")] = 30,
    out: Annotated[Path | None, typer.Option(help="PNG path (default trend-<uid>.png)")] = None,
    project: Project = None,
    tz: TimeZone = DEFAULT_TZ,
) -> None:
    """A user's daily stress trend: a terminal table and a PNG chart (the same series the app gets)."""
    services = open_services(project)
    config = TrendConfig(default_time_zone=tz, max_trend_days=365)
    series = trends.stress_trends(services.trends, config, uid, {"days": days})
    console.print(trend_table(uid, series))
    path = trend_chart(uid, series, out or Path(f"trend-{uid}.png"))
    console.print(f"chart: {path}")


@app.command("verify-trends")
def verify_trends(uid: str, project: Project = None, tz: TimeZone = DEFAULT_TZ) -> None:
    """Compare a user's stored daily aggregates with a recomputation from their messages."""
    stored, truth = trends.recompute_trends(
        open_services(project).trends, TrendConfig(default_time_zone=tz), uid
    )
    table = Table(title=f"Aggregates of {uid}: stored vs recomputed")
    for name in ("date", "stored count/mean/max/high", "recomputed", "ok"):
        table.add_column(name)
    bad = 0
    for day in sorted(set(stored) | set(truth)):
        s, t = stored.get(day, {}), truth.get(day, {})
        ok = all(s.get(k) == t.get(k) for k in ("count", "mean", "max", "high"))
        bad += not ok
        fmt = "{count}/{mean}/{max}/{high}"
        table.add_row(day, fmt.format(**{k: s.get(k) for k in ("count", "mean", "max", "high")}),
                      fmt.format(**{k: t.get(k) for k in ("count", "mean", "max", "high")}),
                      "[green]✓[/green]" if ok else "[red]✗[/red]")  # fmt: skip
    console.print(table)
    if bad:
        console.print(f"[red]{bad} day(s) differ: run rebuild-trends {uid}[/red]")
        raise typer.Exit(1)


@app.command("rebuild-trends")
def rebuild_trends(uid: str, project: Project = None, tz: TimeZone = DEFAULT_TZ) -> None:
    """Rewrite a user's daily aggregates from their messages (after an outage of the trigger)."""
    written = trends.rebuild_trends(open_services(project).trends, TrendConfig(default_time_zone=tz), uid)
    console.print(f"rebuilt {written} day(s) for {uid}")


# ── Catalog and recommendations ──────────────────────────────────────────────────────────────────


@app.command("seed-catalog")
def seed_catalog(
    file: Annotated[Path, typer.Option(help="Catalog file")] = BUNDLED_CATALOG,
    project: Project = None,
) -> None:
    """Seed catalog/{version}/suggestions/{id} from the versioned repo file (idempotent)."""
    catalog = suggestions.seed_catalog(open_services(project).suggestions.store, file)
    console.print(f"seeded catalog {catalog.version}: {len(catalog.suggestions)} suggestions")


@app.command()
def recs(uid: str, limit: int = 20, project: Project = None) -> None:
    """A user's latest recommendations: what was shown, why, and how they rated it."""
    rows = open_services(project).suggestions.store.recommendations(uid, limit)
    table = Table(title=f"Latest recommendations for {uid}")
    for name in ("shown at", "suggestion", "source", "context", "reason", "sampled", "mean", "rated"):
        table.add_column(name)
    for _, rec in rows:
        feedback = rec.get("feedback") or {}
        context = rec.get("context") or {}
        table.add_row(
            str(rec.get("shownAt"))[:19],
            rec.get("suggestionId", "?"),
            rec.get("source", ""),
            f"{context.get('stressLevel')}/{context.get('timeOfDay')}",
            f"{rec.get('reason')} ({rec.get('policy')})",
            f"{rec.get('sampledValue', 0):.3f}",
            f"{rec.get('posteriorMean', 0):.3f}",
            {True: "helpful", False: "not helpful"}.get(feedback.get("helpful"), "–"),
        )
    console.print(table)


# ── Deletion ─────────────────────────────────────────────────────────────────────────────────────


@app.command("delete-user")
def delete_user(
    uid: str,
    auth: Annotated[bool, typer.Option("--auth", help="Also delete the Firebase Auth account")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do it (no prompt)")] = False,
    project: Project = None,
) -> None:
    """Delete everything kept under users/{uid} (and with --auth the account): the ops deletion path."""
    if not yes:
        typer.confirm(f"Delete all data of {uid}{' and the account' if auth else ''}?", abort=True)
    services = open_services(project, with_accounts=auth).accounts
    deleted = accounts.delete_user_data(services, uid)
    console.print(f"deleted {deleted} document(s) under users/{uid}")
    if auth and services.accounts is not None:
        gone = services.accounts.delete_account(uid)
        console.print(f"deleted Auth account {uid}" if gone else f"no Auth account {uid}")


@app.command("purge-deleted")
def purge_deleted(
    apply: Annotated[bool, typer.Option("--apply", help="Delete (default: only list)")] = False,
    limit: int = 1000,
    project: Project = None,
) -> None:
    """Find users/{uid} data whose Auth account is gone; with --apply, delete it."""
    found = accounts.purge_deleted_users(
        open_services(project, with_accounts=True).accounts, apply=apply, limit=limit
    )
    verb = "purged" if apply else "would purge"
    console.print(f"{verb} {len(found)} user(s): {', '.join(found) or '—'}")


if __name__ == "__main__":
    app()
