"""Optional extras (pyproject ``[offline]``, ``[plot]``, ``[serve]``): genrec imports and
its CLI help works without them, and what needs one names it when it is missing.

A missing package is simulated with ``sys.modules[name] = None`` (``import name`` then
raises ImportError), in-process with monkeypatch or in a subprocess, so the tests need
nothing uninstalled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest
from typer.testing import CliRunner

from genrec.errors import GenrecError
from tests._util import REPO, has_packaged

OPTIONAL = {"offline": ["gguf"], "plot": ["matplotlib"], "serve": ["fastapi", "uvicorn"]}
BLOCKED = [m for mods in OPTIONAL.values() for m in mods]


def test_optional_packages_are_extras_and_dev_installs_everything():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = {d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]}
    extras = project["optional-dependencies"]
    for extra, modules in OPTIONAL.items():
        assert not set(modules) & required, f"{modules} must not be required"
        assert {d.split(">")[0] for d in extras[extra]} == set(modules)
    assert extras["all"] == ["genrec[offline,plot,serve]"]
    assert "genrec[all]" in extras["dev"] and any(d.startswith("pytest") for d in extras["dev"])
    # the install lines people and CI run keep installing everything
    assert 'pip install --quiet -e ".[dev]"' in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -e ".[dev]"' in (REPO / "README.md").read_text(encoding="utf-8")


_WITHOUT_EXTRAS = """
import json, sys
sys.modules.update(dict.fromkeys({blocked!r}))
import genrec, genrec.api, genrec.evaluation, genrec.model.backbone, genrec.serving
from typer.testing import CliRunner
from genrec.cli import _register, app
_register()
runner = CliRunner()
commands = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]
codes = {{}}
for cmd in [[], *[[name] for name in commands]]:
    r = runner.invoke(app, [*cmd, "--help"])
    codes[" ".join(cmd) or "genrec"] = [r.exit_code, r.output[-300:]]
print(json.dumps(codes))
"""


def test_import_and_cli_help_work_without_the_extras(tmp_path):
    script = _WITHOUT_EXTRAS.format(blocked=BLOCKED)
    env = {**os.environ, "GENREC_CACHE": str(tmp_path / "cache")}
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    codes = json.loads(p.stdout.strip().splitlines()[-1])
    assert {"genrec", "train", "evaluate", "compare", "serve", "recommend", "backbones"} <= set(codes)
    assert all(code == 0 for code, _ in codes.values()), codes


@pytest.fixture
def no_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_evaluation_without_matplotlib_skips_the_plot_with_a_warning(tiny_dataset, tmp_path, no_matplotlib):
    from genrec.evaluation import compare, evaluate, write_eval
    from genrec.recommenders.popularity import Popularity

    result = evaluate(Popularity().fit(tiny_dataset), tiny_dataset, n_resamples=10)
    with pytest.warns(UserWarning, match=r"plot.png not drawn: plots need matplotlib: pip install 'genrec\[plot\]'"):
        out = write_eval(result, tmp_path / "eval")
    assert (out / "metrics.json").is_file() and (out / "report.md").is_file() and (out / "rankings.parquet").is_file()
    assert not (out / "plot.png").exists()
    assert "plot.png" not in (out / "report.md").read_text()  # no link to an image that is not there
    with pytest.warns(UserWarning, match=r"genrec\[plot\]"):
        compare([out, out], tmp_path / "cmp", n_resamples=10)
    assert (tmp_path / "cmp" / "comparison.json").is_file() and not (tmp_path / "cmp" / "plot.png").exists()
    assert "plot.png" not in (tmp_path / "cmp" / "comparison.md").read_text()


def test_cli_prints_genrecs_own_warnings_as_one_line(capsys, monkeypatch):
    import genrec.cli
    import genrec.evaluation.report as report

    passed_on = []
    monkeypatch.setattr(genrec.cli, "_python_showwarning", lambda *a: passed_on.append(a))
    genrec.cli._show_warning(UserWarning("plot.png not drawn"), UserWarning, report.__file__, 1)
    assert capsys.readouterr().err.strip() == "warning: plot.png not drawn" and not passed_on
    genrec.cli._show_warning(UserWarning("from elsewhere"), UserWarning, "/elsewhere/lib.py", 3)
    assert len(passed_on) == 1 and passed_on[0][2] == "/elsewhere/lib.py"  # printed as Python does


@pytest.mark.parametrize("missing", OPTIONAL["serve"])
def test_serve_without_its_extra_names_it(monkeypatch, missing):
    from genrec.cli import _register, app

    _register()
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.delitem(sys.modules, "genrec.serving.app", raising=False)  # imported afresh, without `missing`
    r = CliRunner().invoke(app, ["serve", "--run", "no-such-run"])
    assert r.exit_code == 2, r.output
    assert f"needs fastapi and uvicorn ({missing} is not installed)" in r.stderr
    assert "pip install 'genrec[serve]'" in r.stderr


def test_packaged_conversion_without_gguf_names_the_extra(monkeypatch, tmp_path):
    from genrec.model import backbone

    monkeypatch.setitem(sys.modules, "gguf", None)
    dest = tmp_path / "backbones" / "smollm2-135m-instruct"
    with pytest.raises(GenrecError, match=r"needs gguf") as e:
        backbone._convert_packaged(dest)
    assert e.value.fix is not None and "pip install 'genrec[offline]'" in e.value.fix
    assert not dest.exists()
    if has_packaged:
        row = next(r for r in backbone.list_backbones(tmp_path) if r["name"] == backbone.PACKAGED)
        assert "needs gguf: pip install 'genrec[offline]'" in row["state"]
