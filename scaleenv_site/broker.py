"""kombu's filesystem transport, with messages written atomically.

kombu's own ``_put`` creates ``<time>_<uuid>.<queue>.msg`` and then writes the payload into it,
while a worker's ``_get`` lists the folder, moves any ``*.msg`` away and reads it at once. A worker
that polls between the two reads an empty or partial file; ``json.loads`` fails, and the worker
stops with "Unrecoverable error: JSONDecodeError" (the message is lost, and every job after it
waits for a restart). It happens whenever a sender (a command, the web page starting a batch)
writes while a worker polls, more often on a loaded machine.

Here a message is written under a name no worker picks up (``….msg.part``) and renamed into place
when complete; a rename within one folder is atomic, so a worker sees whole messages or none.
Used for ``filesystem://`` brokers (settings: ``CELERY_BROKER_TRANSPORT``).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # '<...>.<queue>.msg.part' does not match what _get looks for
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
