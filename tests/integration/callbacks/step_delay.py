# A testing aid, not part of the product: HPCANSIBLE_STEP_DELAY=<step>:<seconds> holds step
# <step> of playbooks/session.yml at its start, so that an interruption (Ctrl-C, kill -9) can be
# aimed at it. test_lifecycle.py enables it through ANSIBLE_CALLBACK_PLUGINS and
# ANSIBLE_CALLBACKS_ENABLED; a callback runs in ansible-playbook's main process, so sleeping
# here holds the play, after the stdout callback has already reported the play's start.
from __future__ import annotations

import os
import re
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: step_delay
type: aggregate
short_description: hold a session step at its start (tests only)
description: HPCANSIBLE_STEP_DELAY=<step>:<seconds> sleeps when the play "[<step>/6] ..." starts.
requirements: []
"""

STEP_PLAY = re.compile(r"^\[(\d)/6\]")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "step_delay"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_play_start(self, play) -> None:
        step, _, seconds = os.environ.get("HPCANSIBLE_STEP_DELAY", "").partition(":")
        match = STEP_PLAY.match(play.get_name() or "")
        if match and seconds and match.group(1) == step:
            time.sleep(float(seconds))
