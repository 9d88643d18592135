"""The `naho` command: run the demo, serve, migrate, seed, import sites, check the audit trail."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from naho.config import DEVELOPMENT_PASSWORD, InsecureSettingsError, Settings
from naho.platform.uow import UnitOfWork

app = typer.Typer(
    help="naho — the hospital information system of a French hospital group (GHT).",
    no_args_is_help=True, rich_markup_mode="rich", add_completion=False,
)
audit_app = typer.Typer(help="Check the hash-chained audit trail.", no_args_is_help=True)
sites_app = typer.Typer(help="The group's establishments, units, rooms and beds.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for systems and scripts calling the API.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(sites_app, name="sites")
medication_app = typer.Typer(help="The formulary (livret thérapeutique) and medication orders.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(medication_app, name="medication")
console = Console()


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except InsecureSettingsError as exc:
        console.print(f"[red]Refusing to start:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def _database(settings: Settings) -> Iterator[UnitOfWork]:
    """A unit of work on the configured database; its connections are closed afterwards."""
    from naho.platform.clock import SystemClock
    from naho.platform.db import make_engine, make_session_factory
    from naho.platform.events import EventBus

    engine = make_engine(settings.database_url)
    try:
        yield UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())
    finally:
        engine.dispose()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console, transient=False)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic)."""
    from naho.migrations import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    console.print("[green]Schema up to date.[/green]")


def _run_seed(settings: Settings) -> dict[str, int]:
    from naho.sandbox.seed import seed as run

    tasks: dict[str, TaskID] = {}
    with _progress() as bar:
        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                label = {"sites": "Establishments and beds", "staff": "Staff", "patients": "Patients and stays"}.get(
                    step, step)
                tasks[step] = bar.add_task(label, total=total)
            bar.update(tasks[step], completed=done)

        with _database(settings) as uow:
            return run(uow, settings, progress=progress)


@app.command()
def seed() -> None:
    """Load the group's structure and synthetic staff (idempotent, deterministic)."""
    settings = _settings()
    result = _run_seed(settings)
    console.print(f"[green]Seeded:[/green] {result}")


def _database_is_empty(settings: Settings) -> bool:
    from naho.staff import service as staff

    with _database(settings) as uow, uow:
        return staff.count_staff(uow.session) == 0


def _print_demo_accounts() -> None:
    from naho.platform.i18n import _
    from naho.sandbox.seed import DEMO_ACCOUNTS
    from naho.web.templating import ROLE_LABELS

    table = Table(title="Comptes de démonstration (mode développement uniquement)")
    table.add_column("Rôle")
    table.add_column("Identifiant", style="bold")
    table.add_column("Mot de passe")
    for account in DEMO_ACCOUNTS:
        table.add_row(_(ROLE_LABELS[account.role]), account.username, DEVELOPMENT_PASSWORD)
    console.print(table)


