"""Each design threat is a switch: it changes the world, keeps its kind, and nothing else."""

from __future__ import annotations

from dataclasses import fields

import pytest

from mgca.synthetic.threats import THREATS, threat_world
from mgca.synthetic.world import default_world


@pytest.mark.parametrize("name", sorted(THREATS))
@pytest.mark.parametrize("kind", ["effect", "null"])
def test_a_threat_switch_changes_the_world_and_keeps_its_kind(name: str, kind: str) -> None:
    base = default_world(kind)  # type: ignore[arg-type]
    on = threat_world(name, kind)  # type: ignore[arg-type]
    changed = [f.name for f in fields(base) if getattr(base, f.name) != getattr(on, f.name)]
    assert changed, f"threat {name} changes no parameter"
    assert "kind" not in changed
    assert on.kind == kind
    assert THREATS[name].problem and THREATS[name].defence


def test_an_unknown_threat_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="informative_end_of_stay"):
        threat_world("no_such_threat")
