"""Hanami's time stamps: UTC for tasks, unpadded local time for audit and error log rows."""

from __future__ import annotations

import time


def utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def local_now_unpadded() -> str:
    t = time.localtime()
    return f"{t.tm_year}-{t.tm_mon}-{t.tm_mday} {t.tm_hour}:{t.tm_min}:{t.tm_sec}"
