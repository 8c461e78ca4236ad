"""The cluster id: made at first start as Kafka's `kafka-storage.sh
random-uuid` makes them (22 characters of URL-safe base64), kept across
restarts, and overridden by a configured `cluster.id` (confluent-kafka's
DescribeCluster, and Metadata through librdkafka)."""

from __future__ import annotations

import os
import re

import pytest
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP")),
    reason="restarts the broker and sets its configuration",
)

KAFKA_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


def cluster_id(bootstrap: str) -> str:
    a = AdminClient({"bootstrap.servers": bootstrap})
    return a.describe_cluster(request_timeout=10).result(10).cluster_id


def test_generated_once_and_kept(make_broker):
    b = make_broker()
    first = cluster_id(b.bootstrap)
    assert KAFKA_ID.match(first), first
    b.restart()
    assert cluster_id(b.bootstrap) == first
    b.kill9()
    b.start()
    assert cluster_id(b.bootstrap) == first
    # Another data dir is another cluster.
    other = make_broker()
    assert cluster_id(other.bootstrap) != first


def test_configured_id_wins(make_broker):
    b = make_broker("-o", "cluster.id=MkU3OEVBNTcwNTJENDM2Qg")
    assert cluster_id(b.bootstrap) == "MkU3OEVBNTcwNTJENDM2Qg"
