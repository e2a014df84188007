"""`python -m local_stack demo`: one voice message through the real trigger, as the app sends it."""

from __future__ import annotations

import mimetypes
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from local_stack.app_client import AppClient, MessageTimeout, MessageWait, SentVoice, StandIn
from local_stack.stack import LOG_DIR, SAMPLES_DIR, StackOptions, console, load_seed, log_tail, running_stack

SENDER = "mina@example.com"
CHAT_ID = "chat-mina-joon"  # Mina's seeded chat with Joon
# The sample the served model reads high (how it was picked: the Makefile's samples recipe): the alert path.
SAMPLES = (SAMPLES_DIR / "voice-en.m4a", SAMPLES_DIR / "voice-stressed.m4a")
STATUS_STYLE = {"ready": "green", "failed": "red", "rejected": "magenta", "processing": "yellow"}


def run_demo(*, alert: bool = True, options: StackOptions | None = None, timeout_s: float = 180.0) -> int:
    """Mina sends the calm sample, then (with `alert`) the stressed one; 0 when each came out as shown."""
    seed = load_seed()
    user = next(u for u in seed["auth"] if u["email"] == SENDER)
    if missing := [str(sample) for sample in SAMPLES if not sample.exists()]:
        console.print(f"[red]samples missing (make samples): {missing}[/]")
        return 2
    with running_stack(options or StackOptions()) as (_stack, info), AppClient(info.env) as app:
        console.print(f"[green]stack ready in {info.started_in_s:.1f} s[/]")
        session = app.sign_in(user["email"], user["password"])
        console.print(f"signed in as {session.email} (uid {session.uid}) on the Auth emulator")
        for sample in SAMPLES[: 1 + alert]:
            result = _send_and_wait(app, sample, timeout_s, user.get("displayName", SENDER))
            if result is None or result[0].doc.get("status") != "ready":
                return 1
        if not alert:
            return 0
        # The alert path: the stressed-sounding message, the high-stress trigger, FCM, the feed.
        wait, sent = result
        if (wait.doc.get("stress") or {}).get("level") != "high":
            console.print("[yellow]this reading is not high, so no alert goes out[/]")
            return 1
        members = seed["firestore"][f"chats/{CHAT_ID}"]["members"]
        names = {u["uid"]: u.get("displayName", u["email"]) for u in seed["auth"]}
        feeds = _wait_for_alerts(app, members, sent.message_id, timeout_s=60.0)
        console.print(render_alerts(feeds, names, _fcm_sent(info.env, sent.message_id)))
        return 0 if len(feeds) == len(members) else 1


def _send_and_wait(
    app: AppClient, sample: Path, timeout_s: float, sender_name: str
) -> tuple[MessageWait, SentVoice] | None:
    audio, content_type = sample.read_bytes(), mimetypes.guess_type(sample.name)[0] or "audio/mp4"
    sent = app.send_voice_message(CHAT_ID, audio, content_type=content_type, language="en")
    console.print(
        f"uploaded {sample.name} ({len(audio):,} bytes, {content_type}) to gs://{app.bucket}/{sent.path}"
    )
    console.print(f"waiting up to {timeout_s:.0f} s for {app.message_path(CHAT_ID, sent.message_id)} ...")
    try:
        wait = app.wait_for_message(CHAT_ID, sent.message_id, timeout_s=timeout_s)
    except MessageTimeout as error:
        log = LOG_DIR / "firebase.log"
        text = f"{error}\n\nThe function's log (last lines of {log}):\n{log_tail(log, 30)}"
        console.print(Panel(text, title="TIMEOUT", border_style="bold red"))
        return None
    console.print(render_message(wait, sent, sender_name=sender_name))
    return wait, sent


def _wait_for_alerts(
    app: AppClient, members: list[str], message_id: str, timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Each member's in-app notification about the message, as soon as all have one (or time is up)."""
    deadline = time.monotonic() + timeout_s
    feeds: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for uid in members:
            entries = app.list_docs(f"users/{uid}/notifications", admin=True)
            for entry in entries.values():
                if entry.get("messageId") == message_id and entry.get("status") != "sending":
                    feeds[uid] = entry
        if len(feeds) == len(members):
            break
        time.sleep(0.5)
    return feeds


def _fcm_sent(env: dict[str, str], message_id: str) -> list[dict[str, Any]]:
    """What the local FCM server received for the message."""
    try:
        sent = StandIn.of("fcm", env).sent()
    except (httpx.HTTPError, ValueError):
        return []
    return [r for r in sent if (r.get("data") or {}).get("messageId") == message_id]


def render_alerts(
    feeds: dict[str, dict[str, Any]], names: dict[str, str], pushes: list[dict[str, Any]]
) -> Panel:
    table = Table("to", "role", "push", "reason", "delivery", show_edge=False)
    suggestion: dict[str, Any] | None = None
    for uid, entry in feeds.items():
        delivery = entry.get("delivery") or {}
        table.add_row(
            names.get(uid, uid),
            str(entry.get("role")),
            Text(f"{entry.get('title')}\n{entry.get('body')}"),
            str(entry.get("reason")),
            f"{entry.get('status')}: {delivery.get('success', 0)}/{delivery.get('tokens', 0)} devices",
        )
        suggestion = suggestion or entry.get("suggestion")
    parts: list[Any] = [table, Text("")]
    if suggestion:
        title = f"coping suggestion for the sender: {suggestion.get('title')} ({suggestion.get('kind')})"
        text = f"“{suggestion.get('text')}”  recommendation {suggestion.get('recommendationId')}"
        parts += [Text(title, style="bold"), Text(text, style="dim"), Text("")]
    parts.append(Text(f"FCM HTTP v1 requests at the local FCM server: {len(pushes)}", style="dim"))
    return Panel(Group(*parts), title="high-stress alert", border_style="red")


def render_message(wait: MessageWait, sent: SentVoice, *, sender_name: str) -> Panel:
    doc, status = wait.doc, str(wait.doc.get("status"))
    body = Table.grid(padding=(0, 2))
    body.add_column(style="bold", justify="right")
    body.add_column()
    body.add_row("status", Text(status, style=STATUS_STYLE.get(status, "")))
    body.add_row("transcript", Text(f"“{doc['text']}”" if doc.get("text") else "—", style="italic"))
    body.add_row("language", str(doc.get("language") or "—"))
    if stress := doc.get("stress"):
        level = str(stress.get("level"))
        reading = f"{stress.get('score')} / 100  {level}  P(stressed)={stress.get('probability')}"
        body.add_row("stress", Text(reading, style="bold red" if level == "high" else ""))
    if error := doc.get("error"):
        body.add_row("error", Text(f"{error.get('code')}: {error.get('message')}", style="red"))
    if audio := doc.get("audio"):
        body.add_row("audio", f"{audio.get('path')}  {audio.get('contentType')}  {audio.get('sizeBytes')} B")
    timings = "  ".join(f"{key} {value}" for key, value in (doc.get("timings") or {}).items())
    body.add_row("timings (ms)", f"{timings}  upload → final status {wait.elapsed_s * 1000:,.0f}")
    body.add_row("statuses seen", " → ".join(f"{s} @{t:.1f}s" for s, t in wait.statuses))
    return Panel(
        body,
        title=f"voice message from {sender_name} · chats/{sent.chat_id}/messages/{sent.message_id}",
        border_style=STATUS_STYLE.get(status, "white"),
    )
