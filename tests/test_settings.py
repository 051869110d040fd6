"""Tests for warnbot.settings: the TOML file, WARNBOT_* overrides, secrets, and errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import DEMO, ROOT
from warnbot.errors import ConfigError
from warnbot.model import Level, LevelPolicy, Tier, TierPolicy
from warnbot.settings import Settings, load_settings

CONFIG = ROOT / "config" / "warnbot.toml"
SECRET = "s3cr3t-auth-token-value"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WARNBOT_* variable of the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith("WARNBOT_"):
            monkeypatch.delenv(name)


def toml(tmp_path: Path, text: str, name: str = "warnbot.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path | None = None, **overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, **overrides)
    return caught.value.problems


# --- the shipped files ---------------------------------------------------------------------


def test_the_example_config_loads() -> None:
    s = load_settings(CONFIG)
    assert (s.language, s.sms_channel, s.web.port) == ("zh", "console", 8080)
    assert [r.name for r in s.rules] == ["暴雨橙色 → Ⅱ级", "暴雨红色 → Ⅰ级"]
    assert s.twilio.auth_token is None


def test_the_example_config_freezes_each_levels_policy() -> None:
    s = load_settings(CONFIG)
    assert s.level_policy(Level.II) == LevelPolicy({
        Tier.COUNTY: TierPolicy(ack_window_s=900, repeat_count=1, repeat_interval_s=600,
                                superior_after_s=1500, duty_officer_after_s=2400),
        Tier.TOWNSHIP: TierPolicy(ack_window_s=1200, repeat_count=1, repeat_interval_s=600,
                                  duty_officer_after_s=3000),
        Tier.VILLAGE: TierPolicy(ack_window_s=1800, repeat_count=1, repeat_interval_s=600,
                                 duty_officer_after_s=3600),
    })  # fmt: skip
    assert s.level_policy(Level.IV) == LevelPolicy({Tier.COUNTY: TierPolicy(ack_window_s=3600)})


def test_a_level_without_a_policy_reaches_no_tier(tmp_path: Path) -> None:
    assert load_settings(toml(tmp_path, "")).level_policy(Level.I) == LevelPolicy({})


def test_the_demo_config_loads() -> None:
    s = load_settings(DEMO / "warnbot.toml")
    assert s.sms_channel == "twilio"
    assert s.twilio.account_sid == "AC" + "a" * 32
    assert s.level_policy(Level.II).tiers[Tier.VILLAGE] == TierPolicy(
        3, 1, 2, voice_after_s=4, superior_after_s=6, duty_officer_after_s=7, unreachable_after_s=9
    )


def test_relative_paths_in_the_example_config_resolve_next_to_it() -> None:
    s = load_settings(CONFIG)
    assert s.roster == ROOT / "config" / "demo" / "roster.csv"
    assert s.roster.is_file()
    (feed,) = s.feeds
    assert feed.url == f"file:{ROOT / 'config' / 'demo' / 'feed' / 'rainstorm_orange.xml'}"
    assert Path(feed.url.removeprefix("file:")).is_file()


def test_relative_paths_resolve_against_the_config_files_directory_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(
        tmp_path,
        'roster = "people.csv"\ntemplates_dir = "tpl"\n'
        '[[feeds]]\nname = "a"\nurl = "file:feeds/a.xml"\n'
        '[[feeds]]\nname = "b"\nurl = "https://example.org/cap.xml"\n'
        '[[feeds]]\nname = "c"\nurl = "file:/srv/cap/c.xml"\n',
        name="office/warnbot.toml",
    )
    monkeypatch.chdir(tmp_path)
    s = load_settings(Path("office/warnbot.toml"))
    assert path.is_file()
    assert s.roster == Path("office/people.csv")
    assert s.templates_dir == Path("office/tpl")
    assert [f.url for f in s.feeds] == [
        "file:office/feeds/a.xml", "https://example.org/cap.xml", "file:/srv/cap/c.xml",
    ]  # fmt: skip


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    s = load_settings(toml(tmp_path, 'roster = "/srv/warnbot/roster.csv"\n'))
    assert s.roster == Path("/srv/warnbot/roster.csv")


def test_warnbot_config_names_the_file_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNBOT_CONFIG", str(DEMO / "warnbot.toml"))
    assert load_settings().sms_channel == "twilio"


def test_without_any_file_the_defaults_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert (s.sms_channel, s.rules, s.feeds, s.roster) == ("console", [], [], None)


# --- the environment ---------------------------------------------------------------------


def test_warnbot_database_url_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNBOT_DATABASE_URL", "postgresql+asyncpg://warnbot@db/warnbot")
    assert load_settings(CONFIG).database_url == "postgresql+asyncpg://warnbot@db/warnbot"


def test_a_nested_key_is_set_with_a_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNBOT_TWILIO__AUTH_TOKEN", SECRET)
    s = load_settings(DEMO / "warnbot.toml")
    assert s.twilio.auth_token is not None
    assert s.twilio.auth_token.get_secret_value() == SECRET
    assert s.twilio.account_sid == "AC" + "a" * 32  # the rest of [twilio] still from the file


def test_the_environment_beats_the_toml_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNBOT_WEB__PORT", "9090")
    monkeypatch.setenv("WARNBOT_LANGUAGE", "en")
    monkeypatch.setenv("WARNBOT_SMS_CHANNEL", "twilio")
    s = load_settings(CONFIG)
    assert (s.web.port, s.language, s.sms_channel) == (9090, "en", "twilio")
    assert s.web.host == "127.0.0.1"


def test_the_environment_beats_overrides_given_in_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNBOT_DATABASE_URL", "sqlite+aiosqlite:///from-env.db")
    s = load_settings(CONFIG, database_url="sqlite+aiosqlite:///from-code.db")
    assert s.database_url == "sqlite+aiosqlite:///from-env.db"


def test_an_invalid_environment_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNBOT_WEB__PORT", "99999")
    (problem,) = problems(CONFIG)
    assert problem.startswith(f"{CONFIG}: web.port: ")


# --- secrets -------------------------------------------------------------------------------


def test_a_secret_written_in_the_toml_file_is_refused_naming_the_key_and_file(
    tmp_path: Path,
) -> None:
    path = toml(tmp_path, f'[twilio]\naccount_sid = ""\nauth_token = "{SECRET}"\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: twilio.auth_token: secrets are not read from the config")
    assert "WARNBOT_" in problem
    assert SECRET not in problem


def test_a_link_secret_written_in_the_toml_file_is_refused(tmp_path: Path) -> None:
    path = toml(tmp_path, '[web]\nlink_secret = "abc"\n[twilio]\nauth_token = "x"\n')
    assert [p.split(": secrets")[0] for p in problems(path)] == [
        f"{path}: twilio.auth_token", f"{path}: web.link_secret",
    ]  # fmt: skip


def test_the_secrets_file_supplies_the_auth_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text(
        f"WARNBOT_TWILIO__AUTH_TOKEN={SECRET}\nWARNBOT_WEB__LINK_SECRET=lk\n", encoding="utf-8"
    )
    monkeypatch.setenv("WARNBOT_SECRETS_FILE", str(secrets))
    s = load_settings(DEMO / "warnbot.toml")
    assert s.twilio.auth_token is not None and s.web.link_secret is not None
    assert s.twilio.auth_token.get_secret_value() == SECRET
    assert s.web.link_secret.get_secret_value() == "lk"


def test_the_environment_beats_the_secrets_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("WARNBOT_TWILIO__AUTH_TOKEN=from-file\n", encoding="utf-8")
    monkeypatch.setenv("WARNBOT_SECRETS_FILE", str(secrets))
    monkeypatch.setenv("WARNBOT_TWILIO__AUTH_TOKEN", "from-env")
    token = load_settings(DEMO / "warnbot.toml").twilio.auth_token
    assert token is not None and token.get_secret_value() == "from-env"


def test_the_secrets_file_beats_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("WARNBOT_WEB__PORT=7070\n", encoding="utf-8")
    monkeypatch.setenv("WARNBOT_SECRETS_FILE", str(secrets))
    assert load_settings(CONFIG).web.port == 7070


def settings_with_secret(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WARNBOT_TWILIO__AUTH_TOKEN", SECRET)
    monkeypatch.setenv("WARNBOT_WEB__LINK_SECRET", SECRET + "-link")
    return load_settings(DEMO / "warnbot.toml")


def test_a_secret_never_appears_in_the_repr_or_str_of_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = settings_with_secret(monkeypatch)
    for text in (repr(s), str(s), repr(s.twilio), str(s.twilio), repr(s.web)):
        assert SECRET not in text
    assert "**********" in repr(s.twilio)


def test_a_secret_never_appears_in_a_json_dump_of_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SECRET not in settings_with_secret(monkeypatch).model_dump_json()


# --- invalid files -------------------------------------------------------------------------


def test_every_invalid_value_is_reported_at_once_as_file_dotted_key_message(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        "[web]\nport = 99999\n"
        '[[rules]]\nname = "x"\nhazard = "暴雨"\nevents = ["暴雨"]\n'
        'region_codes = ["449900"]\nlevel = "V"\n',
    )
    level, port = sorted(problems(path))
    assert port == f"{path}: web.port: Input should be less than or equal to 65535"
    assert level == f"{path}: rules.0.level: rule 'x': Value error, unknown response level 'V'"


def test_a_secret_and_invalid_values_are_reported_together(tmp_path: Path) -> None:
    path = toml(tmp_path, 'outbox_tick_s = 0\n[twilio]\nauth_token = "x"\n')
    keys = [p.split(": ")[1] for p in problems(path)]
    assert keys == ["twilio.auth_token", "outbox_tick_s"]


def test_an_unknown_key_is_reported(tmp_path: Path) -> None:
    path = toml(tmp_path, 'datbase_url = "sqlite://"\n')
    assert problems(path) == [f"{path}: datbase_url: Extra inputs are not permitted"]


def test_an_unknown_sms_channel_is_reported(tmp_path: Path) -> None:
    (problem,) = problems(toml(tmp_path, 'sms_channel = "pigeon"\n'))
    assert ": sms_channel: " in problem


def test_a_rule_with_a_malformed_region_code_is_refused_at_load(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        '[[rules]]\nname = "x"\nhazard = "暴雨"\nevents = ["暴雨"]\n'
        'region_codes = ["449900", "4499"]\nlevel = "Ⅱ"\n',
    )
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: rules.0.region_codes: ")
    assert "'4499'" in problem


def test_a_rule_without_events_is_refused(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        '[[rules]]\nname = "x"\nhazard = "暴雨"\nevents = []\n'
        'region_codes = ["449900"]\nlevel = "Ⅱ"\n',
    )
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: rules.0.events: ")


@pytest.mark.parametrize("level", ["I", "Ⅰ", "1", "Ⅰ级"])
def test_a_rule_level_may_be_written_as_the_office_writes_it(tmp_path: Path, level: str) -> None:
    path = toml(
        tmp_path,
        '[[rules]]\nname = "x"\nhazard = "暴雨"\nevents = ["暴雨"]\n'
        f'region_codes = ["449900"]\nlevel = "{level}"\n',
    )
    assert load_settings(path).rules[0].level is Level.I


def test_a_policy_for_an_unknown_level_is_reported(tmp_path: Path) -> None:
    (problem,) = problems(toml(tmp_path, '[policy."Ⅴ".county]\nack_window_s = 60\n'))
    assert ": policy: " in problem


def test_a_policy_for_an_unknown_tier_is_reported(tmp_path: Path) -> None:
    (problem,) = problems(toml(tmp_path, '[policy."Ⅱ".province]\nack_window_s = 60\n'))
    assert ": policy.Ⅱ.province" in problem


def test_a_tier_policy_needs_a_positive_ack_window(tmp_path: Path) -> None:
    (problem,) = problems(toml(tmp_path, '[policy."Ⅱ".county]\nack_window_s = 0\n'))
    assert problem.endswith("policy.Ⅱ.county.ack_window_s: Input should be greater than 0")


def test_a_toml_syntax_error_is_reported_with_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, "[web\nport = 1\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: ")


def test_a_missing_config_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    assert problems(path) == [f"{path}: cannot read: No such file or directory"]


def test_a_trailing_slash_on_the_public_url_is_dropped(tmp_path: Path) -> None:
    s = load_settings(toml(tmp_path, '[web]\npublic_url = "https://warnbot.example.org/"\n'))
    assert s.web.public_url == "https://warnbot.example.org"


@pytest.mark.parametrize("region", ["ZZ", "XX", "AA"])
def test_a_phone_region_phonenumbers_does_not_know_is_a_clear_error(
    tmp_path: Path, region: str
) -> None:
    path = toml(tmp_path, f'phone_region = "{region}"\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: phone_region:") and f"unknown phone region {region!r}" in (
        problem
    )


def test_a_known_phone_region_loads() -> None:
    assert load_settings(None, phone_region="HK").phone_region == "HK"
