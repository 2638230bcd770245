"""Which frames the capture policy records, in camera time, for every mode and its limits."""

from __future__ import annotations

import pytest

from robot_instseg.node.params import PARAMS_BY_NAME
from robot_instseg.recording.policy import MANUAL_CAPTURE, MANUAL_RECORD, MODES, CapturePolicy, PolicyConfig


def _run(policy: CapturePolicy, frames: list) -> list:
    """decide() over (stamp, scores, classes) frames; the reasons, None where not recorded."""
    return [policy.decide(stamp, scores, names) for stamp, scores, names in frames]


def test_off_records_nothing_and_all_records_every_frame_under_the_rate_cap() -> None:
    frames = [(t * 0.1, [0.9], ["cup"]) for t in range(20)]  # 10 Hz for 2 s
    assert _run(CapturePolicy(PolicyConfig(mode="off")), frames) == [None] * 20
    uncapped = _run(CapturePolicy(PolicyConfig(mode="all", max_rate_hz=0)), frames)
    assert uncapped == ["all"] * 20
    capped = _run(CapturePolicy(PolicyConfig(mode="all", max_rate_hz=2.0)), frames)
    assert [i for i, r in enumerate(capped) if r] == [0, 5, 10, 15]  # one every 0.5 s of camera time


def test_interval_mode_counts_camera_time_not_frames() -> None:
    policy = CapturePolicy(PolicyConfig(mode="interval", interval_s=1.0, max_rate_hz=0))
    stamps = [0.0, 0.4, 0.99, 1.0, 1.5, 3.7, 3.8, 4.7]
    reasons = _run(policy, [(s, [], []) for s in stamps])
    assert [s for s, r in zip(stamps, reasons) if r] == [0.0, 1.0, 3.7, 4.7]


def test_uncertain_mode_records_scores_in_the_band_and_new_or_long_unseen_classes() -> None:
    policy = CapturePolicy(PolicyConfig(mode="uncertain", score_low=0.3, score_high=0.6, unseen_class_s=10.0,
                                        max_rate_hz=0))
    assert policy.decide(0.0, [0.9], ["cup"]) == "new_class: cup"
    assert policy.decide(1.0, [0.9], ["cup"]) is None  # confident and seen a second ago
    assert policy.decide(2.0, [0.9, 0.45], ["cup", "cup"]) == "uncertain: cup 0.45"
    assert policy.decide(3.0, [0.61, 0.29], ["cup", "cup"]) is None  # just outside the band
    assert policy.decide(14.0, [0.9], ["cup"]) == "unseen_class: cup (last seen 11 s ago)"
    assert policy.decide(14.5, [0.95], ["bowl"]) == "new_class: bowl"


def test_unseen_class_trigger_can_be_turned_off() -> None:
    policy = CapturePolicy(PolicyConfig(mode="uncertain", unseen_class_s=0.0, max_rate_hz=0))
    assert _run(policy, [(0.0, [0.9], ["cup"]), (100.0, [0.9], ["cup"])]) == [None, None]


def test_manual_capture_is_always_honoured_and_continuous_recording_overrides_the_mode() -> None:
    policy = CapturePolicy(PolicyConfig(mode="manual", max_rate_hz=1.0))
    assert policy.decide(0.0, [0.9], ["cup"]) is None
    assert policy.manual_capture(0.1) == MANUAL_CAPTURE
    policy.continuous = True
    assert policy.decide(0.5, [], []) is None  # within 1 s of the manual capture: the cap holds
    assert policy.decide(1.2, [], []) == MANUAL_RECORD
    policy.continuous = False
    assert policy.decide(5.0, [], []) is None


@pytest.mark.parametrize("config, words", [
    (dict(mode="sometimes"), "record mode must be one of"),
    (dict(score_low=0.7, score_high=0.6), "score band"),
    (dict(score_high=1.5), "score band"),
    (dict(interval_s=0.0), "interval"),
    (dict(max_rate_hz=-1.0), "max rate"),
])
def test_inconsistent_settings_are_refused_with_the_reason(config: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        PolicyConfig(**config)


def test_the_node_parameter_offers_exactly_the_policy_modes_with_the_policy_defaults() -> None:
    assert PARAMS_BY_NAME["record_mode"].choices == MODES
    defaults = PolicyConfig()
    assert PARAMS_BY_NAME["record_interval_s"].default == defaults.interval_s
    assert PARAMS_BY_NAME["record_max_rate_hz"].default == defaults.max_rate_hz
