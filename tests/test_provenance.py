"""provenance.json's times bracket the work they describe."""

import datetime
import json
import time

from blurbench import provenance


def test_finished_is_stamped_when_written_not_when_collected(tmp_path):
    started = provenance.now()
    record = provenance.collect("cpu", started)
    time.sleep(1.2)  # the job's work, between collecting the fields and writing them
    provenance.write(tmp_path / "p.json", record)
    written = json.loads((tmp_path / "p.json").read_text())
    gap = (datetime.datetime.fromisoformat(written["finished"])
           - datetime.datetime.fromisoformat(written["started"])).total_seconds()
    assert gap >= 1, written
    assert set(written) == set(provenance.FIELDS)
