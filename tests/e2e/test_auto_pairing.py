"""Three pools: A pairs with B while B is paired with C; auto-pairing closes the mesh (A-C);
the catalog master's models reach both satellites."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess, shut_down
from tests.waiting import eventually


def test_auto_pairing_closes_the_mesh() -> None:
    base = Path(tempfile.mkdtemp(prefix="archipel-mesh-", dir="/tmp"))
    pools = {name: PoolProcess(base / name) for name in ("a", "b", "c")}
    try:
        admins = {}
        for name, pool in pools.items():
            pool.start()
            admins[name] = admin = AdminClient(pool.url)
            admin.onboard()
            assert (
                admin.put(
                    "/api/settings/federation.auto_pairing",
                    {"value": True, "reason": "close the mesh"},
                ).status_code
                == 200
            )
        ids = {
            name: admin.get("/api/federation").json()["pool_id"] for name, admin in admins.items()
        }

        def pair(left: str, right: str) -> None:
            code = admins[right].post("/api/federation/invites", {"reason": "r"}).json()["code"]
            paired = admins[left].post(
                "/api/federation/peers",
                {"url": pools[right].url, "code": code, "reason": "manual pairing"},
            )
            assert paired.status_code == 201, paired.text

        pair("b", "c")
        pair("a", "b")  # B knows C, and now A: it introduces them

        def peers_of(name: str) -> set[str]:
            return {
                p["pool_id"]
                for p in admins[name].get("/api/federation").json()["peers"]
                if p["status"] == "paired"
            }

        eventually(lambda: ids["c"] in peers_of("a"), timeout=45)
        eventually(lambda: ids["a"] in peers_of("c"), timeout=15)
        assert peers_of("b") == {ids["a"], ids["c"]}

        # The pool with the smaller id asked for that pairing, as the auto-pairing automation
        # (introductions of a pair always go the same way); the audit view may take a moment.
        def introduced_pairing() -> bool:
            return any(
                e["event_type"] == "Paired"
                for name in ("a", "c")
                for e in admins[name]
                .get("/api/audit", params={"actor": "automation:auto-pairing"})
                .json()["items"]
            )

        eventually(introduced_pairing, timeout=20)

        # A becomes the catalog master (one change: a cluster flag reaches B and C), and a
        # model added on A appears on both satellites, read-only there.
        admins["a"].put(
            "/api/settings/cluster.catalog_master_pool", {"value": ids["a"], "reason": "A leads"}
        )
        added = admins["a"].post(
            "/api/models/library", {"name": "phi3", "tag": "mini", "reason": "for everyone"}
        )
        assert added.status_code == 201, added.text
        for name in ("b", "c"):
            listed = eventually(
                lambda name=name: (m := admins[name].get("/api/models").json())["items"] and m,
                timeout=45,
            )
            assert [i["reference"] for i in listed["items"]] == ["phi3:mini"]
            assert listed["catalog"]["role"] == "satellite"
            assert listed["catalog"]["master_pool_id"] == ids["a"]
    finally:
        for pool in pools.values():
            shut_down(pool)
        shutil.rmtree(base, ignore_errors=True)
