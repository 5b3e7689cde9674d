"""Helpers of the experiment tests."""

import subprocess


def sh(*cmd, **kwargs):
    """Run a command; fail the test with its output when it fails."""
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out
