"""results/timing.csv: CPU and wall seconds per job and per rule from Snakemake's benchmark files."""

from blurbench.timing import gather

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(path, wall, cpu):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:01\t1\t1\t1\t1\t0\t0\t1\t{cpu}\n")
    return path


def test_jobs_and_rule_totals_heaviest_rule_first(tmp_path):
    files = [bench(tmp_path / "train" / "d" / "l2" / "seed0.tsv", 10.0, 8.0),
             bench(tmp_path / "train" / "d" / "blur" / "seed0.tsv", 12.0, 9.0),
             bench(tmp_path / "evaluate" / "d" / "l2" / "seed0.tsv", 5.0, 4.0),
             bench(tmp_path / "comparison.tsv", 1.0, 0.5)]
    table = gather(files, tmp_path)
    totals = table[table["target"] == "total"]
    assert list(totals["rule"]) == ["train", "evaluate", "comparison"]
    assert totals.set_index("rule").loc["train", "cpu_s"] == 17.0
    jobs = table[(table["rule"] == "train") & (table["target"] != "total")]
    assert list(jobs["target"]) == ["d/blur/seed0", "d/l2/seed0"]  # CPU-heaviest first
