"""The level policy: read from TOML with defaults, checked with located errors, frozen
onto incidents and requests so a reload never changes an escalation already running."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import DEMO, ROOT, Clock
from warnbot.app import App
from warnbot.errors import ConfigError
from warnbot.evaluate import Transition
from warnbot.model import Level, Tier, TierPolicy
from warnbot.settings import TierPolicySettings, load_settings
from warnbot.store.ladder import policy_json, policy_of

FULL = """
[policy."Ⅰ".village]
ack_window_s = 600
repeat_interval_s = 300
repeat_count = 2
voice_after_s = 900
superior_after_s = 1200
duty_officer_after_s = 1800
unreachable_after_s = 3600
muster_s = 1800
muster_roles = ["fire_team"]
"""


def load(tmp_path: Path, text: str) -> TierPolicy:
    path = tmp_path / "warnbot.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path).level_policy(Level.I).tiers[Tier.VILLAGE]


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "warnbot.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    return [p.removeprefix(f"{path}: ") for p in e.value.problems]


def test_the_issue_example_reads_into_every_step(tmp_path: Path) -> None:
    assert load(tmp_path, FULL) == TierPolicy(
        ack_window_s=600,
        repeat_count=2,
        repeat_interval_s=300,
        voice_after_s=900,
        superior_after_s=1200,
        duty_officer_after_s=1800,
        unreachable_after_s=3600,
        muster_s=1800,
        muster_roles=("fire_team",),
    )


def test_only_the_window_is_required_the_rest_has_defaults(tmp_path: Path) -> None:
    policy = load(tmp_path, '[policy."Ⅰ".village]\nack_window_s = 600\n')
    assert (policy.repeat_count, policy.repeat_interval_s, policy.voice_after_s) == (1, 300, None)
    assert policy.superior_s == 900  # after the one reminder's interval, as before
    assert (policy.duty_officer_after_s, policy.unreachable_after_s, policy.muster_s) == (
        None, None, None
    )  # fmt: skip


def test_the_shipped_configurations_are_valid() -> None:
    for path in (ROOT / "config" / "warnbot.toml", DEMO / "warnbot.toml"):
        settings = load_settings(path)
        assert settings.level_policy(Level.I).tiers, path


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("voice_after_s = 500", "policy.Ⅰ.village.voice_after_s: Value error, must not come "
         "before ack_window_s (600 s)"),
        ("superior_after_s = 800", "policy.Ⅰ.village.superior_after_s: Value error, must not "
         "come before voice_after_s (900 s)"),
        ("duty_officer_after_s = 1000", "policy.Ⅰ.village.duty_officer_after_s: Value error, "
         "must not come before superior_after_s (1200 s)"),
        ("unreachable_after_s = 1700", "policy.Ⅰ.village.unreachable_after_s: Value error, "
         "must not come before duty_officer_after_s (1800 s)"),
        ("repeat_count = -1", "policy.Ⅰ.village.repeat_count: Input should be greater than or "
         "equal to 0"),
        ("muster_s = 0", "policy.Ⅰ.village.muster_s: Input should be greater than 0"),
        ("voice_after = 900", "policy.Ⅰ.village.voice_after: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_each_bad_key_is_reported_with_file_and_dotted_location(
    tmp_path: Path, line: str, problem: str
) -> None:
    key = line.split(" =")[0]
    text = "\n".join(ln for ln in FULL.splitlines() if not ln.startswith(f"{key} ")) + f"\n{line}\n"
    assert problems(tmp_path, text) == [problem]


def test_a_report_before_the_default_superior_time_says_how_to_tell_earlier(
    tmp_path: Path,
) -> None:
    text = '[policy."Ⅱ".county]\nack_window_s = 600\nduty_officer_after_s = 700\n'
    (problem,) = problems(tmp_path, text)
    assert problem.startswith("policy.Ⅱ.county.duty_officer_after_s: Value error, must not come")
    assert "(900 s" in problem and "superior_after_s" in problem


def test_an_unknown_level_or_tier_is_reported(tmp_path: Path) -> None:
    assert problems(tmp_path, '[policy."Ⅴ".village]\nack_window_s = 1\n')[0].startswith("policy:")
    (bad_tier,) = problems(tmp_path, '[policy."Ⅰ".hamlet]\nack_window_s = 1\n')
    assert bad_tier.startswith("policy.Ⅰ.hamlet")


def test_a_policy_round_trips_through_its_stored_form_and_old_rows_get_defaults() -> None:
    policy = load_settings(ROOT / "config" / "warnbot.toml").level_policy(Level.I)
    assert policy_of(policy_json(policy)) == policy
    old_row = {"village": {"ack_window_s": 60, "repeat_count": 1, "repeat_interval_s": 30}}
    assert policy_of(old_row).tiers[Tier.VILLAGE] == TierPolicy(60, 1, 30)


def test_muster_applies_to_the_roles_it_names_or_to_everyone() -> None:
    named = TierPolicy(600, muster_s=1800, muster_roles=("fire_team",))
    assert named.musters(("fire_team", "grid_worker")) and not named.musters(("grid_worker",))
    assert TierPolicy(600, muster_s=1800).musters(())
    assert not TierPolicy(600).musters(("fire_team",))


async def test_a_config_reload_never_changes_a_ladder_already_running(
    app: App, clock: Clock
) -> None:
    slow = TierPolicySettings(ack_window_s=600, repeat_count=1, repeat_interval_s=300)
    app.settings = app.settings.model_copy(update={"policy": {"Ⅱ": {Tier.VILLAGE: slow}}})
    t = Transition("open", "暴雨@449901", "暴雨", "449901", Level.II, "示例县暴雨", "test")
    await app.apply(t, None, source="test")
    fast = TierPolicySettings(ack_window_s=1, repeat_count=0, unreachable_after_s=2)
    app.settings = app.settings.model_copy(update={"policy": {"Ⅱ": {Tier.VILLAGE: fast}}})
    await app.reload_people()
    clock.advance(599)
    assert await app.tick() == []  # the new window (1 s) and give-up (2 s) are not used
    clock.advance(1)
    assert {s.kind for s in await app.tick()} == {"repeat"}
    clock.now += timedelta(seconds=300)
    assert {s.kind for s in await app.tick()} == {"superior"}
    incident = await app.store.incident(1)
    assert incident is not None and incident.policy.tiers[Tier.VILLAGE].ack_window_s == 600
