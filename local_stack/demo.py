"""`python -m local_stack demo`: one voice message through the real trigger, as the app sends it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from local_stack.app_client import AppClient, MessageTimeout, MessageWait, SentVoice
from local_stack.stack import (
    LOG_DIR,
    SAMPLES_DIR,
    StackOptions,
    client_env,
    console,
    load_seed,
    log_tail,
    ready_line,
    running_stack,
)

DEFAULT_SAMPLE = SAMPLES_DIR / "voice-en.m4a"
CONTENT_TYPES = {
    "m4a": "audio/mp4", "mp4": "audio/mp4", "aac": "audio/aac", "wav": "audio/wav", "webm": "audio/webm",
    "ogg": "audio/ogg", "opus": "audio/ogg", "mp3": "audio/mpeg", "caf": "audio/x-caf", "3gp": "audio/3gpp",
}  # fmt: skip
STATUS_STYLE = {
    "ready": "bold green",
    "failed": "bold red",
    "rejected": "bold magenta",
    "processing": "yellow",
}
LEVEL_STYLE = {"low": "yellow", "moderate": "bold yellow", "high": "bold white on red"}


def run_demo(
    *,
    sample: Path = DEFAULT_SAMPLE,
    sender: str = "mina@example.com",
    chat_id: str | None = None,
    language: str | None = "en",
    content_type: str | None = None,
    timeout_s: float = 180.0,
    options: StackOptions | None = None,
) -> int:
    seed = load_seed()
    user = next((u for u in seed["auth"] if u["email"] == sender), None)
    if user is None:
        console.print(f"[red]{sender} is not a seeded account ({[u['email'] for u in seed['auth']]})[/]")
        return 2
    if chat_id is None:
        chat_id = next(
            p.split("/")[1]
            for p, d in seed["firestore"].items()
            if p.startswith("chats/") and p.count("/") == 1 and user["uid"] in d.get("members", [])
        )
    if not sample.exists():
        console.print(f"[red]sample {sample} missing (make samples)[/]")
        return 2
    ext = sample.suffix.lstrip(".").lower()
    content_type = content_type or CONTENT_TYPES.get(ext, "application/octet-stream")
    audio = sample.read_bytes()

    with running_stack(options or StackOptions()) as (_stack, info):
        console.print(ready_line(info))
        env = client_env(storage_rules_enforced=info.storage_rules_enforced, standins=info.standins)
        with AppClient.from_env(env) as app:
            session = app.sign_in(user["email"], user["password"])
            console.print(f"signed in as {session.email} (uid {session.uid}) on the Auth emulator")
            sent = app.send_voice_message(
                chat_id, audio, ext=ext, content_type=content_type, language=language
            )
            console.print(
                f"uploaded {sample.name} ({len(audio):,} bytes, {content_type}) to "
                f"gs://{app.bucket}/{sent.path}"
            )
            console.print(
                f"waiting up to {timeout_s:.0f} s for chats/{chat_id}/messages/{sent.message_id} ..."
            )
            try:
                wait = app.wait_for_message(chat_id, sent.message_id, timeout_s=timeout_s)
            except MessageTimeout as error:
                console.print(
                    Panel(
                        f"{error}\n\nThe function's log (last lines of {LOG_DIR / 'firebase.log'}):\n"
                        f"{log_tail(LOG_DIR / 'firebase.log', 30)}",
                        title="TIMEOUT",
                        border_style="bold red",
                    )
                )
                return 1
        console.print(render_message(wait, sent, sender_name=user.get("displayName", sender)))
        return 0 if wait.doc.get("status") == "ready" else 1


def render_message(wait: MessageWait, sent: SentVoice, *, sender_name: str) -> Panel:
    doc = wait.doc
    status = str(doc.get("status"))
    body = Table.grid(padding=(0, 2))
    body.add_column(style="bold", justify="right")
    body.add_column()
    body.add_row("status", Text(status, style=STATUS_STYLE.get(status, "")))
    body.add_row("transcript", Text(f"“{doc['text']}”" if doc.get("text") else "—", style="italic"))
    body.add_row("language", str(doc.get("language") or "—"))
    stress: dict[str, Any] | None = doc.get("stress")
    if stress:
        level = str(stress.get("level"))
        reading = Text()
        reading.append(f"{stress.get('score')} / 100  ")
        reading.append(f" {level} ", style=LEVEL_STYLE.get(level, ""))
        reading.append(f"  P(stressed)={stress.get('probability')}  model={stress.get('model')}", style="dim")
        body.add_row("stress", reading)
        if level == "high":
            body.add_row("", Text("⚠ the app pops a high-stress warning for this message", style="bold red"))
    else:
        body.add_row("stress", "—")
    if doc.get("error"):
        error = doc["error"]
        body.add_row("error", Text(f"{error.get('code')}: {error.get('message')}", style="red"))
    audio = doc.get("audio") or {}
    if audio:
        duration = audio.get("durationMs")
        body.add_row(
            "audio",
            f"{audio.get('path')}  {audio.get('contentType')}  {audio.get('sizeBytes')} bytes"
            + (f"  {duration / 1000:.1f} s" if isinstance(duration, int | float) else ""),
        )
    created = doc.get("createdAt")
    if isinstance(created, dt.datetime):
        body.add_row("createdAt", created.isoformat(timespec="seconds"))

    timings = Table(title="timings", title_justify="left", show_edge=False)
    timings.add_column("step")
    timings.add_column("ms", justify="right")
    for key, label in (
        ("sttMs", "speech-to-text"),
        ("stressMs", "stress model"),
        ("totalMs", "function total"),
    ):
        value = (doc.get("timings") or {}).get(key)
        timings.add_row(label, "—" if value is None else f"{value:,.0f}")
    timings.add_row("upload → final status (seen by the app)", f"{wait.elapsed_s * 1000:,.0f}")
    statuses = " → ".join(f"{s} @{t:.1f}s" for s, t in wait.statuses)

    return Panel(
        Group(body, Text(""), timings, Text(f"statuses seen: {statuses}", style="dim")),
        title=f"voice message from {sender_name} · chats/{sent.chat_id}/messages/{sent.message_id}",
        border_style=STATUS_STYLE.get(status, "white").replace("bold ", ""),
    )
