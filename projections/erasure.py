"""Erasure: when a person is erased (here or on a peer), drop their key and derived rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from domain.aggregate import event_topic
from domain.personal import Erasure
from projections.framework import ChangeNotice, ReadModel, RecordedEvent


class ErasureView(ReadModel):
    name = "erasure"
    topics = (event_topic(Erasure, "PersonalDataErased"),)

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        subject = event.payload["subject"]
        cur.execute("DELETE FROM person_keys WHERE subject = %s", (subject,))
        return [ChangeNotice(self.name, subject, event.position)]
