"""The sandbox's configuration: a cached, running sandbox takes a changed file by reload."""

from __future__ import annotations

from pathlib import Path

from convener.sandbox.runtime import SIP_USERS, Credentials, Sandbox, reload_plan

CREDS = Credentials(ari_user="convener", ari_password="a-pass", sip_user="phone1", sip_password="s-pass")


def test_pjsip_has_an_endpoint_auth_and_aor_per_phone(tmp_path: Path) -> None:
    sb = Sandbox(base=tmp_path)
    sb.write_config(CREDS)
    text = (sb.paths.root / "etc/asterisk/pjsip.conf").read_text()
    for user in SIP_USERS:
        assert f"[{user}](phone)" in text and f"[{user}](phone-aor)" in text
        assert f"[{user}-auth](phone-auth)" in text and f"username = {user}" in text
    assert "password = s-pass" in text and "{" not in text


def test_only_changed_files_are_reported_and_reloaded(tmp_path: Path) -> None:
    sb = Sandbox(base=tmp_path)
    first = sb.write_config(CREDS)
    assert sorted(first) == sorted(["asterisk.conf", "modules.conf", "logger.conf", "http.conf",
                                    "ari.conf", "extensions.conf", "pjsip.conf", "rtp.conf"])
    assert sb.write_config(CREDS) == []
    etc = sb.paths.root / "etc/asterisk"
    (etc / "pjsip.conf").write_text("[phone1]\ntype = endpoint\n")  # a sandbox cached before phone2
    (etc / "stale.conf").write_text("x")
    assert sb.write_config(CREDS) == ["pjsip.conf"]
    assert not (etc / "stale.conf").exists()
    assert "[phone3](phone)" in (etc / "pjsip.conf").read_text()


def test_reload_plan() -> None:
    assert reload_plan(["pjsip.conf", "extensions.conf"]) == (
        ["module reload res_pjsip.so", "dialplan reload"], [])
    assert reload_plan(["modules.conf", "rtp.conf"]) == (["module reload res_rtp_asterisk.so"],
                                                         ["modules.conf"])
    assert reload_plan([]) == ([], [])
