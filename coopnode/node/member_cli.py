"""`coopnode admin enrol`, `admin import-members` and `admin add-staff`: staff commands
that talk to a running node's HTTP API with a machine's API token (made by an
administrator in the console, saved by default beside the staff token as `api-token`).
`add-staff --bootstrap` is the staff token's one use: the first administrator.

    coopnode admin enrol --member-no N --name NAME --kana KANA --birth-date YYYY-MM-DD
        --mail ADDRESS --phone NUMBER [--coop ID] [--share-units N]
        [--insurance LABEL:YEN ...] [--emoney-yen N] [--meal-plan ID] [--meal-yen N]
        [--node URL] [--token-file FILE]
    coopnode admin import-members FILE.csv [--node URL] [--token-file FILE]
    coopnode admin add-staff --staff-id ID --name NAME [--role ROLE | --bootstrap]
        [--node URL] [--token-file FILE]
        (the password is read from the terminal, or from standard input when piped)

The CSV import is for the start-of-term rush: one member per row, with the header
`member_no,name,kana,birth_date,mail,phone,coop,share_units,insurance,emoney_yen,
meal_plan,meal_yen`, where `insurance` is `label:yen` items separated by `;`. Rows go to
the node a few at a time (`identity.import_concurrency`); a row already enrolled with
the same details is reported as such and mails nobody, so a failed import can be run
again as it is. The command prints one line per row and a summary, and exits 1 if any
row was refused.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import sys
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from coopnode.actors.identity.messages import Enrolment, InsuranceItem
from coopnode.domain.staff import Role
from coopnode.settings import Settings

CSV_COLUMNS = (
    "member_no",
    "name",
    "kana",
    "birth_date",
    "mail",
    "phone",
    "coop",
    "share_units",
    "insurance",
    "emoney_yen",
    "meal_plan",
    "meal_yen",
)
# A term's intake is a few thousand members; a file far larger is a mistake.
CSV_ROWS_MAX = 100_000
REQUEST_TIMEOUT_S = 60.0


class RowError(Exception):
    """A row or an argument that cannot be sent."""


def _insurance(text: str) -> list[InsuranceItem]:
    items = []
    for part in filter(None, (piece.strip() for piece in text.split(";"))):
        label, colon, amount = part.rpartition(":")
        if not colon or not label or not amount.strip().isdigit():
            raise RowError(f"insurance {part!r} must look like 'label:yen'")
        items.append(InsuranceItem(label=label.strip(), amount_yen=int(amount)))
    return items


def enrolment_from_row(row: dict[str, str]) -> Enrolment:
    missing = [column for column in CSV_COLUMNS if column not in row]
    if missing:
        raise RowError(f"missing columns: {', '.join(missing)}")
    fields: dict[str, Any] = {key: (row[key] or "").strip() for key in CSV_COLUMNS}
    fields["insurance"] = _insurance(fields["insurance"])
    for key in ("share_units", "emoney_yen", "meal_yen"):
        fields[key] = fields[key] or "0"
    fields["meal_plan"] = fields["meal_plan"] or "none"
    try:
        return msgspec.convert(fields, Enrolment, strict=False)
    except msgspec.ValidationError as error:
        raise RowError(str(error)) from None


def staff_target(args: argparse.Namespace, settings: Settings) -> tuple[str, str]:
    """The node's URL and the token, from `--node` and `--token-file` or their defaults:
    the staff token for the bootstrap, else the API token saved beside it."""
    default_file = (
        settings.staff_token_path if getattr(args, "bootstrap", False) else settings.api_token_path
    )
    token_file = Path(args.token_file) if args.token_file else default_file
    token = token_file.read_text(encoding="ascii").strip()
    url_file = settings.data_path / "node.url"
    default = (
        url_file.read_text(encoding="ascii").strip()
        if url_file.exists()
        else f"http://{settings.node.host}:{settings.node.port}"
    )
    node = args.node or default
    if not node.startswith(("http://", "https://")):
        raise RowError(f"--node must be an http(s) URL, not {node!r}")
    return node.rstrip("/"), token


async def _post(
    session: aiohttp.ClientSession, url: str, token: str, body: msgspec.Struct
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with session.post(url, data=msgspec.json.encode(body), headers=headers) as response:
        raw = await response.read()
    try:
        answer = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        answer = {"reason": "not_json", "message": raw[:200].decode(errors="replace")}
    return response.status, answer if isinstance(answer, dict) else {}


def _describe(status: int, answer: dict[str, Any]) -> tuple[bool, str]:
    if status == 201:
        return True, f"enrolled, total {answer.get('total_yen', 0):,} yen, mail sent"
    if status == 200:
        return True, "already enrolled with these details; nothing sent"
    return False, f"refused ({status} {answer.get('reason', '')}): {answer.get('message', '')}"


async def _send_rows(
    node: str, token: str, rows: list[tuple[int, Enrolment | str]], concurrency: int
) -> int:
    limit = asyncio.Semaphore(concurrency)
    failures = 0
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)

    async def one(session: aiohttp.ClientSession, line: int, row: Enrolment | str) -> None:
        nonlocal failures
        if isinstance(row, str):
            failures += 1
            print(f"line {line}: not sent: {row}")
            return
        async with limit:
            try:
                status, answer = await _post(session, f"{node}/api/v1/members", token, row)
            except (aiohttp.ClientError, TimeoutError) as error:
                status, answer = 0, {"reason": type(error).__name__, "message": str(error)}
        ok, text = _describe(status, answer)
        failures += 0 if ok else 1
        print(f"line {line}: {row.member_no}: {text}")

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(one(session, line, row) for line, row in rows))
    return failures


def read_csv(path: Path) -> list[tuple[int, Enrolment | str]]:
    rows: list[tuple[int, Enrolment | str]] = []
    with path.open(encoding="utf-8-sig", newline="") as file:
        for index, row in enumerate(csv.DictReader(file), start=2):
            if index - 1 > CSV_ROWS_MAX:
                raise RowError(f"{path} has more than {CSV_ROWS_MAX} rows")
            try:
                rows.append((index, enrolment_from_row(row)))
            except RowError as error:
                rows.append((index, str(error)))
    return rows


def _enrolment_from_args(args: argparse.Namespace) -> Enrolment:
    row = {column: str(getattr(args, column) or "") for column in CSV_COLUMNS}
    row["insurance"] = ";".join(args.insurance or [])
    return enrolment_from_row(row)


def _read_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("password for the new staff account: ")
    return sys.stdin.readline().rstrip("\n")


async def _add_staff(args: argparse.Namespace, node: str, token: str) -> int:
    body = {"staff_id": args.staff_id, "name": args.name, "password": _read_password()}
    path = "/api/v1/staff/bootstrap" if args.bootstrap else "/api/v1/staff/accounts"
    if not args.bootstrap:
        body["role"] = args.role
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        headers = {"Authorization": f"Bearer {token}"}
        async with session.post(f"{node}{path}", json=body, headers=headers) as r:
            answer = await r.json(content_type=None)
            status = r.status
    if status != 201:
        print(f"refused ({status}): {answer.get('message', '')}", file=sys.stderr)
        return 1
    answer = answer["administrator"] if args.bootstrap else answer
    print(f"staff {answer['staff_id']} created. Add this to the authenticator app, once:")
    print(answer["otpauth_uri"])
    return 0


def run_member_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        node, token = staff_target(args, settings)
        concurrency = settings.identity.import_concurrency
        if args.admin_command == "enrol":
            rows: list[tuple[int, Enrolment | str]] = [(0, _enrolment_from_args(args))]
            failures = asyncio.run(_send_rows(node, token, rows, 1))
        elif args.admin_command == "import-members":
            rows = read_csv(Path(args.file))
            failures = asyncio.run(_send_rows(node, token, rows, concurrency))
            print(f"{len(rows) - failures} of {len(rows)} rows done, {failures} refused")
        else:
            return asyncio.run(_add_staff(args, node, token))
    except (OSError, RowError) as error:
        print(f"coopnode admin: {error}", file=sys.stderr)
        return 2
    return 1 if failures else 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", help="the node's URL (default: <data_dir>/node.url)")
    parser.add_argument(
        "--token-file",
        help="the API token file (default: api-token beside the staff token); "
        "with add-staff --bootstrap, the staff token file",
    )


def add_member_commands(admin: Any) -> None:
    """Add the member commands under `coopnode admin`, beside the till's."""
    enrol = admin.add_parser("enrol", help="enrol one member (FLOWS §0)")
    for column in ("member_no", "name", "kana", "birth_date", "mail", "phone"):
        enrol.add_argument(f"--{column.replace('_', '-')}", dest=column, required=True)
    enrol.add_argument("--coop", default="demo")
    enrol.add_argument("--share-units", dest="share_units", default="10")
    enrol.add_argument("--insurance", action="append", help="LABEL:YEN, may be repeated")
    enrol.add_argument("--emoney-yen", dest="emoney_yen", default="0")
    enrol.add_argument("--meal-plan", dest="meal_plan", default="none")
    enrol.add_argument("--meal-yen", dest="meal_yen", default="0")
    imports = admin.add_parser("import-members", help="enrol the members of a CSV file")
    imports.add_argument("file", help="UTF-8 CSV with the columns " + ",".join(CSV_COLUMNS))
    staff = admin.add_parser("add-staff", help="create a staff account with TOTP")
    staff.add_argument("--staff-id", dest="staff_id", required=True)
    staff.add_argument("--name", required=True)
    staff.add_argument(
        "--role", default=Role.COUNTER_CLERK.value, choices=[role.value for role in Role]
    )
    staff.add_argument(
        "--bootstrap",
        action="store_true",
        help="the first administrator, with the staff token (refused once one exists)",
    )
    for parser in (enrol, imports, staff):
        _common(parser)
        parser.set_defaults(run=run_member_command)
