"""The embedded Hanami backend: API v1 of Hanami 0.4.x, as the backend's API contract describes it
(cited below by section, §N, and quirk, Q-XN).

Public API::

    EmulatorConfig(state_dir, host="127.0.0.1", port=11418, token_key=b"asdf\\n", token_expire=3600,
                   quirks="lenient"|"faithful", tempfile_check_interval=60.0, policy_file=None,
                   admin_id/admin_name/admin_password (default: env HANAMI_ADMIN_*), worker_threads=4,
                   threading_delay=6.0, measurement_interval=1.0, dashboard_dir=None, seed=None)
    EmulatorServer(config).start() / .stop() / .url / .ws_url / .port   (own thread + event loop)
    await serve(config)                                                  (caller's loop, for the CLI)
    python -m webconsole.emulator --host --port --state-dir --quirks [--policy-file]

Layout: config.py, clock.py, response.py, server.py (HTTP via h11 + websockets Sans-I/O on asyncio streams),
pipeline.py (§1.3/§1.4 steps), fields.py (Appendix A field specs as data + §1.5 validator +
output check), policy.py (+ the shipped ``policies`` file), tokens.py, store.py (SQLite, §1.8 type
inference), runtime.py (clusters, FIFO queues, one worker thread per active task), tempfiles.py
(§5.4 segments + expiry), datafiles.py, websocket.py (§5), measurements.py, endpoints/*.py.
The neural network itself is network.py (owned separately).

Deliberate differences from the real backend (all documented here so clients are not surprised;
the test suite runs the same backend-facing tests on both, so any other difference is a bug here):

* Learning is an ordinary MLP (network.py), not Hanami's spiking network; outputs are real. One
  train task over 4,000 MNIST digits gives ~93 % on 1,000 held-out digits here, ~81 % on a real
  Hanami (~91 % after 10 passes): never promise the emulator's figure. The pace differs too: a real
  Hanami trains 4,000 digits in ~0.3 s, so nothing may rely on a task still running.
* Hosts: ``host/all`` lists two logical ``cpu`` hosts (no CUDA); ``switch_host`` moves the cluster
  between them (only bookkeeping - both run on this machine's CPU). Host uuids change per start.
  The real server built without CUDA lists one ``cpu`` host.
* Usable at once: a real Hanami answers HTTP about a second before it lists a host (a cluster
  created in that window gets a 500); the emulator lists its hosts from its first answer.
* Crash cases (Q-C1..C6, Q-W2): ``faithful`` drops the TCP connection without reply (the server
  keeps running); ``lenient`` answers with the intended reply of §12.1 (Q-C1/Q-C3/Q-C6 -> 400 with a
  readable message, Q-C2 -> 404 ``Data-set with uuid '<u>' not found``, Q-C4 -> 200 with the real
  progress, Q-C5 -> the empty template is refused with the base64 400; Q-W2 -> an init error reply).
* Also crash cases of a real 0.4.1 found by testing: removing a queued checkpoint-save task
  (``lenient``: 409), a CSV task with fewer rows than the cluster's input neurons (``lenient``: the
  task runs no cycle and "finishes"), an MNIST task whose images have more pixels than the input
  brick has neurons (``lenient``: queued), an MNIST finalise past Hanami's conversion buffer
  (``lenient``: converted).
* Q-W1 (unknown brick / non-protobuf frame on a cluster websocket): never a reply. ``faithful``: the
  connection never answers again and keeps its worker until the *client* closes it (the real
  worker thread would be lost forever); ``lenient``: only that message is dropped.
* Q-W5/Q-W6 (websocket attached while tasks run, several output bricks) are not reproduced: only
  the first input and first output brick are used, request tasks never talk to websockets.
* Nlohmann's JSON parser messages are imitated (exact for an empty body, same prefix otherwise).
* HTTP/1.1 requests without ``Host`` are rejected by h11 with an empty 400.
* The internal dataset file format differs (JSON header + float32 rows; same information).
* ``system_info`` reports ``power``/``thermal_spec`` as 0.0; ``threading`` is a synthetic map of this
  process' CPU affinity (500 with an empty body for ``threading_delay`` seconds after start, 6 s
  as on the real server, Q-L6).

Agreed with the real server (each checked on both by the test suite): a checkpoint is registered
as its save task starts, so it is listed by the time ``cluster/save`` answered on an idle cluster
and outlives the cluster; of two websockets on one cluster only the newest is answered (the older
gets no reply, no error, no close); the admin made from the environment has ``creator_id``
"MISAKI".
"""

from .config import EmulatorConfig
from .server import EmulatorServer, serve

__all__ = ["EmulatorConfig", "EmulatorServer", "serve"]
