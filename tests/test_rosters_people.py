"""Tests for warnbot.rosters.people: CSV/XLSX/YAML rosters, every bad row as FILE:LINE."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DEMO, ROOT
from tests.test_rosters_tablefile import workbook
from warnbot.errors import ConfigError
from warnbot.model import Responder, Tier
from warnbot.regions import load_tree
from warnbot.rosters import load

ZH_HEADER = "编号,姓名,层级,行政区划代码,手机号码,角色,语言,上级编号"
EN_HEADER = "key,name,tier,region_code,phones,roles,language,superior"
GOOD_ROWS = [
    "X01,陈立新,县,449901,+8617000000201,administrative,zh,",
    "T01,吴静安,乡镇,449901001,13800138001,administrative,zh,X01",
    "V01,王小川,村,449901001001,+86-138-0013-8002,grid_worker,zh,T01",
]


def csv_file(
    tmp_path: Path,
    *rows: str,
    header: str = ZH_HEADER,
    name: str = "roster.csv",
    encoding: str = "utf-8",
) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding=encoding)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path)
    return caught.value.problems


def one_problem(path: Path) -> str:
    (problem,) = problems(path)
    return problem


# --- good rosters --------------------------------------------------------------------------


def test_the_demo_roster_loads_all_twelve_people() -> None:
    people = load(DEMO / "roster.csv")
    assert len(people) == 12
    assert [p.key for p in people][:3] == ["D01", "C01", "X01"]


def test_the_demo_roster_reads_every_field_of_a_row() -> None:
    people = {p.key: p for p in load(DEMO / "roster.csv")}
    assert people["T03"] == Responder(
        key="T03", name="Alex Morgan (demo)", tier=Tier.TOWNSHIP, region_code="449901003",
        phones=("+8617000000303",), roles=("technical",), language="en", superior="X02",
    )  # fmt: skip
    assert people["D01"].roles == ("duty_officer",)
    assert people["C01"].superior is None
    assert {p.tier for p in people.values()} == set(Tier)


def test_english_headers_load_the_same_people(tmp_path: Path) -> None:
    zh = load(csv_file(tmp_path, *GOOD_ROWS, name="zh.csv"))
    en = load(csv_file(tmp_path, *GOOD_ROWS, header=EN_HEADER, name="en.csv"))
    assert zh == en
    assert [p.key for p in en] == ["X01", "T01", "V01"]


def test_header_aliases_in_any_case_and_with_spaces_are_understood(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path, "X01,陈立新,county,449901,13800138001", header=" ID , Name ,TIER,Region,Phone"
    )
    (person,) = load(path)
    assert (person.key, person.tier, person.phones) == ("X01", Tier.COUNTY, ("+8613800138001",))


def test_optional_columns_default_to_chinese_no_roles_no_superior(tmp_path: Path) -> None:
    (person,) = load(
        csv_file(
            tmp_path, "X01,陈立新,县,449901,13800138001", header="编号,姓名,层级,行政区划代码,电话"
        )
    )
    assert (person.language, person.roles, person.superior) == ("zh", (), None)


def test_phones_are_normalised_to_e164_and_several_may_be_given(tmp_path: Path) -> None:
    (person,) = load(csv_file(tmp_path, 'X01,陈立新,县,449901,"138-0013-8001；+86-139-0013-8002"'))
    assert person.phones == ("+8613800138001", "+8613900138002")


def test_several_roles_are_split_on_chinese_and_ascii_separators(tmp_path: Path) -> None:
    (person,) = load(
        csv_file(
            tmp_path, 'X01,陈立新,县,449901,13800138001,"administrative、grid_worker;technical",zh,'
        )
    )
    assert person.roles == ("administrative", "grid_worker", "technical")


@pytest.mark.parametrize(
    ("written", "tier"),
    [
        ("市", Tier.CITY),
        ("区", Tier.COUNTY),
        ("街道", Tier.TOWNSHIP),
        ("社区", Tier.VILLAGE),
        ("Township", Tier.TOWNSHIP),
    ],
)
def test_tiers_are_read_by_their_chinese_and_english_names(
    tmp_path: Path, written: str, tier: Tier
) -> None:
    (person,) = load(csv_file(tmp_path, f"P1,某人,{written},449901,13800138001"))
    assert person.tier is tier


def test_a_spreadsheet_export_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *GOOD_ROWS, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert len(load(path)) == 3


def test_blank_and_empty_rows_are_skipped(tmp_path: Path) -> None:
    path = csv_file(tmp_path, GOOD_ROWS[0], "", ",,,,,,,", GOOD_ROWS[1])
    assert [p.key for p in load(path)] == ["X01", "T01"]


def test_a_yaml_roster_loads(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(
        "- key: X01\n  name: 陈立新\n  tier: 县\n  region_code: 449901\n"
        '  phones: ["+8613800138001", "13900138002"]\n  roles: [administrative]\n'
        "- key: T01\n  name: 吴静安\n  tier: township\n  region_code: '449901001'\n"
        "  phones: 13800138003\n  superior: X01\n  language: en\n",
        encoding="utf-8",
    )
    x01, t01 = load(path)
    assert x01.phones == ("+8613800138001", "+8613900138002")
    assert x01.roles == ("administrative",)
    assert (t01.tier, t01.region_code, t01.phones) == (
        Tier.TOWNSHIP,
        "449901001",
        ("+8613800138003",),
    )
    assert (t01.superior, t01.language) == ("X01", "en")


def test_a_yaml_roster_may_use_the_same_chinese_names_as_a_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "roster.yml"
    path.write_text(
        "- 编号: X01\n  姓名: 陈立新\n  层级: 县\n  行政区划代码: '449901'\n"
        "  手机号码: '13800138001'\n",
        encoding="utf-8",
    )
    (person,) = load(path)
    assert (person.key, person.name, person.phones) == ("X01", "陈立新", ("+8613800138001",))


# --- every bad row, with its own line ------------------------------------------------------


def test_an_invalid_phone_is_reported_at_its_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, GOOD_ROWS[0], "X02,黄海涛,县,449901,12345")
    assert one_problem(path) == f"{path}:3: phone '12345' is not a valid number"


def test_an_empty_phone_is_reported_at_its_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "X02,黄海涛,县,449901,")
    assert one_problem(path) == f"{path}:2: 手机号码/phones is empty"


def test_a_bad_region_code_is_reported_at_its_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *GOOD_ROWS, "V02,李春华,村,4499010010,13800138009")
    assert one_problem(path) == (
        f"{path}:5: 行政区划代码/region_code '4499010010' is not a 6, 9 or 12 digit code"
    )


def test_a_region_code_in_full_width_digits_is_reported(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "X02,黄海涛,县,４４９９０１,13800138009")
    assert one_problem(path).startswith(f"{path}:2: 行政区划代码/region_code")


def test_an_unknown_tier_is_reported_at_its_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, GOOD_ROWS[0], "P1,某人,省,449901,13800138009")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:3: 层级/tier '省' is not one of")


def test_an_empty_name_is_reported_at_its_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, GOOD_ROWS[0], GOOD_ROWS[1], "V02, ,村,449901001001,13800138009")
    assert one_problem(path) == f"{path}:4: 姓名/name is empty"


def test_an_empty_key_is_reported_at_its_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, ",某人,村,449901001001,13800138009")
    assert one_problem(path) == f"{path}:2: 编号/key is empty"


def test_a_duplicate_key_is_reported_at_the_second_line_naming_the_first(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *GOOD_ROWS, "X01,另一个人,县,449901,13800138009")
    assert one_problem(path) == f"{path}:5: duplicate person 'X01' (first on line 2)"


def test_a_phone_shared_by_two_people_is_reported_at_the_second(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *GOOD_ROWS, "X02,黄海涛,县,449901,+86-138-0013-8001")
    assert one_problem(path) == f"{path}:5: phone +8613800138001 already belongs to 'T01'"


def test_an_unknown_superior_is_reported_at_the_line_naming_it(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *GOOD_ROWS, "V02,李春华,村,449901001002,13800138009,,,T99")
    assert one_problem(path) == f"{path}:5: superior 'T99' is not in this roster"


def test_a_superior_listed_after_the_person_is_known(tmp_path: Path) -> None:
    path = csv_file(tmp_path, GOOD_ROWS[2], GOOD_ROWS[1], GOOD_ROWS[0])
    assert [p.key for p in load(path)] == ["V01", "T01", "X01"]


def test_a_missing_column_is_reported_at_line_1(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "X01,陈立新,县,449901", header="编号,姓名,层级,行政区划代码")
    assert one_problem(path) == f"{path}:1: missing column(s) 手机号码/phones"


def test_every_missing_column_is_named(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "陈立新", header="name")
    missing = "编号/key, 层级/tier, 行政区划代码/region_code, 手机号码/phones"
    assert one_problem(path) == f"{path}:1: missing column(s) {missing}"


def test_an_empty_file_is_missing_every_column(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    assert one_problem(path).startswith(f"{path}:1: missing column(s) 编号")


def test_several_bad_rows_are_all_reported_at_once_and_no_one_is_loaded(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        GOOD_ROWS[0],                               # 2: fine
        "X02,,县,449901,12345",                     # 3: empty name, invalid phone
        "T01,吴静安,乡镇,449901001,13800138001,,,X01",  # 4: fine
        "T02,郑远山,州,4499,13800138002",           # 5: unknown tier, bad code
        "T01,吴静安二,乡镇,449901002,13800138003",   # 6: duplicate key
        "V01,王小川,村,449901001001,13800138001,,,T09",  # 7: T01's phone, unknown superior
    )  # fmt: skip
    found = problems(path)
    assert [p.split(": ", 1)[0] for p in found] == [
        f"{path}:3", f"{path}:3", f"{path}:5", f"{path}:5", f"{path}:6", f"{path}:7",
        f"{path}:7",
    ]  # fmt: skip
    text = "\n".join(found)
    for fragment in (
        "姓名/name is empty",
        "phone '12345'",
        "层级/tier '州'",
        "region_code '4499'",
        "duplicate person 'T01'",
        "already belongs to 'T01'",
        "superior 'T09'",
    ):
        assert fragment in text


def test_a_quoted_multi_line_field_keeps_later_line_numbers_right(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        GOOD_ROWS[0],                                          # line 2
        'T01,"吴静安\n（镇长）\n兼防汛办",乡镇,449901001,13800138001',  # lines 3-5
        "V01,王小川,村,449901001001,12345",                    # line 6
    )  # fmt: skip
    assert one_problem(path) == f"{path}:6: phone '12345' is not a valid number"


def test_a_bad_row_spanning_several_lines_is_reported_at_its_first_line(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        GOOD_ROWS[0],                                           # line 2
        'T01,"吴静安\n（镇长）",乡镇,449901001,12345',                # lines 3-4
        'V01,"王小川\n（村主任）",村,4499,13800138009',          # lines 5-6
    )  # fmt: skip
    assert [p.split(": ", 1)[0] for p in problems(path)] == [f"{path}:3", f"{path}:5"]


def test_blank_lines_do_not_shift_later_line_numbers(tmp_path: Path) -> None:
    path = csv_file(tmp_path, GOOD_ROWS[0], "", "", "V01,王小川,村,449901001001,12345")
    assert one_problem(path).startswith(f"{path}:5: ")


def test_a_windows_line_ending_file_reports_the_same_lines(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(
        "\r\n".join([ZH_HEADER, GOOD_ROWS[0], "X02,黄海涛,县,449901,12345"]).encode("utf-8")
    )
    assert one_problem(path).startswith(f"{path}:3: ")


def test_yaml_problems_are_reported_at_each_persons_line(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(
        "# responders\n"                                  # 1
        "- key: X01\n"                                    # 2
        "  name: 陈立新\n"
        "  tier: 县\n"
        "  region_code: '449901'\n"
        "  phones: ['13800138001']\n"
        "\n"                                              # 7
        "- {key: T01, name: 吴静安, tier: 省, region_code: '449901001', phones: ['13800138002']}\n"
        "- key: V01\n"                                    # 9
        "  name: 王小川\n"
        "  tier: 村\n"
        "  region_code: '449901001001'\n"
        "  phones: ['12345']\n"
        "  superior: T09\n",
        encoding="utf-8",
    )  # fmt: skip
    found = problems(path)
    assert [p.split(": ", 1)[0] for p in found] == [f"{path}:8", f"{path}:9"]


def test_a_yaml_roster_that_is_not_a_list_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text("X01: {name: 陈立新}\n", encoding="utf-8")
    assert one_problem(path) == f"{path}:1: a YAML table is a list of entries"


def test_a_yaml_person_that_is_not_a_mapping_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text("- key: X01\n  name: 陈立新\n- just a name\n", encoding="utf-8")
    assert one_problem(path) == f"{path}:3: each entry is a mapping of fields"


def test_invalid_yaml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text("- key: [X01\n", encoding="utf-8")
    assert one_problem(path).startswith(f"{path}: not valid YAML")


def test_a_csv_saved_by_a_chinese_excel_in_gbk_loads(tmp_path: Path) -> None:
    path = csv_file(tmp_path, *GOOD_ROWS, encoding="gbk")
    assert [p.name for p in load(path)] == ["陈立新", "吴静安", "王小川"]


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    assert one_problem(path).startswith(f"{path}: cannot read")


# --- spreadsheets, chat ids, the region tree ----------------------------------------------

ROSTERS = ROOT / "config" / "rosters"


def test_the_office_spreadsheet_csv_and_its_xlsx_hold_the_same_people() -> None:
    csv_people = load(ROSTERS / "demo_roster.csv")
    assert load(ROSTERS / "demo_roster.xlsx") == csv_people
    assert len(csv_people) == 12


def test_the_office_spreadsheet_names_the_demo_people_as_the_demo_roster_does() -> None:
    demo = {p.key: p for p in load(DEMO / "roster.csv")}
    office = {p.key: p for p in load(ROSTERS / "demo_roster.csv")}
    assert office.keys() == demo.keys()
    for key, p in office.items():
        q = demo[key]
        assert (p.name, p.tier, p.region_code, p.superior, p.phones[0]) == (
            q.name, q.tier, q.region_code, q.superior, q.phones[0],
        )  # fmt: skip
    assert office["C01"].phones == ("+8617000000101", "+8617000001101")
    assert office["C01"].chat_id("wecom") == "lin.xiaoqing"


def test_the_committed_xlsx_is_what_the_script_makes_of_the_csv(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    shutil.copy(ROSTERS / "demo_roster.csv", tmp_path / "demo_roster.csv")
    subprocess.run(
        [sys.executable, str(ROSTERS / "csv_to_xlsx.py"), str(tmp_path / "demo_roster.csv")],
        check=True,
        capture_output=True,
    )
    assert load(tmp_path / "demo_roster.xlsx") == load(ROSTERS / "demo_roster.xlsx")


def test_an_xlsx_roster_with_english_headers_and_numeric_cells_loads(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "r.xlsx",
        {
            "roster": [
                ["Key", "Name", "Tier", "Region", "Phone", "Telegram"],
                ["X01", "陈立新", "county", 449901, 13800138001, 123456789],
            ]
        },
    )
    (person,) = load(path)
    assert (person.region_code, person.phones) == ("449901", ("+8613800138001",))
    assert person.chat_ids == (("telegram", "123456789"),)


def test_bad_xlsx_rows_are_reported_by_sheet_and_row(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "r.xlsx",
        {
            "县级": [
                ["示例县责任人名册"],
                ["编号", "姓名", "层级", "行政区划代码", "手机号码"],
                ["X01", "陈立新", "县", "449901", "13800138001"],
                ["X01", "黄海涛", "县", "449901", "12345"],
            ]
        },
    )
    assert problems(path) == [
        f"{path}:县级!4: phone '12345' is not a valid number",
    ]
    path = workbook(
        tmp_path / "r2.xlsx",
        {
            "县级": [
                ["编号", "姓名", "层级", "行政区划代码", "手机号码"],
                ["X01", "陈立新", "县", "449901", "13800138001"],
            ],
            "乡镇级": [
                ["编号", "姓名", "层级", "行政区划代码", "手机号码"],
                ["X01", "吴静安", "乡镇", "449901001", "13800138002"],
            ],
        },
    )
    assert problems(path) == [f"{path}:乡镇级!2: duplicate person 'X01' (first on 县级!2)"]


def test_chat_ids_come_from_per_channel_columns(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "X01,陈立新,县,449901,13800138001,zhang.san,-1001234,ou_abc",
        header="编号,姓名,层级,行政区划代码,手机号码,企业微信,Telegram,飞书",
    )
    (person,) = load(path)
    assert person.chat_ids == (
        ("feishu", "ou_abc"),
        ("telegram", "-1001234"),
        ("wecom", "zhang.san"),
    )
    assert person.chat_id("dingtalk") is None


def test_a_mailbox_column_gives_the_person_an_email_address(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "X01,陈立新,县,449901,13800138001,duty.x01@example.org",
        "X02,黄海涛,县,449901,13800138002,not-an-address",
        header="编号,姓名,层级,行政区划代码,手机号码,邮箱",
    )
    assert problems(path) == [f"{path}:3: 邮箱/email id 'not-an-address' is not valid"]
    path.write_text(path.read_text(encoding="utf-8").replace("not-an-address", ""), "utf-8")
    first, second = load(path)
    assert first.chat_id("email") == "duty.x01@example.org" and second.chat_ids == ()


def test_a_yaml_person_may_list_chat_ids_as_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "- {key: X01, name: 陈立新, tier: 县, region_code: '449901', phones: '13800138001',\n"
        "   chat_ids: {telegram: 42, dingtalk: chenlixin}}\n",
        encoding="utf-8",
    )
    (person,) = load(path)
    assert person.chat_ids == (("dingtalk", "chenlixin"), ("telegram", "42"))


def test_bad_chat_ids_are_reported_at_their_line(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path, "X01,陈立新,县,449901,13800138001,@chenlixin,has space",
        header="编号,姓名,层级,行政区划代码,手机号码,Telegram,钉钉",
    )  # fmt: skip
    assert problems(path) == [
        f"{path}:2: 钉钉/dingtalk id 'has space' is not valid",
        f"{path}:2: Telegram/telegram id '@chenlixin' is not valid",
    ]
    yaml_path = tmp_path / "r.yaml"
    yaml_path.write_text(
        "- {key: X01, name: 陈立新, tier: 县, region_code: '449901', phones: '13800138001',"
        " chat_ids: {wechat: x}}\n",
        encoding="utf-8",
    )
    assert one_problem(yaml_path) == f"{yaml_path}:1: chat id for unknown channel 'wechat'"


def test_with_the_region_tree_an_unknown_region_is_reported_at_its_line(tmp_path: Path) -> None:
    tree = load_tree(DEMO / "regions.toml")
    path = csv_file(tmp_path, GOOD_ROWS[0], "X09,某人,县,449909,13800138009")
    with pytest.raises(ConfigError) as caught:
        load(path, tree=tree)
    assert caught.value.problems == [
        f"{path}:3: 行政区划代码/region_code '449909' is not in the region tree"
    ]
    assert len(load(path)) == 2  # without a tree, only the code's form is checked


def test_numbers_without_a_country_code_are_read_in_the_configured_region(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "X01,陈立新,县,449901,(650) 253-0000")
    assert one_problem(path) == f"{path}:2: phone '(650) 253-0000' is not a valid number"
    (person,) = load(path, default_region="US")
    assert person.phones == ("+16502530000",)
