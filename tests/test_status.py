"""What `warnbot status` tells an officer: the queue before a blast, and per incident
the boards, the reports back summed per region and the transfer lists."""

from __future__ import annotations

from tests.conftest import DEMO, T0
from tests.factories import person
from warnbot.app import App
from warnbot.ingest import cap
from warnbot.model import Message
from warnbot.settings import RateLimit, Settings
from warnbot.status import incident_lines, queue_lines, roster_line
from warnbot.store import Store
from warnbot.transfers import TransferEntry

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


async def test_the_queue_shows_segments_cost_and_drain_time_per_channel(store: Store) -> None:
    body = (
        "【提示短信】" + "台风“示例”将于今夜登陆，请居民减少外出，远离危险区域。" * 3
    )  # 86 chars: 2 segments
    await store.enqueue(
        [Message(f"p{i}", "twilio", f"+8617000001{i:03d}", body, priority=1) for i in range(300)],
        T0,
    )
    settings = Settings(
        sms_channel="twilio",
        rate_limits={"twilio": RateLimit(rate_per_s=10, per_segment=True, price_per_segment=0.05)},
    )
    (line,) = await queue_lines(store, settings)
    assert line == "twilio: 待发 queued 300 条 messages, 600 段 segments, 30.00, 1.0 分钟 min"


async def test_a_queue_paced_by_a_shared_account_shows_under_each_of_its_channels(
    store: Store,
) -> None:
    await store.enqueue(
        [Message(f"v{i}", "voice", f"+861700000{i:04d}", "电话") for i in range(60)], T0
    )
    settings = Settings(
        sms_channel="twilio",
        rate_limits={"account": RateLimit(rate_per_s=1, channels=["twilio", "voice"])},
    )
    (line,) = await queue_lines(store, settings)
    assert line.startswith("voice: 待发 queued 60 条 messages, 60 段 segments, 0.00, 1.0 分钟")


async def _incident_text(app: App) -> str:
    incident = await app.store.incident(1)
    assert incident is not None
    return "\n".join(await incident_lines(app.store, incident, app.clock(), app.regions))


async def test_an_incident_shows_its_reports_back_summed_up_the_region_tree(app: App) -> None:
    await app.ingest("demo", cap.parse(FEED))
    await app.sms_reply(app.people["V01"].phones[0], "1 已转移12户30人")
    await app.sms_reply(app.people["V02"].phones[0], "1 转移3户8人，出动2支队伍")
    text = await _incident_text(app)
    assert "回执汇总 reports back:" in text
    township = next(line for line in text.splitlines() if "  449901001 " in line)
    assert "转移 15 户 38 人 moved" in township and "出动 2 支队伍" in township
    assert "(2 条 reports)" in township
    county = next(line for line in text.splitlines() if "  449901 示例县" in line)
    assert "转移 15 户 38 人" in county
    assert "449900" not in text  # the city above the county's incident only repeats it


async def test_an_incident_shows_its_transfer_lists_and_what_is_still_to_move(app: App) -> None:
    await app.store.sync_transfer_lists(
        [
            TransferEntry("V01", "1", "王某某", 3, "沿村道向东", "村委会"),
            TransferEntry("V01", "2", "李某某", 1, "沿河堤北行", "村小学"),
        ]
    )
    await app.ingest("demo", cap.parse(FEED))
    await app.mark_moved(1, "V01", ["1"], "值班员张三")
    text = await _incident_text(app)
    assert "转移清单 transfer lists: 已转移 1/2 户 moved, 3/4 人 people" in text
    assert "2号 李某某 1人 → 村小学 未转移 not moved" in text
    assert "1号 王某某" not in text


async def test_an_incident_without_reports_or_lists_shows_neither(app: App) -> None:
    await app.ingest("demo", cap.parse(FEED))
    text = await _incident_text(app)
    assert "叫应:" in text and "回执汇总" not in text and "转移清单" not in text


async def test_the_roster_line_says_which_version_the_daemons_use(store: Store) -> None:
    assert roster_line(await store.roster_state()) == "名册 roster: 未导入 none imported"
    await store.import_roster([person("Z01")], "a" * 64, "名册.csv", "import", T0)
    assert roster_line(await store.roster_state()) == (
        "名册 roster: 版本 version 1, 导入 import 名册.csv (2026-08-15 06:15:00Z)"
    )
