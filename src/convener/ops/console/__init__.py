"""The web console on the ops server (``/console``): live rooms and calls, the transcript as it
is said, per-turn latency waterfalls, agents' health and the searchable call history with
recordings. Every asset ships in this package (``static/``): no CDN, it works offline.

Pure pieces (tested without sockets): ``auth`` (who may see it), ``query`` (history search
parameters), ``waterfall`` (a turn's timing marks as bars), ``live`` (the live view read from
the application), ``recordings`` (names). ``feed`` fans transcript lines out to the pages;
``routes`` is the aiohttp shell.
"""
