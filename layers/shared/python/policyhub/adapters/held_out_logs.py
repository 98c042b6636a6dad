"""Read only some decisions' records from the interaction logs, without parsing the rest.

Compare needs the held-out fifth of a window (by decision_id hash). Parsing a JSON line costs
far more than finding its decision_id, so lines whose decision is not wanted are skipped before
`json.loads` (decision 066).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson

from policyhub.adapters import aws
from policyhub.adapters.interaction_logs import S3InteractionLog, partition

_DECISION_ID = re.compile(rb'"decision_id"\s*:\s*"((?:[^"\\]|\\.)*)"')
Keep = Callable[[str], bool]


class S3SelectedInteractionLog:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket
        self._objects = S3InteractionLog(bucket)

    def read(
        self,
        tenant_id: str,
        agent_type: str,
        since: datetime,
        until: datetime,
        keep: Keep | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Records of [since, until] whose decision_id `keep` accepts (all with no `keep`)."""
        day = since.date()
        slack = timedelta(minutes=10)
        while day <= until.date():
            prefix = partition(tenant_id, agent_type, datetime(day.year, day.month, day.day))
            for key, _etag in self._objects._keys(prefix, since - slack, until + slack):
                body = aws.s3().get_object(Bucket=self._bucket, Key=key)["Body"].read()
                for line in body.splitlines():
                    if not line.strip():
                        continue
                    if keep is not None:
                        found = _DECISION_ID.search(line)
                        if found is None or not keep(json.loads(b'"' + found[1] + b'"')):
                            continue
                    record: dict[str, Any] = orjson.loads(line)
                    at = datetime.fromisoformat(str(record["at"]).replace("Z", "+00:00"))
                    if since <= at <= until:
                        yield record
            day += timedelta(days=1)
