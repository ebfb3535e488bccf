"""`convener transcripts`: list and show stored conversations."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from convener.cli import main
from convener.ops.settings import OpsSettings
from convener.ops.transcripts import open_store

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


@pytest.fixture
def state(tmp_path, monkeypatch):
    cfg = tmp_path / "convener.toml"
    cfg.write_text(f'[ops]\nstate_dir = "{tmp_path / "state"}"\nnode_id = "pbx-1"\n')
    monkeypatch.delenv("CONVENER_CONFIG", raising=False)

    async def fill() -> None:
        store = await open_store(OpsSettings(state_dir=str(tmp_path / "state"), node_id="pbx-1"))
        await store.start_conversation("conv-a", "1700.1", "lobby", T0)
        await store.add_turn("conv-a", "caller", "Book me a hotel", T0 + timedelta(seconds=1.5))
        await store.add_turn("conv-a", "hotels", "Which city?", T0 + timedelta(seconds=3), floor_holder="hotels")
        await store.end_conversation("conv-a", T0 + timedelta(seconds=20), reason="caller hung up")
        await store.start_conversation("conv-b", "1700.2", "sales", T0 + timedelta(minutes=5))
        await store.close()

    asyncio.run(fill())
    return str(cfg)


def test_list_and_show(state, capsys):
    assert main(["transcripts", "--config", state]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["conversation", "started", "room", "turns", "node", "ended"]
    assert out[1].startswith("conv-b") and "in progress" in out[1]
    assert out[2].startswith("conv-a") and "2026-11-26 09:30:00 UTC" in out[2] and "caller hung up" in out[2]
    assert main(["transcripts", "conv-a", "--config", state]) == 0
    text = capsys.readouterr().out
    assert "conversation conv-a  call 1700.1  room lobby  node pbx-1" in text
    assert "+    1.5s  caller: Book me a hotel" in text
    assert "+    3.0s  hotels [floor: hotels]: Which city?" in text
    assert "ended +20.0s (caller hung up)" in text


def test_json_output(state, capsys):
    assert main(["transcripts", "--json", "--limit", "1", "--config", state]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["conversation_id"] for c in listed] == ["conv-b"]
    assert main(["transcripts", "conv-a", "--json", "--config", state]) == 0
    conv = json.loads(capsys.readouterr().out)
    assert conv["node_id"] == "pbx-1" and conv["end_reason"] == "caller hung up"
    assert [(t["speaker"], t["floor_holder"]) for t in conv["turns"]] == [("caller", None), ("hotels", "hotels")]
    assert conv["turns"][1]["at"] == "2026-11-26T09:30:03+00:00"


def test_unknown_conversation_and_bad_config(state, tmp_path, capsys):
    assert main(["transcripts", "nope", "--config", state]) == 1
    assert "no conversation 'nope'" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[ops]\nlog_format = 'xml'\n")
    assert main(["transcripts", "--config", str(bad)]) == 2
    assert "ops.log_format" in capsys.readouterr().err


def test_purge_command(state, tmp_path, capsys):
    assert main(["transcripts", "--purge", "--config", state]) == 2  # no age given, none configured
    assert "--older-than" in capsys.readouterr().err
    assert main(["transcripts", "--purge", "--older-than", "36500", "--config", state]) == 0
    assert "purged 0 conversation(s)" in capsys.readouterr().out
    assert main(["transcripts", "--purge", "--older-than", "0.001", "--config", state]) == 0
    assert "purged 2 conversation(s)" in capsys.readouterr().out
    assert main(["transcripts", "--config", state]) == 0
    assert "no conversations stored" in capsys.readouterr().out


def test_listing_never_creates_a_store(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CONVENER_CONFIG", raising=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[ops]\nstate_dir = "{tmp_path / "state"}"\n')
    assert main(["transcripts", "--config", str(cfg)]) == 0
    assert "no conversations stored" in capsys.readouterr().out
    assert main(["transcripts", "x", "--config", str(cfg)]) == 1
    assert main(["transcripts", "--purge", "--older-than", "1", "--config", str(cfg)]) == 0
    assert not (tmp_path / "state").exists()
