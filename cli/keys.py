"""``agentctl`` commands for identity and money: keygen, ledger show, ledger adjust."""

from pathlib import Path

import typer

from durable_agents._cli.app import app, connect_client, err, non_zero, out, run_async
from durable_agents._cli.render import to_json
from durable_agents._client.keyring import ApproverKeyring, KeyringError, add_public_key
from durable_agents._domain.money import micros_to_usd
from durable_agents._domain.user_ledger import UserSpend

PANEL = "Identity and money"

ledger_app = typer.Typer(help="A user's monthly spending ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger", rich_help_panel=PANEL)


@app.command(rich_help_panel=PANEL)
def keygen(
    name: str = typer.Argument(..., help="The approver or operator the key is for."),
    approvers_file: Path | None = typer.Option(
        None,
        "--approvers-file",
        help="Also add the public key to this workers' AGENT_APPROVER_KEYS_FILE.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing key of NAME."),
) -> None:
    """Make an Ed25519 key pair for NAME; decisions --as NAME are then signed with it."""
    keyring = ApproverKeyring.from_env()
    try:
        public = keyring.generate(name, overwrite=force)
        if approvers_file is not None:
            add_public_key(approvers_file, name, public)
    except KeyringError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    out.print(f"private key: {keyring.directory / (name + '.key')} (keep it secret)")
    out.print(f"public key of {name}: {public}")
    if approvers_file is not None:
        out.print(f"added to {approvers_file}; restart the workers to load it")
    else:
        out.print(
            f'add to the workers\' AGENT_APPROVER_KEYS_FILE: {{"{name}": "{public}"}} '
            "(or run again with --approvers-file FILE)"
        )


@ledger_app.command("show")
@run_async
async def ledger_show(
    user: str = typer.Argument(..., help="Whose ledger."),
    as_json: bool = typer.Option(False, "--json", help="Print the balance as JSON."),
) -> None:
    """Show USER's spend this month, what runs in flight hold, and the audit trail."""
    client = await connect_client()
    spend = await client.user_balance(user)
    if as_json:
        out.print_json(to_json(spend))
        return
    _print_spend(spend)


def _print_spend(spend: UserSpend) -> None:
    out.print(
        f"[bold]{spend.user}[/] · {spend.period or 'no spend yet'} · spent "
        f"${micros_to_usd(spend.spent_micros):.6f} · held for {len(spend.reservations)} "
        f"run(s) ${micros_to_usd(spend.reserved()):.6f}"
    )
    for run_id, micros in sorted(spend.reservations.items()):
        out.print(f"  holds ${micros_to_usd(micros):.6f} for {run_id}")
    for entry in spend.audit[-20:]:
        mark = "✓" if entry.accepted else "✗ refused"
        out.print(
            f"  {entry.at:%Y-%m-%d %H:%M:%S} {mark} {entry.op} {entry.by} {entry.detail}",
            markup=False,
        )


@ledger_app.command("adjust")
@run_async
async def ledger_adjust(
    user: str = typer.Argument(..., help="Whose ledger."),
    usd: float = typer.Option(
        ..., "--usd", callback=non_zero, help="USD to add to the spend (negative: refund)."
    ),
    reason: str = typer.Option(..., "--reason", help="Why; recorded in the ledger's audit."),
    as_: str = typer.Option(..., "--as", help="The operator; signs with their key."),
    as_json: bool = typer.Option(False, "--json", help="Print the new balance as JSON."),
) -> None:
    """Correct USER's spend this month (signed by an operator's key, audited)."""
    client = await connect_client()
    decision = await client.adjust_ledger(user, as_, usd, reason)
    if as_json:
        out.print_json(to_json(decision))
        return
    out.print(
        f"{user}: spend adjusted by {usd:+.6f} USD by {as_}; now "
        f"${micros_to_usd(decision.spent_micros):.6f} spent in {decision.period}"
    )
