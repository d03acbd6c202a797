"""CPU power/speed/temperature history (§4.45-4.47) and system info (§4.48) of this machine."""

from __future__ import annotations

import glob
import os
import socket
import threading
import time
from pathlib import Path

SIZES = {"seconds": 60, "minutes": 60, "hours": 24, "days": 365}


class Series:
    """Fixed-size arrays, oldest first; a wrapped section pushes its mean to the next one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values = {k: [0.0] * n for k, n in SIZES.items()}
        self.counts = {k: 0 for k in SIZES}

    def add(self, value: float) -> None:
        with self.lock:
            self._push("seconds", value)

    def _push(self, section: str, value: float) -> None:
        arr = self.values[section]
        arr.pop(0)
        arr.append(float(value))
        order = list(SIZES)
        self.counts[section] += 1
        if self.counts[section] >= SIZES[section] and section != "days":
            self.counts[section] = 0
            self._push(order[order.index(section) + 1], sum(arr) / len(arr))

    def snapshot(self) -> dict[str, list[float]]:
        with self.lock:
            return {k: list(v) for k, v in self.values.items()}


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def cpu_speed_mhz() -> float:
    text = _read("/proc/cpuinfo") or ""
    speeds = [float(line.split(":")[1]) for line in text.splitlines()
              if line.startswith("cpu MHz") and ":" in line]
    return sum(speeds) / len(speeds) if speeds else 0.0


def cpu_temperature() -> float:
    zones = sorted(glob.glob("/sys/class/thermal/thermal_zone*"))
    preferred = [z for z in zones if "pkg" in (_read(z + "/type") or "")] or zones[:1]
    total = 0.0
    for zone in preferred:
        raw = _read(zone + "/temp")
        try:
            total += int(raw or "0") / 1000.0
        except ValueError:
            pass
    return total


class PowerMeter:
    """Package power from the RAPL energy counter (0 if unavailable, > 1 MW recorded as 0)."""

    def __init__(self) -> None:
        self.paths = sorted(glob.glob("/sys/class/powercap/intel-rapl:[0-9]/energy_uj"))
        self.last: tuple[float, int] | None = None

    def sample(self) -> float:
        total = 0
        for path in self.paths:
            try:
                total += int(_read(path) or "0")
            except ValueError:
                return 0.0
        if not self.paths:
            return 0.0
        now = time.monotonic()
        last, self.last = self.last, (now, total)
        if last is None or now <= last[0] or total < last[1]:
            return 0.0
        watts = (total - last[1]) / 1e6 / (now - last[0])
        return 0.0 if watts > 1e6 else watts


class Measurements:
    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.power = Series()
        self.speed = Series()
        self.temperature = Series()
        self.meter = PowerMeter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ProcessingUnit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.power.add(self.meter.sample())
                self.speed.add(cpu_speed_mhz())
                self.temperature.add(cpu_temperature())
            except Exception:  # noqa: BLE001 - sampling must never stop the server
                pass


def _khz(cpu: int, name: str, fallback: int) -> int:
    raw = _read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/{name}")
    try:
        return int(raw.strip()) if raw else fallback
    except ValueError:
        return fallback


def system_info() -> dict:
    """Host/CPU topology from /proc/cpuinfo and sysfs (speeds in kHz)."""
    text = _read("/proc/cpuinfo") or ""
    packages: dict[int, dict[int, dict]] = {}
    for block in text.strip().split("\n\n"):
        info = {}
        for line in block.splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                info[key.strip()] = value.strip()
        if "processor" not in info:
            continue
        thread = int(info["processor"])
        package = int(info.get("physical id", 0))
        core = int(info.get("core id", thread))
        mhz = int(float(info.get("cpu MHz", 0)) * 1000)
        cores = packages.setdefault(package, {})
        entry = cores.setdefault(core, {
            "id": core, "threads": [],
            "current_speed": _khz(thread, "scaling_cur_freq", mhz),
            "current_minimum_speed": _khz(thread, "scaling_min_freq", mhz),
            "current_maximum_speed": _khz(thread, "scaling_max_freq", mhz),
            "minimum_speed": _khz(thread, "cpuinfo_min_freq", mhz),
            "maximum_speed": _khz(thread, "cpuinfo_max_freq", mhz),
        })
        entry["threads"].append({"id": thread})
    if not packages:
        count = os.cpu_count() or 1
        packages = {0: {i: {"id": i, "threads": [{"id": i}], "current_speed": 0,
                            "current_minimum_speed": 0, "current_maximum_speed": 0,
                            "minimum_speed": 0, "maximum_speed": 0} for i in range(count)}}
    has_ht = any(len(c["threads"]) > 1 for cores in packages.values() for c in cores.values())
    return {"info": {
        "has_hyperthreading": has_ht,
        "hostname": socket.gethostname(),
        "packages": [{"cores": [cores[k] for k in sorted(cores)], "id": pid, "power": 0.0,
                      "thermal_spec": 0.0} for pid, cores in sorted(packages.items())],
    }}


def thread_map() -> dict:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    workers = {f"WorkerThread_{i}": [cpus[i % len(cpus)]] for i in range(len(cpus))}
    return {"thread_map": {"HttpServer": cpus, "HttpWebsocketThread": cpus, "ProcessingUnit": cpus,
                           "WorkerThread": cpus, **workers}}
