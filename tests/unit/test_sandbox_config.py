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


def test_a_named_instance_has_its_own_folders_ports_and_state(tmp_path: Path) -> None:
    from convener.sandbox.runtime import instance_ports

    sb = Sandbox(base=tmp_path, instance="b")
    creds = sb.credentials()
    assert (creds.ari_port, creds.sip_port, creds.rtp_start, creds.rtp_end) == (8089, 5062, 31000, 31999)
    assert sb.paths.credentials_file == tmp_path / "instances" / "b" / "credentials.json"
    assert instance_ports("") == {"ari_port": 8088, "sip_port": 5060, "rtp_start": 30000, "rtp_end": 30999}
    sb.write_config(creds)
    etc = sb.paths.root / "etc" / "asterisk-b"
    conf = (etc / "asterisk.conf").read_text()
    for own in ("astetcdir => /etc/asterisk-b", "astrundir => /var/run/asterisk-b",
                "astdbdir => /var/lib/asterisk-b", "astlogdir => /var/log/asterisk-b",
                "astspooldir => /var/spool/asterisk-b"):
        assert own in conf
    assert "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules" in conf  # shared
    assert "bindport = 8089" in (etc / "http.conf").read_text()
    assert "bind = 127.0.0.1:5062" in (etc / "pjsip.conf").read_text()
    assert "rtpstart = 31000" in (etc / "rtp.conf").read_text()
    assert not (sb.paths.root / "etc" / "asterisk").exists(), "the default instance's folder is untouched"
    assert sb._asterisk("-rx", "x")[3:5] == ["-C", "/etc/asterisk-b/asterisk.conf"]


def test_the_default_instance_keeps_its_folders_and_command(tmp_path: Path) -> None:
    sb = Sandbox(base=tmp_path)
    sb.write_config(CREDS)
    assert "astetcdir => /etc/asterisk\n" in (sb.paths.root / "etc/asterisk/asterisk.conf").read_text()
    assert "rtpstart = 30000" in (sb.paths.root / "etc/asterisk/rtp.conf").read_text()
    assert sb._asterisk("-rx", "x") == ["chroot", str(sb.paths.root), "/usr/sbin/asterisk", "-rx", "x"]
    assert sb.paths.state_file == tmp_path / "state.json"


def test_instance_names_are_checked(tmp_path: Path) -> None:
    import pytest

    for bad in ("a", "bb", "B", "../x"):
        with pytest.raises(ValueError, match="one letter from b to j"):
            Sandbox(base=tmp_path, instance=bad)
