"""`python -m export.fit_gate` keeps the gate it would replace when Ctrl-C came while fitting."""

from export import fit_gate
from tfmelanoma import cli


def test_ctrl_c_python_dropped_while_fitting_keeps_the_old_gate(tmp_path, monkeypatch, capsys):
    out = tmp_path / "gate.json"
    out.write_text('{"old": true}\n')

    def fit(args):
        cli._ctrl_c_seen = True  # what the SIGINT handler records before its exception is lost
        return {"report": {}}

    monkeypatch.setattr(fit_gate, "_fit_run", fit)
    assert fit_gate.main(["--run", str(tmp_path), "--out", str(out)]) == 130
    assert out.read_text() == '{"old": true}\n'
    assert "interrupted" in capsys.readouterr().err
