"""Satellites of the catalog master: follow its catalog, fetch its model files on demand.

The master's catalog events arrive with replication and are folded into
`cluster_catalog_view` at apply time; `sync_catalog` mirrors them into the local catalog
(actor `peer:<master>`), so assigning and deploying work as on any pool. A model file a
satellite does not have is fetched from the master with a signed request and stored only if
its sha256 is the one the catalog names.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from application.catalog import InvalidUpload, MasterModel, satellite_of
from infrastructure.deployer import DeployError
from infrastructure.federation import FederationRefused
from projections.framework import NOTICE_CHANNEL

if TYPE_CHECKING:
    from infrastructure.bootstrap import Pool

SYNCED_KEY = "archipel:catalog:synced"  # "<master>:<seq>" of the last sync
CONFLICTS_KEY = "archipel:catalog:conflicts"
FETCH_CHUNK = 1 << 20


def master_models(conn: Any, master: str) -> list[MasterModel]:
    rows = conn.execute(
        "SELECT * FROM cluster_catalog_view WHERE pool_id = %s ORDER BY name, tag", (master,)
    ).fetchall()
    return [
        MasterModel(
            str(r["model_id"]),
            r["name"],
            r["tag"],
            r["digest"],
            int(r["size"]),
            dict(r["metadata"]),
            list(r["capabilities"]),
            r["notes"],
            r["source"],
            bool(r["retired"]),
        )
        for r in rows
    ]


def sync_catalog(pool: Pool, force: bool = False) -> int:
    """Mirror the master's catalog if it moved since the last sync; returns the changes."""
    master = satellite_of(pool.settings.str_value("cluster.catalog_master_pool"), pool.pool_id)
    if master is None:
        return 0
    with pool.database.connection() as conn:
        row = conn.execute(
            "SELECT coalesce(max(seq), 0) AS seq FROM cluster_catalog_view WHERE pool_id = %s",
            (master,),
        ).fetchone()
        mark = f"{master}:{row['seq'] if row else 0}"
        synced = pool.redis.get(SYNCED_KEY)
        if not force and isinstance(synced, bytes) and synced.decode() == mark:
            return 0
        models = master_models(conn, master)
    changed, conflicts, later = pool.catalog.mirror(master, models)
    if not conflicts and not later:
        pool.redis.set(SYNCED_KEY, mark)  # else every round looks again
    pool.redis.set(CONFLICTS_KEY, json.dumps(conflicts))
    if changed:
        head = int(pool.store.recorder.max_notification_id() or 0)
        pool.redis.publish(
            NOTICE_CHANNEL, json.dumps([{"view": "catalog", "key": "*", "position": head}])
        )
    return changed


def sync_state(pool: Pool) -> dict[str, Any]:
    """The catalog's role here and, on a satellite, how far it follows the master."""
    flag = pool.settings.str_value("cluster.catalog_master_pool")
    if not flag:
        return {"role": "standalone", "master_pool_id": None}
    if flag == pool.pool_id:
        return {"role": "master", "master_pool_id": flag}
    with pool.database.connection() as conn:
        position = conn.execute(
            "SELECT seq, origin_head_seq, last_batch_at, last_seen_at FROM peer_positions "
            "WHERE origin = %s",
            (flag,),
        ).fetchone()
        peer = conn.execute(
            "SELECT name, status FROM peers_view WHERE pool_id = %s", (flag,)
        ).fetchone()
        models = conn.execute(
            "SELECT count(*) AS n FROM cluster_catalog_view WHERE pool_id = %s AND NOT retired",
            (flag,),
        ).fetchone()
    applied = int(position["seq"]) if position else 0
    head = int(position["origin_head_seq"]) if position else 0
    conflicts = json.loads(pool.redis.get(CONFLICTS_KEY) or b"[]")
    return {
        "role": "satellite",
        "master_pool_id": flag,
        "master_name": peer["name"] if peer else None,
        "paired": bool(peer and peer["status"] == "paired"),
        "applied_seq": applied,
        "master_head_seq": head,
        "lag_events": max(0, head - applied),
        "last_seen_at": position["last_seen_at"] if position else None,
        "master_models": int(models["n"]) if models else 0,
        "conflicts": conflicts,
    }


def fetch_blob(
    pool: Pool, digest: str, size: int, name: str, progress: Callable[[int, int], None]
) -> None:
    """Fetch a model file from the catalog master into the blob store, digest checked."""
    master = satellite_of(pool.settings.str_value("cluster.catalog_master_pool"), pool.pool_id)
    peer = pool.federation.find(master) if master else None
    if master is None or peer is None or str(peer.status) != "paired":
        raise DeployError(
            f"the file {digest} is not in this pool's blob store, and no paired catalog master "
            "has it"
        )
    try:
        upload = pool.blobs.start(f"{name}.gguf", size, expected_digest=digest)
    except InvalidUpload as error:  # no room on disk, ...
        raise DeployError(f"cannot fetch {digest} from the master: {error.detail}") from None
    try:
        writer = pool.blobs.writer(upload.id, 0)
        done = 0
        try:
            with pool.peer_client.stream(
                peer.url, master, "GET", f"/federation/v1/blobs/{digest}"
            ) as answer:
                if answer.status_code != 200:
                    answer.read()
                    raise DeployError(
                        f"the master answered HTTP {answer.status_code} for {digest}: "
                        f"{answer.text[:200]}"
                    )
                for chunk in answer.iter_bytes(FETCH_CHUNK):
                    writer.write(chunk)
                    done += len(chunk)
                    progress(done, size)
        finally:
            writer.close()
        pool.blobs.finish(upload.id)  # refuses (and removes) anything but the named digest
    except InvalidUpload as error:
        with contextlib.suppress(Exception):
            pool.blobs.abort(upload.id)
        raise DeployError(f"the file fetched from the master was refused: {error.detail}") from None
    except FederationRefused as error:
        with contextlib.suppress(Exception):
            pool.blobs.abort(upload.id)
        raise DeployError(f"fetching from the master: {error}") from None
    except BaseException:
        with contextlib.suppress(Exception):
            pool.blobs.abort(upload.id)
        raise
