"""Two processes writing the same output at once: the second is refused in one line, and the
first finishes undisturbed (found when two trainings added features to one dataset together:
one removed the work folder under the other, which ended in a FileNotFoundError traceback).

``flock`` locks belong to open file descriptions, so a lock taken here through another
descriptor stands for another process exactly."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from noa_platform.cli import main
from noa_platform.config import GenerationConfig
from noa_platform.data.features import add_features
from noa_platform.data.generate import generate
from noa_platform.data.store import DatasetFile
from noa_platform.data.work_lock import sole_writer
from noa_platform.errors import DataError
from noa_platform.testing.toy_domain import ToyDomain

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")


def config(**kw) -> GenerationConfig:
    return GenerationConfig(**{"n_samples": 6, "n_frames": 3, "resolution": 16,
                               "batch_size": 3, "features": False, **kw})


def test_a_second_generation_of_the_same_file_is_refused_while_the_first_runs(
        tmp_path, fixture_plugins):
    out = tmp_path / "d.h5"
    work = tmp_path / "d.h5.partial"
    work.mkdir()
    with sole_writer(work, "generating"):  # the first process, mid-run
        with pytest.raises(DataError, match=r"d.h5.partial: another process is already "
                                            r"generating .*d.h5; wait for it to finish"):
            generate(ToyDomain(), config(), out, progress=False, log=lambda m: None)
        assert not out.exists() and work.is_dir()
        result = CliRunner().invoke(main, ["generate", "good-toy", "--out", str(out), "--n", "6",
                                           "--quiet"])
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines()[-1].startswith("error: ")
        assert "another process is already generating" in result.stderr
    # Released (the first process ended or was killed): the same command does the work.
    generate(ToyDomain(), config(), out, progress=False, log=lambda m: None)
    assert out.exists() and not work.exists()


def test_a_second_feature_extraction_of_the_same_file_is_refused_while_the_first_runs(tmp_path):
    out = generate(ToyDomain(), config(), tmp_path / "d.h5", progress=False, log=lambda m: None)
    before = out.read_bytes()
    work = tmp_path / "d.h5.features.partial"
    work.mkdir()
    (work / "fingerprint").write_text("the first process's stamp")
    with sole_writer(work, "adding features"):
        with pytest.raises(DataError, match="another process is already adding features"):
            add_features(out, progress=False, log=lambda m: None)
        # The second process touched neither the first's work folder nor the file.
        assert (work / "fingerprint").read_text() == "the first process's stamp"
        assert out.read_bytes() == before
    assert add_features(out, progress=False, log=lambda m: None)
    with DatasetFile(out) as ds:
        assert set(ds.feature_families()) == {"initial", "summary", "temporal"}
    assert not work.exists()
