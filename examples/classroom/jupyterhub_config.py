# JupyterHub for a class in which every student has a board of their own running
# `xrpyc-device --token-file ...` (docs/classroom.md). Start it with
#
#     XRPYC_CLASSROOM=/etc/jupyterhub/classroom.json jupyterhub -f jupyterhub_config.py
#
# from the environment where xrpyc, jupyterhub and jupyterhub-idle-culler are installed. The class list:
#
#     {"idle_timeout": 3600, "kernel_idle_timeout": 1200,
#      "teachers": ["grace"],
#      "students": {"ada": {"device": "192.168.1.21:18812", "token_file": "/home/ada/.xrpyc-token"},
#                   "alan": {"device": "192.168.1.22:18812", "token_file": "/home/alan/.xrpyc-token"}}}
#
# tests/test_jupyterhub.py runs this file as it is, with a second file that changes only the
# authenticator and spawner (one Unix user there), the ports, the proxy's path, how often activity is
# reported, and adds a service for the test.
import json
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (JupyterHub defines it while it reads this file)

classroom = json.loads(Path(os.environ.get("XRPYC_CLASSROOM", "/etc/jupyterhub/classroom.json")).read_text())
students: dict = classroom["students"]

# Behind a reverse proxy that terminates TLS; bind to a public address only with TLS (c.JupyterHub.ssl_cert/key).
c.JupyterHub.bind_url = "http://127.0.0.1:8000"

# Who may log in: the students and teachers on the list, as Unix users (PAM), each server in its own
# account: one student's notebook cannot read another's token file or signal their kernel.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(students)
c.Authenticator.admin_users = set(classroom.get("teachers", []))
c.JupyterHub.spawner_class = "localprocess"
# The single-user server, and so the xrpyc kernelspec, from this environment.
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]


def board(setting: str):
    """The student's own value of `setting` from the class list; "" for a teacher (cells run on a private
    device on this host then)."""
    return lambda spawner: students.get(spawner.user.name, {}).get(setting, "")


# Each student's kernels run on their board, with the token of that board alone. The token is in a file
# (mode 600, owned by the student), not in the environment: it stays out of this config, out of the Hub's
# memory and logs, and out of every process the student's server starts; a new token needs no respawn.
c.Spawner.environment = {"XRPYC_DEVICE": board("device"), "XRPYC_TOKEN_FILE": board("token_file")}

# A kernel idle for `kernel_idle_timeout` seconds with no notebook open on it is shut down by its server: it
# says goodbye to the board, whose worker for it exits at once, and the board is free for the next session.
# A server idle for `idle_timeout` seconds is stopped by the idle culler below, with what still runs in it.
kernel_idle_timeout = classroom.get("kernel_idle_timeout", 1200)
c.Spawner.args = [
    f"--MappingKernelManager.cull_idle_timeout={kernel_idle_timeout}",
    f"--MappingKernelManager.cull_interval={max(1, kernel_idle_timeout // 10)}",
]
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={classroom.get('idle_timeout', 3600)}"],
    }
]
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }
]
