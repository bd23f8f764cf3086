import re
from pathlib import Path

import pytest

from factor_core import settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_configuration_table_lists_every_setting_with_its_default():
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (?:`([^`]*)`|\(empty\)) \|", README, flags=re.M))
    for setting in settings.SETTINGS:
        assert setting.name in rows, f"{setting.name} missing from the README configuration table"
        assert rows[setting.name] == setting.default, setting.name


def test_empty_environment_values_fall_back_to_the_default(monkeypatch):
    monkeypatch.setenv("SIM_SEED", "  ")
    assert settings.get_int("SIM_SEED") == 7


@pytest.mark.parametrize(
    ("name", "value", "reader", "message"),
    [
        ("FACTOR_PARTITIONS_START", "2024-13-01", settings.get_date, "FACTOR_PARTITIONS_START='2024-13-01' is not a date"),
        ("SIM_SIGNAL_IC", "high", settings.get_float, "SIM_SIGNAL_IC='high' is not a number"),
        ("DEMO_DAYS", "2.5", settings.get_int, "DEMO_DAYS='2.5' is not an integer"),
    ],
)
def test_bad_values_name_the_variable_and_value(monkeypatch, name, value, reader, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=re.escape(message)):
        reader(name)
