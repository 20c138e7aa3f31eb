"""The S3 plugin passes btic's destination conformance suite, against moto's server."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from itertools import count
from pathlib import Path

import pytest

from btic.testing import DestinationConformance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from s3_server import moto_server

_buckets = count()


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        yield server


class TestS3Conformance(DestinationConformance):
    plugin = "s3"
    # boto3 loads its S3 service model (about 13 MB, once a process) on the first
    # upload, inside the measured window; the parts add 2 x 5 MiB whatever the size.
    memory_budget = 32 * 1024 * 1024

    @pytest.fixture
    def destination_options(self, s3):
        # Parts of 5 MiB, two at a time: the suite's 16 MiB memory budget.
        bucket = s3.bucket(f"btic-conformance-{next(_buckets)}")
        return s3.options(bucket, part_size_mb=5, max_concurrency=2)

    @pytest.fixture
    def hostile_options(self, destination_options):
        return {
            **destination_options,
            "prefix": "archive/",
            "key_format": "%EXTERNAL_KEY%/%EXTERNAL_KEY%-%LSID%.%EXTENSION%",
        }

    @pytest.fixture
    def broken_options(self, s3):
        return s3.options("no-such-bucket-at-all")

    @contextmanager
    def outage(self, options):
        # The bucket is gone (emptied and deleted), then made again.
        from s3_server import S3Server

        server = S3Server(options["endpoint_url"])
        client, bucket = server.client(), options["bucket"]
        for key in server.objects(bucket):
            client.delete_object(Bucket=bucket, Key=key)
        client.delete_bucket(Bucket=bucket)
        try:
            yield
        finally:
            client.create_bucket(Bucket=bucket)

    def stored_items(self, options):
        from s3_server import S3Server

        server = S3Server(options["endpoint_url"])
        bucket = options["bucket"]
        return {
            f"s3://{bucket}/{key}": data
            for key, data in server.objects(bucket).items()
            if ".btic-uploads/" not in key
        }

    def is_inside(self, location, options):
        return location.startswith(f"s3://{options['bucket']}/{options.get('prefix', '')}")
