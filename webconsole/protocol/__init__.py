"""Hanami's wire formats, shared by the console's client and the embedded emulator.

A leaf package: it imports nothing else from ``webconsole`` and does no network I/O.

* :mod:`.template` — cluster template grammar (contract §6) and Hanami's ASCII error tables
* :mod:`.messages` — websocket protobuf messages (§5.3)
* :mod:`.idx` — MNIST IDX files: validation, reading, writing
* :mod:`.csvdata` — CSV datasets: strict upload validation and Hanami's lenient conversion (§4.30)
"""
