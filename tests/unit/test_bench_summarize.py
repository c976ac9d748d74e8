"""Result files -> Markdown with ratios and SVG charts; compare runs one scenario against several targets."""

from __future__ import annotations

import sys
import xml.dom.minidom
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks import cli, plots, summarize


def result_file(path: Path, rates: list[float], p50_us: float, call: str = "SendMessageBatch",
                nodes: dict[str, float] | None = None) -> Path:
    runs = [{"scenario": "sqs-cycle", "unit": "msgs", "processes": 2, "connections_per_process": 8, "rate": None,
             "rate_per_s": r, "timeline": [[1.0, r * 0.9], [2.0, r]]} for r in rates]
    median: dict[str, Any] = {"runs": len(rates), "rate_per_s": sorted(rates)[len(rates) // 2],
                              "server_cpu_us_per_unit": 50.0, "client_cpu_us_per_unit": 10.0, "errors": 0,
                              "node_cpu_us_per_unit": nodes,
                              "latency_us": {call: {"p50": p50_us, "p95": 2 * p50_us, "p99": 3 * p50_us,
                                                    "p99.9": 4 * p50_us}}}
    path.write_bytes(orjson.dumps({"median": median, "runs": runs}))
    return path


def test_table_gives_medians_ratios_and_the_key_call(tmp_path: Path) -> None:
    a = result_file(tmp_path / "a.json", [1000.0, 3000.0, 2000.0], 1500.0, nodes={"n1": 40.0, "all": 90.0})
    b = result_file(tmp_path / "b.json", [500.0], 9000.0, call="put-to-get")
    table = summarize.markdown_table(summarize.load([a, b], ["raftmq"]))
    rows = table.splitlines()
    assert len(rows) == 4 and rows[1].count("---") == rows[0].count("|") - 1
    assert rows[2].startswith("| raftmq | sqs-cycle | 2 x 8 | 2,000 (1,000; 3,000; 2,000) | 1.00 | 50.0 | 90.0 |")
    assert rows[2].endswith("| SendMessageBatch | 1.5 / 4.5 / 6.0 | - |")
    assert rows[3].startswith("| b | sqs-cycle | 2 x 8 | 500 (500) | 0.25 |")  # label from the file name
    assert "| put-to-get | 9.0 / 27.0 / 36.0 |" in rows[3]  # end to end preferred over any call


def test_table_shows_the_kinesis_consumer_lag(tmp_path: Path) -> None:
    a = result_file(tmp_path / "a.json", [1000.0], 1500.0, call="put-to-get")
    data = orjson.loads(a.read_bytes())
    data["median"]["latency_us"]["consumer-lag"] = {"p50": 0.0, "p95": 1000.0, "p99": 25_000.0, "p99.9": 9e4}
    a.write_bytes(orjson.dumps(data))
    row = summarize.markdown_table(summarize.load([a])).splitlines()[2]
    assert row.endswith("| put-to-get | 1.5 / 4.5 / 6.0 | 0.0 / 25.0 |")


def test_write_makes_markdown_and_well_formed_svgs(tmp_path: Path) -> None:
    a = result_file(tmp_path / "a.json", [1000.0, 3000.0, 2000.0], 1500.0)
    table = summarize.write(summarize.load([a]), tmp_path / "out")
    assert (tmp_path / "out" / "summary.md").read_text() == table + "\n"
    timeline = (tmp_path / "out" / "timeline.svg").read_text()
    xml.dom.minidom.parseString(timeline)
    xml.dom.minidom.parseString((tmp_path / "out" / "latency.svg").read_text())
    assert timeline.count("<polyline") == 1 and ">a</text>" in timeline  # the median run (2,000/s), labelled


def test_chart_points_sit_where_their_values_are() -> None:
    svg = plots.timeline_svg({"x": [(0.0, 0.0), (10.0, 1000.0)]}, "t", "msgs")
    left, top = plots.LEFT, plots.TOP
    right, bottom = plots.WIDTH - plots.RIGHT, plots.HEIGHT - plots.BOTTOM
    assert f'points="{left:.1f},{bottom:.1f} {right:.1f},{top:.1f}"' in svg  # both axes end at the max
    svg = plots.percentiles_svg({"x": {"p50": 1000.0, "p99": 100_000.0}}, "t")  # 1 ms and 100 ms: two decades
    assert f"{bottom:.1f}" in svg.split("<polyline")[1].split("/>")[0]
    assert f",{top:.1f}" in svg.split("<polyline")[1].split("/>")[0]
    assert plots._nice_max(3.2) == 4 and plots._nice_max(54_000) == 60_000
    assert plots._nice_max(1000) == 1000 and plots._nice_max(0) == 1


def test_peers_are_named_by_where_they_run() -> None:
    assert cli.where_args("spawn-server") == ["--spawn-server"]
    assert cli.where_args("cluster:3") == ["--spawn-cluster", "3"]
    assert cli.where_args("cluster-spread:3") == ["--spawn-cluster", "3", "--spread"]
    assert cli.where_args("cmd:moto_server -p {port}") == ["--spawn-cmd", "moto_server -p {port}"]
    assert cli.where_args("http://127.0.0.1:4566") == ["--target", "http://127.0.0.1:4566"]
    with pytest.raises(SystemExit):
        cli.where_args("somewhere")


def test_compare_runs_every_peer_with_the_same_options_and_reports(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fake = f"cmd:{sys.executable} -m benchmarks.fakesqs --port {{port}}"
    code = cli.main(["compare", "sqs-cycle", "--peer", f"one={fake}", "--peer", f"two={fake} --receive-count 5",
                     "--out", str(tmp_path), "--", "--duration", "0.4", "--processes", "1", "--connections", "2",
                     "--no-progress"])
    assert code == 0
    one, two = (orjson.loads((tmp_path / f"{n}.json").read_bytes()) for n in ("one", "two"))
    assert one["runs"][0]["duration_s"] == two["runs"][0]["duration_s"] == 0.4
    assert one["median"]["rate_per_s"] > 0 and two["median"]["rate_per_s"] > 0
    out = capsys.readouterr().out
    assert "| one | sqs-cycle | 1 x 2 |" in out and "| two | sqs-cycle | 1 x 2 |" in out
    assert (tmp_path / "timeline.svg").exists() and (tmp_path / "summary.md").exists()


def test_write_also_draws_png_charts_when_matplotlib_is_installed(tmp_path: Path) -> None:
    import struct

    from benchmarks import pngplots

    assert pngplots.available()  # matplotlib is in the test extra, so this path always runs in CI
    a = result_file(tmp_path / "a.json", [1000.0, 3000.0], 1500.0)
    b = result_file(tmp_path / "b.json", [500.0], 9000.0)
    summarize.write(summarize.load([a, b]), tmp_path / "out")
    for name in ("timeline.png", "latency.png"):
        data = (tmp_path / "out" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert 600 <= width <= 1400 and 300 <= height <= 700  # a chart with its legend beside it, not a blank
        assert len(data) > 10_000
