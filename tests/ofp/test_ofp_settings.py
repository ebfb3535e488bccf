"""The [ofp] settings section: defaults point at the example agents; strict loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from convener.config import load_config
from convener.ofp.settings import OfpSettings
from convener.settings import ConfigError, load_section


def test_defaults_point_at_the_example_agents() -> None:
    s = load_section(OfpSettings, {})
    assert {n: a.url for n, a in s.agents.items()} == {
        "flights": "http://127.0.0.1:8701/ofp",
        "hotels": "http://127.0.0.1:8702/ofp",
        "weather": "http://127.0.0.1:8703/ofp",
    }
    assert all(a.timeout == 4.0 for a in s.agents.values())
    assert s.max_response_bytes == 1024 * 1024 and s.caller_uri == "anonymous"


def test_toml_agents_keep_their_order(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[ofp]\nconvener_agent = "z"\n[ofp.agents.z]\nurl = "https://z.example/ofp"\ntimeout = 2.5\n'
                 '[ofp.agents.a]\nurl = "http://a.example/ofp"\nenabled = false\n')
    cfg = load_config(p, env={})
    assert list(cfg.ofp.agents) == ["z", "a"] and cfg.ofp.agents["z"].timeout == 2.5
    assert cfg.ofp.agents["a"].enabled is False


@pytest.mark.parametrize(
    "data, key",
    [
        ({"agent": {}}, "agent: unknown key"),
        ({"agents": {"x": {"url": "ftp://x"}}}, "agents.x.url"),
        ({"agents": {"x": {"url": "http://x", "timeout": 0}}}, "agents.x.timeout"),
        ({"agents": {"x": {"url": "http://x", "colour": "red"}}}, "agents.x.colour"),
        ({"agents": {"x": {}}}, "agents.x.url: required"),
        ({"convener_agent": "nobody"}, "convener_agent"),
        ({"tag_authority": "not a tag"}, "tag_authority"),
        ({"caller_uri": "phone"}, "caller_uri"),
        ({"max_rounds": 0}, "max_rounds"),
        ({"max_response_bytes": 10}, "max_response_bytes"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_section(OfpSettings, data, "ofp")
