"""``import minidl`` chooses how OpenMP's threads wait between kernels (minidl/__init__.py): a
short spin (``GOMP_SPINCOUNT=10000``) and then sleep (``OMP_WAIT_POLICY=PASSIVE``) — unless the
user chose either variable, which then stands as given. Each case runs in a fresh interpreter:
the variables are read once, when OpenMP loads."""
import os
import subprocess
import sys

import pytest

SHOW = "import os, minidl; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"


def settings_after_import(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, check=True,
                          env={**clean, **env})
    return done.stdout.split()[-2:]


@pytest.mark.parametrize("users, expected", [
    ({}, ["PASSIVE", "10000"]),                                    # minidl's choice
    ({"OMP_WAIT_POLICY": "ACTIVE"}, ["ACTIVE", "None"]),            # the user's policy, no spin
    ({"GOMP_SPINCOUNT": "0"}, ["PASSIVE", "0"]),                    # the user's spin count
    ({"OMP_WAIT_POLICY": "PASSIVE"}, ["PASSIVE", "None"]),          # fully passive, as asked
])
def test_a_short_spin_then_sleep_unless_the_user_chose(users, expected):
    assert settings_after_import(**users) == expected
