"""The one validated config file: defaults, units, and errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mgca.config import ConfigError, MgcaConfig, default_config_text, load_config


def test_shipped_defaults_validate_and_match_the_model_defaults() -> None:
    shipped = load_config()
    assert shipped == MgcaConfig()  # the YAML and the pydantic defaults never drift apart
    assert shipped.study.mg_low_mmol_l == pytest.approx(0.70)
    assert shipped.study.ca_corrected_low_mmol_l == pytest.approx(2.15)
    assert shipped.privacy.small_cell_threshold == 11


def test_every_threshold_in_the_shipped_file_is_commented() -> None:
    text = default_config_text()
    assert text.count("#") > 20
    for key in ("mg_low_mmol_l", "ca_corrected_low_mmol_l", "grace_hours", "horizon_hours"):
        assert key in text


def test_partial_file_takes_defaults_for_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"study": {"grace_hours": 4}}))
    config = load_config(path)
    assert config.study.grace_hours == 4
    assert config.study.horizon_hours == 48
    assert config.sha256() != MgcaConfig().sha256()


def test_unknown_key_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"study": {"mg_low_mmoll": 0.6}}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "study.mg_low_mmoll" in str(err.value)
    assert str(path) in str(err.value)


def test_out_of_range_threshold_names_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"study": {"mg_low_mmol_l": 7.0}}))  # mg/dL by mistake?
    with pytest.raises(ConfigError, match=r"study\.mg_low_mmol_l.*7\.0"):
        load_config(path)


def test_outcome_window_must_start_after_grace_period(tmp_path: Path) -> None:
    path = tmp_path / "overlap.yaml"
    path.write_text(yaml.safe_dump({"study": {"grace_hours": 40, "horizon_hours": 48}}))
    with pytest.raises(ConfigError, match="grace"):
        load_config(path)


def test_trajectory_model_patient_cap_is_zero_or_useful(tmp_path: Path) -> None:
    # 0 = every patient; a cap under 100 patients would give a meaningless mixed model
    path = tmp_path / "cap.yaml"
    path.write_text(yaml.safe_dump({"study": {"trajectory_model_max_patients": 50}}))
    with pytest.raises(ConfigError, match=r"study\.trajectory_model_max_patients.*too few"):
        load_config(path)
    path.write_text(yaml.safe_dump({"study": {"trajectory_model_max_patients": 0}}))
    assert load_config(path).study.trajectory_model_max_patients == 0
    assert MgcaConfig().study.trajectory_model_max_patients == 3000


def test_invalid_yaml_and_missing_file_are_clear(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("study: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_round_trip_through_yaml_is_lossless(tmp_path: Path) -> None:
    config = load_config()
    path = tmp_path / "saved.yaml"
    path.write_text(config.to_yaml())
    assert load_config(path) == config
    assert load_config(path).sha256() == config.sha256()


def test_sensitivity_windows_are_validated_against_the_primary_windows() -> None:
    from pydantic import ValidationError

    from mgca.config import SensitivityConfig

    with pytest.raises(ValidationError, match=r"sensitivity\.grace_hours entry 40"):
        MgcaConfig(sensitivity=SensitivityConfig(grace_hours=(40,)))
    with pytest.raises(ValidationError, match=r"sensitivity\.horizons_hours entry 12"):
        MgcaConfig(sensitivity=SensitivityConfig(horizons_hours=(12,)))
    configs = MgcaConfig().sensitivity_configs()
    assert [name for name, _, _ in configs] == [
        "grace_3h",
        "grace_12h",
        "horizon_24h",
        "horizon_72h",
    ]
    for _, _, alt in configs:  # one window changed, only the primary horizon kept
        assert alt.study.outcome_horizons_hours == (alt.study.horizon_hours,)
        assert alt.privacy == MgcaConfig().privacy


def test_synthetic_regime_defaults_to_default_and_rejects_unknown(tmp_path: Path) -> None:
    assert MgcaConfig().synthetic.regime == "default"
    ward = tmp_path / "ward.yaml"
    ward.write_text("synthetic:\n  regime: ward\n")
    assert load_config(ward).synthetic.regime == "ward"
    bad = tmp_path / "bad.yaml"
    bad.write_text("synthetic:\n  regime: icu\n")
    with pytest.raises(ConfigError, match=r"synthetic\.regime"):
        load_config(bad)
