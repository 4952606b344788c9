"""The `ffka` command line: help on every argument, one-line errors, exit codes."""
import subprocess, sys
import pytest
import yaml

from ffka.cli import main, parser, parse_sets


def _all_actions(p):
    for a in p._actions:
        if a.dest == "help": continue
        if hasattr(a, "choices") and isinstance(a.choices, dict):
            for sp in a.choices.values(): yield from _all_actions(sp)
        else: yield a


def test_every_argument_has_help():
    missing = [a.dest for a in _all_actions(parser()) if not a.help]
    assert missing == [], missing


@pytest.mark.parametrize("argv,msg", [
    (["run", "e01_dynamics", "--set", "stpes=5"], "has no parameter 'stpes'"),
    (["run", "e01_dynamics", "--set", "config.protocol.stpes=5"], "protocol: unknown key(s) 'stpes'"),
    (["run", "e01_dynamics", "--set", "seed=true"], "seed must be int"),
    (["run", "e01_dynamics", "no/such/params.yaml"], "params file not found"),
    (["run", "e99"], "notebook 'e99' not found"),
    (["sweep", "no_grid.yaml"], "params file not found"),
    (["config", "quik"], "unknown profile 'quik'"),
])
def test_errors_are_one_line_and_exit_2(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ffka: error:") and msg in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_bad_yaml_names_the_file(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("seed: [1,\n")
    assert main(["run", "e01_dynamics", str(tmp_path / "p.yaml")]) == 2
    assert "p.yaml: not valid YAML" in capsys.readouterr().err


def test_dry_run_and_config(capsys, tmp_path):
    assert main(["run", "e01_dynamics", "--set", "profile=smoke", "--run-dir", str(tmp_path / "r"), "--dry-run"]) == 0
    assert f"would run: {tmp_path / 'r'}" in capsys.readouterr().out
    assert main(["config", "smoke", "--set", "protocol.steps=9"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["protocol"]["steps"] == 9


def test_console_script_help():
    "The installed `ffka` entry point (settings.ini console_scripts) reaches ffka.cli.main."
    from pathlib import Path
    exe = Path(sys.executable).with_name("ffka")
    if not exe.is_file(): pytest.skip(f"no ffka console script next to {sys.executable} (package not installed in this environment)")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "reproduce" in out.stdout and "aggregate" in out.stdout


def test_paper_params_dry_run_prints_the_plan_and_a_real_run_fails_fast(capsys, monkeypatch):
    import time
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from ffka.sweep import experiments_dir
    pf = str(experiments_dir() / "params" / "paper_e01.yaml")
    assert main(["run", "e01_dynamics", pf, "--dry-run"]) == 0
    out = capsys.readouterr().out
    for s in ("plan e01_dynamics / mid", "global_batch: 2048 rows x 2048 tokens = 8 processes x 2 rows x 128 micro-batches",
              "tokens_per_step: 4194304", "MISSING model.checkpoints['mid']", "MISSING data.source"):
        assert s in out, s
    t0 = time.time()
    assert main(["run", "e01_dynamics", pf]) == 2
    err = capsys.readouterr().err
    assert time.time() - t0 < 30 and "the run cannot start, missing" in err and "step113000-unsharded" in err and "360000-363000" in err
