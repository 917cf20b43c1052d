"""Study names: a study's name is its results folder under --out, so it must be one safe path
component, whether written as ``name =`` or taken from the file's name."""

from __future__ import annotations

import pytest

from spectrumkit.errors import SpectrumkitError
from spectrumkit.study import load_study, run_study
from tests.study_fake import study_toml

ALLOW = {"allow_trial_code": True}


@pytest.mark.parametrize("bad", ["ABS", "../x", ".", "..", "", "a/b", "a\\b", "x/../..",
                                 " x", "-x", "x\x00y"])
def test_study_name_must_be_a_single_safe_path_component(tmp_path, bad):
    """name = "/abs/dir", "../x" or "." would write outside --out: refused at load, nothing
    written. (The absolute name points into tmp_path, so that a failure writes nowhere else.)"""
    bad = str(tmp_path / "abs" / "dir") if bad == "ABS" else bad
    toml = study_toml(tmp_path, name=bad)
    with pytest.raises(SpectrumkitError, match=r"load_study: expected a study name that is one "
                                               r"path component"):
        load_study(toml)
    with pytest.raises(SpectrumkitError, match="one path component"):
        run_study(toml, out=str(tmp_path / "out"), progress=False, **ALLOW)
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists()
    assert not (tmp_path / "abs").exists()


def test_study_name_from_an_unsafe_file_name_is_refused(tmp_path):
    """Without name =, the file's stem is the name; it must be safe as well."""
    toml = study_toml(tmp_path, name=None, file="my study.toml")
    with pytest.raises(SpectrumkitError, match="one path component.*'my study'"):
        load_study(toml)
    ok = study_toml(tmp_path, name=None, file="fine-name_2.v1.toml")
    assert load_study(ok).name == "fine-name_2.v1"
