# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_aws.RegionalClients: each region's client is made once, when it is first asked for, from any thread."""
from __future__ import annotations

import threading
import time

import botocore.exceptions
import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", "sa-east-1", "ca-central-1"]


class Maker:
    """Makes a stand-in client per call, slowly enough for threads to overlap, and counts the calls."""

    def __init__(self, fail_in=None):
        self.made = []
        self.fail_in = fail_in
        self.inside = 0
        self.most_inside = 0
        self._count = threading.Lock()

    def __call__(self, region):
        with self._count:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            time.sleep(0.01)
            if region == self.fail_in:
                raise botocore.exceptions.ProfileNotFound(profile="gone")
            self.made.append(region)
            return f"client of {region}"
        finally:
            with self._count:
                self.inside -= 1


def test_no_client_is_made_before_it_is_asked_for_and_each_only_once():
    maker = Maker()
    clients = _aws.RegionalClients(maker, REGIONS + ["us-east-1"])
    assert maker.made == []
    assert list(clients) == REGIONS and len(clients) == len(REGIONS)
    assert clients["eu-west-1"] == "client of eu-west-1"
    assert clients["eu-west-1"] == "client of eu-west-1"
    assert maker.made == ["eu-west-1"]
    clients.make_all()
    assert sorted(maker.made) == sorted(REGIONS)
    assert dict(clients.items()) == {region: f"client of {region}" for region in REGIONS}


def test_a_region_outside_the_list_is_a_key_error_and_nothing_is_made():
    maker = Maker()
    clients = _aws.RegionalClients(maker, REGIONS[:2])
    with pytest.raises(KeyError):
        clients["eu-west-1"]  # pylint: disable=pointless-statement
    assert "eu-west-1" not in clients and maker.made == []


def test_workers_asking_at_once_get_one_client_per_region_made_one_at_a_time():
    maker = Maker()
    clients = _aws.RegionalClients(maker, REGIONS)
    got = []
    start = threading.Barrier(12)

    def ask(region):
        start.wait()
        got.append((region, clients[region]))

    threads = [threading.Thread(target=ask, args=(REGIONS[n % len(REGIONS)],)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(maker.made) == sorted(REGIONS)  # each once, though every region was asked twice
    assert maker.most_inside == 1  # a boto3 session is never used by two threads at once
    assert all(client == f"client of {region}" for region, client in got)


def test_a_client_that_cannot_be_made_is_a_bakery_aws_error_and_the_others_are_still_made():
    clients = _aws.RegionalClients(Maker(fail_in="us-west-2"), REGIONS)
    with pytest.raises(_aws.BakeryAWSError) as caught:
        clients.make_all()
    assert "Couldn't connect to AWS" in str(caught.value)
    assert clients["eu-west-1"] == "client of eu-west-1"
    with pytest.raises(_aws.BakeryAWSError):
        clients["us-west-2"]  # pylint: disable=pointless-statement


class FakeModule:
    """What regional_clients reads of an AnsibleAWSModule."""

    _name = "bakery.ami.test"
    region = "us-east-1"
    params = {
        "access_key": "testing", "secret_key": "testing", "session_token": None, "profile": None,
        "endpoint_url": "http://127.0.0.1:1", "aws_ca_bundle": None, "validate_certs": True, "aws_config": None,
        "region": "us-east-1",
    }
    check_mode = False

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs)

    def warn(self, message):
        pass

    def deprecate(self, *args, **kwargs):
        pass


@pytest.mark.parametrize("on_first_use", [False, True])
def test_regional_clients_makes_real_clients_now_or_on_first_use(on_first_use, monkeypatch):
    made = []
    real = _aws.RegionalClients.__init__

    def counting_init(self, make, regions):
        real(self, lambda region: made.append(region) or make(region), regions)

    monkeypatch.setattr(_aws.RegionalClients, "__init__", counting_init)
    clients = _aws.regional_clients(FakeModule(), "ec2", REGIONS[:3], on_first_use=on_first_use)
    assert made == ([] if on_first_use else REGIONS[:3])
    assert clients["us-west-2"].meta.region_name == "us-west-2"
    assert clients["us-west-2"].meta.endpoint_url == "http://127.0.0.1:1"
    assert sorted(made) == sorted(REGIONS[:3] if not on_first_use else ["us-west-2"])


def test_the_data_loader_reads_every_model_file_as_botocore_does_in_plain_dicts(monkeypatch):
    """The process's one data loader parses model files into plain dicts: the same content, in the
    same order, as botocore's own loader gives (which parses them into OrderedDicts, twice as slowly)."""
    import collections

    import botocore.loaders

    monkeypatch.setattr(_aws, "_DATA_LOADER", None)
    monkeypatch.setattr(_aws, "_SESSIONS", {})
    session = _aws._session(None)  # pylint: disable=protected-access
    ours = session._session.get_component("data_loader")  # pylint: disable=protected-access
    theirs = botocore.loaders.Loader()
    assert type(ours.file_loader) is not botocore.loaders.JSONFileLoader  # pylint: disable=unidiomatic-typecheck

    def same(a, b):
        if isinstance(b, dict):
            assert type(a) is dict and list(a) == list(b)  # pylint: disable=unidiomatic-typecheck
            return all(same(a[key], b[key]) for key in b)
        if isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        return a == b

    for service in ("ec2", "ssm", "sts"):
        version = theirs.determine_latest_version(service, "service-2")
        for kind in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
            try:
                expected = theirs.load_service_model(service, kind, version)
            except botocore.exceptions.DataNotFoundError:
                continue
            assert isinstance(expected, collections.OrderedDict)
            assert same(ours.load_service_model(service, kind, version), expected), (service, kind)
    for name in ("endpoints", "partitions", "sdk-default-configuration"):
        assert same(ours.load_data(name), theirs.load_data(name)), name
    assert ours.file_loader.load_file("/nonexistent/model") is None
    client = session.client("ec2", region_name="eu-west-1", aws_access_key_id="-", aws_secret_access_key="-")
    assert client.meta.service_model.operation_model("CopyImage").input_shape.members["SourceImageId"].type_name == "string"


def test_the_process_has_one_session_per_profile_and_its_clients_share_it(monkeypatch, tmp_path):
    """A module's clients, and the next module's in the same process (or in a task worker forked
    from it), come from one session per profile: no second session, no second set of its event
    handlers. Each profile keeps its own session."""
    # pylint: disable=protected-access
    config = tmp_path / "config"
    config.write_text("[profile other]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setattr(_aws, "_SESSIONS", {})
    made = []
    import botocore.session

    real_init = botocore.session.Session.__init__

    def counting_init(self, *args, **kwargs):
        made.append(kwargs.get("profile"))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "__init__", counting_init)
    first = _aws.regional_clients(FakeModule(), "ec2", REGIONS[:2])
    second = _aws.regional_clients(FakeModule(), "ec2", REGIONS[:2])
    assert made == [None]
    assert first["us-west-2"] is not second["us-west-2"]
    assert _aws._session(None) is _aws._session(None)
    other = _aws._session("other")
    assert made == [None, "other"]
    assert other is not _aws._session(None) and other is _aws._session("other")
    assert other._session.get_component("data_loader") is _aws._session(None)._session.get_component("data_loader")