def _serve(settings: Settings, host: str, port: int, processes: int) -> None:
    import uvicorn

    os.environ["NAHO_MODE"] = settings.mode
    os.environ["NAHO_DATABASE_URL"] = settings.database_url
    uvicorn.run("naho.app:create_app", factory=True, host=host, port=port, workers=processes,
                proxy_headers=settings.production, log_level="info")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Migrate, seed if empty, and serve the demo on an embedded SQLite database."""
    os.environ.setdefault("NAHO_MODE", "development")
    settings = _settings()
    if not settings.development:
        console.print("[red]`naho demo` runs in development mode only; use `naho serve`.[/red]")
        raise typer.Exit(2)
    from naho.migrations import upgrade

    with console.status("Migrating the database…"):
        upgrade(settings.database_url)
    if _database_is_empty(settings):
        console.print("First start: loading the group and synthetic staff.")
        _run_seed(settings)
    _print_demo_accounts()
    mail = _demo_mail(settings)
    console.print(f"naho: [bold]http://{host}:{port}/[/bold]  (Ctrl+C to stop)")
    try:
        _serve(settings, host, port, 1)
    finally:
        if mail is not None:
            mail.stop()


def _demo_mail(settings: Settings):  # type: ignore[no-untyped-def]
    """Secure messaging with demo certificates and a local relay, unless configured already."""
    if settings.messaging_smtp_host or settings.messaging_certificate:
        return None
    from naho.messaging.demo import start_demo_mail

    with _database(settings) as uow:
        mail = start_demo_mail(uow, Path("naho-demo"))
    os.environ.update(mail.environment)
    console.print(f"Secure messaging (demo): letters sent are kept in [bold]{mail.received}[/bold].")
    return mail


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    processes: Annotated[int, typer.Option(help="Web processes (background workers stay single).")] = 1,
) -> None:
    """Serve naho (run `naho migrate` first). Production runs behind a TLS reverse proxy."""
    settings = _settings()
    _serve(settings, host, port, processes)


@audit_app.command("verify")
def audit_verify(
    expected_head: Annotated[str | None, typer.Option(help="SEQ:HASH saved earlier by `naho audit head`.")] = None,
) -> None:
    """Walk the whole chain; report any altered, inserted or deleted event. Exit 1 if any."""
    from naho.platform import audit

    settings = _settings()
    head = None
    if expected_head:
        seq, _, digest = expected_head.partition(":")
        head = audit.AuditHead(int(seq), digest)
    problems: list[audit.AuditProblem] = []
    with _database(settings) as uow, uow:
        last = audit.head(uow.session)
        total = last.seq if last else 0
        with _progress() as bar:
            task = bar.add_task("Audit events", total=total)
            for item in audit.verify(uow.session, head):
                if isinstance(item, int):
                    bar.update(task, completed=item)
                else:
                    problems.append(item)
    if problems:
        for problem in problems:
            console.print(f"[red]✗ {problem.kind}[/red] (event {problem.seq}): {problem.message}")
        console.print(f"[red]The audit trail is NOT intact: {len(problems)} problem(s).[/red]")
        raise typer.Exit(1)
    console.print(f"[green]The audit trail is intact: {total} events checked.[/green]")


@audit_app.command("head")
def audit_head() -> None:
    """Print SEQ:HASH of the newest event; keep it elsewhere to detect truncation later."""
    from naho.platform import audit

    with _database(_settings()) as uow, uow:
        last = audit.head(uow.session)
    print(f"{last.seq}:{last.hash}" if last else "0:" + audit.GENESIS_HASH)


@sites_app.command("import")
def sites_import(
    file: Annotated[Path | None, typer.Argument(help="Reference file (default: the shipped one).")] = None,
) -> None:
    """Import the reference file; idempotent (matched by code, nothing deleted)."""
    from naho.platform.errors import DomainError
    from naho.platform.security.actor import SYSTEM_ACTOR
    from naho.sites import service

    settings = _settings()
    try:
        spec = service.load_reference(file or settings.sites_file)
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    with _progress() as bar, _database(settings) as uow:
        task = bar.add_task("Units", total=sum(len(e.units) for e in spec.establishments))
        report = service.import_reference(uow, SYSTEM_ACTOR, spec,
                                          progress=lambda done, total: bar.update(task, completed=done))
    console.print(f"created {report.created} · updated {report.updated} · deactivated {report.deactivated}")


@medication_app.command("import")
def medication_import(
    file: Annotated[Path | None, typer.Argument(help="Formulary file (default: the shipped one).")] = None,
) -> None:
    """Import the formulary; idempotent (upserted by code, products removed become inactive)."""
    from naho.medication import service
    from naho.medication.catalogue import FORMULARY
    from naho.platform.errors import DomainError
    from naho.platform.security.actor import SYSTEM_ACTOR

    settings = _settings()
    with _database(settings) as uow:
        try:
            with uow:
                report = service.import_formulary(uow.session, SYSTEM_ACTOR, file or FORMULARY,
                                                  now=uow.clock.now())
                uow.commit()
        except (DomainError, OSError) as exc:
            console.print(f"[red]{getattr(exc, 'detail', exc)}[/red]")
            raise typer.Exit(1) from exc
    console.print(f"formulary {report.version}: {report.substances} substances, {report.products} products, "
                  f"{report.interactions} interactions · added {report.added} · updated {report.updated} · "
                  f"withdrawn {report.withdrawn}")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="Account the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for (e.g. 'passerelle labo').")],
    days: Annotated[int, typer.Option(help="Validity in days.")] = 365,
) -> None:
    """Issue a bearer token; it is printed once and stored only as a hash."""
    from naho.platform.errors import DomainError
    from naho.platform.security import service
    from naho.platform.security.actor import SYSTEM_ACTOR

    try:
        with _database(_settings()) as uow:
            token = service.create_api_token(uow, SYSTEM_ACTOR, username=user, name=name, days=days)
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    print(token)


@token_app.command("revoke")
def token_revoke(prefix: Annotated[str, typer.Argument(help="The token's first 12 characters.")]) -> None:
    """Revoke a bearer token."""
    from naho.platform.security import service
    from naho.platform.security.actor import SYSTEM_ACTOR

    with _database(_settings()) as uow:
        revoked = service.revoke_api_token(uow, SYSTEM_ACTOR, prefix)
    if not revoked:
        console.print("[red]No active token with this prefix.[/red]")
        raise typer.Exit(1)
    console.print("Token revoked.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
