"""Backups, for staff with the staff token (`coopnode admin backup` calls these).

    POST /api/v1/admin/backups               begin a backup of every store into a
                                             directory under `backup.dir`: 202 with its
                                             status at once; the copies run on
    GET  /api/v1/admin/backups/{backup_id}   where that backup stands: running, complete
                                             (with its manifest) or failed (with why)

The backup actor (one per cluster) does the work; a front only asks it. A backup is
begun, not awaited, in a request: copying a large store takes longer than a request's
time (`http.request_timeout_s`).
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from coopnode.actors.backup.client import BackupClient, BackupUnavailable
from coopnode.actors.backup.messages import (
    BackupAnswer,
    BackupId,
    BackupStatus,
    StartBackup,
)
from coopnode.domain.money import Reason
from coopnode.domain.staff import Permission
from coopnode.http.edge import Route, read_body, staff_may
from coopnode.http.errors import ApiError

backup_client_key = web.AppKey("backups", BackupClient)


def _answered(answer: BackupAnswer) -> BackupStatus:
    if answer.refused is not None:
        raise ApiError(answer.refused.reason, answer.refused.message)
    if answer.status is None:
        raise TypeError("the backup actor answered neither a status nor a refusal")
    return answer.status


def _json(status: BackupStatus, code: int) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(status), status=code, content_type="application/json"
    )


async def start_backup(request: web.Request) -> web.Response:
    body = await read_body(request, StartBackup)
    try:
        status = _answered(await request.app[backup_client_key].start(body))
    except BackupUnavailable:
        raise ApiError(Reason.UNAVAILABLE, "the backup actor did not answer; try again") from None
    return _json(status, 202)


async def backup_status(request: web.Request) -> web.Response:
    try:
        backup_id = msgspec.convert(request.match_info["backup_id"], BackupId)
    except msgspec.ValidationError:
        raise ApiError(Reason.INVALID_INPUT, "that is not a backup id") from None
    try:
        status = _answered(await request.app[backup_client_key].status(backup_id))
    except BackupUnavailable:
        raise ApiError(Reason.UNAVAILABLE, "the backup actor did not answer; try again") from None
    return _json(status, 200)


BACKUP_ROUTES: tuple[Route, ...] = (
    Route(
        method="POST",
        path="/api/v1/admin/backups",
        summary=(
            "Begin a backup of every store, while the node serves, into a directory under "
            "backup.dir (a name, or an absolute path there that is new or empty)"
        ),
        access=staff_may(Permission.NODE_OPERATE),
        audit="backup.start",
        handler=start_backup,
        request=StartBackup,
        response=BackupStatus,
        status=202,
    ),
    Route(
        method="GET",
        path="/api/v1/admin/backups/{backup_id}",
        summary="Where a backup stands: running, complete with its manifest, or failed",
        access=staff_may(Permission.NODE_OPERATE),
        handler=backup_status,
        response=BackupStatus,
    ),
)
